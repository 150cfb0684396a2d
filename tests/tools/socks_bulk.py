#!/usr/bin/env python3
"""Bulk TCP through a SOCKS5 proxy, measured and hashed where the bytes arrive.

  socks_bulk.py serve HOST PORT
      Per connection, a first line says what to do:
        "UP\\n"        read to EOF, answer "bytes=N sha256=H secs=T" (T: first byte to EOF)
        "DOWN N\\n"    send N bytes of a fixed pattern (N=0: until the client closes)
  socks_bulk.py up PROXY HOST PORT (--file F | --secs S)
      send a file (or zeros for S seconds), half-close, print the server's answer
  socks_bulk.py down PROXY HOST PORT (--bytes N | --secs S)
      receive, print "bytes=N sha256=H secs=T" as measured here

Goodput is measured by the receiver, so bytes queued in socket buffers never count.
"""
import hashlib
import socket
import struct
import sys
import threading
import time

PATTERN = bytes(range(256)) * 256  # 64 KiB


def socks_connect(proxy, host, port):
    phost, pport = proxy.rsplit(":", 1)
    s = socket.create_connection((phost, int(pport)), timeout=120)
    s.sendall(b"\x05\x01\x00")
    if s.recv(2) != b"\x05\x00":
        raise SystemExit("socks5: no-auth refused")
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", port))
    rep = b""
    while len(rep) < 10:
        c = s.recv(10 - len(rep))
        if not c:
            raise SystemExit("socks5: closed during reply")
        rep += c
    if rep[1] != 0:
        raise SystemExit("socks5: connect failed with 0x%02x" % rep[1])
    return s


def recv_all(read, deadline=None, t0=None):
    """Read with read(n) to EOF (or the deadline): the receiver's count, hash and time (from t0,
    or from the first byte)."""
    h, n = hashlib.sha256(), 0
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            break
        c = read(1 << 18)
        if not c:
            break
        if t0 is None:
            t0 = time.monotonic()
        h.update(c)
        n += len(c)
    secs = time.monotonic() - t0 if t0 is not None else 0.0
    return "bytes=%d sha256=%s secs=%.3f" % (n, h.hexdigest(), secs)


def serve_one(c):
    try:
        f = c.makefile("rb")
        line = f.readline().split()
        if line[:1] == [b"UP"]:
            c.sendall((recv_all(f.read1) + "\n").encode())
        elif line[:1] == [b"DOWN"]:
            left = int(line[1])
            forever = left == 0
            while forever or left > 0:
                chunk = PATTERN if forever or left >= len(PATTERN) else PATTERN[:left]
                c.sendall(chunk)
                left -= len(chunk)
    except OSError:
        pass
    finally:
        c.close()


def serve(host, port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_one, args=(c,), daemon=True).start()


def opt(args, name):
    return args[args.index(name) + 1] if name in args else None


def up(proxy, host, port, args):
    s = socks_connect(proxy, host, port)
    s.sendall(b"UP\n")
    path, secs = opt(args, "--file"), opt(args, "--secs")
    if path:
        with open(path, "rb") as f:
            while True:
                d = f.read(1 << 18)
                if not d:
                    break
                s.sendall(d)
    else:
        zeros, end = bytes(1 << 16), time.monotonic() + float(secs)
        while time.monotonic() < end:
            s.sendall(zeros)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(600)
    print(s.makefile("rb").readline().decode().strip())


def down(proxy, host, port, args):
    s = socks_connect(proxy, host, port)
    n, secs = opt(args, "--bytes"), opt(args, "--secs")
    t0 = time.monotonic()
    s.sendall(b"DOWN %d\n" % (int(n) if n else 0))
    # Over a time window, the time counts from the request: a first byte that came late (a
    # lost segment and a timeout) must not leave a few bytes in "0.0 s" at the deadline.
    deadline = t0 + float(secs) if secs else None
    print(recv_all(s.recv, deadline, t0 if secs else None))
    s.close()


def main(argv):
    if len(argv) >= 3 and argv[0] == "serve":
        return serve(argv[1], int(argv[2]))
    if len(argv) >= 4 and argv[0] in ("up", "down"):
        fn = up if argv[0] == "up" else down
        return fn(argv[1], argv[2], int(argv[3]), argv[4:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
