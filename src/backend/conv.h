/* Internal: the image kernels of the compute backend — 2-D convolution, max/average pooling
 * and batch normalisation — on plain NCHW float arrays (PyTorch's layout), forward and
 * backward. The ops in src/ops/op_conv.c, op_pool.c and op_batchnorm.c call only these.
 *
 * Every kernel takes the backend context (the nb_gemm of the graph: its thread pool and its
 * per-thread matrix-product contexts) and a precision. The functions declared here are the
 * front end (conv.c): they pick an implementation for the context and precision and fall back
 * to the portable one (conv_portable.c: im2col + nb_gemm_run; conv_portable_pool.c and
 * conv_portable_bn.c: plain loops for pooling and batch norm), which implements everything in
 * fp32. bf16 requested of a kernel that has no bf16 implementation runs in fp32 (nabla.h says
 * so for the user: --precision bf16 applies to Linear's products; convolution, pooling and
 * batch norm stay fp32).
 *
 * Adding an implementation (e.g. oneDNN primitives, conv_onednn.c): fill an nb_conv_kernels
 * table, return it from conv.c's choose() for the contexts it serves; a NULL entry, or an
 * entry returning NB_ENOTSUP before it wrote anything, falls back to the portable kernel.
 * Per-shape state (cached primitives) lives in the context, created on first use; scratch
 * memory comes from the caller as `ws` of nb_conv2d_workspace floats, so that a training step
 * allocates nothing: the graph sizes one shared workspace when it is prepared.
 *
 * Conventions, checked against torch.nn.functional:
 *   x  [N, C, H, W]           input
 *   w  [K, C/groups, R, S]    weights (cross-correlation: no kernel flip)
 *   y  [N, K, P, Q]           P = ⌊(H + pad_top + pad_bottom − dil_h(R − 1) − 1)/stride_h⌋ + 1
 * pad_h / pad_w are the top / left padding; the bottom / right padding is whatever P and Q
 * imply (PyTorch's symmetric padding, or padding='same' with an even kernel, which pads one
 * more at the bottom/right). Gradients with a `beta`: beta = 0 writes, beta = 1 accumulates. */
#ifndef NB_CONV_H
#define NB_CONV_H

#include "nabla.h"

typedef struct nb_conv_shape {
    int64_t N;                   /* samples */
    int64_t C, H, W;             /* input channels, height, width */
    int64_t K, R, S;             /* output channels, kernel height, width (pooling: K = C) */
    int64_t P, Q;                /* output height, width */
    int64_t stride_h, stride_w;
    int64_t pad_h, pad_w;        /* top, left */
    int64_t dil_h, dil_w;
    int64_t groups;              /* divides C and K (pooling: 1, unused) */
} nb_conv_shape;

/* Batch norm over x [N, C, HW] (HW = 1 for [N, C] inputs): statistics per channel over the
 * N·HW values of that channel. */
typedef struct nb_bn_shape {
    int64_t N, C, HW;
} nb_bn_shape;

/* ---- convolution -------------------------------------------------------------------------- */

/* Floats of scratch the three convolution kernels need for shape s on ctx (the largest of
 * them). */
size_t nb_conv2d_workspace(const nb_gemm *ctx, const nb_conv_shape *s, nb_precision p);

/* y = x ⋆ w + bias:  y[n,k,p,q] = b[k] + Σ_{c∈group(k), r, s} w[k,c',r,s] ·
 *                                  x[n, c, p·sh − ph + r·dh, q·sw − pw + s·dw]   (0 outside) */
void nb_conv2d_forward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s, const float *x,
                       const float *w, const float *bias, float *y, float *ws);
/* dx = beta·dx + dy ⋆ᵀ w   (the transposed convolution: every x element receives the
 * weights of the outputs it fed) */
void nb_conv2d_backward_data(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                             const float *dy, const float *w, float beta, float *dx, float *ws);
/* dw = beta·dw + Σ_n dy[n] ⋆ x[n]  (as a correlation of the input with the output gradient);
 * dbias (may be NULL) = bias_beta·dbias + Σ_{n,p,q} dy[n,k,p,q]. */
void nb_conv2d_backward_weights(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                                const float *x, const float *dy, float beta, float *dw,
                                float bias_beta, float *dbias, float *ws);

/* Both of the above in one call (dw not NULL), which an implementation may run faster than
 * two (conv_onednn_run.c: dy reordered into the blocked layout once for both); the same results
 * as nb_conv2d_backward_data then nb_conv2d_backward_weights. */
void nb_conv2d_backward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s, const float *x,
                        const float *dy, const float *w, float dx_beta, float *dx, float beta,
                        float *dw, float bias_beta, float *dbias, float *ws);

/* ---- pooling (s->K = s->C; R × S windows) -------------------------------------------------- */

/* y = the maximum of each window, padding counting as −∞; argmax[n,c,p,q] = the flat index
 * h·W + w in x[n,c] of the element chosen: the first maximum in row-major window order
 * (PyTorch's CPU rule), a NaN winning over numbers. argmax may be NULL (inference: nothing
 * kept for backward). */
void nb_max_pool2d_forward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                           const float *x, float *y, int32_t *argmax);
/* dx = beta·dx + scatter: dx[n,c,argmax] += dy[n,c,p,q] (overlapping windows add up); beta
 * is 0 (write: elements no window chose become 0) or 1 (accumulate) */
void nb_max_pool2d_backward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                            const float *dy, const int32_t *argmax, float beta, float *dx);
/* y = the mean of each window: the sum over its elements inside x divided by R·S when
 * count_include_pad (PyTorch's default), else by the number of elements inside x. */
