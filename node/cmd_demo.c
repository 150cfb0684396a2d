/*
 * `tunless demo`: two nodes in one process, talking real WireGuard over loopback UDP.
 * Node b serves a small HTTP page on its tunnel address; node a serves the proxy and MagicDNS.
 * Both run the same start-up path as `tunless up`, from two wg-quick files written to a
 * private temporary directory.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include <unistd.h>

#include "daemon.h"
#include "localapi.h"
#include "node.h"

#define DEMO_A_ADDR "100.64.0.1"
#define DEMO_B_ADDR "100.64.0.2"

static const char page[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 45\r\nConnection: close\r\n\r\n"
    "Hello from node b, through WireGuard, no TUN\n";

/* ---- node b's web page, served from its netstack ---- */

static const struct ns_conn_cbs page_cbs;

static void page_on_read(struct ns_conn *c, const uint8_t *data, size_t len)
{
    ns_conn_consumed(c, len);
    if (!data) {
        ns_conn_close(c);
        return;
    }
    /* Any request gets the page; the client sends its head in one segment. */
    if (ns_conn_data(c))
        return;
    ns_conn_set_cbs(c, &page_cbs, (void *)1); /* answered: later bytes are ignored */
    ns_conn_write(c, page, sizeof(page) - 1);
    ns_conn_shutdown(c);
}

static void page_on_error(struct ns_conn *c, int err)
{
    (void)err;
    ns_conn_close(c);
}

static const struct ns_conn_cbs page_cbs = {.on_read = page_on_read, .on_error = page_on_error};

static void page_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    ns_conn_set_cbs(c, &page_cbs, NULL);
}

/* ---- set-up ---- */

/* A UDP port free right now on the loopback (the demo's two nodes need each other's). */
static int free_udp_port(uv_loop_t *loop)
{
    uv_udp_t u;
    struct sockaddr_in sin;
    struct sockaddr_storage got;
    int len = sizeof(got), port = -1;
    uv_udp_init(loop, &u);
    uv_ip4_addr("127.0.0.1", 0, &sin);
    if (uv_udp_bind(&u, (struct sockaddr *)&sin, 0) == 0 &&
        uv_udp_getsockname(&u, (struct sockaddr *)&got, &len) == 0)
        port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    uv_close((uv_handle_t *)&u, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return port;
}

static int write_conf(const char *path, const char *priv, const char *addr, int port,
                      const char *peer_name, const char *peer_pub, const char *peer_addr,
                      int peer_port)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fchmod(fileno(f), 0600);
    fprintf(f,
            "[Interface]\nPrivateKey = %s\nAddress = %s/32\nListenPort = %d\n\n"
            "[Peer]\n# Name = %s\nPublicKey = %s\nEndpoint = 127.0.0.1:%d\nAllowedIPs = %s/32\n",
            priv, addr, port, peer_name, peer_pub, peer_port, peer_addr);
    return fclose(f);
}

static void new_keypair(char priv[WG_KEY_B64_LEN + 1], char pub[WG_KEY_B64_LEN + 1])
{
    uint8_t k[WG_KEY_LEN], p[WG_KEY_LEN];
    wg_key_generate(k);
    wg_key_public(p, k);
    wg_key_to_base64(priv, k);
    wg_key_to_base64(pub, p);
    sodium_memzero(k, sizeof(k));
}

static int write_confs(const char *dir, int port_a, int port_b, char *conf_a, char *conf_b,
                       size_t cap)
{
    char priv_a[WG_KEY_B64_LEN + 1], pub_a[WG_KEY_B64_LEN + 1];
    char priv_b[WG_KEY_B64_LEN + 1], pub_b[WG_KEY_B64_LEN + 1];
    new_keypair(priv_a, pub_a);
    new_keypair(priv_b, pub_b);
    snprintf(conf_a, cap, "%s/a.conf", dir);
    snprintf(conf_b, cap, "%s/b.conf", dir);
    int ret = write_conf(conf_a, priv_a, DEMO_A_ADDR, port_a, "b", pub_b, DEMO_B_ADDR, port_b) |
              write_conf(conf_b, priv_b, DEMO_B_ADDR, port_b, "a", pub_a, DEMO_A_ADDR, port_a);
    sodium_memzero(priv_a, sizeof(priv_a));
    sodium_memzero(priv_b, sizeof(priv_b));
    return ret;
}

/* Node a's local API, on the socket `tunless status` finds by default. */
static void start_api(struct node_daemon *a, char *sock, size_t cap)
{
    char err[512] = "no path for the socket (give --socket)";
    if (node_localapi_socket_path(a->opts.socket_path, NULL, sock, cap) != 0 ||
        node_localapi_check(sock, err, sizeof(err)) != 0 ||
        node_localapi_start(a, sock, NULL, &a->api, err, sizeof(err)) != 0) {
        fprintf(stderr, "tunless demo: no local API (`tunless status` will not answer): %s\n", err);
        sock[0] = '\0';
    }
}

