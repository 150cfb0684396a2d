#!/usr/bin/env python3
"""
Independent WireGuard handshake, written from the whitepaper (section 5.4) with Python's
hashlib (BLAKE2s) and python3-cryptography (X25519, ChaCha20-Poly1305), sharing no code with
engine/. All inputs are fixed, so the output is a known-answer vector set:
    python3 tests/vectors/wg_handshake_vectors.py > tests/support/wg_vectors.h
writes the C constants tests/unit/test_noise.c and tests/fuzz/fuzz_wg_messages.c use, and
    python3 tests/vectors/wg_handshake_vectors.py --corpus tests/fuzz/corpus/wg_messages
writes the messages as seed files for the fuzz target.
"""
import os
import sys
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"


def HASH(data):
    return hashlib.blake2s(data).digest()


def MAC(key, data):
    return hashlib.blake2s(data, digest_size=16, key=key).digest()


def HMAC(key, data):
    return hmac.new(key, data, hashlib.blake2s).digest()


def KDF(n, key, data):
    t0 = HMAC(key, data)
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = HMAC(t0, prev + bytes([i]))
        out.append(prev)
    return out


def pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def DH(priv, pubkey):
    return X25519PrivateKey.from_private_bytes(priv).exchange(X25519PublicKey.from_public_bytes(pubkey))


def AEAD(key, counter, plain, aad):
    return ChaCha20Poly1305(key).encrypt(b"\0" * 4 + struct.pack("<Q", counter), plain, aad)


def AEAD_open(key, counter, ct, aad):
    return ChaCha20Poly1305(key).decrypt(b"\0" * 4 + struct.pack("<Q", counter), ct, aad)


def rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xffffffff


def hchacha20(key, nonce16):
    s = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 7)
    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def XAEAD(key, nonce24, plain, aad):
    subkey = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(subkey).encrypt(b"\0" * 4 + nonce24[16:], plain, aad)


def tai64n(unix_sec, nsec):
    return struct.pack(">QI", 0x400000000000000a + unix_sec, nsec & ~0xffffff)


def seed(label):
    return hashlib.sha256(b"tunless test vector " + label).digest()


# ---- fixed inputs ----
S_i_priv = seed(b"initiator static")
S_r_priv = seed(b"responder static")
E_i_priv = seed(b"initiator ephemeral")
E_r_priv = seed(b"responder ephemeral")
PSK = seed(b"preshared key")
I_i = 0x11223344  # initiator's sender index
I_r = 0x55667788  # responder's sender index
TS_SEC, TS_NSEC = 1767225600, 987654321  # 2026-01-01T00:00:00.987654321Z
TIMESTAMP = tai64n(TS_SEC, TS_NSEC)
PAYLOAD = b"tunless known-answer payload"  # 28 bytes -> padded to 32
COOKIE_SECRET = seed(b"cookie secret")
COOKIE_SRC = bytes([127, 0, 0, 1, 0xca, 0x6c])  # 127.0.0.1:51820 as IP bytes + port BE
COOKIE_NONCE = seed(b"cookie nonce")[:24]

S_i_pub, S_r_pub = pub(S_i_priv), pub(S_r_priv)
E_i_pub, E_r_pub = pub(E_i_priv), pub(E_r_priv)

# ---- initiation (whitepaper 5.4.2) ----
C = HASH(CONSTRUCTION)
H = HASH(C + IDENTIFIER)
H = HASH(H + S_r_pub)
C = KDF(1, C, E_i_pub)[0]
H = HASH(H + E_i_pub)
C, k = KDF(2, C, DH(E_i_priv, S_r_pub))
enc_static = AEAD(k, 0, S_i_pub, H)
H = HASH(H + enc_static)
C, k = KDF(2, C, DH(S_i_priv, S_r_pub))
enc_ts = AEAD(k, 0, TIMESTAMP, H)
H = HASH(H + enc_ts)
init = struct.pack("<I", 1) + struct.pack("<I", I_i) + E_i_pub + enc_static + enc_ts
init_mac1 = MAC(HASH(LABEL_MAC1 + S_r_pub), init)
initiation = init + init_mac1 + b"\0" * 16
assert len(initiation) == 148

