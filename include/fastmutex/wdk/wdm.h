/* wdm.h: the part of the Windows Driver Kit's wdm.h that fastmutex runs in
 * user space, so that driver source builds unchanged and runs on Linux under
 * `fmx driver`, a debugger or AddressSanitizer.
 *
 * Build driver code with `pkg-config --cflags --libs fastmutex-wdk` (or the
 * CMake target fastmutex::wdk): it puts this folder on the include path and
 * adds -fshort-wchar, so that L"..." strings are UTF-16 as on Windows.
 *
 * Types are Windows' LLP64 ones (LONG and ULONG 32 bits, pointers and
 * ULONG_PTR 64), asserted below.  Every function declared here does what
 * Microsoft documents for it, on POSIX files and threads (see
 * doc/wdk.md for the mapping of NT paths to a folder); a function
 * that is not here does not exist, and a driver that calls one fails to
 * link, naming it.  Calls made at the wrong IRQL are reported and abort the
 * process, as the Fast Mutex calls do (fastmutex/wdm.h). */
#ifndef FASTMUTEX_WDK_WDM_H
#define FASTMUTEX_WDK_WDM_H

#include <fastmutex/wdm.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FMX_WDK_API FAST_MUTEX_API

/* ---- Annotations: SAL and calling conventions mean nothing to GCC. ---- */
#define NTAPI
#define NTSYSAPI
#define NTKERNELAPI
#define NTSTRSAFEAPI static inline
#define NTSTRSAFEDDI NTSTATUS
#define FASTCALL
#define DECLSPEC_NORETURN __attribute__((noreturn))
#define IN
#define OUT
#define OPTIONAL
#define _In_
#define _In_opt_
#define _Out_
#define _Out_opt_
#define _Inout_
#define _Inout_opt_
#define _In_z_
#define _In_reads_bytes_(n)
#define _In_reads_bytes_opt_(n)
#define _Out_writes_(n)
#define _Out_writes_bytes_(n)
#define _Out_writes_bytes_opt_(n)
#define _Out_writes_bytes_to_(n, m)
#define _When_(c, a)
#define _Printf_format_string_
#define _Use_decl_annotations_
#define _Function_class_(x)
#define _IRQL_requires_(x)
#define _IRQL_requires_max_(x)
#define _IRQL_requires_same_
#define _IRQL_raises_(x)
#define _IRQL_saves_
#define _IRQL_restores_
#define _Must_inspect_result_
#define _Success_(x)
#define _Post_writable_byte_size_(x)
#define _Ret_maybenull_
#define _Dispatch_type_(x)
#define UNREFERENCED_PARAMETER(P) ((void)(P))
#define FIELD_OFFSET(type, field) ((LONG)offsetof(type, field))
#define RTL_FIELD_SIZE(type, field) (sizeof(((type *)0)->field))
#define RTL_NUMBER_OF(A) (sizeof(A) / sizeof((A)[0]))
#define ARRAYSIZE(A) RTL_NUMBER_OF(A)
#define ARGUMENT_PRESENT(P) ((P) != NULL)

/* ---- LLP64 types, as Windows x64 has them. ---- */
#define VOID void
typedef char CHAR;
typedef CHAR *PCHAR;
typedef const CHAR *PCSTR;
typedef CHAR *PSTR;
typedef short SHORT;
typedef short CSHORT;
typedef unsigned short USHORT;
typedef USHORT *PUSHORT;
typedef UCHAR *PUCHAR;
typedef BOOLEAN *PBOOLEAN;
typedef LONG *PLONG;
typedef ULONG *PULONG;
typedef int64_t LONGLONG;
typedef uint64_t ULONGLONG;
typedef int64_t LONG64;
typedef uint64_t ULONG64;
typedef intptr_t LONG_PTR;
typedef uintptr_t ULONG_PTR;
typedef ULONG_PTR *PULONG_PTR;
typedef ULONG_PTR SIZE_T;
typedef SIZE_T *PSIZE_T;
typedef ULONG_PTR KAFFINITY;
typedef void *HANDLE;
typedef HANDLE *PHANDLE;
typedef const void *PCVOID;
typedef LONG NTSTATUS;
typedef ULONG ACCESS_MASK;
typedef ULONG DEVICE_TYPE;
typedef ULONG LOGICAL;
typedef ULONG64 POOL_FLAGS;
typedef char CCHAR;
/* WCHAR is UTF-16, as on Windows: wchar_t under -fshort-wchar. */
typedef wchar_t WCHAR;
typedef WCHAR *PWCHAR;
typedef WCHAR *PWSTR;
typedef const WCHAR *PCWSTR;
typedef const WCHAR *PCWCH;

typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

typedef union _ULARGE_INTEGER {
    struct {
        ULONG LowPart;
        ULONG HighPart;
    } u;
    ULONGLONG QuadPart;
} ULARGE_INTEGER, *PULARGE_INTEGER;

/* Length and MaximumLength count bytes, not characters; Buffer need not
 * end in a NUL. */
typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    PWSTR Buffer;
} UNICODE_STRING, *PUNICODE_STRING;
typedef const UNICODE_STRING *PCUNICODE_STRING;

typedef struct _STRING {
    USHORT Length;
    USHORT MaximumLength;
    PCHAR Buffer;
} STRING, ANSI_STRING, *PSTRING, *PANSI_STRING;
typedef const STRING *PCANSI_STRING;

typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink;
    struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY;

typedef struct _CLIENT_ID {
    HANDLE UniqueProcess;
    HANDLE UniqueThread;
} CLIENT_ID, *PCLIENT_ID;

#define FMX_WDK_ASSERT_SIZE(type, size) \
    FAST_MUTEX_STATIC_ASSERT(sizeof(type) == (size), #type " has the size it has on Windows x64")
FMX_WDK_ASSERT_SIZE(CHAR, 1);
FMX_WDK_ASSERT_SIZE(UCHAR, 1);
FMX_WDK_ASSERT_SIZE(BOOLEAN, 1);
FMX_WDK_ASSERT_SIZE(SHORT, 2);
FMX_WDK_ASSERT_SIZE(USHORT, 2);
FMX_WDK_ASSERT_SIZE(LONG, 4);
FMX_WDK_ASSERT_SIZE(ULONG, 4);
FMX_WDK_ASSERT_SIZE(NTSTATUS, 4);
FMX_WDK_ASSERT_SIZE(LONGLONG, 8);
FMX_WDK_ASSERT_SIZE(ULONGLONG, 8);
FMX_WDK_ASSERT_SIZE(ULONG_PTR, sizeof(void *));
FMX_WDK_ASSERT_SIZE(LONG_PTR, sizeof(void *));
FMX_WDK_ASSERT_SIZE(SIZE_T, sizeof(void *));
FMX_WDK_ASSERT_SIZE(HANDLE, sizeof(void *));
FMX_WDK_ASSERT_SIZE(LARGE_INTEGER, 8);
FMX_WDK_ASSERT_SIZE(UNICODE_STRING, 16);
FAST_MUTEX_STATIC_ASSERT(sizeof(WCHAR) == 2,
                         "WCHAR must be UTF-16: build driver code with -fshort-wchar "
                         "(pkg-config --cflags fastmutex-wdk)");
FAST_MUTEX_STATIC_ASSERT((LONG)-1 < 0 && (ULONG)-1 > 0, "LONG is signed, ULONG unsigned");

/* ---- Status codes.  NTSTATUS is a signed 32-bit LONG: success and
 * informational codes are >= 0, warnings and errors (0x8..., 0xC...) < 0. ---- */
#define NT_SUCCESS(Status) (((NTSTATUS)(Status)) >= 0)
#define NT_INFORMATION(Status) ((((ULONG)(Status)) >> 30) == 1)
#define NT_WARNING(Status) ((((ULONG)(Status)) >> 30) == 2)
#define NT_ERROR(Status) ((((ULONG)(Status)) >> 30) == 3)

#define FMX_STATUS_(v) ((NTSTATUS)(ULONG)(v))
#define STATUS_SUCCESS FMX_STATUS_(0x00000000u)
#define STATUS_WAIT_0 FMX_STATUS_(0x00000000u)
#define STATUS_ALERTED FMX_STATUS_(0x00000101u)
#define STATUS_TIMEOUT FMX_STATUS_(0x00000102u)
#define STATUS_PENDING FMX_STATUS_(0x00000103u)
#define STATUS_BUFFER_OVERFLOW FMX_STATUS_(0x80000005u)
#define STATUS_NO_MORE_FILES FMX_STATUS_(0x80000006u)
#define STATUS_UNSUCCESSFUL FMX_STATUS_(0xC0000001u)
#define STATUS_NOT_IMPLEMENTED FMX_STATUS_(0xC0000002u)
#define STATUS_INVALID_INFO_CLASS FMX_STATUS_(0xC0000003u)
#define STATUS_INFO_LENGTH_MISMATCH FMX_STATUS_(0xC0000004u)
#define STATUS_ACCESS_VIOLATION FMX_STATUS_(0xC0000005u)
#define STATUS_INVALID_HANDLE FMX_STATUS_(0xC0000008u)
#define STATUS_INVALID_PARAMETER FMX_STATUS_(0xC000000Du)
#define STATUS_NO_SUCH_DEVICE FMX_STATUS_(0xC000000Eu)
#define STATUS_NO_SUCH_FILE FMX_STATUS_(0xC000000Fu)
#define STATUS_INVALID_DEVICE_REQUEST FMX_STATUS_(0xC0000010u)
#define STATUS_END_OF_FILE FMX_STATUS_(0xC0000011u)
#define STATUS_NO_MEMORY FMX_STATUS_(0xC0000017u)
#define STATUS_ACCESS_DENIED FMX_STATUS_(0xC0000022u)
#define STATUS_BUFFER_TOO_SMALL FMX_STATUS_(0xC0000023u)
#define STATUS_OBJECT_TYPE_MISMATCH FMX_STATUS_(0xC0000024u)
#define STATUS_DISK_CORRUPT_ERROR FMX_STATUS_(0xC0000032u)
#define STATUS_OBJECT_NAME_INVALID FMX_STATUS_(0xC0000033u)
#define STATUS_OBJECT_NAME_NOT_FOUND FMX_STATUS_(0xC0000034u)
#define STATUS_OBJECT_NAME_COLLISION FMX_STATUS_(0xC0000035u)
#define STATUS_OBJECT_PATH_INVALID FMX_STATUS_(0xC0000039u)
#define STATUS_OBJECT_PATH_NOT_FOUND FMX_STATUS_(0xC000003Au)
#define STATUS_OBJECT_PATH_SYNTAX_BAD FMX_STATUS_(0xC000003Bu)
#define STATUS_SHARING_VIOLATION FMX_STATUS_(0xC0000043u)
#define STATUS_DELETE_PENDING FMX_STATUS_(0xC0000056u)
#define STATUS_INSUFFICIENT_RESOURCES FMX_STATUS_(0xC000009Au)
#define STATUS_MEDIA_WRITE_PROTECTED FMX_STATUS_(0xC00000A2u)
#define STATUS_FILE_IS_A_DIRECTORY FMX_STATUS_(0xC00000BAu)
#define STATUS_NOT_SUPPORTED FMX_STATUS_(0xC00000BBu)
#define STATUS_INTERNAL_ERROR FMX_STATUS_(0xC00000E5u)
#define STATUS_INVALID_PARAMETER_1 FMX_STATUS_(0xC00000EFu)
#define STATUS_INVALID_PARAMETER_2 FMX_STATUS_(0xC00000F0u)
#define STATUS_DIRECTORY_NOT_EMPTY FMX_STATUS_(0xC0000101u)
#define STATUS_NOT_A_DIRECTORY FMX_STATUS_(0xC0000103u)
#define STATUS_NAME_TOO_LONG FMX_STATUS_(0xC0000106u)
#define STATUS_TOO_MANY_OPENED_FILES FMX_STATUS_(0xC000011Fu)
#define STATUS_CANCELLED FMX_STATUS_(0xC0000120u)
#define STATUS_CANNOT_DELETE FMX_STATUS_(0xC0000121u)
#define STATUS_FILE_DELETED FMX_STATUS_(0xC0000123u)
#define STATUS_DISK_FULL FMX_STATUS_(0xC000007Fu)
#define STATUS_NOT_SAME_DEVICE FMX_STATUS_(0xC00000D4u)
#define STATUS_IO_DEVICE_ERROR FMX_STATUS_(0xC0000185u)
#define STATUS_INVALID_DEVICE_STATE FMX_STATUS_(0xC0000184u)
#define STATUS_DRIVER_ENTRYPOINT_NOT_FOUND FMX_STATUS_(0xC0000263u)
#define STATUS_NOT_FOUND FMX_STATUS_(0xC0000225u)

/* The name of a status ("STATUS_OBJECT_NAME_NOT_FOUND"), or NULL for one
 * this subset does not know. */
FMX_WDK_API const char *fast_mutex_wdk_status_name(NTSTATUS Status);

/* ---- Memory. ---- */
#define RtlZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#define RtlFillMemory(Destination, Length, Fill) memset((Destination), (Fill), (Length))
#define RtlCopyMemory(Destination, Source, Length) memcpy((Destination), (Source), (Length))
#define RtlMoveMemory(Destination, Source, Length) memmove((Destination), (Source), (Length))
#define RtlEqualMemory(Destination, Source, Length) (!memcmp((Destination), (Source), (Length)))
#define RtlCompareMemory(Source1, Source2, Length) \
    fast_mutex_wdk_compare_memory((Source1), (Source2), (Length))
FMX_WDK_API SIZE_T fast_mutex_wdk_compare_memory(const void *Source1, const void *Source2,
                                                 SIZE_T Length);

#define POOL_FLAG_REQUIRED_START 0x0000000000000001ULL
#define POOL_FLAG_USE_QUOTA 0x0000000000000001ULL
#define POOL_FLAG_UNINITIALIZED 0x0000000000000002ULL
#define POOL_FLAG_SESSION 0x0000000000000004ULL
#define POOL_FLAG_CACHE_ALIGNED 0x0000000000000008ULL
#define POOL_FLAG_RAISE_ON_FAILURE 0x0000000000000020ULL
#define POOL_FLAG_NON_PAGED 0x0000000000000040ULL
#define POOL_FLAG_NON_PAGED_EXECUTE 0x0000000000000080ULL
#define POOL_FLAG_PAGED 0x0000000000000100ULL

typedef enum _POOL_TYPE {
    NonPagedPool = 0,
    NonPagedPoolExecute = 0,
    PagedPool = 1,
    NonPagedPoolMustSucceed = 2,
    NonPagedPoolCacheAligned = 4,
    PagedPoolCacheAligned = 5,
    NonPagedPoolNx = 512,
} POOL_TYPE;

/* Allocates NumberOfBytes from the pool named in Flags (exactly one of
 * POOL_FLAG_NON_PAGED, _NON_PAGED_EXECUTE or _PAGED; all are the heap
 * here), zeroed unless POOL_FLAG_UNINITIALIZED.  Returns NULL when memory
 * runs out or Flags name no pool; with POOL_FLAG_RAISE_ON_FAILURE the
 * failure is reported and the process aborts, as the exception Windows
 * raises would stop a driver that does not handle it.  IRQL <=
 * DISPATCH_LEVEL. */
FMX_WDK_API PVOID NTAPI ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);
/* The older call: uninitialized memory, NULL on failure. */
FMX_WDK_API PVOID NTAPI ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
/* Frees what the calls above returned.  IRQL <= DISPATCH_LEVEL. */
FMX_WDK_API VOID NTAPI ExFreePool(PVOID P);
FMX_WDK_API VOID NTAPI ExFreePoolWithTag(PVOID P, ULONG Tag);

