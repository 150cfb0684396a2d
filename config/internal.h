/*
 * What the files of config/ share and nobody else uses: the growing arrays, the error and
 * warning lines, the file reader (model.c) and the prefix parser (text.c).
 */
#ifndef TUNLESS_CONFIG_INTERNAL_H
#define TUNLESS_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <sys/types.h>

#include "config.h"

/* "10.0.0.1/24", "fd00::1/64"; without /prefix the full length. mask clears host bits; then
 * *host_bits (if given) tells whether some were set (wg(8) warns about those). */
const char *cfg_parse_prefix(const char *s, bool mask, struct base_prefix *out, bool *host_bits);
/* v as it may be echoed in a message: at most 64 characters, the unprintable ones as '?'. */
const char *cfg_shown(char *buf, size_t cap, const char *v);

/* A parse error as "FILE WHERE: MESSAGE" in err (WHERE: ":12" for a line, ": $.peers[0]" for a
 * JSON path, "" for none). Returns BASE_ECONFIG, for the parsers' `return fail(...)`. */
int cfg_vfail(char *err, size_t errlen, const char *file, const char *where, const char *fmt,
              va_list ap);
/* Appends a formatted warning. Returns 0 or -ENOMEM. */
int cfg_warn(struct cfg_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads a whole regular file of at most max bytes into *buf (NUL-terminated, *len without the
 * NUL) and its mode into *mode. The caller wipes (it may hold keys) and frees *buf. Returns 0 or
 * a negative errno with "PATH: cannot read: WHY" in err. */
int cfg_read_file(const char *path, size_t max, char **buf, size_t *len, mode_t *mode, char *err,
                  size_t errlen);
/* Grows *arr (of *n elements of size each) by one zeroed element and returns it, or NULL. */
void *cfg_push(void *arr_ptr, size_t *n, size_t size);
/* The start and end shared by both parsers: *out zeroed with the defaults set. */
int cfg_begin(struct cfg_config *out, enum cfg_source source, const char *file);
/* After reading a file: the warning for a key file others can read. */
int cfg_warn_mode(struct cfg_config *c, const char *path, mode_t mode, char *err, size_t errlen);

/* The directory part of path: "." when there is none. */
void cfg_dir_of(const char *path, char *dir, size_t cap);
/* A key file as wg(8) writes it (the key, a newline): name resolved against base_dir unless
 * absolute; path gets the resolved name, mode its mode (the caller warns about 0077 bits).
 * Returns 0, or -1 with "PATH: ..." in why. */
int cfg_read_key_file(const char *base_dir, const char *name, uint8_t key[CFG_KEY_LEN], char *path,
                      size_t pathcap, mode_t *mode, char *why, size_t whylen);

/* wireproxy.c: the kind of a section header such as "[Socks5]" (case-insensitive, as wireproxy
 * reads them), or 0. */
enum cfg_service_kind cfg_wp_section(const char *header);
/* One `Key = Value` of that section. *seen: bits of the keys given so far. Returns NULL or what is
 * wrong (naming the key) in why; -ENOMEM is "out of memory". */
const char *cfg_wp_key(struct cfg_service *s, unsigned *seen, const char *key, const char *value,
                       char *why, size_t cap);
/* A finished section: NULL, or what it lacks. */
const char *cfg_wp_end(const struct cfg_service *s, unsigned seen, char *why, size_t cap);

#endif
