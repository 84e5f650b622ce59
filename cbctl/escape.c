/* SPDX-License-Identifier: MIT */
/*
 * How cbctl writes bytes it did not choose - names read from the segment,
 * names and paths from the command line, messages that quote them - so
 * that they cannot steer the operator's terminal or forge lines of a
 * machine format. Depends on nothing else in cbctl, so a test links it
 * alone.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cbctl.h"

/* Bytes a terminal may act on: C0, DEL, and from 0x80 up both the raw C1
   controls (0x9b is CSI to an 8-bit terminal) and UTF-8's encoding of
   them. cbctl's names are ASCII, so nothing readable is lost. A backslash
   stays as it is: no name holds one, so "\x" in a name is always an
   escape, and the library's messages keep their own ("(\0)"). */
static int needs_escape(unsigned char c)
{
    return c < 0x20 || c >= 0x7f;
}

/* Byte c as it is written: itself or \xNN, into out (5 bytes); its length. */
static size_t piece(unsigned char c, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (needs_escape(c)) {
        out[n++] = '\\';
        out[n++] = 'x';
        out[n++] = hex[c >> 4];
        out[n++] = hex[c & 0xf];
    } else {
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return n;
}

const char *cbctl_safe(const char *s, char *buf, size_t size)
{
    const unsigned char *p;
    size_t total = 0, used = 0, room;
    char one[5];

    if (s == NULL)
        return "(null)";
    for (p = (const unsigned char *)s; *p != '\0' && !needs_escape(*p); p++)
        ;
    if (*p == '\0')
        return s; /* the common case copies nothing */
    for (p = (const unsigned char *)s; *p != '\0'; p++)
        total += piece(*p, one);
    if (size < 4)
        return "...";
    /* All of it when it fits; else what fits before "...". */
    room = total < size ? size - 1 : size - 4;
    for (p = (const unsigned char *)s; *p != '\0'; p++) {
        size_t n = piece(*p, one);
        if (used + n > room)
            break;
        memcpy(buf + used, one, n);
        used += n;
    }
    strcpy(buf + used, total < size ? "" : "...");
    return buf;
}

void cbctl_put_safe(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0' && !needs_escape(*p))
        p++;
    if (*p == '\0') { /* the common case: one write */
        fputs(s, f);
        return;
    }
    for (p = (const unsigned char *)s; *p != '\0'; p++) {
        char one[5];

        piece(*p, one);
        fputs(one, f);
    }
}

void cbctl_put_label(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    bool plain = true;

    for (const unsigned char *q = p; *q != '\0' && plain; q++)
        plain = *q >= 0x20 && *q < 0x7f && *q != '\\' && *q != '"';
    if (plain) { /* the common case: one write */
        fputs(s, f);
        return;
    }
    for (; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"') {
            putc('\\', f);
            putc(*p, f);
        } else if (*p == '\n') {
            fputs("\\n", f);
        } else if (*p < 0x20 || *p >= 0x7f) {
            /* The format has no escape for these: the value holds the four
               characters \xNN instead (its backslash escaped), so neither
               a terminal nor a scraper ever gets the byte itself. */
            fprintf(f, "\\\\x%02x", *p);
        } else {
            putc(*p, f);
        }
    }
}
