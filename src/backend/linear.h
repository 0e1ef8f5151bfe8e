/* Internal: Linear's kernels — the three matrix products of a fully connected layer — as the
 * graph asks the compute backend for them, in a precision (docs/lecture.md §4):
 *
 *   forward           Y = X Wᵀ + b, then R = max(Y, 0) when a ReLU is fused behind it
 *   backward, data    dX = dY W   + beta_x · dX
 *   backward, weights dW = dYᵀ X  + beta_w · dW
 *
 * X (N, in), W (out, in), b (out), Y and R (N, out), all row-major fp32. In NB_PRECISION_FP32
 * the products run through the context's fp32 library (gemm.c); in NB_PRECISION_BF16 with
 * bf16 operands and fp32 accumulation (bf16_linear.c), falling back to fp32 block by block
 * where bf16 cannot run (nb_linear_kernels says so). Bias, ReLU and the results stay fp32.
 *
 * Caching, which makes the bf16 path pay: the context keeps
 *   - a bf16 copy of each weight matrix it was given, keyed by W.values and valid while
 *     W.generation stays the same — the caller moves the generation on whenever the values
 *     change (the optimiser's step, a load), never on a read;
 *   - per layer (`layer`, any address that names it for the caller), the bf16 rounding of X
 *     from the forward pass and of dY, so that backward rounds neither again.
 * A backend for another device implements the same three functions with the same caching.
 * Nothing here knows about graphs or nodes. */
#ifndef NB_LINEAR_H
#define NB_LINEAR_H

#include "nabla.h"

#include <stdint.h>

/* A weight operand: its values, and a number that changes whenever they do. */
typedef struct nb_weights {
    const float *values;
    uint64_t generation;
    /* a hint: the same generation will serve many products (evaluation), so a layout that
     * costs more to make but runs faster pays (bf16: oneDNN's blocked weights) */
    int reused;
} nb_weights;

typedef struct nb_linear_shape {
    const void *layer; /* names the layer whose activations the context may keep */
    int N, out, in;
} nb_linear_shape;

void nb_linear_forward(nb_gemm *ctx, nb_precision p, const nb_linear_shape *s, const float *X,
                       const nb_weights *W, const float *bias, float *Y, float *R);
/* Either product may be skipped: dX or dW NULL. X is the forward pass's input. */
void nb_linear_backward(nb_gemm *ctx, nb_precision p, const nb_linear_shape *s, const float *X,
                        const nb_weights *W, const float *dY, float beta_x, float *dX,
                        float beta_w, float *dW);

/* A generation number this context never handed out before (never 0): the caller's weights
 * take a new one whenever they change. Unique per context, so that callers sharing it cannot
 * confuse each other's weights, even at a reused address. */
uint64_t nb_linear_new_generation(nb_gemm *ctx);

/* The context drops what it keeps for `layer` (its caller is going away). */
void nb_linear_release(nb_gemm *ctx, const void *layer);

/* Forget every layer's kept activations (the caller's buffers moved: a new batch size). */
void nb_linear_forget(nb_gemm *ctx);

/* Starts the context's bf16 state now (NB_ENOTSUP with the reason where bf16 cannot run) so
 * that a caller can refuse bf16 up front rather than fall back later. */
nb_status nb_linear_bf16_start(nb_gemm *ctx, nb_error *err);

/* What ran the bf16 products (see nb_graph_kernels in nabla.h), into buf; returns buf. */
char *nb_linear_kernels(nb_gemm *ctx, nb_precision p, char *buf, size_t size);

#endif
