#!/usr/bin/env python3
"""UDP test helper: an echo server, a plain client and a SOCKS5 UDP ASSOCIATE client (RFC 1928
section 7), each checking random payloads byte for byte. Exits non-zero on any mismatch.

  udp_probe.py serve ADDR PORT                     echo every datagram back to its sender
  udp_probe.py send HOST PORT [--refused]          payloads out, echoes back (or ICMP refusal)
  udp_probe.py quiet HOST PORT SECONDS             one echo, prints "ready", then fails if
                                                   anything else arrives within SECONDS
  udp_probe.py socks5 PROXY_HOST PROXY_PORT TARGET...
      TARGET is HOST:PORT (HOST an IPv4 address, [IPv6] or a name); every target is echoed
      through one association, then the RFC's edge cases are checked against the first.
"""
import os
import socket
import struct
import sys

SIZES = (1, 100, 1000, 1300)
TRIES = 5


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def serve(addr, port):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)


def exchange(sock, send, payload):
    """send(payload) until an answer comes; returns the raw answer."""
    for _ in range(TRIES):
        send(payload)
        try:
            return sock.recv(65535)
        except socket.timeout:
            continue
    fail("no answer after %d tries (%d bytes)" % (TRIES, len(payload)))


def send(host, port, refused=False):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    s.connect((host, port))
    if refused:
        for _ in range(TRIES):
            s.send(b"anyone there?")
            try:
                s.recv(65535)
                fail("%s:%d answered; it should refuse" % (host, port))
            except ConnectionRefusedError:
                print("refused as expected: %s:%d" % (host, port))
                return
            except socket.timeout:
                continue
        fail("%s:%d neither answered nor refused" % (host, port))
    for size in SIZES:
        payload = os.urandom(size)
        if exchange(s, s.send, payload) != payload:
            fail("echo differs for %d bytes via %s:%d" % (size, host, port))
    print("ok: %d payloads echoed via %s:%d" % (len(SIZES), host, port))


def quiet(host, port, seconds):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    s.connect((host, port))
    if exchange(s, s.send, b"open") != b"open":
        fail("no echo from %s:%d" % (host, port))
    print("ready", flush=True)
    s.settimeout(seconds)
    try:
        data = s.recv(65535)
        fail("an unexpected datagram arrived: %r" % data[:40])
    except socket.timeout:
        print("ok: nothing but the echo arrived")


def parse_target(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def socks_addr(host, port):
    for fam, atyp in ((socket.AF_INET, 1), (socket.AF_INET6, 4)):
        try:
            return bytes([atyp]) + socket.inet_pton(fam, host) + struct.pack("!H", port)
        except OSError:
            pass
    name = host.encode()
    return bytes([3, len(name)]) + name + struct.pack("!H", port)


def read_addr(buf, off):
    """(host, port, next offset) of a SOCKS5 address at buf[off]."""
    atyp = buf[off]
    if atyp == 1:
        host, off = socket.inet_ntop(socket.AF_INET, buf[off + 1:off + 5]), off + 5
    elif atyp == 4:
        host, off = socket.inet_ntop(socket.AF_INET6, buf[off + 1:off + 17]), off + 17
    elif atyp == 3:
        n = buf[off + 1]
        host, off = buf[off + 2:off + 2 + n].decode(), off + 2 + n
    else:
        fail("bad ATYP %d" % atyp)
    return host, struct.unpack("!H", buf[off:off + 2])[0], off + 2


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            fail("proxy closed the control connection")
        data += chunk
    return data


def associate(proxy, udp):
    """Opens the control connection and returns (tcp, relay address)."""
    tcp = socket.create_connection(proxy, timeout=5)
    tcp.sendall(b"\x05\x01\x00")
    if recv_exact(tcp, 2) != b"\x05\x00":
        fail("method negotiation")
    # DST.ADDR/DST.PORT: where our datagrams will come from.
    tcp.sendall(b"\x05\x03\x00" + socks_addr("127.0.0.1", udp.getsockname()[1]))
    head = recv_exact(tcp, 4)
    if head[1] != 0:
        fail("UDP ASSOCIATE refused with reply 0x%02x" % head[1])
    rest = recv_exact(tcp, {1: 6, 4: 18}[head[3]])
    host, port, _ = read_addr(head[3:4] + rest, 0)
    return tcp, (host, port)


def check_target(udp, relay, target):
    host, port = target
    for size in SIZES:
        payload = os.urandom(size)
        packet = b"\x00\x00\x00" + socks_addr(host, port) + payload
        answer = exchange(udp, lambda p: udp.sendto(packet, relay), payload)
        if answer[:3] != b"\x00\x00\x00":
            fail("bad reply header")
        src, sport, off = read_addr(answer, 3)
        if answer[off:] != payload:
            fail("echo differs for %d bytes via %s:%d" % (size, host, port))
        if sport != port:
            fail("reply from port %d, want %d" % (sport, port))
    print("ok: %d payloads echoed via %s:%d (replies from %s)" % (len(SIZES), host, port, src))


def silent(sock, send, what):
    sock.settimeout(1.0)
    send()
    try:
        sock.recv(65535)
        fail(what + " was answered")
    except socket.timeout:
        print("ok: " + what + " dropped")


def socks5(proxy_host, proxy_port, targets):
    proxy = (proxy_host, proxy_port)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(1.0)
    tcp, relay = associate(proxy, udp)
    for t in targets:
        check_target(udp, relay, t)
    host, port = targets[0]
    frag = b"\x00\x00\x01" + socks_addr(host, port) + b"fragment"
    silent(udp, lambda: udp.sendto(frag, relay), "a fragment (FRAG=1)")
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    packet = b"\x00\x00\x00" + socks_addr(host, port) + b"stranger"
    silent(other, lambda: other.sendto(packet, relay), "a datagram from another port than DST.PORT")
    # The association dies with its control connection.
    tcp.close()
    udp.settimeout(1.0)
    for _ in range(TRIES):
        try:
            udp.sendto(b"\x00\x00\x00" + socks_addr(host, port) + b"late", relay)
            udp.recv(65535)
        except (socket.timeout, ConnectionRefusedError):
            print("ok: association closed with its TCP connection")
            return
    fail("the association outlived its TCP connection")


def main(argv):
    if len(argv) >= 3 and argv[0] == "serve":
        serve(argv[1], int(argv[2]))
    elif len(argv) >= 3 and argv[0] == "send":
        send(argv[1], int(argv[2]), refused="--refused" in argv[3:])
    elif len(argv) >= 4 and argv[0] == "quiet":
        quiet(argv[1], int(argv[2]), float(argv[3]))
    elif len(argv) >= 4 and argv[0] == "socks5":
        socks5(argv[1], int(argv[2]), [parse_target(t) for t in argv[3:]])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
