/*
 * The DERP frame codec, protocol version 2: pure functions over caller buffers, no I/O, no
 * allocation except the reader's own reassembly buffer. Server and client both use it.
 *
 * A frame is 1 type byte, a 4-byte big-endian length, then the payload. derp_reader splits a
 * byte stream into frames: whole frames inside the fed chunk are handed out in place (no copy);
 * only a frame split across chunks is copied into the reader's buffer. Frames of a type the
 * codec does not know are skipped by their length, streaming, whatever their size (except in
 * strict mode, for the login, where the first frame must be ClientInfo).
 */
#ifndef TUNLESS_DERP_FRAME_H
#define TUNLESS_DERP_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DERP_PROTOCOL_VERSION 2
#define DERP_KEY_LEN 32
#define DERP_NONCE_LEN 24
#define DERP_HEADER_LEN 5
#define DERP_MAGIC "DERP\xf0\x9f\x94\x91"
#define DERP_MAGIC_LEN 8
#define DERP_MAX_PACKET (64 * 1024)
/* The largest steady-state frame: ForwardPacket = two keys and a packet. */
#define DERP_MAX_FRAME (DERP_MAX_PACKET + 2 * DERP_KEY_LEN)

enum derp_frame_type {
    DERP_FRAME_SERVER_KEY = 0x01,
    DERP_FRAME_CLIENT_INFO = 0x02,
    DERP_FRAME_SERVER_INFO = 0x03,
    DERP_FRAME_SEND_PACKET = 0x04,
    DERP_FRAME_RECV_PACKET = 0x05,
    DERP_FRAME_KEEP_ALIVE = 0x06,
    DERP_FRAME_NOTE_PREFERRED = 0x07,
    DERP_FRAME_PEER_GONE = 0x08,
    DERP_FRAME_PEER_PRESENT = 0x09,
    DERP_FRAME_FORWARD_PACKET = 0x0a,
    DERP_FRAME_WATCH_CONNS = 0x10,
    DERP_FRAME_CLOSE_PEER = 0x11,
    DERP_FRAME_PING = 0x12,
    DERP_FRAME_PONG = 0x13,
    DERP_FRAME_HEALTH = 0x14,
    DERP_FRAME_RESTARTING = 0x15,
};

/* PeerGone's optional reason byte. */
enum derp_peer_gone_reason { DERP_PEER_GONE_DISCONNECTED = 0, DERP_PEER_GONE_NOT_HERE = 1 };

struct derp_frame {
    uint8_t type;
    uint32_t len;
    const uint8_t *payload; /* len bytes, valid only during the callback */
};

/* A frame type this codec knows (the list above). */
bool derp_frame_type_known(uint8_t type);
const char *derp_frame_type_name(uint8_t type);

/* ---- Reading ---- */

/* Returns 0 to go on, anything else stops the reader and is returned by derp_reader_feed. */
typedef int (*derp_frame_fn)(void *arg, const struct derp_frame *f);

struct derp_reader {
    uint8_t hdr[DERP_HEADER_LEN];
    size_t hdr_len; /* header bytes gathered so far */
    uint8_t *buf;   /* reassembly of a frame split across chunks */
    size_t buf_len, buf_cap;
    uint32_t max_len; /* a known frame longer than this is an error */
    bool strict;      /* every type handed out (and capped): the login, where only ClientInfo may
                       * come */
    uint64_t skip;    /* bytes of an unknown frame still to drop */
    uint64_t skipped; /* unknown frames skipped, for counters */
};

void derp_reader_init(struct derp_reader *r, uint32_t max_len);
void derp_reader_free(struct derp_reader *r);
/* Feeds len bytes; calls fn for each complete frame of a known type (of any type when
 * r->strict); frames of unknown types are skipped, streaming, whatever their size, and bump
 * r->skipped. Returns 0, fn's non-zero value (the reader then holds no partial state worth
 * keeping), BASE_EPARSE for a frame over max_len that is not skipped, or -ENOMEM. *used (if
 * given) says how many bytes were consumed. */
int derp_reader_feed(struct derp_reader *r, const uint8_t *data, size_t len, size_t *used,
                     derp_frame_fn fn, void *arg);

/* ---- Payload parsers: each checks the exact shape, returns 0 or BASE_EPARSE ---- */

/* SendPacket: destination + packet (<= DERP_MAX_PACKET). RecvPacket has the same shape. */
int derp_parse_packet(const struct derp_frame *f, const uint8_t **key, const uint8_t **pkt,
                      size_t *pkt_len);
/* ForwardPacket: source, destination, packet. */
int derp_parse_forward(const struct derp_frame *f, const uint8_t **src, const uint8_t **dst,
                       const uint8_t **pkt, size_t *pkt_len);
/* PeerGone (key + optional reason byte; reason DISCONNECTED if absent), PeerPresent (key and
 * any newer trailing fields, ignored), ClosePeer (exactly a key). */
int derp_parse_peer_gone(const struct derp_frame *f, const uint8_t **key, uint8_t *reason);
int derp_parse_key(const struct derp_frame *f, const uint8_t **key, bool exact);
/* ServerKey: magic + key. */
int derp_parse_server_key(const struct derp_frame *f, const uint8_t **key);
/* Restarting: two big-endian uint32 milliseconds. */
int derp_parse_restarting(const struct derp_frame *f, uint32_t *reconnect_ms, uint32_t *try_for_ms);

/* ---- Writing: each writes a whole frame into out (which must hold the returned size) ---- */

void derp_put_header(uint8_t *out, uint8_t type, uint32_t len);
uint32_t derp_get_be32(const uint8_t *p);
void derp_put_be32(uint8_t *p, uint32_t v);
/* Frame with a payload copied from p (p may be NULL when len is 0). Returns 5 + len. */
size_t derp_build(uint8_t *out, uint8_t type, const void *p, size_t len);
/* Header and one key for a packet frame (Send/Recv); the caller appends pkt_len bytes.
 * Returns DERP_HEADER_LEN + DERP_KEY_LEN. */
size_t derp_build_packet_head(uint8_t *out, uint8_t type, const uint8_t key[DERP_KEY_LEN],
                              size_t pkt_len);
/* Header and both keys of a ForwardPacket; the caller appends pkt_len bytes. */
size_t derp_build_forward_head(uint8_t *out, const uint8_t src[DERP_KEY_LEN],
                               const uint8_t dst[DERP_KEY_LEN], size_t pkt_len);
size_t derp_build_server_key(uint8_t *out, const uint8_t key[DERP_KEY_LEN]);
size_t derp_build_peer_gone(uint8_t *out, const uint8_t key[DERP_KEY_LEN], uint8_t reason);
size_t derp_build_restarting(uint8_t *out, uint32_t reconnect_ms, uint32_t try_for_ms);

#endif
