#!/usr/bin/env python3
"""UDP load through SOCKS5 UDP ASSOCIATE, or straight to an echo server (the client's own
ceiling). Prints round-trip percentiles and echoed throughput.

  udp_load.py --target HOST:PORT [--socks HOST:PORT] [--rr N] [--seconds S] [--size B] [--window W]
"""
import argparse
import os
import socket
import struct
import time


def socks_associate(proxy, udp):
    tcp = socket.create_connection(proxy, timeout=5)
    tcp.sendall(b"\x05\x01\x00")
    assert tcp.recv(2) == b"\x05\x00"
    port = udp.getsockname()[1]
    tcp.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", port))
    rep = tcp.recv(10)
    assert rep[1] == 0 and rep[3] == 1, rep
    return tcp, (socket.inet_ntoa(rep[4:8]), struct.unpack("!H", rep[8:10])[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--socks")
    ap.add_argument("--rr", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--size", type=int, default=1200)
    ap.add_argument("--window", type=int, default=32)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    target = (host, int(port))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(2)
    hdr, dest = b"", target
    if a.socks:
        ph, pp = a.socks.rsplit(":", 1)
        _tcp, dest = socks_associate((ph, int(pp)), udp)
        hdr = b"\x00\x00\x00\x01" + socket.inet_aton(host) + struct.pack("!H", int(port))
    hl = len(hdr)

    # Round trips, one datagram at a time.
    payload = os.urandom(64)
    rtts = []
    for _ in range(a.rr):
        t0 = time.perf_counter()
        udp.sendto(hdr + payload, dest)
        data = udp.recv(65535)
        rtts.append(time.perf_counter() - t0)
        assert data[-len(payload):] == payload
    rtts.sort()
    p = lambda q: rtts[int(q * (len(rtts) - 1))] * 1000

    # Throughput: keep a window of datagrams in flight; a lost one is replaced after a timeout.
    payload = os.urandom(a.size)
    udp.settimeout(0.2)
    got = 0
    end = time.perf_counter() + a.seconds
    inflight = 0
    start = time.perf_counter()
    while time.perf_counter() < end:
        while inflight < a.window:
            udp.sendto(hdr + payload, dest)
            inflight += 1
        try:
            data = udp.recv(65535)
            if len(data) == hl + a.size:
                got += 1
            inflight -= 1
        except socket.timeout:
            inflight = 0
    elapsed = time.perf_counter() - start
    print("rr: n=%d p50=%.3f ms p99=%.3f ms" % (a.rr, p(0.50), p(0.99)))
    print("echo: %d datagrams of %d bytes in %.1f s = %.0f pkt/s, %.1f Mbit/s each way"
          % (got, a.size, elapsed, got / elapsed, got * a.size * 8 / elapsed / 1e6))


if __name__ == "__main__":
    main()