/* ---- Strings. ---- */
/* The number of WCHARs before the terminating NUL of a UTF-16 string.  The
 * C library's wcslen() reads 32-bit wchar_t, so the name is mapped here,
 * after the C library's header has declared (and C++'s <cwchar> has
 * #undef'd) its own; std::wcslen stays the C library's.  The C library's
 * other wide functions (wcscpy, swprintf, ...) would misread UTF-16 too:
 * use ntstrsafe.h's. */
#ifdef __cplusplus
#include <cwchar>
#else
#include <wchar.h>
#endif
#define wcslen fast_mutex_wdk_wcslen
#ifdef __cplusplus
FMX_WDK_API size_t fast_mutex_wdk_wcslen(const WCHAR *String) noexcept;
#else
FMX_WDK_API size_t fast_mutex_wdk_wcslen(const WCHAR *String);
#endif

/* Points DestinationString at SourceString (not copied): Length is its
 * length in bytes, MaximumLength that plus the NUL.  NULL makes an empty
 * string with a NULL Buffer. */
FMX_WDK_API VOID NTAPI RtlInitUnicodeString(PUNICODE_STRING DestinationString,
                                            PCWSTR SourceString);
FMX_WDK_API VOID NTAPI RtlInitAnsiString(PANSI_STRING DestinationString, PCSTR SourceString);
/* Copies as much of SourceString as fits into DestinationString's buffer;
 * NULL SourceString makes it empty. */
