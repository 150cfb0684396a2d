/* JSON netmap parser: any bytes give a config or an error, never a crash or leak; a config diffs
 * cleanly against itself. No base directory: private_key_file is refused, so the fuzzer never
 * reads files. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "config_asserts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_config c;
    char err[256];
    if (cfg_parse_netmap_buffer("fuzz.json", (const char *)data, size, NULL, &c, err,
                                sizeof(err)) == 0) {
        if (cfg_validate(&c, err, sizeof(err)) != 0)
            __builtin_trap();
        check_self_diff(&c);
        cfg_free(&c);
    } else if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0') {
        __builtin_trap();
    }
    return 0;
}
