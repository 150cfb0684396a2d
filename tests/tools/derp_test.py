#!/usr/bin/env python3
"""Scenarios against running `tunless derp` servers, driven by tests/integration/test_derp.sh.
Each subcommand exits non-zero with a message on the first failed check."""
import argparse
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from derp_client import (CLIENT_INFO, FORWARD_PACKET, HEALTH, PEER_GONE, PING, PONG,  # noqa: E402
                         RESTARTING, SEND_PACKET, KEEP_ALIVE, CLOSE_PEER, PEER_PRESENT, WATCH_CONNS, NOTE_PREFERRED, Closed,
                         DerpClient, frame, metrics)
from nacl.public import PrivateKey  # noqa: E402

H = "127.0.0.1"


def check(cond, what):
    if not cond:
        print("FAIL:", what, flush=True)
        sys.exit(1)
    print("ok:", what, flush=True)


def wait_for(fn, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if fn():
            return check(True, what)
        time.sleep(0.1)
    check(False, what)


def closed_soon(c, what):
    try:
        c.wait_closed()
        check(True, what)
    except TimeoutError:
        check(False, what + " (not closed)")


def basic(a):
    p = a.port
    m0 = metrics(H, p)
    x, y = DerpClient(H, p), DerpClient(H, p)
    check(x.server_info.get("version") == 2, "login: ServerInfo says version 2")
    x.send_packet(y.pub, b"hello y")
    check(y.recv_packet() == (x.pub, b"hello y"), "SendPacket arrives as RecvPacket with the source")
    y.send_packet(x.pub, b"\x00" * 1400)
    check(x.recv_packet() == (y.pub, b"\x00" * 1400), "and back, 1400 bytes")
    check(x.ping(b"abcdefgh"), "Ping is answered with Pong")
    fast = DerpClient(H, p, fast_start=True, server_key=x.server_key)
    check(fast.upgrade_headers is None and fast.server_info["version"] == 2,
          "fast start: frames at once, no 101")
    fast.send_packet(x.pub, b"fast")
    check(x.recv_packet() == (fast.pub, b"fast"), "fast-start client sends")
    # Unknown frame types are skipped by their length, small and big.
    x.send_raw(frame(0x7F, b"u" * 100) + frame(0x30, b"v" * 300000) + frame(PING, b"after-un"))
    check(x.expect(PONG) == b"after-un", "unknown frame types skipped, connection alive")
    x.send_frame(NOTE_PREFERRED, b"\x01")
    x.send_packet(bytes(32), b"nobody")
    check(x.ping(), "still alive after a packet to an unknown key")
    m = metrics(H, p)
    check(m["derp_unknown_frames_total"] - m0["derp_unknown_frames_total"] >= 2,
          "unknown frames counted")
    check(m["derp_dropped_unknown_dest_total"] > m0["derp_dropped_unknown_dest_total"],
          "packet to an unknown key dropped and counted")
    check(m["derp_home_clients"] >= 1, "NotePreferred recorded")
    # PeerGone: x sent to y; when x leaves, y hears it.
    x.close()
    t, payload = y.recv_frame()
    check(t == PEER_GONE and payload[:32] == x.pub and payload[32:] in (b"", b"\x00"),
          "PeerGone (reason disconnected) to a client the leaver sent to")
    # Duplicate key: the newer wins, the older gets Health, then is closed when it sends.
    y2 = DerpClient(H, p, key=y.key)
    t, payload = y.recv_frame()
    check(t == HEALTH and len(payload) > 0, "older connection of a duplicate key gets Health")
    fast.send_packet(y.pub, b"to-newest")
    check(y2.recv_packet() == (fast.pub, b"to-newest"), "the newer connection receives")
    y.send_frame(PING, b"12345678")
    closed_soon(y, "the replaced connection is closed when it keeps sending")
    check(metrics(H, p)["derp_clients_replaced_total"] > m0["derp_clients_replaced_total"],
          "replacement counted")
    y2.close()
    fast.close()


def bad(a):
    p = a.port
    m0 = metrics(H, p)
    # A ClientInfo whose box does not open.
    c = DerpClient(H, p, login=False)
    payload = c.expect(0x01)
    c.server_key = payload[8:40]
    good = c.client_info_payload({"version": 2})
    c.send_frame(CLIENT_INFO, good[:60] + bytes([good[60] ^ 1]) + good[61:])
    closed_soon(c, "a ClientInfo that does not open closes the connection")
    # Wrong version.
    c = DerpClient(H, p, login=False)
    c.server_key = c.expect(0x01)[8:40]
    c.send_frame(CLIENT_INFO, c.client_info_payload({"version": 1}))
    closed_soon(c, "a ClientInfo with version 1 closes the connection")
    # Over-size ClientInfo: refused from its header.
    c = DerpClient(H, p, login=False)
    c.expect(0x01)
    c.send_raw(struct.pack(">BI", CLIENT_INFO, 300 * 1024) + b"x" * 1000)
    closed_soon(c, "an over-size ClientInfo closes the connection")
    # An unknown frame type before the login: derper closes; so do we.
    c = DerpClient(H, p, login=False)
    c.expect(0x01)
    c.send_frame(0x7F, b"x" * 10)
    closed_soon(c, "an unknown frame before ClientInfo closes the connection")
    # Out of order: a SendPacket before logging in.
    c = DerpClient(H, p, login=False)
    c.expect(0x01)
    c.send_frame(SEND_PACKET, bytes(40))
    closed_soon(c, "a frame before ClientInfo closes the connection")
    # A mesh frame from a client without the mesh key.
    c = DerpClient(H, p)
    c.send_frame(WATCH_CONNS)
    closed_soon(c, "WatchConns from a non-mesh client closes it")
    c = DerpClient(H, p)
    c.send_frame(FORWARD_PACKET, bytes(70))
    closed_soon(c, "ForwardPacket from a non-mesh client closes it")
    c = DerpClient(H, p)
    c.send_frame(CLOSE_PEER, bytes(32))
    closed_soon(c, "ClosePeer from a non-mesh client closes it")
    # Short and over-size frames after login.
    c = DerpClient(H, p)
    c.send_frame(SEND_PACKET, bytes(10))
    closed_soon(c, "a short SendPacket closes the connection")
    c = DerpClient(H, p)
    c.send_raw(struct.pack(">BI", SEND_PACKET, 70000 + 32))
    closed_soon(c, "an over-size SendPacket closes the connection")
    # A client that never finishes the login (server runs with --login-timeout 1500).
    c = DerpClient(H, p, login=False, timeout=6)
    t0 = time.monotonic()
    c.expect(0x01)
    closed_soon(c, "a client that never logs in is closed")
    check(time.monotonic() - t0 < 5, "within the login deadline")
    raw = socket.create_connection((H, p))
    raw.sendall(b"GET /nothing HTTP/1.1\r\n\r\n")
    check(raw.recv(100).startswith(b"HTTP/1.1 404"), "anything else is 404")
    raw = socket.create_connection((H, p))
    raw.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
    check(raw.recv(200).startswith(b"HTTP/1.1 200"), "/healthz answers 200")
    raw = socket.create_connection((H, p))
    raw.sendall(b"\x16\x03\x01garbage\r\n\r\n")
    check(raw.recv(100).startswith(b"HTTP/1.1 400"), "garbage gets 400")
    m = metrics(H, p)
    for name in ("login_bad_box", "login_bad_version", "login_too_large", "login_bad_frame",
                 "mesh_denied", "bad_frames", "frames_too_large", "login_timeouts", "http_bad"):
        key = "derp_%s_total" % name
        check(m[key] > m0[key], "counted: " + key)
    # The server still serves others.
    x, y = DerpClient(H, p), DerpClient(H, p)
    x.send_packet(y.pub, b"still")
    check(y.recv_packet() == (x.pub, b"still"), "others unaffected")


def slow(a):
    """A client that never reads is dropped by the write timeout; its queue drops the oldest."""
    p = a.port
    m0 = metrics(H, p)
    sink = DerpClient(H, p)
    sink.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    src = DerpClient(H, p)
    blob = frame(SEND_PACKET, sink.pub + b"s" * 60000)
    t0 = time.monotonic()
    try:
        for _ in range(400):
            src.send_raw(blob)
    except OSError:
        pass
    check(src.ping(), "the sender is never blocked by a slow receiver")
    wait_for(lambda: metrics(H, p)["derp_write_timeouts_total"] > m0["derp_write_timeouts_total"],
             "a client that does not read is dropped (write timeout)")
    m = metrics(H, p)
    check(m["derp_dropped_queue_head_total"] > m0["derp_dropped_queue_head_total"],
          "full queue drops the oldest, counted")
    check(time.monotonic() - t0 < 15, "bounded in time")


def restarting(a):
    x = DerpClient(H, a.port)
    x.ping()
    os.kill(a.pid, signal.SIGTERM)
    seen = x.wait_closed()
    rs = [pl for t, pl in seen if t == RESTARTING]
    check(len(rs) == 1, "SIGTERM: Restarting sent before the close")
    reconnect, try_for = struct.unpack(">II", rs[0])
    check((reconnect, try_for) == (a.reconnect, a.try_for),
          "Restarting carries the hints (%d ms, %d ms)" % (reconnect, try_for))


def verify(a):
    p = a.port
    allowed = [PrivateKey(bytes.fromhex(h)) for h in a.keys.split(",")]
    m0 = metrics(H, p)
    c = DerpClient(H, p, login=False)
    c.server_key = c.expect(0x01)[8:40]
    c.send_frame(CLIENT_INFO, c.client_info_payload({"version": 2}))
    seen = c.wait_closed()
    check(any(t == HEALTH and b"not allowed" in pl for t, pl in seen),
          "verify-clients: an unknown key is closed with a reason")
    check(metrics(H, p)["derp_login_refused_verify_total"] > m0["derp_login_refused_verify_total"],
          "refusal counted")
    x = DerpClient(H, p, key=allowed[0])
    y = DerpClient(H, p, key=allowed[1])
    si = x.server_info
    check(si.get("tokenBucketBytesPerSecond") == a.rate and si.get("tokenBucketBytesBurst") == a.rate,
          "ServerInfo announces the rate limit %r" % si)
    # Applied: a.rate bytes/s per client, so 4 x rate takes ~3 s past the burst.
    n, size = 0, 1000
    total = 4 * a.rate
    t0 = time.monotonic()
    y.timeout = 20
    data = frame(SEND_PACKET, y.pub + b"r" * size) * (total // (size + 37))
    x.send_raw(data)
    got = 0
    while got < total // (size + 37):
        y.recv_packet()
        got += 1
    el = time.monotonic() - t0
    check(el >= 2.0, "rate limit applied: %d bytes took %.1f s" % (len(data), el))
    check(metrics(H, p)["derp_rate_limited_total"] > 0, "rate limiting counted")
    del n


def verify_reload(a):
    key = PrivateKey(bytes.fromhex(a.keys))
    c = DerpClient(H, a.port, key=key)
    check(c.server_info["version"] == 2, "after SIGHUP a newly listed key logs in")
    # This server runs with --keepalive 500.
    t, _ = c.recv_frame(skip_keepalive=False)
    check(t == KEEP_ALIVE, "KeepAlive sent on its period")


def cap(a):
    """--max-clients 2: the third client is refused with a reason, and counted."""
    k = [PrivateKey(bytes.fromhex(h)) for h in a.keys.split(",")]
    m0 = metrics(H, a.port)
    x, y = DerpClient(H, a.port, key=k[0]), DerpClient(H, a.port, key=k[1])
    z = DerpClient(H, a.port, key=k[2], login=False)
    z.server_key = z.expect(0x01)[8:40]
    z.send_frame(CLIENT_INFO, z.client_info_payload({"version": 2}))
    seen = z.wait_closed()
    check(any(t == HEALTH and b"full" in pl for t, pl in seen), "over --max-clients: closed with a reason")
    check(metrics(H, a.port)["derp_clients_refused_cap_total"] > m0["derp_clients_refused_cap_total"],
          "cap counted")
    check(x.ping() and y.ping(), "the clients within the cap are served")


def mesh(a):
    p1, p2 = a.port, a.port2
    wait_for(lambda: metrics(H, p1)["derp_watchers"] >= 1 and metrics(H, p2)["derp_watchers"] >= 1,
             "meshed servers watch each other")
    x = DerpClient(H, p1)
    y = DerpClient(H, p2)
    wait_for(lambda: metrics(H, p1)["derp_remote_clients"] >= 1, "server 1 learns of server 2's client")
    y.send_packet(x.pub, b"from-b")
    check(x.recv_packet() == (y.pub, b"from-b"), "a client on B reaches a client on A")
    x.send_packet(y.pub, b"from-a")
    check(y.recv_packet() == (x.pub, b"from-a"), "and back")
    check(metrics(H, p1)["derp_forwarded_out_total"] >= 1, "ForwardPacket counted")
    # A client holding the mesh key may watch and close peers; others may not (test "bad").
    w = DerpClient(H, p1, mesh_key=a.mesh_key)
    w.send_frame(WATCH_CONNS)
    present = set()
    while x.pub not in present:
        t, pl = w.recv_frame()
        if t == PEER_PRESENT:
            present.add(pl[:32])
    check(True, "WatchConns with the mesh key: PeerPresent for connected clients")
    z = DerpClient(H, p1)
    w.send_frame(CLOSE_PEER, z.pub)
    closed_soon(z, "ClosePeer from a mesh client closes the target")
    t, pl = w.recv_frame()
    while t == PEER_PRESENT:
        t, pl = w.recv_frame()
    check(t == PEER_GONE and pl[:32] == z.pub, "the watcher hears PeerPresent, then PeerGone")
    w.close()
    with open(a.keyfile, "w") as f:
        f.write(x.key.encode().hex())
    os.kill(a.pid2, signal.SIGKILL)
    t, payload = x.recv_frame()
    check(t == PEER_GONE and payload[:32] == y.pub, "killing server B yields PeerGone on A")


def mesh_again(a):
    x = DerpClient(H, a.port, key=PrivateKey(bytes.fromhex(open(a.keyfile).read())))
    y = DerpClient(H, a.port2)
    wait_for(lambda: metrics(H, a.port)["derp_remote_clients"] >= 1, "mesh back after B restarts", 15)
    y.send_packet(x.pub, b"again")
    check(x.recv_packet() == (y.pub, b"again"), "packets cross the mesh again")


def tls(a):
    x = DerpClient(H, a.port, tls=True, cafile=a.ca)
    y = DerpClient(H, a.port, tls=True, cafile=a.ca, fast_start=True, server_key=x.server_key)
    x.send_packet(y.pub, b"tls")
    check(y.recv_packet() == (x.pub, b"tls"), "over TLS: login, fast start, packets")
    m = metrics(H, a.port, tls=True, cafile=a.ca)
    check(m["derp_logins_total"] >= 2, "/metrics over TLS")
    if a.pid:
        os.kill(a.pid, signal.SIGHUP)
        time.sleep(0.5)
        y.send_packet(x.pub, b"after-hup")
        check(x.recv_packet() == (y.pub, b"after-hup"), "SIGHUP reload keeps TLS clients")


def mesh_tls(a):
    """Two TLS servers meshed over https (self-signed: --mesh-insecure)."""
    p1, p2 = a.port, a.port2
    m = lambda p: metrics(H, p, tls=True, cafile=a.ca)  # noqa: E731
    wait_for(lambda: m(p1)["derp_watchers"] >= 1 and m(p2)["derp_watchers"] >= 1,
             "TLS servers mesh over https")
    x = DerpClient(H, p1, tls=True, cafile=a.ca)
    y = DerpClient(H, p2, tls=True, cafile=a.ca)
    wait_for(lambda: m(p2)["derp_remote_clients"] >= 1, "the https mesh reports clients")
    y.send_packet(x.pub, b"over-https-mesh")
    check(x.recv_packet() == (y.pub, b"over-https-mesh"), "a packet crosses the https mesh")


def stun(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((H, 0))
    s.settimeout(3)
    txid = os.urandom(12)
    s.sendto(struct.pack(">HHI", 1, 0, 0x2112A442) + txid, (H, a.port))
    data, _ = s.recvfrom(512)
    mtype, mlen, cookie = struct.unpack(">HHI", data[:8])
    check(mtype == 0x0101 and cookie == 0x2112A442 and data[8:20] == txid,
          "STUN binding success with our transaction id")
    attrs, found = data[20:20 + mlen], None
    while len(attrs) >= 4:
        at, al = struct.unpack(">HH", attrs[:4])
        if at == 0x0020:
            fam, xport = struct.unpack(">xBH", attrs[4:8])
            port = xport ^ 0x2112
            ip = bytes(b ^ c for b, c in zip(attrs[8:12], struct.pack(">I", 0x2112A442)))
            found = (socket.inet_ntoa(ip), port)
        attrs = attrs[4 + ((al + 3) & ~3):]
    check(found == s.getsockname(), "XOR-MAPPED-ADDRESS is our address %r" % (found,))
    s.sendto(b"not stun at all", (H, a.port))
    s.sendto(struct.pack(">HHI", 0x0111, 0, 0x2112A442) + txid, (H, a.port))
    time.sleep(0.3)
    check(metrics(H, a.http_port)["derp_stun_ignored_total"] >= 2, "anything else ignored, counted")


def proc_stats(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def load(a):
    """a.clients clients on one server, in pairs, each sending a.count packets to its partner."""
    import selectors
    p, n = a.port, a.clients
    rss0, cpu0 = proc_stats(a.pid)
    t0 = time.monotonic()
    cs = [DerpClient(H, p, timeout=20) for _ in range(n)]
    t_login = time.monotonic() - t0
    rss1, _ = proc_stats(a.pid)
    m0 = metrics(H, p)
    check(m0["derp_clients"] >= n, "%d clients logged in in %.1f s" % (n, t_login))
    half = n // 2
    payload = b"L" * 1000
    for i, c in enumerate(cs):
        peer = cs[(i + half) % n]
        c.sock.setblocking(False)
        c.out = frame(SEND_PACKET, peer.pub + payload) * a.count
        c.got = 0
    sel = selectors.DefaultSelector()
    for c in cs:
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    want = n * a.count
    got = 0
    deadline = time.monotonic() + a.seconds
    t1 = time.monotonic()
    while got < want and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            if ev & selectors.EVENT_WRITE and c.out:
                try:
                    k = c.sock.send(c.out)
                    c.out = c.out[k:]
                except BlockingIOError:
                    pass
                if not c.out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                try:
                    d = c.sock.recv(262144)
                except BlockingIOError:
                    continue
                c.buf += d
                while len(c.buf) >= 5:
                    ft, ln = struct.unpack(">BI", c.buf[:5])
                    if len(c.buf) < 5 + ln:
                        break
                    if ft == 0x05:
                        c.got += 1
                        got += 1
                    c.buf = c.buf[5 + ln:]
    el = time.monotonic() - t1
    m = metrics(H, p)
    rss2, cpu2 = proc_stats(a.pid)
    dropped = sum(m[k] - m0[k] for k in m if k.startswith("derp_dropped_"))
    print("load: clients=%d packets_sent=%d delivered=%d dropped_counted=%d seconds=%.2f "
          "pps=%.0f rss_kb_idle=%d rss_kb_connected=%d rss_kb_after=%d rss_per_client_kb=%.1f "
          "cpu_s=%.2f" % (n, want, got, dropped, el, got / el if el else 0, rss0, rss1, rss2,
                          (rss1 - rss0) / n, cpu2 - cpu0), flush=True)
    check(got + dropped >= want, "every packet delivered or counted as dropped")
    check(got >= want * 0.9, "at least 90%% delivered (%d of %d)" % (got, want))
    for c in cs:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--port", type=int)
    ap.add_argument("--port2", type=int)
    ap.add_argument("--http-port", type=int)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--pid2", type=int, default=0)
    ap.add_argument("--keys", default="")
    ap.add_argument("--keyfile", default="")
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--ca", default="")
    ap.add_argument("--reconnect", type=int, default=2000)
    ap.add_argument("--try-for", type=int, default=60000)
    ap.add_argument("--mesh-key", default="test-mesh-secret")
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    globals()[a.scenario.replace("-", "_")](a)


if __name__ == "__main__":
    main()
