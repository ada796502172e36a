/* The WDK subset's runtime, called as driver code calls it: types and
 * status codes, strings and formats, files under a root folder (dispositions,
 * paths, sharing, rename, delete), events, waits and system threads, pool,
 * devices, and the IRQL checks (in child processes, which must abort with a
 * report).  Built with -fshort-wchar, as driver code is. */
#include <ntifs.h>
#include <ntstrsafe.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char root[256];

/* ---- helpers ---- */

static int make_root(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/wdk-test-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(root) == NULL)
        return -1;
    char drive[300];
    snprintf(drive, sizeof drive, "%s/C", root);
    if (mkdir(drive, 0755) != 0)
        return -1;
    return NT_SUCCESS(fast_mutex_wdk_set_root(root)) ? 0 : -1;
}

static int remove_root(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* The Linux path of ROOT/rel, in a static buffer. */
static const char *host(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    return path;
}

static NTSTATUS create(PHANDLE h, PCWSTR name, ACCESS_MASK access, ULONG share, ULONG disposition,
                       ULONG options, ULONG_PTR *info)
{
    UNICODE_STRING path;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK io = {0};
    RtlInitUnicodeString(&path, name);
    InitializeObjectAttributes(&oa, &path, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL, NULL);
    NTSTATUS status = ZwCreateFile(h, access, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL, share,
                                   disposition, options, NULL, 0);
    assert_int_equal(io.Status, status);
    if (info != NULL)
        *info = io.Information;
    return status;
}

#define SYNC_FILE (FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT)

static void write_text(PCWSTR name, const char *text)
{
    HANDLE h;
    IO_STATUS_BLOCK io;
    assert_int_equal(create(&h, name, GENERIC_WRITE, 0, FILE_OVERWRITE_IF, SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(ZwWriteFile(h, NULL, NULL, NULL, &io, (PVOID)text, (ULONG)strlen(text), NULL,
                                 NULL),
                     STATUS_SUCCESS);
    assert_int_equal(io.Information, strlen(text));
    assert_int_equal(ZwClose(h), STATUS_SUCCESS);
}

static char *read_host(const char *rel)
{
    static char buf[4096];
    FILE *f = fopen(host(rel), "r");
    if (f == NULL)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* ---- types and statuses ---- */

static void test_llp64_types(void **state)
{
    (void)state;
    assert_int_equal(sizeof(LONG), 4);
    assert_int_equal(sizeof(ULONG), 4);
    assert_int_equal(sizeof(NTSTATUS), 4);
    assert_int_equal(sizeof(ULONG_PTR), sizeof(void *));
    assert_int_equal(sizeof(WCHAR), 2);
    assert_int_equal(sizeof(BOOLEAN), 1);
    assert_int_equal(sizeof(LARGE_INTEGER), 8);
    assert_int_equal(sizeof(UNICODE_STRING), 16);
    assert_int_equal(offsetof(FILE_RENAME_INFORMATION, FileName), 20);
    assert_int_equal(sizeof(L"ab"), 6);
}

/* NT_SUCCESS by severity: success and informational codes succeed,
 * warnings and errors fail, whatever the rest of the bits. */
static void test_nt_success_for_every_severity(void **state)
{
    (void)state;
    static const ULONG samples[] = {0x0000u, 0x0102u, 0x3FFFFFFFu, 0x40000000u, 0x7FFFFFFFu,
                                    0x80000000u, 0x80000005u, 0xBFFFFFFFu, 0xC0000000u,
                                    0xC0000034u, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        bool success = samples[i] < 0x80000000u;
        assert_int_equal(NT_SUCCESS(samples[i]), success);
        assert_int_equal(NT_ERROR(samples[i]), samples[i] >= 0xC0000000u);
    }
    assert_false(NT_SUCCESS(STATUS_OBJECT_NAME_NOT_FOUND));
    assert_false(NT_SUCCESS(STATUS_BUFFER_OVERFLOW));
    assert_true(NT_SUCCESS(STATUS_TIMEOUT));
    assert_string_equal(fast_mutex_wdk_status_name(STATUS_OBJECT_PATH_NOT_FOUND),
                        "STATUS_OBJECT_PATH_NOT_FOUND");
    assert_null(fast_mutex_wdk_status_name((NTSTATUS)0xC0DE0000u));
}

/* ---- strings ---- */

static void test_unicode_strings(void **state)
{
    (void)state;
    UNICODE_STRING u, v, empty;
    WCHAR buf[4];
    UNICODE_STRING small = {0, sizeof buf, buf};
    assert_int_equal(wcslen(L"file_1.txt"), 10);
    RtlInitUnicodeString(&u, L"Temp");
    assert_int_equal(u.Length, 8);
    assert_int_equal(u.MaximumLength, 10);
    RtlInitUnicodeString(&v, L"TEMP");
    assert_true(RtlEqualUnicodeString(&u, &v, TRUE));
    assert_false(RtlEqualUnicodeString(&u, &v, FALSE));
    RtlInitUnicodeString(&empty, NULL);
    assert_int_equal(empty.Length, 0);
    assert_null(empty.Buffer);
    RtlCopyUnicodeString(&small, &u); /* 8 bytes into 8: no room for a NUL */
    assert_int_equal(small.Length, 8);
    assert_memory_equal(buf, L"Temp", 8);
}

static void test_printf_llp64_and_strings(void **state)
{
    (void)state;
    WCHAR out[64];
    char narrow[64];
    UNICODE_STRING u;
    RtlInitUnicodeString(&u, L"\\??\\C:");
    LONG negative = -5;
    ULONG big = 4000000000u;
    assert_int_equal(RtlStringCchPrintfW(out, 64, L"%ws|%ld|%lu|%I64d|%wZ", L"a\u00e9", negative,
                                         big, -(LONGLONG)1099511627776, &u),
                     STATUS_SUCCESS);
    const WCHAR want[] = L"a\u00e9|-5|4000000000|-1099511627776|\\??\\C:";
    assert_memory_equal(out, want, sizeof want);
    /* In a W format %s is wide and %S narrow; in an A format the reverse. */
    assert_int_equal(RtlStringCchPrintfW(out, 64, L"%s-%S-%c", L"w", "n", L'x'), STATUS_SUCCESS);
    assert_memory_equal(out, L"w-n-x", sizeof L"w-n-x");
    assert_int_equal(RtlStringCchPrintfA(narrow, 64, "%s-%S-%p", "n", L"w", (void *)0x1234),
                     STATUS_SUCCESS);
    assert_string_equal(narrow, "n-w-0000000000001234");
    assert_int_equal(RtlStringCchPrintfA(narrow, 64, "%5.2ld|%-4d|%x", 7, 3, 255u), STATUS_SUCCESS);
    assert_string_equal(narrow, "   07|3   |ff");
}

static void test_printf_truncates_and_refuses(void **state)
{
    (void)state;
    WCHAR out[6];
    int n;
    assert_int_equal(RtlStringCchPrintfW(out, 6, L"file_%d.txt", 12), STATUS_BUFFER_OVERFLOW);
    assert_memory_equal(out, L"file_", sizeof L"file_");
    assert_int_equal(RtlStringCchPrintfW(out, 0, L"x"), STATUS_INVALID_PARAMETER);
    assert_int_equal(RtlStringCchPrintfW(out, 6, L"%n", &n), STATUS_INVALID_PARAMETER);
    assert_int_equal(out[0], 0);
    assert_int_equal(RtlStringCchCopyW(out, 6, L"abcdefgh"), STATUS_BUFFER_OVERFLOW);
    assert_memory_equal(out, L"abcde", sizeof L"abcde");
    assert_int_equal(RtlStringCchCopyW(out, 6, L"ab"), STATUS_SUCCESS);
    assert_int_equal(RtlStringCchCatW(out, 6, L"cd"), STATUS_SUCCESS);
    assert_memory_equal(out, L"abcd", sizeof L"abcd");
    size_t len;
    assert_int_equal(RtlStringCchLengthW(out, 6, &len), STATUS_SUCCESS);
    assert_int_equal(len, 4);
    assert_int_equal(RtlStringCchLengthW(out, 4, &len), STATUS_INVALID_PARAMETER);
}

/* ---- files ---- */

static void test_create_dispositions(void **state)
{
    (void)state;
    HANDLE h;
    ULONG_PTR info;
    PCWSTR name = L"\\??\\C:\\disp.txt";
    assert_int_equal(create(&h, name, GENERIC_READ, 0, FILE_OPEN, SYNC_FILE, &info),
                     STATUS_OBJECT_NAME_NOT_FOUND);
    assert_int_equal(info, FILE_DOES_NOT_EXIST);
    assert_int_equal(create(&h, name, GENERIC_READ, 0, FILE_OVERWRITE, SYNC_FILE, &info),
                     STATUS_OBJECT_NAME_NOT_FOUND);
    assert_int_equal(create(&h, name, GENERIC_WRITE, 0, FILE_CREATE, SYNC_FILE, &info),
                     STATUS_SUCCESS);
    assert_int_equal(info, FILE_CREATED);
    ZwClose(h);
    assert_int_equal(create(&h, name, GENERIC_WRITE, 0, FILE_CREATE, SYNC_FILE, &info),
                     STATUS_OBJECT_NAME_COLLISION);
    assert_int_equal(info, FILE_EXISTS);
    write_text(name, "hello");
    assert_int_equal(create(&h, name, GENERIC_READ, 0, FILE_OPEN_IF, SYNC_FILE, &info),
                     STATUS_SUCCESS);
    assert_int_equal(info, FILE_OPENED);
    ZwClose(h);
    assert_string_equal(read_host("C/disp.txt"), "hello");
    assert_int_equal(create(&h, name, GENERIC_WRITE, 0, FILE_OVERWRITE, SYNC_FILE, &info),
                     STATUS_SUCCESS);
    assert_int_equal(info, FILE_OVERWRITTEN);
    ZwClose(h);
    assert_string_equal(read_host("C/disp.txt"), "");
    assert_int_equal(create(&h, name, GENERIC_WRITE, 0, FILE_SUPERSEDE, SYNC_FILE, &info),
                     STATUS_SUCCESS);
    assert_int_equal(info, FILE_SUPERSEDED);
    ZwClose(h);
    assert_int_equal(create(&h, name, GENERIC_WRITE, 0, 9, SYNC_FILE, &info),
                     STATUS_INVALID_PARAMETER);
    /* Synchronous I/O needs SYNCHRONIZE access. */
    assert_int_equal(create(&h, name, FILE_WRITE_DATA, 0, FILE_OPEN, SYNC_FILE, &info),
                     STATUS_INVALID_PARAMETER);
}

static void test_folders_and_kinds(void **state)
{
    (void)state;
    HANDLE h;
    ULONG_PTR info;
    assert_int_equal(create(&h, L"\\??\\C:\\Dir", FILE_LIST_DIRECTORY | SYNCHRONIZE, 0, FILE_CREATE,
                            FILE_DIRECTORY_FILE, &info),
                     STATUS_SUCCESS);
    ZwClose(h);
    struct stat st;
    assert_int_equal(stat(host("C/Dir"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(create(&h, L"\\??\\C:\\Dir", GENERIC_READ, 0, FILE_OPEN, SYNC_FILE, &info),
                     STATUS_FILE_IS_A_DIRECTORY);
    write_text(L"\\??\\C:\\plain.txt", "x");
    assert_int_equal(create(&h, L"\\??\\C:\\plain.txt", FILE_LIST_DIRECTORY, 0, FILE_OPEN,
                            FILE_DIRECTORY_FILE, &info),
                     STATUS_NOT_A_DIRECTORY);
}

/* Every spelling of the DOS device names reaches ROOT/C; names match
 * without regard to case, and a new file keeps the case it was given. */
static void test_paths_map_under_root(void **state)
{
    (void)state;
    HANDLE h;
    assert_int_equal(mkdir(host("C/Temp"), 0755), 0);
    write_text(L"\\DosDevices\\C:\\Temp\\file_1.txt", "one");
    assert_string_equal(read_host("C/Temp/file_1.txt"), "one");
    write_text(L"\\??\\c:\\TEMP\\File_2.TXT", "two");
    assert_string_equal(read_host("C/Temp/File_2.TXT"), "two");
    write_text(L"\\GLOBAL??\\C:\\temp\\FILE_1.txt", "uno");
    assert_string_equal(read_host("C/Temp/file_1.txt"), "uno");
    assert_null(read_host("C/Temp/FILE_1.txt"));
    /* Relative to a folder handle. */
    UNICODE_STRING rel;
    OBJECT_ATTRIBUTES oa;
    IO_STATUS_BLOCK io;
    HANDLE dir, f;
    assert_int_equal(create(&dir, L"\\??\\C:\\Temp", FILE_LIST_DIRECTORY | SYNCHRONIZE, 0,
                            FILE_OPEN, FILE_DIRECTORY_FILE, NULL),
                     STATUS_SUCCESS);
    RtlInitUnicodeString(&rel, L"rel.txt");
    InitializeObjectAttributes(&oa, &rel, OBJ_CASE_INSENSITIVE, dir, NULL);
    assert_int_equal(ZwCreateFile(&f, GENERIC_WRITE, &oa, &io, NULL, 0, 0, FILE_CREATE, SYNC_FILE,
                                  NULL, 0),
                     STATUS_SUCCESS);
    ZwClose(f);
    ZwClose(dir);
    assert_non_null(read_host("C/Temp/rel.txt"));
    (void)h;
}

/* Nothing outside the root can be named: ".." is refused as Windows refuses
 * it, a missing folder or a symbolic link on the way is no path, and names
 * outside the DOS devices are unknown. */
static void test_paths_outside_root_refused(void **state)
{
    (void)state;
    HANDLE h;
    assert_int_equal(create(&h, L"\\??\\C:\\..\\escape.txt", GENERIC_WRITE, 0, FILE_CREATE,
                            SYNC_FILE, NULL),
                     STATUS_OBJECT_NAME_INVALID);
    assert_int_equal(create(&h, L"\\??\\C:\\Nowhere\\x.txt", GENERIC_WRITE, 0, FILE_CREATE,
                            SYNC_FILE, NULL),
                     STATUS_OBJECT_PATH_NOT_FOUND);
    assert_int_equal(symlink("/tmp", host("C/link")), 0);
    assert_int_equal(create(&h, L"\\??\\C:\\link\\x.txt", GENERIC_WRITE, 0, FILE_CREATE, SYNC_FILE,
                            NULL),
                     STATUS_OBJECT_PATH_NOT_FOUND);
    assert_int_equal(create(&h, L"\\??\\C:\\link", GENERIC_READ, 0, FILE_OPEN, SYNC_FILE, NULL),
                     STATUS_OBJECT_PATH_NOT_FOUND);
    assert_int_equal(create(&h, L"\\Device\\HarddiskVolume1\\x.txt", GENERIC_WRITE, 0, FILE_CREATE,
                            SYNC_FILE, NULL),
                     STATUS_OBJECT_PATH_NOT_FOUND);
    assert_int_equal(create(&h, L"C:\\x.txt", GENERIC_WRITE, 0, FILE_CREATE, SYNC_FILE, NULL),
                     STATUS_OBJECT_PATH_SYNTAX_BAD);
    assert_int_equal(create(&h, L"\\??\\C:\\a*b.txt", GENERIC_WRITE, 0, FILE_CREATE, SYNC_FILE,
                            NULL),
                     STATUS_OBJECT_NAME_INVALID);
    assert_int_equal(create(&h, L"\\??\\C:\\a/b.txt", GENERIC_WRITE, 0, FILE_CREATE, SYNC_FILE,
                            NULL),
                     STATUS_OBJECT_NAME_INVALID);
    assert_null(read_host("../escape.txt"));
}

static void test_read_write_positions(void **state)
{
    (void)state;
    HANDLE h;
    IO_STATUS_BLOCK io;
    char buf[16] = {0};
    LARGE_INTEGER at;
    assert_int_equal(create(&h, L"\\??\\C:\\rw.txt", GENERIC_READ | GENERIC_WRITE, 0,
                            FILE_OVERWRITE_IF, SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(ZwWriteFile(h, NULL, NULL, NULL, &io, "abcdef", 6, NULL, NULL), STATUS_SUCCESS);
    at.QuadPart = 2;
    assert_int_equal(ZwWriteFile(h, NULL, NULL, NULL, &io, "XY", 2, &at, NULL), STATUS_SUCCESS);
    at.QuadPart = 0;
    assert_int_equal(ZwReadFile(h, NULL, NULL, NULL, &io, buf, sizeof buf, &at, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(io.Information, 6);
    assert_string_equal(buf, "abXYef");
    /* The position followed the read: the next one is at the end. */
    assert_int_equal(ZwReadFile(h, NULL, NULL, NULL, &io, buf, sizeof buf, NULL, NULL),
                     STATUS_END_OF_FILE);
    assert_int_equal(io.Information, 0);
    /* A buffer the process cannot read, as Windows says of it. */
    at.QuadPart = 0;
    assert_int_equal(ZwWriteFile(h, NULL, NULL, NULL, &io, (PVOID)8, 4, &at, NULL),
                     STATUS_ACCESS_VIOLATION);
    /* No event handles and no APCs here. */
    assert_int_equal(ZwReadFile(h, (HANDLE)(uintptr_t)8, NULL, NULL, &io, buf, 1, NULL, NULL),
                     STATUS_INVALID_HANDLE);
    ZwClose(h);
    assert_int_equal(create(&h, L"\\??\\C:\\rw.txt", GENERIC_READ | SYNCHRONIZE, 0, FILE_OPEN,
                            SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(ZwWriteFile(h, NULL, NULL, NULL, &io, "z", 1, NULL, NULL), STATUS_ACCESS_DENIED);
    ZwClose(h);
    assert_int_equal(ZwClose(h), STATUS_INVALID_HANDLE);
    assert_int_equal(ZwClose(NULL), STATUS_INVALID_HANDLE);
}

/* Share access, as Windows checks it between the handles of a file. */
static void test_share_access(void **state)
{
    (void)state;
    HANDLE writer, other;
    PCWSTR name = L"\\??\\C:\\shared.txt";
    assert_int_equal(create(&writer, name, GENERIC_WRITE, FILE_SHARE_READ, FILE_OVERWRITE_IF,
                            SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(create(&other, name, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE,
                            FILE_OPEN, SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    ZwClose(other);
    assert_int_equal(create(&other, name, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                            FILE_OPEN, SYNC_FILE, NULL),
                     STATUS_SHARING_VIOLATION);
    assert_int_equal(create(&other, name, DELETE | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                            FILE_OPEN, SYNC_FILE, NULL),
                     STATUS_SHARING_VIOLATION);
    /* A reader that will not share writing cannot join a writer. */
    assert_int_equal(create(&other, name, GENERIC_READ, FILE_SHARE_READ, FILE_OPEN, SYNC_FILE,
                            NULL),
                     STATUS_SHARING_VIOLATION);
    /* Attribute-only access takes no part in sharing. */
    assert_int_equal(create(&other, name, FILE_READ_ATTRIBUTES | SYNCHRONIZE, 0, FILE_OPEN,
                            SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    ZwClose(other);
    ZwClose(writer);
    assert_int_equal(create(&other, name, DELETE | SYNCHRONIZE, 0, FILE_OPEN, SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    ZwClose(other);
}

static NTSTATUS rename_to(HANDLE h, PCWSTR target, BOOLEAN replace, HANDLE root_dir)
{
    IO_STATUS_BLOCK io;
    ULONG bytes = (ULONG)(wcslen(target) * sizeof(WCHAR));
    ULONG size = FIELD_OFFSET(FILE_RENAME_INFORMATION, FileName) + bytes;
    PFILE_RENAME_INFORMATION info = ExAllocatePool2(POOL_FLAG_PAGED, size, 'tseT');
    assert_non_null(info);
    info->ReplaceIfExists = replace;
    info->RootDirectory = root_dir;
    info->FileNameLength = bytes;
    RtlCopyMemory(info->FileName, target, bytes);
    NTSTATUS status = ZwSetInformationFile(h, &io, info, size, FileRenameInformation);
    ExFreePool(info);
    return status;
}

static void test_rename(void **state)
{
    (void)state;
    HANDLE h;
    assert_int_equal(mkdir(host("C/From"), 0755), 0);
    assert_int_equal(mkdir(host("C/To"), 0755), 0);
    write_text(L"\\??\\C:\\From\\a.txt", "A");
    write_text(L"\\??\\C:\\To\\b.txt", "B");
    assert_int_equal(create(&h, L"\\??\\C:\\From\\a.txt", DELETE | SYNCHRONIZE, 0, FILE_OPEN,
                            SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(rename_to(h, L"\\??\\C:\\To\\b.txt", FALSE, NULL), STATUS_OBJECT_NAME_COLLISION);
    assert_int_equal(rename_to(h, L"\\??\\C:\\To\\b.txt", TRUE, NULL), STATUS_SUCCESS);
    assert_string_equal(read_host("C/To/b.txt"), "A");
    assert_null(read_host("C/From/a.txt"));
    /* The handle follows the file: a bare name renames it where it is now. */
    assert_int_equal(rename_to(h, L"c.txt", FALSE, NULL), STATUS_SUCCESS);
    assert_string_equal(read_host("C/To/c.txt"), "A");
    assert_int_equal(rename_to(h, L"\\??\\C:\\Missing\\c.txt", FALSE, NULL),
                     STATUS_OBJECT_PATH_NOT_FOUND);
    ZwClose(h);
    /* Without DELETE access there is no rename; a short buffer is refused. */
    assert_int_equal(create(&h, L"\\??\\C:\\To\\c.txt", GENERIC_READ, FILE_SHARE_READ, FILE_OPEN,
                            SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(rename_to(h, L"d.txt", FALSE, NULL), STATUS_ACCESS_DENIED);
    FILE_RENAME_INFORMATION tiny = {.FileNameLength = 200};
    IO_STATUS_BLOCK io;
    assert_int_equal(ZwSetInformationFile(h, &io, &tiny, sizeof tiny, FileRenameInformation),
                     STATUS_INVALID_PARAMETER);
    ZwClose(h);
}

static void test_delete_on_last_close(void **state)
{
    (void)state;
    HANDLE a, b;
    IO_STATUS_BLOCK io;
    FILE_DISPOSITION_INFORMATION del = {TRUE};
    write_text(L"\\??\\C:\\gone.txt", "x");
    assert_int_equal(create(&a, L"\\??\\C:\\gone.txt", DELETE | SYNCHRONIZE, FILE_SHARE_DELETE |
                            FILE_SHARE_READ, FILE_OPEN, SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(create(&b, L"\\??\\C:\\gone.txt", GENERIC_READ, FILE_SHARE_DELETE |
                            FILE_SHARE_READ, FILE_OPEN, SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(ZwSetInformationFile(a, &io, &del, sizeof del, FileDispositionInformation),
                     STATUS_SUCCESS);
    ZwClose(a);
    assert_non_null(read_host("C/gone.txt")); /* b still has it open */
    ZwClose(b);
    assert_null(read_host("C/gone.txt"));
}

/* ---- events, waits, threads ---- */

static void test_events(void **state)
{
    (void)state;
    KEVENT sync, notify;
    LARGE_INTEGER zero = {.QuadPart = 0}, ten_ms = {.QuadPart = -100000};
    KeInitializeEvent(&sync, SynchronizationEvent, TRUE);
    assert_int_equal(KeWaitForSingleObject(&sync, Executive, KernelMode, FALSE, &zero),
                     STATUS_SUCCESS);
    /* A synchronization event resets itself for the waiter it releases. */
    assert_int_equal(KeWaitForSingleObject(&sync, Executive, KernelMode, FALSE, &zero),
                     STATUS_TIMEOUT);
    KeInitializeEvent(&notify, NotificationEvent, FALSE);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(KeWaitForSingleObject(&notify, Executive, KernelMode, FALSE, &ten_ms),
                     STATUS_TIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) >= 10000000L);
    assert_int_equal(KeSetEvent(&notify, IO_NO_INCREMENT, FALSE), 0);
    assert_int_equal(KeWaitForSingleObject(&notify, Executive, KernelMode, FALSE, &zero),
                     STATUS_SUCCESS);
    /* A notification event stays signaled. */
    assert_int_equal(KeWaitForSingleObject(&notify, Executive, KernelMode, FALSE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(KeResetEvent(&notify), 1);
    assert_int_equal(KeReadStateEvent(&notify), 0);
}

static void test_delay_execution(void **state)
{
    (void)state;
    struct timespec t0, t1;
    LARGE_INTEGER rel = {.QuadPart = -200000}; /* 20 ms */
    LARGE_INTEGER abs;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(KeDelayExecutionThread(KernelMode, FALSE, &rel), STATUS_SUCCESS);
    KeQuerySystemTime(&abs);
    abs.QuadPart += 200000; /* 20 ms from now, absolute */
    assert_int_equal(KeDelayExecutionThread(KernelMode, FALSE, &abs), STATUS_SUCCESS);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) >= 40000000L);
    /* System time counts 100 ns units from 1601. */
    LARGE_INTEGER now;
    KeQuerySystemTime(&now);
    assert_true(now.QuadPart / 10000000 - 11644473600LL > 1700000000LL);
}

struct thread_test {
    KEVENT go;
    LONG ran;
    char name[16];
    NTSTATUS terminate_status;
};

VOID NamedStartRoutine(PVOID Context)
{
    struct thread_test *t = Context;
    KeWaitForSingleObject(&t->go, Executive, KernelMode, FALSE, NULL);
    pthread_getname_np(pthread_self(), t->name, sizeof t->name);
    __atomic_store_n(&t->ran, 1, __ATOMIC_RELEASE);
    PsTerminateSystemThread(STATUS_SUCCESS);
    t->ran = 2; /* never reached */
}

static void test_system_thread(void **state)
{
    (void)state;
    struct thread_test t = {0};
    HANDLE h;
    PVOID thread;
    LARGE_INTEGER zero = {.QuadPart = 0};
    KeInitializeEvent(&t.go, NotificationEvent, FALSE);
    unsigned before = fast_mutex_wdk_threads_started();
    assert_int_equal(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, NULL, NULL, NULL,
                                          NamedStartRoutine, &t),
                     STATUS_SUCCESS);
    assert_int_equal(fast_mutex_wdk_threads_started(), before + 1);
    assert_int_equal(ObReferenceObjectByHandle(h, THREAD_ALL_ACCESS, *PsThreadType, KernelMode,
                                               &thread, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(ZwClose(h), STATUS_SUCCESS);
    assert_int_equal(KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, &zero),
                     STATUS_TIMEOUT);
    char names[4][FAST_MUTEX_WDK_THREAD_NAME_LEN];
    assert_int_equal(fast_mutex_wdk_wait_threads(10, names, 4), 1);
    assert_string_equal(names[0], "NamedStartRoutine"); /* whole, where the kernel keeps 15 bytes */
    KeSetEvent(&t.go, IO_NO_INCREMENT, FALSE);
    assert_int_equal(KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, NULL),
                     STATUS_SUCCESS);
    ObDereferenceObject(thread);
    assert_int_equal(fast_mutex_wdk_wait_threads(5000, names, 4), 0);
    assert_int_equal(t.ran, 1);
    assert_string_equal(t.name, "NamedStartRouti");
    /* Only a system thread may end itself this way. */
    assert_int_equal(PsTerminateSystemThread(STATUS_SUCCESS), STATUS_INVALID_PARAMETER);
}

VOID StartRoutineWhoseNameIsLongerThanTheSixtyFourBytesOfARegistryRecord(PVOID Context)
{
    struct thread_test *t = Context;
    pthread_getname_np(pthread_self(), t->name, sizeof t->name);
    KeWaitForSingleObject(&t->go, Executive, KernelMode, FALSE, NULL);
}

/* A start routine's name longer than a thread name holds is cut to 63
 * bytes and terminated; the kernel's comm keeps its first 15. */
static void test_long_thread_name(void **state)
{
    (void)state;
    struct thread_test t = {0};
    HANDLE h;
    char names[2][FAST_MUTEX_WDK_THREAD_NAME_LEN];
    memset(names, 'x', sizeof names);
    KeInitializeEvent(&t.go, NotificationEvent, FALSE);
    assert_int_equal(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, NULL, NULL, NULL,
                                          StartRoutineWhoseNameIsLongerThanTheSixtyFourBytesOfARegistryRecord,
                                          &t),
                     STATUS_SUCCESS);
    ZwClose(h);
    assert_int_equal(fast_mutex_wdk_wait_threads(10, names, 2), 1);
    assert_string_equal(names[0], "StartRoutineWhoseNameIsLongerThanTheSixtyFourBytesOfARegistryRe");
    assert_int_equal(strlen(names[0]), FAST_MUTEX_WDK_THREAD_NAME_LEN - 1);
    KeSetEvent(&t.go, IO_NO_INCREMENT, FALSE);
    assert_int_equal(fast_mutex_wdk_wait_threads(5000, names, 2), 0);
    assert_string_equal(t.name, "StartRoutineWho");
}

static VOID HiddenStartRoutine(PVOID Context)
{
    struct thread_test *t = Context;
    pthread_getname_np(pthread_self(), t->name, sizeof t->name);
}

static int test_namer(const void *routine, char *name, size_t size)
{
    if (routine != (const void *)(uintptr_t)HiddenStartRoutine)
        return -1;
    snprintf(name, size, "ByNamer");
    return 0;
}

/* A start routine dladdr() cannot name (a static function) is named by
 * the namer fmx driver installs; without one, "SystemThread". */
static void test_thread_namer(void **state)
{
    (void)state;
    struct thread_test t = {0};
    HANDLE h;
    char names[1][FAST_MUTEX_WDK_THREAD_NAME_LEN];
    fast_mutex_wdk_set_namer(test_namer);
    assert_int_equal(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, NULL, NULL, NULL,
                                          HiddenStartRoutine, &t),
                     STATUS_SUCCESS);
    ZwClose(h);
    assert_int_equal(fast_mutex_wdk_wait_threads(5000, names, 1), 0);
    assert_string_equal(t.name, "ByNamer");
    fast_mutex_wdk_set_namer(NULL);
    assert_int_equal(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, NULL, NULL, NULL,
                                          HiddenStartRoutine, &t),
                     STATUS_SUCCESS);
    ZwClose(h);
    assert_int_equal(fast_mutex_wdk_wait_threads(5000, names, 1), 0);
    assert_string_equal(t.name, "SystemThread");
}

/* ---- pool and devices ---- */

static void test_pool(void **state)
{
    (void)state;
    unsigned char *p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, 'looP');
    assert_non_null(p);
    for (int i = 0; i < 64; i++)
        assert_int_equal(p[i], 0);
    ExFreePoolWithTag(p, 'looP');
    assert_null(ExAllocatePool2(0, 64, 'looP'));
    assert_null(ExAllocatePool2(POOL_FLAG_PAGED | POOL_FLAG_NON_PAGED, 64, 'looP'));
}

static void test_devices(void **state)
{
    (void)state;
    DRIVER_OBJECT driver = {0};
    PDEVICE_OBJECT a, b;
    UNICODE_STRING name, link;
    RtlInitUnicodeString(&name, L"\\Device\\FmxTest");
    RtlInitUnicodeString(&link, L"\\DosDevices\\FmxTest");
    assert_int_equal(IoCreateDevice(&driver, 32, &name, FILE_DEVICE_UNKNOWN, 0, FALSE, &a),
                     STATUS_SUCCESS);
    assert_ptr_equal(driver.DeviceObject, a);
    assert_non_null(a->DeviceExtension);
    assert_int_equal(((unsigned char *)a->DeviceExtension)[31], 0);
    assert_int_equal(IoCreateDevice(&driver, 0, &name, FILE_DEVICE_UNKNOWN, 0, FALSE, &b),
                     STATUS_OBJECT_NAME_COLLISION);
    assert_int_equal(IoCreateDevice(&driver, 0, NULL, FILE_DEVICE_UNKNOWN, 0, FALSE, &b),
                     STATUS_SUCCESS);
    assert_ptr_equal(driver.DeviceObject, b);
    assert_ptr_equal(b->NextDevice, a);
    assert_int_equal(IoCreateSymbolicLink(&link, &name), STATUS_SUCCESS);
    assert_int_equal(IoCreateSymbolicLink(&link, &name), STATUS_OBJECT_NAME_COLLISION);
    assert_int_equal(IoDeleteSymbolicLink(&link), STATUS_SUCCESS);
    assert_int_equal(IoDeleteSymbolicLink(&link), STATUS_OBJECT_NAME_NOT_FOUND);
    IoDeleteDevice(a);
    assert_ptr_equal(driver.DeviceObject, b);
    assert_null(b->NextDevice);
    IoDeleteDevice(b);
    assert_null(driver.DeviceObject);
    assert_int_equal(IoCreateDevice(&driver, 0, &name, FILE_DEVICE_UNKNOWN, 0, FALSE, &a),
                     STATUS_SUCCESS);
    IoDeleteDevice(a);
}

/* ---- IRQL: the calls report and abort, as the Fast Mutex calls do ---- */

/* Runs `body` in a child whose standard error comes back in err; returns
 * the child's wait status. */
static int in_child(void (*body)(void), char *err, size_t size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGABRT, &dfl, NULL);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        body();
        _exit(3);
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t n;
    while (used + 1 < size && (n = read(fds[0], err + used, size - 1 - used)) > 0)
        used += (size_t)n;
    err[used] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void create_at_apc_level(void)
{
    KIRQL old;
    HANDLE h;
    KeRaiseIrql(APC_LEVEL, &old);
    create(&h, L"\\??\\C:\\apc.txt", GENERIC_WRITE, 0, FILE_OVERWRITE_IF, SYNC_FILE, NULL);
}

static void delay_at_dispatch_level(void)
{
    KIRQL old;
    LARGE_INTEGER rel = {.QuadPart = -1};
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeDelayExecutionThread(KernelMode, FALSE, &rel);
}

static void wait_at_dispatch_level(void)
{
    KIRQL old;
    KEVENT e;
    LARGE_INTEGER zero = {.QuadPart = 0};
    KeInitializeEvent(&e, NotificationEvent, FALSE);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    /* A zero timeout may test at DISPATCH_LEVEL ... */
    if (KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &zero) != STATUS_TIMEOUT)
        _exit(4);
    /* ... a real wait may not. */
    KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, NULL);
}

VOID EndsAtApcLevel(PVOID Context)
{
    KIRQL old;
    UNREFERENCED_PARAMETER(Context);
    KeRaiseIrql(APC_LEVEL, &old);
}

VOID EndsInCriticalRegion(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    KeEnterCriticalRegion();
}

static void run_system_thread(PKSTART_ROUTINE routine)
{
    HANDLE h;
    char names[1][FAST_MUTEX_WDK_THREAD_NAME_LEN];
    if (!NT_SUCCESS(PsCreateSystemThread(&h, THREAD_ALL_ACCESS, NULL, NULL, NULL, routine, NULL)))
        _exit(5);
    fast_mutex_wdk_wait_threads(10000, names, 1);
}

static void thread_ends_at_apc_level(void)
{
    run_system_thread(EndsAtApcLevel);
}

static void thread_ends_in_critical_region(void)
{
    run_system_thread(EndsInCriticalRegion);
}

static void leave_without_enter(void)
{
    KeLeaveCriticalRegion();
}

/* The child died of SIGABRT after a report containing `text`. */
static void expect_report(void (*body)(void), const char *text)
{
    char err[4096];
    int status = in_child(body, err, sizeof err);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("no abort for '%s' (status 0x%x); stderr:\n%s", text, status, err);
    if (strstr(err, text) == NULL)
        fail_msg("report does not say '%s':\n%s", text, err);
}

static void test_thread_end_checked(void **state)
{
    (void)state;
    expect_report(thread_ends_at_apc_level, "IRQL_GT_ZERO_AT_SYSTEM_SERVICE");
    expect_report(thread_ends_at_apc_level, "system thread EndsAtApcLevel ended at IRQL 1");
    expect_report(thread_ends_in_critical_region,
                  "system thread EndsInCriticalRegion ended with 1 KeEnterCriticalRegion not left");
    expect_report(leave_without_enter, "KeLeaveCriticalRegion outside a critical region");
}

/* Handles of one kind are not taken for the other. */
static void test_handle_kinds(void **state)
{
    (void)state;
    HANDLE file;
    PVOID object = (PVOID)1;
    IO_STATUS_BLOCK io;
    char c;
    assert_int_equal(create(&file, L"\\??\\C:\\kind.txt", GENERIC_READ | GENERIC_WRITE, 0,
                            FILE_OVERWRITE_IF, SYNC_FILE, NULL),
                     STATUS_SUCCESS);
    assert_int_equal(ObReferenceObjectByHandle(file, 0, NULL, KernelMode, &object, NULL),
                     STATUS_OBJECT_TYPE_MISMATCH);
    assert_null(object);
    ZwClose(file);
    assert_int_equal(ZwReadFile(file, NULL, NULL, NULL, &io, &c, 1, NULL, NULL),
                     STATUS_INVALID_HANDLE);
    assert_int_equal(ZwReadFile((HANDLE)(uintptr_t)3, NULL, NULL, NULL, &io, &c, 1, NULL, NULL),
                     STATUS_INVALID_HANDLE);
}

static void expect_irql_report(void (*body)(void), const char *api)
{
    char err[4096];
    int status = in_child(body, err, sizeof err);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("%s at a high IRQL: child not aborted (status 0x%x); stderr:\n%s", api, status, err);
    if (strstr(err, "IRQL_NOT_LESS_OR_EQUAL") == NULL || strstr(err, api) == NULL)
        fail_msg("report does not name IRQL_NOT_LESS_OR_EQUAL and %s:\n%s", api, err);
}

static void test_irql_checked(void **state)
{
    (void)state;
    expect_irql_report(create_at_apc_level, "ZwCreateFile at IRQL 1");
    expect_irql_report(delay_at_dispatch_level, "KeDelayExecutionThread at IRQL 2");
    expect_irql_report(wait_at_dispatch_level, "KeWaitForSingleObject at IRQL 2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llp64_types),
        cmocka_unit_test(test_nt_success_for_every_severity),
        cmocka_unit_test(test_unicode_strings),
        cmocka_unit_test(test_printf_llp64_and_strings),
        cmocka_unit_test(test_printf_truncates_and_refuses),
        cmocka_unit_test_setup_teardown(test_create_dispositions, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_folders_and_kinds, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_paths_map_under_root, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_paths_outside_root_refused, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_read_write_positions, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_share_access, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_rename, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_delete_on_last_close, make_root, remove_root),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_delay_execution),
        cmocka_unit_test(test_system_thread),
        cmocka_unit_test(test_thread_namer),
        cmocka_unit_test(test_long_thread_name),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_devices),
        cmocka_unit_test_setup_teardown(test_irql_checked, make_root, remove_root),
        cmocka_unit_test(test_thread_end_checked),
        cmocka_unit_test_setup_teardown(test_handle_kinds, make_root, remove_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
