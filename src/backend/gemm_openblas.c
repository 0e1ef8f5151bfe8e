/* The OpenBLAS matrix-product backend: cblas_sgemm in row-major order.
 *
 * OpenBLAS keeps one process-wide thread pool. openblas_set_num_threads(threads) is applied
 * when the context is created and re-applied before a call whenever something else (another
 * context, the oneDNN backend, the program itself) changed it, so the count this context was
 * made with is the count its products run with. gemm.c makes one context per thread of
 * nabla's pool with threads = 1, and splits products across the pool itself.
 */
#ifdef NB_HAVE_OPENBLAS

#include "backend/backend.h"

#include <cblas.h>
#include <stdlib.h>

typedef struct openblas {
    int threads;
} openblas;

static void cap_threads(int threads)
{
    if (openblas_get_num_threads() != threads)
        openblas_set_num_threads(threads);
}

void *nb_gemm_openblas_new(int threads, nb_error *err)
{
    openblas *o = malloc(sizeof *o);
    if (!o) {
        nb_error_set(err, NB_ENOMEM, "gemm (openblas): out of memory");
        return NULL;
    }
    o->threads = threads;
    cap_threads(threads);
    return o;
}

void nb_gemm_openblas_free(void *ctx)
{
    free(ctx);
}

void nb_gemm_openblas_run(void *ctx, int transA, int transB, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc)
{
    const openblas *o = ctx;
    cap_threads(o->threads);
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
}

#else
/* ISO C forbids an empty translation unit. */
typedef int nb_gemm_openblas_not_built;
#endif
