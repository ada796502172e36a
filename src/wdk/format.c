/* Windows' printf formats (DbgPrint, the RtlStringCch*Printf family) on
 * top of the C library's: the sizes are LLP64 (%ld is 32 bits), strings may
 * be UTF-16 (%ws, %S, %wZ), and %p prints 16 hex digits.  Each conversion
 * is read here and printed by fprintf() with the C library's spelling. */
#include "wdk_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* The size prefix of a conversion: hh, h, l (32 bits, or wide for c and
 * s), ll or I64, I (pointer-sized), z, j, t, w (wide), L (long double). */
enum size { SZ_DEFAULT, SZ_HH, SZ_H, SZ_L, SZ_LL, SZ_PTR, SZ_SIZE, SZ_MAX, SZ_DIFF, SZ_W, SZ_LONG_DOUBLE };

/* One conversion: flags, width and precision as written (a '*' already
 * fetched), the size prefix, and the letter. */
struct spec {
    char flags[8];
    int width;     /* -1: none */
    int precision; /* -1: none */
    enum size size;
    char conv;
};

/* Reads a size prefix (hh, h, l, ll, w, I64, I32, I, z, j, t, L) at f into
 * *size; returns the first character past it. */
static const char *parse_size(const char *f, enum size *size)
{
    *size = SZ_DEFAULT;
    if (f[0] == 'h' && f[1] == 'h')
        *size = SZ_HH, f += 2;
    else if (f[0] == 'h')
        *size = SZ_H, f++;
    else if (f[0] == 'l' && f[1] == 'l')
        *size = SZ_LL, f += 2;
    else if (f[0] == 'l')
        *size = SZ_L, f++;
    else if (f[0] == 'w')
        *size = SZ_W, f++;
    else if (f[0] == 'I' && f[1] == '6' && f[2] == '4')
        *size = SZ_LL, f += 3;
    else if (f[0] == 'I' && f[1] == '3' && f[2] == '2')
        *size = SZ_L, f += 3;
    else if (f[0] == 'I')
        *size = SZ_PTR, f++;
    else if (f[0] == 'z')
        *size = SZ_SIZE, f++;
    else if (f[0] == 'j')
        *size = SZ_MAX, f++;
    else if (f[0] == 't')
        *size = SZ_DIFF, f++;
    else if (f[0] == 'L')
        *size = SZ_LONG_DOUBLE, f++;
    return f;
}

/* Reads the conversion after a '%' at f; returns the first character past
 * it, or NULL when the format ends inside it. */
static const char *parse_spec(const char *f, struct spec *s, va_list *args)
{
    size_t nflags = 0;
    *s = (struct spec){.width = -1, .precision = -1};
    while (*f != '\0' && strchr("-+ #0", *f) != NULL) {
        if (nflags + 1 < sizeof s->flags)
            s->flags[nflags++] = *f;
        f++;
    }
    if (*f == '*') {
        s->width = va_arg(*args, int);
        if (s->width < 0) {
            if (nflags + 1 < sizeof s->flags)
                s->flags[nflags++] = '-';
            s->width = -s->width;
        }
        f++;
    } else {
        /* Digits past the ninth are read but no longer count: a width
         * that large could not be printed anyway. */
        for (; *f >= '0' && *f <= '9'; f++)
            if (s->width < 100000000)
                s->width = (s->width < 0 ? 0 : s->width) * 10 + (*f - '0');
    }
    if (*f == '.') {
        f++;
        s->precision = 0;
        if (*f == '*') {
            s->precision = va_arg(*args, int);
            f++;
        } else {
            for (; *f >= '0' && *f <= '9'; f++)
                if (s->precision < 100000000)
                    s->precision = s->precision * 10 + (*f - '0');
        }
    }
    f = parse_size(f, &s->size);
    if (*f == '\0')
        return NULL;
    s->conv = *f;
    return f + 1;
}

/* The C library's spelling of `s` with `length` and `conv`. */
static void c_spec(const struct spec *s, const char *length, char conv, char *out, size_t size)
{
    char width[16] = "", precision[16] = "";
    if (s->width >= 0)
        snprintf(width, sizeof width, "%d", s->width);
    if (s->precision >= 0)
        snprintf(precision, sizeof precision, ".%d", s->precision);
    snprintf(out, size, "%%%s%s%s%s%c", s->flags, width, precision, length, conv);
}

