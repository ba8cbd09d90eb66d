# minimal msgpack + serf RPC client for tests (no msgpack module here)
import socket, struct, sys, time

def enc(o):
    if o is None: return b"\xc0"
    if o is True: return b"\xc3"
    if o is False: return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128: return bytes([o])
        if o >= 0: return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, str):
        b = o.encode()
        if len(b) < 32: return bytes([0xa0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(o, bytes): return b"\xc6" + struct.pack(">I", len(o)) + o
    if isinstance(o, list): return b"\xdd" + struct.pack(">I", len(o)) + b"".join(enc(x) for x in o)
    if isinstance(o, dict):
        return b"\xdf" + struct.pack(">I", len(o)) + b"".join(enc(k) + enc(v) for k, v in o.items())
    raise TypeError(o)

class Dec:
    def __init__(self, sock): self.s = sock; self.buf = b""
    def need(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d: raise EOFError
            self.buf += d
        r, self.buf = self.buf[:n], self.buf[n:]
        return r
    def obj(self):
        b = self.need(1)[0]
        if b < 0x80: return b
        if b >= 0xe0: return b - 256
        if 0xa0 <= b <= 0xbf: return self.need(b & 31).decode()
        if 0x90 <= b <= 0x9f: return [self.obj() for _ in range(b & 15)]
        if 0x80 <= b <= 0x8f: return {self.obj(): self.obj() for _ in range(b & 15)}
        if b == 0xc0: return None
        if b == 0xc2: return False
        if b == 0xc3: return True
        if b in (0xc4, 0xc5, 0xc6):
            n = int.from_bytes(self.need({0xc4: 1, 0xc5: 2, 0xc6: 4}[b]), "big"); return self.need(n)
        if b in (0xd9, 0xda, 0xdb):
            n = int.from_bytes(self.need({0xd9: 1, 0xda: 2, 0xdb: 4}[b]), "big"); return self.need(n).decode()
        if b in (0xcc, 0xcd, 0xce, 0xcf):
            return int.from_bytes(self.need({0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8}[b]), "big")
        if b in (0xd0, 0xd1, 0xd2, 0xd3):
            return int.from_bytes(self.need({0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}[b]), "big", signed=True)
        if b == 0xcb: return struct.unpack(">d", self.need(8))[0]
        if b in (0xdc, 0xdd):
            n = int.from_bytes(self.need(2 if b == 0xdc else 4), "big"); return [self.obj() for _ in range(n)]
        if b in (0xde, 0xdf):
            n = int.from_bytes(self.need(2 if b == 0xde else 4), "big"); return {self.obj(): self.obj() for _ in range(n)}
        raise ValueError(hex(b))

class Client:
    def __init__(self, port, auth=None):
        self.s = socket.create_connection(("127.0.0.1", port)); self.s.settimeout(10)
        self.d = Dec(self.s); self.seq = 0
        h = self.call("handshake", {"Version": 1})
        assert h["Error"] == "", h
    def send(self, cmd, body=None):
        self.seq += 1
        self.s.sendall(enc({"Command": cmd, "Seq": self.seq}) + (enc(body) if body is not None else b""))
        return self.seq
    def call(self, cmd, body=None, resp=False):
        seq = self.send(cmd, body)
        h = self.d.obj()
        assert h["Seq"] == seq, (h, seq)
        if resp and h["Error"] == "":
            return h, self.d.obj()
        return h
