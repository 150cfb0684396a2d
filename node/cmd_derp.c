/*
 * `tunless derp`: the DERP relay server. Flags -> a derp_server_config (the key from the state
 * directory, generated on first start) -> derp_server_new on one loop; SIGHUP reloads the
 * certificate and the verify-clients file, SIGTERM sends Restarting to every client and stops,
 * SIGINT stops; a second signal exits at once.
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <uv.h>

#include "derp.h"
#include "log.h"
#include "node.h"
#include "state.h"

struct derp_cmd {
    uv_loop_t *loop;
    struct derp_server *srv;
    struct node_log log;
    uv_signal_t sig_int, sig_term, sig_hup;
    int signals_seen;
    char mesh_key[DERP_KEY_LEN * 4 + 1];
};

static void usage(FILE *out)
{
    struct derp_limits d;
    derp_limits_default(&d);
    fprintf(
        out,
        "usage: tunless derp [options]\n"
        "  --listen ADDR          TCP listener (default 0.0.0.0:443)\n"
        "  --http                 plain HTTP instead of TLS (loopback, tests)\n"
        "  --cert FILE --key FILE TLS certificate chain and key, PEM (reloaded on SIGHUP)\n"
        "  --state-dir DIR        where the server key lives (generated on first start)\n"
        "  --stun ADDR|off        STUN on UDP (default: the listener's address, port 3478)\n"
        "  --mesh-key KEY         shared by meshed servers (or --mesh-key-file FILE,\n"
        "                         or TUNLESS_DERP_MESH_KEY)\n"
        "  --mesh-with URL,...    other servers of the region: http://host:port, https://host\n"
        "  --mesh-insecure        https mesh links skip certificate checks\n"
        "  --verify-clients FILE  only these client keys may log in (reloaded on SIGHUP)\n"
        "  --login-timeout MS     (%u)   --max-frame BYTES (%u)   --max-client-info BYTES (%u)\n"
        "  --queue-depth N        (%u)   --write-timeout MS (%u)\n"
        "  --rate BYTES_PER_SEC   (%u, none)   --rate-burst BYTES (one second of --rate)\n"
        "  --max-clients N        (%u)   --keepalive MS (%u)\n"
        "  --restart-reconnect MS (%u)   --restart-try-for MS (%u)\n"
        "  --log-level LEVEL      error, warn, info (default), debug\n",
        d.login_timeout_ms, d.max_frame, d.max_client_info, d.queue_depth, d.write_timeout_ms,
        d.rate_bytes_per_sec, d.max_clients, d.keepalive_ms, d.restart_reconnect_ms,
        d.restart_try_for_ms);
}

struct derp_args {
    struct derp_server_config cfg;
    const char *listen, *stun, *state_dir, *mesh_key_file, *log_level;
    int plain_http, mesh_insecure;
};

/* Options taking a string: each fills one field of derp_args or of its config. */
static const struct {
    const char *name;
    size_t offset;
} string_opts[] = {
    {"listen", offsetof(struct derp_args, listen)},
    {"stun", offsetof(struct derp_args, stun)},
    {"state-dir", offsetof(struct derp_args, state_dir)},
    {"mesh-key-file", offsetof(struct derp_args, mesh_key_file)},
    {"log-level", offsetof(struct derp_args, log_level)},
    {"cert", offsetof(struct derp_args, cfg.cert_file)},
    {"key", offsetof(struct derp_args, cfg.key_file)},
    {"mesh-key", offsetof(struct derp_args, cfg.mesh_key)},
    {"mesh-with", offsetof(struct derp_args, cfg.mesh_with)},
    {"verify-clients", offsetof(struct derp_args, cfg.verify_clients)},
};
#define N_STRINGS (sizeof(string_opts) / sizeof(string_opts[0]))

/* Options taking a number: each fills one of the limits. */
static const struct {
    const char *name;
    size_t offset;
} limit_opts[] = {
    {"login-timeout", offsetof(struct derp_limits, login_timeout_ms)},
    {"max-frame", offsetof(struct derp_limits, max_frame)},
    {"max-client-info", offsetof(struct derp_limits, max_client_info)},
    {"queue-depth", offsetof(struct derp_limits, queue_depth)},
    {"write-timeout", offsetof(struct derp_limits, write_timeout_ms)},
    {"rate", offsetof(struct derp_limits, rate_bytes_per_sec)},
    {"rate-burst", offsetof(struct derp_limits, rate_burst)},
    {"max-clients", offsetof(struct derp_limits, max_clients)},
    {"keepalive", offsetof(struct derp_limits, keepalive_ms)},
    {"restart-reconnect", offsetof(struct derp_limits, restart_reconnect_ms)},
    {"restart-try-for", offsetof(struct derp_limits, restart_try_for_ms)},
};
#define N_LIMITS (sizeof(limit_opts) / sizeof(limit_opts[0]))

