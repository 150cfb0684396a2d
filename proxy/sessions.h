/*
 * The protocols a session speaks, each a proxy_session_ops of its own: the sniffer reads the
 * first byte and hands over to SOCKS5's handshake or to HTTP; the handshake hands over to
 * CONNECT or UDP ASSOCIATE. Each begin switches the session to its protocol (or finishes it
 * with an answer when it cannot). Internal to proxy/.
 */
#ifndef TUNLESS_PROXY_SESSIONS_H
#define TUNLESS_PROXY_SESSIONS_H

#include "session.h"

extern const struct proxy_session_ops proxy_sniff_ops;

/* socks5_session.c: the handshake (methods, credentials, the request), then CONNECT. */
void proxy_socks5_begin(struct proxy_session *s);
/* socks5_udp.c: the association for a UDP ASSOCIATE request naming t. */
void proxy_socks5_udp_begin(struct proxy_session *s, const struct proxy_target *t);
/* Answers rep (no bound address) and finishes. */
void proxy_socks5_fail(struct proxy_session *s, uint8_t rep);
/* http_session.c: CONNECT tunnels and absolute-URI requests. */
void proxy_http_begin(struct proxy_session *s);

#endif