static void print_signed(FILE *out, const struct spec *s, va_list *args)
{
    long long v;
    char fmt[64];
    switch (s->size) {
    case SZ_HH: v = (signed char)va_arg(*args, int); break;
    case SZ_H: v = (short)va_arg(*args, int); break;
    case SZ_LL: v = va_arg(*args, long long); break;
    case SZ_PTR: v = va_arg(*args, intptr_t); break;
    case SZ_SIZE: v = va_arg(*args, ssize_t); break;
    case SZ_MAX: v = va_arg(*args, intmax_t); break;
    case SZ_DIFF: v = va_arg(*args, ptrdiff_t); break;
    default: v = (int32_t)va_arg(*args, int); break; /* LONG and int: 32 bits */
    }
    c_spec(s, "ll", s->conv, fmt, sizeof fmt);
    fprintf(out, fmt, v);
}

static void print_unsigned(FILE *out, const struct spec *s, va_list *args)
{
    unsigned long long v;
    char fmt[64];
    switch (s->size) {
    case SZ_HH: v = (unsigned char)va_arg(*args, unsigned); break;
    case SZ_H: v = (unsigned short)va_arg(*args, unsigned); break;
    case SZ_LL: v = va_arg(*args, unsigned long long); break;
    case SZ_PTR: v = va_arg(*args, uintptr_t); break;
    case SZ_SIZE: v = va_arg(*args, size_t); break;
    case SZ_MAX: v = va_arg(*args, uintmax_t); break;
    case SZ_DIFF: v = (unsigned long long)va_arg(*args, ptrdiff_t); break;
    default: v = (uint32_t)va_arg(*args, unsigned); break;
    }
    c_spec(s, "ll", s->conv, fmt, sizeof fmt);
    fprintf(out, fmt, v);
}

/* Prints a string of `units` code units (WCHARs when wide), as much of it
 * as the precision allows, padded to the width in characters. */
static void print_string(FILE *out, const struct spec *s, const void *str, size_t units, bool wide)
{
    char fmt[64];
    if (str == NULL) {
        str = "(null)", units = 6, wide = false;
    }
    if (s->precision >= 0 && units > (size_t)s->precision)
        units = (size_t)s->precision;
    char *text = (char *)str;
    char *converted = NULL;
    if (wide) {
        /* Each UTF-16 unit becomes at most 3 bytes of UTF-8. */
        converted = malloc(units * 3 + 1);
        if (converted == NULL || fmx_wdk_utf16_to_utf8(str, units, converted, units * 3 + 1) < 0) {
            free(converted);
            converted = NULL;
            text = "(invalid UTF-16)", units = 16;
        } else {
            text = converted;
            units = strlen(converted);
        }
    }
    struct spec padded = *s;
    padded.precision = (int)units;
    c_spec(&padded, "", 's', fmt, sizeof fmt);
    fprintf(out, fmt, text);
    free(converted);
}

static size_t units_of(const void *str, bool wide)
{
    if (str == NULL)
        return 0;
    return wide ? wcslen((const WCHAR *)str) : strlen(str);
}

/* Prints a character (c, C), a string (s, S) or a counted string (wZ, Z);
 * `wide` says whether c and s are wide here. */
static void print_text(FILE *out, const struct spec *s, bool wide, va_list *args)
{
    if (s->conv == 'C' || s->conv == 'S')
        wide = !wide;
    if (s->conv == 'c' || s->conv == 'C') {
        int c = va_arg(*args, int);
        WCHAR w = (WCHAR)c;
        char ch = (char)c;
        print_string(out, s, wide ? (const void *)&w : (const void *)&ch, 1, wide);
    } else if (s->conv == 's' || s->conv == 'S') {
        const void *str = va_arg(*args, const void *);
        print_string(out, s, str, units_of(str, wide), wide);
    } else if (s->size == SZ_W) {
        const UNICODE_STRING *u = va_arg(*args, const UNICODE_STRING *);
        print_string(out, s, u != NULL ? u->Buffer : NULL, u != NULL ? u->Length / sizeof(WCHAR) : 0,
                     true);
    } else {
        const ANSI_STRING *a = va_arg(*args, const ANSI_STRING *);
        print_string(out, s, a != NULL ? a->Buffer : NULL, a != NULL ? a->Length : 0, false);
    }
}

