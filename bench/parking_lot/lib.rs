//! The parking_lot adapter of fmx-bench: parking_lot's raw mutex (one byte,
//! lock_api::RawMutex) behind four C functions.  The C side owns the memory;
//! it asks for the size and alignment once and keeps the mutex in its own
//! cache-line-padded slot, as it does for every other lock.

use lock_api::RawMutex as _;
use parking_lot::RawMutex;

/// Bytes the C side must reserve for one mutex.
#[no_mangle]
pub extern "C" fn fmx_bench_parking_lot_size() -> usize {
    std::mem::size_of::<RawMutex>()
}

/// Alignment the C side must give that memory.
#[no_mangle]
pub extern "C" fn fmx_bench_parking_lot_align() -> usize {
    std::mem::align_of::<RawMutex>()
}

/// Makes the memory at `m` a free mutex.
///
/// # Safety
/// `m` must point to writable memory of the size and alignment above that no
/// other thread uses meanwhile.
#[no_mangle]
pub unsafe extern "C" fn fmx_bench_parking_lot_init(m: *mut RawMutex) {
    m.write(RawMutex::INIT);
}

/// Blocks until the calling thread holds `*m`.
///
/// # Safety
/// `m` must have been initialized by `fmx_bench_parking_lot_init`.
#[no_mangle]
pub unsafe extern "C" fn fmx_bench_parking_lot_lock(m: *const RawMutex) {
    (*m).lock();
}

/// Lets go of `*m`.
///
/// # Safety
/// The calling thread must hold `*m`.
#[no_mangle]
pub unsafe extern "C" fn fmx_bench_parking_lot_unlock(m: *const RawMutex) {
    (*m).unlock();
}
