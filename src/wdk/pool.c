/* Pool memory is the C library's heap, so that AddressSanitizer and
 * valgrind watch a driver's allocations as they watch any program's. */
#include "wdk_internal.h"

#include <stdlib.h>

#include "../internal.h"

#define POOL_TYPE_FLAGS (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED)

PVOID ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag)
{
    REQUIRE_IRQL("ExAllocatePool2", DISPATCH_LEVEL);
    (void)Tag;
    POOL_FLAGS pool = Flags & POOL_TYPE_FLAGS;
    /* Exactly one pool type, as Windows requires. */
    if (pool == 0 || (pool & (pool - 1)) != 0)
        return NULL;
    /* Never a zero-byte block: each call gives memory of its own. */
    size_t size = NumberOfBytes != 0 ? NumberOfBytes : 1;
    PVOID p = (Flags & POOL_FLAG_UNINITIALIZED) ? malloc(size) : calloc(1, size);
    if (p == NULL && (Flags & POOL_FLAG_RAISE_ON_FAILURE))
        fmx_misuse("ExAllocatePool2 failed", NULL, __builtin_return_address(0),
                   "%zu bytes with POOL_FLAG_RAISE_ON_FAILURE: the exception Windows raises "
                   "ends the process here",
                   (size_t)NumberOfBytes);
    return p;
}

PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    REQUIRE_IRQL("ExAllocatePoolWithTag", DISPATCH_LEVEL);
    (void)PoolType;
    (void)Tag;
    return malloc(NumberOfBytes != 0 ? NumberOfBytes : 1);
}

VOID ExFreePool(PVOID P)
{
    REQUIRE_IRQL("ExFreePool", DISPATCH_LEVEL);
    free(P);
}

VOID ExFreePoolWithTag(PVOID P, ULONG Tag)
{
    REQUIRE_IRQL("ExFreePoolWithTag", DISPATCH_LEVEL);
    (void)Tag;
    free(P);
}
