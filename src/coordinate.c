/*
 * coordinate.c — Vivaldi network coordinates compatible with serf's
 * coordinate package; see coordinate.h.  The steps and their order follow
 * serf's client.go and coordinate.go so both sides converge the same way.
 */
#include "coordinate.h"
#include "wire.h"
#include "grow.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* serf: below this a distance or RTT counts as zero (avoids dividing by 0). */
#define ZERO_THRESHOLD 1.0e-6
/* serf Client.Update: RTTs above this are refused as bogus. */
#define MAX_RTT_S 10.0
/* Largest median filter we keep per node (serf's default is 3). */
#define FILTER_MAX 16

struct coord_node {
	char *name;
	double samples[FILTER_MAX];   /* oldest first */
	unsigned n_samples;
	bool has_cached;
	struct vigil_coord cached;
};

void coord_config_default(struct coord_config *cfg)
{
	cfg->dimensionality = 8;
	cfg->vivaldi_error_max = 1.5;
	cfg->vivaldi_ce = 0.25;
	cfg->vivaldi_cc = 0.25;
	cfg->adjustment_window_size = 20;
	cfg->height_min = 10.0e-6;
	cfg->latency_filter_size = 3;
	cfg->gravity_rho = 150.0;
}

void coord_new(const struct coord_config *cfg, struct vigil_coord *c)
{
	memset(c, 0, sizeof *c);
	c->dim = cfg->dimensionality;
	c->error = cfg->vivaldi_error_max;
	c->height = cfg->height_min;
}

static bool component_valid(double f)
{
	return isfinite(f);
}

bool coord_valid(const struct vigil_coord *c)
{
	for (unsigned i = 0; i < c->dim; i++)
		if (!component_valid(c->vec[i]))
			return false;
	return component_valid(c->error) && component_valid(c->adjustment) &&
	       component_valid(c->height);
}

static double magnitude_of_diff(const struct vigil_coord *a, const struct vigil_coord *b)
{
	double sum = 0.0;
	for (unsigned i = 0; i < a->dim; i++) {
		double d = a->vec[i] - b->vec[i];
		sum += d * d;
	}
	return sqrt(sum);
}

/* rawDistanceTo: no adjustment terms. */
static double raw_distance(const struct vigil_coord *a, const struct vigil_coord *b)
{
	return magnitude_of_diff(a, b) + a->height + b->height;
}

double coord_distance(const struct vigil_coord *a, const struct vigil_coord *b)
{
	double dist = raw_distance(a, b);
	double adjusted = dist + a->adjustment + b->adjustment;
	return adjusted > 0.0 ? adjusted : dist;
}

/* A double in [0, 1) from a xorshift64* state (Go uses rand.Float64). */
static double rand_unit(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

/* unitVectorAt: the unit vector from b to a and the distance between them;
 * a random direction (and distance 0) when they coincide. */
static double unit_vector_at(const struct vigil_coord *a, const struct vigil_coord *b, double *unit,
			     uint64_t *rng)
{
	unsigned dim = a->dim;
	for (unsigned i = 0; i < dim; i++)
		unit[i] = a->vec[i] - b->vec[i];
	double mag = 0.0;
	for (unsigned i = 0; i < dim; i++)
		mag += unit[i] * unit[i];
	mag = sqrt(mag);
	if (mag > ZERO_THRESHOLD) {
		for (unsigned i = 0; i < dim; i++)
			unit[i] /= mag;
		return mag;
	}
	double rmag = 0.0;
	for (unsigned i = 0; i < dim; i++) {
		unit[i] = rand_unit(rng) - 0.5;
		rmag += unit[i] * unit[i];
	}
	rmag = sqrt(rmag);
	if (rmag > ZERO_THRESHOLD) {
		for (unsigned i = 0; i < dim; i++)
			unit[i] /= rmag;
		return 0.0;
	}
	memset(unit, 0, dim * sizeof unit[0]);
	if (dim)
		unit[0] = 1.0;
	return 0.0;
}

void coord_apply_force(const struct coord_config *cfg, struct vigil_coord *c, double force,
		       const struct vigil_coord *other, uint64_t *rng)
{
	double unit[COORD_MAX_DIM];
	double mag = unit_vector_at(c, other, unit, rng);
	for (unsigned i = 0; i < c->dim; i++)
		c->vec[i] += unit[i] * force;
	if (mag > ZERO_THRESHOLD) {
		c->height = (c->height + other->height) * force / mag + c->height;
		c->height = fmax(c->height, cfg->height_min);
	}
}

/* ------------------------------------------------------------ encoding */

static void pack_key(msgpack_packer *pk, const char *k)
{
	size_t n = strlen(k);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, k, n);
}

