/* The kernels of a generated C file, as text. Each is the library's module forward for one
 * sample, in plain C99 over float arrays, with the same formula (and where it matters for
 * agreement, the same order of operations) as src/ops/op_*.c:
 *
 *   normalize   x̂_i = (x_i − mean_s) · inv_s     slot s = i / B (data/dataset.c)
 *   linear      y_o = b_o + Σ_i W[o,i] x_i        Y = X Wᵀ + b (op_linear.c)
 *   linear_q8   y_o = b_o + s_o Σ_i q[o,i] x_i    W[o,i] ≈ s_o q[o,i], q ∈ [−127, 127]
 *   linear_i8   y_o = b_o + s_o s_x Σ_i q[o,i] xq_i, xq_i = round(x_i / s_x) ∈ [−127, 127]
 *               (or [0, 255] for inputs never negative), summed in int (c_source_int8.c)
 *   relu, tanh, sigmoid, add, max, mul, scale     point-wise (op_activation.c,
 *                                                 op_elementwise.c)
 *   reduce      y = f · Σ_i x_i  (sum: f = 1, mean: f = 1/D), in double (op_reduce.c)
 *   softmax, log_softmax    over rows of the last dimension, max-subtracted (op_softmax.c)
 *   nearest     ȳ = argmin_k ‖x − w_k‖², in double, ties to the smallest k (op_nearest.c)
 *   conv2d      Y[k,p,q] = b_k + Σ_{c,r,s} W[k,c,r,s] X[g·Cg + c, p·sh − pt + r·dh, q·sw − pl + s·dw]
 *               (zero padding; g = k's group), directly rather than through im2col (op_conv.c)
 *   max_pool2d, avg_pool2d   the window clipped to the input (padding is −∞ for max; avg
 *               divides by R·S with count_include_pad, else by the clipped area) (op_pool.c)
 *   global_avg  y_c = (Σ_{h,w} x[c,h,w]) / HW in float (op_pool.c)
 *   channel_affine  y[c,i] = a_c x[c,i] + b_c: batch norm in evaluation, a = γ/√(var + eps),
 *               b = β − mean·a, computed in double at export as the library does (op_batchnorm.c)
 *   leaky_relu, gelu  y = x or slope·x; y = (x·½)(1 + erf(x/√2)) (op_activation.c)
 *   layer_norm  y = γ (x − μ)/√(σ² + eps) + β over rows of D values, μ and σ² in double
 *               (op_layernorm.c)
 *
 * The dot products keep LANES partial sums: a compiler may not reorder a float sum by itself
 * (it changes the rounding), so one accumulator would run at one add per latency of the
 * adder; LANES independent ones vectorise at -O2 and -O3 on any SIMD width up to 512 bits. */
#include "export/c_kernels.h"

static const char linear_text[] =
    "/* y[o] = b[o] + sum_i w[o][i] x[i]: Linear, Y = X W^T + b, for one sample. LANES partial\n"
    " * sums, so that the compiler vectorises the dot product without reordering a sum. */\n"
    "static void linear(const float *restrict x, const float *restrict w,\n"
    "                   const float *restrict b, float *restrict y, int in, int out)\n"
    "{\n"
    "    int o, i, k;\n"
    "    for (o = 0; o < out; o++) {\n"
    "        const float *restrict row = w + (long)o * in;\n"
    "        float part[LANES], acc = 0.0f;\n"
    "        for (k = 0; k < LANES; k++)\n"
    "            part[k] = 0.0f;\n"
    "        for (i = 0; i + LANES <= in; i += LANES)\n"
    "            for (k = 0; k < LANES; k++)\n"
    "                part[k] += row[i + k] * x[i + k];\n"
    "        for (; i < in; i++)\n"
    "            acc += row[i] * x[i];\n"
    "        for (k = 0; k < LANES; k++)\n"
    "            acc += part[k];\n"
    "        y[o] = b ? acc + b[o] : acc;\n"
    "    }\n"
    "}\n\n";

