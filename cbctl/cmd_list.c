/* SPDX-License-Identifier: MIT */
/* cbctl list [--json]: every breaker, one line each (the table watch
   shows too) or one JSON array. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cbctl.h"

/* Streams the array one object per line (see struct cbctl_json_row). */
struct json_rows {
    struct cbctl_json_row w;
    unsigned n;
};

static int print_json_row(void *ctx, const struct cbshm_snapshot *s)
{
    struct json_rows *r = ctx;
    const char *text = cbctl_json_row(&r->w, s);

    return text != NULL && printf("%s%s", r->n++ ? ",\n  " : "[\n  ", text) > 0 ? 0 : -1;
}

static int run(struct cbctl *ctl, struct cbshm *shm, const struct cbctl_args *args)
{
    struct json_rows rows = {{NULL, NULL, 0, NULL, 0}, 0};
    struct cbctl_rows table = {NULL, 0, 0};
    int rc;

    if (args->json) {
        rc = cbshm_foreach(shm, print_json_row, &rows);
        cbctl_json_row_free(&rows.w);
        /* A corrupt slot was left out of a complete array: the document
           stays whole, the exit status and stderr say what is missing. */
        if (rc == 0 || rc == CBSHM_ECORRUPT)
            puts(rows.n ? "\n]" : "[]");
        if (rc != 0) {
            cbctl_err("list: segment %s: %s", ctl->segment_final,
                      rc != CBSHM_ESTOPPED ? cbctl_foreach_error(rc) : "cannot write JSON");
            return CBCTL_FAILED;
        }
        return CBCTL_OK;
    }
    /* All rows first: whether there are WORKERS and BULKHEAD columns
       depends on every breaker. */
    rc = cbctl_table_collect(shm, &table);
    if (rc == 0 || rc == CBSHM_ECORRUPT) {
        struct cbctl_table t = {.quorum = cbctl_table_has_quorum(table.all, table.n),
                                .bulkhead = cbctl_table_has_bulkhead(table.all, table.n)};
        cbctl_table_header(&t);
        for (size_t i = 0; i < table.n; i++)
            cbctl_table_row(&t, &table.all[i], NULL);
    }
    free(table.all);
    if (rc != 0) {
        cbctl_err("list: segment %s: %s", ctl->segment_final,
                  rc == CBSHM_ESTOPPED ? "the table changed size" : cbctl_foreach_error(rc));
        return CBCTL_FAILED;
    }
    return CBCTL_OK;
}

const struct cbctl_cmd cbctl_cmd_list = {
    .name = "list",
    .summary = "list every breaker",
    .attach = CBCTL_ATTACH_READ,
    .names = CBCTL_NAMES_NONE,
    .json = "one JSON array of breaker objects",
    .run = run,
};
