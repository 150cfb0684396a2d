/* The DNS codec on arbitrary bytes: message parsing, name reading at every offset,
 * truncation to several sizes, TTL aging, the cache and re-building what was parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_cache.h"
#include "dns_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_msg_info info;
    uint8_t name[DNS_NAME_MAX];
    char text[DNS_NAME_MAX * 4 + 2];

    if (size > DNS_MSG_MAX)
        return 0;
    for (size_t off = 0; off < size && off < 64; off++) {
        size_t o = off;
        if (dns_name_read(data, size, &o, name) > 0)
            dns_name_to_text(name, text, sizeof(text));
    }
    if (dns_msg_parse(data, size, &info) < 0)
        return 0;

    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    static const size_t limits[] = {12, 100, 512, 1232, 65535};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        memcpy(copy, data, size);
        size_t n = dns_msg_truncate(copy, size, &info, limits[i]);
        if (n > limits[i] && n != size)
            abort();
        struct dns_msg_info again;
        if (n && dns_msg_parse(copy, n, &again) < 0)
            abort(); /* a cut message must stay well-formed */
    }
    memcpy(copy, data, size);
    dns_msg_age_ttls(copy, size, &info, 30);
    dns_msg_cache_ttl(copy, size, &info);

    struct dns_cache c;
    if (dns_cache_init(&c, 4) == 0) {
        dns_cache_put(&c, data, size, 1000);
        if (info.hdr.qdcount == 1) {
            uint8_t out[2048];
            dns_cache_get(&c, &info.q, 1, 2000, out, sizeof(out));
        }
        dns_cache_free(&c);
    }

    /* What was read can be written back, and reads back the same. */
    if (info.hdr.qdcount == 1) {
        uint8_t buf[600];
        struct dns_builder b;
        dns_b_init(&b, buf, sizeof(buf));
        dns_b_bytes(&b, data, DNS_HDR_LEN);
        if (dns_b_question(&b, info.q.name, info.q.type, info.q.cls) == 0 &&
            dns_b_rr(&b, info.q.name, 5, 1, 1, NULL, 0, info.q.name) == 0) {
            size_t off = DNS_HDR_LEN;
            struct dns_question q;
            if (dns_question_read(buf, b.len, &off, &q) < 0 || !dns_name_equal(q.name, info.q.name))
                abort();
        }
    }
    free(copy);
    return 0;
}
