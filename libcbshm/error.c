/* SPDX-License-Identifier: MIT */
/*
 * One table for the library's error codes: code -> name -> message, built
 * from CBSHM_ERRNO_MAP in cbshm.h. -errno values fall through to the C
 * library's names and messages.
 */
#define _GNU_SOURCE /* strerrorname_np */
#include <string.h>

#include "internal.h"

struct err_entry {
    int code;
    const char *name;
    const char *message;
};

static const struct err_entry err_table[] = {
#define ENTRY(name, value, msg) {CBSHM_##name, "CBSHM_" #name, msg},
    CBSHM_ERRNO_MAP(ENTRY)
#undef ENTRY
};

static const struct err_entry *err_find(int code)
{
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
        if (err_table[i].code == code)
            return &err_table[i];
    return NULL;
}

const char *cbshm_strerror(int code)
{
    const struct err_entry *e;

    if (code == 0)
        return "success";
    if ((e = err_find(code)) != NULL)
        return e->message;
    if (code < 0 && code > -4096) {
        /* strerrorname_np tells a known errno from an unknown one without
           the "Unknown error N" text strerror() would build in a buffer. */
        if (strerrorname_np(-code) != NULL)
            return strerror(-code);
    }
    return "unknown error";
}

const char *cbshm_errname(int code)
{
    const struct err_entry *e;
    const char *n;

    if (code == 0)
        return "OK";
    if ((e = err_find(code)) != NULL)
        return e->name;
    if (code < 0 && code > -4096 && (n = strerrorname_np(-code)) != NULL)
        return n;
    return "UNKNOWN";
}

const char *cbshm_version(void)
{
    return CBSHM_VERSION_STRING;
}
