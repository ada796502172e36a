/* The queue of a process-private mutex: its waiters' registry records in
 * FIFO order, and the queue lock that guards them.
 *
 * Contract:
 *   - The queue, the `queue` word and the lock word's flag bits change only
 *     with the queue lock held.  Readers without it (the spin policy's
 *     count, a release asking whether a woken waiter is late) get a hint:
 *     records are never unmapped, so a stale answer is a wrong guess, never
 *     a crash.
 *   - `queue` holds the head's link (slot + 1) in its low 16 bits and the
 *     number of queued waiters above them; 0 is an empty queue.  Records
 *     number at most FMX_REGISTRY_THREADS, so neither part overflows, and
 *     the value never equals FAST_MUTEX_SHARED_QUEUE.
 *   - The queue is circular and doubly linked through record links; the
 *     head's `prev` is the newest waiter.
 *   - A waiter's time as first in line (`head_since_us`) starts when it
 *     becomes the head, and is 0 while it has not been first.
 */
#include "internal.h"

#define QUEUE_LINK_BITS 16u
#define QUEUE_LINK_MASK ((1u << QUEUE_LINK_BITS) - 1u)

_Static_assert(FMX_REGISTRY_THREADS < QUEUE_LINK_MASK, "a link must fit in the queue word");

/* The queue lock: 0 free, 1 held, 2 held and somebody may sleep on it.
 * Held only for a few loads and stores, so a waiter spins a little before
 * it sleeps: most waits end within that. */
#define QUEUE_LOCK_SPINS 100