static const char linear_q8_text[] =
    "/* Linear with int8 weights: w[o][i] ~ scale[o] * q[o][i] (symmetric, per output channel),\n"
    " * y[o] = b[o] + scale[o] * sum_i q[o][i] x[i], accumulated in float. */\n"
    "static void linear_q8(const float *restrict x, const signed char *restrict q,\n"
    "                      const float *restrict scale, const float *restrict b,\n"
    "                      float *restrict y, int in, int out)\n"
    "{\n"
    "    int o, i, k;\n"
    "    for (o = 0; o < out; o++) {\n"
    "        const signed char *restrict row = q + (long)o * in;\n"
    "        float part[LANES], acc = 0.0f;\n"
    "        for (k = 0; k < LANES; k++)\n"
    "            part[k] = 0.0f;\n"
    "        for (i = 0; i + LANES <= in; i += LANES)\n"
    "            for (k = 0; k < LANES; k++)\n"
    "                part[k] += (float)row[i + k] * x[i + k];\n"
    "        for (; i < in; i++)\n"
    "            acc += (float)row[i] * x[i];\n"
    "        for (k = 0; k < LANES; k++)\n"
    "            acc += part[k];\n"
    "        acc *= scale[o];\n"
    "        y[o] = b ? acc + b[o] : acc;\n"
    "    }\n"
    "}\n\n";

/* The integer dot product is a plain loop: integer addition is associative, so the compiler
 * may split and reorder the sum itself (no LANES partial sums needed). xq is held as short
 * (its values fit in 8 bits) so that the products widen through int16 into int32 sums: gcc 12
 * (-O2, -O3, -march=native) and clang 14 (-O2, -O3) map the loop onto pmaddwd with no
 * intrinsics (clang -march=native widens to int32 and uses vpmulld instead). With xq as
 * signed char gcc widened to int32 first, about 3x slower on the first layer. */
static const char linear_i8_text[] =
    "/* Linear with int8 weights and 8-bit inputs, summed in int: x[i] ~ xq[i] / inv_in,\n"
    " * xq[i] = round(x[i] * inv_in) clamped to [lo, hi] ([-127, 127], or [0, 255] for inputs\n"
    " * that are never negative; inv_in calibrated on data); w[o][i] ~ scale[o] * q[o][i];\n"
    " * y[o] = b[o] + rescale[o] * sum_i q[o][i] xq[i], rescale[o] = scale[o] / inv_in.\n"
    " * Four rows at a time share each load of xq. Q8_MAX_IN shorts of stack. */\n"
    "static void linear_i8(const float *restrict x, float inv_in, float lo, float hi,\n"
    "                      const signed char *restrict q, const float *restrict rescale,\n"
    "                      const float *restrict b, float *restrict y, int in, int out)\n"
    "{\n"
    "    short xq[Q8_MAX_IN];\n"
    "    int o, i, k;\n"
    "    for (i = 0; i < in; i++) {\n"
    "        float v = x[i] * inv_in;\n"
    "        v = v < hi ? v : hi; /* NaN becomes hi, never undefined */\n"
    "        v = v > lo ? v : lo;\n"
    "        xq[i] = (short)(int)(v + (v >= 0.0f ? 0.5f : -0.5f));\n"
    "    }\n"
    "    for (o = 0; o < out; o += 4) {\n"
    "        const signed char *restrict r0 = q + (long)o * in;\n"
    "        const signed char *restrict r1 = o + 1 < out ? r0 + in : r0;\n"
    "        const signed char *restrict r2 = o + 2 < out ? r0 + 2L * in : r0;\n"
    "        const signed char *restrict r3 = o + 3 < out ? r0 + 3L * in : r0;\n"
    "        int acc[4], a0 = 0, a1 = 0, a2 = 0, a3 = 0; /* |a| <= in * 127 * 255 < 2^31 */\n"
    "        for (i = 0; i < in; i++) {\n"
    "            a0 += r0[i] * xq[i];\n"
    "            a1 += r1[i] * xq[i];\n"
    "            a2 += r2[i] * xq[i];\n"
    "            a3 += r3[i] * xq[i];\n"
    "        }\n"
    "        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;\n"
    "        for (k = 0; k < 4 && o + k < out; k++)\n"
    "            y[o + k] = b ? (float)acc[k] * rescale[o + k] + b[o + k]\n"
    "                         : (float)acc[k] * rescale[o + k];\n"
    "    }\n"
    "}\n\n";

