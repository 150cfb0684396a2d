/* The configuration's memory and the plumbing both parsers share: starting a config, growing
 * its arrays, error and warning lines, reading a file, freeing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "internal.h"

int cfg_begin(struct cfg_config *out, enum cfg_source source, const char *file)
{
    memset(out, 0, sizeof(*out));
    out->source = source;
    out->mtu = CFG_DEFAULT_MTU;
    out->file = strdup(file);
    return out->file ? 0 : -ENOMEM;
}

void *cfg_push(void *arr_ptr, size_t *n, size_t size)
{
    void **arr = arr_ptr;
    size_t count = *n;
    /* capacity is 4, then the next power of two: grow when count reaches it */
    if (count == 0 || (count >= 4 && (count & (count - 1)) == 0)) {
        size_t cap = count ? count * 2 : 4;
        if (cap > SIZE_MAX / size)
            return NULL;
        void *grown = realloc(*arr, cap * size);
        if (!grown)
            return NULL;
        *arr = grown;
    }
    void *slot = (char *)*arr + count * size;
    memset(slot, 0, size);
    *n = count + 1;
    return slot;
}

int cfg_vfail(char *err, size_t errlen, const char *file, const char *where, const char *fmt,
              va_list ap)
{
    char msg[384];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (err && errlen)
        snprintf(err, errlen, "%s%s: %s", file, where, msg);
    return BASE_ECONFIG;
}

int cfg_warn(struct cfg_config *c, const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -ENOMEM;
    char **slot = cfg_push(&c->warnings, &c->n_warnings, sizeof(*slot));
    if (!slot) {
        free(line);
        return -ENOMEM;
    }
    *slot = line;
    return 0;
}

int cfg_warn_mode(struct cfg_config *c, const char *path, mode_t mode, char *err, size_t errlen)
{
    if (!(mode & 077) ||
        cfg_warn(c, "%s: readable by other users although it holds a private key (chmod 600 it)",
                 path) == 0)
        return 0;
    cfg_free(c);
    snprintf(err, errlen, "%s: out of memory", path);
    return -ENOMEM;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void cfg_free(struct cfg_config *c)
{
    if (!c)
        return;
    sodium_memzero(c->private_key, sizeof(c->private_key));
    for (size_t i = 0; i < c->n_peers; i++) {
        struct cfg_peer *p = &c->peers[i];
        sodium_memzero(p->preshared_key, sizeof(p->preshared_key));
        free(p->name);
        free(p->endpoints);
        free(p->allowed_ips);
    }
    free(c->peers);
    for (size_t i = 0; i < c->n_services; i++) {
        free(c->services[i].username);
        if (c->services[i].password)
            sodium_memzero(c->services[i].password, strlen(c->services[i].password));
        free(c->services[i].password);
    }
    free(c->services);
    for (size_t i = 0; i < c->n_routes; i++) {
        free(c->routes[i].suffix);
        free(c->routes[i].resolvers);
    }
    free(c->routes);
    for (size_t i = 0; i < c->n_records; i++)
        free(c->records[i].name);
    free(c->records);
    free_strings(c->search, c->n_search);
    free_strings(c->warnings, c->n_warnings);
    free(c->resolvers);
    free(c->addresses);
    free(c->dns_suffix);
    free(c->name);
    free(c->file);
    memset(c, 0, sizeof(*c));
}

static int read_fail(char *err, size_t errlen, const char *path, int code, const char *why)
{
    snprintf(err, errlen, "%s: cannot read: %s", path, why);
    return code;
}

int cfg_read_file(const char *path, size_t max, char **buf, size_t *len, mode_t *mode, char *err,
                  size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    *buf = NULL;
    if (!f || fstat(fileno(f), &st) < 0) {
        int code = -errno;
        if (f)
            fclose(f);
        return read_fail(err, errlen, path, code, strerror(-code));
    }
    *mode = st.st_mode;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        fclose(f);
        return S_ISREG(st.st_mode) ? read_fail(err, errlen, path, -EFBIG, "file too large")
                                   : read_fail(err, errlen, path, -EINVAL, "not a regular file");
    }
    *buf = malloc((size_t)st.st_size + 1);
    *len = *buf ? fread(*buf, 1, (size_t)st.st_size, f) : 0;
    int bad = !*buf || ferror(f);
    fclose(f);
    if (bad) {
        int code = *buf ? -EIO : -ENOMEM;
        free(*buf);
        *buf = NULL;
        return read_fail(err, errlen, path, code, code == -EIO ? "read error" : "out of memory");
    }
    (*buf)[*len] = '\0';
    return 0;
}

void cfg_dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

int cfg_read_key_file(const char *base_dir, const char *name, uint8_t key[CFG_KEY_LEN], char *path,
                      size_t pathcap, mode_t *mode, char *why, size_t whylen)
{
    if (name[0] == '/' || !base_dir)
        snprintf(path, pathcap, "%s", name);
    else
        snprintf(path, pathcap, "%s/%s", base_dir, name);
    char *buf = NULL;
    size_t len = 0;
    if (cfg_read_file(path, 4096, &buf, &len, mode, why, whylen) < 0)
        return -1;
    /* as wg(8) writes it: the key, then a newline */
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    int r = cfg_key_from_base64(key, buf, len);
    sodium_memzero(buf, len);
    free(buf);
    if (r < 0) {
        char b[80];
        snprintf(why, whylen, "%s: not a base64 key (44 characters)",
                 cfg_shown(b, sizeof(b), path));
        return -1;
    }
    return 0;
}
