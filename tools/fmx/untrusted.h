/* Helpers of the readers of untrusted images (a registry, a profile table,
 * a core file, debug info): the one-line reason a reader gives back when
 * it refuses something, and fields read by offset from a copy. */
#ifndef FMX_UNTRUSTED_H
#define FMX_UNTRUSTED_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline void fmx_set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void fmx_set_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* Read with memcpy: an image has no alignment guarantee, and it is our
 * copy, not the shared atomics its writer uses. */
static inline uint32_t fmx_get_u32(const unsigned char *p, size_t off)
{
    uint32_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

static inline uint64_t fmx_get_u64(const unsigned char *p, size_t off)
{
    uint64_t v;
    memcpy(&v, p + off, sizeof v);
    return v;
}

#endif
