/* The matrix-product front end: C = alpha · op(A) · op(B) + beta · C, row-major.
 *
 * Three interchangeable backends sit behind one table, indexed by nb_gemm_backend:
 *   onednn    oneDNN matmul primitives, cached per shape (gemm_onednn.c)
 *   openblas  cblas_sgemm (gemm_openblas.c)
 *   portable  blocked, packed C with run-time-dispatched SIMD micro-kernels (gemm_portable.c)
 * A backend that is not compiled in has no constructor in the table. NB_GEMM_AUTO takes the
 * first of `preference` that is built in and starts.
 *
 * The thread budget belongs to nabla: a context owns one pool of `threads` threads (0 = one
 * per online core; gemm_pool.c) and one single-threaded backend context per thread. A product
 * large enough to pay for the hand-over is cut into one block of C per thread, along its
 * longer side (rows of C when M ≥ N, else columns), and each thread runs its block through its
 * own backend context. The backends cap their libraries' own pools to one thread (oneDNN's
 * OpenMP, OpenBLAS), so only nabla's threads ever run: two pools never spin on the same cores,
 * and the graph's element-wise passes and the optimiser share the same threads.
 *
 * Degenerate products are settled here, identically for every backend: nothing to do when
 * M or N is 0; when K = 0 or alpha = 0 the product vanishes and C = beta · C (C = 0 without
 * reading it when beta = 0). nb_gemm_run has no status to return, so a call with negative
 * sizes, leading dimensions shorter than a row or NULL pointers is ignored and C is left
 * untouched.
 */
#include "backend/backend.h"
#include "backend/gemm_pool.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The libraries of backend/backend.h, by nb_gemm_backend. */
typedef struct backend_impl {
    const char *name;
    nb_backend_new_fn *create; /* NULL when not compiled in */
    nb_backend_free_fn *destroy;
    nb_backend_run_fn *run;
} backend_impl;

static const backend_impl backends[] = {
    [NB_GEMM_AUTO] = {.name = "auto"},
#ifdef NB_HAVE_ONEDNN
    [NB_GEMM_ONEDNN] = {.name = "onednn", .create = nb_gemm_onednn_new,
                        .destroy = nb_gemm_onednn_free, .run = nb_gemm_onednn_run},
#else
    [NB_GEMM_ONEDNN] = {.name = "onednn"},
#endif
#ifdef NB_HAVE_OPENBLAS
    [NB_GEMM_OPENBLAS] = {.name = "openblas", .create = nb_gemm_openblas_new,
                          .destroy = nb_gemm_openblas_free, .run = nb_gemm_openblas_run},
#else
    [NB_GEMM_OPENBLAS] = {.name = "openblas"},
#endif
    [NB_GEMM_PORTABLE] = {.name = "portable", .create = nb_gemm_portable_new,
                          .destroy = nb_gemm_portable_free, .run = nb_gemm_portable_run},
};

enum { BACKEND_COUNT = sizeof backends / sizeof backends[0] };

/* NB_GEMM_AUTO: fastest first (measured in bench/bench_gemm.c). */
static const nb_gemm_backend preference[] = {NB_GEMM_ONEDNN, NB_GEMM_OPENBLAS, NB_GEMM_PORTABLE};

struct nb_gemm {
    nb_gemm_backend backend;
    const backend_impl *impl;
    int threads;
    nb_pool *pool;
    void **ctx; /* one per thread, owned, freed by impl->destroy */
    /* The bf16 products' state (bf16_linear.c): oneDNN engine, per-thread streams and
     * primitive caches, the bf16 copies of weights and activations. Made on first use. */
    struct nb_bf16_state *bf16;
    /* The oneDNN image kernels' per-thread primitive caches (conv_onednn_cache.c), made on first
     * use. */
    struct nb_conv_state *conv;
    uint64_t generations; /* handed out so far (nb_gemm_new_generation) */
};

/* Products of op(A) = A and op(B) = Bᵀ with at most this many rows (Linear on a few samples)
 * are dot products of contiguous rows, for every backend (gemm_portable.c, nb_gemm_dots):
 * the backends would pack the whole weight matrix on every call. */
