#!/usr/bin/env python3
"""An independent DERP (protocol v2) client for tests, written from the wire facts
(HTTP upgrade, 5-byte frame headers, NaCl-box login), not from tunless's C.

    c = DerpClient("127.0.0.1", 34340)      # connect + login; c.server_info is the JSON
    c.send_packet(peer_pub, b"hello")
    ftype, payload = c.recv_frame()         # or c.recv_packet() -> (src, data)
"""
import json
import os
import socket
import ssl
import struct
import time

from nacl.public import Box, PrivateKey, PublicKey

MAGIC = b"DERP\xf0\x9f\x94\x91"
SERVER_KEY, CLIENT_INFO, SERVER_INFO = 0x01, 0x02, 0x03
SEND_PACKET, RECV_PACKET, KEEP_ALIVE, NOTE_PREFERRED = 0x04, 0x05, 0x06, 0x07
PEER_GONE, PEER_PRESENT, FORWARD_PACKET = 0x08, 0x09, 0x0A
WATCH_CONNS, CLOSE_PEER, PING, PONG, HEALTH, RESTARTING = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15


class Closed(Exception):
    """The server closed the connection."""


def frame(ftype, payload=b""):
    return struct.pack(">BI", ftype, len(payload)) + payload


class DerpClient:
    def __init__(self, host, port, key=None, tls=False, cafile=None, fast_start=False,
                 server_key=None, mesh_key=None, version=2, login=True, timeout=5.0,
                 server_name="localhost"):
        self.key = key or PrivateKey.generate()
        self.pub = bytes(self.key.public_key)
        self.timeout = timeout
        self.buf = b""
        self.server_key = server_key
        self.server_info = None
        self.upgrade_headers = None
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.create_default_context(cafile=cafile)
            raw = ctx.wrap_socket(raw, server_hostname=server_name)
        self.sock = raw
        req = "GET /derp HTTP/1.1\r\nHost: %s\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n" % host
        if fast_start:
            req += "Derp-Fast-Start: 1\r\n"
        self.sock.sendall((req + "\r\n").encode())
        if not fast_start:
            self._read_upgrade()
        if login:
            self.login(mesh_key=mesh_key, version=version)

    # ---- bytes ----
    def _fill(self, n):
        deadline = time.monotonic() + self.timeout
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out waiting for %d bytes" % n)
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
                raise Closed(str(e))
            if not d:
                raise Closed("EOF")
            self.buf += d

    def _take(self, n):
        self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_upgrade(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill(len(self.buf) + 1)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise Closed("no upgrade: " + lines[0])
        self.upgrade_headers = {k.strip().lower(): v.strip()
                                for k, v in (l.split(":", 1) for l in lines[1:])}

    # ---- frames ----
    def recv_frame(self, skip_keepalive=True):
        while True:
            ftype, n = struct.unpack(">BI", self._take(5))
            payload = self._take(n)
            if skip_keepalive and ftype == KEEP_ALIVE:
                continue
            return ftype, payload

    def expect(self, want):
        ftype, payload = self.recv_frame()
        if ftype != want:
            raise AssertionError("expected frame 0x%02x, got 0x%02x %r" % (want, ftype, payload[:80]))
        return payload

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, ftype, payload=b""):
        self.sock.sendall(frame(ftype, payload))

    # ---- login ----
    def client_info_payload(self, info, key=None):
        key = key or self.key
        nonce = os.urandom(24)
        box = Box(key, PublicKey(self.server_key))
        sealed = box.encrypt(json.dumps(info).encode(), nonce).ciphertext
        return bytes(key.public_key) + nonce + sealed

    def login(self, mesh_key=None, version=2):
        payload = self.expect(SERVER_KEY)
        assert payload[:8] == MAGIC, payload[:8]
        if self.server_key is not None:
            assert payload[8:40] == self.server_key, "server key changed"
        self.server_key = payload[8:40]
        if self.upgrade_headers is not None:
            assert self.upgrade_headers["derp-public-key"] == self.server_key.hex()
            assert self.upgrade_headers["derp-version"] == "2"
        info = {"version": version}
        if mesh_key:
            info["meshKey"] = mesh_key
        self.send_frame(CLIENT_INFO, self.client_info_payload(info))
        payload = self.expect(SERVER_INFO)
        box = Box(self.key, PublicKey(self.server_key))
        self.server_info = json.loads(box.decrypt(payload[24:], payload[:24]))
        return self.server_info

    # ---- steady state ----
    def send_packet(self, dst, data):
        self.send_frame(SEND_PACKET, dst + data)

    def recv_packet(self):
        payload = self.expect(RECV_PACKET)
        return payload[:32], payload[32:]

    def ping(self, data=b"12345678"):
        self.send_frame(PING, data)
        return self.expect(PONG) == data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def wait_closed(self):
        """Reads until the server closes; returns the frames seen before."""
        seen = []
        try:
            while True:
                seen.append(self.recv_frame())
        except Closed:
            return seen


def metrics(host, port, tls=False, cafile=None, timeout=5):
    """The server's /metrics as a dict name -> value."""
    s = socket.create_connection((host, port), timeout=timeout)
    if tls:
        s = ssl.create_default_context(cafile=cafile).wrap_socket(s, server_hostname="localhost")
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    out = {}
    for line in data.split(b"\r\n\r\n", 1)[1].decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.split()
            out[k] = int(v)
    return out
