/* SPDX-License-Identifier: MIT */
/*
 * What an unknown configuration key may have meant: our key spelled
 * another way (openTimeout, open-timeout), another breaker's name for one
 * of our settings (peer_names.h), or our key nearest by edit distance
 * (failure_treshold, open_timeout_ms). For the loader's "unknown key"
 * message; it never changes what loads.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "peer_names.h"

/* Keys are compared at most this long; a longer one gets no hint. */
#define KEY_MAX 80

static const struct peer_name {
    const char *peer, *theirs, *ours;
} peer_names[] = {
#define X(peer, theirs, ours, notes) {peer, theirs, ours},
    CBSHM_PEER_NAMES(X)
#undef X
};

/* s without case, '_' or '-', so that the ways of writing one name meet;
   0 when it does not fit. */
static int fold(const char *s, char out[KEY_MAX + 1])
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        if (*s == '_' || *s == '-')
            continue;
        if (n == KEY_MAX)
            return 0;
        out[n++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
    }
    out[n] = '\0';
    return 1;
}

/* Levenshtein distance, one row at a time. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[KEY_MAX + 1];

    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

/* The i-th key the mapping takes: the settings first where it has them,
   then keys[]. NULL past the last. */
static const char *candidate(size_t i, int settings, const char *const *keys)
{
    size_t n_settings = 0;

    if (settings) {
        while (cbshm_setting_at(n_settings) != NULL)
            n_settings++;
        if (i < n_settings)
            return cbshm_setting_at(i)->key;
        i -= n_settings;
    }
    for (size_t k = 0; keys != NULL && keys[k] != NULL; k++)
        if (k == i)
            return keys[k];
    return NULL;
}

void cbshm__key_hint(const char *typed, int settings, const char *const *keys, char *buf,
                     size_t size)
{
    char want[KEY_MAX + 1], have[KEY_MAX + 1];
    const char *best = NULL, *key;
    size_t best_distance = 0;

    buf[0] = '\0';
    if (!fold(typed, want) || want[0] == '\0')
        return;
    for (size_t i = 0; (key = candidate(i, settings, keys)) != NULL; i++) {
        if (fold(key, have) && strcmp(have, want) == 0) {
            snprintf(buf, size, ": did you mean '%s'?", key);
            return;
        }
    }
    for (size_t i = 0; settings && i < sizeof peer_names / sizeof peer_names[0]; i++) {
        if (fold(peer_names[i].theirs, have) && strcmp(have, want) == 0) {
            snprintf(buf, size, " (%s's name): did you mean '%s'?", peer_names[i].peer,
                     peer_names[i].ours);
            return;
        }
    }
    /* Near enough to be a slip rather than another word: a quarter of
       the letters, and one more. */
    for (size_t i = 0; (key = candidate(i, settings, keys)) != NULL; i++) {
        size_t d;
        if (!fold(key, have))
            continue;
        d = distance(want, have);
        if (d <= 1 + strlen(want) / 4 && (best == NULL || d < best_distance)) {
            best = key;
            best_distance = d;
        }
    }
    if (best != NULL)
        snprintf(buf, size, ": did you mean '%s'?", best);
}
