#!/usr/bin/env python3
"""Where a connect-row connection's time goes, step by step, from a loopback capture.

    tcpdump -r CAP -tt -n | bench/rr_timeline.py PROXY_PORT NODE_UDP_PORT

bench/rr_timeline.sh makes the capture and calls this once per proxy. The connect row
(bench/goref sockclient rr) runs one connection at a time, so every UDP datagram between a
client's SYN and the next client's SYN belongs to that connection. For each connection the
script finds, in order: the client's greeting (3 bytes), the proxy's method reply (2), the
client's CONNECT (10), the proxy's first datagram to the peer after it (the SYN), the peer's
answer (the SYN-ACK), the proxy's SOCKS5 reply (10), the client's GET, the proxy's datagram
with it, the peer's next datagram (its ACK), the peer's response (a datagram over 200 bytes),
the response to the client, the FIN to the client and the client's FIN. It prints, per step,
the median time since the client's SYN and the median step itself, and who the step waits
for: the client, the proxy, or the peer (wireguard-go and the service behind it).
"""
import re
import statistics
import sys

LINE = re.compile(r"^(\S+) IP 127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): (.*)$")

# (step, event, size or None or "big", who the step waits for)
STEPS = [
    ("greeting", "client>proxy", 3, "client"),
    ("method", "proxy>client", 2, "proxy"),
    ("connect", "client>proxy", 10, "client"),
    ("syn", "proxy>peer", None, "proxy"),
    ("syn_ack", "peer>proxy", None, "peer"),
    ("reply", "proxy>client", 10, "proxy"),
    ("get", "client>proxy", None, "client"),
    ("get_sent", "proxy>peer", None, "proxy"),
    ("peer_ack", "peer>proxy", None, "peer"),
    ("response", "peer>proxy", "big", "peer"),
    ("to_client", "proxy>client", None, "proxy"),
    ("fin", "proxy>clientF", None, "proxy"),
    ("client_fin", "client>proxyF", None, "client"),
]


def events(lines, proxy, udp):
    """Yields one list of (time, event, size) per connection, starting with its SYN."""
    conn = None
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        t, src, dst, rest = float(m[1]), m[2], m[3], m[4]
        if rest.startswith("UDP"):
            if conn is not None and udp in (src, dst):
                size = int(rest.rsplit("length ", 1)[1])
                conn["ev"].append((t, "proxy>peer" if src == udp else "peer>proxy", size))
            continue
        if dst == proxy and "Flags [S]" in rest:
            if conn:
                yield conn["ev"]
            conn = {"port": src, "ev": [(t, "syn_client", 0)]}
            continue
        if conn is None or conn["port"] not in (src, dst) or proxy not in (src, dst):
            continue
        flags = re.search(r"Flags \[([^\]]*)\]", rest)[1]
        size = int(m2[1]) if (m2 := re.search(r"length (\d+)", rest)) else 0
        name = "client>proxy" if dst == proxy else "proxy>client"
        if "F" in flags:
            conn["ev"].append((t, name + "F", size))
        elif size:
            conn["ev"].append((t, name, size))
    if conn:
        yield conn["ev"]


def matches(ev, name, size):
    if ev[1] != name:
        return False
    return size is None or (size == "big" and ev[2] > 200) or ev[2] == size


def steps(ev):
    """Times since the SYN, one per step, or None when the connection lacks one."""
    t0, out, i = ev[0][0], [], 0
    for _, name, size, _ in STEPS:
        while i < len(ev) and not matches(ev[i], name, size):
            i += 1
        if i == len(ev):
            return None
        out.append(ev[i][0] - t0)
        i += 1
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: tcpdump -r CAP -tt -n | rr_timeline.py PROXY_PORT NODE_UDP_PORT")
    conns = list(events(sys.stdin, sys.argv[1], sys.argv[2]))
    rows = [s for s in (steps(e) for e in conns[50:]) if s]  # the first 50: warm-up
    if not rows:
        sys.exit(f"rr_timeline: no complete connection among {len(conns)}")
    print(f"connections {len(conns)}, complete after the first 50: {len(rows)}")
    waits = {}
    for k, (name, _, _, who) in enumerate(STEPS):
        at = statistics.median(r[k] for r in rows) * 1e6
        step = statistics.median(r[k] - (r[k - 1] if k else 0) for r in rows) * 1e6
        waits[who] = waits.get(who, 0) + step
        print(f"  {name:11s} at {at:6.0f} us   step {step:5.0f} us   ({who})")
    print("  median steps by who they wait for: " +
          ", ".join(f"{w} {v:.0f} us" for w, v in waits.items()))


if __name__ == "__main__":
    main()