#define DOTS_MAX_ROWS 4
/* Those are split across threads above this many flops. */
#define DOTS_SPLIT_MIN_FLOPS 2.0e5


/* A product is split across threads only above this many flops (2·M·N·K): handing a block to
 * another thread costs about a microsecond. */
#define SPLIT_MIN_FLOPS 1.0e6

/* ---- names and availability --------------------------------------------------------------- */

#ifdef NB_HAVE_ONEDNN
#define ONEDNN_LIST "onednn, "
#define DEFAULT_BACKEND "onednn"
#else
#define ONEDNN_LIST ""
#endif
#ifdef NB_HAVE_OPENBLAS
#define OPENBLAS_LIST "openblas, "
#ifndef DEFAULT_BACKEND
#define DEFAULT_BACKEND "openblas"
#endif
#else
#define OPENBLAS_LIST ""
#endif
#ifndef DEFAULT_BACKEND
#define DEFAULT_BACKEND "portable"
#endif

const char *nb_version_string(void)
{
    return "nabla " NB_VERSION " (gemm: " ONEDNN_LIST OPENBLAS_LIST "portable; default "
           DEFAULT_BACKEND ")";
}

static int valid_backend(nb_gemm_backend backend)
{
    return (unsigned)backend < BACKEND_COUNT;
}

const char *nb_gemm_backend_name(nb_gemm_backend backend)
{
    return valid_backend(backend) ? backends[backend].name : "unknown";
}

int nb_gemm_backend_parse(const char *name)
{
    if (!name)
        return -1;
    for (int b = 0; b < BACKEND_COUNT; b++)
        if (strcmp(backends[b].name, name) == 0)
            return b;
    return -1;
}

int nb_gemm_available(nb_gemm_backend backend)
{
    if (backend == NB_GEMM_AUTO)
        return 1;
    return valid_backend(backend) && backends[backend].create != NULL;
}

const char *nb_gemm_name(const nb_gemm *gemm)
{
    return gemm ? gemm->impl->name : "none";
}

/* ---- contexts ----------------------------------------------------------------------------- */

static nb_gemm *gemm_start(nb_gemm_backend backend, int threads, nb_error *err)
{
    const backend_impl *impl = &backends[backend];
    nb_gemm *gemm = calloc(1, sizeof *gemm);
    if (!gemm || !(gemm->ctx = calloc((size_t)threads, sizeof *gemm->ctx))) {
        free(gemm);
        nb_error_set(err, NB_ENOMEM, "gemm: out of memory");
        return NULL;
    }
    gemm->backend = backend;
    gemm->impl = impl;
    gemm->threads = threads;
    for (int t = 0; t < threads; t++) {
        if (!(gemm->ctx[t] = impl->create(1, err))) {
            nb_gemm_free(gemm);
            return NULL;
        }
    }
    if (threads > 1 && !(gemm->pool = nb_pool_new(threads))) {
        nb_error_set(err, NB_ENOMEM, "gemm: cannot start %d threads", threads);
        nb_gemm_free(gemm);
        return NULL;
    }
    return gemm;
}

nb_gemm *nb_gemm_new(nb_gemm_backend backend, int threads, nb_error *err)
{
    if (!valid_backend(backend)) {
        nb_error_set(err, NB_EINVAL, "gemm: unknown backend %d", (int)backend);
        return NULL;
    }
    if (threads < 0) {
        nb_error_set(err, NB_EINVAL, "gemm: %d threads", threads);
        return NULL;
    }
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (int)cores : 1;
    }
    if (backend != NB_GEMM_AUTO) {
        if (!backends[backend].create) {
            nb_error_set(err, NB_ENOTSUP, "gemm: backend %s is not built in (have %s)",
                         backends[backend].name, nb_version_string());
            return NULL;
        }
        return gemm_start(backend, threads, err);
    }
    /* AUTO: a backend that is built in but fails to start (no CPU engine, out of memory)
     * hands over to the next; the last error is reported if none starts. */
    nb_gemm *gemm = NULL;
    for (size_t i = 0; i < sizeof preference / sizeof preference[0] && !gemm; i++)
        if (backends[preference[i]].create)
            gemm = gemm_start(preference[i], threads, err);
    return gemm;
}

