/* A model of the fast_mutex_t protocol in src/fastmutex.c and src/queue.c, for the spin
 * model checker.  It checks, over every interleaving of N threads that each
 * acquire and release ITER times (some giving up at a nondeterministic
 * timeout), that
 *   - two threads never hold the mutex at once (the assertion in the
 *     critical section);
 *   - nobody sleeps forever: a lost wake-up leaves a thread blocked at its
 *     park and shows up as an invalid end state;
 *   - the word's flags match the queue whenever the queue lock is free.
 * A thread may be unrecorded (no registry record: acquire_unrecorded()):
 * it sleeps on the lock word with SLEEPERS set, and releases that clear
 * SLEEPERS wake one such sleeper.
 * Each atomic block stands for one atomic instruction of the C code (a CAS,
 * a store, an exchange); the queue lock is a plain blocking lock here.
 * Keep it in step with the C code: the comments name the function. */

#define N 3
#define ITER 2
#define NONE 0
#define RETRY 1
#define HANDOFF 2

byte owner = 0;          /* owner bits of the word; 0 free, else thread id */
bool waiters = false;    /* FAST_MUTEX_WAITERS */
bool woken = false;      /* FAST_MUTEX_WOKEN */
bool sleepers = false;   /* FAST_MUTEX_SLEEPERS */
bool wsleep[N + 1];      /* asleep in a futex wait on the lock word */
bool qlock = false;      /* the queue lock */
byte queue[N];           /* FIFO of thread ids; queue[0] is the oldest */
byte qlen = 0;
byte wake[N + 1];        /* each thread's futex word (enum fmx_wake) */
byte inside = 0;         /* threads in the critical section */

inline lock_queue() { atomic { !qlock -> qlock = true } }
inline unlock_queue() {
    /* The invariant the release path relies on: WAITERS iff queued. */
    assert(waiters == (qlen > 0));
    qlock = false
}

/* fmx_enqueue(): a new waiter at the back; a woken one at the front, but
 * behind those first in line before it: anywhere, as far as the model
 * knows (it has no clock). */
inline enqueue(id, front) {
    pos = qlen;
    if
    :: front ->
        pos = 0;
        do
        :: pos < qlen -> pos++
        :: break
        od
    :: else
    fi;
    j = qlen;
    do
    :: j > pos -> queue[j] = queue[j - 1]; j--
    :: else -> break
    od;
    queue[pos] = id;
    qlen++
}

/* fmx_dequeue(): remove `id` wherever it stands. */
inline dequeue(id) {
    j = 0;
    do
    :: j < qlen && queue[j] != id -> j++
    :: else -> break
    od;
    assert(j < qlen);
    do
    :: j + 1 < qlen -> queue[j] = queue[j + 1]; j++
    :: else -> break
    od;
    qlen--;
    queue[qlen] = 0
}

/* fmx_futex_wake(&m->word, 1): wakes one thread asleep on the word, if any. */
inline wake_word_sleeper() {
    atomic {
        if
        :: wsleep[1] -> wsleep[1] = false
        :: wsleep[2] -> wsleep[2] = false
        :: wsleep[3] -> wsleep[3] = false
        :: else -> skip
        fi
    }
}