FMX_WDK_API VOID NTAPI RtlCopyUnicodeString(PUNICODE_STRING DestinationString,
                                            PCUNICODE_STRING SourceString);
/* TRUE when both strings hold the same characters (ASCII letters compared
 * without case when CaseInSensitive). */
FMX_WDK_API BOOLEAN NTAPI RtlEqualUnicodeString(PCUNICODE_STRING String1,
                                                PCUNICODE_STRING String2,
                                                BOOLEAN CaseInSensitive);
#define RTL_CONSTANT_STRING(s) {sizeof(s) - sizeof((s)[0]), sizeof(s), (PWSTR)(s)}

/* ---- Debug output: written to standard output, as a kernel debugger
 * shows it.  The format is Windows': %ws and %S take a WCHAR string, %wZ a
 * PUNICODE_STRING, %Z a PANSI_STRING, %ld a LONG (32 bits), %I64d and %lld
 * 64 bits, %Id and %p pointer-sized. ---- */
FMX_WDK_API ULONG DbgPrint(PCSTR Format, ...);
#ifndef DBG
#define DBG 0
#endif
#if DBG
#define KdPrint(_x_) DbgPrint _x_
#else
#define KdPrint(_x_)
#endif

/* ---- Objects, handles, files. ---- */
#define OBJ_INHERIT 0x00000002L
#define OBJ_PERMANENT 0x00000010L
#define OBJ_EXCLUSIVE 0x00000020L
#define OBJ_CASE_INSENSITIVE 0x00000040L
#define OBJ_OPENIF 0x00000080L
#define OBJ_OPENLINK 0x00000100L
#define OBJ_KERNEL_HANDLE 0x00000200L
#define OBJ_FORCE_ACCESS_CHECK 0x00000400L
#define OBJ_VALID_ATTRIBUTES 0x000007F2L

typedef struct _OBJECT_ATTRIBUTES {
    ULONG Length;
    HANDLE RootDirectory;
    PUNICODE_STRING ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
} OBJECT_ATTRIBUTES, *POBJECT_ATTRIBUTES;
FMX_WDK_ASSERT_SIZE(OBJECT_ATTRIBUTES, 48);

#define InitializeObjectAttributes(p, n, a, r, s) \
    do {                                          \
        (p)->Length = sizeof(OBJECT_ATTRIBUTES);  \
        (p)->RootDirectory = (r);                 \
        (p)->Attributes = (a);                    \
        (p)->ObjectName = (n);                    \
        (p)->SecurityDescriptor = (s);            \
        (p)->SecurityQualityOfService = NULL;     \
    } while (0)

typedef struct _IO_STATUS_BLOCK {
    union {
        NTSTATUS Status;
        PVOID Pointer;
    };
    ULONG_PTR Information;
} IO_STATUS_BLOCK, *PIO_STATUS_BLOCK;
FMX_WDK_ASSERT_SIZE(IO_STATUS_BLOCK, 16);

typedef VOID(NTAPI *PIO_APC_ROUTINE)(PVOID ApcContext, PIO_STATUS_BLOCK IoStatusBlock,
                                     ULONG Reserved);

/* Access rights. */
#define DELETE 0x00010000L
#define READ_CONTROL 0x00020000L
#define WRITE_DAC 0x00040000L
#define WRITE_OWNER 0x00080000L
#define SYNCHRONIZE 0x00100000L
#define STANDARD_RIGHTS_REQUIRED 0x000F0000L
#define STANDARD_RIGHTS_READ READ_CONTROL
#define STANDARD_RIGHTS_WRITE READ_CONTROL
#define STANDARD_RIGHTS_EXECUTE READ_CONTROL
#define STANDARD_RIGHTS_ALL 0x001F0000L
#define GENERIC_READ 0x80000000L
#define GENERIC_WRITE 0x40000000L
#define GENERIC_EXECUTE 0x20000000L
#define GENERIC_ALL 0x10000000L
#define FILE_READ_DATA 0x0001
#define FILE_LIST_DIRECTORY 0x0001
#define FILE_WRITE_DATA 0x0002
#define FILE_ADD_FILE 0x0002
#define FILE_APPEND_DATA 0x0004
#define FILE_ADD_SUBDIRECTORY 0x0004
#define FILE_READ_EA 0x0008
#define FILE_WRITE_EA 0x0010
#define FILE_EXECUTE 0x0020
#define FILE_TRAVERSE 0x0020
#define FILE_DELETE_CHILD 0x0040
#define FILE_READ_ATTRIBUTES 0x0080
#define FILE_WRITE_ATTRIBUTES 0x0100
#define FILE_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x1FF)
#define FILE_GENERIC_READ \
    (STANDARD_RIGHTS_READ | FILE_READ_DATA | FILE_READ_ATTRIBUTES | FILE_READ_EA | SYNCHRONIZE)
