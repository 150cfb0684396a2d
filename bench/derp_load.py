#!/usr/bin/env python3
"""Throughput of one `tunless derp` server: N pairs of clients, each sender pushing 1400-byte
packets to its receiver as fast as the server takes them, for a few seconds. Senders run in
this process, receivers in a forked child, so the load generator has both sides' CPU.
Prints delivered packets/s, payload Mbit/s, drops the server counted, and server CPU/RSS.

    bench/derp_load.py --port 34390 --pid PID --pairs 1
    bench/derp_load.py --direct --pairs 1      # the same bytes over plain loopback TCP
"""
import argparse
import os
import selectors
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
from derp_client import SEND_PACKET, DerpClient, frame, metrics  # noqa: E402

PKT = 1400
FRAME_OUT = 5 + 32 + PKT  # SendPacket / RecvPacket on the wire


def proc_stats(pid):
    if not pid:
        return 0, 0.0
    with open("/proc/%d/status" % pid) as f:
        rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def receive(socks, until, wfd):
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    buf = bytearray(1 << 20)
    total = 0
    while time.monotonic() < until:
        for key, _ in sel.select(timeout=0.2):
            try:
                total += key.fileobj.recv_into(buf)
            except BlockingIOError:
                pass
    os.write(wfd, struct.pack(">Q", total))
    os._exit(0)


def send(socks, blob, until, pps=0):
    return send_many(socks, [blob] * len(socks), until, pps)


def direct_pairs(n):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(n)
    out, inn = [], []
    for _ in range(n):
        out.append(socket.create_connection(lst.getsockname()))
        inn.append(lst.accept()[0])
    return out, inn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=34390)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--pairs", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--direct", action="store_true")
    ap.add_argument("--pps", type=int, default=0, help="offered packets/s in all (0: as fast as possible)")
    a = ap.parse_args()
    if a.direct:
        senders, receivers = direct_pairs(a.pairs)
        blobs = [frame(SEND_PACKET, bytes(32) + b"d" * PKT) * 700]
    else:
        rx = [DerpClient("127.0.0.1", a.port) for _ in range(a.pairs)]
        tx = [DerpClient("127.0.0.1", a.port) for _ in range(a.pairs)]
        senders, receivers = [c.sock for c in tx], [c.sock for c in rx]
        m0 = metrics("127.0.0.1", a.port)
        blobs = [frame(SEND_PACKET, r.pub + b"d" * PKT) * 700 for r in rx]
    rss0, cpu0 = proc_stats(a.pid)
    start = time.monotonic() + 0.2
    until = start + a.seconds
    r, w = os.pipe()
    if os.fork() == 0:
        receive(receivers, until + 0.5, w)
    while time.monotonic() < start:
        pass
    # One blob per sender; all senders share one loop (each its own offset).
    sel_socks = senders
    if len(blobs) == 1:
        sent = send(sel_socks, blobs[0], until, a.pps)
    else:
        sent = send_many(sel_socks, blobs, until, a.pps)
    got = struct.unpack(">Q", os.read(r, 8))[0]
    os.wait()
    rss1, cpu1 = proc_stats(a.pid)
    load = os.getloadavg()[0]
    pkts = got // FRAME_OUT
    line = "offered_pps=%s pairs=%d seconds=%.1f sent_pkts=%d delivered_pkts=%d pps=%.0f mbit_s=%.0f" % (
        a.pps or "max", a.pairs, a.seconds, sent // FRAME_OUT, pkts, pkts / a.seconds,
        pkts * PKT * 8 / a.seconds / 1e6)
    for s in senders + receivers:
        s.close()
    if not a.direct:
        m = metrics("127.0.0.1", a.port, timeout=60)
        drops = sum(m[k] - m0[k] for k in m if k.startswith("derp_dropped_"))
        line += " dropped_counted=%d server_cpu_s=%.2f server_rss_kb=%d" % (drops, cpu1 - cpu0, rss1)
    print(("direct-tcp " if a.direct else "derp ") + line + " loadavg=%.1f" % load, flush=True)


def send_many(socks, blobs, until, pps=0):
    """Each socket sends its blob round and round; with pps, the senders together keep to
    that many packets per second (each its share), in bursts of at most 1 ms."""
    sel = selectors.DefaultSelector()
    for s, b in zip(socks, blobs):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_WRITE, [memoryview(b), 0, 0])
    share = pps * FRAME_OUT / len(socks) if pps else 0
    t0 = time.monotonic()
    sent = 0
    while True:
        now = time.monotonic()
        if now >= until:
            break
        allowed = int((now - t0 + 0.001) * share) if share else 1 << 62
        for key, _ in sel.select(timeout=0.001 if share else 0.2):
            view, off, done = key.data
            room = allowed - done
            if room <= 0:
                continue
            end = min(len(view), off + room)
            try:
                n = key.fileobj.send(view[off:end])
            except BlockingIOError:
                continue
            sent += n
            key.data[1] = (off + n) % len(view)
            key.data[2] = done + n
    return sent


if __name__ == "__main__":
    main()
