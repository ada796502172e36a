/* Small drivers for fmx driver's end-to-end tests, one per DRIVER_KIND:
 *
 *   NOENTRY  exports no DriverEntry
 *   ESCAPE   DriverEntry tries two paths out of the root (through "..", and
 *            through the symbolic link C:\out the test makes) and fails
 *            with the status of the second
 *   HANGS    starts NeverEndingThread, which waits for an event nobody sets
 *   HOLDER   HolderThread keeps a FAST_MUTEX for HOLD_MS while WaiterThread
 *            waits for it, for `fmx waiters` to see; HolderThread is static,
 *            so that only the symbol table names it
 *   DEADLOCK DeadlockThreadTakingFirst and DeadlockThreadTakingSecond take two FAST_MUTEXes in
 *            opposite orders and wait for each other for ever
 *   NOLIB    a DriverEntry that calls nothing, built without libfastmutex
 */
#include <ntddk.h>

#define HOLD_MS 4000

#if DRIVER_KIND_NOENTRY
NTSTATUS NotTheEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNREFERENCED_PARAMETER(DriverObject);
    UNREFERENCED_PARAMETER(RegistryPath);
    return STATUS_SUCCESS;
}
#elif DRIVER_KIND_NOLIB
NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNREFERENCED_PARAMETER(DriverObject);
    UNREFERENCED_PARAMETER(RegistryPath);
    return STATUS_SUCCESS;
}
#elif DRIVER_KIND_ESCAPE
static NTSTATUS TryCreate(PCWSTR Name)
{
    UNICODE_STRING path;
    OBJECT_ATTRIBUTES attributes;
    IO_STATUS_BLOCK io;
    HANDLE file;
    RtlInitUnicodeString(&path, Name);
    InitializeObjectAttributes(&attributes, &path, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL,
                               NULL);
    NTSTATUS status = ZwCreateFile(&file, GENERIC_WRITE, &attributes, &io, NULL, 0, 0,
                                   FILE_OVERWRITE_IF, FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
    if (NT_SUCCESS(status))
        ZwClose(file);
    DbgPrint("escape: %ws: 0x%08X\n", Name, status);
    return status;
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNREFERENCED_PARAMETER(DriverObject);
    UNREFERENCED_PARAMETER(RegistryPath);
    TryCreate(L"\\??\\C:\\..\\escaped.txt");
    return TryCreate(L"\\??\\C:\\out\\escaped.txt");
}
#elif DRIVER_KIND_HANGS
static KEVENT Never;

VOID NeverEndingThread(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    KeWaitForSingleObject(&Never, Executive, KernelMode, FALSE, NULL);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    HANDLE thread;
    UNREFERENCED_PARAMETER(DriverObject);
    UNREFERENCED_PARAMETER(RegistryPath);
    KeInitializeEvent(&Never, NotificationEvent, FALSE);
    NTSTATUS status =
        PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, NeverEndingThread, NULL);
    if (NT_SUCCESS(status))
        ZwClose(thread);
    return status;
}
#elif DRIVER_KIND_HOLDER
static FAST_MUTEX Lock;
static KEVENT Held;

static VOID HolderThread(PVOID Context)
{
    LARGE_INTEGER hold;
    UNREFERENCED_PARAMETER(Context);
    hold.QuadPart = -10000LL * HOLD_MS;
    ExAcquireFastMutex(&Lock);
    KeSetEvent(&Held, IO_NO_INCREMENT, FALSE);
    DbgPrint("HolderThread: holding the mutex\n");
    /* KeDelayExecutionThread is allowed at APC_LEVEL. */
    KeDelayExecutionThread(KernelMode, FALSE, &hold);
    ExReleaseFastMutex(&Lock);
}

VOID WaiterThread(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    KeWaitForSingleObject(&Held, Executive, KernelMode, FALSE, NULL);
    ExAcquireFastMutex(&Lock);
    ExReleaseFastMutex(&Lock);
    DbgPrint("WaiterThread: got the mutex\n");
}

VOID DriverUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    DbgPrint("holder: unloaded, contention %lu\n", Lock.Contention);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    HANDLE thread;
    UNREFERENCED_PARAMETER(RegistryPath);
    DriverObject->DriverUnload = DriverUnload;
    ExInitializeFastMutex(&Lock);
    KeInitializeEvent(&Held, NotificationEvent, FALSE);
    NTSTATUS status =
        PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, HolderThread, NULL);
    if (!NT_SUCCESS(status))
        return status;
    ZwClose(thread);
    status = PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, WaiterThread, NULL);
    if (NT_SUCCESS(status))
        ZwClose(thread);
    return status;
}
#elif DRIVER_KIND_DEADLOCK
static FAST_MUTEX First, Second;
static KEVENT HoldsFirst, HoldsSecond;

VOID DeadlockThreadTakingFirst(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    ExAcquireFastMutex(&First);
    KeSetEvent(&HoldsFirst, IO_NO_INCREMENT, FALSE);
    KeWaitForSingleObject(&HoldsSecond, Executive, KernelMode, FALSE, NULL);
    ExAcquireFastMutex(&Second);
    /* Never reached; it also keeps the acquire above from being a tail
     * call, so that the report names this function as its caller. */
    ExReleaseFastMutex(&Second);
    ExReleaseFastMutex(&First);
}

VOID DeadlockThreadTakingSecond(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    ExAcquireFastMutex(&Second);
    KeSetEvent(&HoldsSecond, IO_NO_INCREMENT, FALSE);
    KeWaitForSingleObject(&HoldsFirst, Executive, KernelMode, FALSE, NULL);
    ExAcquireFastMutex(&First);
    ExReleaseFastMutex(&First);
    ExReleaseFastMutex(&Second);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    HANDLE thread;
    UNREFERENCED_PARAMETER(DriverObject);
    UNREFERENCED_PARAMETER(RegistryPath);
    ExInitializeFastMutex(&First);
    ExInitializeFastMutex(&Second);
    KeInitializeEvent(&HoldsFirst, NotificationEvent, FALSE);
    KeInitializeEvent(&HoldsSecond, NotificationEvent, FALSE);
    NTSTATUS status =
        PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, DeadlockThreadTakingFirst, NULL);
    if (!NT_SUCCESS(status))
        return status;
    ZwClose(thread);
    status = PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, DeadlockThreadTakingSecond, NULL);
    if (NT_SUCCESS(status))
        ZwClose(thread);
    return status;
}
#else
#error "build with -DDRIVER_KIND_<NOENTRY|ESCAPE|HANGS|HOLDER|DEADLOCK|NOLIB>=1"
#endif
