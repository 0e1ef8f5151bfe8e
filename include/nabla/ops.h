/*
 * nabla/ops.h — the modules of lecture §4 (src/ops/).
 * Each call appends a node to a graph (core.h).
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_OPS_H
#define NABLA_OPS_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Modules (§4). x, a, b are node handles. */
int nb_linear(nb_graph *g, const char *name, int x, int64_t out_features, int bias);
int nb_relu(nb_graph *g, const char *name, int x);
int nb_tanh(nb_graph *g, const char *name, int x);
int nb_sigmoid(nb_graph *g, const char *name, int x);
/* LeakyReLU (torch.nn.LeakyReLU): y = x for x > 0, slope·x otherwise; PyTorch's default slope
 * (negative_slope) is 0.01. The gradient at x = 0 is slope·dy, as PyTorch's. */
int nb_leaky_relu(nb_graph *g, const char *name, int x, float slope);
/* GELU in its exact form (torch.nn.GELU(), approximate='none', PyTorch's default):
 * y = x·Φ(x) = x/2·(1 + erf(x/√2)), Φ the standard normal CDF; not the tanh approximation. */
int nb_gelu(nb_graph *g, const char *name, int x);
int nb_add(nb_graph *g, const char *name, int a, int b);
int nb_max(nb_graph *g, const char *name, int a, int b);
int nb_mul(nb_graph *g, const char *name, int a, int b);
int nb_scale(nb_graph *g, const char *name, int x, float factor);
/* Sum / mean over all features of each sample: [N, ...] -> [N, 1]. */
int nb_sum(nb_graph *g, const char *name, int x);
int nb_mean(nb_graph *g, const char *name, int x);
/* Over the last dimension. */
int nb_softmax(nb_graph *g, const char *name, int x);
int nb_log_softmax(nb_graph *g, const char *name, int x);
int nb_dropout(nb_graph *g, const char *name, int x, float p);
int nb_reshape(nb_graph *g, const char *name, int x, int ndim, const int64_t *dims);
int nb_flatten(nb_graph *g, const char *name, int x);
/* ȳ = argmin_k ‖x − w_k‖² over the rows of a parameter "<name>.weight" of shape [K, D].
 * Output [N, 1] holds the index as a float. Forward only: backward through it fails with
 * NB_ENOGRAD. */
int nb_nearest(nb_graph *g, const char *name, int x, int64_t k);

/* Convolutional modules on images [N, C, H, W] (per-sample shape [C, H, W]), with
 * PyTorch's semantics (torch.nn.Conv2d, MaxPool2d, AvgPool2d, BatchNorm1d/2d); their kernels
 * run in fp32 whatever the graph's precision. */
typedef struct nb_conv2d_options {
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;     /* ≥ 1 */
    int64_t pad_h, pad_w;           /* zeros on both sides; ≥ 0 */
    int pad_same;                   /* PyTorch's padding='same' (stride 1): dil·(k − 1) zeros in
                                       all, the odd one at the bottom/right; pad_h/w ignored */
    int64_t dilation_h, dilation_w; /* ≥ 1 */
    int64_t groups;                 /* divides the input channels and out_channels */
    int bias;
} nb_conv2d_options;
/* A square kernel k, stride 1, no padding, dilation 1, one group, with bias. */
void nb_conv2d_options_default(nb_conv2d_options *opt, int64_t k);
/* Y = X ⋆ W + b (cross-correlation), parameters "<name>.weight" [out, C/groups, kh, kw] and
 * "<name>.bias" [out]. Output [N, out, P, Q] with P = ⌊(H + 2·pad_h − dil_h·(kh − 1) − 1) /
 * stride_h⌋ + 1 (and Q likewise). */
int nb_conv2d(nb_graph *g, const char *name, int x, int64_t out_channels,
              const nb_conv2d_options *opt);

typedef struct nb_pool2d_options {
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;     /* ≥ 1; PyTorch's default is the kernel size */
    int64_t pad_h, pad_w;           /* ≤ half the kernel, as PyTorch requires */
    int count_include_pad;          /* avg_pool2d: divide by kh·kw even where the window covers
                                       padding (PyTorch's default, 1) */
} nb_pool2d_options;
/* A square window k, stride k, no padding, count_include_pad. */
void nb_pool2d_options_default(nb_pool2d_options *opt, int64_t k);
/* The maximum of each window. Its gradient goes to the element that was the maximum; at a tie
 * the first in row-major window order wins (PyTorch's CPU rule). */
int nb_max_pool2d(nb_graph *g, const char *name, int x, const nb_pool2d_options *opt);
int nb_avg_pool2d(nb_graph *g, const char *name, int x, const nb_pool2d_options *opt);
/* The mean of each channel: [N, C, H, W] → [N, C] (AdaptiveAvgPool2d(1) then flatten). */
int nb_global_avg_pool(nb_graph *g, const char *name, int x);
/* Batch normalisation over [N, C] or [N, C, H, W] (BatchNorm1d / BatchNorm2d):
 * y = γ (x − μ)/√(σ² + eps) + β per channel. In training mode μ, σ² are the batch's mean and
 * biased variance, and the running statistics move as PyTorch's do:
 *     running_mean ← (1 − momentum)·running_mean + momentum·μ
 *     running_var  ← (1 − momentum)·running_var + momentum·σ²·M/(M − 1)   (unbiased; M = N·H·W)
 *     num_batches_tracked ← num_batches_tracked + 1
 * In evaluation mode running_mean and running_var replace μ and σ². Parameters
 * "<name>.weight" (γ, starts at 1) and "<name>.bias" (β, 0) [C]; buffers (nb_buffer)
 * "<name>.running_mean" (0), "<name>.running_var" (1) [C] and "<name>.num_batches_tracked"
 * [] (a scalar; a float here, exact to 2^24 batches; int64 in PyTorch). */
int nb_batch_norm(nb_graph *g, const char *name, int x, float momentum, float eps);

/* Layer normalisation (torch.nn.LayerNorm(normalized_shape, eps)) of each sample over its
 * last `dims` dimensions (normalized_shape = those dimensions; 0: all of the per-sample shape,
 * nn.LayerNorm(x.shape[1:]), which for [N, D] is nn.LayerNorm(D)): for each group of D values
 *     y = γ ⊙ (x − μ)/√(σ² + eps) + β,   μ, σ² their mean and biased variance,
 * the same in training and evaluation. Parameters "<name>.weight" (γ, starts at 1) and
 * "<name>.bias" (β, 0), shaped as normalized_shape. */
int nb_layer_norm(nb_graph *g, const char *name, int x, int dims, float eps);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_OPS_H */
