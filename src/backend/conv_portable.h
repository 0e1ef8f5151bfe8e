/* Internal to the portable image kernels (conv.h's nb_conv_portable), one file per concern:
 *   conv_portable.c       convolution as im2col + the backend's matrix product, and the table
 *   conv_portable_pool.c  max and average pooling, plain loops over planes
 *   conv_portable_bn.c    batch normalisation, plain loops over channels
 * The entries the table takes from the last two, with nb_conv_kernels' signatures. Work is
 * split across the context's thread pool; every sum has a fixed order for a given thread
 * count, so results do not depend on which thread runs which task. */
#ifndef NB_CONV_PORTABLE_H
#define NB_CONV_PORTABLE_H

#include "backend/conv.h"

/* One pooling pass over the planes (n, c) of s: the arrays of the kernel that runs it
 * (forward: x → y and argmax; backward: dy and argmax_in → dx, written or added to) and the
 * kernel on one plane. nb_pool_run_planes deals the planes in blocks to ctx's threads. */
typedef struct nb_pool_job nb_pool_job;
struct nb_pool_job {
    const nb_conv_shape *s;
    const float *x, *dy;
    float *y, *dx;
    const int32_t *argmax_in;
    int32_t *argmax;
    int include_pad, tasks;
    int write; /* backward: dx is overwritten (beta = 0), not added to */
    void (*plane)(const nb_pool_job *j, int64_t plane);
};
void nb_pool_run_planes(nb_gemm *ctx, nb_pool_job *j,
                        void (*plane)(const nb_pool_job *, int64_t));

void nb_portable_max_pool2d_forward(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                                    float *y, int32_t *argmax);
void nb_portable_max_pool2d_backward(nb_gemm *ctx, const nb_conv_shape *s, const float *dy,
                                     const int32_t *argmax, float beta, float *dx);
void nb_portable_avg_pool2d_forward(nb_gemm *ctx, const nb_conv_shape *s, int include_pad,
                                    const float *x, float *y);
void nb_portable_avg_pool2d_backward(nb_gemm *ctx, const nb_conv_shape *s, int include_pad,
                                     const float *dy, float beta, float *dx);
/* Batch norm's loops over one run (the HW consecutive values of one sample and channel),
 * which an implementation may replace (image_avx2.c: vectors) while keeping the per-channel
 * arithmetic of conv_portable_bn.c (sums of runs in double, the variance in two passes, the
 * coefficients of y and dx) — its nb_bn_forward_with / nb_bn_backward_with. */
typedef struct nb_bn_runs {
    float (*sum)(const float *x, int64_t n);                        /* Σ x */
    float (*sq_centred)(const float *x, float m, int64_t n);        /* Σ (x − m)² */
    void (*dy_sums)(const float *x, const float *dy, float m, int64_t n, float *sum_dy,
                    float *sum_dy_xc);                              /* Σ dy, Σ dy·(x − m) */
    /* out = a·u + c·v + b (v NULL: a·u + b), or out += that when accumulate */
    void (*affine)(const float *u, const float *v, float a, float c, float b, float *out,
                   int64_t n, int accumulate);
} nb_bn_runs;

void nb_bn_forward_with(const nb_bn_runs *runs, nb_gemm *ctx, const nb_bn_shape *s,
                        const float *x, const float *gamma, const float *beta, float eps,
                        int batch_stats, const float *running_mean, const float *running_var,
                        float *y, float *mean, float *invstd, float *var);
void nb_bn_backward_with(const nb_bn_runs *runs, nb_gemm *ctx, const nb_bn_shape *s,
                         const float *x, const float *dy, const float *gamma, const float *mean,
                         const float *invstd, int batch_stats, float dx_beta, float *dx,
                         float param_beta, float *dgamma, float *dbeta);

void nb_portable_batch_norm_forward(nb_gemm *ctx, const nb_bn_shape *s, const float *x,
                                    const float *gamma, const float *beta, float eps,
                                    int batch_stats, const float *running_mean,
                                    const float *running_var, float *y, float *mean,
                                    float *invstd, float *var);
void nb_portable_batch_norm_backward(nb_gemm *ctx, const nb_bn_shape *s, const float *x,
                                     const float *dy, const float *gamma, const float *mean,
                                     const float *invstd, int batch_stats, float dx_beta,
                                     float *dx, float param_beta, float *dgamma, float *dbeta);

#endif
