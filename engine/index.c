/* The local index table: a hash of intrusive entries by their random 32-bit index; add gives an
 * entry a fresh index, lookup finds it again, remove takes it out (and is safe to repeat). */
#include "index.h"

#include <sodium.h>
#include <stdlib.h>

#define INDEX_INITIAL_BUCKETS 64

static struct base_list *new_buckets(size_t n)
{
    struct base_list *b = malloc(n * sizeof(*b));
    for (size_t i = 0; b && i < n; i++)
        base_list_init(&b[i]);
    return b;
}

int wg_index_init(struct wg_index_table *t)
{
    t->nbuckets = INDEX_INITIAL_BUCKETS;
    t->count = 0;
    t->buckets = new_buckets(t->nbuckets);
    return t->buckets ? 0 : -ENOMEM;
}

void wg_index_free(struct wg_index_table *t)
{
    struct base_list *l, *tmp;
    for (size_t i = 0; i < t->nbuckets; i++)
        base_list_foreach_safe (l, tmp, &t->buckets[i])
            base_list_remove(l);
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->count = 0;
}

static struct base_list *bucket_of(const struct wg_index_table *t, uint32_t index)
{
    return &t->buckets[index & (t->nbuckets - 1)]; /* indices are uniformly random */
}

/* Doubling keeps chains short; if memory is short we keep the old array (longer chains). */
static void grow(struct wg_index_table *t)
{
    size_t n = t->nbuckets * 2;
    struct base_list *b = new_buckets(n);
    if (!b)
        return;
    struct base_list *l, *tmp;
    for (size_t i = 0; i < t->nbuckets; i++) {
        base_list_foreach_safe (l, tmp, &t->buckets[i]) {
            struct wg_index_entry *e = container_of(l, struct wg_index_entry, link);
            base_list_remove(l);
            base_list_push_front(&b[e->index & (n - 1)], l);
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static void insert(struct wg_index_table *t, struct wg_index_entry *e)
{
    base_list_push_front(bucket_of(t, e->index), &e->link);
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
    if (!base_list_linked(&e->link))
        return;
    base_list_remove(&e->link);
    t->count--;
}

struct wg_index_entry *wg_index_lookup(const struct wg_index_table *t, uint32_t index)
{
    struct base_list *l;
    base_list_foreach (l, bucket_of(t, index)) {
        struct wg_index_entry *e = container_of(l, struct wg_index_entry, link);
        if (e->index == index)
            return e;
    }
    return NULL;
}