#define FILE_GENERIC_WRITE                                                                  \
    (STANDARD_RIGHTS_WRITE | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | FILE_WRITE_EA | \
     FILE_APPEND_DATA | SYNCHRONIZE)
#define FILE_GENERIC_EXECUTE \
    (STANDARD_RIGHTS_EXECUTE | FILE_READ_ATTRIBUTES | FILE_EXECUTE | SYNCHRONIZE)
#define THREAD_ALL_ACCESS (STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0xFFFF)

/* Share access. */
#define FILE_SHARE_READ 0x00000001
#define FILE_SHARE_WRITE 0x00000002
#define FILE_SHARE_DELETE 0x00000004
#define FILE_SHARE_VALID_FLAGS 0x00000007

/* File attributes (kept only as far as POSIX can: read-only). */
#define FILE_ATTRIBUTE_READONLY 0x00000001
#define FILE_ATTRIBUTE_HIDDEN 0x00000002
#define FILE_ATTRIBUTE_SYSTEM 0x00000004
#define FILE_ATTRIBUTE_DIRECTORY 0x00000010
#define FILE_ATTRIBUTE_ARCHIVE 0x00000020
#define FILE_ATTRIBUTE_NORMAL 0x00000080
#define FILE_ATTRIBUTE_TEMPORARY 0x00000100

/* Create dispositions. */
#define FILE_SUPERSEDE 0x00000000
#define FILE_OPEN 0x00000001
#define FILE_CREATE 0x00000002
#define FILE_OPEN_IF 0x00000003
#define FILE_OVERWRITE 0x00000004
#define FILE_OVERWRITE_IF 0x00000005
#define FILE_MAXIMUM_DISPOSITION 0x00000005

/* Create options. */
#define FILE_DIRECTORY_FILE 0x00000001
#define FILE_WRITE_THROUGH 0x00000002
#define FILE_SEQUENTIAL_ONLY 0x00000004
#define FILE_NO_INTERMEDIATE_BUFFERING 0x00000008
#define FILE_SYNCHRONOUS_IO_ALERT 0x00000010
#define FILE_SYNCHRONOUS_IO_NONALERT 0x00000020
#define FILE_NON_DIRECTORY_FILE 0x00000040
#define FILE_CREATE_TREE_CONNECTION 0x00000080
#define FILE_COMPLETE_IF_OPLOCKED 0x00000100
#define FILE_NO_EA_KNOWLEDGE 0x00000200
#define FILE_RANDOM_ACCESS 0x00000800
#define FILE_DELETE_ON_CLOSE 0x00001000
#define FILE_OPEN_FOR_BACKUP_INTENT 0x00004000
#define FILE_VALID_OPTION_FLAGS 0x00ffffff

/* What IoStatusBlock->Information says after ZwCreateFile. */
#define FILE_SUPERSEDED 0x00000000
#define FILE_OPENED 0x00000001
#define FILE_CREATED 0x00000002
#define FILE_OVERWRITTEN 0x00000003
#define FILE_EXISTS 0x00000004
#define FILE_DOES_NOT_EXIST 0x00000005

/* ByteOffset values for ZwWriteFile. */
#define FILE_WRITE_TO_END_OF_FILE 0xffffffff
#define FILE_USE_FILE_POINTER_POSITION 0xfffffffe

typedef enum _FILE_INFORMATION_CLASS {
    FileDirectoryInformation = 1,
    FileBasicInformation = 4,
    FileStandardInformation = 5,
    FileRenameInformation = 10,
    FileDispositionInformation = 13,
    FilePositionInformation = 14,
    FileEndOfFileInformation = 20,
    FileMaximumInformation = 78,
} FILE_INFORMATION_CLASS, *PFILE_INFORMATION_CLASS;

typedef struct _FILE_STANDARD_INFORMATION {
    LARGE_INTEGER AllocationSize;
    LARGE_INTEGER EndOfFile;
    ULONG NumberOfLinks;
    BOOLEAN DeletePending;
    BOOLEAN Directory;
} FILE_STANDARD_INFORMATION, *PFILE_STANDARD_INFORMATION;

typedef struct _FILE_POSITION_INFORMATION {
    LARGE_INTEGER CurrentByteOffset;
} FILE_POSITION_INFORMATION, *PFILE_POSITION_INFORMATION;

typedef struct _FILE_END_OF_FILE_INFORMATION {
    LARGE_INTEGER EndOfFile;
} FILE_END_OF_FILE_INFORMATION, *PFILE_END_OF_FILE_INFORMATION;

typedef struct _FILE_DISPOSITION_INFORMATION {
    BOOLEAN DeleteFile;
} FILE_DISPOSITION_INFORMATION, *PFILE_DISPOSITION_INFORMATION;