void fmx_queue_lock(fast_mutex_t *m)
{
    uint32_t expected = 0;
    /* Acquire: the queue and flags as the last holder left them are
     * visible (pairs with the release exchange in fmx_queue_unlock()). */
    if (atomic_compare_exchange_strong_explicit(&m->queue_lock, &expected, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    for (int spins = 0; spins < QUEUE_LOCK_SPINS; spins++) {
        fmx_cpu_relax();
        expected = 0;
        if (atomic_load_explicit(&m->queue_lock, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&m->queue_lock, &expected, 1,
                                                  memory_order_acquire, memory_order_relaxed))
            return;
    }
    while (atomic_exchange_explicit(&m->queue_lock, 2, memory_order_acquire) != 0)
        fmx_futex_wait(&m->queue_lock, 2, NULL, false);
}

void fmx_queue_unlock(fast_mutex_t *m)
{
    /* Release: pairs with the acquire in fmx_queue_lock(). */
    if (atomic_exchange_explicit(&m->queue_lock, 0, memory_order_release) == 2)
        fmx_futex_wake(&m->queue_lock, 1, false);
}

static uint32_t queue_word(const fast_mutex_t *m)
{
    return atomic_load_explicit(&((fast_mutex_t *)m)->queue, memory_order_relaxed);
}

static void set_queue_word(fast_mutex_t *m, uint32_t head_link, uint32_t length)
{
    atomic_store_explicit(&m->queue, length == 0 ? 0 : (length << QUEUE_LINK_BITS) | head_link,
                          memory_order_relaxed);
}

/* The head's link, checked: the queue word lies in memory that other code,
 * and for a mutex in shared memory other processes, can write.  A link
 * outside the registry (FAST_MUTEX_SHARED_QUEUE among them: a
 * process-shared mutex has no queue) is reported as corruption, naming the
 * mutex, before anything indexes with it. */
struct fmx_record *fmx_queue_head(const fast_mutex_t *m)
{
    uint32_t link = queue_word(m) & QUEUE_LINK_MASK;
    if (link > FMX_REGISTRY_THREADS || (link != 0 && atomic_load_explicit(&fmx_records_,
                                                                          memory_order_acquire) == NULL))
        fmx_bad_link(m, link);
    return fmx_record_at(link);
}

uint32_t fmx_queue_length(const fast_mutex_t *m)
{
    return queue_word(m) >> QUEUE_LINK_BITS;
}

uint32_t fmx_first_in_line_for_us(const struct fmx_record *head)
{
    return fmx_now_us() -
           atomic_load_explicit(&((struct fmx_record *)head)->head_since_us, memory_order_relaxed);
}

/* The time a waiter becomes first in line, never 0 (0: not first yet). */
static uint32_t first_from_now(void)
{
    return fmx_now_us() | 1u;
}

/* Whether waiter `a` became first in line before waiter `b` (both have). */
static bool first_before(const struct fmx_record *a, const struct fmx_record *b)
{
    return (int32_t)(atomic_load_explicit(&((struct fmx_record *)a)->head_since_us,
                                          memory_order_relaxed) -
                     atomic_load_explicit(&((struct fmx_record *)b)->head_since_us,
                                          memory_order_relaxed)) < 0;
}

/* Where a waiter coming back at the front goes: before the first waiter
 * that did not become first in line before it, or before the head again
 * when all did.  Sets *new_head when it goes first. */
static struct fmx_record *front_place(struct fmx_record *head, const struct fmx_record *rec,
                                      bool *new_head)
{
    struct fmx_record *behind = head;
    *new_head = true;
    while (atomic_load_explicit(&behind->head_since_us, memory_order_relaxed) != 0 &&
           first_before(behind, rec)) {
        *new_head = false;
        behind = fmx_record_at(behind->next);
        if (behind == head)
            break;
    }
    return behind;
}

/* Puts rec in m's queue.  A new waiter goes to the back, not first in line
 * yet unless the queue was empty.  A woken waiter that lost the race comes
 * back at the front (at_front), keeping the time it became first, but
 * behind those that became first before it: several woken waiters may come
 * back at once, and the oldest must keep its time to reach the handoff
 * bound (doc/design.md, "What the bound does not bound").  Queue lock held. */
void fmx_enqueue(fast_mutex_t *m, struct fmx_record *rec, bool at_front)
{
    uint32_t link = fmx_record_link(rec);
    uint32_t length = fmx_queue_length(m);
    struct fmx_record *head = fmx_queue_head(m);
    if (!at_front)
        atomic_store_explicit(&rec->head_since_us, head == NULL ? first_from_now() : 0,
                              memory_order_relaxed);
    struct fmx_record *behind = head;
    bool new_head = head == NULL;
    if (head != NULL && at_front)
        behind = front_place(head, rec, &new_head);
    fmx_record_write_begin(rec);
    if (head == NULL) {
        rec->next = rec->prev = link;
    } else {
        struct fmx_record *before = fmx_record_at(behind->prev);
        rec->next = fmx_record_link(behind);
        rec->prev = behind->prev;
        before->next = link;
        behind->prev = link;
    }
    fmx_record_write_end(rec);
    set_queue_word(m, new_head ? link : fmx_record_link(head), length + 1);
}

/* Takes rec off m's queue; returns true when the queue is now empty.  The
 * next waiter's time as first in line starts now, also when it had been
 * first before: keeping that time made handoffs to sleeping waiters the
 * rule (doc/design.md, "What the bound does not bound").  Queue lock held. */
bool fmx_dequeue(fast_mutex_t *m, struct fmx_record *rec)
{
    uint32_t link = fmx_record_link(rec);
    uint32_t length = fmx_queue_length(m);
    uint32_t head_link = queue_word(m) & QUEUE_LINK_MASK;
    bool empty = rec->next == link;
    if (empty) {
        set_queue_word(m, 0, 0);
    } else {
        fmx_record_at(rec->prev)->next = rec->next;
        fmx_record_at(rec->next)->prev = rec->prev;
        if (head_link == link) {
            head_link = rec->next;
            atomic_store_explicit(&fmx_record_at(rec->next)->head_since_us, first_from_now(),
                                  memory_order_relaxed);
        }
        set_queue_word(m, head_link, length - 1);
    }
    fmx_record_write_begin(rec);
    rec->next = rec->prev = 0;
    fmx_record_write_end(rec);
    return empty;
}