/* Prints one conversion; false for one that is not allowed (%n). */
static bool print_one(FILE *out, const struct spec *s, bool wide_format, va_list *args)
{
    char fmt[64];
    /* In a wide format plain %s and %c are wide, %S and %C narrow; in a
     * narrow one the other way round; h always narrows, l and w widen. */
    bool wide = s->size == SZ_W || s->size == SZ_L || (s->size != SZ_H && wide_format);
    switch (s->conv) {
    case 'd':
    case 'i': print_signed(out, s, args); return true;
    case 'u':
    case 'o':
    case 'x':
    case 'X': print_unsigned(out, s, args); return true;
    case 'c':
    case 'C':
    case 's':
    case 'S':
    case 'Z': print_text(out, s, wide, args); return true;
    case 'p':
        fprintf(out, "%016llX", (unsigned long long)(uintptr_t)va_arg(*args, void *));
        return true;
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
    case 'a':
    case 'A':
        if (s->size == SZ_LONG_DOUBLE) {
            c_spec(s, "L", s->conv, fmt, sizeof fmt);
            fprintf(out, fmt, va_arg(*args, long double));
        } else {
            c_spec(s, "", s->conv, fmt, sizeof fmt);
            fprintf(out, fmt, va_arg(*args, double));
        }
        return true;
    case '%': fputc('%', out); return true;
    default: return false; /* %n, and letters Windows does not know */
    }
}

char *fmx_wdk_vformat(const void *format, bool wide, va_list args)
{
    char *narrow = NULL, *result = NULL;
    size_t result_size = 0;
    const char *f = format;
    bool ok = true;
    va_list ap;
    if (wide) {
        size_t units = wcslen((const WCHAR *)format);
        narrow = malloc(units * 3 + 1);
        if (narrow == NULL || fmx_wdk_utf16_to_utf8(format, units, narrow, units * 3 + 1) < 0) {
            free(narrow);
            return NULL;
        }
        f = narrow;
    }
    FILE *out = open_memstream(&result, &result_size);
    if (out == NULL) {
        free(narrow);
        return NULL;
    }
    va_copy(ap, args);
    while (ok && *f != '\0') {
        if (*f != '%') {
            fputc(*f++, out);
            continue;
        }
        struct spec s;
        f = parse_spec(f + 1, &s, &ap);
        ok = f != NULL && print_one(out, &s, wide, &ap);
    }
    va_end(ap);
    if (fclose(out) != 0)
        ok = false;
    free(narrow);
    if (!ok) {
        free(result);
        return NULL;
    }
    return result;
}

ULONG DbgPrint(PCSTR Format, ...)
{
    va_list args;
    va_start(args, Format);
    char *text = fmx_wdk_vformat(Format, false, args);
    va_end(args);
    if (text == NULL)
        return (ULONG)STATUS_INVALID_PARAMETER;
    /* One write per call, so that lines of different threads do not mix. */
    fputs(text, stdout);
    fflush(stdout);
    free(text);
    return STATUS_SUCCESS;
}

/* Copies UTF-8 `text` into dest[cch] as UTF-16: STATUS_BUFFER_OVERFLOW
 * when it was cut short (never inside a surrogate pair). */
static NTSTATUS store_wide(WCHAR *dest, size_t cch, const char *text)
{
    size_t len = strlen(text);
    size_t need = fmx_wdk_utf8_to_utf16(text, len, NULL, 0);
    WCHAR *all = malloc((need + 1) * sizeof(WCHAR));
    if (all == NULL) {
        dest[0] = 0;
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    fmx_wdk_utf8_to_utf16(text, len, all, need);
    size_t n = need < cch - 1 ? need : cch - 1;
    if (n < need && n > 0 && all[n - 1] >= 0xD800 && all[n - 1] < 0xDC00)
        n--;
    memcpy(dest, all, n * sizeof(WCHAR));
    dest[n] = 0;
    free(all);
    return n < need ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
}

static NTSTATUS store_narrow(char *dest, size_t cch, const char *text)
{
    size_t need = strlen(text);
    size_t n = need < cch - 1 ? need : cch - 1;
    memcpy(dest, text, n);
    dest[n] = '\0';
    return n < need ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
}

static bool bad_cch(size_t cch)
{
    return cch == 0 || cch > NTSTRSAFE_MAX_CCH;
}

NTSTATUS RtlStringCchVPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszFormat,
                              va_list argList)
{
    if (bad_cch(cchDest))
        return STATUS_INVALID_PARAMETER;
    char *text = fmx_wdk_vformat(pszFormat, true, argList);
    if (text == NULL) {
        pszDest[0] = 0;
        return STATUS_INVALID_PARAMETER;
    }
    NTSTATUS status = store_wide(pszDest, cchDest, text);
    free(text);
    return status;
}

NTSTATUS RtlStringCchPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszFormat,
                             ...)
{
    va_list args;
    va_start(args, pszFormat);
    NTSTATUS status = RtlStringCchVPrintfW(pszDest, cchDest, pszFormat, args);
    va_end(args);
    return status;
}

