/* Linear's kernels (backend/linear.h): the precision the caller asks for picks the
 * implementation — bf16 operands through bf16_linear.c, else (or where that cannot run) the
 * context's fp32 products with the output pass fused (gemm.c). */
#include "backend/backend.h"
#include "backend/bf16.h"
#include "backend/gemm_pool.h"
#include "backend/linear.h"

#include <stdio.h>

void nb_linear_forward(nb_gemm *ctx, nb_precision p, const nb_linear_shape *s, const float *X,
                       const nb_weights *W, const float *bias, float *Y, float *R)
{
    if (p == NB_PRECISION_BF16 && nb_bf16_linear_forward(ctx, s, X, W, bias, Y, R))
        return;
    nb_gemm_linear(ctx, s->N, s->out, s->in, X, s->in, W->values, s->in, bias, Y, s->out, R);
}

void nb_linear_backward(nb_gemm *ctx, nb_precision p, const nb_linear_shape *s, const float *X,
                        const nb_weights *W, const float *dY, float beta_x, float *dX,
                        float beta_w, float *dW)
{
    if (p == NB_PRECISION_BF16 &&
        nb_bf16_linear_backward(ctx, s, X, W, dY, beta_x, dX, beta_w, dW))
        return;
    int N = s->N, in = s->in, out = s->out;
    if (dX) /* dX = dY W */
        nb_gemm_run(ctx, 0, 0, N, in, out, 1.0f, dY, out, W->values, in, beta_x, dX, in);
    if (dW) /* dW = dYᵀ X */
        nb_gemm_run(ctx, 1, 0, out, in, N, 1.0f, dY, out, X, in, beta_w, dW, in);
}

uint64_t nb_linear_new_generation(nb_gemm *ctx)
{
    return nb_gemm_new_generation(ctx);
}

void nb_linear_release(nb_gemm *ctx, const void *layer)
{
    nb_bf16_release(ctx, layer);
}

void nb_linear_forget(nb_gemm *ctx)
{
    nb_bf16_forget(ctx);
}

nb_status nb_linear_bf16_start(nb_gemm *ctx, nb_error *err)
{
    return nb_bf16_start(ctx, err);
}

char *nb_linear_kernels(nb_gemm *ctx, nb_precision p, char *buf, size_t size)
{
    if (p != NB_PRECISION_BF16) {
        snprintf(buf, size, "fp32");
        return buf;
    }
    return nb_bf16_kernels(ctx, buf, size);
}
