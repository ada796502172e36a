/* The lock-order verifier (FASTMUTEX_VERIFY=order), after Linux's lockdep
 * and Driver Verifier's deadlock detection.
 *
 * Every thread keeps the list of mutexes it holds.  When it is about to
 * take another (before it may wait), each held mutex gives an edge
 * "held -> new" in a graph of the orders seen so far in the process; an
 * edge whose reverse path already exists closes a cycle: some interleaving
 * of the threads that took those edges deadlocks, even if this run never
 * waits.  The first acquisition closing each cycle is reported, and then
 * handled as FASTMUTEX_ON_DEADLOCK says.
 *
 * The graph is kept twice: by mutex, and by class (the call site that
 * initialised the mutex, as lockdep's classes; a statically initialised
 * mutex is a class of its own), so that an order broken by two objects of
 * the same two classes is found even when each pair of objects is nested
 * once.  Nesting two mutexes of one class makes no class edge: per-object
 * locks taken in a consistent order stay quiet, and an inversion between
 * two objects of one class is still found by the mutex graph.
 *
 * A try_acquire never blocks, so it adds no edge into the mutex it tries
 * (lockdep does the same); what it takes is held, and later acquisitions
 * nest under it.  Releasing in another order than the reverse of taking is
 * no error.  A thread that exits holding a mutex is reported.
 *
 * Each thread's list of held mutexes is also published in its registry
 * record (claimed at its first acquisition), so that `fmx thread` and gdb
 * list what a thread holds, live or in a core.
 *
 * The verifier is a debugging mode: one process-wide lock guards the
 * graph, and the graph's size is bounded (past the bound it stops learning
 * and says so once). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_HELD 32
#define MAX_NODES 8192u /* a power of two: open addressing */
#define MAX_PATH 16

/* A mutex the calling thread holds. */
struct held {
    const fast_mutex_t *m;
    const void *outer; /* the FAST_MUTEX around m, NULL for a fast_mutex_t */
    const void *cls;
    const void *site; /* where it was taken */
    uint64_t since_ns; /* when, CLOCK_MONOTONIC */
};

static _Thread_local struct held held[MAX_HELD];
static _Thread_local int held_count;
static _Thread_local bool held_overflow_noted;
/* Set for a thread once it has held a mutex, so that its exit is checked. */
static pthread_key_t exit_key;

/* An order seen: some thread took `to` while it held the edge's source. */
struct edge {
    uint32_t to;
    int32_t tid;
    char thread[FMX_THREAD_NAME_LEN];
    const void *from_site; /* where the held mutex was taken */
    const void *to_site;   /* where this one was */
};

enum node_kind { NODE_FREE, NODE_MUTEX, NODE_CLASS, NODE_RETIRED };

struct node {
    enum node_kind kind;
    const void *key; /* the mutex, or the class's init site */
    const void *example; /* a mutex of the class */
    const void *outer;   /* the FAST_MUTEX around the mutex (or the example), the
                          * address reports name it by; NULL for a fast_mutex_t */
    struct edge *edges;
    uint32_t count, capacity;
    uint32_t seen;   /* search stamp */
    uint32_t parent; /* search: node we came from */
    uint32_t via;    /* search: edge index in the parent */
};

static struct node nodes[MAX_NODES];
static uint32_t nodes_used;
static uint32_t search_stamp;
static bool full_noted;

/* Init sites by mutex: the classes.  Open addressing; destroy leaves the
 * slot (key kept, site NULL) so that probing stays correct. */
struct class_slot {
    const void *m;
    const void *site;
};
static struct class_slot classes[MAX_NODES];

static pthread_mutex_t graph_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t hash_ptr(const void *p, uint32_t salt)
{
    uint64_t x = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull + salt;
    return (uint32_t)(x >> 40) & (MAX_NODES - 1);
}

static void after_fork_in_child(void)
{
    pthread_mutex_init(&graph_lock, NULL);
}

static void check_thread_exit(void *unused);

__attribute__((constructor)) static void verify_setup(void)
{
    pthread_atfork(NULL, NULL, after_fork_in_child);
    if (pthread_key_create(&exit_key, check_thread_exit) != 0)
        abort();
}

