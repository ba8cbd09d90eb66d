#!/usr/bin/env python3
"""Write the seeds of fuzz/fuzz_rpc_dispatch.c into fuzz/corpus/rpc_dispatch/.

Each seed is a flag byte (bit 0: the server requires the auth token
"fuzz-token") followed by a client's request stream: msgpack header
{Command, Seq} and, for commands that take one, a body map — the way serf's
client (client/rpc_client.go) sends them.  Some seeds cut the stream with
"VSEP" (separate writes, even in the middle of a frame).

Standard library only (msgpack is hand-encoded): python3 fuzz/gen_rpc_dispatch_seeds.py
"""
import os
import struct
import sys

SEP = b"VSEP"
KEY0 = "AAECAwQFBgcICQoLDA0ODw=="  # the harness's primary key
KEY1 = "EBESExQVFhcYGRobHB0eHw=="  # another valid 16-byte key
# The id the harness's agent (fixed random seed) gives the first query it
# starts; find it again with VIGIL_FUZZ_TRACE=1 if the library changes.
FIRST_QUERY_ID = 556779450


class Bin(bytes):
    """Encoded as msgpack bin (payloads); plain bytes/str are str."""


def pack(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if o < 0 and o >= -32:
            return struct.pack("b", o)
        if 0 <= o < 1 << 8:
            return b"\xcc" + struct.pack(">B", o)
        if 0 <= o < 1 << 16:
            return b"\xcd" + struct.pack(">H", o)
        if 0 <= o < 1 << 32:
            return b"\xce" + struct.pack(">I", o)
        if o >= 0:
            return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, Bin):
        n = len(o)
        if n < 256:
            return b"\xc4" + bytes([n]) + bytes(o)
        return b"\xc5" + struct.pack(">H", n) + bytes(o)
    if isinstance(o, (str, bytes)):
        b = o.encode() if isinstance(o, str) else o
        n = len(b)
        if n < 32:
            return bytes([0xA0 | n]) + b
        if n < 256:
            return b"\xd9" + bytes([n]) + b
        return b"\xda" + struct.pack(">H", n) + b
    if isinstance(o, list):
        assert len(o) < 16
        return bytes([0x90 | len(o)]) + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        assert len(o) < 16
        return bytes([0x80 | len(o)]) + b"".join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(o)


class Stream:
    def __init__(self):
        self.seq = 0
        self.out = b""

    def req(self, cmd, body=None, sep=False):
        self.out += pack({"Command": cmd, "Seq": self.seq})
        if body is not None:
            self.out += pack(body)
        self.seq += 1
        if sep:
            self.out += SEP
        return self


def hs(s=None):
    s = s or Stream()
    return s.req("handshake", {"Version": 1}, sep=True)


def seeds():
    yield "handshake-members", hs().req("members")
    yield "handshake-stats", hs().req("stats")
    yield "auth-members", 1, hs().req("auth", {"AuthKey": "fuzz-token"}).req("members")
    yield "auth-wrong", 1, hs().req("auth", {"AuthKey": "nope"}).req("stats")
    yield "no-auth", 1, hs().req("members")
    yield "no-handshake", Stream().req("members")
    yield "event", hs().req("event", {"Name": "deploy", "Payload": Bin(b"v42"), "Coalesce": True})
    yield "members-filtered", hs().req(
        "members-filtered", {"Tags": {"role": "w.*"}, "Status": "alive", "Name": "fu.*"})
    yield "members-filtered-badre", hs().req("members-filtered", {"Name": "(", "Status": ""})
    yield "tags", hs().req("tags", {"Tags": {"role": "web", "dc": "x"}, "DeleteTags": ["old"]}).req(
        "members")
    yield "query", hs().req("query", {
        "FilterNodes": ["fuzz"], "FilterTags": {}, "RequestAck": True, "RelayFactor": 0,
        "Timeout": 100000000, "Name": "uptime", "Payload": Bin(b"x")})
    yield "stream-event", hs().req("stream", {"Type": "user,query,member-join"}).req(
        "event", {"Name": "e", "Payload": Bin(b""), "Coalesce": False})
    yield "stream-query-respond", hs().req("stream", {"Type": "query"}).req(
        "query", {"Name": "q", "Payload": Bin(b"p"), "Timeout": 50000000}, sep=True).req(
        "respond", {"ID": FIRST_QUERY_ID, "Payload": Bin(b"answer")}).req(
        "respond", {"ID": 1, "Payload": Bin(b"")})
    yield "stream-stop", hs().req("stream", {"Type": "*"}).req("stream", {"Type": "*"}).req(
        "stop", {"Stop": 1})
    yield "monitor", hs().req("monitor", {"LogLevel": "debug"}).req("event", {"Name": "m"}).req(
        "stop", {"Stop": 1})
    yield "monitor-badlevel", hs().req("monitor", {"LogLevel": "loud"})
    yield "get-coordinate", hs().req("get-coordinate", {"Node": "fuzz"})
    yield "will", hs().req("will-set", {"To": "", "Event": "gone", "Delay": 1000000000,
                                        "Payload": Bin(b"bye")}).req(
        "will-list", {"Owner": ""}).req("will-clear").req("will-list", {"Owner": "fuzz"})
    yield "will-set-to", hs().req("will-set", {"To": "other", "Payload": Bin(b"x")}).req(
        "will-list", {})
    yield "keys", hs().req("list-keys").req("install-key", {"Key": KEY1}, sep=True).req(
        "use-key", {"Key": KEY1}, sep=True).req("remove-key", {"Key": KEY0}, sep=True).req(
        "list-keys")
    yield "join-refused", hs().req("join", {"Existing": ["127.0.0.1:1", "[::1]:2", "10.0.0.1"],
                                            "Replay": False})
    yield "force-leave", hs().req("force-leave", {"Node": "ghost", "Prune": True}).req(
        "force-leave", {"Node": "fuzz"})
    yield "leave", hs().req("leave")
    yield "unknown-cmd", hs().req("frobnicate", {})
    # the handshake header and its body cut inside frames
    s = Stream().req("handshake", {"Version": 1}).req("members")
    yield "split-frames", s.out[:5] + SEP + s.out[5:17] + SEP + s.out[17:]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "rpc_dispatch")
    os.makedirs(out, exist_ok=True)
    for item in seeds():
        name, flags, s = (item[0], item[1], item[2]) if len(item) == 3 else (item[0], 0, item[1])
        data = s.out if isinstance(s, Stream) else s
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(bytes([flags]) + data)


if __name__ == "__main__":
    main()
