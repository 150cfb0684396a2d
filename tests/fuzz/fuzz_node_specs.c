/* The `tunless up` spec parsers (listen addresses, --forward, --publish, durations,
 * --tcp-keepalive) on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct cfg_hostport hp;
    struct base_endpoint ep;
    struct node_forward f;
    struct node_publish p;
    node_parse_hostport(s, "127.0.0.1", &hp);
    node_parse_hostport(s, NULL, &hp);
    node_parse_listen(s, &ep);
    node_parse_forward(s, &f);
    node_parse_publish(s, &p);
    unsigned ms;
    struct node_keepalive k;
    node_parse_duration_ms(s, &ms);
    node_parse_keepalive(s, &k);
    free(s);
    return 0;
}