void nb_avg_pool2d_forward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                           int count_include_pad, const float *x, float *y);
/* dx = beta·dx + Σ_windows dy / divisor over each window (beta 0 or 1, as max pooling). */
void nb_avg_pool2d_backward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                            int count_include_pad, const float *dy, float beta, float *dx);

/* ---- batch normalisation -------------------------------------------------------------------- */

/* y = γ·(x − μ)·σ⁻¹ + β per channel. batch_stats: μ and σ² are the batch's mean and biased
 * variance (σ⁻¹ = 1/√(σ² + eps)); written to mean, invstd and var (var may be NULL).
 * Otherwise μ = running_mean, σ² = running_var, and mean/invstd receive those (var is not
 * written). */
void nb_batch_norm_forward(nb_gemm *ctx, nb_precision p, const nb_bn_shape *s, const float *x,
                           const float *gamma, const float *beta, float eps, int batch_stats,
                           const float *running_mean, const float *running_var, float *y,
                           float *mean, float *invstd, float *var);
/* x̂ = (x − μ)·σ⁻¹ with the forward's mean/invstd. dγ = Σ dy·x̂, dβ = Σ dy (written when not
 * NULL, with param_beta); dx (may be NULL) = dx_beta·dx +
 *   batch_stats:  γσ⁻¹/M · (M·dy − dβ − x̂·dγ)     (M = N·HW: μ and σ depend on every x)
 *   otherwise:    γσ⁻¹·dy                          (running statistics are constants) */
void nb_batch_norm_backward(nb_gemm *ctx, nb_precision p, const nb_bn_shape *s,
                            const float *x, const float *dy, const float *gamma,
                            const float *mean, const float *invstd, int batch_stats,
                            float dx_beta, float *dx, float param_beta, float *dgamma,
                            float *dbeta);

/* ---- implementations ----------------------------------------------------------------------- */

/* One implementation of the kernels above, with the same arguments. conv.c holds the list and
 * chooses per call; a NULL entry falls back to the portable one. `supports` says whether the
 * implementation serves this context and precision at all (NULL: always). */
typedef struct nb_conv_kernels {
    const char *name;
    int (*supports)(const nb_gemm *ctx, nb_precision p);
    /* whether the convolution entries run shape s (NULL: every shape); one that serves only
     * some leaves the others to the next implementation */
    int (*conv2d_serves)(const nb_conv_shape *s);
    size_t (*conv2d_workspace)(const nb_gemm *ctx, const nb_conv_shape *s);
    void (*conv2d_forward)(nb_gemm *ctx, const nb_conv_shape *s, const float *x, const float *w,
                           const float *bias, float *y, float *ws);
    void (*conv2d_backward_data)(nb_gemm *ctx, const nb_conv_shape *s, const float *dy,
                                 const float *w, float beta, float *dx, float *ws);
    void (*conv2d_backward_weights)(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                                    const float *dy, float beta, float *dw, float bias_beta,
                                    float *dbias, float *ws);
    /* optional: data and weights at once (NULL: the two entries above, one after the other) */
    void (*conv2d_backward)(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                            const float *dy, const float *w, float dx_beta, float *dx,
                            float beta, float *dw, float bias_beta, float *dbias, float *ws);
    void (*max_pool2d_forward)(nb_gemm *ctx, const nb_conv_shape *s, const float *x, float *y,
                               int32_t *argmax);
    void (*max_pool2d_backward)(nb_gemm *ctx, const nb_conv_shape *s, const float *dy,
                                const int32_t *argmax, float beta, float *dx);
    void (*avg_pool2d_forward)(nb_gemm *ctx, const nb_conv_shape *s, int count_include_pad,
                               const float *x, float *y);
    void (*avg_pool2d_backward)(nb_gemm *ctx, const nb_conv_shape *s, int count_include_pad,
                                const float *dy, float beta, float *dx);
    void (*batch_norm_forward)(nb_gemm *ctx, const nb_bn_shape *s, const float *x,
                               const float *gamma, const float *beta, float eps,
                               int batch_stats, const float *running_mean,
                               const float *running_var, float *y, float *mean, float *invstd,
                               float *var);
    void (*batch_norm_backward)(nb_gemm *ctx, const nb_bn_shape *s, const float *x,
                                const float *dy, const float *gamma, const float *mean,
                                const float *invstd, int batch_stats, float dx_beta, float *dx,
                                float param_beta, float *dgamma, float *dbeta);
} nb_conv_kernels;

/* The name of the implementation that runs 2-D convolution forward on ctx at precision p
 * ("onednn", "portable"): for tests and benchmarks. */
const char *nb_conv2d_implementation(const nb_gemm *ctx, nb_precision p);
/* The one that runs the forward of shape s ("avx2" for few input channels on the fast
 * backends) */
const char *nb_conv2d_implementation_for(const nb_gemm *ctx, nb_precision p,
                                         const nb_conv_shape *s);

/* The portable fp32 implementation (conv_portable.c): every entry filled. */
extern const nb_conv_kernels nb_conv_portable;
/* Batch norm and 2×2 max pooling forward in AVX2 + FMA (image_avx2.c), and convolution
 * forward and backward weights for few input channels (conv_avx2_direct.c, conv2d_serves
 * says which shapes), for the contexts of the non-portable backends on CPUs with both; other
 * entries NULL. */
extern const nb_conv_kernels nb_conv_avx2;
#ifdef NB_HAVE_ONEDNN
/* oneDNN convolution primitives (conv_onednn.c), for contexts on the onednn backend:
 * convolution only; pooling and batch norm entries are NULL. */
extern const nb_conv_kernels nb_conv_onednn;
#endif

#endif
