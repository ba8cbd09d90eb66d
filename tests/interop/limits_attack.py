#!/usr/bin/env python3
"""Attacking clients for tests/interop/test_limits.sh (no third-party modules).

  hold HOST PORT N SECONDS READYFILE
      keep N idle TCP connections open (reopening any the server closes);
      writes READYFILE once N are open; prints "reopened=K" at the end.
  hold-handshake ...
      the same, each connection first doing the RPC handshake.
  pipeline HOST PORT N SECONDS AUTH READYFILE
      N RPC clients: handshake, auth (AUTH "" = skip), then pipeline
      "members" requests as fast as the socket takes them, never reading.
  streams HOST PORT COUNT
      one client registers COUNT streams pipelined and reads every answer;
      prints "ok=A err=B seconds=S".
  willset HOST PORT
      will-set with the event name "ab\\0cd"; prints the Error answered.
  bigwills PORT NWILLS READYFILE
      a fake agent: answers one client's handshake and will-list with
      NWILLS wills of 1 KiB (a response over 1 MiB), then exits.
"""
import socket
import struct
import sys
import time


def mp_str(s):
    b = s.encode()
    if len(b) < 32:
        return bytes([0xA0 | len(b)]) + b
    return bytes([0xD9, len(b)]) + b


def mp_uint(n):
    if n < 128:
        return bytes([n])
    return b"\xce" + struct.pack(">I", n)


def mp_bin(b):
    if len(b) < 256:
        return bytes([0xC4, len(b)]) + b
    return b"\xc5" + struct.pack(">H", len(b)) + b


def mp_map(d):
    out = bytes([0x80 | len(d)])
    for k, v in d.items():
        out += mp_str(k)
        if isinstance(v, int):
            out += mp_uint(v)
        elif isinstance(v, bytes):
            out += mp_bin(v)
        else:
            out += mp_str(v)
    return out


def mp_read(s, buf):
    """Decode one msgpack value (the subset RPC requests use) from socket s;
    returns (value, rest of buf)."""
    def need(n):
        nonlocal buf
        buf = read_exact(s, buf, n)

    def val(i):
        need(i + 1)
        t = buf[i]
        if t < 0x80:
            return t, i + 1
        if 0x80 <= t <= 0x8F:
            d, i = {}, i + 1
            for _ in range(t & 0x0F):
                k, i = val(i)
                v, i = val(i)
                d[k] = v
            return d, i
        if 0xA0 <= t <= 0xBF or t in (0xD9, 0xC4):
            if t in (0xD9, 0xC4):
                need(i + 2)
                n, i = buf[i + 1], i + 2
            else:
                n, i = t & 0x1F, i + 1
            need(i + n)
            return bytes(buf[i:i + n]).decode("latin-1"), i + n
        if t == 0xC0:
            return None, i + 1
        if t in (0xCC, 0xCD, 0xCE, 0xCF):
            n = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[t]
            need(i + 1 + n)
            return int.from_bytes(buf[i + 1:i + 1 + n], "big"), i + 1 + n
        raise ValueError("unexpected msgpack type 0x%02x" % t)

    v, i = val(0)
    return v, buf[i:]


def header(cmd, seq):
    return mp_map({"Command": cmd, "Seq": seq})


def connect(host, port, timeout=2.0, small=True):
    s = socket.create_connection((host, port), timeout=timeout)
    if small:
        # an attacker that never reads wants the server to hold its answers
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return s


def hold(host, port, n, seconds, ready, handshake=False):
    socks, reopened = [], 0
    end = time.time() + seconds
    while len(socks) < n and time.time() < end:
        try:
            s = connect(host, port)
            if handshake:
                # one at a time, each answered: the agent sees a ready
                # client, never a burst of unauthenticated ones
                s.sendall(header("handshake", 0) + mp_map({"Version": 1}))
                read_exact(s, b"", 13)
            socks.append(s)
        except OSError:
            time.sleep(0.01)
    open(ready, "w").write("%d\n" % len(socks))
    for s in socks:
        s.setblocking(False)
    while time.time() < end:
        for i, s in enumerate(socks):
            try:
                if s.recv(1) == b"":
                    raise ConnectionResetError
            except BlockingIOError:
                continue
            except OSError:
                pass
            s.close()
            try:
                socks[i] = connect(host, port, 0.5)
                socks[i].setblocking(False)
                reopened += 1
            except OSError:
                socks[i] = connect_placeholder()
        time.sleep(0.05)
    print("reopened=%d" % reopened)


