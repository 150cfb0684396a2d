/* Cryptokey routing as a question the layers above may ask: would a packet to this address
 * leave through a peer? (The proxies' dialer uses it to choose the netstack or host sockets.) */
#include "device.h"

bool wg_engine_route(const struct wg_engine *e, const struct base_addr *addr)
{
    if (addr->family != AF_INET && addr->family != AF_INET6)
        return false;
    return wg_allowedips_lookup(&e->allowedips, addr->family, addr->ip) != NULL;
}
