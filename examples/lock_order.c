/* Two threads take the same two mutexes in opposite orders, one after the
 * other: this run never deadlocks, but another interleaving would.  Run it
 * with FASTMUTEX_VERIFY=order and the library reports the inversion at the
 * acquisition that closes the cycle, before any thread waits. */
#include <fastmutex.h>
#include <pthread.h>
#include <stdio.h>

static fast_mutex_t accounts, journal;

void *post_entry(void *arg);
void *reconcile(void *arg);

/* accounts, then journal. */
void *post_entry(void *arg)
{
    (void)arg;
    fast_mutex_acquire(&accounts);
    fast_mutex_acquire(&journal);
    fast_mutex_release(&journal);
    fast_mutex_release(&accounts);
    return NULL;
}

/* journal, then accounts: the opposite order. */
void *reconcile(void *arg)
{
    (void)arg;
    fast_mutex_acquire(&journal);
    fast_mutex_acquire(&accounts);
    fast_mutex_release(&accounts);
    fast_mutex_release(&journal);
    return NULL;
}

int main(void)
{
    fast_mutex_init(&accounts);
    fast_mutex_init(&journal);
    fast_mutex_set_name(&accounts, "accounts");
    fast_mutex_set_name(&journal, "journal");
    pthread_t t;
    pthread_create(&t, NULL, post_entry, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, reconcile, NULL);
    pthread_join(t, NULL);
    puts("done: no deadlock this time");
    return 0;
}
