/* wg-quick configuration parser: any bytes give a config or an error, never a crash or leak; a
 * config diffs cleanly against itself. Inputs that mention "$" are parsed a second time with
 * --expand-env (against a fixed variable, and unset ones). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_asserts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_one(const uint8_t *data, size_t size, const struct cfg_ini_options *opt)
{
    struct cfg_config c;
    char err[256];
    if (cfg_parse_ini_buffer_with("fuzz.conf", (const char *)data, size, opt, &c, err,
                                  sizeof(err)) == 0) {
        /* a parsed config is a validated one */
        if (cfg_validate(&c, err, sizeof(err)) != 0)
            __builtin_trap();
        check_self_diff(&c);
        cfg_free(&c);
    } else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        __builtin_trap(); /* every failure explains itself */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_one(data, size, NULL);
    if (memchr(data, '$', size)) {
        setenv("FUZZ", "10.0.0.1/32", 0);
        struct cfg_ini_options opt = {.expand_env = true};
        parse_one(data, size, &opt);
    }
    return 0;
}
