/* The allowed-IPs trie (see allowedips.h): key helpers, the owner -> nodes index, the trie
 * (insert with path compression, node removal), then the public calls. */
#include "allowedips.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/*
 * Keys are held as two 64-bit words, most significant bit first (an IPv4 address fills the top
 * 32 bits of word 0), so "how many leading bits agree" is one xor and one count-leading-zeros.
 * A node's key is masked to its cidr. Nodes without an owner are the branch points that path
 * compression needs; they always have two children.
 */
struct wg_allowedips_node {
    struct wg_allowedips_node *bit[2];
    struct wg_allowedips_node *parent;
    void *owner;
    struct base_list owner_link; /* in its owner's nodes, in insert order */
    uint64_t key[2];
    uint8_t cidr;
    uint8_t bits; /* 32 or 128: which trie the node lives in */
};

struct wg_allowedips_owner {
    void *owner;
    struct base_list nodes;       /* wg_allowedips_node.owner_link */
    struct base_list bucket_link; /* in the table's owner hash */
};

typedef struct wg_allowedips_node node_t;
typedef struct wg_allowedips_owner owner_t;

static int family_bits(int family)
{
    if (family == AF_INET)
        return 32;
    if (family == AF_INET6)
        return 128;
    return 0;
}

static void key_load(uint64_t key[2], const uint8_t *addr, int bits)
{
    key[0] = key[1] = 0;
    for (int i = 0; i < bits / 8; i++)
        key[i / 8] |= (uint64_t)addr[i] << (56 - 8 * (i % 8));
}

static void key_store(uint8_t *addr, const uint64_t key[2], int bits)
{
    for (int i = 0; i < bits / 8; i++)
        addr[i] = (uint8_t)(key[i / 8] >> (56 - 8 * (i % 8)));
}

static void key_mask(uint64_t key[2], unsigned cidr)
{
    for (unsigned i = 0; i < 2; i++) {
        unsigned keep = cidr > 64 * i ? cidr - 64 * i : 0;
        if (keep == 0)
            key[i] = 0;
        else if (keep < 64)
            key[i] &= ~UINT64_C(0) << (64 - keep);
    }
}

static unsigned common_bits(const uint64_t a[2], const uint64_t b[2])
{
    uint64_t x = a[0] ^ b[0];
    if (x)
        return (unsigned)__builtin_clzll(x);
    x = a[1] ^ b[1];
    if (x)
        return 64 + (unsigned)__builtin_clzll(x);
    return 128;
}

static int prefix_matches(const node_t *n, const uint64_t key[2])
{
    return common_bits(n->key, key) >= n->cidr;
}

/* The child of n that key descends into: key's first bit after n's prefix. n->cidr < n->bits. */
static int choose(const node_t *n, const uint64_t key[2])
{
    unsigned pos = n->cidr;
    return (int)((key[pos / 64] >> (63 - pos % 64)) & 1);
}

static node_t **root_of(struct wg_allowedips *t, int bits)
{
    return bits == 32 ? &t->root4 : &t->root6;
}

static node_t *const *root_of_const(const struct wg_allowedips *t, int bits)
{
    return bits == 32 ? &t->root4 : &t->root6;
}

static node_t *node_new(const uint64_t key[2], unsigned cidr, int bits)
{
    node_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->key[0] = key[0];
    n->key[1] = key[1];
    key_mask(n->key, cidr);
    n->cidr = (uint8_t)cidr;
    n->bits = (uint8_t)bits;
    return n;
}

static void connect_child(node_t *parent, node_t *child)
{
    parent->bit[choose(parent, child->key)] = child;
    child->parent = parent;
}

/* Puts child where n hangs (under n's parent, or at the root); child may be NULL. */
static void replace_in_parent(struct wg_allowedips *t, node_t *n, node_t *child)
{
    node_t **slot = n->parent ? &n->parent->bit[n->parent->bit[1] == n] : root_of(t, n->bits);
    *slot = child;
    if (child)
        child->parent = n->parent;
}

/* ---- owner -> nodes index ---- */

static size_t owner_hash(const void *owner, size_t buckets)
{
    uint64_t h = (uint64_t)(uintptr_t)owner * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & (buckets - 1);
}

static owner_t *owner_find(const struct wg_allowedips *t, const void *owner)
{
    if (!t->owner_buckets)
        return NULL;
    struct base_list *l;
    base_list_foreach (l, &t->owners[owner_hash(owner, t->owner_buckets)]) {
        owner_t *e = container_of(l, owner_t, bucket_link);
        if (e->owner == owner)
            return e;
    }
    return NULL;
}

