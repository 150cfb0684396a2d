#!/usr/bin/env python3
"""Connections that make a node hold memory: senders whose receiver never reads.

  mem_flood.py sink HOST PORT
      accept connections and never read from them (held until killed)
  mem_flood.py deaf HOST PORT
      listen and never accept, with the accept queue filled by its own connections: a new
      connection's SYN is dropped, so its connect waits (held until killed)
  mem_flood.py flood HOST PORT N [--mss M] [--secs S]
      open N connections (TCP_MAXSEG M, no Nagle), send on each until the receiver's window
      is shut or S seconds pass, print "conns=N sent=BYTES", then hold them until killed
  mem_flood.py stall PROXY HOST PORT N [--secs S] [--mss M]
      N SOCKS5 connections asking HOST:PORT (a socks_bulk.py server) for an endless "DOWN 0",
      never read, print "conns=N", then hold them until killed. --mss: each announces MSS M
      and the smallest receive buffer in its SYN, so the proxy's socket towards it gets a small
      send buffer (the kernel sizes it by the MSS and by the segments acknowledged) and takes
      little before writes queue in the node
  mem_flood.py drip HOST PORT BYTES [--secs S]
      one connection (no Nagle) sending 1-byte segments: a byte goes only once the one before
      it left (nothing unsent in the socket, so the kernel cannot join them), until BYTES are
      acknowledged or the window stays shut for 5 s or S seconds pass; prints
      "sent=N acked=N segs=N" (segs: segments the kernel sent, from TCP_INFO), then holds the
      connection until killed
  mem_flood.py dripserve HOST PORT BYTES [--secs S] [--prefix P] [--gap US]
      listen, print "listening", and drip (as above) on the first connection accepted: first
      P bytes at once (to fill the receiver's buffers; not counted), then each byte at least
      US microseconds after the one before (so a receiver reads them one at a time)

Every connection is nonblocking and driven by one select loop; the tool never reads data.
"""
import select
import socket
import struct
import sys
import threading
import time

CHUNK = b"\xa5" * 65536


def arg(flag, default):
    if flag in sys.argv:
        return int(sys.argv[sys.argv.index(flag) + 1])
    return default


def sink(host, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ls.bind((host, port))
    ls.listen(1024)
    held = []
    while True:
        c, _ = ls.accept()
        held.append(c)


def deaf(host, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(0)
    fillers = []
    while True:  # until a connection is no longer completed: the queue is full
        c = socket.socket()
        c.settimeout(0.5)
        try:
            c.connect((host, port))
        except socket.timeout:
            break
        fillers.append(c)
    print("queued=%d" % len(fillers))
    hold()


def hold():
    sys.stdout.flush()
    while True:
        time.sleep(3600)


def flood(host, port, n, mss, secs):
    socks, sent = [], 0
    for _ in range(n):
        s = socket.socket()
        if mss:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.settimeout(10)
        s.connect((host, port))
        s.setblocking(False)
        socks.append(s)
    deadline = time.monotonic() + secs
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        _, w, _ = select.select([], socks, [], 0.5)
        progress = 0
        for s in w:
            try:
                k = s.send(CHUNK)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                socks.remove(s)
                continue
            sent += k
            progress += k
        if progress:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > 10:
            break  # every window is shut
    print("conns=%d sent=%d" % (len(socks), sent))
    hold()


SIOCOUTQ, SIOCOUTQNSD = 0x5411, 0x894B


def queued(s, req):
    import array
    import fcntl

    buf = array.array("i", [0])
    fcntl.ioctl(s.fileno(), req, buf)
    return buf[0]


def segs_out(s):
    # struct tcp_info: tcpi_segs_out is the u32 at offset 136 (Linux 4.2+).
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, 136)[0]


def drip(host, port, total, secs):
    drip_on(socket.create_connection((host, port), timeout=10), total, secs, 0, 0)


def drip_serve(host, port, total, secs, prefix, gap_us):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    print("listening")
    sys.stdout.flush()
    s, _ = ls.accept()
    drip_on(s, total, secs, prefix, gap_us)


def drip_on(s, total, secs, prefix, gap_us):
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if prefix:
        s.sendall(b"\xa5" * prefix)
        while queued(s, SIOCOUTQ):  # acknowledged: the bytes below are counted alone
            time.sleep(0.01)
    segs0 = segs_out(s)
    sent = 0
    deadline = time.monotonic() + secs
    progress = time.monotonic()
    while time.monotonic() < deadline:
        acked = sent - queued(s, SIOCOUTQ)
        if acked >= total:
            break
        if sent < total and queued(s, SIOCOUTQNSD) == 0:
            s.send(b"\x5a")
            sent += 1
            progress = time.monotonic()
            if gap_us:
                time.sleep(gap_us / 1e6)
        elif time.monotonic() - progress > 5:
            break  # the window is shut
        else:
            time.sleep(0.0002)
    print("sent=%d acked=%d segs=%d" % (sent, sent - queued(s, SIOCOUTQ), segs_out(s) - segs0))
    hold()


def stall_one(phost, pport, host, port, socks, mss):
    if mss:
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's least
        s.settimeout(30)
        s.connect((phost, int(pport)))
    else:
        s = socket.create_connection((phost, int(pport)), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(host) + struct.pack(">H", port))
    rep = b""
    while len(rep) < 10:
        rep += s.recv(10 - len(rep))
    assert rep[1] == 0, "socks5 reply %d" % rep[1]
    s.sendall(b"DOWN 0\n")
    socks.append(s)


def stall(proxy, host, port, n, mss):
    """Opens the n connections from 16 threads at a time: the node is busy meanwhile."""
    phost, pport = proxy.rsplit(":", 1)
    socks, threads = [], []
    for i in range(n):
        t = threading.Thread(target=stall_one, args=(phost, pport, host, port, socks, mss))
        t.start()
        threads.append(t)
        if len(threads) >= 16:
            threads.pop(0).join()
    for t in threads:
        t.join()
    print("conns=%d" % len(socks))
    hold()


def main():
    cmd = sys.argv[1]
    if cmd == "sink":
        sink(sys.argv[2], int(sys.argv[3]))
    elif cmd == "flood":
        flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), arg("--mss", 0), arg("--secs", 30))
    elif cmd == "deaf":
        deaf(sys.argv[2], int(sys.argv[3]))
    elif cmd == "drip":
        drip(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), arg("--secs", 60))
    elif cmd == "dripserve":
        drip_serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), arg("--secs", 60),
                   arg("--prefix", 0), arg("--gap", 0))
    elif cmd == "stall":
        stall(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), arg("--mss", 0))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
