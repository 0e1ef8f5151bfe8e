/*
 * nabla/backend.h — the matrix-product backend (src/backend/).
 * Compute kernels asked for by the graph; nothing here knows of nodes.
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_BACKEND_H
#define NABLA_BACKEND_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Matrix products. C = alpha · op(A) · op(B) + beta · C, row-major, op(X) = X or Xᵀ.
 * The backend is chosen at build time (the fastest available) and can be overridden at run
 * time by passing a backend to nb_gemm_new (the CLI: --gemm NAME or NABLA_GEMM=NAME).
 * ---------------------------------------------------------------------------------------- */

typedef enum nb_gemm_backend {
    NB_GEMM_AUTO = 0,
    NB_GEMM_ONEDNN,
    NB_GEMM_OPENBLAS,
    NB_GEMM_PORTABLE
} nb_gemm_backend;

typedef struct nb_gemm nb_gemm;

/* Creates a backend context (caches oneDNN primitives per shape). Caller owns it; NULL with
 * err set if the backend is not built in. threads = 0 means one per core. */
nb_gemm *nb_gemm_new(nb_gemm_backend backend, int threads, nb_error *err);
void nb_gemm_free(nb_gemm *gemm);
/* "onednn", "openblas" or "portable". Static string. */
const char *nb_gemm_name(const nb_gemm *gemm);
const char *nb_gemm_backend_name(nb_gemm_backend backend);
/* Parses "auto", "onednn", "openblas", "portable"; returns -1 if unknown. */
int nb_gemm_backend_parse(const char *name);
/* Whether the backend was compiled in. */
int nb_gemm_available(nb_gemm_backend backend);
/* Row-major sgemm: A is M×K (or K×M when transA), B is K×N (or N×K when transB), C is M×N.
 * lda, ldb, ldc are row strides in elements. */
void nb_gemm_run(nb_gemm *gemm, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_BACKEND_H */
