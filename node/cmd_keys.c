/* `tunless genkey` and `tunless pubkey`: the same contract as wg(8)'s, so scripts can swap them. */
#include "node.h"

#include <ctype.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "key.h"

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int node_cmd_genkey(int argc, char **argv)
{
    static const char usage[] = "usage: tunless genkey > private.key\n"
                                "Prints a new base64 private key, as `wg genkey` does.\n";
    if (argc == 2 && is_help(argv[1])) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc > 1) {
        fputs(usage, stderr);
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
    static const char usage[] = "usage: tunless pubkey < private.key > public.key\n"
                                "Reads a base64 private key on stdin and prints its public key, as "
                                "`wg pubkey` does.\n";
    if (argc == 2 && is_help(argv[1])) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc > 1) {
        fputs(usage, stderr);
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
