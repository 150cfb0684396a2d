/*
 * The node's memory budget (--max-memory, base_budget in base.h): the netstack and the proxies
 * charge what peers and clients make them hold, and shrink windows and buffers as it fills.
 * When use falls to half of a high mark (a burst of connections ended), glibc keeps the freed
 * memory resident: its heap only shrinks from the top, and a few live buffers pin the rest. A
 * short timer then calls malloc_trim(0), which also returns whole free pages inside the heap.
 * Measured in tests/integration/test_memory.sh (docs/architecture.md, "Memory").
 */
#include "daemon.h"

#include <malloc.h>

#define TRIM_DELAY_MS 200

static void on_trim(uv_timer_t *t)
{
    struct node_daemon *d = t->data;
    malloc_trim(0);
    node_log(&d->log, BASE_LOG_DEBUG, "memory_trimmed", "used=%zu limit=%zu", d->budget.used,
             d->budget.limit);
}

static void on_fall(void *arg)
{
    struct node_daemon *d = arg;
    if (!uv_is_closing((uv_handle_t *)&d->trim_timer) &&
        !uv_is_active((uv_handle_t *)&d->trim_timer))
        uv_timer_start(&d->trim_timer, on_trim, TRIM_DELAY_MS, 0);
}

void node_memory_init(struct node_daemon *d)
{
    d->budget = (struct base_budget){.limit = d->opts.max_memory, .on_fall = on_fall, .arg = d};
    d->dialer.budget = &d->budget;
    uv_timer_init(d->loop, &d->trim_timer);
    d->trim_timer.data = d;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

void node_memory_close(struct node_daemon *d)
{
    d->budget.on_fall = NULL;
    uv_close((uv_handle_t *)&d->trim_timer, on_closed);
}