static int owner_grow(struct wg_allowedips *t)
{
    size_t nb = t->owner_buckets ? t->owner_buckets * 2 : 16;
    struct base_list *nt = malloc(nb * sizeof(*nt));
    if (!nt)
        return -1;
    for (size_t i = 0; i < nb; i++)
        base_list_init(&nt[i]);
    struct base_list *l, *tmp;
    for (size_t i = 0; i < t->owner_buckets; i++) {
        base_list_foreach_safe (l, tmp, &t->owners[i]) {
            base_list_remove(l);
            base_list_push_front(&nt[owner_hash(container_of(l, owner_t, bucket_link)->owner, nb)],
                                 l);
        }
    }
    free(t->owners);
    t->owners = nt;
    t->owner_buckets = nb;
    return 0;
}

static owner_t *owner_get(struct wg_allowedips *t, void *owner)
{
    owner_t *e = owner_find(t, owner);
    if (e)
        return e;
    if (t->owner_count >= t->owner_buckets && owner_grow(t) < 0)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->owner = owner;
    base_list_init(&e->nodes);
    base_list_push_front(&t->owners[owner_hash(owner, t->owner_buckets)], &e->bucket_link);
    t->owner_count++;
    return e;
}

static void owner_append(owner_t *e, node_t *n)
{
    n->owner = e->owner;
    base_list_push_back(&e->nodes, &n->owner_link);
}

static void owner_drop_entry(struct wg_allowedips *t, owner_t *e)
{
    base_list_remove(&e->bucket_link);
    t->owner_count--;
    free(e);
}

static void owner_unlink(struct wg_allowedips *t, node_t *n)
{
    if (!n->owner)
        return;
    owner_t *e = owner_find(t, n->owner);
    base_list_remove(&n->owner_link);
    n->owner = NULL;
    if (base_list_empty(&e->nodes))
        owner_drop_entry(t, e);
}

/* ---- trie ---- */

/* The deepest node whose prefix contains key/cidr with cidr no longer than cidr. */
static node_t *find_parent(node_t *root, const uint64_t key[2], unsigned cidr)
{
    node_t *parent = NULL;
    for (node_t *n = root; n && n->cidr <= cidr && prefix_matches(n, key);) {
        parent = n;
        if (n->cidr == cidr)
            break;
        n = n->bit[choose(n, key)];
    }
    return parent;
}

static int set_owner(struct wg_allowedips *t, node_t *n, void *owner)
{
    if (n->owner == owner)
        return 0;
    owner_t *e = owner_get(t, owner); /* may fail: do it before touching the old owner */
    if (!e)
        return -1;
    owner_unlink(t, n);
    owner_append(e, n);
    return 0;
}

static int add(struct wg_allowedips *t, int bits, const uint64_t key[2], unsigned cidr, void *owner)
{
    node_t **root = root_of(t, bits);
    node_t *parent = find_parent(*root, key, cidr);
    if (parent && parent->cidr == cidr)
        return set_owner(t, parent, owner);

    owner_t *e = owner_get(t, owner);
    if (!e)
        return -1;
    node_t *down = parent ? parent->bit[choose(parent, key)] : *root;
    node_t *nn = node_new(key, cidr, bits);
    unsigned split = 0;
    node_t *mid = NULL;
    if (down) {
        split = common_bits(down->key, key);
        if (split > cidr)
            split = cidr;
        if (split < cidr)
            mid = node_new(key, split, bits);
    }
    if (!nn || (down && split < cidr && !mid)) {
        free(nn);
        free(mid);
        if (base_list_empty(&e->nodes))
            owner_drop_entry(t, e);
        return -1;
    }
    owner_append(e, nn);

    node_t *top = nn;
    if (down && !mid) {
        /* down lies inside the new, shorter prefix */
        connect_child(nn, down);
    } else if (mid) {
        /* down and the new prefix part ways at bit `split`: a branch node joins them */
        connect_child(mid, down);
        connect_child(mid, nn);
        top = mid;
    }
    if (parent) {
        connect_child(parent, top);
    } else {
        *root = top;
        top->parent = NULL;
    }
    return 0;
}

