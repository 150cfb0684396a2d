/*
 * The lifecycle commands, clients of the running node's local API: `tunless down` (want_running
 * false), `tunless up` given to a running node (want_running true: node_cmd_resume), `tunless
 * set` (preferences; none given prints them); `tunless watch` is cmd_watch.c. Flow: parse_args
 * -> call (PATCH or GET /v0/prefs) -> print. Exit 0, 1 on a failure (one line), 2 on bad usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "localapi_client.h"
#include "node.h"

struct life_args {
    const char *socket;
    const char *log_level, *outbound, *shields_up;
    bool json, help;
};

static int parse_args(int argc, char **argv, struct life_args *a)
{
    static const struct option longopts[] = {{"socket", required_argument, NULL, 's'},
                                             {"log-level", required_argument, NULL, 'l'},
                                             {"outbound", required_argument, NULL, 'o'},
                                             {"shields-up", required_argument, NULL, 'u'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            a->socket = optarg;
            break;
        case 'l':
            a->log_level = optarg;
            break;
        case 'o':
            a->outbound = optarg;
            break;
        case 'u':
            a->shields_up = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 'h':
            a->help = true;
            break;
        default:
            return -1;
        }
    }
    return optind < argc ? -1 : 0;
}

static void usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "down") == 0)
        fprintf(out,
                "usage: tunless down [--socket PATH]\n"
                "  stop the running node (Stopped: peers removed, proxies answer \"stopped\");\n"
                "  kept across restarts; `tunless up` resumes it\n");
    else
        fprintf(out, "usage: tunless set [--log-level LEVEL] [--outbound direct|tunnel-only]\n"
                     "                   [--shields-up true|false] [--json] [--socket PATH]\n"
                     "  change the running node's preferences at once (kept in prefs.json);\n"
                     "  with none given, print them\n");
    fprintf(out, "  --socket PATH  the node's local API (default: TUNLESS_SOCKET, else "
                 "STATE_DIR/tunless.sock as `tunless up` uses)\n");
}

/* ---- prefs ---- */

static void print_prefs(const json_t *p, bool json)
{
    if (json) {
        char *s = json_dumps(p, JSON_INDENT(2));
        printf("%s\n", s ? s : "{}");
        free(s);
        return;
    }
    /* A field missing (another node's answer) prints as "?", never printf's NULL. */
    const char *st = json_string_value(json_object_get(p, "state"));
    const char *level = json_string_value(json_object_get(p, "log_level"));
    const char *out = json_string_value(json_object_get(p, "outbound"));
    printf("state=%s want_running=%s log_level=%s outbound=%s shields_up=%s\n", st ? st : "?",
           json_is_true(json_object_get(p, "want_running")) ? "true" : "false", level ? level : "?",
           out ? out : "?", json_is_true(json_object_get(p, "shields_up")) ? "true" : "false");
}

/* One request; prints the failure and returns 1, or 0 with the JSON answer in *out. */
static int call(const char *cmd, const char *socket, const char *method, const json_t *body,
                json_t **out)
{
    char path[4200], err[4400];
    struct node_localapi_reply r;
    if (node_localapi_client_socket(socket, path, sizeof(path), cmd) != 0)
        return 1;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc = node_localapi_call(path, method, "/v0/prefs", text, &r, err, sizeof(err));
    free(text);
    if (rc != 0) {
        fprintf(stderr, "tunless %s: %s\n", cmd, err);
        return 1;
    }
    if (r.status / 100 != 2 || !r.json) {
        fprintf(stderr, "tunless %s: %s (HTTP %d)\n", cmd, node_localapi_reply_error(&r), r.status);
        node_localapi_reply_free(&r);
        return 1;
    }
    *out = json_incref(r.json);
    node_localapi_reply_free(&r);
    return 0;
}

static int set_running(const char *cmd, const char *socket, bool run)
{
    json_t *body = json_pack("{s:b}", "want_running", run), *got = NULL;
    int rc = call(cmd, socket, "PATCH", body, &got);
    json_decref(body);
    if (rc != 0)
        return rc;
    const json_t *st = json_object_get(got, "state");
    printf("tunless: the node is %s%s\n", json_is_string(st) ? json_string_value(st) : "?",
           run ? "" : " (`tunless up` resumes it)");
    json_decref(got);
    return 0;
}

int node_cmd_down(int argc, char **argv)
{
    struct life_args a;
    if (parse_args(argc, argv, &a) != 0 || a.log_level || a.outbound || a.shields_up) {
        usage(stderr, "down");
        return 2;
    }
    if (a.help) {
        usage(stdout, "down");
        return 0;
    }
    return set_running("down", a.socket, false);
}

int node_cmd_resume(const char *socket)
{
    return set_running("up", socket, true);
}

int node_cmd_set(int argc, char **argv)
{
    struct life_args a;
    if (parse_args(argc, argv, &a) != 0) {
        usage(stderr, "set");
        return 2;
    }
    if (a.help) {
        usage(stdout, "set");
        return 0;
    }
    json_t *body = json_object(), *got = NULL;
    if (a.log_level)
        json_object_set_new(body, "log_level", json_string(a.log_level));
    if (a.outbound)
        json_object_set_new(body, "outbound", json_string(a.outbound));
    if (a.shields_up && strcmp(a.shields_up, "true") != 0 && strcmp(a.shields_up, "false") != 0) {
        fprintf(stderr, "tunless set: --shields-up: want true or false\n");
        json_decref(body);
        return 2;
    }
    if (a.shields_up)
        json_object_set_new(body, "shields_up", json_boolean(strcmp(a.shields_up, "true") == 0));
    bool change = json_object_size(body) > 0;
    int rc = call("set", a.socket, change ? "PATCH" : "GET", change ? body : NULL, &got);
    json_decref(body);
    if (rc != 0)
        return rc;
    print_prefs(got, a.json);
    json_decref(got);
    return 0;
}
