/* The kernels of a generated C file, as text. Each is the library's module forward for one
 * sample, in plain C99 over float arrays, with the same formula (and where it matters for
 * agreement, the same order of operations) as src/ops/op_*.c:
 *
 *   normalize   x̂_i = (x_i − mean_s) · inv_s     slot s = i / B (data/dataset.c)
 *   linear      y_o = b_o + Σ_i W[o,i] x_i        Y = X Wᵀ + b (op_linear.c)
 *   linear_q8   y_o = b_o + s_o Σ_i q[o,i] x_i    W[o,i] ≈ s_o q[o,i], q ∈ [−127, 127]
 *   relu, tanh, sigmoid, add, max, mul, scale     point-wise (op_activation.c,
 *                                                 op_elementwise.c)
 *   reduce      y = f · Σ_i x_i  (sum: f = 1, mean: f = 1/D), in double (op_reduce.c)
 *   softmax, log_softmax    over rows of the last dimension, max-subtracted (op_softmax.c)
 *   nearest     ȳ = argmin_k ‖x − w_k‖², in double, ties to the smallest k (op_nearest.c)
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
}
