/* The waiter registry (layout and rules in registry.h): made on first need,
 * one per process, remade in a forked child; and the thread id cache. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

_Thread_local uint32_t fast_mutex_self_tid_;

/* The calling thread's long name, "" when none was given
 * (fast_mutex_set_thread_name()). */
static _Thread_local char long_name[FMX_THREAD_NAME_LEN];

/* The calling thread's record, claimed by fmx_self_record(). */
static _Thread_local struct fmx_record *self_record;

/* Record links by thread id modulo its size, for fmx_record_of(): a
 * spinner looks up the owner of a mutex there, and cannot afford to scan
 * the records.  Two live threads with equal ids modulo the size share an
 * entry; the later one wins and the other is not found, which only costs
 * the spinner its hint. */
#define TID_TABLE_SIZE 4096u
static _Atomic uint32_t link_of_tid[TID_TABLE_SIZE];

static struct fmx_registry *_Atomic registry;
/* The registry's records, published with it, for the inline accessors
 * fmx_record_at() and fmx_record_link() in internal.h. */
struct fmx_record *_Atomic fmx_records_;
/* The memfd behind the registry, -1 with none, and which file it is: the
 * application may close the number and reuse it for a file of its own, so
 * the number alone does not prove that the file is still ours. */
static int registry_fd = -1;
static struct fmx_memfd_id registry_file;
/* How many slots have been handed out: threads_used in the header is a copy
 * for the tools.  The mapping is shared and may be written by anything that
 * opens the memfd, so the library never reads back what it wrote there. */
static _Atomic uint32_t slots_used;
/* Serializes making the registry and changing the names table; never held
 * on a lock's hot path. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
/* Gives a thread's record back when the thread exits. */
static pthread_key_t record_key;
/* How many names are set, so that destroy and reports skip the table when
 * none are. */
static _Atomic uint32_t names_set;

/* The thread id, cached here for the library itself: the public cache
 * stays 0 while fmx_watching(), to keep the inline functions on the slow
 * path. */
static _Thread_local uint32_t own_tid;

uint32_t fast_mutex_self_tid_init_(void)
{
    if (own_tid == 0)
        own_tid = (uint32_t)gettid();
    if (!fmx_watching())
        fast_mutex_self_tid_ = own_tid;
    return own_tid;
}

/* Where records and names lie: from the layout compiled in, never from the
 * offsets written in the header (see slots_used). */
#define RECORDS_OFFSET sizeof(struct fmx_registry)
#define NAMES_OFFSET (RECORDS_OFFSET + FMX_REGISTRY_THREADS * sizeof(struct fmx_record))

static struct fmx_record *records(struct fmx_registry *reg)
{
    return (struct fmx_record *)((char *)reg + RECORDS_OFFSET);
}

static struct fmx_name *names(struct fmx_registry *reg)
{
    return (struct fmx_name *)((char *)reg + NAMES_OFFSET);
}

/* Whether descriptor fd is still the registry memfd this process made. */
static bool is_registry_memfd(int fd)
{
    return fmx_memfd_is(fd, &registry_file);
}

/* CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: what turns a core file's
 * modification time into the monotonic clock that waits are stamped in.
 * Read between two monotonic readings, so the error is half their gap. */
static int64_t realtime_offset_ns(void)
{
    struct timespec before, real, after;
    clock_gettime(CLOCK_MONOTONIC, &before);
    clock_gettime(CLOCK_REALTIME, &real);
    clock_gettime(CLOCK_MONOTONIC, &after);
    uint64_t mono = fmx_timespec_ns(&before) + (fmx_timespec_ns(&after) - fmx_timespec_ns(&before)) / 2;
    return (int64_t)(fmx_timespec_ns(&real) - mono);
}

/* Maps a fresh registry: a memfd that `fmx` can open through /proc/PID/fd,
 * or, if the kernel refuses one, private memory so that waiting still works
 * (unseen by the tools). */
