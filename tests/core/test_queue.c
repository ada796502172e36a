/* The order of a mutex's queue of waiters, which decides who is woken and
 * who is handed the lock.  New waiters queue at the back.  A woken waiter
 * that lost the race goes back to the front with the time it became first
 * in line, behind those first in line before it, so that the oldest keeps
 * its time and reaches the handoff bound.
 *
 * Which woken waiters come back, and when, is up to the scheduler in a
 * real run; here the queue's own functions (src/queue.c) are called
 * directly, on records of parked helper threads, with the
 * times set by the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>

#include "core_test.h"
#include "internal.h"

#define WAITERS 4

/* Helper threads that each claim a registry record and keep it until the
 * test ends (a record is given back when its thread exits). */
static struct fmx_record *records_of[WAITERS];
static pthread_t helpers[WAITERS];
static atomic_int claimed;
static atomic_bool done;

static void *claim_and_park(void *arg)
{
    int i = (int)(intptr_t)arg;
    records_of[i] = fmx_self_record();
    atomic_fetch_add(&claimed, 1);
    while (!atomic_load(&done))
        core_sleep_ms(1);
    return NULL;
}

static int start_helpers(void **state)
{
    (void)state;
    for (int i = 0; i < WAITERS; i++)
        if (pthread_create(&helpers[i], NULL, claim_and_park, (void *)(intptr_t)i) != 0)
            return -1;
    while (atomic_load(&claimed) < WAITERS)
        core_sleep_ms(1);
    for (int i = 0; i < WAITERS; i++)
        if (records_of[i] == NULL)
            return -1;
    return 0;
}

static int stop_helpers(void **state)
{
    (void)state;
    atomic_store(&done, true);
    for (int i = 0; i < WAITERS; i++)
        pthread_join(helpers[i], NULL);
    return 0;
}

/* The waiters called A, B, C, D in the tests. */
#define A records_of[0]
#define B records_of[1]
#define C records_of[2]
#define D records_of[3]

/* Writes the queue's order as letters, head first ("" when empty), and
 * checks that the links agree both ways. */
static const char *order_of(fast_mutex_t *m)
{
    static char order[WAITERS + 1];
    size_t n = 0;
    struct fmx_record *head = fmx_queue_head(m);
    for (struct fmx_record *rec = head; rec != NULL && n < WAITERS;) {
        int i = 0;
        while (i < WAITERS && records_of[i] != rec)
            i++;
        assert_true(i < WAITERS);
        order[n++] = (char)('A' + i);
        struct fmx_record *next = fmx_record_at(rec->next);
        assert_ptr_equal(fmx_record_at(next->prev), rec);
        rec = next == head ? NULL : next;
    }
    order[n] = '\0';
    return order;
}

static uint32_t since(const struct fmx_record *rec)
{
    return atomic_load(&rec->head_since_us);
}

static void first_since(struct fmx_record *rec, uint32_t us)
{
    atomic_store(&rec->head_since_us, us);
}

/* Whether rec became first in line since `before` (fmx_now_us()): its time
 * is the clock's then, with the low bit set so that it is never 0. */
static bool first_since_then(const struct fmx_record *rec, uint32_t before)
{
    uint32_t t = since(rec);
    return t != 0 && (t & 1u) && t - before <= fmx_now_us() - before + 1u;
}

/* Queues the named waiters at the back, as new waiters, in that order. */
static void queue_new(fast_mutex_t *m, const char *names)
{
    for (; *names != '\0'; names++)
        fmx_enqueue(m, records_of[*names - 'A'], false);
}

/* Empties the queue, as releases would. */
static void drain(fast_mutex_t *m)
{
    struct fmx_record *head;
    while ((head = fmx_queue_head(m)) != NULL)
        fmx_dequeue(m, head);
}

/* The queue word counts its waiters, for the spin policy: through new
 * waiters, woken ones coming back at the front, and any leaving. */
static void the_queue_counts_its_waiters(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    assert_int_equal(fmx_queue_length(&m), 0);
    queue_new(&m, "ABC");
    assert_int_equal(fmx_queue_length(&m), 3);
    fmx_dequeue(&m, B); /* gave up */
    assert_int_equal(fmx_queue_length(&m), 2);
    fmx_dequeue(&m, A); /* woken */
    assert_int_equal(fmx_queue_length(&m), 1);
    fmx_enqueue(&m, A, true); /* lost the race */
    assert_int_equal(fmx_queue_length(&m), 2);
    assert_string_equal(order_of(&m), "AC");
    drain(&m);
    assert_int_equal(fmx_queue_length(&m), 0);
    assert_int_equal(atomic_load(&m.queue), 0);
}

static void new_waiters_queue_at_the_back(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    uint32_t before = fmx_now_us();
    queue_new(&m, "ABC");
    assert_string_equal(order_of(&m), "ABC");
    /* Only the first is first in line, since it queued. */
    assert_true(first_since_then(A, before));
    assert_int_equal(since(B), 0);
    assert_int_equal(since(C), 0);
    drain(&m);
}

