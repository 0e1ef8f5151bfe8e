/* Internal: the compute backends' interface, declared once.
 *
 * Every fp32 matrix-product library behind the gemm front end (gemm.c) implements the same
 * three functions, each in its own file gemm_<name>.c:
 *   new   a single-threaded context (threads is always 1: nabla's pool owns the threads,
 *         gemm_pool.c), NULL with err set when the library cannot start;
 *   free  the context (NULL-safe);
 *   run   C = alpha · op(A) · op(B) + beta · C, row-major, on arguments that gemm.c has
 *         already validated and that are not degenerate (M, N, K ≥ 1, alpha ≠ 0).
 * A library that is not compiled in declares nothing here and has no entry in gemm.c's table.
 *
 * A context is used by one thread at a time. */
#ifndef NB_BACKEND_H
#define NB_BACKEND_H

#include "nabla.h"

typedef void *nb_backend_new_fn(int threads, nb_error *err);
typedef void nb_backend_free_fn(void *ctx);
typedef void nb_backend_run_fn(void *ctx, int transA, int transB, int M, int N, int K,
                               float alpha, const float *A, int lda, const float *B, int ldb,
                               float beta, float *C, int ldc);

/* Portable C (gemm_portable.c): always built; the others' fallback. */
nb_backend_new_fn nb_gemm_portable_new;
nb_backend_free_fn nb_gemm_portable_free;
nb_backend_run_fn nb_gemm_portable_run;
/* The same with one micro-kernel forced ("avx512", "avx2", "plain"), so that tests and
 * benchmarks can compare them on one machine; NULL with err set when the CPU lacks it. */
void *nb_gemm_portable_new_isa(const char *isa, nb_error *err);
/* C = A · Bᵀ + beta · C as dot products of contiguous rows (A M × K, B N × K): the few-rows
 * case, where packing the whole B per call would cost more than the product. */
void nb_gemm_dots(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc);

/* Linear's output pass over rows [i0, i1) × columns [j0, j1) of C (row stride ldc), run by
 * the thread that computed that block while it is in its cache, for fp32 and bf16 products
 * alike: C += bias (per column) when bias is not NULL, then relu = max(C, 0) (same stride)
 * when relu is not NULL. */
void nb_linear_epilogue(float *C, int ldc, const float *bias, float *relu, int i0, int i1, int j0,
                        int j1);

/* A number the context never handed out before, from 1 (nb_linear_new_generation). */
uint64_t nb_gemm_new_generation(nb_gemm *gemm);

/* The bf16 state a context carries (bf16_linear.c): made on first use, freed with it. */
struct nb_bf16_state;
struct nb_bf16_state **nb_gemm_bf16_state(nb_gemm *gemm);
void nb_bf16_state_free(struct nb_bf16_state *st);

/* The oneDNN image kernels' state (conv_onednn_cache.c): made on first use, freed with the context
 * (NULL-safe; a no-op without oneDNN). */
struct nb_conv_state;
struct nb_conv_state **nb_gemm_conv_state(nb_gemm *gemm);
void nb_conv_state_free(struct nb_conv_state *st);
/* The backend context of pool thread `thread` (NULL outside [0, threads)) and the backend the
 * context runs (never NB_GEMM_AUTO for a started context). */
void *nb_gemm_thread_context(nb_gemm *gemm, int thread);
nb_gemm_backend nb_gemm_backend_of(const nb_gemm *gemm);

#ifdef NB_HAVE_OPENBLAS
nb_backend_new_fn nb_gemm_openblas_new;
nb_backend_free_fn nb_gemm_openblas_free;
nb_backend_run_fn nb_gemm_openblas_run;
#endif

#ifdef NB_HAVE_ONEDNN
nb_backend_new_fn nb_gemm_onednn_new;
nb_backend_free_fn nb_gemm_onednn_free;
nb_backend_run_fn nb_gemm_onednn_run;
/* A oneDNN gemm context's engine and stream (as dnnl_engine_t, dnnl_stream_t), for the other
 * oneDNN kernels run on the same thread (conv_onednn_run.c); caps oneDNN's OpenMP team and
 * OpenBLAS to one thread, as before a product. */
void nb_gemm_onednn_enter(void *ctx, void **engine, void **stream);
#endif

#endif