def connect_placeholder():
    a, b = socket.socketpair()
    b.close()
    a.setblocking(False)
    return a


def pipeline(host, port, n, seconds, auth, ready):
    socks = []
    for _ in range(n):
        s = connect(host, port)
        s.sendall(header("handshake", 0) + mp_map({"Version": 1}))
        if auth:
            s.sendall(header("auth", 1) + mp_map({"AuthKey": auth}))
        s.setblocking(False)
        socks.append(s)
    open(ready, "w").write("ready\n")
    burst = b"".join(header("members", 2 + i) for i in range(200))
    end = time.time() + seconds
    sent = 0
    while time.time() < end:
        for s in socks:
            try:
                sent += s.send(burst)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass
        time.sleep(0.005)
    for s in socks:
        s.close()
    print("sent=%d" % sent)


def read_exact(s, buf, n):
    while len(buf) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def streams(host, port, count):
    s = connect(host, port, 10, small=False)
    t0 = time.time()
    s.sendall(header("handshake", 0) + mp_map({"Version": 1}))
    req = b"".join(header("stream", 1 + i) + mp_map({"Type": "user:x"})
                   for i in range(count))
    s.sendall(req)
    # Each answer is a header map {Seq, Error}; count the empty errors.
    data, ok, err = b"", 0, 0
    try:
        read_answers(s, data, count, [ok, err], t0)
    except (OSError, EOFError) as e:
        print("incomplete (%s)" % e)


def read_answers(s, data, count, tally, t0):
    ok, err = tally
    for seen in range(count + 1):
        data = read_exact(s, data, 6)   # 0x82, fixstr "Seq", first seq byte
        i = 5
        i += {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9}.get(data[i], 1)
        data = read_exact(s, data, i + 7)  # fixstr "Error", str type byte
        i += 6
        if 0xA0 <= data[i] <= 0xBF:
            ln, i = data[i] & 0x1F, i + 1
        else:  # str8
            data = read_exact(s, data, i + 2)
            ln, i = data[i + 1], i + 2
        data = read_exact(s, data, i + ln)
        if seen > 0:
            if ln == 0:
                ok += 1
            else:
                err += 1
        data = data[i + ln:]
    print("ok=%d err=%d seconds=%.2f" % (ok, err, time.time() - t0))


def willset(host, port):
    s = connect(host, port, 5, small=False)
    s.sendall(header("handshake", 0) + mp_map({"Version": 1}))
    s.sendall(header("will-set", 1) +
              mp_map({"Event": "ab\0cd", "Delay": 0, "Payload": b"x"}))
    buf = b""
    for _ in range(2):
        h, buf = mp_read(s, buf)
    print("error=%s" % h.get("Error"))


def bigwills(port, nwills, ready):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    open(ready, "w").write("ready\n")
    ls.settimeout(20)
    s, _ = ls.accept()
    s.settimeout(20)
    buf = b""
    while True:
        h, buf = mp_read(s, buf)
        body, buf = mp_read(s, buf)
        if h["Command"] == "handshake":
            s.sendall(mp_map({"Seq": h["Seq"], "Error": ""}))
            continue
        wills = b"".join(
            mp_map({"Owner": "node-%05d" % i, "To": "", "Event": "ev", "Delay": 0,
                    "Seq": 1, "Payload": b"p" * 1024}) for i in range(nwills))
        n = nwills
        arr = (bytes([0x90 | n]) if n < 16 else
               b"\xdc" + struct.pack(">H", n) if n < 65536 else
               b"\xdd" + struct.pack(">I", n))
        s.sendall(mp_map({"Seq": h["Seq"], "Error": ""}) + b"\x81" + mp_str("Wills") +
                  arr + wills)
        break
    s.close()


def main():
    mode = sys.argv[1]
    if mode in ("hold", "hold-handshake"):
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6],
             mode == "hold-handshake")
    elif mode == "pipeline":
        pipeline(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]),
                 sys.argv[6], sys.argv[7])
    elif mode == "streams":
        streams(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "willset":
        willset(sys.argv[2], int(sys.argv[3]))
    elif mode == "bigwills":
        bigwills(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