/* The class of m: its init site, or m itself.  Graph lock held. */
static const void *class_of(const fast_mutex_t *m)
{
    for (uint32_t i = hash_ptr(m, 1), n = 0; n < MAX_NODES; i = (i + 1) & (MAX_NODES - 1), n++) {
        if (classes[i].m == NULL)
            break;
        if (classes[i].m == m)
            return classes[i].site != NULL ? classes[i].site : m;
    }
    return m;
}

static void set_class(const fast_mutex_t *m, const void *site)
{
    for (uint32_t i = hash_ptr(m, 1), n = 0; n < MAX_NODES; i = (i + 1) & (MAX_NODES - 1), n++)
        if (classes[i].m == NULL || classes[i].m == m) {
            classes[i].m = m;
            classes[i].site = site;
            return;
        }
}

/* The node of (kind, key), made if `make`; MAX_NODES when none.  Graph
 * lock held. */
static uint32_t find_node(enum node_kind kind, const void *key, bool make)
{
    uint32_t i = hash_ptr(key, kind);
    for (uint32_t n = 0; n < MAX_NODES; i = (i + 1) & (MAX_NODES - 1), n++) {
        if (nodes[i].kind == kind && nodes[i].key == key)
            return i;
        if (nodes[i].kind == NODE_FREE)
            break;
    }
    if (!make || nodes[i].kind != NODE_FREE || nodes_used + 1 >= MAX_NODES / 2) {
        if (make && !full_noted) {
            full_noted = true;
            struct fmx_report r = {.len = 0};
            fmx_report_add(&r, "fastmutex: lock-order verifier: graph full (%u mutexes and classes); "
                               "new orders are no longer checked\n", nodes_used);
            fmx_report_note(&r);
        }
        return MAX_NODES;
    }
    nodes[i].kind = kind;
    nodes[i].key = key;
    nodes_used++;
    return i;
}

/* A destroyed (or re-initialised) mutex's node leaves the graph: its
 * memory may become another mutex, with orders of its own.  Its edges go;
 * edges into it lead nowhere from now on.  Graph lock held. */
static void retire_mutex(const fast_mutex_t *m)
{
    uint32_t i = find_node(NODE_MUTEX, m, false);
    if (i == MAX_NODES)
        return;
    nodes[i].kind = NODE_RETIRED; /* keeps probing chains intact */
    free(nodes[i].edges);
    nodes[i].edges = NULL;
    nodes[i].count = nodes[i].capacity = 0;
}

void fmx_verify_init(const fast_mutex_t *m, const void *site)
{
    pthread_mutex_lock(&graph_lock);
    retire_mutex(m);
    set_class(m, site);
    pthread_mutex_unlock(&graph_lock);
}

void fmx_verify_destroy(const fast_mutex_t *m)
{
    pthread_mutex_lock(&graph_lock);
    retire_mutex(m);
    set_class(m, NULL);
    pthread_mutex_unlock(&graph_lock);
}

static bool has_edge(uint32_t from, uint32_t to)
{
    for (uint32_t e = 0; e < nodes[from].count; e++)
        if (nodes[from].edges[e].to == to)
            return true;
    return false;
}

/* Searches a path start ->* goal (depth first), leaving parent links for
 * the report.  Graph lock held. */
static bool find_path(uint32_t start, uint32_t goal)
{
    static uint32_t stack[MAX_NODES];
    uint32_t top = 0;
    search_stamp++;
    nodes[start].seen = search_stamp;
    stack[top++] = start;
    while (top > 0) {
        uint32_t at = stack[--top];
        for (uint32_t e = 0; e < nodes[at].count; e++) {
            uint32_t to = nodes[at].edges[e].to;
            if (nodes[to].seen == search_stamp || nodes[to].kind == NODE_RETIRED)
                continue;
            nodes[to].seen = search_stamp;
            nodes[to].parent = at;
            nodes[to].via = e;
            if (to == goal)
                return true;
            stack[top++] = to;
        }
    }
    return false;
}

static void add_edge(uint32_t from, uint32_t to, const void *from_site, const void *to_site)
{
    struct node *n = &nodes[from];
    if (n->count == n->capacity) {
        uint32_t capacity = n->capacity ? n->capacity * 2 : 4;
        struct edge *grown = realloc(n->edges, capacity * sizeof *grown);
        if (grown == NULL)
            return; /* out of memory: this order goes unlearned */
        n->edges = grown;
        n->capacity = capacity;
    }
    struct edge *e = &n->edges[n->count++];
    *e = (struct edge){.to = to, .tid = (int32_t)fast_mutex_self_(), .from_site = from_site,
                       .to_site = to_site};
    fmx_current_thread_name(e->thread);
}

