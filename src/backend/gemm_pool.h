/* Internal: nabla's thread pool, the one place where the library's threads live.
 *
 * A gemm context owns one pool of `threads` threads (the caller plus threads − 1 workers);
 * matrix products split across it (gemm.c), and so do the element-wise passes of the graph,
 * the optimiser step and minibatch gathering (through nb_gemm_parallel). No other pool runs
 * at the same time: every backend is driven single-threaded per call (oneDNN's OpenMP and
 * OpenBLAS are capped to one thread), so the cores are never oversubscribed. */
#ifndef NB_GEMM_POOL_H
#define NB_GEMM_POOL_H

#include "nabla.h"

/* One task of a parallel job: task in [0, tasks), thread in [0, threads) names the thread
 * running it (for per-thread scratch). */
typedef void nb_task_fn(void *arg, int task, int thread);

typedef struct nb_pool nb_pool;

/* A pool of `threads` ≥ 1 threads, the caller being thread 0. NULL when out of memory or
 * when a thread cannot be started. */
nb_pool *nb_pool_new(int threads);
void nb_pool_free(nb_pool *pool);
int nb_pool_threads(const nb_pool *pool);
/* Runs fn for every task and returns when all are done. Tasks are handed out one at a time
 * to whichever thread is free, the caller included, so a worker that the operating system
 * does not schedule (a busy machine) only delays the task it has taken. Called from inside a
 * task, or with one thread or one task, it runs every task in the calling thread. */
void nb_pool_run(nb_pool *pool, int tasks, nb_task_fn *fn, void *arg);
/* Inside a task: the index of the thread running it; elsewhere 0. */
int nb_pool_current_thread(void);

/* The pool of a gemm context (NULL-safe: runs serially without one). */
void nb_gemm_parallel(nb_gemm *gemm, int tasks, nb_task_fn *fn, void *arg);
int nb_gemm_threads(const nb_gemm *gemm);

/* The parallel for: [0, count) cut into at most `max_tasks` ranges (≤ 0: one per thread of
 * the pool) of whole blocks of `align` items, each at least `grain` items long but the last,
 * and fn(arg, first, last, task) called for each, on the pool. Returns the number of ranges
 * (0 when count ≤ 0). With max_tasks > 0 the cut does not depend on the thread count, so a
 * reduction that keeps one partial result per task and adds them in task order gives the
 * same bits on any machine. */
typedef void nb_range_fn(void *arg, int64_t first, int64_t last, int task);
int nb_parallel_for(nb_gemm *gemm, int64_t count, int64_t grain, int64_t align, int max_tasks,
                    nb_range_fn *fn, void *arg);

/* A row range [*first, *last) of task `task` when `rows` rows are dealt to `tasks` tasks in
 * blocks of `align` rows (the last may be shorter). */
void nb_task_range(int64_t rows, int tasks, int task, int64_t align, int64_t *first,
                   int64_t *last);

/* Product with a fused output pass, for Linear: C = A·Bᵀ + bias (beta = 0), row-major,
 * A M×K, B N×K; then, when relu is not NULL, relu[i,j] = max(C[i,j], 0) (row stride ldc).
 * The bias and ReLU are applied by the thread that computed each block of C while it is
 * still in its cache. bias may be NULL. */
void nb_gemm_linear(nb_gemm *gemm, int M, int N, int K, const float *A, int lda,
                    const float *B, int ldb, const float *bias, float *C, int ldc,
                    float *relu);

#endif
