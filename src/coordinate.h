/*
 * coordinate.h — Vivaldi network coordinates, as serf's coordinate package
 * (github.com/hashicorp/serf/coordinate: client.go, coordinate.go,
 * config.go), so that serf and vigil agents estimate RTTs to each other.
 *
 * Same algorithm, same DefaultConfig (8 dimensions, VivaldiErrorMax 1.5,
 * VivaldiCE 0.25, VivaldiCC 0.25, AdjustmentWindowSize 20, HeightMin 10e-6,
 * LatencyFilterSize 3, GravityRho 150), same units (seconds).  Each probe
 * that a member acks directly gives one update: the ack carries the
 * member's coordinate (serf's ping delegate: a version byte 1, then the
 * coordinate as a msgpack map {Vec, Error, Adjustment, Height}) and the
 * probe's RTT goes through a per-node median filter, then the Vivaldi,
 * adjustment and gravity steps.
 *
 * The client also keeps, per node, the last coordinate that node sent (serf
 * Serf.coordCache), since both are kept and forgotten together.
 *
 * Pure: no clock, no I/O.  Randomness (only to pick a direction when two
 * coordinates coincide) comes from a seed given at init.
 */
#ifndef VIGIL_COORDINATE_H
#define VIGIL_COORDINATE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil.h"

/* The coordinate itself is the public struct vigil_coord (vigil.h). */
#define COORD_MAX_DIM VIGIL_COORD_MAX_DIM
/* serf's ping delegate PingVersion: first byte of every ack payload. */
#define COORD_PING_VERSION 1
/* Room for an encoded ack payload with COORD_MAX_DIM dimensions. */
#define COORD_PAYLOAD_MAX 192


struct coord_config {
	unsigned dimensionality;
	double vivaldi_error_max, vivaldi_ce, vivaldi_cc;
	unsigned adjustment_window_size;
	double height_min;
	unsigned latency_filter_size;
	double gravity_rho;
};

/* serf coordinate.DefaultConfig(). */
void coord_config_default(struct coord_config *cfg);

/* NewCoordinate: at the origin with the maximum error. */
void coord_new(const struct coord_config *cfg, struct vigil_coord *c);
/* IsValid: no NaN or infinite component. */
bool coord_valid(const struct vigil_coord *c);
/* DistanceTo, in seconds: Euclidean + heights + adjustments (when positive).
 * The dimensions must match (coord_compatible). */
double coord_distance(const struct vigil_coord *a, const struct vigil_coord *b);
static inline bool coord_compatible(const struct vigil_coord *a, const struct vigil_coord *b)
{
	return a->dim == b->dim;
}
/* ApplyForce: move c by `force` seconds away from `other` (towards it when
 * negative).  *rng is a PRNG state, used only when the two coincide. */
void coord_apply_force(const struct coord_config *cfg, struct vigil_coord *c, double force,
		       const struct vigil_coord *other, uint64_t *rng);

/* msgpack {Vec, Error, Adjustment, Height} as go-msgpack writes the Go
 * struct (field order, str keys, float64 values). */
void coord_pack(msgpack_packer *pk, const struct vigil_coord *c);
/* The inverse, liberal in number types (any int or float); false if o is
 * not such a map or Vec has more than COORD_MAX_DIM entries.  Missing
 * fields are zero, as Go's decoder leaves them. */
bool coord_unpack(const msgpack_object *o, struct vigil_coord *c);
/* serf's AckPayload: PingVersion byte + msgpack coordinate.  Returns the
 * length written (0 if cap is too small). */
size_t coord_ack_payload(const struct vigil_coord *c, uint8_t *buf, size_t cap);
/* Parse an ack payload (NotifyPingComplete): 0 ok, -1 empty, -2 wrong
 * version, -3 malformed. */
int coord_parse_ack_payload(const uint8_t *p, size_t len, struct vigil_coord *c);

/* ---- the client (serf coordinate.Client) ---- */

struct coord_node;                /* per-node filter samples + cached coordinate */

struct coord_client {
	struct coord_config cfg;
	struct vigil_coord coord, origin;
	double *adjustment_samples;   /* adjustment_window_size of them */
	unsigned adjustment_index;
	struct coord_node *nodes;     /* unsorted; n is the member count */
	size_t n_nodes, cap_nodes;
	uint64_t resets;              /* ClientStats.Resets */
	uint64_t rng;
};

/* 0, or -1 (dimensionality 0 or above COORD_MAX_DIM, out of memory). */
int coord_client_init(struct coord_client *cl, const struct coord_config *cfg, uint64_t seed);
void coord_client_free(struct coord_client *cl);

/*
 * Update with `other`'s coordinate and an RTT to it in seconds (serf
 * Client.Update).  Refused, with nothing changed and err filled with
 * serf's text: incompatible dimensions, an invalid coordinate, an RTT
 * outside [0, 10 s].  On success the coordinate is also cached for `node`.
 */
int coord_client_update(struct coord_client *cl, const char *node, const struct vigil_coord *other,
			double rtt_s, char *err, size_t errlen);
/*
 * serf's pingDelegate.NotifyPingComplete: parse the ack payload of a direct
 * probe of `node` and update with its RTT.  0 updated or nothing to do (an
 * empty payload: a peer without coordinates); -1 with err filled (wrong
 * ping version, malformed payload, update refused).
 */
int coord_client_on_ack(struct coord_client *cl, const char *node, int64_t rtt_us,
			const uint8_t *payload, size_t len, char *err, size_t errlen);
/* serf Client.ForgetNode plus dropping the node's cached coordinate. */
void coord_client_forget(struct coord_client *cl, const char *node);
/* The coordinate last received from `node` (serf GetCachedCoordinate,
 * without the local node, which the caller answers from cl->coord). */
bool coord_client_cached(const struct coord_client *cl, const char *node, struct vigil_coord *out);
/* latencyFilter: add a sample for node, return the median of the last
 * latency_filter_size samples.  Exposed for tests. */
double coord_client_latency_filter(struct coord_client *cl, const char *node, double rtt_s);

#endif