static const char normalize_text[] =
    "/* The input normalisation stored with the model: x^[i] = (x[i] - mean[s]) * inv[s] for the\n"
    " * slot s = i / block (one slot per feature, per channel, or one for all). */\n"
    "static void normalize(const float *restrict x, float *restrict y, const float *mean,\n"
    "                      const float *inv, int slots, int block)\n"
    "{\n"
    "    int s, i;\n"
    "    for (s = 0; s < slots; s++)\n"
    "        for (i = 0; i < block; i++)\n"
    "            y[s * block + i] = (x[s * block + i] - mean[s]) * inv[s];\n"
    "}\n\n";

static const char copy_text[] =
    "static void copy(const float *restrict x, float *restrict y, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = x[i];\n"
    "}\n\n";

static const char relu_text[] =
    "static void relu(const float *x, float *y, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = x[i] > 0.0f ? x[i] : 0.0f;\n"
    "}\n\n";

static const char tanh_text[] =
    "static void tanh_(const float *x, float *y, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = %s_TANHF(x[i]);\n"
    "}\n\n";

static const char sigmoid_text[] =
    "/* 1 / (1 + e^-x), as e^x / (1 + e^x) for x < 0 so that e^-x cannot overflow. */\n"
    "static void sigmoid(const float *x, float *y, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++) {\n"
    "        if (x[i] >= 0.0f) {\n"
    "            y[i] = 1.0f / (1.0f + %s_EXPF(-x[i]));\n"
    "        } else {\n"
    "            float t = %s_EXPF(x[i]);\n"
    "            y[i] = t / (1.0f + t);\n"
    "        }\n"
    "    }\n"
    "}\n\n";

static const char add_text[] =
    "static void add(const float *a, const float *b, float *y, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = a[i] + b[i];\n"
    "}\n\n";

static const char max_text[] =
    "static void max2(const float *a, const float *b, float *y, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = a[i] >= b[i] ? a[i] : b[i];\n"
    "}\n\n";

static const char mul_text[] =
    "static void mul(const float *a, const float *b, float *y, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = a[i] * b[i];\n"
    "}\n\n";

static const char scale_text[] =
    "static void scale(const float *x, float a, float *y, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = a * x[i];\n"
    "}\n\n";

static const char reduce_text[] =
    "/* y = f * sum_i x[i], summed in double (sum: f = 1; mean: f = 1/n). */\n"
    "static void reduce(const float *x, float f, float *y, int n)\n"
    "{\n"
    "    double s = 0.0;\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        s += x[i];\n"
    "    y[0] = (float)(s * f);\n"
    "}\n\n";

/* log Σ exp(x − m) per row, then softmax or log-softmax; in place is allowed (x == y). */
static const char softmax_text[] =
    "/* Over rows of c values: m = max x, lse = log sum exp(x - m); softmax exp(x - m - lse),\n"
    " * log-softmax x - m - lse. Subtracting m keeps every exponent <= 0 (no overflow). */\n"
    "static void softmax_rows(const float *x, float *y, int rows, int c, int log_out)\n"
    "{\n"
    "    int r, j;\n"
    "    for (r = 0; r < rows; r++, x += c, y += c) {\n"
    "        float m = x[0], lse;\n"
    "        double s = 0.0;\n"
    "        for (j = 1; j < c; j++)\n"
    "            m = x[j] > m ? x[j] : m;\n"
    "        for (j = 0; j < c; j++)\n"
    "            s += %s_EXPF(x[j] - m);\n"
    "        lse = %s_LOGF((float)s);\n"
    "        for (j = 0; j < c; j++)\n"
    "            y[j] = log_out ? (x[j] - m) - lse : %s_EXPF((x[j] - m) - lse);\n"
    "    }\n"
    "}\n\n";

