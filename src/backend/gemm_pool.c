/* nabla's thread pool (see gemm_pool.h).
 *
 * A job is published as one 64-bit word, state = (job number << 32) | next task. A thread
 * takes a task with a compare-and-swap that succeeds only while the job number is still the
 * one it read, so a worker that wakes up late can never run a task of a newer job with an
 * older job's function, and no task runs twice. The job's function, argument and task count
 * sit in one of two slots (by job parity); the caller waits for every task of a job before it
 * rewrites the other slot.
 *
 * Waiting: an idle worker first spins (a few microseconds: the next job of a training step
 * usually comes that soon), then yields the core to other processes for a while, then sleeps
 * on a condition variable. Spinning forever is what makes OpenMP and BLAS pools collapse on a
 * shared machine; sleeping at once would add a wake-up (~5–50 µs) to every product. The caller
 * waits for the last tasks the same way, minus the sleep.
 */
#include "backend/gemm_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle worker spins, then yields, before it sleeps (nanoseconds). */
#define SPIN_NS 50000L
#define YIELD_NS 500000L

typedef struct job {
    _Atomic(nb_task_fn *) fn;
    _Atomic(void *) arg;
    atomic_int tasks;
} job;

typedef struct worker {
    nb_pool *pool;
    int index;
    pthread_t thread;
} worker;

struct nb_pool {
    int threads;
    worker *workers;       /* threads − 1 */
    int started;
    _Atomic uint64_t state; /* job << 32 | next task */
    atomic_int done;       /* tasks of the current job finished */
    atomic_int sleepers;
    atomic_int stop;
    job slots[2];
    pthread_mutex_t lock;
    pthread_cond_t wake;
};

/* 1 + the pool thread index while a task runs, else 0: a task that calls nb_pool_run runs
 * the inner job itself, and nb_pool_current_thread tells it which thread it is. */
static _Thread_local int task_thread;

int nb_pool_current_thread(void)
{
    return task_thread ? task_thread - 1 : 0;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Takes and runs tasks of job `id` until none is left. */
static void run_tasks(nb_pool *p, uint32_t id, int thread)
{
    const job *j = &p->slots[id & 1];
    uint64_t s = atomic_load(&p->state);
    for (;;) {
        if ((uint32_t)(s >> 32) != id)
            return;
        int tasks = atomic_load_explicit(&j->tasks, memory_order_relaxed);
        uint32_t t = (uint32_t)s;
        if (t >= (uint32_t)tasks)
            return;
        if (!atomic_compare_exchange_weak(&p->state, &s, s + 1))
            continue; /* s now holds the current state */
        nb_task_fn *fn = atomic_load_explicit(&j->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&j->arg, memory_order_relaxed);
        task_thread = thread + 1;
        fn(arg, (int)t, thread);
        task_thread = 0;
        atomic_fetch_add(&p->done, 1);
        s = atomic_load(&p->state);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    nb_pool *p = w->pool;
    uint32_t seen = (uint32_t)(atomic_load(&p->state) >> 32);
    for (;;) {
        uint32_t id;
        long long start = now_ns(), waited = 0;
        for (long spins = 0;
             (id = (uint32_t)(atomic_load(&p->state) >> 32)) == seen && !atomic_load(&p->stop);
             spins++) {
            if (spins % 64 == 63)
                waited = now_ns() - start;
            if (waited < SPIN_NS) {
                cpu_relax();
            } else if (waited < SPIN_NS + YIELD_NS) {
                sched_yield();
            } else {
                pthread_mutex_lock(&p->lock);
                atomic_fetch_add(&p->sleepers, 1);
                while ((uint32_t)(atomic_load(&p->state) >> 32) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->wake, &p->lock);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->lock);
                start = now_ns();
                waited = 0;
            }
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = id;
        run_tasks(p, id, w->index);
    }
}

nb_pool *nb_pool_new(int threads)
{
    if (threads < 1)
        threads = 1;
    nb_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = threads;
    atomic_init(&p->state, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    for (int i = 0; i < 2; i++) {
        atomic_init(&p->slots[i].fn, NULL);
        atomic_init(&p->slots[i].arg, NULL);
        atomic_init(&p->slots[i].tasks, 0);
    }
    if (pthread_mutex_init(&p->lock, NULL)) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL)) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    if (threads > 1) {
        p->workers = calloc((size_t)threads - 1, sizeof *p->workers);
        if (!p->workers) {
            nb_pool_free(p);
            return NULL;
        }
        for (int i = 0; i < threads - 1; i++) {
            p->workers[i] = (worker){.pool = p, .index = i + 1};
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i])) {
                nb_pool_free(p);
                return NULL;
            }
            p->started++;
        }
    }
    return p;
}

void nb_pool_free(nb_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->started; i++)
        pthread_join(pool->workers[i].thread, NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->workers);
    free(pool);
}

int nb_pool_threads(const nb_pool *pool)
{
    return pool ? pool->threads : 1;
}

void nb_pool_run(nb_pool *p, int tasks, nb_task_fn *fn, void *arg)
{
    if (tasks <= 0)
        return;
    if (!p || p->threads == 1 || tasks == 1 || task_thread) {
        for (int t = 0; t < tasks; t++)
            fn(arg, t, 0);
        return;
    }
    uint32_t id = (uint32_t)(atomic_load(&p->state) >> 32) + 1;
    job *j = &p->slots[id & 1];
    atomic_store_explicit(&j->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&j->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&j->tasks, tasks, memory_order_relaxed);
    atomic_store(&p->done, 0);
    atomic_store(&p->state, (uint64_t)id << 32); /* publishes the slot (seq_cst) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_tasks(p, id, 0);
    /* the last tasks are running in other threads: spin briefly, then let others run */
    for (long spins = 0; atomic_load(&p->done) < tasks; spins++) {
        if (spins < 4096)
            cpu_relax();
        else
            sched_yield();
    }
}

typedef struct range_job {
    nb_range_fn *fn;
    void *arg;
    int64_t count, align;
    int tasks;
} range_job;

static void range_task(void *arg, int task, int thread)
{
    (void)thread;
    const range_job *j = arg;
    int64_t first, last;
    nb_task_range(j->count, j->tasks, task, j->align, &first, &last);
    if (first < last)
        j->fn(j->arg, first, last, task);
}

int nb_parallel_for(nb_gemm *gemm, int64_t count, int64_t grain, int64_t align, int max_tasks,
                    nb_range_fn *fn, void *arg)
{
    if (count <= 0)
        return 0;
    if (align < 1)
        align = 1;
    if (grain < align)
        grain = align;
    int64_t tasks = (count + grain - 1) / grain;
    int64_t cap = max_tasks > 0 ? max_tasks : nb_gemm_threads(gemm);
    if (tasks > cap)
        tasks = cap;
    if (tasks <= 1) {
        fn(arg, 0, count, 0);
        return 1;
    }
    range_job j = {.fn = fn, .arg = arg, .count = count, .align = align, .tasks = (int)tasks};
    nb_gemm_parallel(gemm, j.tasks, range_task, &j);
    return j.tasks;
}

void nb_task_range(int64_t rows, int tasks, int task, int64_t align, int64_t *first,
                   int64_t *last)
{
    int64_t blocks = (rows + align - 1) / align;
    int64_t b0 = blocks * task / tasks, b1 = blocks * (task + 1) / tasks;
    *first = b0 * align < rows ? b0 * align : rows;
    *last = b1 * align < rows ? b1 * align : rows;
}
