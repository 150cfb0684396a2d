/* derp: the frame codec (whole, split at every byte, unknown types, caps), the login boxes,
 * the STUN codec and the key map. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "frame.h"
#include "keymap.h"
#include "login.h"
#include "stun.h"

struct seen {
    int n;
    uint8_t types[16];
    uint32_t lens[16];
    uint8_t first_byte[16];
    int stop_after;
};

static int on_frame(void *arg, const struct derp_frame *f)
{
    struct seen *s = arg;
    if (s->n < 16) {
        s->types[s->n] = f->type;
        s->lens[s->n] = f->len;
        s->first_byte[s->n] = f->len ? f->payload[0] : 0;
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? 7 : 0;
}

/* A stream: ping, an unknown type, a packet, keepalive (empty), an unknown big frame, pong. */
static size_t build_stream(uint8_t *out, size_t big)
{
    size_t n = 0;
    uint8_t key[DERP_KEY_LEN], pkt[100];
    memset(key, 0xAB, sizeof(key));
    memset(pkt, 0xCD, sizeof(pkt));
    n += derp_build(out + n, DERP_FRAME_PING, "12345678", 8);
    n += derp_build(out + n, 0x7f, "zz", 2);
    n += derp_build_packet_head(out + n, DERP_FRAME_SEND_PACKET, key, sizeof(pkt));
    memcpy(out + n, pkt, sizeof(pkt));
    n += sizeof(pkt);
    n += derp_build(out + n, DERP_FRAME_KEEP_ALIVE, NULL, 0);
    derp_put_header(out + n, 0x40, (uint32_t)big);
    memset(out + n + DERP_HEADER_LEN, 0x55, big);
    n += DERP_HEADER_LEN + big;
    n += derp_build(out + n, DERP_FRAME_PONG, "abcdefgh", 8);
    return n;
}

static void check_stream(const struct seen *s)
{
    assert_int_equal(s->n, 4);
    assert_int_equal(s->types[0], DERP_FRAME_PING);
    assert_int_equal(s->first_byte[0], '1');
    assert_int_equal(s->types[1], DERP_FRAME_SEND_PACKET);
    assert_int_equal(s->lens[1], DERP_KEY_LEN + 100);
    assert_int_equal(s->first_byte[1], 0xAB);
    assert_int_equal(s->types[2], DERP_FRAME_KEEP_ALIVE);
    assert_int_equal(s->lens[2], 0);
    assert_int_equal(s->types[3], DERP_FRAME_PONG);
    assert_int_equal(s->first_byte[3], 'a');
}

static void test_reader_whole_and_split(void **state)
{
    (void)state;
    size_t big = 3000;
    uint8_t *buf = malloc(8192);
    size_t len = build_stream(buf, big);
    /* Every chunk size from 1 byte to the whole stream. */
    for (size_t step = 1; step <= len; step += (step < 64 ? 1 : 97)) {
        struct derp_reader r;
        struct seen s = {0};
        derp_reader_init(&r, 1024); /* the big unknown frame is over the cap: skipped */
        for (size_t off = 0; off < len; off += step) {
            size_t n = len - off < step ? len - off : step;
            size_t used = 0;
            assert_int_equal(derp_reader_feed(&r, buf + off, n, &used, on_frame, &s), 0);
            assert_int_equal(used, n);
        }
        check_stream(&s);
        assert_int_equal(r.skipped, 2);
        derp_reader_free(&r);
    }
    free(buf);
}

