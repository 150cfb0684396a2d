#!/usr/bin/env python3
"""The node's log lines, read strictly as a log shipper would.

  logcheck.py check [--json] FILE [--peer KEY8=NAME]...
      every line must parse: key=value pairs separated by one space (a value bare, or quoted
      with \\" \\\\ \\n \\xHH escapes), ASCII only, no key twice, starting ts= level= [node=]
      event=; with --json each line one JSON object with ts, level and event, its values
      strings or integers. A peer is named one way everywhere: a line with peer= has peer_key=
      (and the reverse); with --peer, each line with peer_key=KEY8 says peer=NAME, and at least
      one line does. Prints each bad line and exits 1 if there is any.
  logcheck.py find [--json] FILE KEY=VALUE... [--keys K1,K2,...]
      prints the first line holding every KEY=VALUE and every key in --keys; exits 1 if none.
"""
import json
import re
import sys

KEY = re.compile(r"[a-z][a-z0-9_]*")
BARE = re.compile(r'[!#-~]+')  # printable ASCII but space and the double quote
QUOTED = re.compile(r'"(?:[ !#-\[\]-~]|\\["\\n]|\\x[0-9a-f]{2})*"')


def unescape(q):
    return re.sub(r'\\(x[0-9a-f]{2}|.)',
                  lambda m: chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == 'x' and len(m.group(1)) == 3
                  else {'n': '\n'}.get(m.group(1), m.group(1)), q[1:-1])


def parse_text(line):
    """The fields of one line, or raise ValueError saying where it breaks."""
    if not line.isascii():
        raise ValueError("not ASCII")
    fields, pos = {}, 0
    while True:
        k = KEY.match(line, pos)
        if not k or line[k.end():k.end() + 1] != "=":
            raise ValueError(f"no key=value at column {pos}")
        pos = k.end() + 1
        v = QUOTED.match(line, pos) if line[pos:pos + 1] == '"' else BARE.match(line, pos)
        if not v:
            raise ValueError(f"bad value for {k.group()} at column {pos}")
        if k.group() in fields:
            raise ValueError(f"key {k.group()} twice")
        raw = v.group()
        fields[k.group()] = unescape(raw) if raw.startswith('"') else raw
        pos = v.end()
        if pos == len(line):
            break
        if line[pos] != " ":
            raise ValueError(f"no space after {k.group()}'s value at column {pos}")
        pos += 1
    order = list(fields)
    want = ["ts", "level", "node", "event"] if "node" in fields else ["ts", "level", "event"]
    if order[:len(want)] != want:
        raise ValueError(f"starts with {order[:len(want)]}, want {want}")
    return fields


def parse_json(line):
    obj = json.loads(line)
    if not isinstance(obj, dict) or list(obj)[:2] != ["ts", "level"] or "event" not in obj:
        raise ValueError("not an object starting with ts, level and holding event")
    if not all(isinstance(v, str) or type(v) is int for v in obj.values()):
        raise ValueError("a value that is neither a string nor an integer")
    return {k: str(v) for k, v in obj.items()}


def check_peer(fields, names):
    """Raise ValueError unless the line's peer fields have the one form (base_log_peer)."""
    if ("peer" in fields) != ("peer_key" in fields):
        raise ValueError("peer and peer_key not together")
    key = fields.get("peer_key")
    if key in names and fields["peer"] != names[key]:
        raise ValueError(f"peer {key} shown as {fields['peer']}, not by its name {names[key]}")


def check(path, as_json, names):
    bad, seen = 0, set()
    for n, line, got in lines(path, as_json):
        if isinstance(got, dict):
            try:
                check_peer(got, names)
                seen.add(got.get("peer_key"))
            except ValueError as e:
                got = e
        if isinstance(got, ValueError):
            bad += 1
            print(f"{path}:{n}: {got}: {line}")
    for key in set(names) - seen:
        bad += 1
        print(f"{path}: no line names peer {key} ({names[key]})")
    return 1 if bad else 0


def lines(path, as_json):
    with open(path, encoding="latin-1") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            try:
                yield n, line, (parse_json if as_json else parse_text)(line)
            except ValueError as e:
                yield n, line, e


def main(argv):
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    if len(argv) >= 2 and argv[0] == "check":
        names = dict(v.split("=", 1) for k, v in zip(argv[2:], argv[3:]) if k == "--peer")
        return check(argv[1], as_json, names)
    if len(argv) >= 2 and argv[0] == "find":
        keys, pairs = [], []
        rest = argv[2:]
        if "--keys" in rest:
            i = rest.index("--keys")
            keys = rest[i + 1].split(",")
            rest = rest[:i] + rest[i + 2:]
        pairs = [p.split("=", 1) for p in rest]
        for _, line, got in lines(argv[1], as_json):
            if isinstance(got, dict) and all(got.get(k) == v for k, v in pairs) \
                    and all(k in got for k in keys):
                print(line)
                return 0
        print(f"no line with {' '.join(rest)} and keys {keys} in {argv[1]}")
        return 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