void nb_gemm_free(nb_gemm *gemm)
{
    if (!gemm)
        return;
    nb_bf16_state_free(gemm->bf16); /* before the pool whose threads it used */
    nb_conv_state_free(gemm->conv); /* before the backend contexts whose engines it used */
    nb_pool_free(gemm->pool);
    for (int t = 0; t < gemm->threads; t++)
        if (gemm->ctx[t])
            gemm->impl->destroy(gemm->ctx[t]);
    free(gemm->ctx);
    free(gemm);
}

/* ---- the product -------------------------------------------------------------------------- */

typedef struct product {
    int transA, transB, M, N, K;
    float alpha;
    const float *A;
    int lda;
    const float *B;
    int ldb;
    float beta;
    float *C;
    int ldc;
    const float *bias; /* nb_gemm_linear's output pass */
    float *relu;
    int split_rows;    /* blocks of rows of C (else of columns) */
    int tasks;
    int dots;          /* computed as dot products (few rows) */
    nb_gemm *gemm;
} product;

/* c[j] += b[j], and y[j] = max(c[j], 0): the output pass of Linear and ReLU, without branches
 * so that they vectorise. */
static void add_bias(float *restrict c, const float *restrict b, int n)
{
    for (int j = 0; j < n; j++)
        c[j] += b[j];
}

static void relu_copy(float *restrict y, const float *restrict c, int n)
{
    for (int j = 0; j < n; j++)
        y[j] = c[j] > 0.0f ? c[j] : 0.0f;
}

void nb_linear_epilogue(float *C, int ldc, const float *bias, float *relu, int i0, int i1, int j0,
                        int j1)
{
    if (!bias && !relu)
        return;
    for (int i = i0; i < i1; i++) {
        float *c = C + (size_t)i * ldc;
        if (bias)
            add_bias(c + j0, bias + j0, j1 - j0);
        if (relu)
            relu_copy(relu + (size_t)i * ldc + j0, c + j0, j1 - j0);
    }
}

uint64_t nb_gemm_new_generation(nb_gemm *gemm)
{
    return gemm ? ++gemm->generations : 0;
}

struct nb_bf16_state **nb_gemm_bf16_state(nb_gemm *gemm)
{
    return &gemm->bf16;
}

struct nb_conv_state **nb_gemm_conv_state(nb_gemm *gemm)
{
    return &gemm->conv;
}

void *nb_gemm_thread_context(nb_gemm *gemm, int thread)
{
    return gemm && thread >= 0 && thread < gemm->threads ? gemm->ctx[thread] : NULL;
}

nb_gemm_backend nb_gemm_backend_of(const nb_gemm *gemm)
{
    return gemm ? gemm->backend : NB_GEMM_AUTO;
}

/* An M × N block of the product, on thread `thread`'s backend context. */
static void gemm_ctx_run(const product *p, int thread, int M, int N, const float *A,
                         const float *B, float *C)
{
    p->gemm->impl->run(p->gemm->ctx[thread], p->transA, p->transB, M, N, p->K, p->alpha, A,
                       p->lda, B, p->ldb, p->beta, C, p->ldc);
}

static void run_block(void *arg, int task, int thread);

/* Cuts the product into one block per thread along the longer side of C, when it is large
 * enough and each block keeps at least one full tile (16 rows or 32 columns). */
static void run_split(nb_gemm *gemm, product *p)
{
    double flops = 2.0 * p->M * (double)p->N * p->K;
    int threads = gemm->threads;
    p->gemm = gemm;
    p->dots = !p->transA && p->transB && p->alpha == 1.0f && p->M <= DOTS_MAX_ROWS;
    p->split_rows = p->M >= p->N && !p->dots;
    int64_t extent = p->split_rows ? p->M : p->N, align = p->split_rows ? 16 : 32;
    int tasks = (int)((extent + align - 1) / align);
    if (tasks > threads)
        tasks = threads;
    if (flops < (p->dots ? DOTS_SPLIT_MIN_FLOPS : SPLIT_MIN_FLOPS) || nb_pool_current_thread() != 0)
        tasks = 1;
    p->tasks = tasks;
    if (tasks == 1) {
        p->split_rows = 1;
        run_block(p, 0, nb_pool_current_thread());
        return;
    }
    nb_pool_run(gemm->pool, tasks, run_block, p);
}

