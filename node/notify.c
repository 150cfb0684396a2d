/*
 * sd_notify(3) without libsystemd: one datagram of `KEY=VALUE` lines to the unix socket named by
 * $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@'). node_notify_start
 * subscribes to the lifecycle: STATUS= on every transition, READY=1 once start-up settles,
 * STOPPING=1 on shutdown.
 *
 * READY=1 means "the service has started", which for systemd's Type=notify is when the node
 * settles in Running, and also in Stopped (want_running false in prefs.json) or NeedsConfig (the
 * keyless first start): in those the node is up and answers its API, and a unit that never sent
 * READY=1 would be killed by systemd's start timeout. Whether the tunnel is up is /readyz's
 * question, and STATUS= says which state the node is in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"

int node_notify_send(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sun.sun_path))
        return -EINVAL;
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0'; /* abstract namespace: the name is not NUL-terminated */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    ssize_t n =
        sendto(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sun, salen);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static void send_logged(struct node_daemon *d, const char *msg)
{
    int rc = node_notify_send(msg);
    if (rc != 0)
        node_log(&d->log, BASE_LOG_WARN, "notify_failed", "err=%s", base_errname(rc));
}

static void on_event(struct node_subscriber *s, const struct node_event *ev)
{
    struct node_daemon *d = container_of(s, struct node_daemon, life.notify);
    char msg[256];
    if (ev->kind == NODE_EVENT_SHUTDOWN) {
        send_logged(d, "STOPPING=1\nSTATUS=Stopping");
        return;
    }
    if (ev->kind != NODE_EVENT_STATE || ev->to == NODE_LC_STARTING)
        return;
    bool ready = !d->life.notified_ready;
    d->life.notified_ready = true;
    const char *what = ev->to == NODE_LC_RUNNING   ? "peers up"
                       : ev->to == NODE_LC_STOPPED ? "want_running is false: tunless up resumes"
                                                   : "no configuration yet";
    size_t peers = d->have_config ? d->cfg.n_peers : 0;
    if (ev->to == NODE_LC_RUNNING)
        snprintf(msg, sizeof(msg), "%sSTATUS=%s: %zu %s", ready ? "READY=1\n" : "",
                 node_lc_state_name(ev->to), peers, peers == 1 ? "peer" : "peers");
    else
        snprintf(msg, sizeof(msg), "%sSTATUS=%s: %s", ready ? "READY=1\n" : "",
                 node_lc_state_name(ev->to), what);
    send_logged(d, msg);
}

void node_notify_start(struct node_daemon *d)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return;
    d->life.notify.on_event = on_event;
    node_lifecycle_subscribe(d, &d->life.notify);
    node_log(&d->log, BASE_LOG_DEBUG, "notify_socket", "path=%s", path);
    /* Start-up has settled already: say so now. */
    enum node_lc_state now = node_lifecycle_state(d);
    if (now != NODE_LC_STARTING)
        on_event(&d->life.notify,
                 &(struct node_event){.kind = NODE_EVENT_STATE, .from = now, .to = now});
}
