/* The matrix-product front end: C = alpha · op(A) · op(B) + beta · C, row-major.
 *
 * Three interchangeable backends sit behind one table, indexed by nb_gemm_backend:
 *   onednn    oneDNN matmul primitives, cached per shape (gemm_onednn.c)
 *   openblas  cblas_sgemm (gemm_openblas.c)
 *   portable  blocked, packed C with run-time-dispatched SIMD micro-kernels (gemm_portable.c)
 * A backend that is not compiled in has no constructor in the table. NB_GEMM_AUTO takes the
 * first of `preference` that is built in and starts.
 *
 * The thread budget belongs to nabla: `threads` (0 = one per online core) is passed to the
 * backend, which caps its own library's pool to it on every call, and the oneDNN backend also
 * caps OpenBLAS to one thread so that two pools never spin on the same cores.
 *
 * Degenerate products are settled here, identically for every backend: nothing to do when
 * M or N is 0; when K = 0 or alpha = 0 the product vanishes and C = beta · C (C = 0 without
 * reading it when beta = 0). nb_gemm_run has no status to return, so a call with negative
 * sizes, leading dimensions shorter than a row or NULL pointers is ignored and C is left
 * untouched.
 */
#include "nabla.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each backend: a constructor taking the resolved thread count (≥ 1), a destructor, and the
 * product on already validated, non-degenerate arguments. Defined in gemm_<name>.c. */
typedef void *backend_new_fn(int threads, nb_error *err);
typedef void backend_free_fn(void *ctx);
typedef void backend_run_fn(void *ctx, int transA, int transB, int M, int N, int K,
                            float alpha, const float *A, int lda, const float *B, int ldb,
                            float beta, float *C, int ldc);

backend_new_fn nb_gemm_portable_new;
backend_free_fn nb_gemm_portable_free;
backend_run_fn nb_gemm_portable_run;
#ifdef NB_HAVE_OPENBLAS
backend_new_fn nb_gemm_openblas_new;
backend_free_fn nb_gemm_openblas_free;
backend_run_fn nb_gemm_openblas_run;
#endif
#ifdef NB_HAVE_ONEDNN
backend_new_fn nb_gemm_onednn_new;
backend_free_fn nb_gemm_onednn_free;
backend_run_fn nb_gemm_onednn_run;
#endif

typedef struct backend_impl {
    const char *name;
    backend_new_fn *create; /* NULL when not compiled in */
    backend_free_fn *destroy;
    backend_run_fn *run;
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
    void *ctx; /* owned, freed by impl->destroy */
};

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
    nb_gemm *gemm = malloc(sizeof *gemm);
    if (!gemm) {
        nb_error_set(err, NB_ENOMEM, "gemm: out of memory");
        return NULL;
    }
    gemm->ctx = impl->create(threads, err);
    if (!gemm->ctx) {
        free(gemm);
        return NULL;
    }
    gemm->backend = backend;
    gemm->impl = impl;
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
    gemm->impl->destroy(gemm->ctx);
    free(gemm);
}

/* ---- the product -------------------------------------------------------------------------- */

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
    gemm->impl->run(gemm->ctx, transA != 0, transB != 0, M, N, K, alpha, A, lda, B, ldb, beta,
                    C, ldc);
}
