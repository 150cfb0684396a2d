/*
 * Who is connected, and where packets go. Local clients by key; keys other mesh servers
 * reported (remote); who sent to whom (sent_to: src -> dst -> the dst's connection number), so
 * that when a key leaves the region every still-connected client it sent to gets PeerGone.
 * Watchers (mesh servers that sent WatchConns) hear PeerPresent/PeerGone for local clients.
 * Then the --verify-clients set.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static void broadcast(struct derp_server *s, const uint8_t *key, bool present)
{
    uint8_t f[DERP_HEADER_LEN + DERP_KEY_LEN + 1];
    size_t n = present ? derp_build(f, DERP_FRAME_PEER_PRESENT, key, DERP_KEY_LEN)
                       : derp_build_peer_gone(f, key, DERP_PEER_GONE_DISCONNECTED);
    struct base_list *it, *tmp;
    base_list_foreach_safe (it, tmp, &s->watchers) {
        struct derp_conn *w = container_of(it, struct derp_conn, watch_node);
        if (present)
            s->ctr.peer_present_frames++;
        else
            s->ctr.peer_gone_frames++;
        derp_conn_send_frame(w, f, n);
    }
}

int derp_registry_add(struct derp_server *s, struct derp_conn *c)
{
    union derp_keymap_val *v = derp_keymap_get(&s->clients, c->key);
    if (v) {
        struct derp_conn *old = v->ptr;
        old->state = DERP_CONN_REPLACED;
        base_list_remove(&old->watch_node);
        s->ctr.clients_replaced++;
        base_logf(&s->log, BASE_LOG_INFO, "event=client_replaced old_conn=%llu new_conn=%llu",
                  (unsigned long long)old->num, (unsigned long long)c->num);
        derp_conn_send_health(old, "another connection with the same key connected");
        v->ptr = c;
    } else {
        if (derp_keymap_put(&s->clients, c->key, (union derp_keymap_val){.ptr = c}) != 0)
            return -ENOMEM;
        s->n_clients++;
    }
    broadcast(s, c->key, true);
    return 0;
}

/* key is gone from the whole region: tell everyone it sent to (still on the same connection). */
static void peer_gone_from_region(struct derp_server *s, const uint8_t *key)
{
    union derp_keymap_val *v = derp_keymap_get(&s->sent_to, key);
    if (!v)
        return;
    struct derp_keymap *dsts = v->ptr;
    derp_keymap_del(&s->sent_to, key);
    uint8_t f[DERP_HEADER_LEN + DERP_KEY_LEN + 1];
    size_t n = derp_build_peer_gone(f, key, DERP_PEER_GONE_DISCONNECTED);
    struct derp_keymap_slot *slot;
    for (size_t i = 0; (slot = derp_keymap_next(dsts, &i));) {
        union derp_keymap_val *d = derp_keymap_get(&s->clients, slot->key);
        struct derp_conn *dst = d ? d->ptr : NULL;
        if (dst && dst->num == slot->val.num) {
            s->ctr.peer_gone_frames++;
            derp_conn_send_frame(dst, f, n);
        }
    }
    derp_keymap_free(dsts);
    free(dsts);
}

void derp_registry_remove(struct derp_server *s, struct derp_conn *c)
{
    union derp_keymap_val *v = derp_keymap_get(&s->clients, c->key);
    if (!v || v->ptr != c)
        return;
    derp_keymap_del(&s->clients, c->key);
    s->n_clients--;
    if (!derp_keymap_get(&s->remote, c->key))
        peer_gone_from_region(s, c->key);
    broadcast(s, c->key, false);
}

void derp_registry_watch(struct derp_server *s, struct derp_conn *c)
{
    if (memcmp(c->key, s->pub, DERP_KEY_LEN) == 0 || base_list_linked(&c->watch_node))
        return;
    struct derp_keymap_slot *slot;
    uint8_t f[DERP_HEADER_LEN + DERP_KEY_LEN];
    for (size_t i = 0; (slot = derp_keymap_next(&s->clients, &i));) {
        s->ctr.peer_present_frames++;
        derp_conn_send_frame(c, f, derp_build(f, DERP_FRAME_PEER_PRESENT, slot->key, DERP_KEY_LEN));
    }
    if (c->state == DERP_CONN_ACTIVE)
        base_list_push_back(&s->watchers, &c->watch_node);
}

static void note_sent(struct derp_server *s, const uint8_t *src, const struct derp_conn *dst)
{
    union derp_keymap_val *v = derp_keymap_get(&s->sent_to, src);
    struct derp_keymap *dsts = v ? v->ptr : NULL;
    if (!dsts) {
        dsts = malloc(sizeof(*dsts));
        if (!dsts)
            return;
        derp_keymap_init(dsts);
        if (derp_keymap_put(&s->sent_to, src, (union derp_keymap_val){.ptr = dsts}) != 0) {
            free(dsts);
            return;
        }
    }
    union derp_keymap_val *have = derp_keymap_get(dsts, dst->key);
    if (!have || have->num != dst->num)
        derp_keymap_put(dsts, dst->key, (union derp_keymap_val){.num = dst->num});
}