static void add_node_name(struct fmx_report *r, uint32_t i)
{
    if (nodes[i].kind == NODE_CLASS) {
        fmx_report_add(r, "class ");
        fmx_report_add_site(r, nodes[i].key);
        fmx_report_add(r, " (e.g. ");
        fmx_report_add_mutex(r, nodes[i].example, nodes[i].outer);
        fmx_report_add(r, ")");
    } else {
        fmx_report_add_mutex(r, nodes[i].key, nodes[i].outer);
    }
}

/* The report of the cycle closed by the new edge held -> taken, whose
 * reverse path taken ->* held find_path() has just found. */
static void write_cycle(struct fmx_report *r, uint32_t held_node, uint32_t taken,
                        const struct held *h, const void *site)
{
    char name[FMX_THREAD_NAME_LEN];
    fmx_current_thread_name(name);
    fmx_report_add(r, "fastmutex: lock order inversion (a possible deadlock, nothing waits yet): "
                      "thread %u (%s) takes ",
                   fast_mutex_self_(), name);
    add_node_name(r, taken);
    fmx_report_add(r, "\n  while holding ");
    add_node_name(r, held_node);
    fmx_report_add(r, ", taken at ");
    fmx_report_add_site(r, h->site);
    fmx_report_add(r, "\n  called from ");
    fmx_report_add_site(r, site);
    fmx_report_add(r, "\n  the opposite order was seen before:\n");
    uint32_t path[MAX_PATH];
    int len = 0;
    for (uint32_t at = held_node; at != taken && len < MAX_PATH; at = nodes[at].parent)
        path[len++] = at;
    for (int k = len - 1; k >= 0; k--) {
        uint32_t to = path[k];
        uint32_t from = nodes[to].parent;
        const struct edge *e = &nodes[from].edges[nodes[to].via];
        fmx_report_add(r, "    thread %d (%s) took ", e->tid, e->thread);
        add_node_name(r, to);
        fmx_report_add(r, " at ");
        fmx_report_add_site(r, e->to_site);
        fmx_report_add(r, "\n      while holding ");
        add_node_name(r, from);
        fmx_report_add(r, ", taken at ");
        fmx_report_add_site(r, e->from_site);
        fmx_report_add(r, "\n");
    }
    if (fmx_on_deadlock_abort())
        fmx_report_add(r, "  FASTMUTEX_ON_DEADLOCK=abort: aborting\n");
}

/* Learns held -> taken (m, inside FAST_MUTEX `outer` or not) in one
 * graph; true, with the report written, when that closes a cycle.  Graph
 * lock held. */
static bool learn(enum node_kind kind, const void *held_key, const void *taken_key,
                  const struct held *h, const fast_mutex_t *m, const void *outer, const void *site,
                  struct fmx_report *r)
{
    uint32_t from = find_node(kind, held_key, true);
    uint32_t to = find_node(kind, taken_key, true);
    if (from == MAX_NODES || to == MAX_NODES || has_edge(from, to))
        return false;
    if (kind == NODE_CLASS) {
        nodes[from].example = h->m;
        nodes[to].example = m;
    }
    nodes[from].outer = h->outer;
    nodes[to].outer = outer;
    bool cycle = find_path(to, from);
    if (cycle && r != NULL)
        write_cycle(r, from, to, h, site);
    add_edge(from, to, h->site, site);
    return cycle;
}

void fmx_verify_before_wait(const fast_mutex_t *m, const void *site, const void *outer)
{
    if (held_count == 0)
        return;
    struct fmx_report r = {.len = 0};
    bool cycle = false;
    pthread_mutex_lock(&graph_lock);
    const void *cls = class_of(m);
    for (int i = 0; i < held_count && i < MAX_HELD; i++) {
        const struct held *h = &held[i];
        if (h->m == m)
            continue; /* a recursive acquire: reported as misuse */
        /* One report per acquisition: the first cycle found. */
        if (learn(NODE_MUTEX, h->m, m, h, m, outer, site, cycle ? NULL : &r))
            cycle = true;
        if (h->cls != cls && learn(NODE_CLASS, h->cls, cls, h, m, outer, site, cycle ? NULL : &r))
            cycle = true;
    }
    pthread_mutex_unlock(&graph_lock);
    if (cycle)
        (void)fmx_report_order_problem(&r);
}