/* Opens or creates the file or folder named by ObjectAttributes (an NT path
 * such as \??\C:\Temp\x.txt, or a name relative to its RootDirectory), as
 * CreateDisposition says, and returns its handle in *FileHandle.
 * IoStatusBlock->Information tells FILE_CREATED, FILE_OPENED, FILE_OVERWRITTEN
 * or FILE_SUPERSEDED.  ShareAccess is enforced between the handles of this
 * process.  IRQL PASSIVE_LEVEL. */
FMX_WDK_API NTSTATUS NTAPI ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess,
                                        POBJECT_ATTRIBUTES ObjectAttributes,
                                        PIO_STATUS_BLOCK IoStatusBlock,
                                        PLARGE_INTEGER AllocationSize, ULONG FileAttributes,
                                        ULONG ShareAccess, ULONG CreateDisposition,
                                        ULONG CreateOptions, PVOID EaBuffer, ULONG EaLength);
/* ZwCreateFile with FILE_OPEN. */
FMX_WDK_API NTSTATUS NTAPI ZwOpenFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess,
                                      POBJECT_ATTRIBUTES ObjectAttributes,
                                      PIO_STATUS_BLOCK IoStatusBlock, ULONG ShareAccess,
                                      ULONG OpenOptions);
/* Synchronous reads and writes: at *ByteOffset, or (for a handle opened
 * FILE_SYNCHRONOUS_IO_*) at the file position when ByteOffset is NULL.
 * Event must be NULL and ApcRoutine NULL (this subset has no event handles
 * and no asynchronous I/O): STATUS_INVALID_HANDLE / STATUS_NOT_SUPPORTED.
 * ZwReadFile at the end of the file returns STATUS_END_OF_FILE. */
FMX_WDK_API NTSTATUS NTAPI ZwReadFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine,
                                      PVOID ApcContext, PIO_STATUS_BLOCK IoStatusBlock,
                                      PVOID Buffer, ULONG Length, PLARGE_INTEGER ByteOffset,
                                      PULONG Key);
FMX_WDK_API NTSTATUS NTAPI ZwWriteFile(HANDLE FileHandle, HANDLE Event,
                                       PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
                                       PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length,
                                       PLARGE_INTEGER ByteOffset, PULONG Key);
/* FileRenameInformation (ntifs.h: FILE_RENAME_INFORMATION), the handle
 * opened with DELETE access; FileDispositionInformation (delete on close);
 * FilePositionInformation; FileEndOfFileInformation.  Other classes:
 * STATUS_INVALID_INFO_CLASS. */
FMX_WDK_API NTSTATUS NTAPI ZwSetInformationFile(HANDLE FileHandle,
                                                PIO_STATUS_BLOCK IoStatusBlock,
                                                PVOID FileInformation, ULONG Length,
                                                FILE_INFORMATION_CLASS FileInformationClass);
/* FileStandardInformation and FilePositionInformation. */
FMX_WDK_API NTSTATUS NTAPI ZwQueryInformationFile(HANDLE FileHandle,
                                                  PIO_STATUS_BLOCK IoStatusBlock,
                                                  PVOID FileInformation, ULONG Length,
                                                  FILE_INFORMATION_CLASS FileInformationClass);
/* Closes a file or thread handle.  STATUS_INVALID_HANDLE for any other. */
FMX_WDK_API NTSTATUS NTAPI ZwClose(HANDLE Handle);

/* ---- Dispatcher objects: events and threads. ---- */
typedef struct _DISPATCHER_HEADER {
    UCHAR Type;
    UCHAR Signalling;
    UCHAR Size;
    UCHAR Reserved1;
    LONG SignalState; /* the futex word waiters sleep on */
    LIST_ENTRY WaitListHead;
} DISPATCHER_HEADER, *PDISPATCHER_HEADER;

typedef enum _EVENT_TYPE { NotificationEvent, SynchronizationEvent } EVENT_TYPE;

typedef struct _KEVENT {
    DISPATCHER_HEADER Header;
} KEVENT, *PKEVENT, *PRKEVENT;
FMX_WDK_ASSERT_SIZE(KEVENT, 0x18);

typedef CCHAR KPROCESSOR_MODE;
typedef enum _MODE { KernelMode, UserMode, MaximumMode } MODE;
typedef LONG KPRIORITY;
#define IO_NO_INCREMENT 0
#define EVENT_INCREMENT 1

typedef enum _KWAIT_REASON {
    Executive = 0,
    FreePage,
    PageIn,
    PoolAllocation,
    DelayExecution,
    Suspended,
    UserRequest,
    WrExecutive,
} KWAIT_REASON;

/* A NotificationEvent stays signaled, releasing every waiter, until reset;
 * a SynchronizationEvent releases one waiter and resets itself. */
FMX_WDK_API VOID NTAPI KeInitializeEvent(PRKEVENT Event, EVENT_TYPE Type, BOOLEAN State);
/* Signals Event and returns its previous state.  IRQL <= DISPATCH_LEVEL. */
FMX_WDK_API LONG NTAPI KeSetEvent(PRKEVENT Event, KPRIORITY Increment, BOOLEAN Wait);
FMX_WDK_API LONG NTAPI KeResetEvent(PRKEVENT Event);
FMX_WDK_API VOID NTAPI KeClearEvent(PRKEVENT Event);
FMX_WDK_API LONG NTAPI KeReadStateEvent(PRKEVENT Event);

