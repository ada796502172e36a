// Driver source in C++: the WDK subset's headers, built by cxx_consumer.sh
// with g++ and clang++ at each standard (as a shared object's code would
// be; it is only compiled, fmx driver runs the C example).
#include <ntifs.h>
#include <ntstrsafe.h>

static_assert(sizeof(WCHAR) == 2, "WCHAR is UTF-16");
static_assert(sizeof(ULONG) == 4 && sizeof(ULONG_PTR) == sizeof(void *), "LLP64");

static FAST_MUTEX Lock;

extern "C" VOID Worker(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    WCHAR name[64];
    ExAcquireFastMutex(&Lock);
    RtlStringCchPrintfW(name, ARRAYSIZE(name), L"\\??\\C:\\Temp\\file_%lu.txt", 1ul);
    ExReleaseFastMutex(&Lock);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

extern "C" NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNREFERENCED_PARAMETER(RegistryPath);
    HANDLE thread;
    ExInitializeFastMutex(&Lock);
    DriverObject->DriverUnload = nullptr;
    NTSTATUS status = PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, nullptr, nullptr, nullptr,
                                           Worker, nullptr);
    if (NT_SUCCESS(status))
        ZwClose(thread);
    return status;
}
