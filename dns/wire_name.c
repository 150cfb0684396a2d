/* Domain names in wire form: reading (with compression), text conversion, comparison. */
#include <stdio.h>
#include <string.h>

#include "dns_wire.h"

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

int dns_name_read(const uint8_t *msg, size_t len, size_t *off, uint8_t out[DNS_NAME_MAX])
{
    size_t pos = *off, outlen = 0, limit = *off, end = len;
    int jumped = 0;

    for (;;) {
        if (pos >= end)
            return -1;
        uint8_t c = msg[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= end)
                return -1;
            size_t target = (size_t)(c & 0x3f) << 8 | msg[pos + 1];
            /* Strictly decreasing targets: no loops, no forward pointers. Nor into the header:
             * no name lives there, and truncation rewrites it (a name read from it would
             * change under the reader). */
            if (target >= limit || target < DNS_HDR_LEN)
                return -1;
            if (!jumped)
                *off = pos + 2;
            jumped = 1;
            limit = target;
            /* What a pointer leads to must lie wholly before the pointer, as a name
             * written earlier does: then every prefix of a message that ends on a record
             * boundary reads the same, which truncation relies on. */
            end = pos;
            pos = target;
            continue;
        }
        if (c & 0xc0)
            return -1; /* 0x40/0x80: extended label types, obsolete */
        if (pos + 1 + c > end || outlen + 1 + c > DNS_NAME_MAX)
            return -1;
        memcpy(out + outlen, msg + pos, (size_t)c + 1);
        outlen += (size_t)c + 1;
        pos += (size_t)c + 1;
        if (c == 0)
            break;
    }
    if (!jumped)
        *off = pos;
    return (int)outlen;
}

int dns_name_from_text(const char *text, uint8_t out[DNS_NAME_MAX])
{
    size_t n = strlen(text), o = 0;

    if (n == 1 && text[0] == '.') {
        out[0] = 0;
        return 1;
    }
    if (n > 0 && text[n - 1] == '.')
        n--;
    if (n == 0)
        return -1;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && text[j] != '.')
            j++;
        size_t l = j - i;
        if (l == 0 || l > DNS_LABEL_MAX || o + 1 + l + 1 > DNS_NAME_MAX)
            return -1;
        out[o++] = (uint8_t)l;
        memcpy(out + o, text + i, l);
        o += l;
        i = j + 1;
    }
    out[o++] = 0;
    return (int)o;
}

int dns_name_to_text(const uint8_t *name, char *out, size_t cap)
{
    size_t o = 0;

    if (cap < 2)
        return -1;
    if (name[0] == 0) {
        out[0] = '.';
        out[1] = 0;
        return 0;
    }
    for (size_t p = 0; name[p]; p += (size_t)name[p] + 1) {
        for (size_t k = 1; k <= name[p]; k++) {
            uint8_t c = name[p + k];
            if (c > 32 && c < 127 && c != '.' && c != '\\') {
                if (o + 1 >= cap)
                    return -1;
                out[o++] = (char)c;
            } else {
                if (o + 4 >= cap)
                    return -1;
                snprintf(out + o, 5, "\\%03u", c);
                o += 4;
            }
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = '.';
    }
    out[o] = 0;
    return 0;
}

size_t dns_name_len(const uint8_t *name)
{
    size_t p = 0;
    while (name[p])
        p += (size_t)name[p] + 1;
    return p + 1;
}

int dns_name_labels(const uint8_t *name)
{
    int n = 0;
    for (size_t p = 0; name[p]; p += (size_t)name[p] + 1)
        n++;
    return n;
}

int dns_name_equal(const uint8_t *a, const uint8_t *b)
{
    size_t la = dns_name_len(a), lb = dns_name_len(b);
    if (la != lb)
        return 0;
    /* Label length bytes are < 64, so lowering them is harmless. */
    for (size_t i = 0; i < la; i++)
        if (lower(a[i]) != lower(b[i]))
            return 0;
    return 1;
}

int dns_name_under(const uint8_t *name, const uint8_t *suffix)
{
    size_t ln = dns_name_len(name), ls = dns_name_len(suffix);
    for (size_t p = 0;; p += (size_t)name[p] + 1) {
        if (ln - p == ls)
            return dns_name_equal(name + p, suffix);
        if (ln - p < ls || name[p] == 0)
            return 0;
    }
}

void dns_name_lower(uint8_t *name)
{
    for (size_t p = 0; name[p]; p += (size_t)name[p] + 1)
        for (size_t k = 1; k <= name[p]; k++)
            name[p + k] = lower(name[p + k]);
}

int dns_name_concat(const uint8_t *name, const uint8_t *suffix, uint8_t out[DNS_NAME_MAX])
{
    size_t ln = dns_name_len(name) - 1, ls = dns_name_len(suffix);
    if (ln + ls > DNS_NAME_MAX)
        return -1;
    memmove(out, name, ln);
    memcpy(out + ln, suffix, ls);
    return (int)(ln + ls);
}

uint32_t dns_name_hash(const uint8_t *name, uint16_t type, uint16_t cls)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0, n = dns_name_len(name); i < n; i++)
        h = (h ^ lower(name[i])) * 16777619u;
    h = (h ^ type) * 16777619u;
    return (h ^ cls) * 16777619u;
}