static struct fmx_registry *map_registry(void)
{
    int fd;
    void *mem = fmx_memfd_map(FMX_REGISTRY_NAME, FMX_REGISTRY_SIZE, &registry_file, &fd);
    fmx_watch_registry(mem, FMX_REGISTRY_SIZE);
    struct fmx_registry *reg = mem;
    reg->magic = FMX_REGISTRY_MAGIC;
    reg->version = FMX_REGISTRY_VERSION;
    reg->header_size = sizeof(struct fmx_registry);
    reg->record_size = sizeof(struct fmx_record);
    reg->name_size = sizeof(struct fmx_name);
    reg->thread_capacity = FMX_REGISTRY_THREADS;
    reg->name_capacity = FMX_REGISTRY_NAMES;
    reg->pid = getpid();
    reg->records_offset = RECORDS_OFFSET;
    reg->names_offset = NAMES_OFFSET;
    reg->realtime_offset_ns = realtime_offset_ns();
    atomic_store_explicit(&slots_used, 0, memory_order_relaxed);
    registry_fd = fd;
    return reg;
}

static struct fmx_registry *get_registry(void);

void fmx_registry_stamp(void)
{
    struct fmx_registry *reg = atomic_load_explicit(&registry, memory_order_acquire);
    if (reg == NULL)
        return; /* nothing waited or was named: a core has nothing to time */
    /* Two threads may abort at once: atomic stores keep that race benign. */
    __atomic_store_n(&reg->realtime_offset_ns, realtime_offset_ns(), __ATOMIC_RELAXED);
    /* Relaxed: the process is about to stop; a reader sees this in the
     * core, written before the dump. */
    atomic_store_explicit(&reg->stamp_mono_ns, fmx_now_ns(), memory_order_relaxed);
}

static void give_back_record(void *rec_ptr)
{
    struct fmx_record *rec = rec_ptr;
    static const char no_name[FMX_THREAD_NAME_LEN];
    fmx_record_write_begin(rec);
    FMX_RECORD_STORE(rec->tid, 0);
    fmx_record_set_name(rec, no_name);
    FMX_RECORD_STORE(rec->acquired_mutex, 0);
    FMX_RECORD_STORE(rec->acquired_site, 0);
    FMX_RECORD_STORE(rec->held_count, 0);
    atomic_store_explicit(&rec->cpu, 0, memory_order_relaxed);
    fmx_record_write_end(rec);
    /* A destructor that runs after this one and waits again claims a
     * fresh slot rather than writing to the one given back. */
    self_record = NULL;
    /* Release: the slot's last contents are written before another thread
     * can claim it (pairs with the acquire CAS in claim_slot()). */
    atomic_store_explicit(&rec->state, FMX_RECORD_FREE, memory_order_release);
}

/* The thread ids the calling thread had in its ancestors, newest last: the
 * forking thread of each fork that led to this process.  Mutexes they held
 * at the fork are this thread's holds (fmx_inherited_owner()). */
#define FORK_ANCESTORS 16
static uint32_t fork_ancestor_tids[FORK_ANCESTORS];
static unsigned fork_ancestors;
static uint32_t fork_inheritor_tid; /* the thread that came out of fork() */

/* Notes, in the child, that the forking thread was `parent_tid`. */
static void inherit_holds(uint32_t parent_tid)
{
    if (parent_tid == 0)
        return; /* the thread never touched a mutex: it holds none */
    if (fork_ancestors == FORK_ANCESTORS) {
        /* Forgets the oldest: a hold carried through 16 forks unreleased. */
        memmove(fork_ancestor_tids, fork_ancestor_tids + 1,
                (FORK_ANCESTORS - 1) * sizeof fork_ancestor_tids[0]);
        fork_ancestors--;
    }
    fork_ancestor_tids[fork_ancestors++] = parent_tid;
    fork_inheritor_tid = (uint32_t)gettid();
}

bool fmx_inherited_owner(uint32_t owner)
{
    if (fork_ancestors == 0 || owner == 0 || fast_mutex_self_() != fork_inheritor_tid)
        return false;
    for (unsigned i = 0; i < fork_ancestors; i++)
        if (fork_ancestor_tids[i] == owner)
            return true;
    return false;
}

