/*
 * Prometheus text exposition into a caller's buffer. Each line is built in a scratch line first
 * (put / put_escaped), then appended whole by commit(), so a full buffer ends at a line end and
 * the caller can tell (truncated) and retry bigger. family() writes # HELP and # TYPE; sample()
 * the name, the labels and the value.
 */
#include "base.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LINE_MAX_LEN 4096

struct line {
    char s[LINE_MAX_LEN];
    size_t len;
    bool over;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (l->over || n >= sizeof(l->s) - l->len) {
        l->over = true;
        return;
    }
    memcpy(l->s + l->len, s, n);
    l->len += n;
}

static void put_str(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* HELP escapes \ and newline; label values also the double quote. */
static void put_escaped(struct line *l, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            put_str(l, "\\\\");
        else if (*s == '\n')
            put_str(l, "\\n");
        else if (*s == '"' && quote)
            put_str(l, "\\\"");
        else
            put(l, s, 1);
    }
}

static int commit(struct base_prom *p, const struct line *l)
{
    if (p->truncated || l->over || l->len >= p->cap - p->len) {
        p->truncated = true;
        return BASE_ELIMIT;
    }
    memcpy(p->buf + p->len, l->s, l->len);
    p->len += l->len;
    p->buf[p->len] = '\0';
    return 0;
}

static bool valid_name(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (c == ':' && colon) || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

void base_prom_init(struct base_prom *p, char *buf, size_t cap)
{
    memset(p, 0, sizeof(*p));
    p->buf = buf;
    p->cap = cap;
    if (cap > 0)
        buf[0] = '\0';
    else
        p->truncated = true;
}

int base_prom_family(struct base_prom *p, const char *name, enum base_prom_type type,
                     const char *help)
{
    if (!valid_name(name, true) || strlen(name) >= sizeof(p->family) ||
        (type != BASE_PROM_COUNTER && type != BASE_PROM_GAUGE))
        return -EINVAL;
    struct line l = {.len = 0};
    put_str(&l, "# HELP ");
    put_str(&l, name);
    put_str(&l, " ");
    put_escaped(&l, help ? help : "", false);
    put_str(&l, "\n# TYPE ");
    put_str(&l, name);
    put_str(&l, type == BASE_PROM_COUNTER ? " counter\n" : " gauge\n");
    snprintf(p->family, sizeof(p->family), "%s", name);
    return commit(p, &l);
}

static int sample(struct base_prom *p, const struct base_prom_label *labels, size_t n,
                  const char *value)
{
    if (!p->family[0])
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!valid_name(labels[i].name, false) || strncmp(labels[i].name, "__", 2) == 0 ||
            !labels[i].value)
            return -EINVAL;
    struct line l = {.len = 0};
    put_str(&l, p->family);
    for (size_t i = 0; i < n; i++) {
        put_str(&l, i == 0 ? "{" : ",");
        put_str(&l, labels[i].name);
        put_str(&l, "=\"");
        put_escaped(&l, labels[i].value, true);
        put_str(&l, "\"");
    }
    put_str(&l, n ? "} " : " ");
    put_str(&l, value);
    put_str(&l, "\n");
    return commit(p, &l);
}

int base_prom_u64(struct base_prom *p, const struct base_prom_label *labels, size_t n, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
    return sample(p, labels, n, text);
}

int base_prom_double(struct base_prom *p, const struct base_prom_label *labels, size_t n, double v)
{
    char text[40];
    if (isnan(v))
        snprintf(text, sizeof(text), "NaN");
    else if (isinf(v))
        snprintf(text, sizeof(text), "%s", v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(text, sizeof(text), "%.17g", v);
    return sample(p, labels, n, text);
}

int base_prom_one(struct base_prom *p, const char *name, enum base_prom_type type, const char *help,
                  uint64_t v)
{
    int rc = base_prom_family(p, name, type, help);
    return rc != 0 ? rc : base_prom_u64(p, NULL, 0, v);
}