void coord_pack(msgpack_packer *pk, const struct vigil_coord *c)
{
	msgpack_pack_map(pk, 4);
	pack_key(pk, "Vec");
	if (c->dim == 0) {
		/* the zero Coordinate: Go writes its nil slice as nil */
		msgpack_pack_nil(pk);
	} else {
		msgpack_pack_array(pk, c->dim);
	}
	for (unsigned i = 0; i < c->dim; i++)
		msgpack_pack_double(pk, c->vec[i]);
	pack_key(pk, "Error");
	msgpack_pack_double(pk, c->error);
	pack_key(pk, "Adjustment");
	msgpack_pack_double(pk, c->adjustment);
	pack_key(pk, "Height");
	msgpack_pack_double(pk, c->height);
}

static bool as_double(const msgpack_object *o, double *v)
{
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*v = o->via.f64;
		return true;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*v = (double)o->via.u64;
		return true;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*v = (double)o->via.i64;
		return true;
	default:
		return false;
	}
}

static bool key_eq(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);
	if (k->type == MSGPACK_OBJECT_STR)
		return k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
	if (k->type == MSGPACK_OBJECT_BIN)
		return k->via.bin.size == n && memcmp(k->via.bin.ptr, s, n) == 0;
	return false;
}

bool coord_unpack(const msgpack_object *o, struct vigil_coord *c)
{
	memset(c, 0, sizeof *c);
	if (o->type != MSGPACK_OBJECT_MAP)
		return false;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		const msgpack_object *v = &o->via.map.ptr[i].val;
		if (key_eq(k, "Vec")) {
			if (v->type == MSGPACK_OBJECT_NIL) {
				c->dim = 0;
				continue;
			}
			if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > COORD_MAX_DIM)
				return false;
			c->dim = v->via.array.size;
			for (unsigned j = 0; j < c->dim; j++)
				if (!as_double(&v->via.array.ptr[j], &c->vec[j]))
					return false;
		} else if (key_eq(k, "Error")) {
			if (!as_double(v, &c->error))
				return false;
		} else if (key_eq(k, "Adjustment")) {
			if (!as_double(v, &c->adjustment))
				return false;
		} else if (key_eq(k, "Height")) {
			if (!as_double(v, &c->height))
				return false;
		}
		/* other keys: ignored, as Go's decoder does */
	}
	return true;
}

size_t coord_ack_payload(const struct vigil_coord *c, uint8_t *buf, size_t cap)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	coord_pack(&pk, c);
	size_t n = 0;
	if (sb.data && sb.size + 1 <= cap) {
		buf[0] = COORD_PING_VERSION;
		memcpy(buf + 1, sb.data, sb.size);
		n = sb.size + 1;
	}
	msgpack_sbuffer_destroy(&sb);
	return n;
}

int coord_parse_ack_payload(const uint8_t *p, size_t len, struct vigil_coord *c)
{
	if (len == 0)
		return -1;
	if (p[0] != COORD_PING_VERSION)
		return -2;
	/* The sender's bytes: wire_msgpack_unpack proves their shape first, so
	 * a lying array header cannot make msgpack-c allocate for it; a
	 * coordinate is a few hundred bytes, anything needing more is not one. */
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int rc = -3;
	if (wire_msgpack_unpack(p + 1, len - 1, 4 * COORD_PAYLOAD_MAX, &u, NULL) == WIRE_OK &&
	    coord_unpack(&u.data, c))
		rc = 0;
	msgpack_unpacked_destroy(&u);
	return rc;
}

/* -------------------------------------------------------------- client */

int coord_client_init(struct coord_client *cl, const struct coord_config *cfg, uint64_t seed)
{
	memset(cl, 0, sizeof *cl);
	if (cfg->dimensionality == 0 || cfg->dimensionality > COORD_MAX_DIM ||
	    cfg->latency_filter_size == 0 || cfg->latency_filter_size > FILTER_MAX)
		return -1;
	cl->cfg = *cfg;
	coord_new(cfg, &cl->coord);
	coord_new(cfg, &cl->origin);
	if (cfg->adjustment_window_size) {
		cl->adjustment_samples = calloc(cfg->adjustment_window_size, sizeof(double));
		if (!cl->adjustment_samples)
			return -1;
	}
	cl->rng = seed;
	return 0;
}

void coord_client_free(struct coord_client *cl)
{
	for (size_t i = 0; i < cl->n_nodes; i++)
		free(cl->nodes[i].name);
	free(cl->nodes);
	free(cl->adjustment_samples);
	memset(cl, 0, sizeof *cl);
}

static struct coord_node *node_find(const struct coord_client *cl, const char *name)
{
	for (size_t i = 0; i < cl->n_nodes; i++)
		if (strcmp(cl->nodes[i].name, name) == 0)
			return &cl->nodes[i];
	return NULL;
}

static struct coord_node *node_get(struct coord_client *cl, const char *name)
{
	struct coord_node *n = node_find(cl, name);
	if (n)
		return n;
	struct coord_node *p = array_grow(cl->nodes, &cl->cap_nodes, cl->n_nodes + 1, sizeof *p, 8);
	if (!p)
		return NULL;
	cl->nodes = p;
	char *dup = strdup(name);
	if (!dup)
		return NULL;
	n = &cl->nodes[cl->n_nodes++];
	memset(n, 0, sizeof *n);
	n->name = dup;
	return n;
}