NTSTATUS RtlStringCbPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PCWSTR pszFormat, ...)
{
    va_list args;
    va_start(args, pszFormat);
    NTSTATUS status = RtlStringCchVPrintfW(pszDest, cbDest / sizeof(WCHAR), pszFormat, args);
    va_end(args);
    return status;
}

static NTSTATUS vprintf_narrow(char *dest, size_t cch, const char *format, va_list args)
{
    if (bad_cch(cch))
        return STATUS_INVALID_PARAMETER;
    char *text = fmx_wdk_vformat(format, false, args);
    if (text == NULL) {
        dest[0] = '\0';
        return STATUS_INVALID_PARAMETER;
    }
    NTSTATUS status = store_narrow(dest, cch, text);
    free(text);
    return status;
}

NTSTATUS RtlStringCchPrintfA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PCSTR pszFormat, ...)
{
    va_list args;
    va_start(args, pszFormat);
    NTSTATUS status = vprintf_narrow(pszDest, cchDest, pszFormat, args);
    va_end(args);
    return status;
}

NTSTATUS RtlStringCbPrintfA(NTSTRSAFE_PSTR pszDest, size_t cbDest, NTSTRSAFE_PCSTR pszFormat, ...)
{
    va_list args;
    va_start(args, pszFormat);
    NTSTATUS status = vprintf_narrow(pszDest, cbDest, pszFormat, args);
    va_end(args);
    return status;
}

/* Copies src after dest[at] within cch, NUL-terminated. */
static NTSTATUS copy_wide_at(WCHAR *dest, size_t cch, size_t at, const WCHAR *src)
{
    size_t i = 0;
    for (; at + i + 1 < cch && src[i] != 0; i++)
        dest[at + i] = src[i];
    dest[at + i] = 0;
    return src[i] != 0 ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
}

NTSTATUS RtlStringCchCopyW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszSrc)
{
    if (bad_cch(cchDest))
        return STATUS_INVALID_PARAMETER;
    return copy_wide_at(pszDest, cchDest, 0, pszSrc);
}

NTSTATUS RtlStringCbCopyW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PCWSTR pszSrc)
{
    return RtlStringCchCopyW(pszDest, cbDest / sizeof(WCHAR), pszSrc);
}

NTSTATUS RtlStringCchCatW(NTSTRSAFE_PWSTR pszDest, size_t cchDest, NTSTRSAFE_PCWSTR pszSrc)
{
    size_t at;
    if (bad_cch(cchDest))
        return STATUS_INVALID_PARAMETER;
    if (!NT_SUCCESS(RtlStringCchLengthW(pszDest, cchDest, &at)))
        return STATUS_INVALID_PARAMETER;
    return copy_wide_at(pszDest, cchDest, at, pszSrc);
}

NTSTATUS RtlStringCbCatW(NTSTRSAFE_PWSTR pszDest, size_t cbDest, NTSTRSAFE_PCWSTR pszSrc)
{
    return RtlStringCchCatW(pszDest, cbDest / sizeof(WCHAR), pszSrc);
}

NTSTATUS RtlStringCchCopyA(NTSTRSAFE_PSTR pszDest, size_t cchDest, NTSTRSAFE_PCSTR pszSrc)
{
    size_t i = 0;
    if (bad_cch(cchDest))
        return STATUS_INVALID_PARAMETER;
    for (; i + 1 < cchDest && pszSrc[i] != '\0'; i++)
        pszDest[i] = pszSrc[i];
    pszDest[i] = '\0';
    return pszSrc[i] != '\0' ? STATUS_BUFFER_OVERFLOW : STATUS_SUCCESS;
}

NTSTATUS RtlStringCchLengthW(NTSTRSAFE_PCWSTR psz, size_t cchMax, size_t *pcchLength)
{
    size_t n = 0;
    if (psz == NULL || cchMax > NTSTRSAFE_MAX_CCH)
        goto invalid;
    while (n < cchMax && psz[n] != 0)
        n++;
    if (n == cchMax)
        goto invalid;
    if (pcchLength != NULL)
        *pcchLength = n;
    return STATUS_SUCCESS;
invalid:
    if (pcchLength != NULL)
        *pcchLength = 0;
    return STATUS_INVALID_PARAMETER;
}

NTSTATUS RtlStringCbLengthW(NTSTRSAFE_PCWSTR psz, size_t cbMax, size_t *pcbLength)
{
    size_t cch;
    NTSTATUS status = RtlStringCchLengthW(psz, cbMax / sizeof(WCHAR), &cch);
    if (pcbLength != NULL)
        *pcbLength = NT_SUCCESS(status) ? cch * sizeof(WCHAR) : 0;
    return status;
}
