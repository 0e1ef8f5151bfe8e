/* The front end of the image kernels (conv.h): chooses an implementation per call and falls
 * back to the portable one for whatever a faster implementation leaves out. */
#include "backend/conv.h"

/* Implementations in order of preference; the portable one, last, serves everything. A new
 * implementation (oneDNN primitives, a GPU) goes before it. */
static const nb_conv_kernels *const impls[] = {
    &nb_conv_avx2, /* its convolutions serve few input channels only (conv2d_serves) */
#ifdef NB_HAVE_ONEDNN
    &nb_conv_onednn,
#endif
    &nb_conv_portable};

enum { IMPL_COUNT = sizeof impls / sizeof impls[0] };

typedef enum kernel {
    K_CONV_FWD, K_CONV_BWD_DATA, K_CONV_BWD_WEIGHTS, K_MAX_FWD, K_MAX_BWD, K_AVG_FWD,
    K_AVG_BWD, K_BN_FWD, K_BN_BWD
} kernel;

static int has(const nb_conv_kernels *k, kernel which)
{
    switch (which) {
    case K_CONV_FWD: return k->conv2d_forward != NULL;
    case K_CONV_BWD_DATA: return k->conv2d_backward_data != NULL;
    case K_CONV_BWD_WEIGHTS: return k->conv2d_backward_weights != NULL;
    case K_MAX_FWD: return k->max_pool2d_forward != NULL;
    case K_MAX_BWD: return k->max_pool2d_backward != NULL;
    case K_AVG_FWD: return k->avg_pool2d_forward != NULL;
    case K_AVG_BWD: return k->avg_pool2d_backward != NULL;
    case K_BN_FWD: return k->batch_norm_forward != NULL;
    case K_BN_BWD: return k->batch_norm_backward != NULL;
    }
    return 0;
}

/* The first implementation that serves ctx at precision p and has the kernel, for
 * convolution shape s (NULL: the implementation that serves every shape). bf16 falls back to
 * fp32 where none has bf16. */
static const nb_conv_kernels *choose_for(const nb_gemm *ctx, nb_precision p, kernel which,
                                         const nb_conv_shape *s)
{
    int conv = which <= K_CONV_BWD_WEIGHTS;
    for (int i = 0; i < IMPL_COUNT; i++) {
        const nb_conv_kernels *k = impls[i];
        if (conv && k->conv2d_serves && (!s || !k->conv2d_serves(s)))
            continue;
        if (has(k, which) && (!k->supports || k->supports(ctx, p)))
            return k;
    }
    return &nb_conv_portable;
}

static const nb_conv_kernels *choose(const nb_gemm *ctx, nb_precision p, kernel which)
{
    return choose_for(ctx, p, which, NULL);
}

const char *nb_conv2d_implementation(const nb_gemm *ctx, nb_precision p)
{
    return choose(ctx, p, K_CONV_FWD)->name;
}

const char *nb_conv2d_implementation_for(const nb_gemm *ctx, nb_precision p,
                                         const nb_conv_shape *s)
{
    return choose_for(ctx, p, K_CONV_FWD, s)->name;
}

size_t nb_conv2d_workspace(const nb_gemm *ctx, const nb_conv_shape *s, nb_precision p)
{
    /* every implementation that may run one of the three kernels gets enough */
    size_t most = 0;
    const nb_conv_kernels *k[3] = {choose_for(ctx, p, K_CONV_FWD, s),
                                   choose_for(ctx, p, K_CONV_BWD_DATA, s),
                                   choose_for(ctx, p, K_CONV_BWD_WEIGHTS, s)};
    for (int i = 0; i < 3; i++) {
        const nb_conv_kernels *impl = k[i]->conv2d_workspace ? k[i] : &nb_conv_portable;
        size_t n = impl->conv2d_workspace(ctx, s);
        most = n > most ? n : most;
    }
    return most;
}

void nb_conv2d_forward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s, const float *x,
                       const float *w, const float *bias, float *y, float *ws)
{
    choose_for(ctx, p, K_CONV_FWD, s)->conv2d_forward(ctx, s, x, w, bias, y, ws);
}

void nb_conv2d_backward_data(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                             const float *dy, const float *w, float beta, float *dx, float *ws)
{
    choose_for(ctx, p, K_CONV_BWD_DATA, s)->conv2d_backward_data(ctx, s, dy, w, beta, dx, ws);
}

void nb_conv2d_backward_weights(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                                const float *x, const float *dy, float beta, float *dw,
                                float bias_beta, float *dbias, float *ws)
{
    choose_for(ctx, p, K_CONV_BWD_WEIGHTS, s)
        ->conv2d_backward_weights(ctx, s, x, dy, beta, dw, bias_beta, dbias, ws);
}

void nb_conv2d_backward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s, const float *x,
                        const float *dy, const float *w, float dx_beta, float *dx, float beta,
                        float *dw, float bias_beta, float *dbias, float *ws)
{
    const nb_conv_kernels *data = choose_for(ctx, p, K_CONV_BWD_DATA, s);
    if (data->conv2d_backward && data == choose_for(ctx, p, K_CONV_BWD_WEIGHTS, s)) {
        data->conv2d_backward(ctx, s, x, dy, w, dx_beta, dx, beta, dw, bias_beta, dbias, ws);
        return;
    }
    nb_conv2d_backward_data(ctx, p, s, dy, w, dx_beta, dx, ws);
    nb_conv2d_backward_weights(ctx, p, s, x, dy, beta, dw, bias_beta, dbias, ws);
}

void nb_max_pool2d_forward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                           const float *x, float *y, int32_t *argmax)
{
    choose(ctx, p, K_MAX_FWD)->max_pool2d_forward(ctx, s, x, y, argmax);
}

void nb_max_pool2d_backward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                            const float *dy, const int32_t *argmax, float beta, float *dx)
{
    choose(ctx, p, K_MAX_BWD)->max_pool2d_backward(ctx, s, dy, argmax, beta, dx);
}

void nb_avg_pool2d_forward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                           int count_include_pad, const float *x, float *y)
{
    choose(ctx, p, K_AVG_FWD)->avg_pool2d_forward(ctx, s, count_include_pad, x, y);
}

void nb_avg_pool2d_backward(nb_gemm *ctx, nb_precision p, const nb_conv_shape *s,
                            int count_include_pad, const float *dy, float beta, float *dx)
{
    choose(ctx, p, K_AVG_BWD)->avg_pool2d_backward(ctx, s, count_include_pad, dy, beta, dx);
}

void nb_batch_norm_forward(nb_gemm *ctx, nb_precision p, const nb_bn_shape *s, const float *x,
                           const float *gamma, const float *beta, float eps, int batch_stats,
                           const float *running_mean, const float *running_var, float *y,
                           float *mean, float *invstd, float *var)
{
    choose(ctx, p, K_BN_FWD)
        ->batch_norm_forward(ctx, s, x, gamma, beta, eps, batch_stats, running_mean,
                             running_var, y, mean, invstd, var);
}

void nb_batch_norm_backward(nb_gemm *ctx, nb_precision p, const nb_bn_shape *s,
                            const float *x, const float *dy, const float *gamma,
                            const float *mean, const float *invstd, int batch_stats,
                            float dx_beta, float *dx, float param_beta, float *dgamma,
                            float *dbeta)
{
    choose(ctx, p, K_BN_BWD)
        ->batch_norm_backward(ctx, s, x, dy, gamma, mean, invstd, batch_stats, dx_beta, dx,
                              param_beta, dgamma, dbeta);
}
