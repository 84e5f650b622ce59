/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the YAML loader. Any bytes give either a configuration
 * whose every breaker passes the library's own range checks, or
 * CBSHM_ECONFIG with a position inside the input and a message - never a
 * crash, a leak or a read past the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cbshm_config *cfg = NULL;
    struct cbshm_diag d;
    int rc = cbshm_config_load_string((const char *)data, size, "fuzz", &cfg, &d);

    if (rc == 0) {
        for (size_t i = 0; i < cfg->n_breakers; i++)
            if (!cbshm__settings_valid(&cfg->breakers[i].settings) ||
                cbshm__check_breaker_name(cfg->breakers[i].name) != 0)
                abort(); /* the loader accepted what the library refuses */
        if (cfg->n_breakers > cfg->capacity)
            abort();
        cbshm_config_free(cfg);
    } else if (rc == CBSHM_ECONFIG) {
        if (d.line == 0 || d.column == 0 || d.message[0] == '\0')
            abort(); /* a rejection that does not say where or why */
    } else if (rc != -12 /* ENOMEM */) {
        abort();
    }
    return 0;
}