/* Waits until Object (a KEVENT, or a thread from ObReferenceObjectByHandle)
 * is signaled: STATUS_SUCCESS, or STATUS_TIMEOUT once *Timeout has passed.
 * Timeout is in 100 ns units: negative is relative to now, positive an
 * absolute system time (since 1601-01-01 UTC), 0 just tests; NULL waits
 * forever.  IRQL <= APC_LEVEL, or DISPATCH_LEVEL with a zero timeout. */
FMX_WDK_API NTSTATUS NTAPI KeWaitForSingleObject(PVOID Object, KWAIT_REASON WaitReason,
                                                 KPROCESSOR_MODE WaitMode, BOOLEAN Alertable,
                                                 PLARGE_INTEGER Timeout);
/* Sleeps for *Interval (100 ns units; negative relative, positive
 * absolute).  There are no alerts or APCs here, so the sleep always runs
 * its course: STATUS_SUCCESS.  IRQL <= APC_LEVEL. */
FMX_WDK_API NTSTATUS NTAPI KeDelayExecutionThread(KPROCESSOR_MODE WaitMode, BOOLEAN Alertable,
                                                  PLARGE_INTEGER Interval);
/* The system time: 100 ns units since 1601-01-01 UTC. */
FMX_WDK_API VOID NTAPI KeQuerySystemTime(PLARGE_INTEGER CurrentTime);
FMX_WDK_API VOID NTAPI KeQuerySystemTimePrecise(PLARGE_INTEGER CurrentTime);

/* A critical region turns normal kernel APCs off for the calling thread
 * without raising IRQL: where ExAcquireFastMutexUnsafe is called at
 * PASSIVE_LEVEL, so that the holder may still call ZwCreateFile and the
 * other PASSIVE_LEVEL routines.  Regions nest; a Leave without its Enter,
 * or a system thread that ends inside one, is reported. */
FMX_WDK_API VOID NTAPI KeEnterCriticalRegion(void);
FMX_WDK_API VOID NTAPI KeLeaveCriticalRegion(void);

/* ---- System threads. ---- */
typedef VOID NTAPI KSTART_ROUTINE(PVOID StartContext);
typedef KSTART_ROUTINE *PKSTART_ROUTINE;
typedef struct _KTHREAD *PETHREAD;
typedef struct _OBJECT_TYPE *POBJECT_TYPE;

/* Starts a thread running StartRoutine(StartContext), named after
 * StartRoutine's symbol (the kernel's 15-byte thread name), and returns a
 * handle to it.  The thread ends when StartRoutine returns or calls
 * PsTerminateSystemThread.  ProcessHandle must be NULL or NtCurrentProcess().
 * IRQL PASSIVE_LEVEL. */
FMX_WDK_API NTSTATUS NTAPI PsCreateSystemThread(PHANDLE ThreadHandle, ULONG DesiredAccess,
                                                POBJECT_ATTRIBUTES ObjectAttributes,
                                                HANDLE ProcessHandle, PCLIENT_ID ClientId,
                                                PKSTART_ROUTINE StartRoutine, PVOID StartContext);
/* Ends the calling system thread with ExitStatus; STATUS_INVALID_PARAMETER
 * when the caller is not a system thread. */
FMX_WDK_API NTSTATUS NTAPI PsTerminateSystemThread(NTSTATUS ExitStatus);
FMX_WDK_API HANDLE NTAPI PsGetCurrentThreadId(void);
FMX_WDK_API HANDLE NTAPI PsGetCurrentProcessId(void);
#define NtCurrentProcess() ((HANDLE)(LONG_PTR)-1)
#define ZwCurrentProcess() NtCurrentProcess()

/* The thread object behind a thread handle, with a reference that
 * ObDereferenceObject drops: what a DriverUnload waits on.  ObjectType
 * must be NULL or *PsThreadType. */
extern FMX_WDK_API POBJECT_TYPE *PsThreadType;
FMX_WDK_API NTSTATUS NTAPI ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess,
                                                     POBJECT_TYPE ObjectType,
                                                     KPROCESSOR_MODE AccessMode, PVOID *Object,
                                                     PVOID HandleInformation);
FMX_WDK_API VOID NTAPI ObDereferenceObject(PVOID Object);
#define ObDereferenceObjectWithTag(Object, Tag) ObDereferenceObject(Object)

/* ---- Driver and device objects. ---- */
struct _DRIVER_OBJECT;
struct _DEVICE_OBJECT;
struct _IRP;

typedef NTSTATUS NTAPI DRIVER_INITIALIZE(struct _DRIVER_OBJECT *DriverObject,
                                         PUNICODE_STRING RegistryPath);
typedef DRIVER_INITIALIZE *PDRIVER_INITIALIZE;
typedef VOID NTAPI DRIVER_UNLOAD(struct _DRIVER_OBJECT *DriverObject);
typedef DRIVER_UNLOAD *PDRIVER_UNLOAD;
typedef NTSTATUS NTAPI DRIVER_DISPATCH(struct _DEVICE_OBJECT *DeviceObject, struct _IRP *Irp);
typedef DRIVER_DISPATCH *PDRIVER_DISPATCH;
typedef struct _IRP *PIRP;