static const char nearest_text[] =
    "/* y = argmin_k |x - w_k|^2 over the k rows of w (d values each), ties to the smallest k. */\n"
    "static void nearest(const float *x, const float *w, float *y, int k, int d)\n"
    "{\n"
    "    double best = 0.0;\n"
    "    int r, i, arg = 0;\n"
    "    for (r = 0; r < k; r++) {\n"
    "        double d2 = 0.0;\n"
    "        for (i = 0; i < d; i++)\n"
    "            d2 += (double)(x[i] - w[(long)r * d + i]) * (x[i] - w[(long)r * d + i]);\n"
    "        if (r == 0 || d2 < best) {\n"
    "            best = d2;\n"
    "            arg = r;\n"
    "        }\n"
    "    }\n"
    "    y[0] = (float)arg;\n"
    "}\n\n";

static const char window_text[] =
    "/* A convolution or pooling window: input [C,H,W], output [K,P,Q], kernel R x S, stride,\n"
    " * padding top/left, dilation, groups; avg_pool2d's count_include_pad. */\n"
    "struct window {\n"
    "    int C, H, W, K, P, Q, R, S, sh, sw, pt, pl, dh, dw, groups, include_pad;\n"
    "};\n\n";

static const char conv2d_text[] =
    "/* Y[k][p][q] = b[k] + sum_{c,r,s} W[k][c][r][s] X[g Cg + c][p sh - pt + r dh][q sw - pl + s dw]\n"
    " * (cross-correlation, zero padding, g = k / (K / groups), Cg = C / groups). */\n"
    "static void conv2d(const float *restrict x, const float *restrict w, const float *restrict b,\n"
    "                   float *restrict y, const struct window *d)\n"
    "{\n"
    "    int Cg = d->C / d->groups, Kg = d->K / d->groups, k, p, q, c, r, s;\n"
    "    for (k = 0; k < d->K; k++) {\n"
    "        const float *xg = x + (long)(k / Kg) * Cg * d->H * d->W;\n"
    "        for (p = 0; p < d->P; p++)\n"
    "            for (q = 0; q < d->Q; q++) {\n"
    "                float acc = 0.0f;\n"
    "                for (c = 0; c < Cg; c++)\n"
    "                    for (r = 0; r < d->R; r++) {\n"
    "                        int h = p * d->sh - d->pt + r * d->dh;\n"
    "                        if (h < 0 || h >= d->H)\n"
    "                            continue;\n"
    "                        for (s = 0; s < d->S; s++) {\n"
    "                            int v = q * d->sw - d->pl + s * d->dw;\n"
    "                            if (v >= 0 && v < d->W)\n"
    "                                acc += w[(((long)k * Cg + c) * d->R + r) * d->S + s] *\n"
    "                                       xg[((long)c * d->H + h) * d->W + v];\n"
    "                        }\n"
    "                    }\n"
    "                y[((long)k * d->P + p) * d->Q + q] = b ? acc + b[k] : acc;\n"
    "            }\n"
    "    }\n"
    "}\n\n";

