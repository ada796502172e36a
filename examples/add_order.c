/* A bug the library reports: add_order() acquires `orders` while it
 * already holds it, which would hang forever.  fast_mutex(3) shows the
 * report (scripts/examples.sh makes that example from a run of this). */
#include <fastmutex.h>
#include <pthread.h>

static fast_mutex_t orders = FAST_MUTEX_INITIALIZER;
static int count;

void add_order(void);

void add_order(void)
{
    fast_mutex_acquire(&orders);
    count++;
    fast_mutex_acquire(&orders); /* already held: a recursive acquire */
    fast_mutex_release(&orders);
    fast_mutex_release(&orders);
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "worker");
    add_order();
    return NULL;
}

int main(void)
{
    fast_mutex_set_name(&orders, "orders");
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    pthread_join(t, NULL);
    return 0;
}