/* getopt values: 'h', the two switches, then one per table entry. */
enum { OPT_HTTP = 256, OPT_MESH_INSECURE, OPT_STRING, OPT_LIMIT = OPT_STRING + (int)N_STRINGS };

static int parse_u32(const char *name, const char *v, uint32_t *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || n > UINT32_MAX) {
        fprintf(stderr, "tunless derp: --%s: not a number: %s\n", name, v);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

/* "1.2.3.4:443", "[::]:443", or ":443" for every IPv4 address. */
static int parse_addr(const char *flag, const char *v, struct base_endpoint *out)
{
    char buf[BASE_ENDPOINT_STRLEN + 8];
    if (v[0] == ':') {
        snprintf(buf, sizeof(buf), "0.0.0.0%s", v);
        v = buf;
    }
    if (base_endpoint_parse(out, v, strlen(v)) != 0) {
        fprintf(stderr, "tunless derp: --%s: not IP:PORT: %s\n", flag, v);
        return -1;
    }
    return 0;
}

static int parse_opt(struct derp_args *a, int c, const char *arg)
{
    if (c >= OPT_LIMIT && c < OPT_LIMIT + (int)N_LIMITS) {
        size_t i = (size_t)(c - OPT_LIMIT);
        uint32_t *field = (uint32_t *)((char *)&a->cfg.limits + limit_opts[i].offset);
        return parse_u32(limit_opts[i].name, arg, field);
    }
    if (c >= OPT_STRING && c < OPT_STRING + (int)N_STRINGS) {
        *(const char **)((char *)a + string_opts[c - OPT_STRING].offset) = arg;
        return 0;
    }
    if (c == OPT_HTTP)
        a->plain_http = 1;
    else if (c == OPT_MESH_INSECURE)
        a->mesh_insecure = 1;
    else
        return -1;
    return 0;
}

static int parse_args(struct derp_args *a, int argc, char **argv)
{
    struct option longopts[N_STRINGS + N_LIMITS + 4];
    size_t n = 0;
    for (size_t i = 0; i < N_STRINGS; i++)
        longopts[n++] =
            (struct option){string_opts[i].name, required_argument, NULL, OPT_STRING + (int)i};
    for (size_t i = 0; i < N_LIMITS; i++)
        longopts[n++] =
            (struct option){limit_opts[i].name, required_argument, NULL, OPT_LIMIT + (int)i};
    longopts[n++] = (struct option){"http", no_argument, NULL, OPT_HTTP};
    longopts[n++] = (struct option){"mesh-insecure", no_argument, NULL, OPT_MESH_INSECURE};
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        if (c == 'h') {
            usage(stdout);
            return 1;
        }
        if (parse_opt(a, c, optarg) != 0) {
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tunless derp: unexpected argument: %s\n", argv[optind]);
        return -1;
    }
    a->cfg.mesh_insecure = a->mesh_insecure;
    if (a->log_level && base_log_level_parse(a->log_level, &a->cfg.log.level) != 0) {
        fprintf(stderr, "tunless derp: --log-level: unknown level %s\n", a->log_level);
        return -1;
    }
    return 0;
}

/* Mesh key from the flag, the file or the environment; the file and env keep it off `ps`. */
static int load_mesh_key(struct derp_cmd *d, struct derp_args *a)
{
    const char *env = getenv("TUNLESS_DERP_MESH_KEY");
    if (!a->cfg.mesh_key && env && *env)
        a->cfg.mesh_key = env;
    if (!a->mesh_key_file)
        return 0;
    FILE *f = fopen(a->mesh_key_file, "r");
    if (!f || !fgets(d->mesh_key, sizeof(d->mesh_key), f)) {
        fprintf(stderr, "tunless derp: --mesh-key-file: cannot read %s\n", a->mesh_key_file);
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    d->mesh_key[strcspn(d->mesh_key, "\r\n")] = '\0';
    a->cfg.mesh_key = d->mesh_key;
    return 0;
}

static int resolve_config(struct derp_cmd *d, struct derp_args *a)
{
    struct derp_server_config *cfg = &a->cfg;
    if (!a->plain_http && (!cfg->cert_file || !cfg->key_file)) {
        fprintf(stderr, "tunless derp: TLS needs --cert and --key (or --http for plain HTTP)\n");
        return -1;
    }
    if (a->plain_http)
        cfg->cert_file = cfg->key_file = NULL;
    if (parse_addr("listen", a->listen ? a->listen : "0.0.0.0:443", &cfg->listen) != 0)
        return -1;
    if (a->stun && strcmp(a->stun, "off") == 0) {
        memset(&cfg->stun, 0, sizeof(cfg->stun));
    } else if (a->stun) {
        if (parse_addr("stun", a->stun, &cfg->stun) != 0)
            return -1;
    } else {
        cfg->stun = cfg->listen;
        cfg->stun.port = 3478;
    }
    if (load_mesh_key(d, a) != 0)
        return -1;
    char dir[PATH_MAX], err[512];
    int created = 0;
    if (a->state_dir)
        snprintf(dir, sizeof(dir), "%s", a->state_dir);
    else if (node_state_dir(NULL, dir, sizeof(dir) - 5) == 0)
        strcat(dir, "/derp");
    else {
        fprintf(stderr, "tunless derp: no --state-dir and no home directory\n");
        return -1;
    }
    if (node_state_load_key(dir, cfg->private_key, &created, err, sizeof(err)) != 0) {
        fprintf(stderr, "tunless derp: %s\n", err);
        return -1;
    }
    base_logf(&cfg->log, BASE_LOG_INFO, "event=server_key state_dir=%s created=%d", dir, created);
    return 0;
}

static void on_closed(void *arg)
{
    struct derp_cmd *d = arg;
    d->srv = NULL;
    uv_close((uv_handle_t *)&d->sig_int, NULL);
    uv_close((uv_handle_t *)&d->sig_term, NULL);
    uv_close((uv_handle_t *)&d->sig_hup, NULL);
}

static void on_stop(uv_signal_t *sig, int signum)
{
    struct derp_cmd *d = sig->data;
    if (d->signals_seen++ > 0 || !d->srv)
        exit(1);
    node_log(&d->log, BASE_LOG_INFO, "signal", "name=%s action=%s",
             signum == SIGTERM ? "SIGTERM" : "SIGINT", signum == SIGTERM ? "restart" : "stop");
    derp_server_close(d->srv, signum == SIGTERM, on_closed, d);
}

static void on_hup(uv_signal_t *sig, int signum)
{
    (void)signum;
    struct derp_cmd *d = sig->data;
    char err[512];
    char q[600];
    node_log(&d->log, BASE_LOG_INFO, "signal", "name=SIGHUP action=reload");
    if (d->srv && derp_server_reload(d->srv, err, sizeof(err)) != 0)
        node_log(&d->log, BASE_LOG_WARN, "reload_failed", "error=%s",
                 base_log_quote(q, sizeof(q), err));
}

int node_cmd_derp(int argc, char **argv)
{
    struct derp_cmd d = {0};
    struct derp_args a = {0};
    derp_limits_default(&a.cfg.limits);
    d.log = (struct node_log){.level = BASE_LOG_INFO, .out = stderr};
    a.cfg.log = node_log_logger(&d.log);
    int rc = parse_args(&a, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    d.log.level = a.cfg.log.level;
    if (resolve_config(&d, &a) != 0)
        return 2;
    d.loop = uv_default_loop();
    char err[512] = "";
    rc = derp_server_new(d.loop, &a.cfg, &d.srv, err, sizeof(err));
    sodium_memzero(a.cfg.private_key, sizeof(a.cfg.private_key));
    if (rc != 0) {
        fprintf(stderr, "tunless derp: %s\n", err[0] ? err : base_strerror(rc));
        uv_run(d.loop, UV_RUN_DEFAULT);
        return 2;
    }
    uv_signal_t *sigs[] = {&d.sig_int, &d.sig_term, &d.sig_hup};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(d.loop, sigs[i]);
        sigs[i]->data = &d;
    }
    uv_signal_start(&d.sig_int, on_stop, SIGINT);
    uv_signal_start(&d.sig_term, on_stop, SIGTERM);
    uv_signal_start(&d.sig_hup, on_hup, SIGHUP);
    uv_run(d.loop, UV_RUN_DEFAULT);
    uv_loop_close(d.loop);
    return 0;
}
