#!/usr/bin/env python3
"""Helpers for tests/integration/test_lifecycle.sh.

  notify-listen NAME OUT     bind a unix datagram socket (NAME: a path, or @abstract) and append
                             every sd_notify message received to OUT, one per line ('|' for \\n)
  slow-watch SOCKET OUT      GET /v0/watch on the node's API socket, with a tiny receive buffer,
                             and read nothing until SIGUSR1; then read to the end into OUT
  check-watch FILE STEP...   the newline-delimited JSON in FILE holds these steps in order:
                             snapshot:STATE, state:FROM>TO, handshake, peer_added, ...
"""
import json
import signal
import socket
import sys
import time


def notify_listen(name, out):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name[1:] if name.startswith("@") else name)
    with open(out, "a", buffering=1) as f:
        while True:
            msg = s.recv(4096).decode()
            f.write(msg.replace("\n", "|") + "\n")


def slow_watch(path, out):
    go = []
    signal.signal(signal.SIGUSR1, lambda *_: go.append(1))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(path)
    s.sendall(b"GET /v0/watch HTTP/1.1\r\nHost: local\r\n\r\n")
    while not go:
        time.sleep(0.05)
    data = b""
    s.settimeout(10)
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    with open(out, "wb") as f:
        f.write(data)


def check_watch(path, steps):
    lines = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    i = 0
    for step in steps:
        kind, _, arg = step.partition(":")
        while i < len(lines):
            ev = lines[i]
            i += 1
            if ev.get("type") != kind:
                continue
            if kind == "snapshot" and arg and ev.get("state") != arg:
                continue
            if kind == "state" and arg and f'{ev.get("from")}>{ev.get("to")}' != arg:
                continue
            break
        else:
            sys.exit(f"watch stream lacks {step} (in order); it has: "
                     + ", ".join(l.get("type", "?") + ":" + str(l.get("to", l.get("state", "")))
                                 for l in lines))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "notify-listen":
        notify_listen(sys.argv[2], sys.argv[3])
    elif cmd == "slow-watch":
        slow_watch(sys.argv[2], sys.argv[3])
    elif cmd == "check-watch":
        check_watch(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(f"unknown command {cmd}")