proctype thread(byte id; bool timed; bool unrecorded) {
    byte iter = 0;
    byte j, pos, head, s_owner;
    bool mine_woken, ok, had, s_waiters, s_woken;
    do
    :: iter == ITER -> break
    :: iter < ITER ->
        iter++;
        /* fast_mutex_take_(): CAS 0 -> id, or a free owner taken keeping
         * the flags */
        if
        :: atomic { owner == 0 -> owner = id }; goto critical
        :: else -> skip
        fi;
        /* fmx_policy_spin(): any number of CAS tries on a free owner, whatever
         * the policy decides (pauses, yields, or none) */
        do
        :: atomic { owner == 0 -> owner = id }; goto critical
        :: break
        od;
        if
        :: unrecorded -> goto sleep_on_word
        :: else
        fi;
        mine_woken = false;
retry:
        /* acquire_queued(): a woken waiter spins before queueing again */
        if
        :: mine_woken ->
            do
            :: atomic { owner == 0 -> owner = id; woken = false }; goto critical
            :: break
            od
        :: else
        fi;
        lock_queue();
        if
        :: atomic { owner == 0 -> owner = id; if :: mine_woken -> woken = false :: else fi };
           unlock_queue(); goto critical
        :: else -> skip
        fi;
        if
        :: timed -> /* time_out_before_queueing(): deadline passed: a woken waiter hands
                     * its WOKEN duty back only while somebody holds the lock
                     * (whose release then wakes the next), else takes it */
           if
           :: mine_woken ->
              atomic {
                  if
                  :: owner != 0 -> woken = false; ok = true
                  :: else -> owner = id; woken = false; ok = false
                  fi
              };
              if :: !ok -> unlock_queue(); goto critical :: else fi
           :: else
           fi;
           unlock_queue(); goto next
        :: true -> skip
        fi;
        wake[id] = NONE;
        enqueue(id, mine_woken);
        atomic {
            if
            :: owner != 0 -> waiters = true; if :: mine_woken -> woken = false :: else fi; ok = true
            :: else -> ok = false
            fi
        };
        if
        :: !ok -> dequeue(id); if :: qlen == 0 -> waiters = false :: else fi;
                  unlock_queue(); goto retry
        :: else -> skip
        fi;
        mine_woken = false;
        unlock_queue();
        /* park: futex wait on wake[id] */
        if
        :: wake[id] != NONE -> skip
        :: timed -> /* leave_queue(): time out unless a release got here first */
           lock_queue();
           if
           :: wake[id] == NONE -> dequeue(id); if :: qlen == 0 -> waiters = false :: else fi;
                                  unlock_queue(); goto next
           :: else -> unlock_queue()
           fi
        fi;
        if
        :: wake[id] == HANDOFF -> assert(owner == id); goto critical
        :: else -> mine_woken = true; goto retry
        fi;
sleep_on_word:
        /* acquire_unrecorded(): take a free owner keeping the flags and
         * adding SLEEPERS, or set SLEEPERS while it is held (flag_sleepers())
         * and sleep while the word is what we saw */
        atomic {
            if
            :: owner == 0 -> owner = id; sleepers = true; ok = true
            :: else -> sleepers = true; ok = false;
                       s_owner = owner; s_waiters = waiters; s_woken = woken
            fi
        };
        if
        :: ok -> goto critical
        :: else -> skip
        fi;
        atomic {
            if
            :: owner == s_owner && waiters == s_waiters && woken == s_woken && sleepers ->
               wsleep[id] = true
            :: else -> skip
            fi
        };
        !wsleep[id];
        goto sleep_on_word;
critical:
        atomic { inside++; assert(inside == 1 && owner == id) };
        inside--;
        /* fast_mutex_release(): CAS id -> 0 */
        if
        :: atomic { owner == id && !waiters && !woken && !sleepers -> owner = 0 }; goto next
        :: else -> skip
        fi;
        /* fast_mutex_release_slow_(): let_go_unless_wake_due(), else wake_next() */
        atomic {
            /* With WOKEN set the owner bits are simply cleared, unless the
             * woken waiter is late (fmx_policy_woken_is_late()): then, as
             * without WOKEN, the next waiter is woken too.  Either may
             * happen. */
            had = sleepers;
            if
            :: !waiters -> owner = 0; sleepers = false; ok = true
            :: woken && waiters -> owner = 0; sleepers = false; ok = true
            :: woken && waiters -> ok = false
            :: else -> ok = false
            fi
        };
        if
        :: ok -> if :: had -> wake_word_sleeper() :: else fi; goto next
        :: else -> skip
        fi;
        /* wake_next(): each change of the word is one exchange, which also
         * clears SLEEPERS and tells whether it was set */
        lock_queue();
        if
        :: qlen == 0 -> atomic { owner = 0; had = sleepers; sleepers = false }
        :: else ->
            head = queue[0];
            dequeue(head);
            if
            /* waited > 1 ms; WOKEN stays for a woken waiter still on its way */
            :: atomic { owner = head; waiters = (qlen > 0); had = sleepers; sleepers = false };
               wake[head] = HANDOFF
            :: atomic { owner = 0; waiters = (qlen > 0); woken = true; had = sleepers;
                        sleepers = false };
               wake[head] = RETRY
            fi
        fi;
        unlock_queue();
        if :: had -> wake_word_sleeper() :: else fi;
next:
        skip
    od
}

init {
    atomic {
        run thread(1, false, false);
        run thread(2, false, false);
        run thread(3, true, false)
    }
}