/* The window of output (p, q) clipped to the input, as the library's pooling (conv_portable.c). */
static const char pool_text[] =
    "/* Window (p, q) clipped to the input: rows [*h0, *h1), columns [*w0, *w1). */\n"
    "static void clip(const struct window *d, int p, int q, int *h0, int *h1, int *w0, int *w1)\n"
    "{\n"
    "    int hs = p * d->sh - d->pt, ws = q * d->sw - d->pl;\n"
    "    *h0 = hs < 0 ? 0 : hs;\n"
    "    *h1 = hs + d->R < d->H ? hs + d->R : d->H;\n"
    "    *w0 = ws < 0 ? 0 : ws;\n"
    "    *w1 = ws + d->S < d->W ? ws + d->S : d->W;\n"
    "}\n\n";

static const char max_pool_text[] =
    "/* The maximum of each window (padding never wins). */\n"
    "static void max_pool(const float *x, float *y, const struct window *d)\n"
    "{\n"
    "    int c, p, q, h, v, h0, h1, w0, w1;\n"
    "    for (c = 0; c < d->C; c++, x += d->H * d->W)\n"
    "        for (p = 0; p < d->P; p++)\n"
    "            for (q = 0; q < d->Q; q++, y++) {\n"
    "                float m;\n"
    "                clip(d, p, q, &h0, &h1, &w0, &w1);\n"
    "                m = x[h0 * d->W + w0];\n"
    "                for (h = h0; h < h1; h++)\n"
    "                    for (v = w0; v < w1; v++)\n"
    "                        m = x[h * d->W + v] > m ? x[h * d->W + v] : m;\n"
    "                *y = m;\n"
    "            }\n"
    "}\n\n";

static const char avg_pool_text[] =
    "/* The mean of each window: over R x S with count_include_pad, else over the clipped area. */\n"
    "static void avg_pool(const float *x, float *y, const struct window *d)\n"
    "{\n"
    "    int c, p, q, h, v, h0, h1, w0, w1;\n"
    "    for (c = 0; c < d->C; c++, x += d->H * d->W)\n"
    "        for (p = 0; p < d->P; p++)\n"
    "            for (q = 0; q < d->Q; q++, y++) {\n"
    "                float sum = 0.0f, div;\n"
    "                clip(d, p, q, &h0, &h1, &w0, &w1);\n"
    "                div = d->include_pad ? (float)(d->R * d->S) : (float)((h1 - h0) * (w1 - w0));\n"
    "                for (h = h0; h < h1; h++)\n"
    "                    for (v = w0; v < w1; v++)\n"
    "                        sum += x[h * d->W + v];\n"
    "                *y = sum / div;\n"
    "            }\n"
    "}\n\n";

static const char global_avg_text[] =
    "/* y[c] = mean of channel c's hw values. */\n"
    "static void global_avg(const float *x, float *y, int channels, int hw)\n"
    "{\n"
    "    int c, i;\n"
    "    for (c = 0; c < channels; c++, x += hw) {\n"
    "        float sum = 0.0f;\n"
    "        for (i = 0; i < hw; i++)\n"
    "            sum += x[i];\n"
    "        y[c] = sum / (float)hw;\n"
    "    }\n"
    "}\n\n";

static const char channel_affine_text[] =
    "/* y[c][i] = a[c] x[c][i] + b[c]: batch normalisation with its running statistics. */\n"
    "static void channel_affine(const float *x, float *y, const float *a, const float *b,\n"
    "                           int channels, int hw)\n"
    "{\n"
    "    int c, i;\n"
    "    for (c = 0; c < channels; c++)\n"
    "        for (i = 0; i < hw; i++)\n"
    "            y[c * hw + i] = a[c] * x[c * hw + i] + b[c];\n"
    "}\n\n";

static const char leaky_relu_text[] =
    "/* y = x for x > 0, else slope x: LeakyReLU. */\n"
    "static void leaky_relu(const float *x, float *y, int n, float slope)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = x[i] > 0.0f ? x[i] : slope * x[i];\n"
    "}\n\n";