/* In a forked child only the forking thread lives on, and it has a new
 * thread id.  The registry mapping is shared with the parent, so the child
 * must not write to it: forget it and make its own on first need. */
static void after_fork_in_child(void)
{
    /* own_tid, not the inline paths' cache, which stays 0 while a
     * diagnostic watches every call. */
    inherit_holds(own_tid);
    fast_mutex_self_tid_ = 0;
    own_tid = 0;
    self_record = NULL;
    memset(link_of_tid, 0, sizeof link_of_tid);
    /* The record belonged to the parent's registry: nothing to give back. */
    pthread_setspecific(record_key, NULL);
    pthread_mutex_init(&registry_lock, NULL);
    struct fmx_registry *old = atomic_load_explicit(&registry, memory_order_relaxed);
    int old_fd = registry_fd;
    atomic_store_explicit(&registry, NULL, memory_order_relaxed);
    atomic_store_explicit(&fmx_records_, NULL, memory_order_relaxed);
    registry_fd = -1;
    if (old == NULL)
        return;
    /* Names given before the fork still name the child's copies of those
     * mutexes: carry them over into the child's own registry. */
    if (atomic_load_explicit(&names_set, memory_order_relaxed) != 0) {
        struct fmx_registry *fresh = get_registry();
        memcpy(names(fresh), names(old), FMX_REGISTRY_NAMES * sizeof(struct fmx_name));
    }
    munmap(old, FMX_REGISTRY_SIZE);
    /* Only if the number is still our memfd: the application may have
     * closed it and opened a file of its own under the same number. */
    if (is_registry_memfd(old_fd))
        close(old_fd);
}

