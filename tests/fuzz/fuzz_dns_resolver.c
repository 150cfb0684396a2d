/* dns_resolver_handle() on arbitrary bytes with a MagicDNS config and no upstream: every
 * answer is synchronous. The first byte picks the transport's reply limit. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dns_wire.h"

static void on_reply(void *ctx, const uint8_t *reply, size_t len)
{
    size_t max = *(size_t *)ctx;
    struct dns_msg_info info;
    if (!reply)
        return;
    if (len > max && max >= 512)
        abort();
    if (len < DNS_HDR_LEN || dns_msg_parse(reply, len, &info) < 0)
        abort(); /* we only ever send well-formed replies */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static struct dns_resolver *r;
    if (!r) {
        static struct base_addr a[2];
        static struct dns_host h[1];
        static struct dns_record rec[2];
        static struct dns_config c;
        if (base_addr_parse(&a[0], "100.64.0.2", 10) < 0 ||
            base_addr_parse(&a[1], "fd7a:115c:a1e0::2", 17) < 0)
            abort();
        h[0] = (struct dns_host){"db", a, 2};
        rec[0] = (struct dns_record){.name = "www.mesh.internal",
                                     .type = DNS_TYPE_CNAME,
                                     .value = "db.mesh.internal",
                                     .ttl = 0};
        rec[1] = (struct dns_record){
            .name = "t.mesh.internal", .type = DNS_TYPE_TXT, .value = "x", .ttl = 0};
        c.hosts = h;
        c.n_hosts = 1;
        c.records = rec;
        c.n_records = 2;
        uv_loop_init(&loop);
        if (dns_resolver_new(&loop, &c, &r) < 0)
            abort();
    }
    if (size < 1)
        return 0;
    static const size_t limits[] = {512, 700, 1232, 65507, DNS_REPLY_TCP};
    size_t max = limits[data[0] % 5];
    struct dns_request *req = dns_resolver_handle(r, data + 1, size - 1, max, on_reply, &max);
    if (req)
        abort(); /* nothing can be pending without upstreams */
    return 0;
}
