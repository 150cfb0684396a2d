/* Message framing: the type of a datagram (with its exact length) and its receiver index. */
#include "messages.h"

enum wg_message_type wg_message_type(const uint8_t *pkt, size_t len)
{
    if (len < sizeof(struct wg_msg_header))
        return WG_MSG_INVALID;
    /* The type is a little-endian u32 on the wire: reserved bytes must be zero. */
    if (pkt[1] != 0 || pkt[2] != 0 || pkt[3] != 0)
        return WG_MSG_INVALID;
    switch (pkt[0]) {
    case WG_MSG_INITIATION:
        return len == WG_MSG_INITIATION_LEN ? WG_MSG_INITIATION : WG_MSG_INVALID;
    case WG_MSG_RESPONSE:
        return len == WG_MSG_RESPONSE_LEN ? WG_MSG_RESPONSE : WG_MSG_INVALID;
    case WG_MSG_COOKIE_REPLY:
        return len == WG_MSG_COOKIE_REPLY_LEN ? WG_MSG_COOKIE_REPLY : WG_MSG_INVALID;
    case WG_MSG_TRANSPORT:
        return len >= WG_MSG_TRANSPORT_MIN_LEN ? WG_MSG_TRANSPORT : WG_MSG_INVALID;
    default:
        return WG_MSG_INVALID;
    }
}

uint32_t wg_message_receiver_index(const uint8_t *pkt, enum wg_message_type type)
{
    switch (type) {
    case WG_MSG_RESPONSE:
        return wg_le32_read(((const struct wg_msg_response *)pkt)->receiver_index);
    case WG_MSG_COOKIE_REPLY:
        return wg_le32_read(((const struct wg_msg_cookie_reply *)pkt)->receiver_index);
    case WG_MSG_TRANSPORT:
        return wg_le32_read(((const struct wg_msg_transport *)pkt)->receiver_index);
    default:
        return 0;
    }
}
