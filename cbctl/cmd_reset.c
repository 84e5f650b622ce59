/* SPDX-License-Identifier: MIT */
/* cbctl reset NAME...|--all: close breakers and clear their counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct names all_names = {NULL, 0, 0};
    int failed = 0, rc;

    if (args->all) {
        if ((rc = cbshm_foreach(shm, collect, &all_names)) != 0) {
            cbctl_err("reset: segment %s: %s", ctl->segment_final,
                      rc == CBSHM_ESTOPPED ? "out of memory" : cbctl_foreach_error(rc));
            failed = 1;
        }
        for (size_t i = 0; i < all_names.n; i++) {
            if ((rc = cbshm_reset(shm, all_names.v[i])) != 0 && rc != CBSHM_ENOBREAKER) {
                cbctl_err("reset %s: %s", all_names.v[i], cbshm_strerror(rc));
                failed = 1;
            } else if (rc == 0) {
                fputs("reset ", stdout);
                cbctl_put_safe(stdout, all_names.v[i]);
                putchar('\n');
            }
        }
        free(all_names.v);
    } else {
        for (int i = 0; i < args->n_names; i++) {
            if ((rc = cbshm_reset(shm, args->names[i])) != 0) {
                cbctl_err("reset %s: %s", args->names[i], cbshm_strerror(rc));
                failed = 1;
            } else {
                fputs("reset ", stdout);
                cbctl_put_safe(stdout, args->names[i]);
                putchar('\n');
            }
        }
    }
    return failed ? CBCTL_FAILED : CBCTL_OK;
}

const struct cbctl_cmd cbctl_cmd_reset = {
    .name = "reset",
    .summary = "close breakers and clear their counters (the mode is kept)",
    .attach = CBCTL_ATTACH_WRITE,
    .names = CBCTL_NAMES_OR_ALL,
    .run = run,
};