static const char gelu_text[] =
    "/* y = x Phi(x) = (x/2)(1 + erf(x/sqrt(2))): the exact GELU. */\n"
    "static void gelu(const float *x, float *y, int n)\n"
    "{\n"
    "    int i;\n"
    "    for (i = 0; i < n; i++)\n"
    "        y[i] = 0.5f * x[i] * (1.0f + %s_ERFF(x[i] * 0.707106781f));\n"
    "}\n\n";

static const char layer_norm_text[] =
    "/* Layer norm over rows of d values: y = gamma (x - mu) / sqrt(var + eps) + beta, mu and var\n"
    " * (biased) the row's, summed in double. */\n"
    "static void layer_norm(const float *x, float *y, const float *gamma, const float *beta,\n"
    "                       int rows, int d, float eps)\n"
    "{\n"
    "    int r, i;\n"
    "    for (r = 0; r < rows; r++, x += d, y += d) {\n"
    "        double sum = 0.0, sq = 0.0, mu;\n"
    "        float istd;\n"
    "        for (i = 0; i < d; i++)\n"
    "            sum += x[i];\n"
    "        mu = sum / d;\n"
    "        for (i = 0; i < d; i++)\n"
    "            sq += (x[i] - mu) * (x[i] - mu);\n"
    "        istd = 1.0f / %s_SQRTF((float)(sq / d + eps));\n"
    "        for (i = 0; i < d; i++)\n"
    "            y[i] = (float)((x[i] - mu) * istd) * gamma[i] + beta[i];\n"
    "    }\n"
    "}\n\n";

void nb_c_kernels_write_types(FILE *f, unsigned kernels)
{
    if (kernels & K_WINDOW)
        fputs(window_text, f);
}

void nb_c_kernels_write(FILE *f, unsigned kernels, const char *P)
{
    if (kernels & (K_LINEAR | K_LINEAR_Q8))
        fputs("#define LANES 16\n\n", f);
    if (kernels & K_NORMALIZE)
        fputs(normalize_text, f);
    if (kernels & K_COPY)
        fputs(copy_text, f);
    if (kernels & K_LINEAR)
        fputs(linear_text, f);
    if (kernels & K_LINEAR_Q8)
        fputs(linear_q8_text, f);
    if (kernels & K_LINEAR_I8)
        fputs(linear_i8_text, f);
    if (kernels & K_RELU)
        fputs(relu_text, f);
    if (kernels & K_TANH)
        fprintf(f, tanh_text, P);
    if (kernels & K_SIGMOID)
        fprintf(f, sigmoid_text, P, P);
    if (kernels & K_ADD)
        fputs(add_text, f);
    if (kernels & K_MAX)
        fputs(max_text, f);
    if (kernels & K_MUL)
        fputs(mul_text, f);
    if (kernels & K_SCALE)
        fputs(scale_text, f);
    if (kernels & K_REDUCE)
        fputs(reduce_text, f);
    if (kernels & (K_SOFTMAX | K_LOG_SOFTMAX))
        fprintf(f, softmax_text, P, P, P);
    if (kernels & K_NEAREST)
        fputs(nearest_text, f);
    if (kernels & K_CONV2D)
        fputs(conv2d_text, f);
    if (kernels & (K_MAX_POOL | K_AVG_POOL))
        fputs(pool_text, f);
    if (kernels & K_MAX_POOL)
        fputs(max_pool_text, f);
    if (kernels & K_AVG_POOL)
        fputs(avg_pool_text, f);
    if (kernels & K_GLOBAL_AVG)
        fputs(global_avg_text, f);
    if (kernels & K_CHANNEL_AFFINE)
        fputs(channel_affine_text, f);
    if (kernels & K_LEAKY_RELU)
        fputs(leaky_relu_text, f);
    if (kernels & K_GELU)
        fprintf(f, gelu_text, P);
    if (kernels & K_LAYER_NORM)
        fprintf(f, layer_norm_text, P);
}
