/* fmx-bench adapter: Rust's parking_lot::RawMutex, built from Debian's
 * packaged crates into a static library (parking_lot/lib.rs): a library call
 * across the language boundary.  Rust reports the mutex's size at run time;
 * it is one byte, and must fit the slot the C side gives it. */
#include <stdalign.h>
#include <stddef.h>

#include "bench.h"

size_t fmx_bench_parking_lot_size(void);
size_t fmx_bench_parking_lot_align(void);
void fmx_bench_parking_lot_init(void *m);
void fmx_bench_parking_lot_lock(void *m);
void fmx_bench_parking_lot_unlock(void *m);

/* The C side's view: opaque bytes, as many as a slot holds. */
typedef struct parking_lot_block {
    unsigned char bytes[sizeof(struct bench_lock_slot)];
} adapter_lock_t;

static bool parking_lot_fits(void)
{
    return fmx_bench_parking_lot_size() <= sizeof(struct bench_lock_slot) &&
           fmx_bench_parking_lot_align() <= alignof(struct bench_lock_slot);
}

static inline void adapter_init(adapter_lock_t *m)
{
    fmx_bench_parking_lot_init(m);
}

static inline void adapter_destroy(adapter_lock_t *m)
{
    (void)m;
}

static inline void adapter_lock(adapter_lock_t *m)
{
    fmx_bench_parking_lot_lock(m);
}

static inline void adapter_unlock(adapter_lock_t *m)
{
    fmx_bench_parking_lot_unlock(m);
}

#define ADAPTER_NAME "parking_lot"
#define ADAPTER_ID parking_lot
#define ADAPTER_FAST_PATH "library call"
#define ADAPTER_AVAILABLE parking_lot_fits
#include "worker.h"