static void test_reader_caps_and_stop(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct derp_reader r;
    struct seen s = {0};
    derp_reader_init(&r, 16);
    /* A known frame over the cap is an error, from its header alone. */
    derp_put_header(buf, DERP_FRAME_SEND_PACKET, 17);
    assert_int_equal(derp_reader_feed(&r, buf, DERP_HEADER_LEN, NULL, on_frame, &s), BASE_EPARSE);
    derp_reader_free(&r);
    /* Strict (the login): an unknown type is handed out, not skipped. */
    derp_reader_init(&r, 16);
    r.strict = true;
    memset(&s, 0, sizeof(s));
    size_t k = derp_build(buf, 0x7f, "zz", 2);
    assert_int_equal(derp_reader_feed(&r, buf, k, NULL, on_frame, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.types[0], 0x7f);
    assert_int_equal(r.skipped, 0);
    derp_reader_free(&r);
    memset(&s, 0, sizeof(s));
    /* The callback's non-zero return stops the reader where it is. */
    derp_reader_init(&r, 16);
    size_t n = derp_build(buf, DERP_FRAME_PING, "12345678", 8);
    n += derp_build(buf + n, DERP_FRAME_PING, "12345678", 8);
    s.stop_after = 1;
    size_t used;
    assert_int_equal(derp_reader_feed(&r, buf, n, &used, on_frame, &s), 7);
    assert_int_equal(used, 13);
    assert_int_equal(s.n, 1);
    derp_reader_free(&r);
}

static void test_payload_parsers(void **state)
{
    (void)state;
    uint8_t buf[200], key[DERP_KEY_LEN], key2[DERP_KEY_LEN];
    const uint8_t *k, *k2, *p;
    size_t plen;
    uint8_t reason;
    memset(key, 1, sizeof(key));
    memset(key2, 2, sizeof(key2));
    struct derp_frame f = {DERP_FRAME_SEND_PACKET, 10, buf + DERP_HEADER_LEN};
    assert_int_equal(derp_parse_packet(&f, &k, &p, &plen), BASE_EPARSE);
    derp_build_forward_head(buf, key, key2, 5);
    f = (struct derp_frame){DERP_FRAME_FORWARD_PACKET, 69, buf + DERP_HEADER_LEN};
    assert_int_equal(derp_parse_forward(&f, &k, &k2, &p, &plen), 0);
    assert_memory_equal(k, key, DERP_KEY_LEN);
    assert_memory_equal(k2, key2, DERP_KEY_LEN);
    assert_int_equal(plen, 5);
    derp_build_peer_gone(buf, key, DERP_PEER_GONE_NOT_HERE);
    f = (struct derp_frame){DERP_FRAME_PEER_GONE, derp_get_be32(buf + 1), buf + DERP_HEADER_LEN};
    assert_int_equal(derp_parse_peer_gone(&f, &k, &reason), 0);
    assert_int_equal(reason, DERP_PEER_GONE_NOT_HERE);
    f.len = DERP_KEY_LEN; /* the older form, without a reason */
    assert_int_equal(derp_parse_peer_gone(&f, &k, &reason), 0);
    assert_int_equal(reason, DERP_PEER_GONE_DISCONNECTED);
    derp_build_server_key(buf, key);
    f = (struct derp_frame){DERP_FRAME_SERVER_KEY, 40, buf + DERP_HEADER_LEN};
    assert_int_equal(derp_parse_server_key(&f, &k), 0);
    assert_memory_equal(buf + 5, "DERP\xf0\x9f\x94\x91", 8);
    buf[5] = 'X';
    assert_int_equal(derp_parse_server_key(&f, &k), BASE_EPARSE);
    uint32_t a, b;
    derp_build_restarting(buf, 1500, 30000);
    f = (struct derp_frame){DERP_FRAME_RESTARTING, 8, buf + DERP_HEADER_LEN};
    assert_int_equal(derp_parse_restarting(&f, &a, &b), 0);
    assert_int_equal(a, 1500);
    assert_int_equal(b, 30000);
    assert_true(derp_frame_type_known(DERP_FRAME_RESTARTING));
    assert_false(derp_frame_type_known(0x0b));
    assert_string_equal(derp_frame_type_name(DERP_FRAME_WATCH_CONNS), "watch_conns");
}

static void test_login_round_trip(void **state)
{
    (void)state;
    uint8_t cpriv[32], cpub[32], spriv[32], spub[32], out[1024], got[32];
    crypto_box_keypair(cpub, cpriv);
    crypto_box_keypair(spub, spriv);
    struct derp_client_info ci = {.version = 2, .can_ack_pings = true}, ci2;
    snprintf(ci.mesh_key, sizeof(ci.mesh_key), "secret");
    int n = derp_client_info_seal(&ci, cpriv, spub, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(out[0], DERP_FRAME_CLIENT_INFO);
    assert_int_equal(derp_get_be32(out + 1), (uint32_t)n - 5);
    assert_int_equal(derp_client_info_open(out + 5, (size_t)n - 5, spriv, got, &ci2), 0);
    assert_memory_equal(got, cpub, 32);
    assert_string_equal(ci2.mesh_key, "secret");
    assert_true(ci2.can_ack_pings);
    /* A flipped bit: the box does not open. */
    out[5 + 40] ^= 1;
    assert_int_equal(derp_client_info_open(out + 5, (size_t)n - 5, spriv, got, &ci2), BASE_EAUTH);
    /* Version 1 is refused. */
    ci.version = 1;
    n = derp_client_info_seal(&ci, cpriv, spub, out, sizeof(out));
    assert_int_equal(derp_client_info_open(out + 5, (size_t)n - 5, spriv, got, &ci2), -EPROTO);
    assert_int_equal(derp_client_info_seal(&ci, cpriv, spub, out, 20), BASE_ELIMIT);
    struct derp_server_info si = {2, 1000, 5000}, si2;
    n = derp_server_info_seal(&si, spriv, cpub, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(derp_server_info_open(out + 5, (size_t)n - 5, cpriv, spub, &si2), 0);
    assert_int_equal(si2.version, 2);
    assert_int_equal(si2.rate_bytes_per_sec, 1000);
    assert_int_equal(si2.rate_burst, 5000);
}

static void test_stun(void **state)
{
    (void)state;
    uint8_t req[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42};
    uint8_t txid[12], out[DERP_STUN_RESPONSE_MAX];
    for (int i = 0; i < 12; i++)
        req[8 + i] = (uint8_t)i;
    assert_int_equal(derp_stun_parse_request(req, sizeof(req), txid), 0);
    assert_memory_equal(txid, req + 8, 12);
    struct base_endpoint from, back;
    assert_int_equal(base_endpoint_parse(&from, "192.0.2.7:4242", 14), 0);
    size_t n = derp_stun_build_response(out, txid, &from);
    assert_int_equal(n, 32);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(out[1], 0x01);
    assert_int_equal(derp_stun_parse_response(out, n, txid, &back), 0);
    assert_true(base_endpoint_equal(&from, &back));
    assert_int_equal(base_endpoint_parse(&from, "[2001:db8::9]:53", 16), 0);
    n = derp_stun_build_response(out, txid, &from);
    assert_int_equal(derp_stun_parse_response(out, n, txid, &back), 0);
    assert_true(base_endpoint_equal(&from, &back));
    req[1] = 0x11; /* not a binding request */
    assert_int_equal(derp_stun_parse_request(req, sizeof(req), txid), BASE_EPARSE);
    req[1] = 0x01;
    req[4] = 0; /* no magic cookie */
    assert_int_equal(derp_stun_parse_request(req, sizeof(req), txid), BASE_EPARSE);
    assert_int_equal(derp_stun_parse_request(req, 19, txid), BASE_EPARSE);
}

static void test_keymap(void **state)
{
    (void)state;
    struct derp_keymap m;
    derp_keymap_init(&m);
    uint8_t key[DERP_KEY_LEN] = {0};
    for (uint32_t i = 0; i < 5000; i++) {
        memcpy(key, &i, sizeof(i));
        assert_int_equal(derp_keymap_put(&m, key, (union derp_keymap_val){.num = i}), 0);
    }
    assert_int_equal(m.count, 5000);
    for (uint32_t i = 0; i < 5000; i += 2) {
        memcpy(key, &i, sizeof(i));
        assert_int_equal(derp_keymap_del(&m, key), 1);
    }
    for (uint32_t i = 0; i < 5000; i++) {
        memcpy(key, &i, sizeof(i));
        union derp_keymap_val *v = derp_keymap_get(&m, key);
        if (i % 2) {
            assert_non_null(v);
            assert_int_equal(v->num, i);
        } else {
            assert_null(v);
        }
    }
    size_t it = 0, seen = 0;
    while (derp_keymap_next(&m, &it))
        seen++;
    assert_int_equal(seen, 2500);
    derp_keymap_free(&m);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_whole_and_split),
        cmocka_unit_test(test_reader_caps_and_stop),
        cmocka_unit_test(test_payload_parsers),
        cmocka_unit_test(test_login_round_trip),
        cmocka_unit_test(test_stun),
        cmocka_unit_test(test_keymap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
