/* The first byte picks the protocol: 0x05 (and SOCKS4's 0x04, which SOCKS5 then refuses
 * without an answer) is SOCKS5, anything else HTTP, as far as the listener speaks both. */
#include "sessions.h"

static void sniff_input(struct proxy_session *s, const uint8_t *data, size_t len)
{
    enum proxy_protocols p = s->env->cfg->protocols;
    if ((p & PROXY_SOCKS5) && (data[0] == 0x05 || data[0] == 0x04 || !(p & PROXY_HTTP)))
        proxy_socks5_begin(s);
    else
        proxy_http_begin(s);
    if (s->state == PROXY_SESSION_OPEN && s->ops->input)
        s->ops->input(s, data, len);
}

const struct proxy_session_ops proxy_sniff_ops = {.name = "sniff", .input = sniff_input};