void derp_route_send(struct derp_server *s, struct derp_conn *from, const uint8_t *dst,
                     const uint8_t *pkt, size_t len)
{
    union derp_keymap_val *v = derp_keymap_get(&s->clients, dst);
    if (v) {
        note_sent(s, from->key, v->ptr);
        derp_conn_send_packet(v->ptr, from->key, pkt, len);
        return;
    }
    v = derp_keymap_get(&s->remote, dst);
    if (v) {
        s->ctr.forwarded_out++;
        derp_mesh_forward(v->ptr, from->key, dst, pkt, len);
        return;
    }
    s->ctr.dropped_unknown_dest++;
}

void derp_route_forwarded(struct derp_server *s, const uint8_t *src, const uint8_t *dst,
                          const uint8_t *pkt, size_t len)
{
    union derp_keymap_val *v = derp_keymap_get(&s->clients, dst);
    if (!v) {
        s->ctr.dropped_fwd_unknown++;
        return;
    }
    note_sent(s, src, v->ptr);
    derp_conn_send_packet(v->ptr, src, pkt, len);
}

/* The latest report wins: a key that moved between servers follows its newest home. */
void derp_registry_remote_add(struct derp_server *s, const uint8_t *key, struct derp_mesh_peer *p)
{
    derp_keymap_put(&s->remote, key, (union derp_keymap_val){.ptr = p});
}

void derp_registry_remote_remove(struct derp_server *s, const uint8_t *key,
                                 struct derp_mesh_peer *p)
{
    union derp_keymap_val *v = derp_keymap_get(&s->remote, key);
    if (!v || v->ptr != p)
        return;
    derp_keymap_del(&s->remote, key);
    if (!derp_keymap_get(&s->clients, key))
        peer_gone_from_region(s, key);
}

void derp_registry_free(struct derp_server *s)
{
    struct derp_keymap_slot *slot;
    for (size_t i = 0; (slot = derp_keymap_next(&s->sent_to, &i));) {
        derp_keymap_free(slot->val.ptr);
        free(slot->val.ptr);
    }
    derp_keymap_free(&s->sent_to);
    derp_keymap_free(&s->clients);
    derp_keymap_free(&s->remote);
    if (s->allowed) {
        derp_keymap_free(s->allowed);
        free(s->allowed);
        s->allowed = NULL;
    }
}

bool derp_registry_allowed(const struct derp_server *s, const uint8_t *key)
{
    return !s->allowed || derp_keymap_get(s->allowed, key) != NULL;
}

/* A key as 64 hex digits (optionally "nodekey:" first, as Tailscale prints them) or base64. */
static int parse_key(const char *t, uint8_t key[DERP_KEY_LEN])
{
    size_t n = 0;
    if (strncmp(t, "nodekey:", 8) == 0)
        t += 8;
    if (strlen(t) == 2 * DERP_KEY_LEN)
        return sodium_hex2bin(key, DERP_KEY_LEN, t, strlen(t), NULL, &n, NULL) == 0 &&
                       n == DERP_KEY_LEN
                   ? 0
                   : BASE_EPARSE;
    return sodium_base642bin(key, DERP_KEY_LEN, t, strlen(t), NULL, &n, NULL,
                             sodium_base64_VARIANT_ORIGINAL) == 0 &&
                   n == DERP_KEY_LEN
               ? 0
               : BASE_EPARSE;
}

static int load_lines(FILE *f, const char *path, struct derp_keymap *m, char *err, size_t errlen)
{
    char line[512];
    for (int no = 1; fgets(line, sizeof(line), f); no++) {
        char *t = line + strspn(line, " \t");
        t[strcspn(t, " \t\r\n#")] = '\0';
        if (!*t)
            continue;
        uint8_t key[DERP_KEY_LEN];
        if (parse_key(t, key) != 0) {
            snprintf(err, errlen, "%s:%d: not a key", path, no);
            return BASE_EPARSE;
        }
        if (derp_keymap_put(m, key, (union derp_keymap_val){.num = 1}) != 0)
            return -ENOMEM;
    }
    return 0;
}

int derp_registry_load_allowed(const char *path, struct derp_keymap **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = -errno;
        snprintf(err, errlen, "%s: %s", path, base_strerror(e));
        return e;
    }
    struct derp_keymap *m = malloc(sizeof(*m));
    if (!m) {
        fclose(f);
        return -ENOMEM;
    }
    derp_keymap_init(m);
    int rc = load_lines(f, path, m, err, errlen);
    fclose(f);
    if (rc != 0) {
        derp_keymap_free(m);
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}