/* Copies the calling thread's held list into its registry record, for the
 * tools: the count, and the entries from index `from` on (those before it
 * are already there).  `claim`: take a record if the thread has none yet
 * (at an acquisition; a release never needs one: a thread without a
 * record has published nothing). */
static void publish_held(bool claim, int from)
{
    struct fmx_record *rec = claim ? fmx_self_record() : fmx_own_record();
    if (rec == NULL)
        return; /* every record is taken: this thread's holds go unseen */
    int listed = held_count < MAX_HELD ? held_count : MAX_HELD;
    if (listed > (int)FMX_RECORD_HELD)
        listed = (int)FMX_RECORD_HELD;
    fmx_record_write_begin(rec);
    FMX_RECORD_STORE(rec->held_count, (uint32_t)held_count);
    for (int i = from; i < listed; i++) {
        FMX_RECORD_STORE(rec->held[i].mutex, (uint64_t)(uintptr_t)held[i].m);
        FMX_RECORD_STORE(rec->held[i].outer, (uint64_t)(uintptr_t)held[i].outer);
        FMX_RECORD_STORE(rec->held[i].site, (uint64_t)(uintptr_t)held[i].site);
        FMX_RECORD_STORE(rec->held[i].since_ns, held[i].since_ns);
    }
    fmx_record_write_end(rec);
}

void fmx_verify_acquired(const fast_mutex_t *m, const void *site, const void *outer, bool try)
{
    (void)try; /* a try adds no edge (none was learned before it) */
    if (held_count == 0)
        pthread_setspecific(exit_key, (void *)1);
    if (held_count >= MAX_HELD) {
        if (!held_overflow_noted) {
            held_overflow_noted = true;
            struct fmx_report r = {.len = 0};
            fmx_report_add(&r, "fastmutex: lock-order verifier: thread %u holds more than %d mutexes; "
                               "the rest are not checked\n", fast_mutex_self_(), MAX_HELD);
            fmx_report_note(&r);
        }
        held_count++;
        publish_held(true, held_count - 1);
        return;
    }
    pthread_mutex_lock(&graph_lock);
    const void *cls = class_of(m);
    pthread_mutex_unlock(&graph_lock);
    held[held_count++] =
        (struct held){.m = m, .outer = outer, .cls = cls, .site = site, .since_ns = fmx_now_ns()};
    publish_held(true, held_count - 1);
}

void fmx_verify_release(const fast_mutex_t *m)
{
    /* Any order of release is allowed: take m out wherever it is. */
    int n = held_count < MAX_HELD ? held_count : MAX_HELD;
    for (int i = n - 1; i >= 0; i--)
        if (held[i].m == m) {
            memmove(&held[i], &held[i + 1], (size_t)(n - i - 1) * sizeof held[0]);
            held_count--;
            publish_held(false, i);
            return;
        }
    if (held_count > MAX_HELD) {
        held_count--; /* one of those past the bound */
        publish_held(false, held_count);
    }
}

/* Thread exit (key destructor): a thread that still holds mutexes leaves
 * them held for good, and whoever waits for them waits forever. */
static void check_thread_exit(void *unused)
{
    (void)unused;
    if (held_count == 0)
        return;
    struct fmx_report r = {.len = 0};
    char name[FMX_THREAD_NAME_LEN];
    fmx_current_thread_name(name);
    fmx_report_add(&r, "fastmutex: thread %u (%s) exits holding %d mutex%s\n", fast_mutex_self_(),
                   name, held_count, held_count == 1 ? "" : "es");
    for (int i = 0; i < held_count && i < MAX_HELD; i++) {
        fmx_report_add(&r, "  ");
        fmx_report_add_mutex(&r, held[i].m, held[i].outer);
        fmx_report_add(&r, ", taken at ");
        fmx_report_add_site(&r, held[i].site);
        fmx_report_add(&r, "\n");
    }
    fmx_report_note(&r);
    held_count = 0;
    publish_held(false, 0);
}