void coord_client_forget(struct coord_client *cl, const char *node)
{
	struct coord_node *n = node_find(cl, node);
	if (!n)
		return;
	free(n->name);
	*n = cl->nodes[--cl->n_nodes];
}

bool coord_client_cached(const struct coord_client *cl, const char *node, struct vigil_coord *out)
{
	const struct coord_node *n = node_find(cl, node);
	if (!n || !n->has_cached)
		return false;
	*out = n->cached;
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median_push(struct coord_node *n, unsigned size, double rtt_s)
{
	if (n->n_samples == size) {
		memmove(n->samples, n->samples + 1, (size - 1) * sizeof n->samples[0]);
		n->n_samples--;
	}
	n->samples[n->n_samples++] = rtt_s;
	double sorted[FILTER_MAX];
	memcpy(sorted, n->samples, n->n_samples * sizeof sorted[0]);
	qsort(sorted, n->n_samples, sizeof sorted[0], cmp_double);
	return sorted[n->n_samples / 2];
}

double coord_client_latency_filter(struct coord_client *cl, const char *node, double rtt_s)
{
	struct coord_node *n = node_get(cl, node);
	if (!n)
		return rtt_s; /* out of memory: unfiltered, as if the first sample */
	return median_push(n, cl->cfg.latency_filter_size, rtt_s);
}

static void update_vivaldi(struct coord_client *cl, const struct vigil_coord *other, double rtt_s)
{
	double dist = coord_distance(&cl->coord, other);
	if (rtt_s < ZERO_THRESHOLD)
		rtt_s = ZERO_THRESHOLD;
	double wrongness = fabs(dist - rtt_s) / rtt_s;
	double total_error = cl->coord.error + other->error;
	if (total_error < ZERO_THRESHOLD)
		total_error = ZERO_THRESHOLD;
	double weight = cl->coord.error / total_error;
	cl->coord.error = cl->cfg.vivaldi_ce * weight * wrongness +
			  cl->coord.error * (1.0 - cl->cfg.vivaldi_ce * weight);
	if (cl->coord.error > cl->cfg.vivaldi_error_max)
		cl->coord.error = cl->cfg.vivaldi_error_max;
	double delta = cl->cfg.vivaldi_cc * weight;
	double force = delta * (rtt_s - dist);
	coord_apply_force(&cl->cfg, &cl->coord, force, other, &cl->rng);
}

static void update_adjustment(struct coord_client *cl, const struct vigil_coord *other, double rtt_s)
{
	unsigned w = cl->cfg.adjustment_window_size;
	if (w == 0)
		return;
	double dist = raw_distance(&cl->coord, other);
	cl->adjustment_samples[cl->adjustment_index] = rtt_s - dist;
	cl->adjustment_index = (cl->adjustment_index + 1) % w;
	double sum = 0.0;
	for (unsigned i = 0; i < w; i++)
		sum += cl->adjustment_samples[i];
	cl->coord.adjustment = sum / (2.0 * (double)w);
}

static void update_gravity(struct coord_client *cl)
{
	double dist = coord_distance(&cl->origin, &cl->coord);
	double force = -1.0 * pow(dist / cl->cfg.gravity_rho, 2.0);
	coord_apply_force(&cl->cfg, &cl->coord, force, &cl->origin, &cl->rng);
}

int coord_client_update(struct coord_client *cl, const char *node, const struct vigil_coord *other,
			double rtt_s, char *err, size_t errlen)
{
	if (!coord_compatible(&cl->coord, other)) {
		snprintf(err, errlen, "dimensions aren't compatible");
		return -1;
	}
	if (!coord_valid(other)) {
		snprintf(err, errlen, "coordinate is invalid");
		return -1;
	}
	if (!(rtt_s >= 0 && rtt_s <= MAX_RTT_S)) {
		snprintf(err, errlen,
			 "round trip time not in valid range, duration %gs is not a positive value less than 10s",
			 rtt_s);
		return -1;
	}
	struct coord_node *n = node_get(cl, node);
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rtt_s = median_push(n, cl->cfg.latency_filter_size, rtt_s);
	update_vivaldi(cl, other, rtt_s);
	update_adjustment(cl, other, rtt_s);
	update_gravity(cl);
	if (!coord_valid(&cl->coord)) {
		cl->resets++;
		coord_new(&cl->cfg, &cl->coord);
	}
	n->cached = *other;
	n->has_cached = true;
	return 0;
}

int coord_client_on_ack(struct coord_client *cl, const char *node, int64_t rtt_us,
			const uint8_t *payload, size_t len, char *err, size_t errlen)
{
	struct vigil_coord other;
	switch (coord_parse_ack_payload(payload, len, &other)) {
	case 0:
		return coord_client_update(cl, node, &other, (double)rtt_us / 1e6, err, errlen);
	case -1:
		return 0;
	case -2:
		snprintf(err, errlen, "Unsupported ping version: %u", (unsigned)payload[0]);
		return -1;
	default:
		snprintf(err, errlen, "Failed to decode coordinate from ping");
		return -1;
	}
}
