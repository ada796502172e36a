/* Device objects and symbolic links: names in the object namespace.  With
 * no I/O manager behind them they receive no requests; what a driver does
 * with them (extensions, lists, names taken and given back) behaves as on
 * Windows. */
#include "wdk_internal.h"

#include <pthread.h>
#include <stdlib.h>

/* A name taken in the object namespace: a device's, or a link's. */
struct name_entry {
    struct name_entry *next;
    const void *owner; /* the device; NULL for a symbolic link */
    size_t units;
    WCHAR name[];
};

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct name_entry *names;

/* Object names compare without regard to ASCII case, as the object
 * manager compares them under OBJ_CASE_INSENSITIVE. */
static bool same_name(const struct name_entry *e, const UNICODE_STRING *name)
{
    UNICODE_STRING held = {(USHORT)(e->units * sizeof(WCHAR)), (USHORT)(e->units * sizeof(WCHAR)),
                           (PWSTR)e->name};
    return RtlEqualUnicodeString(&held, name, TRUE);
}

/* Takes `name` for `owner`: STATUS_OBJECT_NAME_COLLISION when it is taken. */
static NTSTATUS take_name(const UNICODE_STRING *name, const void *owner)
{
    size_t units = name->Length / sizeof(WCHAR);
    NTSTATUS status = STATUS_SUCCESS;
    if (units == 0 || name->Buffer[0] != '\\')
        return STATUS_OBJECT_NAME_INVALID;
    struct name_entry *e = malloc(sizeof *e + units * sizeof(WCHAR));
    if (e == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    e->owner = owner;
    e->units = units;
    memcpy(e->name, name->Buffer, units * sizeof(WCHAR));
    pthread_mutex_lock(&names_lock);
    for (struct name_entry *i = names; i != NULL; i = i->next)
        if (same_name(i, name))
            status = STATUS_OBJECT_NAME_COLLISION;
    if (NT_SUCCESS(status)) {
        e->next = names;
        names = e;
    }
    pthread_mutex_unlock(&names_lock);
    if (!NT_SUCCESS(status))
        free(e);
    return status;
}

/* Gives back the name held by `owner` (a device) or, for owner NULL, the
 * link called `name`.  Returns whether there was one. */
static bool drop_name(const UNICODE_STRING *name, const void *owner)
{
    struct name_entry *found = NULL;
    pthread_mutex_lock(&names_lock);
    for (struct name_entry **p = &names; *p != NULL; p = &(*p)->next)
        if (owner != NULL ? (*p)->owner == owner : ((*p)->owner == NULL && same_name(*p, name))) {
            found = *p;
            *p = found->next;
            break;
        }
    pthread_mutex_unlock(&names_lock);
    free(found);
    return found != NULL;
}

NTSTATUS IoCreateDevice(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize,
                        PUNICODE_STRING DeviceName, DEVICE_TYPE DeviceType,
                        ULONG DeviceCharacteristics, BOOLEAN Exclusive, PDEVICE_OBJECT *DeviceObject)
{
    REQUIRE_IRQL("IoCreateDevice", PASSIVE_LEVEL);
    *DeviceObject = NULL;
    PDEVICE_OBJECT device = calloc(1, sizeof *device + DeviceExtensionSize);
    if (device == NULL)
        return STATUS_INSUFFICIENT_RESOURCES;
    if (DeviceName != NULL && DeviceName->Length != 0) {
        NTSTATUS status = take_name(DeviceName, device);
        if (!NT_SUCCESS(status)) {
            free(device);
            return status;
        }
    }
    device->Type = IO_TYPE_DEVICE;
    device->Size = (USHORT)(sizeof *device + DeviceExtensionSize);
    device->ReferenceCount = 0;
    device->DriverObject = DriverObject;
    device->Flags = DO_DEVICE_INITIALIZING | (Exclusive ? DO_EXCLUSIVE : 0);
    device->Characteristics = DeviceCharacteristics;
    device->DeviceType = DeviceType;
    device->StackSize = 1;
    /* The extension follows the object in the same block, as on Windows. */
    device->DeviceExtension = DeviceExtensionSize != 0 ? (PVOID)(device + 1) : NULL;
    device->NextDevice = DriverObject->DeviceObject;
    DriverObject->DeviceObject = device;
    *DeviceObject = device;
    return STATUS_SUCCESS;
}

VOID IoDeleteDevice(PDEVICE_OBJECT DeviceObject)
{
    REQUIRE_IRQL("IoDeleteDevice", PASSIVE_LEVEL);
    PDRIVER_OBJECT driver = DeviceObject->DriverObject;
    for (PDEVICE_OBJECT *p = &driver->DeviceObject; *p != NULL; p = &(*p)->NextDevice)
        if (*p == DeviceObject) {
            *p = DeviceObject->NextDevice;
            break;
        }
    drop_name(NULL, DeviceObject);
    free(DeviceObject);
}

NTSTATUS IoCreateSymbolicLink(PUNICODE_STRING SymbolicLinkName, PUNICODE_STRING DeviceName)
{
    REQUIRE_IRQL("IoCreateSymbolicLink", PASSIVE_LEVEL);
    if (DeviceName == NULL || DeviceName->Length == 0)
        return STATUS_INVALID_PARAMETER;
    return take_name(SymbolicLinkName, NULL);
}

NTSTATUS IoDeleteSymbolicLink(PUNICODE_STRING SymbolicLinkName)
{
    REQUIRE_IRQL("IoDeleteSymbolicLink", PASSIVE_LEVEL);
    return drop_name(SymbolicLinkName, NULL) ? STATUS_SUCCESS : STATUS_OBJECT_NAME_NOT_FOUND;
}
