/* ntstrsafe.h: the WDK's bounded string functions.  Cch functions count
 * characters, Cb functions bytes; each always leaves a NUL-terminated
 * string in a non-empty destination.  They return STATUS_SUCCESS,
 * STATUS_BUFFER_OVERFLOW when the result was cut short to fit, or
 * STATUS_INVALID_PARAMETER for a destination of 0 or more than
 * NTSTRSAFE_MAX_CCH characters (or a format with %n).  The formats are
 * Windows', as DbgPrint's in wdm.h: in a W function %s is a WCHAR string
 * and %S a char string; %ws, %hs and %wZ say it outright; %ld is a 32-bit
 * LONG. */
#ifndef FASTMUTEX_WDK_NTSTRSAFE_H
#define FASTMUTEX_WDK_NTSTRSAFE_H

#include "wdm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NTSTRSAFE_MAX_CCH 2147483647
typedef WCHAR *NTSTRSAFE_PWSTR;
typedef const WCHAR *NTSTRSAFE_PCWSTR;
typedef char *NTSTRSAFE_PSTR;
typedef const char *NTSTRSAFE_PCSTR;

FMX_WDK_API NTSTATUS RtlStringCchPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cchDest,
                                         NTSTRSAFE_PCWSTR pszFormat, ...);
FMX_WDK_API NTSTATUS RtlStringCchVPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cchDest,
                                          NTSTRSAFE_PCWSTR pszFormat, va_list argList);
FMX_WDK_API NTSTATUS RtlStringCbPrintfW(NTSTRSAFE_PWSTR pszDest, size_t cbDest,
                                        NTSTRSAFE_PCWSTR pszFormat, ...);
FMX_WDK_API NTSTATUS RtlStringCchPrintfA(NTSTRSAFE_PSTR pszDest, size_t cchDest,
                                         NTSTRSAFE_PCSTR pszFormat, ...);
FMX_WDK_API NTSTATUS RtlStringCbPrintfA(NTSTRSAFE_PSTR pszDest, size_t cbDest,
                                        NTSTRSAFE_PCSTR pszFormat, ...);
FMX_WDK_API NTSTATUS RtlStringCchCopyW(NTSTRSAFE_PWSTR pszDest, size_t cchDest,
                                       NTSTRSAFE_PCWSTR pszSrc);
FMX_WDK_API NTSTATUS RtlStringCbCopyW(NTSTRSAFE_PWSTR pszDest, size_t cbDest,
                                      NTSTRSAFE_PCWSTR pszSrc);
FMX_WDK_API NTSTATUS RtlStringCchCatW(NTSTRSAFE_PWSTR pszDest, size_t cchDest,
                                      NTSTRSAFE_PCWSTR pszSrc);
FMX_WDK_API NTSTATUS RtlStringCbCatW(NTSTRSAFE_PWSTR pszDest, size_t cbDest,
                                     NTSTRSAFE_PCWSTR pszSrc);
FMX_WDK_API NTSTATUS RtlStringCchCopyA(NTSTRSAFE_PSTR pszDest, size_t cchDest,
                                       NTSTRSAFE_PCSTR pszSrc);
/* The length of psz in characters, if it ends within cchMax: else
 * STATUS_INVALID_PARAMETER. */
FMX_WDK_API NTSTATUS RtlStringCchLengthW(NTSTRSAFE_PCWSTR psz, size_t cchMax, size_t *pcchLength);
FMX_WDK_API NTSTATUS RtlStringCbLengthW(NTSTRSAFE_PCWSTR psz, size_t cbMax, size_t *pcbLength);

#ifdef __cplusplus
}
#endif

#endif /* FASTMUTEX_WDK_NTSTRSAFE_H */
