#!/usr/bin/env python3
"""One SOCKS5 CONNECT (no authentication) through PROXY (host:port) to HOST PORT; prints the
server's reply code (0 success, 3 network unreachable, 5 refused, 6 TTL expired...). With
--time, how long the server took to answer the request goes to stderr (connect_ms=N).
With --dns NAME, the connection then carries one DNS query over TCP (RFC 1035 4.2.2) for NAME's
A records, and the addresses of the answer are printed after the code, one a line."""
import ipaddress
import socket
import struct
import sys
import time


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def socks_connect(proxy, host, port, timed):
    phost, pport = proxy.rsplit(":", 1)
    s = socket.create_connection((phost, int(pport)), timeout=15)
    s.sendall(b"\x05\x01\x00")
    if recv_exact(s, 2) != b"\x05\x00":
        raise RuntimeError("no-auth refused")
    try:
        ip = ipaddress.ip_address(host)
        dst = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
    except ValueError:
        dst = b"\x03" + bytes([len(host)]) + host.encode()
    t0 = time.monotonic()
    s.sendall(b"\x05\x01\x00" + dst + struct.pack("!H", port))
    head = recv_exact(s, 4)
    if timed:
        print("connect_ms=%d" % ((time.monotonic() - t0) * 1000), file=sys.stderr)
    rep, atyp = head[1], head[3]
    alen = {1: 4, 4: 16}.get(atyp)
    if alen is None:
        alen = recv_exact(s, 1)[0]
    recv_exact(s, alen + 2)
    return s, rep


def dns_query(s, name):
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack("!HH", 1, 1)
    s.sendall(struct.pack("!H", len(q)) + q)
    n = struct.unpack("!H", recv_exact(s, 2))[0]
    msg = recv_exact(s, n)
    an = struct.unpack("!H", msg[6:8])[0]
    off = len(q)  # the question comes back as it was sent
    out = []
    for _ in range(an):
        if msg[off] & 0xC0 == 0xC0:
            off += 2
        else:
            while msg[off]:
                off += msg[off] + 1
            off += 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            out.append(str(ipaddress.ip_address(msg[off:off + 4])))
        off += rdlen
    return out


def main():
    args = sys.argv[1:]
    dns = None
    timed = "--time" in args
    if timed:
        args.remove("--time")
    if "--dns" in args:
        i = args.index("--dns")
        dns = args[i + 1]
        del args[i:i + 2]
    proxy, host, port = args[0], args[1], int(args[2])
    s, rep = socks_connect(proxy, host, port, timed)
    print(rep)
    if rep == 0 and dns:
        for a in dns_query(s, dns):
            print(a)
    s.close()


if __name__ == "__main__":
    main()
