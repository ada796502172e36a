/*
 * filemove.c: a kernel-mode driver with two system threads sharing a folder.
 *
 * FileCreationThread creates \??\C:\FastMutexDemo\Source\file_<i>.txt and
 * writes "Hello, World!\r\n" into it WRITES_PER_FILE times;
 * FileMoveThread renames each into \??\C:\FastMutexDemo\Destination as
 * NewFile_<i>.txt.  Built two ways:
 *
 *   (default)          no lock: the mover runs ahead of the creator, finds
 *                      files that do not exist yet or are still open, and
 *                      leaves them behind.
 *   USE_FAST_MUTEX=1   a FAST_MUTEX around each file: the creator holds it
 *                      while it creates and writes file i and counts it
 *                      done; the mover holds it while it moves file i, and
 *                      only once file i is done.  Every file is moved whole.
 *   HOLD_FIRST_FILE_MS with USE_FAST_MUTEX=1: the creator keeps the mutex
 *                      that long once file 0 is written, so that
 *                      `fmx waiters` can watch FileMoveThread wait for it.
 *   USE_FAST_MUTEX=2   the same with ExAcquireFastMutex, which raises IRQL
 *                      to APC_LEVEL: the ZwCreateFile that follows requires
 *                      PASSIVE_LEVEL, a bug Windows' Driver Verifier
 *                      reports and `fmx driver` reports too.
 *
 * Written against the Windows Driver Kit; it builds unchanged with
 * fastmutex's WDK subset and runs under `fmx driver`.  DriverUnload prints
 * what each thread did.
 */
#include <ntifs.h>
#include <ntstrsafe.h>

#ifndef USE_FAST_MUTEX
#define USE_FAST_MUTEX 0
#endif

#ifndef HOLD_FIRST_FILE_MS
#define HOLD_FIRST_FILE_MS 0
#endif

#define FILE_COUNT 200
#define WRITES_PER_FILE 100
#define POOL_TAG 'vMlF'

#define SOURCE_DIR L"\\DosDevices\\C:\\FastMutexDemo\\Source"
#define DESTINATION_DIR L"\\??\\C:\\FastMutexDemo\\Destination"

typedef struct _DEVICE_EXTENSION {
    FAST_MUTEX FileMutex; /* guards FilesDone, and each file while it is made or moved */
    ULONG FilesDone;
    KEVENT StartEvent; /* both threads start together once it is set */
    PETHREAD CreationThread;
    PETHREAD MoveThread;
    /* Written by FileCreationThread only. */
    ULONG Created;
    ULONG CreateFailures;
    /* Written by FileMoveThread only. */
    ULONG Moved;
    ULONG NotFound;
    ULONG SharingViolations;
    ULONG MoveFailures;
} DEVICE_EXTENSION, *PDEVICE_EXTENSION;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD DriverUnload;
KSTART_ROUTINE FileCreationThread;
KSTART_ROUTINE FileMoveThread;

static const CHAR Line[] = "Hello, World!\r\n";

static NTSTATUS OpenByName(PHANDLE Handle, PCWSTR Name, ACCESS_MASK Access, ULONG Share,
                           ULONG Disposition, ULONG Options)
{
    UNICODE_STRING path;
    OBJECT_ATTRIBUTES attributes;
    IO_STATUS_BLOCK io;
    RtlInitUnicodeString(&path, Name);
    InitializeObjectAttributes(&attributes, &path, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL,
                               NULL);
    return ZwCreateFile(Handle, Access, &attributes, &io, NULL, FILE_ATTRIBUTE_NORMAL, Share,
                        Disposition, Options, NULL, 0);
}

