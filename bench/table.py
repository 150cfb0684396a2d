#!/usr/bin/env python3
"""The README's performance table from one bench/compare_anchor.sh run's results file.

    bench/table.py RESULTS            medians, ratios, then the table in Markdown
    bench/table.py --check RESULTS    exit 1 unless every row has a number for each proxy
                                      measured (the CI smoke pass: integration.bench_smoke)

Each result line is one measurement (compare_anchor.sh and wan.sh write them); rows measured in
several rounds show their median. "anchor" in the results is the Go reference (bench/goref).
"""
import re
import statistics
import sys

XFER = re.compile(r"(tunless|anchor)\s+(download|upload)\s+(\S+) #\d+\s+([\d.]+) Mbit/s\s+"
                  r"([\d.]+) CPU s/GiB\s+RSS\s+([\d.]+) ->\s+([\d.]+) MB"
                  r"(?:\s+node2\s+([\d.]+) CPU s/GiB)?")
RR = re.compile(r"(tunless|anchor)\s+rr n=(\d+) .*p50_us=(\d+) p90_us=(\d+) p99_us=(\d+)")
IDLE = re.compile(r"(tunless|anchor)\s+RSS with (\d+) idle tunnels: (\d+) MB")
WAN = re.compile(r"(tunless|anchor)\s+wan (upload|download)\s+#\d+\s+([\d.]+) Mbit/s")
WHO = ("tunless", "anchor")


def med(values):
    return statistics.median(values) if values else None


def parse(path):
    xfer, rr, idle, wan = {}, {}, {}, {}
    for line in open(path):
        if m := XFER.match(line):
            key = (m[1], m[2], m[3])
            xfer.setdefault(key, []).append(
                tuple(float(x) if x else None for x in m.groups()[3:]))
        elif m := RR.match(line):
            rr.setdefault(m[1], []).append(
                (int(m[2]), int(m[3]) / 1000, int(m[4]) / 1000, int(m[5]) / 1000))
        elif m := IDLE.match(line):
            idle[m[1]] = (int(m[2]), int(m[3]))
        elif m := WAN.match(line):
            wan.setdefault((m[1], m[2]), []).append(float(m[3]))
    # Medians of each column over the rounds.
    xm = {k: tuple(med([r[i] for r in v if r[i] is not None]) for i in range(5))
          for k, v in xfer.items()}
    # The connect row: each percentile's median over the rounds (RR_ROUNDS).
    rm = {k: (v[0][0],) + tuple(med([r[i] for r in v]) for i in range(1, 4))
          for k, v in rr.items()}
    return xm, rm, idle, {k: med(v) for k, v in wan.items()}


def ratio(a, b, fmt="x{:.2f}"):
    return fmt.format(a / b) if a is not None and b else ""


def xfer_rows(xm, streams):
    """(label, direction, kind) of every transfer row, in the table's order."""
    rows = [("download through SOCKS5 (curl)", "download", "socks5"),
            ("upload through SOCKS5 (curl -T)", "upload", "socks5")]
    rows += [(f"{s[len('socks5-x'):]} parallel downloads through SOCKS5", "download", s)
             for s in streams]
    rows += [("download through HTTP CONNECT", "download", "http-CONNECT"),
             ("tunless to tunless: node A's SOCKS5 to a service node B publishes",
              "download", "tunless-to-tunless")]
    return rows