# ---- response (5.4.3) ----
C = KDF(1, C, E_r_pub)[0]
H = HASH(H + E_r_pub)
C = KDF(1, C, DH(E_r_priv, E_i_pub))[0]
C = KDF(1, C, DH(E_r_priv, S_i_pub))[0]
C, tau, k = KDF(3, C, PSK)
H = HASH(H + tau)
enc_nothing = AEAD(k, 0, b"", H)
H = HASH(H + enc_nothing)
resp = struct.pack("<I", 2) + struct.pack("<II", I_r, I_i) + E_r_pub + enc_nothing
resp_mac1 = MAC(HASH(LABEL_MAC1 + S_i_pub), resp)
response = resp + resp_mac1 + b"\0" * 16
assert len(response) == 92

# ---- transport keys (5.4.5) and one data message from the initiator (5.4.6) ----
T_i_send, T_i_recv = KDF(2, C, b"")
padded = PAYLOAD + b"\0" * (-len(PAYLOAD) % 16)
transport = struct.pack("<IIQ", 4, I_r, 0) + AEAD(T_i_send, 0, padded, b"")
keepalive = struct.pack("<IIQ", 4, I_i, 0) + AEAD(T_i_recv, 0, b"", b"")  # responder -> initiator

# ---- cookie reply from the responder to the initiation, and the initiation again with mac2 ----
cookie = MAC(COOKIE_SECRET, COOKIE_SRC)
cookie_reply = (struct.pack("<II", 3, I_i) + COOKIE_NONCE +
                XAEAD(HASH(LABEL_COOKIE + S_r_pub), COOKIE_NONCE, cookie, init_mac1))
assert len(cookie_reply) == 64
init_mac2 = MAC(cookie, init + init_mac1)

# self-check of the decrypt path
assert AEAD_open(T_i_send, 0, transport[16:], b"") == padded


def c_array(name, data):
    lines = []
    for i in range(0, len(data), 12):
        lines.append("    " + " ".join("0x%02x," % b for b in data[i:i + 12]))
    return "static const uint8_t %s[%d] = {\n%s\n};" % (name, len(data), "\n".join(lines))


if len(sys.argv) == 3 and sys.argv[1] == "--corpus":
    for name, val in [("initiation", initiation), ("response", response),
                      ("cookie_reply", cookie_reply), ("transport", transport),
                      ("keepalive", keepalive),
                      ("initiation_mac2", init + init_mac1 + init_mac2)]:
        with open(os.path.join(sys.argv[2], "kat_" + name), "wb") as f:
            f.write(val)
    sys.exit(0)

print("/* Generated by tests/vectors/wg_handshake_vectors.py; do not edit by hand. */")
print("#ifndef TUNLESS_TEST_WG_VECTORS_H")
print("#define TUNLESS_TEST_WG_VECTORS_H")
print("#include <stdint.h>")
for name, val in [
    ("kat_initiator_static_private", S_i_priv), ("kat_responder_static_private", S_r_priv),
    ("kat_initiator_ephemeral_private", E_i_priv), ("kat_responder_ephemeral_private", E_r_priv),
    ("kat_psk", PSK), ("kat_timestamp", TIMESTAMP), ("kat_payload", PAYLOAD),
    ("kat_initiation", initiation), ("kat_response", response),
    ("kat_initiator_send_key", T_i_send), ("kat_initiator_recv_key", T_i_recv),
    ("kat_transport", transport), ("kat_keepalive", keepalive),
    ("kat_cookie_src", COOKIE_SRC), ("kat_cookie_secret", COOKIE_SECRET), ("kat_cookie_reply", cookie_reply), ("kat_cookie", cookie),
    ("kat_initiation_mac2", init_mac2),
]:
    print(c_array(name, val))
print("#define KAT_INITIATOR_INDEX 0x%08xU" % I_i)
print("#define KAT_RESPONDER_INDEX 0x%08xU" % I_r)
print("#define KAT_TIMESTAMP_SEC %dLL" % TS_SEC)
print("#define KAT_TIMESTAMP_NSEC %dL" % TS_NSEC)
print("#endif")