static void print_try(const struct node_options *o, const char *sock)
{
    const char *suffix = o->dns_suffix;
    char proxy[BASE_ADDR_STRLEN], dns[BASE_ADDR_STRLEN];
    base_addr_format(&o->proxy.addr, proxy, sizeof(proxy));
    base_addr_format(&o->dns_listen.addr, dns, sizeof(dns));
    printf("\ntunless demo: two nodes talk WireGuard over loopback UDP in this process.\n"
           "  node a  %s  proxy (SOCKS5 + HTTP) on %s:%u, MagicDNS on %s:%u\n"
           "  node b  %s  serves a page on port 80 of its tunnel address\n\n"
           "Try, from another terminal:\n"
           "  curl --socks5-hostname %s:%u http://b/\n"
           "  curl -x http://%s:%u http://b/\n"
           "  dig @%s -p %u b.%s\n",
           DEMO_A_ADDR, proxy, o->proxy.port, dns, o->dns_listen.port, DEMO_B_ADDR, proxy,
           o->proxy.port, proxy, o->proxy.port, dns, o->dns_listen.port, suffix);
    if (sock[0])
        printf("  tunless status%s%s        # node a and its peer b\n",
               o->socket_path ? " --socket " : "", o->socket_path ? sock : "");
    printf("\nCtrl-C stops it.\n\n");
    fflush(stdout);
}

/* Options for a: the user's (--proxy, --dns-listen may move the ports), with demo defaults. */
static int demo_options(int argc, char **argv, struct node_options *a, struct node_options *b,
                        const char *dir, char *err, size_t errlen)
{
    if (node_options_parse(argc, argv, a, err, errlen) != 0)
        return -1;
    if (!a->dns_listen_on) {
        node_parse_listen("127.0.0.1:5300", &a->dns_listen);
        a->dns_listen_on = true;
    }
    memset(b, 0, sizeof(*b));
    b->log_level = a->log_level;
    b->log_json = a->log_json;
    b->dns_suffix = strdup(a->dns_suffix);
    char sa[4200], sb[4200];
    snprintf(sa, sizeof(sa), "%s/state-a", dir);
    snprintf(sb, sizeof(sb), "%s/state-b", dir);
    free(a->state_dir);
    a->state_dir = strdup(sa);
    b->state_dir = strdup(sb);
    return 0;
}

static void remove_dir(const char *dir)
{
    char path[4200];
    const char *files[] = {"a.conf", "b.conf"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/state-a", dir);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/state-b", dir);
    rmdir(path);
    rmdir(dir);
}

int node_cmd_demo(int argc, char **argv)
{
    char dir[] = "/tmp/tunless-demo-XXXXXX", conf_a[4200], conf_b[4200], err[512];
    struct node_options oa, ob;
    uv_loop_t loop;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: tunless demo [--proxy ADDR] [--dns-listen ADDR] [--log-level LEVEL]\n");
        return 0;
    }
    if (!mkdtemp(dir)) {
        perror("tunless demo: mkdtemp");
        return 1;
    }
    if (demo_options(argc, argv, &oa, &ob, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "tunless demo: %s\n", err);
        remove_dir(dir);
        return 2;
    }
    uv_loop_init(&loop);
    int port_a = free_udp_port(&loop), port_b = free_udp_port(&loop);
    if (port_a < 0 || port_b < 0 || port_a == port_b ||
        write_confs(dir, port_a, port_b, conf_a, conf_b, sizeof(conf_a)) != 0) {
        fprintf(stderr, "tunless demo: cannot prepare the two nodes in %s\n", dir);
        remove_dir(dir);
        return 1;
    }
    oa.config_path = strdup(conf_a);
    ob.config_path = strdup(conf_b);
    oa.log_node = "a";
    ob.log_node = "b";

    struct node_daemon a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    /* A daemon takes ownership of its options when it starts, whatever the outcome. */
    bool b_up = node_daemon_start(&b, &loop, &ob) == 0;
    bool a_up = b_up && node_daemon_start(&a, &loop, &oa) == 0;
    if (!b_up)
        node_options_free(&oa);
    int code = 0;
    if (a_up) {
        ns_stack_handle_tcp(b.stack, NULL, 80, page_accept, NULL);
        char sock[4200];
        start_api(&a, sock, sizeof(sock));
        print_try(&a.opts, sock);
    } else {
        code = 2;
        if (b_up)
            node_daemon_stop(&b);
    }
    /* The config files stay until the end (remove_dir): each node watches its file, and
     * deleting it while they run would make them try, and refuse, a reload. */
    uv_run(&loop, UV_RUN_DEFAULT);
    code = code ? code : a.exit_code | b.exit_code;
    cfg_free(&a.cfg);
    cfg_free(&b.cfg);
    free(a.publish_ctx);
    free(b.publish_ctx);
    node_options_free(&a.opts);
    node_options_free(&b.opts);
    uv_loop_close(&loop);
    remove_dir(dir);
    return code;
}
