/* cbctl reset NAME...|--all: close breakers and clear their counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cbctl.h"

struct names {
    char (*v)[CBSHM_NAME_MAX + 1];
    size_t n, cap;
};

static int collect(void *ctx, const struct cbshm_snapshot *s)
{
    struct names *ns = ctx;

    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 64;
        void *v = realloc(ns->v, cap * sizeof *ns->v);
        if (v == NULL)
            return -1;
        ns->v = v;
        ns->cap = cap;
    }
    strcpy(ns->v[ns->n++], s->name);
    return 0;
}

int cbctl_cmd_reset(struct cbctl *ctl, const struct cbctl_cmd *cmd, int argc, char **argv)
{
    struct names all_names = {NULL, 0, 0};
    struct cbshm *shm;
    int all = 0, failed = 0, rc;

    if ((rc = cbctl_parse_options(cmd, argc, argv, NULL, &all)) >= 0)
        return rc;
    if (all == (optind < argc))
        return cbctl_usage_error(cmd, "give breaker names or --all, not both or neither");
    if (cbctl_attach(ctl, "reset", &shm) != 0)
        return CBCTL_FAILED;
    if (all) {
        if ((rc = cbshm_foreach(shm, collect, &all_names)) != 0) {
            cbctl_err("reset: segment %s: %s", ctl->segment_final,
                      rc == CBSHM_ESTOPPED ? "out of memory" : cbshm_strerror(rc));
            failed = 1;
        }
        for (size_t i = 0; i < all_names.n; i++) {
            if ((rc = cbshm_reset(shm, all_names.v[i])) != 0 && rc != CBSHM_ENOBREAKER) {
                cbctl_err("reset %s: %s", all_names.v[i], cbshm_strerror(rc));
                failed = 1;
            } else if (rc == 0) {
                printf("reset %s\n", all_names.v[i]);
            }
        }
        free(all_names.v);
    } else {
        for (int i = optind; i < argc; i++) {
            if ((rc = cbshm_reset(shm, argv[i])) != 0) {
                cbctl_err("reset %s: %s", argv[i], cbshm_strerror(rc));
                failed = 1;
            } else {
                printf("reset %s\n", argv[i]);
            }
        }
    }
    cbshm_close(shm);
    return failed ? CBCTL_FAILED : CBCTL_OK;
}
