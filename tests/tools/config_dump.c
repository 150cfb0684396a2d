/*
 * Prints what config/ made of a wg-quick file in the format of `wg show IFACE dump`
 * (interface line, then one line per peer), so tests/integration/test_config_interop.sh can
 * compare our reading of a file with wg(8)'s reading of the same file.
 *
 * usage: config_dump FILE        exit 0, or 2 with the parser's message on stderr
 * Lines: PRIVATE PUBLIC LISTEN_PORT off
 *        PUBLIC PSK|(none) ENDPOINT|(none) ALLOWED_IPS|(none) 0 0 0 KEEPALIVE|off   (tab-separated)
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "config.h"
#include "key.h"

static void print_peer(const struct cfg_peer *p)
{
    char b64[WG_KEY_B64_LEN + 1];
    wg_key_to_base64(b64, p->public_key);
    printf("%s\t", b64);
    if (p->has_preshared_key) {
        wg_key_to_base64(b64, p->preshared_key);
        printf("%s\t", b64);
    } else {
        printf("(none)\t");
    }
    if (p->n_endpoints == 0)
        printf("(none)\t");
    else if (strchr(p->endpoints[0].host, ':'))
        printf("[%s]:%u\t", p->endpoints[0].host, p->endpoints[0].port);
    else
        printf("%s:%u\t", p->endpoints[0].host, p->endpoints[0].port);
    for (size_t i = 0; i < p->n_allowed_ips; i++) {
        char a[BASE_PREFIX_STRLEN];
        printf("%s%s", i ? "," : "", base_prefix_format(&p->allowed_ips[i], a, sizeof(a)));
    }
    printf("%s\t0\t0\t0\t", p->n_allowed_ips ? "" : "(none)");
    if (p->persistent_keepalive)
        printf("%u\n", p->persistent_keepalive);
    else
        printf("off\n");
}

int main(int argc, char **argv)
{
    struct cfg_config c;
    char err[512];
    if (argc != 2) {
        fprintf(stderr, "usage: config_dump FILE\n");
        return 2;
    }
    if (sodium_init() < 0 || cfg_parse_ini(argv[1], &c, err, sizeof(err)) < 0) {
        fprintf(stderr, "config_dump: %s\n", err);
        return 2;
    }
    char priv[WG_KEY_B64_LEN + 1], pub[WG_KEY_B64_LEN + 1];
    uint8_t pubkey[CFG_KEY_LEN];
    wg_key_to_base64(priv, c.private_key);
    wg_key_public(pubkey, c.private_key);
    wg_key_to_base64(pub, pubkey);
    printf("%s\t%s\t%u\toff\n", priv, pub, c.listen_port);
    for (size_t i = 0; i < c.n_peers; i++)
        print_peer(&c.peers[i]);
    sodium_memzero(priv, sizeof(priv));
    cfg_free(&c);
    return 0;
}
