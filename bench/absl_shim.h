/* The C face of absl::Mutex (absl_shim.cc): fmx-bench is C, absl is C++. */
#ifndef FMX_BENCH_ABSL_SHIM_H
#define FMX_BENCH_ABSL_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

/* Room for an absl::Mutex (one word in this version; the shim checks that it
 * fits): the C side keeps it in this opaque block, aligned like a pointer. */
typedef union fmx_bench_absl_mutex {
    unsigned char bytes[16];
    void *align_as_pointer;
} fmx_bench_absl_mutex;

void fmx_bench_absl_init(fmx_bench_absl_mutex *m);
void fmx_bench_absl_destroy(fmx_bench_absl_mutex *m);
void fmx_bench_absl_lock(fmx_bench_absl_mutex *m);
void fmx_bench_absl_unlock(fmx_bench_absl_mutex *m);

#ifdef __cplusplus
}
#endif

#endif /* FMX_BENCH_ABSL_SHIM_H */