def table(xm, rr, idle, wan):
    streams = sorted({k[2] for k in xm if k[2].startswith("socks5-x")})
    out = ["| | tunless | Go reference | tunless / Go reference |", "| --- | --- | --- | --- |"]
    for label, d, kind in xfer_rows(xm, streams):
        t, a = xm.get(("tunless", d, kind)), xm.get(("anchor", d, kind))
        if not t and not a:
            continue
        cell = lambda x: f"{x[0]:.0f} Mbit/s, {x[1]:.1f} CPU s/GiB" if x else ""
        tc = cell(t)
        if t and t[4] is not None:
            tc = f"{t[0]:.0f} Mbit/s, {t[1]:.1f} / {t[4]:.1f} CPU s/GiB (node A / node B)"
        ac = cell(a) if a else ("(no HTTP proxy)" if kind == "http-CONNECT" else "-")
        rc = (f"throughput {ratio(t[0], a[0])}, CPU {ratio(t[1], a[1])}" if t and a else "")
        out.append(f"| {label} | {tc} | {ac} | {rc} |")
    if rr:
        n = next(iter(rr.values()))[0]
        cell = lambda x: f"p50 {x[1]:.2f} ms, p90 {x[2]:.2f} ms, p99 {x[3]:.2f} ms" if x else ""
        t, a = rr.get("tunless"), rr.get("anchor")
        out.append(f"| {n} sequential CONNECT + GET + close | {cell(t)} | {cell(a)} | "
                   f"{'p50 ' + ratio(t[1], a[1]) if t and a else ''} |")
    for d in ("download", "upload"):
        t, a = wan.get(("tunless", d)), wan.get(("anchor", d))
        if t is None and a is None:
            continue
        cell = lambda x: f"{x:.1f} Mbit/s" if x is not None else ""
        out.append(f"| 50 ms RTT, 0.5 % loss each way, {d} through SOCKS5 | {cell(t)} | "
                   f"{cell(a)} | {ratio(t, a)} |")
    if idle:
        n = next(iter(idle.values()))[0]
        t, a = idle.get("tunless"), idle.get("anchor")
        cell = lambda x: f"{x[1]} MB" if x else ""
        out.append(f"| RSS with {n:,} idle connections | {cell(t)} | {cell(a)} | "
                   f"{ratio(t[1], a[1]) if t and a else ''} |")
    rss = {}
    for who in WHO:
        runs = [v for k, v in xm.items() if k[0] == who and not k[2].startswith("tunless-")]
        if runs:
            rss[who] = (f"{min(r[2] for r in runs):.0f} / "
                        f"{min(r[3] for r in runs):.0f}-{max(r[3] for r in runs):.0f} MB")
    if rss:
        out.append(f"| RSS: after start / peak during a transfer | {rss.get('tunless', '')} | "
                   f"{rss.get('anchor', '')} | |")
    return "\n".join(out)


def summary(xm, rr, idle, wan):
    lines = []
    for (who, d, kind), v in sorted(xm.items()):
        extra = f"  node2 {v[4]:.2f} CPU s/GiB" if v[4] is not None else ""
        lines.append(f"{who:7} {d:8} {kind:20} {v[0]:8.0f} Mbit/s  {v[1]:6.2f} CPU s/GiB{extra}")
    for (who, d, kind), v in sorted(xm.items()):
        a = xm.get(("anchor", d, kind))
        if who == "tunless" and a:
            lines.append(f"ratio {d} {kind:20} throughput {ratio(v[0], a[0])}  "
                         f"CPU per GiB {ratio(v[1], a[1])}")
    for who, v in sorted(rr.items()):
        lines.append(f"{who:7} rr n={v[0]} p50 {v[1]:.2f} ms  p90 {v[2]:.2f} ms  p99 {v[3]:.2f} ms")
    for who, v in sorted(idle.items()):
        lines.append(f"{who:7} RSS with {v[0]} idle connections: {v[1]} MB")
    for (who, d), v in sorted(wan.items()):
        lines.append(f"{who:7} wan {d:8} {v:.1f} Mbit/s")
    return "\n".join(lines)


def check(xm, rr, idle, wan):
    """Every row has a number for each proxy that appears at all: positive Mbit/s, and a CPU
    figure that may be 0 (the smoke run's few MB can cost a proxy less than one clock tick)."""
    who = {k[0] for k in xm} | set(rr) | set(idle) | {k[0] for k in wan}
    missing = []
    for w in sorted(who):
        want = [(w, "download", "socks5"), (w, "upload", "socks5")]
        want += [(w, "download", k[2]) for k in xm if k[2].startswith("socks5-x")]
        if w == "tunless":
            want += [(w, "download", "http-CONNECT"), (w, "download", "tunless-to-tunless")]
        for k in want:
            v = xm.get(k)
            if not v or not v[0] or v[1] is None:
                missing.append(" ".join(k))
        if w not in rr or not rr[w][1]:
            missing.append(f"{w} rr")
        if w not in idle or not idle[w][1]:
            missing.append(f"{w} idle RSS")
        for d in ("upload", "download"):
            if not wan.get((w, d)):
                missing.append(f"{w} wan {d}")
    if not who:
        missing.append("any result")
    return missing


def main(argv):
    if len(argv) == 3 and argv[1] == "--check":
        missing = check(*parse(argv[2]))
        for m in missing:
            print(f"no number for: {m}")
        if not missing:
            print("every row has a number")
        return 1 if missing else 0
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    parsed = parse(argv[1])
    print("== medians and ratios (tunless / anchor: the Go reference)")
    print(summary(*parsed))
    print()
    print("== the README's table")
    print(table(*parsed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
