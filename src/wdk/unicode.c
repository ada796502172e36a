/* UTF-16 strings as Windows has them: wcslen, the Rtl string calls, and
 * the conversions to and from the UTF-8 of POSIX file names. */
#include "wdk_internal.h"

size_t fast_mutex_wdk_wcslen(const WCHAR *String)
{
    size_t n = 0;
    while (String[n] != 0)
        n++;
    return n;
}

SIZE_T fast_mutex_wdk_compare_memory(const void *Source1, const void *Source2, SIZE_T Length)
{
    const UCHAR *a = Source1, *b = Source2;
    SIZE_T n = 0;
    while (n < Length && a[n] == b[n])
        n++;
    return n;
}

VOID RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString)
{
    /* Windows keeps MaximumLength within a USHORT by cutting the length. */
    size_t bytes = SourceString != NULL ? wcslen(SourceString) * sizeof(WCHAR) : 0;
    if (bytes > 0xfffc)
        bytes = 0xfffc;
    DestinationString->Buffer = (PWSTR)SourceString;
    DestinationString->Length = (USHORT)bytes;
    DestinationString->MaximumLength = SourceString != NULL ? (USHORT)(bytes + sizeof(WCHAR)) : 0;
}

VOID RtlInitAnsiString(PANSI_STRING DestinationString, PCSTR SourceString)
{
    size_t bytes = SourceString != NULL ? strlen(SourceString) : 0;
    if (bytes > 0xfffe)
        bytes = 0xfffe;
    DestinationString->Buffer = (PCHAR)SourceString;
    DestinationString->Length = (USHORT)bytes;
    DestinationString->MaximumLength = SourceString != NULL ? (USHORT)(bytes + 1) : 0;
}

VOID RtlCopyUnicodeString(PUNICODE_STRING DestinationString, PCUNICODE_STRING SourceString)
{
    if (SourceString == NULL) {
        DestinationString->Length = 0;
        return;
    }
    USHORT bytes = SourceString->Length < DestinationString->MaximumLength
                       ? SourceString->Length
                       : DestinationString->MaximumLength;
    bytes &= (USHORT)~1u;
    memmove(DestinationString->Buffer, SourceString->Buffer, bytes);
    DestinationString->Length = bytes;
    /* NUL-terminated when there is room, as Windows does. */
    if (bytes + sizeof(WCHAR) <= DestinationString->MaximumLength)
        DestinationString->Buffer[bytes / sizeof(WCHAR)] = 0;
}

static WCHAR upcase(WCHAR c)
{
    return c >= 'a' && c <= 'z' ? (WCHAR)(c - 'a' + 'A') : c;
}

BOOLEAN RtlEqualUnicodeString(PCUNICODE_STRING String1, PCUNICODE_STRING String2,
                              BOOLEAN CaseInSensitive)
{
    if (String1->Length != String2->Length)
        return FALSE;
    for (size_t i = 0; i < String1->Length / sizeof(WCHAR); i++) {
        WCHAR a = String1->Buffer[i], b = String2->Buffer[i];
        if (CaseInSensitive ? upcase(a) != upcase(b) : a != b)
            return FALSE;
    }
    return TRUE;
}

/* Appends code point cp as UTF-8; false when it does not fit. */
static bool put_utf8(uint32_t cp, char *out, size_t size, size_t *at)
{
    unsigned char buf[4];
    size_t n;
    if (cp < 0x80) {
        buf[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        buf[0] = (unsigned char)(0xC0 | (cp >> 6));
        buf[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        buf[0] = (unsigned char)(0xE0 | (cp >> 12));
        buf[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        buf[0] = (unsigned char)(0xF0 | (cp >> 18));
        buf[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        buf[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        buf[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*at + n >= size)
        return false;
    memcpy(out + *at, buf, n);
    *at += n;
    return true;
}

int fmx_wdk_utf16_to_utf8(const WCHAR *in, size_t len, char *out, size_t size)
{
    size_t at = 0;
    if (size == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = in[i];
        if (cp == 0)
            return -1;
        if (cp >= 0xD800 && cp < 0xDC00) {
            if (i + 1 >= len || in[i + 1] < 0xDC00 || in[i + 1] >= 0xE000)
                return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (uint32_t)(in[++i] - 0xDC00);
        } else if (cp >= 0xDC00 && cp < 0xE000) {
            return -1;
        }
        if (!put_utf8(cp, out, size, &at))
            return -1;
    }
    out[at] = '\0';
    return (int)at;
}

/* Decodes one UTF-8 sequence at in[*i] (of len bytes), U+FFFD for a bad one. */
static uint32_t next_code_point(const unsigned char *in, size_t len, size_t *i)
{
    unsigned char c = in[(*i)++];
    int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    if (extra < 0)
        return 0xFFFD;
    uint32_t cp = extra == 0 ? c : c & (0x3F >> extra);
    for (int k = 0; k < extra; k++) {
        if (*i >= len || (in[*i] & 0xC0) != 0x80)
            return 0xFFFD;
        cp = (cp << 6) | (in[(*i)++] & 0x3F);
    }
    if (cp < min[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
        return 0xFFFD;
    return cp;
}

size_t fmx_wdk_utf8_to_utf16(const char *in, size_t len, WCHAR *out, size_t room)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t units = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp = next_code_point(s, len, &i);
        if (cp >= 0x10000) {
            if (units + 2 <= room) {
                out[units] = (WCHAR)(0xD800 + ((cp - 0x10000) >> 10));
                out[units + 1] = (WCHAR)(0xDC00 + ((cp - 0x10000) & 0x3FF));
            }
            units += 2;
        } else {
            if (units < room)
                out[units] = (WCHAR)cp;
            units++;
        }
    }
    return units;
}
