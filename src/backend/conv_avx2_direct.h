/* Internal: direct convolution for few input channels in AVX2 + FMA (conv_avx2_direct.c),
 * the convolution entries of image_avx2.c's nb_conv_avx2 table, with conv.h's signatures. */
#ifndef NB_CONV_AVX2_DIRECT_H
#define NB_CONV_AVX2_DIRECT_H

#include "backend/conv.h"

/* 1 when the shape is one these kernels run: stride 1, no dilation, one group, at most 4
 * input channels, rows of at least 8 outputs, a padded sample of at most 8192 floats. */
int nb_conv_avx2_direct_serves(const nb_conv_shape *s);
size_t nb_conv_avx2_direct_workspace(const nb_gemm *ctx, const nb_conv_shape *s);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
void nb_conv_avx2_direct_forward(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                                 const float *w, const float *bias, float *y, float *ws);
void nb_conv_avx2_direct_backward_weights(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                                          const float *dy, float beta, float *dw,
                                          float bias_beta, float *dbias, float *ws);
#endif

#endif
