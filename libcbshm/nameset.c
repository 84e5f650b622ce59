/* SPDX-License-Identifier: MIT */
/*
 * A set of breaker names in process memory, for the configuration side:
 * duplicate detection while parsing and "is this slot still configured?"
 * while reconciling, each O(1) on average so that files with thousands of
 * breakers load and apply in linear time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int cbshm__nameset_init(struct cbshm__nameset *set, size_t expected)
{
    size_t n = 16;

    while (n < 2 * expected + 1)
        n <<= 1;
    set->mask = n - 1;
    set->names = calloc(n, sizeof *set->names);
    set->values = calloc(n, sizeof *set->values);
    if (set->names == NULL || set->values == NULL) {
        cbshm__nameset_free(set);
        return -ENOMEM;
    }
    return 0;
}

void cbshm__nameset_free(struct cbshm__nameset *set)
{
    free(set->names);
    free(set->values);
    set->names = NULL;
    set->values = NULL;
}

/* Adds name (kept by pointer) with value; returns the value already there
   for an equal name, or -1 when it was added. The set never fills: it was
   sized for at least twice the names it will hold. */
long cbshm__nameset_add(struct cbshm__nameset *set, const char *name, long value)
{
    size_t i = (size_t)cbshm__name_hash(name) & set->mask;

    while (set->names[i] != NULL) {
        if (strcmp(set->names[i], name) == 0)
            return set->values[i];
        i = (i + 1) & set->mask;
    }
    set->names[i] = name;
    set->values[i] = value;
    return -1;
}

long cbshm__nameset_find(const struct cbshm__nameset *set, const char *name)
{
    size_t i = (size_t)cbshm__name_hash(name) & set->mask;

    while (set->names[i] != NULL) {
        if (strcmp(set->names[i], name) == 0)
            return set->values[i];
        i = (i + 1) & set->mask;
    }
    return -1;
}