static NTSTATUS MakeFolder(PCWSTR Name)
{
    HANDLE folder;
    NTSTATUS status = OpenByName(&folder, Name, FILE_LIST_DIRECTORY | SYNCHRONIZE,
                                 FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN_IF,
                                 FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    if (NT_SUCCESS(status))
        ZwClose(folder);
    return status;
}

static NTSTATUS CreateAndWriteFile(ULONG Index)
{
    WCHAR name[128];
    HANDLE file;
    IO_STATUS_BLOCK io;
    NTSTATUS status = RtlStringCchPrintfW(name, ARRAYSIZE(name), L"%ws\\file_%lu.txt", SOURCE_DIR,
                                          Index);
    if (!NT_SUCCESS(status))
        return status;
    status = OpenByName(&file, name, GENERIC_WRITE, FILE_SHARE_READ, FILE_OVERWRITE_IF,
                        FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    if (!NT_SUCCESS(status))
        return status;
    for (ULONG w = 0; w < WRITES_PER_FILE && NT_SUCCESS(status); w++)
        status = ZwWriteFile(file, NULL, NULL, NULL, &io, (PVOID)Line, sizeof(Line) - 1, NULL,
                             NULL);
    ZwClose(file);
    return status;
}

static NTSTATUS MoveFile(ULONG Index)
{
    WCHAR from[128], to[128];
    HANDLE file;
    IO_STATUS_BLOCK io;
    size_t toLength;
    NTSTATUS status =
        RtlStringCchPrintfW(from, ARRAYSIZE(from), L"%ws\\file_%lu.txt", SOURCE_DIR, Index);
    if (NT_SUCCESS(status))
        status = RtlStringCchPrintfW(to, ARRAYSIZE(to), L"%ws\\NewFile_%lu.txt", DESTINATION_DIR,
                                     Index);
    if (!NT_SUCCESS(status))
        return status;
    status = OpenByName(&file, from, DELETE | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                        FILE_OPEN, FILE_NON_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT);
    if (!NT_SUCCESS(status))
        return status;
    toLength = wcslen(to) * sizeof(WCHAR);
#if RENAME_ON_STACK
    /* The bug this example can be built with: FileName has room for one
     * WCHAR, and the whole new name is copied into it. */
    FILE_RENAME_INFORMATION onStack;
    PFILE_RENAME_INFORMATION rename = &onStack;
#else
    /* The structure ends in the name: allocate room for all of it. */
    ULONG size = FIELD_OFFSET(FILE_RENAME_INFORMATION, FileName) + (ULONG)toLength;
    PFILE_RENAME_INFORMATION rename = ExAllocatePool2(POOL_FLAG_PAGED, size, POOL_TAG);
    if (rename == NULL) {
        ZwClose(file);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
#endif
    rename->ReplaceIfExists = TRUE;
    rename->RootDirectory = NULL;
    rename->FileNameLength = (ULONG)toLength;
    RtlCopyMemory(rename->FileName, to, toLength);
#if RENAME_ON_STACK
    status = ZwSetInformationFile(file, &io, rename, sizeof onStack, FileRenameInformation);
#else
    status = ZwSetInformationFile(file, &io, rename, size, FileRenameInformation);
    ExFreePool(rename);
#endif
    ZwClose(file);
    return status;
}

/* ZwCreateFile, ZwWriteFile and ZwClose require PASSIVE_LEVEL, and
 * ExAcquireFastMutex raises IRQL to APC_LEVEL; so a Fast Mutex held around
 * file I/O is taken with the Unsafe calls, inside a critical region
 * (normal kernel APCs off, IRQL still PASSIVE_LEVEL). */
static VOID LockFiles(PDEVICE_EXTENSION Extension)
{
#if USE_FAST_MUTEX == 1
    KeEnterCriticalRegion();
    ExAcquireFastMutexUnsafe(&Extension->FileMutex);
#elif USE_FAST_MUTEX == 2
    ExAcquireFastMutex(&Extension->FileMutex);
#else
    UNREFERENCED_PARAMETER(Extension);
#endif
}

static VOID UnlockFiles(PDEVICE_EXTENSION Extension)
{
#if USE_FAST_MUTEX == 1
    ExReleaseFastMutexUnsafe(&Extension->FileMutex);
    KeLeaveCriticalRegion();
#elif USE_FAST_MUTEX == 2
    ExReleaseFastMutex(&Extension->FileMutex);
#else
    UNREFERENCED_PARAMETER(Extension);
#endif
}

static VOID WaitForStart(PDEVICE_EXTENSION Extension)
{
    KeWaitForSingleObject(&Extension->StartEvent, Executive, KernelMode, FALSE, NULL);
}

VOID FileCreationThread(PVOID StartContext)
{
    PDEVICE_EXTENSION extension = StartContext;
    WaitForStart(extension);
    for (ULONG i = 0; i < FILE_COUNT; i++) {
        LockFiles(extension);
        NTSTATUS status = CreateAndWriteFile(i);
        if (NT_SUCCESS(status)) {
            extension->Created++;
        } else {
            extension->CreateFailures++;
            KdPrint(("FileCreationThread: file_%lu.txt: 0x%08X\n", i, status));
        }
        if (HOLD_FIRST_FILE_MS > 0 && i == 0) {
            LARGE_INTEGER hold;
            hold.QuadPart = -10000LL * HOLD_FIRST_FILE_MS; /* relative, 100 ns units */
            DbgPrint("FileCreationThread: holding FileMutex for %d ms\n", HOLD_FIRST_FILE_MS);
            KeDelayExecutionThread(KernelMode, FALSE, &hold);
        }
        extension->FilesDone = i + 1;
        UnlockFiles(extension);
    }
    PsTerminateSystemThread(STATUS_SUCCESS);
}

VOID FileMoveThread(PVOID StartContext)
{
    PDEVICE_EXTENSION extension = StartContext;
#if USE_FAST_MUTEX
    LARGE_INTEGER poll;
    poll.QuadPart = -1000; /* 100 us, relative */
#endif
    WaitForStart(extension);
    for (ULONG i = 0; i < FILE_COUNT; i++) {
#if USE_FAST_MUTEX
        /* Hold the mutex while moving file i, and only once it is done. */
        for (;;) {
            LockFiles(extension);
            if (extension->FilesDone > i)
                break;
            UnlockFiles(extension);
            KeDelayExecutionThread(KernelMode, FALSE, &poll);
        }
#endif
        NTSTATUS status = MoveFile(i);
        if (NT_SUCCESS(status))
            extension->Moved++;
        else if (status == STATUS_OBJECT_NAME_NOT_FOUND)
            extension->NotFound++;
        else if (status == STATUS_SHARING_VIOLATION)
            extension->SharingViolations++;
        else
            extension->MoveFailures++;
#if USE_FAST_MUTEX
        UnlockFiles(extension);
#endif
    }
    PsTerminateSystemThread(STATUS_SUCCESS);
}

static NTSTATUS StartThread(PKSTART_ROUTINE Routine, PDEVICE_EXTENSION Extension, PETHREAD *Thread)
{
    HANDLE handle;
    NTSTATUS status =
        PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, NULL, NULL, NULL, Routine, Extension);
    if (!NT_SUCCESS(status))
        return status;
    status = ObReferenceObjectByHandle(handle, THREAD_ALL_ACCESS, *PsThreadType, KernelMode,
                                       (PVOID *)Thread, NULL);
    ZwClose(handle);
    return status;
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PDEVICE_OBJECT device;
    PDEVICE_EXTENSION extension;
    NTSTATUS status;

    DbgPrint("FileMove driver (%s): loaded from %wZ\n",
             USE_FAST_MUTEX == 1   ? "FAST_MUTEX, Unsafe in a critical region"
             : USE_FAST_MUTEX == 2 ? "FAST_MUTEX at APC_LEVEL"
                                   : "no lock",
             RegistryPath);
    DriverObject->DriverUnload = DriverUnload;
    status = MakeFolder(L"\\??\\C:\\FastMutexDemo");
    if (NT_SUCCESS(status))
        status = MakeFolder(SOURCE_DIR);
    if (NT_SUCCESS(status))
        status = MakeFolder(DESTINATION_DIR);
    if (!NT_SUCCESS(status))
        return status;
    status = IoCreateDevice(DriverObject, sizeof(DEVICE_EXTENSION), NULL, FILE_DEVICE_UNKNOWN, 0,
                            FALSE, &device);
    if (!NT_SUCCESS(status))
        return status;
    extension = device->DeviceExtension;
    ExInitializeFastMutex(&extension->FileMutex);
    KeInitializeEvent(&extension->StartEvent, NotificationEvent, FALSE);

    status = StartThread(FileCreationThread, extension, &extension->CreationThread);
    if (NT_SUCCESS(status))
        status = StartThread(FileMoveThread, extension, &extension->MoveThread);
    /* Let whatever started run, so that DriverUnload can wait for it. */
    KeSetEvent(&extension->StartEvent, IO_NO_INCREMENT, FALSE);
    return status;
}

static VOID WaitForThread(PETHREAD Thread)
{
    if (Thread != NULL) {
        KeWaitForSingleObject(Thread, Executive, KernelMode, FALSE, NULL);
        ObDereferenceObject(Thread);
    }
}

VOID DriverUnload(PDRIVER_OBJECT DriverObject)
{
    PDEVICE_OBJECT device = DriverObject->DeviceObject;
    PDEVICE_EXTENSION extension = device->DeviceExtension;
    WaitForThread(extension->CreationThread);
    WaitForThread(extension->MoveThread);
    DbgPrint("FileCreationThread: created %lu, failed %lu\n", extension->Created,
             extension->CreateFailures);
    DbgPrint("FileMoveThread: moved %lu, not found %lu, sharing violations %lu, failed %lu\n",
             extension->Moved, extension->NotFound, extension->SharingViolations,
             extension->MoveFailures);
    IoDeleteDevice(device);
}
