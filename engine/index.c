#include "index.h"

#include <sodium.h>
#include <stdlib.h>

#define INDEX_INITIAL_BUCKETS 64

int wg_index_init(struct wg_index_table *t)
{
    t->nbuckets = INDEX_INITIAL_BUCKETS;
    t->count = 0;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    return t->buckets ? 0 : -1;
}

void wg_index_free(struct wg_index_table *t)
{
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct wg_index_entry *e = t->buckets[i]; e; e = e->next)
            e->in_table = false;
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->count = 0;
}

static size_t bucket_of(const struct wg_index_table *t, uint32_t index)
{
    return index & (t->nbuckets - 1); /* indices are uniformly random */
}

/* Doubling keeps chains short; if memory is short we keep the old array (longer chains). */
static void grow(struct wg_index_table *t)
{
    size_t n = t->nbuckets * 2;
    struct wg_index_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct wg_index_entry *e = t->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            size_t j = e->index & (n - 1);
            e->next = b[j];
            b[j] = e;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static void insert(struct wg_index_table *t, struct wg_index_entry *e)
{
    size_t b = bucket_of(t, e->index);
    e->next = t->buckets[b];
    t->buckets[b] = e;
    e->in_table = true;
    t->count++;
}

void wg_index_add(struct wg_index_table *t, struct wg_index_entry *e)
{
    wg_index_remove(t, e);
    if (t->count >= t->nbuckets)
        grow(t);
    do
        e->index = randombytes_random();
    while (wg_index_lookup(t, e->index));
    insert(t, e);
}

void wg_index_add_with_index(struct wg_index_table *t, struct wg_index_entry *e, uint32_t index)
{
    wg_index_remove(t, e);
    if (t->count >= t->nbuckets)
        grow(t);
    e->index = index;
    insert(t, e);
}

void wg_index_remove(struct wg_index_table *t, struct wg_index_entry *e)
{
    if (!e->in_table)
        return;
    struct wg_index_entry **p = &t->buckets[bucket_of(t, e->index)];
    for (; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            t->count--;
            break;
        }
    }
    e->next = NULL;
    e->in_table = false;
}

struct wg_index_entry *wg_index_lookup(const struct wg_index_table *t, uint32_t index)
{
    for (struct wg_index_entry *e = t->buckets[bucket_of(t, index)]; e; e = e->next)
        if (e->index == index)
            return e;
    return NULL;
}
