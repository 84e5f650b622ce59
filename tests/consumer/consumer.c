/* SPDX-License-Identifier: MIT */
/* Uses the installed header and library: strerror, config, apply, execute. */
#include <cbshm.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum cbshm_outcome ok(void *arg)
{
    ++*(int *)arg;
    return CBSHM_SUCCESS;
}

int main(void)
{
    const char *y = "capacity: 2\nbreakers:\n  - name: x\n";
    struct cbshm_config *cfg;
    struct cbshm *shm;
    struct cbshm_breaker *b;
    char seg[64];
    int ran = 0;

    snprintf(seg, sizeof seg, "/cbshm-consumer-%d", (int)getpid());
    if (cbshm_config_load_string(y, strlen(y), "c", &cfg, NULL) != 0 ||
        cbshm_apply(cfg, seg, 0, NULL, NULL, NULL) != 0 || cbshm_open(seg, 0, &shm) != 0 ||
        cbshm_breaker_get(shm, "x", &b) != 0 || cbshm_execute(b, ok, &ran) != 0 || ran != 1)
        return 1;
    printf("consumer: libcbshm %s works\n", cbshm_version());
    cbshm_breaker_release(b);
    cbshm_close(shm);
    cbshm_config_free(cfg);
    return cbshm_destroy(seg) == 0 ? 0 : 1;
}
