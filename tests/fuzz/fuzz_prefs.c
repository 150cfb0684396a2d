/* Preferences reader (the prefs.json file and PATCH /v0/prefs bodies): any bytes give prefs or
 * an error naming its path, never a crash or leak; an error leaves the prefs as they were, and
 * what was read writes back to text that reads the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prefs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct node_prefs p, before;
    char err[256] = "";
    unsigned mask = 0;
    node_prefs_default(&p);
    before = p;
    if (node_prefs_apply_json(&p, (const char *)data, size, &mask, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL ||
            !node_prefs_equal(&p, &before))
            __builtin_trap();
        return 0;
    }
    if (mask & ~(unsigned)NODE_PREF_ALL)
        __builtin_trap();
    char *text = node_prefs_to_json(&p);
    struct node_prefs q;
    node_prefs_default(&q);
    if (!text || node_prefs_apply_json(&q, text, strlen(text), NULL, err, sizeof(err)) != 0 ||
        !node_prefs_equal(&p, &q))
        __builtin_trap();
    free(text);
    return 0;
}
