/*
 * A raw TCP peer for netstack tests and benches: it builds IPv4+TCP segments by hand (100.64.0.9
 * -> the stack's 100.64.0.2, port 80 unless told) and feeds them to a stack through
 * ns_stack_input, and it reads the stack's answers from the stack's output. Everything happens
 * inside ns_stack_input, so its users check counts and bytes, never time.
 *
 * Use: tn_raw_stack_new (or tn_raw_init and a stack of one's own with .output = tn_raw_output,
 * .output_ctx = the tn_raw, in raw.ns); tn_raw_handshake per connection (the stack accepts it
 * during the call: tn_raw_on_accept gives it to raw.accepting, with tn_raw_cbs), tn_raw_send per
 * segment; after each, raw.last holds the stack's latest TCP segment. IP and TCP checksums are left 0:
 * the netstack does not check them (lwipopts.h).
 */
#ifndef TUNLESS_TEST_RAW_TCP_H
#define TUNLESS_TEST_RAW_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "netstack.h"

#define TN_RAW_SEG_MAX 1500 /* the largest segment tn_raw_send builds, headers included */

/* One connection of the raw peer. */
struct tn_raw_conn {
    uint16_t sport, dport;     /* the raw peer's port; the stack's (0: 80) */
    int sack_ok;               /* its SYN offers SACK */
    uint32_t snd_nxt, rcv_nxt; /* the raw peer's next seqno; the stack's (what we ACK) */
    struct ns_conn *conn;      /* the stack's side, once accepted or dialled */
    uint8_t *got;              /* what the stack's user read (tn_raw_cbs), cap bytes at most */
    size_t ngot, cap;
    int eof;
};

/* The stack's latest TCP segment. */
struct tn_raw_seen {
    uint32_t seq, ack;
    uint16_t sport, win; /* win as sent, before its scaling */
    uint8_t flags;
    uint32_t sack[4][2]; /* its SACK blocks (left and right edges) */
    unsigned n_sack;
};

struct tn_raw {
    struct ns_stack *ns;
    struct base_addr peer, stack; /* 100.64.0.9, 100.64.0.2 */
    struct tn_raw_seen last;
    unsigned nseg;                 /* TCP segments the stack has sent */
    struct tn_raw_conn *accepting; /* whom tn_raw_on_accept gives the next conn */
    int pause_on_accept;           /* tn_raw_on_accept pauses its reading */
};

void tn_raw_init(struct tn_raw *r);
/* tn_raw_init, then r->ns: a stack at 100.64.0.2 on loop with budget (may be NULL) whose
 * output is tn_raw_output, listening on port 80 with tn_raw_on_accept. 0 or its error. */
int tn_raw_stack_new(struct tn_raw *r, uv_loop_t *loop, struct base_budget *budget);
/* ns_config.output with output_ctx the tn_raw: records TCP segments in r->last. */
int tn_raw_output(void *ctx, const uint8_t *pkt, size_t len);
/* Builds the segment (flags: TCP flags; a SYN carries MSS 1380, window scale 7 and, with
 * c->sack_ok, SACK-permitted) into pkt (TN_RAW_SEG_MAX bytes); returns its length. */
size_t tn_raw_build(const struct tn_raw *r, const struct tn_raw_conn *c, uint32_t seq,
                    uint8_t flags, const uint8_t *data, size_t n, uint8_t *pkt);
/* Builds it and feeds it to r->ns, acknowledging c->rcv_nxt. */
void tn_raw_send(struct tn_raw *r, const struct tn_raw_conn *c, uint32_t seq, uint8_t flags,
                 const uint8_t *data, size_t n);
/* SYN at c->snd_nxt, the stack's SYN-ACK, our ACK: then c's seqnos are past both SYNs. Returns
 * 0, or -1 when the stack did not answer SYN-ACK. */
int tn_raw_handshake(struct tn_raw *r, struct tn_raw_conn *c);

/* Stack-side callbacks: on_read appends to the conn's got and consumes (tn_raw_cbs has it
 * alone); on_accept (ctx: the tn_raw) hands the conn to r->accepting. */
void tn_raw_on_read(struct ns_conn *nc, const uint8_t *d, size_t len);
extern const struct ns_conn_cbs tn_raw_cbs;
void tn_raw_on_accept(void *ctx, struct ns_conn *c);

#endif
