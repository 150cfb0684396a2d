/* node_log_json, the key=value -> JSON conversion of --log-format json, on arbitrary lines and
 * buffer sizes: whatever it is given, the result must be one JSON object that jansson reads. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > BASE_LOG_LINE_MAX + 64)
        return 0;
    /* The first byte picks the buffer: tiny ones exercise members left out. */
    size_t cap = data[0] < 128 ? (size_t)data[0] + 3 : NODE_LOG_JSON_MAX;
    char *body = malloc(size);
    char *out = malloc(cap);
    if (!body || !out) {
        free(body);
        free(out);
        return 0;
    }
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    size_t n =
        node_log_json(out, cap, "2026-01-01T00:00:00.000Z", "info", data[0] & 1 ? "a" : NULL, body);
    if (n >= cap || strlen(out) != n)
        abort();
    json_error_t err;
    json_t *obj = json_loads(out, JSON_ALLOW_NUL, &err); /* "\u0000" is valid JSON */
    if (!obj || !json_is_object(obj))
        abort();
    if (cap == NODE_LOG_JSON_MAX && !json_is_string(json_object_get(obj, "level")))
        abort();
    json_decref(obj);
    free(body);
    free(out);
    return 0;
}
