/* `tunless genkey` and `tunless pubkey`: the same contract as wg(8)'s, so scripts can swap them. */
#include "node.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "key.h"

int node_cmd_genkey(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: tunless genkey\n");
        return 2;
    }
    uint8_t priv[WG_KEY_LEN];
    char b64[WG_KEY_B64_LEN + 1];

    wg_key_generate(priv);
    wg_key_to_base64(b64, priv);
    sodium_memzero(priv, sizeof(priv));
    puts(b64);
    sodium_memzero(b64, sizeof(b64));
    return fflush(stdout) == 0 ? 0 : 1;
}

/* Reads one base64 key from stdin; surrounding whitespace (the newline echo adds) is allowed. */
static int read_key_stdin(uint8_t key[WG_KEY_LEN])
{
    char buf[WG_KEY_B64_LEN + 64];
    size_t len = fread(buf, 1, sizeof(buf), stdin);
    size_t start = 0;
    int ret;

    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        len--;
    while (start < len && isspace((unsigned char)buf[start]))
        start++;
    ret = cfg_key_from_base64(key, buf + start, len - start) == 0 ? 0 : -1;
    sodium_memzero(buf, sizeof(buf));
    return ret;
}

int node_cmd_pubkey(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: tunless pubkey < private.key\n");
        return 2;
    }
    uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
    char b64[WG_KEY_B64_LEN + 1];

    if (read_key_stdin(priv) != 0) {
        fprintf(stderr, "tunless pubkey: stdin is not a base64 private key (44 characters)\n");
        return 2;
    }
    int ret = wg_key_public(pub, priv);
    sodium_memzero(priv, sizeof(priv));
    if (ret != 0) {
        fprintf(stderr, "tunless pubkey: that private key has no usable public key\n");
        return 2;
    }
    wg_key_to_base64(b64, pub);
    puts(b64);
    return fflush(stdout) == 0 ? 0 : 1;
}