/* Drops n's owner and then whatever of n (and an ownerless parent) the trie no longer needs. */
static void node_remove(struct wg_allowedips *t, node_t *n)
{
    owner_unlink(t, n);
    if (n->bit[0] && n->bit[1])
        return; /* stays as a branch node */
    node_t *parent = n->parent;
    replace_in_parent(t, n, n->bit[0] ? n->bit[0] : n->bit[1]);
    free(n);
    if (!parent || parent->owner || (parent->bit[0] && parent->bit[1]))
        return;
    /* parent was a branch node and has one child left: it has no reason to exist */
    replace_in_parent(t, parent, parent->bit[0] ? parent->bit[0] : parent->bit[1]);
    free(parent);
}

static void free_subtree(node_t *n)
{
    /* Depth is bounded by the address length (at most 129 levels). */
    if (!n)
        return;
    free_subtree(n->bit[0]);
    free_subtree(n->bit[1]);
    free(n);
}

/* ---- public ---- */

void wg_allowedips_init(struct wg_allowedips *t)
{
    memset(t, 0, sizeof(*t));
}

void wg_allowedips_free(struct wg_allowedips *t)
{
    free_subtree(t->root4);
    free_subtree(t->root6);
    struct base_list *l, *tmp;
    for (size_t i = 0; i < t->owner_buckets; i++)
        base_list_foreach_safe (l, tmp, &t->owners[i])
            free(container_of(l, owner_t, bucket_link));
    free(t->owners);
    memset(t, 0, sizeof(*t));
}

/* p's masked key; returns the width of its trie (32 or 128), or 0 for a bad family or length. */
static int prefix_key(const struct base_prefix *p, uint64_t key[2])
{
    int bits = p ? family_bits(p->addr.family) : 0;
    if (!bits || p->bits > bits)
        return 0;
    key_load(key, p->addr.ip, bits);
    key_mask(key, p->bits);
    return bits;
}

int wg_allowedips_insert(struct wg_allowedips *t, const struct base_prefix *p, void *owner)
{
    uint64_t key[2];
    int bits = prefix_key(p, key);
    if (!bits || !owner)
        return -1;
    return add(t, bits, key, p->bits, owner);
}

int wg_allowedips_remove(struct wg_allowedips *t, const struct base_prefix *p, void *owner)
{
    uint64_t key[2];
    int bits = prefix_key(p, key);
    if (!bits)
        return -1;
    node_t *n = find_parent(*root_of(t, bits), key, p->bits);
    if (!n || n->cidr != p->bits || !n->owner || n->owner != owner)
        return 1;
    node_remove(t, n);
    return 0;
}

void wg_allowedips_remove_owner(struct wg_allowedips *t, void *owner)
{
    owner_t *e;
    /* node_remove frees the entry together with the owner's last node */
    while (owner && (e = owner_find(t, owner)) != NULL)
        node_remove(t, container_of(base_list_first(&e->nodes), node_t, owner_link));
}

void *wg_allowedips_lookup(const struct wg_allowedips *t, int family, const uint8_t *addr)
{
    int bits = family_bits(family);
    if (!bits || !addr)
        return NULL;
    uint64_t key[2];
    key_load(key, addr, bits);
    void *found = NULL;
    for (const node_t *n = *root_of_const(t, bits); n && prefix_matches(n, key);) {
        if (n->owner)
            found = n->owner;
        if (n->cidr == bits)
            break;
        n = n->bit[choose(n, key)];
    }
    return found;
}

typedef void (*foreach_fn)(void *arg, const struct base_prefix *p);

static void report(const node_t *n, foreach_fn fn, void *arg)
{
    struct base_prefix p = {.addr.family = n->bits == 32 ? AF_INET : AF_INET6, .bits = n->cidr};
    key_store(p.addr.ip, n->key, n->bits);
    fn(arg, &p);
}

static void walk(const node_t *n, foreach_fn fn, void *arg)
{
    if (!n)
        return;
    if (n->owner)
        report(n, fn, arg);
    walk(n->bit[0], fn, arg);
    walk(n->bit[1], fn, arg);
}

void wg_allowedips_foreach(const struct wg_allowedips *t, void *owner, foreach_fn fn, void *arg)
{
    if (!owner) {
        walk(t->root4, fn, arg);
        walk(t->root6, fn, arg);
        return;
    }
    const owner_t *e = owner_find(t, owner);
    struct base_list *l;
    if (e)
        base_list_foreach (l, &e->nodes)
            report(container_of(l, node_t, owner_link), fn, arg);
}