__attribute__((constructor)) static void registry_setup(void)
{
    if (pthread_key_create(&record_key, give_back_record) != 0)
        abort();
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

static struct fmx_registry *get_registry(void)
{
    /* Acquire: the header and offsets are written before the pointer is
     * published (pairs with the release store below). */
    struct fmx_registry *reg = atomic_load_explicit(&registry, memory_order_acquire);
    if (reg != NULL)
        return reg;
    pthread_mutex_lock(&registry_lock);
    reg = atomic_load_explicit(&registry, memory_order_relaxed);
    if (reg == NULL) {
        reg = map_registry();
        /* Release, both: pair with the acquire loads of the pointers. */
        atomic_store_explicit(&fmx_records_, records(reg), memory_order_release);
        atomic_store_explicit(&registry, reg, memory_order_release);
    }
    pthread_mutex_unlock(&registry_lock);
    return reg;
}

/* Takes slot `rec` if it is free.  Acquire: the slot's last contents are
 * seen (pairs with the release store in give_back_record()). */
static bool claim_slot(struct fmx_record *rec)
{
    uint32_t expected = FMX_RECORD_FREE;
    return atomic_load_explicit(&rec->state, memory_order_relaxed) == FMX_RECORD_FREE &&
           atomic_compare_exchange_strong_explicit(&rec->state, &expected, FMX_RECORD_IDLE,
                                                   memory_order_acquire, memory_order_relaxed);
}

/* Raises the tools' copy of slots_used to `used`: two threads that hand
 * out slots at once may get here in either order. */
static void publish_slots_used(struct fmx_registry *reg, uint32_t used)
{
    uint32_t shown = atomic_load_explicit(&reg->threads_used, memory_order_relaxed);
    while (shown < used &&
           !atomic_compare_exchange_weak_explicit(&reg->threads_used, &shown, used,
                                                  memory_order_release, memory_order_relaxed))
        ;
}

/* A free slot: that of a thread that has exited, else a new one; NULL when
 * all FMX_REGISTRY_THREADS belong to live threads. */
static struct fmx_record *claim_record(struct fmx_registry *reg)
{
    struct fmx_record *recs = records(reg);
    for (;;) {
        uint32_t used = atomic_load_explicit(&slots_used, memory_order_acquire);
        for (uint32_t i = 0; i < used; i++)
            if (claim_slot(&recs[i]))
                return &recs[i];
        if (used >= FMX_REGISTRY_THREADS)
            return NULL;
        /* Hand out a new slot, claimed with the same CAS as a reused one:
         * a scan that already counts it may get there first, and then we
         * look again. */
        if (!atomic_compare_exchange_strong_explicit(&slots_used, &used, used + 1,
                                                     memory_order_acq_rel, memory_order_relaxed))
            continue;
        publish_slots_used(reg, used + 1);
        if (claim_slot(&recs[used]))
            return &recs[used];
    }
}

struct fmx_record *fmx_self_record(void)
{
    struct fmx_record *rec = self_record;
    if (rec != NULL)
        return rec;
    rec = claim_record(get_registry());
    if (rec == NULL)
        return NULL;
    char name[FMX_THREAD_NAME_LEN];
    fmx_current_thread_name(name);
    fmx_record_write_begin(rec);
    fmx_record_set_name(rec, name);
    FMX_RECORD_STORE(rec->tid, (int32_t)fast_mutex_self_());
    rec->next = rec->prev = 0;
    atomic_store_explicit(&rec->wake, FMX_WAKE_NONE, memory_order_relaxed);
    /* The CPU it runs on as it begins its first wait. */
    fmx_note_cpu(rec, sched_getcpu());
    fmx_record_write_end(rec);
    atomic_store_explicit(&link_of_tid[(uint32_t)rec->tid % TID_TABLE_SIZE], fmx_record_link(rec),
                          memory_order_relaxed);
    pthread_setspecific(record_key, rec);
    self_record = rec;
    return rec;
}

void fmx_note_cpu(struct fmx_record *rec, int cpu)
{
    uint32_t noted = cpu >= 0 ? (uint32_t)cpu + 1 : 0;
    /* Written only when it changes: spinners read this line. */
    if (atomic_load_explicit(&rec->cpu, memory_order_relaxed) != noted)
        atomic_store_explicit(&rec->cpu, noted, memory_order_relaxed);
}

struct fmx_record *fmx_own_record(void)
{
    return self_record;
}

struct fmx_record *fmx_record_of(int32_t tid)
{
    struct fmx_record *rec = fmx_record_at(
        atomic_load_explicit(&link_of_tid[(uint32_t)tid % TID_TABLE_SIZE], memory_order_relaxed));
    /* The slot may have been given back and claimed by another thread
     * since: then its tid says so.  Read while its owner may write it: a
     * stale answer is a wrong hint, never a wrong lock state. */
    return rec != NULL && FMX_RECORD_LOAD(rec->tid) == tid ? rec : NULL;
}

struct fmx_record *fmx_waiting_record(int32_t tid)
{
    struct fmx_registry *reg = atomic_load_explicit(&registry, memory_order_acquire);
    if (reg == NULL)
        return NULL;
    struct fmx_record *recs = records(reg);
    uint32_t used = atomic_load_explicit(&slots_used, memory_order_acquire);
    for (uint32_t i = 0; i < used; i++)
        if (FMX_RECORD_LOAD(recs[i].tid) == tid &&
            atomic_load_explicit(&recs[i].state, memory_order_acquire) == FMX_RECORD_WAITING)
            return &recs[i];
    return NULL;
}

void fast_mutex_set_thread_name(const char *name)
{
    /* Cut to the field, always terminated. */
    snprintf(long_name, sizeof long_name, "%s", name != NULL ? name : "");
    /* A thread that already has a record shows the new name at once. */
    struct fmx_record *rec = self_record;
    if (rec != NULL) {
        char shown[FMX_THREAD_NAME_LEN];
        fmx_current_thread_name(shown);
        fmx_record_write_begin(rec);
        fmx_record_set_name(rec, shown);
        fmx_record_write_end(rec);
    }
}

void fmx_current_thread_name(char name[FMX_THREAD_NAME_LEN])
{
    char comm[16] = "";
    prctl(PR_GET_NAME, comm);
    comm[sizeof comm - 1] = '\0';
    memset(name, 0, FMX_THREAD_NAME_LEN);
    /* The kernel keeps the first 15 bytes of a name: while the comm is
     * still those of the long name, the thread has not been renamed since. */
    const char *chosen = long_name[0] != '\0' && strncmp(comm, long_name, sizeof comm - 1) == 0
                             ? long_name
                             : comm;
    memcpy(name, chosen, strnlen(chosen, FMX_THREAD_NAME_LEN - 1));
}

void fmx_record_set_name(struct fmx_record *rec, const char name[FMX_THREAD_NAME_LEN])
{
    for (size_t i = 0; i < FMX_THREAD_NAME_LEN; i++)
        FMX_RECORD_STORE(rec->thread_name[i], name[i]);
}

void fmx_record_get_name(const struct fmx_record *rec, char name[FMX_THREAD_NAME_LEN])
{
    for (size_t i = 0; i < FMX_THREAD_NAME_LEN; i++)
        name[i] = FMX_RECORD_LOAD(rec->thread_name[i]);
}

void fmx_record_write_begin(struct fmx_record *rec)
{
    /* Odd seq: the fields are changing.  The release fence keeps the field
     * stores below from moving above the increment, as seen by a reader
     * that checks seq before and after (pairs with its acquire loads). */
    atomic_fetch_add_explicit(&rec->seq, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

void fmx_record_write_end(struct fmx_record *rec)
{
    /* Even seq again; release so the field stores come first. */
    atomic_fetch_add_explicit(&rec->seq, 1, memory_order_release);
}

static struct fmx_name *find_name(struct fmx_registry *reg, const void *m)
{
    struct fmx_name *table = names(reg);
    for (uint32_t i = 0; i < FMX_REGISTRY_NAMES; i++)
        if (atomic_load_explicit(&table[i].mutex, memory_order_acquire) == (uint64_t)(uintptr_t)m)
            return &table[i];
    return NULL;
}

int fast_mutex_set_name(fast_mutex_t *m, const char *name)
{
    struct fmx_registry *reg = get_registry();
    int result = 0;
    pthread_mutex_lock(&registry_lock);
    struct fmx_name *entry = find_name(reg, m);
    if (name == NULL) {
        if (entry != NULL) {
            atomic_store_explicit(&entry->mutex, 0, memory_order_relaxed);
            atomic_fetch_sub_explicit(&names_set, 1, memory_order_relaxed);
        }
        goto out;
    }
    if (entry == NULL) {
        entry = find_name(reg, NULL);
        if (entry == NULL) {
            result = ENOSPC;
            goto out;
        }
        atomic_fetch_add_explicit(&names_set, 1, memory_order_relaxed);
    }
    /* Unpublish while the text changes, so no reader sees half a name. */
    atomic_store_explicit(&entry->mutex, 0, memory_order_relaxed);
    memset(entry->name, 0, sizeof entry->name);
    strncpy(entry->name, name, sizeof entry->name - 1);
    /* Release: the name is written before the address that finds it. */
    atomic_store_explicit(&entry->mutex, (uint64_t)(uintptr_t)m, memory_order_release);
out:
    pthread_mutex_unlock(&registry_lock);
    return result;
}

void fmx_name_of(const void *m, char *buf, size_t size)
{
    buf[0] = '\0';
    struct fmx_registry *reg = atomic_load_explicit(&registry, memory_order_acquire);
    if (reg == NULL || atomic_load_explicit(&names_set, memory_order_relaxed) == 0)
        return;
    struct fmx_name *entry = find_name(reg, m);
    if (entry == NULL)
        return;
    size_t n = strnlen(entry->name, sizeof entry->name);
    if (n >= size)
        n = size - 1;
    memcpy(buf, entry->name, n);
    buf[n] = '\0';
}

void fast_mutex_get_name(const fast_mutex_t *m, char *buf, size_t size)
{
    if (size > 0)
        fmx_name_of(m, buf, size);
}

void fmx_forget_name(const void *m)
{
    if (atomic_load_explicit(&names_set, memory_order_relaxed) != 0)
        fast_mutex_set_name((fast_mutex_t *)m, NULL);
}
