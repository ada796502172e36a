/* The handle table: what a HANDLE from ZwCreateFile or PsCreateSystemThread
 * stands for.  Handles are multiples of 4, as Windows hands them out, so
 * that a pointer or a small integer passed by mistake is not taken for
 * one. */
#include "wdk_internal.h"

#include <pthread.h>

#define MAX_HANDLES 4096u

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fmx_wdk_object *table[MAX_HANDLES];

static HANDLE handle_of(size_t slot)
{
    return (HANDLE)(uintptr_t)((slot + 1) * 4);
}

/* The slot of `handle`, or MAX_HANDLES when it cannot be one. */
static size_t slot_of(HANDLE handle)
{
    uintptr_t h = (uintptr_t)handle;
    if (h == 0 || h % 4 != 0 || h / 4 > MAX_HANDLES)
        return MAX_HANDLES;
    return h / 4 - 1;
}

HANDLE fmx_wdk_handle_open(struct fmx_wdk_object *object)
{
    HANDLE handle = NULL;
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < MAX_HANDLES; i++)
        if (table[i] == NULL) {
            table[i] = object;
            handle = handle_of(i);
            break;
        }
    pthread_mutex_unlock(&table_lock);
    return handle;
}

struct fmx_wdk_object *fmx_wdk_handle_get(HANDLE handle, enum fmx_wdk_object_type type,
                                          NTSTATUS *status)
{
    size_t slot = slot_of(handle);
    struct fmx_wdk_object *object = NULL;
    *status = STATUS_INVALID_HANDLE;
    if (slot < MAX_HANDLES) {
        pthread_mutex_lock(&table_lock);
        object = table[slot];
        if (object != NULL && object->type != type) {
            *status = STATUS_OBJECT_TYPE_MISMATCH;
            object = NULL;
        }
        /* Taken under the table lock, so that a close cannot free the
         * object between the lookup and the reference. */
        if (object != NULL) {
            __atomic_add_fetch(&object->refs, 1, __ATOMIC_RELAXED);
            *status = STATUS_SUCCESS;
        }
        pthread_mutex_unlock(&table_lock);
    }
    return object;
}

struct fmx_wdk_object *fmx_wdk_handle_close(HANDLE handle)
{
    size_t slot = slot_of(handle);
    struct fmx_wdk_object *object = NULL;
    if (slot >= MAX_HANDLES)
        return NULL;
    pthread_mutex_lock(&table_lock);
    object = table[slot];
    table[slot] = NULL;
    pthread_mutex_unlock(&table_lock);
    return object;
}

void fmx_wdk_object_put(struct fmx_wdk_object *object)
{
    /* Acquire and release: whatever the last users wrote into the object
     * is done before it is freed. */
    if (__atomic_sub_fetch(&object->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    if (object->type == FMX_WDK_FILE)
        fmx_wdk_file_free(object);
    else
        fmx_wdk_thread_free(object);
}

NTSTATUS ZwClose(HANDLE Handle)
{
    REQUIRE_IRQL("ZwClose", PASSIVE_LEVEL);
    struct fmx_wdk_object *object = fmx_wdk_handle_close(Handle);
    if (object == NULL)
        return STATUS_INVALID_HANDLE;
    if (object->type == FMX_WDK_FILE)
        fmx_wdk_file_cleanup(object);
    fmx_wdk_object_put(object);
    return STATUS_SUCCESS;
}
