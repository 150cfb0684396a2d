/*
 * Happy Eyeballs (RFC 8305) as a pure plan: which address to try next and when, with the clock
 * passed in, so that the order and the timing are tested without a loop (tests/unit/test_happy.c).
 * Flow: proxy_he_init orders the addresses (IPv6 first, then the families alternate, each family
 * in the resolver's order: RFC 8305 section 4) and sets the deadline; proxy_he_next says START
 * (one more attempt now), WAIT (until a time) or that the race is lost; proxy_he_failed lets the
 * next attempt start at once instead of after the Connection Attempt Delay.
 */
#include <string.h>

#include "proxy.h"

/* Takes the next address of family fam from addrs[*i...] into the plan; false if none is left. */
static bool take(struct proxy_he *he, const struct base_addr *addrs, size_t n, size_t *i, int fam,
                 uint16_t port)
{
    for (; *i < n; (*i)++) {
        if (addrs[*i].family != fam)
            continue;
        he->order[he->n++] = (struct base_endpoint){.addr = addrs[*i], .port = port};
        (*i)++;
        return true;
    }
    return false;
}

void proxy_he_init(struct proxy_he *he, const struct base_addr *addrs, size_t n, uint16_t port,
                   uint64_t now, unsigned delay_ms, unsigned timeout_ms)
{
    memset(he, 0, sizeof(*he));
    he->delay_ms = delay_ms;
    he->next_at = now;
    he->deadline = now + timeout_ms;
    size_t i6 = 0, i4 = 0;
    bool more6 = true, more4 = true;
    while (he->n < PROXY_HE_MAX && (more6 || more4)) {
        if (more6)
            more6 = take(he, addrs, n, &i6, AF_INET6, port);
        if (more4 && he->n < PROXY_HE_MAX)
            more4 = take(he, addrs, n, &i4, AF_INET, port);
    }
}

enum proxy_he_step proxy_he_next(struct proxy_he *he, uint64_t now, struct base_endpoint *ep,
                                 uint64_t *wake)
{
    if (now >= he->deadline)
        return PROXY_HE_TIMEOUT;
    if (he->started < he->n && now >= he->next_at) {
        *ep = he->order[he->started++];
        he->next_at = now + he->delay_ms;
        return PROXY_HE_START;
    }
    if (he->failed >= he->n)
        return PROXY_HE_FAILED;
    *wake = he->started < he->n && he->next_at < he->deadline ? he->next_at : he->deadline;
    return PROXY_HE_WAIT;
}

void proxy_he_failed(struct proxy_he *he, uint64_t now)
{
    if (he->failed < he->started)
        he->failed++;
    he->next_at = now;
}
