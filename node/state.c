#include "state.h"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int node_state_dir(const char *flag, char *out, size_t cap)
{
    const char *v;
    int n;

    if (flag && *flag)
        n = snprintf(out, cap, "%s", flag);
    else if ((v = getenv("STATE_DIRECTORY")) && *v)
        n = snprintf(out, cap, "%s", v);
    else if ((v = getenv("XDG_STATE_HOME")) && *v)
        n = snprintf(out, cap, "%s/tunless", v);
    else if ((v = getenv("HOME")) && *v)
        n = snprintf(out, cap, "%s/.local/state/tunless", v);
    else
        return -1;
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* mkdir -p with 0700 for what it creates. */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(path))
        return -1;
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int node_state_make_dir(const char *dir, char *err, size_t errlen)
{
    if (make_dirs(dir) == 0)
        return 0;
    snprintf(err, errlen, "%s: %s", dir, strerror(errno));
    return -1;
}

static int read_key(const char *path, uint8_t priv[WG_KEY_LEN], char *err, size_t errlen)
{
    char buf[WG_KEY_B64_LEN + 2];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && (st.st_mode & 077)) {
        close(fd);
        snprintf(err, errlen, "%s: readable by others (mode %03o); chmod 600 it", path,
                 st.st_mode & 0777);
        return -1;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    int ret = n > 0 && cfg_key_from_base64(priv, buf, (size_t)n) == 0 ? 0 : -1;
    sodium_memzero(buf, sizeof(buf));
    if (ret != 0)
        snprintf(err, errlen, "%s: not a base64 private key", path);
    return ret;
}

int node_state_write_file(const char *dir, const char *name, const void *data, size_t len,
                          char *err, size_t errlen)
{
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = mkstemp(tmp); /* mkstemp creates 0600 */
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    ssize_t n = write(fd, data, len);
    int ok = n >= 0 && (size_t)n == len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
        unlink(tmp);
        return -1;
    }
    /* The rename is durable once the directory is on disk too. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static int write_key(const char *dir, const uint8_t priv[WG_KEY_LEN], char *err, size_t errlen)
{
    char b64[WG_KEY_B64_LEN + 2];
    wg_key_to_base64(b64, priv);
    b64[WG_KEY_B64_LEN] = '\n';
    int ret = node_state_write_file(dir, NODE_STATE_KEY_FILE, b64, WG_KEY_B64_LEN + 1, err, errlen);
    sodium_memzero(b64, sizeof(b64));
    return ret;
}

int node_state_load_key(const char *dir, uint8_t priv[WG_KEY_LEN], int *created, char *err,
                        size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, NODE_STATE_KEY_FILE);
    *created = 0;
    if (access(path, F_OK) == 0)
        return read_key(path, priv, err, errlen);
    if (node_state_make_dir(dir, err, errlen) != 0)
        return -1;
    wg_key_generate(priv);
    if (write_key(dir, priv, err, errlen) != 0) {
        sodium_memzero(priv, WG_KEY_LEN);
        return -1;
    }
    *created = 1;
    return 0;
}

int node_state_load_port(const char *dir, uint16_t *port)
{
    char path[4200], buf[16];
    snprintf(path, sizeof(path), "%s/%s", dir, NODE_STATE_PORT_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    return n > 0 ? base_port_parse(buf, (size_t)n, port, 0) : -1;
}

int node_state_save_port(const char *dir, uint16_t port, char *err, size_t errlen)
{
    char buf[16];
    int n = snprintf(buf, sizeof(buf), "%u\n", port);
    return node_state_write_file(dir, NODE_STATE_PORT_FILE, buf, (size_t)n, err, errlen);
}

int node_state_lock(const char *dir, int *fd, pid_t *holder, char *err, size_t errlen)
{
    char path[4200], buf[24];
    snprintf(path, sizeof(path), "%s/%s", dir, NODE_STATE_LOCK_FILE);
    *fd = -1;
    *holder = 0;
    if (node_state_make_dir(dir, err, errlen) != 0)
        return -1;
    int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        ssize_t n = e == EWOULDBLOCK ? pread(lfd, buf, sizeof(buf) - 1, 0) : -1;
        close(lfd);
        if (e != EWOULDBLOCK) {
            snprintf(err, errlen, "%s: %s", path, strerror(e));
            return -1;
        }
        buf[n > 0 ? n : 0] = '\0';
        *holder = (pid_t)strtol(buf, NULL, 10);
        return NODE_STATE_LOCKED;
    }
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(lfd, 0) != 0 || pwrite(lfd, buf, (size_t)n, 0) != n) {
        /* The lock holds all the same; only the next node's message lacks our pid. */
    }
    *fd = lfd;
    return 0;
}