/* Block `task` of the product: rows [i0, i1) or columns [j0, j1) of C, then the output pass
 * over that block while it is in this thread's cache. */
static void run_block(void *arg, int task, int thread)
{
    const product *p = arg;
    int64_t first, last;
    nb_task_range(p->split_rows ? p->M : p->N, p->tasks, task, p->split_rows ? 16 : 32, &first,
                  &last);
    if (first >= last)
        return;
    int i0 = p->split_rows ? (int)first : 0, i1 = p->split_rows ? (int)last : p->M;
    int j0 = p->split_rows ? 0 : (int)first, j1 = p->split_rows ? p->N : (int)last;
    /* op(A) rows i0.. start at row i0 of A, or at column i0 when A is stored transposed;
     * op(B) columns j0.. at column j0 of B, or at row j0 when B is stored transposed */
    const float *A = p->A + (p->transA ? (size_t)i0 : (size_t)i0 * p->lda);
    const float *B = p->B + (p->transB ? (size_t)j0 * p->ldb : (size_t)j0);
    float *C = p->C + (size_t)i0 * p->ldc + j0;
    if (p->dots)
        nb_gemm_dots(i1 - i0, j1 - j0, p->K, A, p->lda, B, p->ldb, p->beta, C, p->ldc);
    else
        gemm_ctx_run(p, thread, i1 - i0, j1 - j0, A, B, C);
    nb_linear_epilogue(p->C, p->ldc, p->bias, p->relu, i0, i1, j0, j1);
}

/* C = beta · C over M × N; beta = 0 stores zeros without reading C. */
static void scale_c(int M, int N, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) {
            memset(c, 0, (size_t)N * sizeof *c);
        } else if (beta != 1.0f) {
            for (int j = 0; j < N; j++)
                c[j] *= beta;
        }
    }
}

void nb_gemm_run(nb_gemm *gemm, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    /* row lengths of A (M × K or K × M), B (K × N or N × K) and C (M × N) as stored */
    int a_row = transA ? M : K, b_row = transB ? K : N;
    if (!gemm || M < 0 || N < 0 || K < 0)
        return;
    if (M == 0 || N == 0)
        return;
    if (!C || ldc < N)
        return;
    if (K == 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    if (!A || !B || lda < a_row || lda < 1 || ldb < b_row || ldb < 1)
        return;
    product p = {.transA = transA != 0, .transB = transB != 0, .M = M, .N = N, .K = K,
                 .alpha = alpha, .A = A, .lda = lda, .B = B, .ldb = ldb, .beta = beta, .C = C,
                 .ldc = ldc};
    run_split(gemm, &p);
}

void nb_gemm_linear(nb_gemm *gemm, int M, int N, int K, const float *A, int lda,
                    const float *B, int ldb, const float *bias, float *C, int ldc, float *relu)
{
    product p = {.transA = 0, .transB = 1, .M = M, .N = N, .K = K, .alpha = 1.0f, .A = A,
                 .lda = lda, .B = B, .ldb = ldb, .beta = 0.0f, .C = C, .ldc = ldc,
                 .bias = bias, .relu = relu};
    if (!gemm || M <= 0 || N <= 0 || K <= 0 || !A || !B || !C)
        return;
    run_split(gemm, &p);
}

int nb_gemm_threads(const nb_gemm *gemm)
{
    return gemm ? gemm->threads : 1;
}

void nb_gemm_parallel(nb_gemm *gemm, int tasks, nb_task_fn *fn, void *arg)
{
    nb_pool_run(gemm ? gemm->pool : NULL, tasks, fn, arg);
}
