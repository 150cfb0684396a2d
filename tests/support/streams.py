#!/usr/bin/env python3
"""Stream helpers for the lifecycle integration tests (sigterm, conns).

  streams.py serve HOST PORT               endless sender: 1 KiB every 20 ms to each client
  streams.py hold HOST PORT                accepts and reads, never sends
  streams.py read OUT HOST PORT [T_HOST T_PORT]
                                           connects (through the SOCKS5 proxy HOST:PORT when a
                                           target is given), reads until the end and writes to
                                           OUT how the stream ended: "reset", "eof" or "error ..."
  streams.py many OUT N HOST PORT          N connections held open (reading); OUT gets one line
                                           per connection as it ends ("reset" / "eof" / ...)
"""
import socket
import struct
import sys
import threading
import time


def serve(host, port, send):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(512)

    def one(c):
        try:
            while True:
                if send:
                    c.sendall(b"x" * 1024)
                    time.sleep(0.02)
                elif not c.recv(65536):
                    break
        except OSError:
            pass
        c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def connect(host, port, target=None):
    s = socket.create_connection((host, port), timeout=10)
    if target:
        thost, tport = target
        s.sendall(b"\x05\x01\x00")
        if s.recv(2) != b"\x05\x00":
            raise OSError("socks5 greeting refused")
        addr = socket.inet_aton(thost)
        s.sendall(b"\x05\x01\x00\x01" + addr + struct.pack(">H", tport))
        rep = b""
        while len(rep) < 10:
            chunk = s.recv(10 - len(rep))
            if not chunk:
                raise OSError("socks5 reply cut")
            rep += chunk
        if rep[1] != 0:
            raise OSError("socks5 reply %d" % rep[1])
    s.settimeout(120)
    return s


def outcome(s):
    try:
        while True:
            if not s.recv(65536):
                return "eof"
    except ConnectionResetError:
        return "reset"
    except OSError as e:
        return "error %s" % e


def read(out, host, port, target):
    try:
        s = connect(host, port, target)
        with open(out + ".up", "w") as f:
            f.write("up\n")
        res = outcome(s)
    except OSError as e:
        res = "error %s" % e
    with open(out, "w") as f:
        f.write(res + "\n")


def many(out, n, host, port):
    lock = threading.Lock()
    socks = []
    for _ in range(n):
        socks.append(connect(host, port))
    with open(out + ".up", "w") as f:
        f.write("%d\n" % len(socks))

    def one(s):
        res = outcome(s)
        with lock, open(out, "a") as f:
            f.write(res + "\n")

    ts = [threading.Thread(target=one, args=(s,)) for s in socks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def main():
    cmd = sys.argv[1]
    if cmd in ("serve", "hold"):
        serve(sys.argv[2], int(sys.argv[3]), cmd == "serve")
    elif cmd == "read":
        target = (sys.argv[5], int(sys.argv[6])) if len(sys.argv) > 6 else None
        read(sys.argv[2], sys.argv[3], int(sys.argv[4]), target)
    elif cmd == "many":
        many(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
