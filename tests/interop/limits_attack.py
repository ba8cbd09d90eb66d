#!/usr/bin/env python3
"""Attacking clients for tests/interop/test_limits.sh (no third-party modules).

  hold HOST PORT N SECONDS READYFILE
      keep N idle TCP connections open (reopening any the server closes);
      writes READYFILE once N are open; prints "reopened=K" at the end.
  pipeline HOST PORT N SECONDS AUTH READYFILE
      N RPC clients: handshake, auth (AUTH "" = skip), then pipeline
      "members" requests as fast as the socket takes them, never reading.
  streams HOST PORT COUNT
      one client registers COUNT streams pipelined and reads every answer;
      prints "ok=A err=B seconds=S".
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


def mp_map(d):
    out = bytes([0x80 | len(d)])
    for k, v in d.items():
        out += mp_str(k)
        if isinstance(v, int):
            out += mp_uint(v)
        else:
            out += mp_str(v)
    return out


def header(cmd, seq):
    return mp_map({"Command": cmd, "Seq": seq})


def connect(host, port, timeout=2.0, small=True):
    s = socket.create_connection((host, port), timeout=timeout)
    if small:
        # an attacker that never reads wants the server to hold its answers
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return s


def hold(host, port, n, seconds, ready):
    socks, reopened = [], 0
    end = time.time() + seconds
    while len(socks) < n and time.time() < end:
        try:
            socks.append(connect(host, port))
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


def main():
    mode = sys.argv[1]
    if mode == "hold":
        hold(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    elif mode == "pipeline":
        pipeline(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]),
                 sys.argv[6], sys.argv[7])
    elif mode == "streams":
        streams(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