/* A release takes the head off; the next one's time in line starts then. */
static void the_next_waiter_becomes_first_when_the_head_leaves(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    queue_new(&m, "AB");
    uint32_t before = fmx_now_us();
    assert_false(fmx_dequeue(&m, A));
    assert_string_equal(order_of(&m), "B");
    assert_true(first_since_then(B, before));
    assert_true(fmx_dequeue(&m, B));
    assert_string_equal(order_of(&m), "");
}

/* The usual case: the head was woken, the next became first after it, and
 * the woken one, beaten to the lock, comes back in front. */
static void a_woken_waiter_goes_back_in_front(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    queue_new(&m, "ABC");
    first_since(A, 1001);
    fmx_dequeue(&m, A); /* woken */
    first_since(B, 2001);
    fmx_enqueue(&m, A, true); /* lost the race */
    assert_string_equal(order_of(&m), "ABC");
    assert_int_equal(since(A), 1001);
    assert_int_equal(since(B), 2001);
    assert_int_equal(since(C), 0);
    drain(&m);
}

/* A was woken, then B too because A was late; A comes back first, then B.
 * B goes behind A, who has been first in line longer: in front of it, B
 * would make A start its time over when it left. */
static void woken_waiters_come_back_oldest_first(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    queue_new(&m, "ABCD");
    first_since(A, 1001);
    fmx_dequeue(&m, A);
    first_since(B, 2001);
    fmx_dequeue(&m, B);
    first_since(C, 3001);
    fmx_enqueue(&m, A, true);
    assert_string_equal(order_of(&m), "ACD");
    fmx_enqueue(&m, B, true);
    assert_string_equal(order_of(&m), "ABCD");
    assert_int_equal(since(A), 1001);
    assert_int_equal(since(B), 2001);

    /* In the other order of coming back, the same queue. */
    drain(&m);
    queue_new(&m, "CD");
    first_since(C, 3001);
    first_since(B, 2001);
    first_since(A, 1001);
    fmx_enqueue(&m, B, true);
    fmx_enqueue(&m, A, true);
    assert_string_equal(order_of(&m), "ABCD");

    /* When A leaves, B's time in line starts over: the bound counts from
     * when a waiter became first this time (see fmx_dequeue()). */
    uint32_t before = fmx_now_us();
    fmx_dequeue(&m, A);
    assert_string_equal(order_of(&m), "BCD");
    assert_true(first_since_then(B, before));
    drain(&m);
}

/* Every waiter in line was first before the woken one: it goes to the back,
 * and the head stays. */
static void a_woken_waiter_younger_than_all_goes_to_the_back(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fmx_enqueue(&m, A, false);
    first_since(A, 1001);
    first_since(B, 2001);
    first_since(C, 3001);
    fmx_enqueue(&m, B, true);
    assert_string_equal(order_of(&m), "AB");
    fmx_enqueue(&m, C, true);
    assert_string_equal(order_of(&m), "ABC");
    assert_ptr_equal(fmx_queue_head(&m), A);
    drain(&m);
}

/* Times are the low 32 bits of microseconds: they wrap every 71 minutes,
 * and a time just past the wrap is later than one just before it. */
static void times_compare_across_the_wrap(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    fmx_enqueue(&m, C, false);
    first_since(C, 0x00000201u);
    first_since(A, 0xffffff01u);
    first_since(B, 0x00000101u);
    fmx_enqueue(&m, A, true);
    assert_string_equal(order_of(&m), "AC");
    fmx_enqueue(&m, B, true); /* behind A, who was first before the wrap */
    assert_string_equal(order_of(&m), "ABC");
    drain(&m);
}

/* A woken waiter that finds nobody queued is first again, still with the
 * time it first became first. */
static void a_woken_waiter_in_an_empty_queue_keeps_its_time(void **state)
{
    (void)state;
    fast_mutex_t m = FAST_MUTEX_INITIALIZER;
    first_since(A, 1001);
    fmx_enqueue(&m, A, true);
    assert_string_equal(order_of(&m), "A");
    assert_int_equal(since(A), 1001);
    drain(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_queue_counts_its_waiters),
        cmocka_unit_test(new_waiters_queue_at_the_back),
        cmocka_unit_test(the_next_waiter_becomes_first_when_the_head_leaves),
        cmocka_unit_test(a_woken_waiter_goes_back_in_front),
        cmocka_unit_test(woken_waiters_come_back_oldest_first),
        cmocka_unit_test(a_woken_waiter_younger_than_all_goes_to_the_back),
        cmocka_unit_test(times_compare_across_the_wrap),
        cmocka_unit_test(a_woken_waiter_in_an_empty_queue_keeps_its_time),
    };
    return cmocka_run_group_tests(tests, start_helpers, stop_helpers);
}
