#!/usr/bin/env python3
"""Pipelined DNS over TCP (RFC 7766): sends every query in one write, reads one reply each,
checks each is a NOERROR answer with exactly one record. Exits non-zero otherwise.

  dns_pipeline.py HOST PORT NAME[/TYPE] ... [--order] [--fin]
    TYPE is a number (default 1 = A); query i gets id 0x1111 * (i + 1)
    --order  replies must come in the reverse order of the queries (the later, local answer
             must not wait for the earlier, forwarded one)
    --fin    after the replies, our FIN must be answered by the server closing
"""
import socket
import struct
import sys


def query(qid, name, qtype):
    msg = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        msg += bytes([len(label)]) + label.encode()
    return msg + b"\0" + struct.pack(">HH", qtype, 1)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            sys.exit("EOF before the reply")
        data += chunk
    return data


def main(argv):
    flags = {a for a in argv if a.startswith("--")}
    args = [a for a in argv if not a.startswith("--")]
    if len(args) < 3:
        sys.exit(__doc__)
    host, port, names = args[0], int(args[1]), args[2:]
    out, ids = b"", []
    for i, spec in enumerate(names):
        name, _, qtype = spec.partition("/")
        q = query(0x1111 * (i + 1), name, int(qtype or 1))
        out += struct.pack(">H", len(q)) + q
        ids.append(0x1111 * (i + 1))
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(out)
    got = []
    for _ in names:
        n, = struct.unpack(">H", recv_exact(s, 2))
        r = recv_exact(s, n)
        qid, fl, _qd, an = struct.unpack(">HHHH", r[:8])
        assert fl & 0x8000 and (fl & 15) == 0 and an == 1, (hex(qid), hex(fl), an)
        got.append(qid)
    if "--order" in flags:
        assert got == ids[::-1], [hex(i) for i in got]
    else:
        assert sorted(got) == ids, [hex(i) for i in got]
    if "--fin" in flags:
        s.shutdown(socket.SHUT_WR)
        assert s.recv(10) == b"", "the server did not close after our FIN"
    print("pipelined ok: %d replies" % len(got))


if __name__ == "__main__":
    main(sys.argv[1:])
