/* ntifs.h: the WDK's header for file systems and filters; in this subset,
 * ntddk.h and the file information structures that live here on Windows. */
#ifndef FASTMUTEX_WDK_NTIFS_H
#define FASTMUTEX_WDK_NTIFS_H

#include "ntddk.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The target of a rename (ZwSetInformationFile, FileRenameInformation).
 * FileName holds FileNameLength bytes (no NUL needed): a full NT path, a
 * name relative to RootDirectory, or a bare name for a rename in the same
 * folder.  The structure is allocated with room for the whole name:
 * FIELD_OFFSET(FILE_RENAME_INFORMATION, FileName) + FileNameLength. */
typedef struct _FILE_RENAME_INFORMATION {
    union {
        BOOLEAN ReplaceIfExists;
        ULONG Flags;
    };
    HANDLE RootDirectory;
    ULONG FileNameLength;
    WCHAR FileName[1];
} FILE_RENAME_INFORMATION, *PFILE_RENAME_INFORMATION;
FAST_MUTEX_STATIC_ASSERT(offsetof(FILE_RENAME_INFORMATION, RootDirectory) == 8,
                         "FILE_RENAME_INFORMATION as on Windows x64");
FAST_MUTEX_STATIC_ASSERT(offsetof(FILE_RENAME_INFORMATION, FileNameLength) == 16,
                         "FILE_RENAME_INFORMATION as on Windows x64");
FAST_MUTEX_STATIC_ASSERT(offsetof(FILE_RENAME_INFORMATION, FileName) == 20,
                         "FILE_RENAME_INFORMATION as on Windows x64");

#ifdef __cplusplus
}
#endif

#endif /* FASTMUTEX_WDK_NTIFS_H */
