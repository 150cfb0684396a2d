/* The one error space: negative errno values, plus base's own codes for what errno cannot say. */
#include <string.h>

#include "base.h"

struct code {
    int err;
    const char *name;
    const char *text;
};

static const struct code own_codes[] = {
    {BASE_ELIMIT, "ELIMIT", "a configured limit is reached"},
    {BASE_ECLOSING, "ECLOSING", "closing"},
    {BASE_EPARSE, "EPARSE", "malformed input"},
    {BASE_EAUTH, "EAUTH", "authentication failed"},
    {BASE_ENXDOMAIN, "ENXDOMAIN", "no such name"},
    {BASE_ENOANSWER, "ENOANSWER", "the name has no address of that kind"},
    {BASE_EPOLICY, "EPOLICY", "refused by policy"},
    {BASE_ESTOPPED, "ESTOPPED", "the node is stopped"},
    {BASE_ECONFIG, "ECONFIG", "invalid configuration"},
    /* engine */
    /* netstack */
    /* proxy */
    /* dns */
    {BASE_ESERVFAIL, "ESERVFAIL", "no resolver could answer"},
    /* config */
    /* derp */
    /* node */
};

/* The errno values the modules report; strerror gives their text, this their name. */
static const struct code errno_names[] = {
    {-EPERM, "EPERM", NULL},
    {-ENOENT, "ENOENT", NULL},
    {-EINTR, "EINTR", NULL},
    {-EIO, "EIO", NULL},
    {-EBADF, "EBADF", NULL},
    {-EAGAIN, "EAGAIN", NULL},
    {-ENOMEM, "ENOMEM", NULL},
    {-EACCES, "EACCES", NULL},
    {-EBUSY, "EBUSY", NULL},
    {-EEXIST, "EEXIST", NULL},
    {-EINVAL, "EINVAL", NULL},
    {-ENFILE, "ENFILE", NULL},
    {-EMFILE, "EMFILE", NULL},
    {-ENOSPC, "ENOSPC", NULL},
    {-EPIPE, "EPIPE", NULL},
    {-ERANGE, "ERANGE", NULL},
    {-ENAMETOOLONG, "ENAMETOOLONG", NULL},
    {-ENOSYS, "ENOSYS", NULL},
    {-ENODATA, "ENODATA", NULL},
    {-EPROTO, "EPROTO", NULL},
    {-EMSGSIZE, "EMSGSIZE", NULL},
    {-EPROTONOSUPPORT, "EPROTONOSUPPORT", NULL},
    {-EOPNOTSUPP, "EOPNOTSUPP", NULL},
    {-EAFNOSUPPORT, "EAFNOSUPPORT", NULL},
    {-EADDRINUSE, "EADDRINUSE", NULL},
    {-EADDRNOTAVAIL, "EADDRNOTAVAIL", NULL},
    {-ENETDOWN, "ENETDOWN", NULL},
    {-ENETUNREACH, "ENETUNREACH", NULL},
    {-ECONNABORTED, "ECONNABORTED", NULL},
    {-ECONNRESET, "ECONNRESET", NULL},
    {-ENOBUFS, "ENOBUFS", NULL},
    {-EISCONN, "EISCONN", NULL},
    {-ENOTCONN, "ENOTCONN", NULL},
    {-EDESTADDRREQ, "EDESTADDRREQ", NULL},
    {-ETIMEDOUT, "ETIMEDOUT", NULL},
    {-ECONNREFUSED, "ECONNREFUSED", NULL},
    {-EHOSTDOWN, "EHOSTDOWN", NULL},
    {-EHOSTUNREACH, "EHOSTUNREACH", NULL},
    {-EALREADY, "EALREADY", NULL},
    {-EINPROGRESS, "EINPROGRESS", NULL},
    {-ECANCELED, "ECANCELED", NULL},
    {-EOVERFLOW, "EOVERFLOW", NULL},
};

static const struct code *find(const struct code *table, size_t n, int err)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].err == err)
            return &table[i];
    return NULL;
}

#define COUNT(t) (sizeof(t) / sizeof((t)[0]))

const char *base_strerror(int err)
{
    if (err == 0)
        return "success";
    const struct code *c = find(own_codes, COUNT(own_codes), err);
    if (c)
        return c->text;
    if (err < 0 && err > -4000)
        return strerror(-err);
    return "unknown error";
}

const char *base_errname(int err)
{
    if (err == 0)
        return "OK";
    const struct code *c = find(own_codes, COUNT(own_codes), err);
    if (!c)
        c = find(errno_names, COUNT(errno_names), err);
    return c ? c->name : "EUNKNOWN";
}