#define IRP_MJ_CREATE 0x00
#define IRP_MJ_CLOSE 0x02
#define IRP_MJ_READ 0x03
#define IRP_MJ_WRITE 0x04
#define IRP_MJ_DEVICE_CONTROL 0x0e
#define IRP_MJ_CLEANUP 0x12
#define IRP_MJ_MAXIMUM_FUNCTION 0x1b

typedef struct _DEVICE_OBJECT {
    CSHORT Type;
    USHORT Size;
    LONG ReferenceCount;
    struct _DRIVER_OBJECT *DriverObject;
    struct _DEVICE_OBJECT *NextDevice;
    struct _DEVICE_OBJECT *AttachedDevice;
    PIRP CurrentIrp;
    PVOID Timer;
    ULONG Flags;
    ULONG Characteristics;
    PVOID Vpb;
    PVOID DeviceExtension;
    DEVICE_TYPE DeviceType;
    CCHAR StackSize;
} DEVICE_OBJECT, *PDEVICE_OBJECT;

typedef struct _DRIVER_EXTENSION {
    struct _DRIVER_OBJECT *DriverObject;
    PVOID AddDevice;
    ULONG Count;
    UNICODE_STRING ServiceKeyName;
} DRIVER_EXTENSION, *PDRIVER_EXTENSION;

typedef struct _DRIVER_OBJECT {
    CSHORT Type;
    CSHORT Size;
    PDEVICE_OBJECT DeviceObject;
    ULONG Flags;
    PVOID DriverStart;
    ULONG DriverSize;
    PVOID DriverSection;
    PDRIVER_EXTENSION DriverExtension;
    UNICODE_STRING DriverName;
    PUNICODE_STRING HardwareDatabase;
    PVOID FastIoDispatch;
    PDRIVER_INITIALIZE DriverInit;
    PVOID DriverStartIo;
    PDRIVER_UNLOAD DriverUnload;
    PDRIVER_DISPATCH MajorFunction[IRP_MJ_MAXIMUM_FUNCTION + 1];
} DRIVER_OBJECT, *PDRIVER_OBJECT;

#define IO_TYPE_DRIVER 4
#define IO_TYPE_DEVICE 3
#define DO_BUFFERED_IO 0x00000004
#define DO_EXCLUSIVE 0x00000008
#define DO_DIRECT_IO 0x00000010
#define DO_DEVICE_INITIALIZING 0x00000080
#define FILE_DEVICE_UNKNOWN 0x00000022
#define FILE_DEVICE_SECURE_OPEN 0x00000100

/* Makes a device object with a zeroed DeviceExtension of
 * DeviceExtensionSize bytes and puts it at the head of DriverObject's
 * device list; a DeviceName already taken gives
 * STATUS_OBJECT_NAME_COLLISION.  IRQL PASSIVE_LEVEL. */
FMX_WDK_API NTSTATUS NTAPI IoCreateDevice(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize,
                                          PUNICODE_STRING DeviceName, DEVICE_TYPE DeviceType,
                                          ULONG DeviceCharacteristics, BOOLEAN Exclusive,
                                          PDEVICE_OBJECT *DeviceObject);
/* Takes DeviceObject off its driver's list and frees it and its extension. */
FMX_WDK_API VOID NTAPI IoDeleteDevice(PDEVICE_OBJECT DeviceObject);
/* A name SymbolicLinkName that stands for DeviceName in the object
 * namespace; STATUS_OBJECT_NAME_COLLISION when the name is taken. */
FMX_WDK_API NTSTATUS NTAPI IoCreateSymbolicLink(PUNICODE_STRING SymbolicLinkName,
                                                PUNICODE_STRING DeviceName);
FMX_WDK_API NTSTATUS NTAPI IoDeleteSymbolicLink(PUNICODE_STRING SymbolicLinkName);

/* ---- For the loader (fmx driver) and tests, not for driver code. ---- */

/* Sets the folder NT paths map to (see doc/wdk.md).  Without it, the
 * environment variable FASTMUTEX_WDK_ROOT names it; with neither, every
 * path is STATUS_OBJECT_PATH_NOT_FOUND.  Returns STATUS_SUCCESS, or
 * STATUS_OBJECT_PATH_NOT_FOUND when Root is not a folder. */
FMX_WDK_API NTSTATUS fast_mutex_wdk_set_root(const char *Root);

/* A system thread's name: its start routine's, cut to 63 bytes. */
#define FAST_MUTEX_WDK_THREAD_NAME_LEN 64

/* Waits until every system thread has ended, or `timeout_ms` has passed
 * (negative: forever).  Returns how many are still running, and writes the
 * names of up to `max` of them into names[] (NUL-terminated). */
FMX_WDK_API unsigned fast_mutex_wdk_wait_threads(long timeout_ms,
                                                 char (*names)[FAST_MUTEX_WDK_THREAD_NAME_LEN],
                                                 unsigned max);

/* How many system threads have been started so far. */
FMX_WDK_API unsigned fast_mutex_wdk_threads_started(void);

/* Sets the function that names a thread after its start routine when
 * dladdr() cannot (a static function); it writes at most size bytes. */
typedef int (*fast_mutex_wdk_namer_t)(const void *routine, char *name, size_t size);
FMX_WDK_API void fast_mutex_wdk_set_namer(fast_mutex_wdk_namer_t namer);

#ifdef __cplusplus
}
#endif

#endif /* FASTMUTEX_WDK_WDM_H */
