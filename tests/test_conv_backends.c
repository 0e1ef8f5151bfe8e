/* The image kernels' implementations agree: every convolution kernel (forward with and
 * without bias, backward data writing and accumulating, backward weights with and without
 * the bias gradient, writing and accumulating) run through the oneDNN implementation
 * (conv_onednn.c, chosen for contexts on the onednn backend) — or for few input channels at
 * stride 1 the direct AVX2 one (conv_avx2_direct.c), checked to be the one chosen exactly for
 * those shapes — with 1 and 2 threads, against
 * the portable im2col implementation (chosen for contexts on the portable backend), on
 * strided, padded, dilated, grouped, 1×1, 'same'-with-even-kernel and one-sample shapes, and
 * shapes wide enough for the blocked layouts.
 * Batch norm (batch and running statistics, forward and backward, writing and accumulating)
 * and 2×2 max pooling (ties, NaN, ±∞, odd sizes, rows shorter and longer than a vector) in
 * AVX2 (image_avx2.c, chosen for the fast backends' contexts) against the portable loops, on
 * CPUs with AVX2 and FMA (elsewhere that part is skipped, and said so).
 * oneDNN's forward at a batch large enough to run in pieces (conv_onednn_run.c's
 * FWD_PIECE_BYTES) bit for bit equal to one sample at a time; max pooling without the arg-max
 * (inference) bit for bit equal to with it.
 * Without oneDNN built in, the comparison is skipped (exit 77). */
#include "check.h"
#include "backend/conv.h"
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Float sums of a few hundred terms in different orders: relative to the tensor's largest
 * magnitude. */
#define TOL 2e-5

typedef struct conv_case {
    const char *label;
    int64_t N, C, H, W, K, R, S, stride, pad, dil, groups;
    int64_t extra; /* one more padding at the bottom/right ('same' with an even kernel) */
} conv_case;

static const conv_case cases[] = {
    {"3x3 pad 1", 5, 3, 9, 8, 6, 3, 3, 1, 1, 1, 1, 0},
    {"strided padded", 4, 4, 11, 10, 5, 3, 3, 2, 1, 1, 1, 0},
    {"strided no pad (uneven end)", 3, 2, 10, 9, 4, 3, 3, 2, 0, 1, 1, 0},
    {"dilated", 3, 3, 12, 12, 4, 3, 3, 1, 2, 2, 1, 0},
    {"grouped", 3, 6, 8, 8, 9, 3, 3, 1, 1, 1, 3, 0},
    {"depthwise strided", 2, 4, 9, 9, 4, 3, 3, 2, 1, 1, 4, 0},
    {"1x1", 4, 8, 6, 6, 5, 1, 1, 1, 0, 1, 1, 0},
    {"same even kernel", 3, 2, 7, 7, 3, 4, 4, 1, 1, 1, 1, 1},
    {"one sample 5x5", 1, 1, 12, 12, 8, 5, 5, 1, 2, 1, 1, 0},
    {"fashion-cnn conv2", 7, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 0},
    /* ≥ 8 channels per group: oneDNN's forward runs on blocked layouts with reorders */
    {"grouped wide strided dilated", 3, 16, 11, 11, 16, 3, 3, 2, 2, 2, 2, 0},
    /* ≤ 4 input channels at stride 1: the direct AVX2 kernels (conv_avx2_direct.c), with rows
     * of 8 outputs or more (a last vector overlapping), output channels not a multiple of 4,
     * rectangular kernels, 'same' padding with an even kernel */
    {"fashion-cnn conv1", 3, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 0},
    {"few channels odd width", 2, 3, 9, 13, 5, 3, 3, 1, 1, 1, 1, 0},
    {"few channels 2x5 no pad", 2, 2, 10, 12, 7, 2, 5, 1, 0, 1, 1, 0},
    {"few channels same even", 2, 4, 10, 10, 3, 4, 4, 1, 1, 1, 1, 1},
    {"one sample conv1", 1, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 0},
};

/* Which cases the direct AVX2 kernels must take on the fast backends (the rest must not) */
static int direct_case(const conv_case *c)
{
    return c->C <= 4 && c->stride == 1 && c->dil == 1 && c->groups == 1 && c->W >= 8 &&
           c->W + 2 * c->pad + c->extra - c->S + 1 >= 8;
}

static unsigned long long state = 88172645463325252ull;

static float uniform(void)
{
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return (float)((state >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float *random_floats(size_t n)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = uniform();
    return v;
}

static float *copy_of(const float *v, size_t n)
{
    float *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    return c;
}

/* max |a − b| / max |b| */
static double difference(const float *a, const float *b, size_t n)
{
    double worst = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return worst / scale;
}

static nb_conv_shape shape_of(const conv_case *c)
{
    nb_conv_shape s = {.N = c->N, .C = c->C, .H = c->H, .W = c->W, .K = c->K, .R = c->R,
                       .S = c->S, .stride_h = c->stride, .stride_w = c->stride, .pad_h = c->pad,
                       .pad_w = c->pad, .dil_h = c->dil, .dil_w = c->dil, .groups = c->groups};
    s.P = (c->H + 2 * c->pad + c->extra - c->dil * (c->R - 1) - 1) / c->stride + 1;
    s.Q = (c->W + 2 * c->pad + c->extra - c->dil * (c->S - 1) - 1) / c->stride + 1;
    return s;
}

/* Every kernel of case c on ctx, into out[0..11] (allocated here): y with bias, y without,
 * dx written, dx accumulated, dw+db written, dw+db accumulated, dw alone; then data and
 * weights in one call (nb_conv2d_backward): dx accumulated with dw+db written, and dx
 * written with dw accumulated. */
enum { OUTS = 12 };
static void run_all(nb_gemm *ctx, const conv_case *c, float *out[OUTS], size_t sizes[OUTS])
{
    nb_conv_shape s = shape_of(c);
    size_t xn = (size_t)(s.N * s.C * s.H * s.W), yn = (size_t)(s.N * s.K * s.P * s.Q);
    size_t wn = (size_t)(s.K * (s.C / s.groups) * s.R * s.S), bn = (size_t)s.K;
    unsigned long long kept = state;
    float *x = random_floats(xn), *w = random_floats(wn), *b = random_floats(bn);
    float *dy = random_floats(yn), *dx0 = random_floats(xn), *dw0 = random_floats(wn);
    float *db0 = random_floats(bn);
    state = kept; /* the same inputs for every context */
    float *ws = calloc(nb_conv2d_workspace(ctx, &s, NB_PRECISION_FP32) + 1, sizeof *ws);
    size_t want[OUTS] = {yn, yn, xn, xn, wn, bn, wn + bn, wn, xn, wn + bn, xn, wn};
    for (int i = 0; i < OUTS; i++)
        out[i] = calloc(want[i], sizeof(float)), sizes[i] = want[i];
    nb_conv2d_forward(ctx, NB_PRECISION_FP32, &s, x, w, b, out[0], ws);
    nb_conv2d_forward(ctx, NB_PRECISION_FP32, &s, x, w, NULL, out[1], ws);
    nb_conv2d_backward_data(ctx, NB_PRECISION_FP32, &s, dy, w, 0.0f, out[2], ws);
    memcpy(out[3], dx0, xn * sizeof(float));
    nb_conv2d_backward_data(ctx, NB_PRECISION_FP32, &s, dy, w, 1.0f, out[3], ws);
    nb_conv2d_backward_weights(ctx, NB_PRECISION_FP32, &s, x, dy, 0.0f, out[4], 0.0f, out[5],
                               ws);
    float *acc_w = copy_of(dw0, wn), *acc_b = copy_of(db0, bn);
    nb_conv2d_backward_weights(ctx, NB_PRECISION_FP32, &s, x, dy, 1.0f, acc_w, 1.0f, acc_b, ws);
    memcpy(out[6], acc_w, wn * sizeof(float));
    memcpy(out[6] + wn, acc_b, bn * sizeof(float));
    nb_conv2d_backward_weights(ctx, NB_PRECISION_FP32, &s, x, dy, 0.0f, out[7], 0.0f, NULL, ws);
    memcpy(out[8], dx0, xn * sizeof(float));
    nb_conv2d_backward(ctx, NB_PRECISION_FP32, &s, x, dy, w, 1.0f, out[8], 0.0f, out[9], 0.0f,
                       out[9] + wn, ws);
    memcpy(out[11], dw0, wn * sizeof(float));
    nb_conv2d_backward(ctx, NB_PRECISION_FP32, &s, x, dy, w, 0.0f, out[10], 1.0f, out[11], 1.0f,
                       NULL, ws);
    free(acc_w), free(acc_b), free(x), free(w), free(b), free(dy), free(dx0), free(dw0);
    free(db0), free(ws);
}

static const char *const out_names[OUTS] = {
    "forward+bias", "forward",   "backward data",     "backward data (accumulate)",
    "weights",      "bias grad", "weights+bias (acc)", "weights (no bias)",
    "both: data (acc)", "both: weights+bias", "both: data", "both: weights (acc)"};

/* ---- batch norm and max pooling: AVX2 against portable ---------------------------------- */

typedef struct bn_case {
    int64_t N, C, HW;
} bn_case;

/* One kernel table's batch norm on case b: forward with batch and running statistics, then
 * backward (batch statistics) writing dx/dγ/dβ, accumulating into them, without dx, and with
 * running statistics; all outputs concatenated (returned, *n floats, the caller frees). */
static float *bn_all(const nb_conv_kernels *k, nb_gemm *ctx, const bn_case *b, size_t *n)
{
    nb_bn_shape s = {b->N, b->C, b->HW};
    size_t xn = (size_t)(b->N * b->C * b->HW), C = (size_t)b->C;
    unsigned long long kept = state;
    float *x = random_floats(xn), *dy = random_floats(xn), *gamma = random_floats(C);
    float *beta = random_floats(C), *rm = random_floats(C), *rv = random_floats(C);
    float *dx0 = random_floats(xn), *p0 = random_floats(C);
    state = kept;
    for (size_t i = 0; i < xn; i++)
        x[i] = 3.0f + 2.0f * x[i]; /* a mean away from 0: the centring matters */
    for (size_t c = 0; c < C; c++)
        rv[c] = 0.5f + rv[c] * rv[c];
    *n = 5 * xn + 13 * C;
    float *out = calloc(*n, sizeof *out), *o = out;
    float *mean = o, *invstd = o + C, *var = o + 2 * C;
    o += 3 * C;
    k->batch_norm_forward(ctx, &s, x, gamma, beta, 1e-5f, 1, rm, rv, o, mean, invstd, var);
    o += xn;
    float *mean2 = o, *invstd2 = o + C;
    o += 2 * C;
    k->batch_norm_forward(ctx, &s, x, gamma, beta, 1e-5f, 0, rm, rv, o, mean2, invstd2, NULL);
    o += xn;
    k->batch_norm_backward(ctx, &s, x, dy, gamma, mean, invstd, 1, 0.0f, o, 0.0f, o + xn,
                           o + xn + C);
    o += xn + 2 * C;
    memcpy(o, dx0, xn * sizeof *o), memcpy(o + xn, p0, C * sizeof *o);
    memcpy(o + xn + C, p0, C * sizeof *o);
    k->batch_norm_backward(ctx, &s, x, dy, gamma, mean, invstd, 1, 1.0f, o, 1.0f, o + xn,
                           o + xn + C);
    o += xn + 2 * C;
    k->batch_norm_backward(ctx, &s, x, dy, gamma, mean, invstd, 1, 0.0f, NULL, 0.0f, o, o + C);
    o += 2 * C;
    k->batch_norm_backward(ctx, &s, x, dy, gamma, mean2, invstd2, 0, 0.0f, dx0, 0.0f, o,
                           o + C);
    memcpy(o + 2 * C, dx0, xn * sizeof *o);
    free(x), free(dy), free(gamma), free(beta), free(rm), free(rv), free(dx0), free(p0);
    return out;
}

static int same_float(float a, float b)
{
    return a == b || (a != a && b != b);
}

/* 2×2 max pooling of an N×C×H×W input with values from {0, 1, 2} (ties everywhere), a few
 * NaN and ±∞: AVX2 and portable must agree exactly on y and on the arg-max. */
static void compare_max_pool(nb_gemm *ctx, int64_t N, int64_t C, int64_t H, int64_t W)
{
    nb_conv_shape s = {.N = N, .C = C, .H = H, .W = W, .K = C, .R = 2, .S = 2, .P = H / 2,
                       .Q = W / 2, .stride_h = 2, .stride_w = 2, .dil_h = 1, .dil_w = 1,
                       .groups = 1};
    size_t xn = (size_t)(N * C * H * W), yn = (size_t)(N * C * s.P * s.Q);
    float *x = malloc(xn * sizeof *x), *y[2] = {malloc(yn * 4), malloc(yn * 4)};
    int32_t *am[2] = {malloc(yn * 4), malloc(yn * 4)};
    for (size_t i = 0; i < xn; i++)
        x[i] = (float)(int)(1.5f * (uniform() + 1.0f));
    for (size_t i = 0; i < xn; i += 97)
        x[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : -INFINITY;
    nb_conv_avx2.max_pool2d_forward(ctx, &s, x, y[0], am[0]);
    nb_conv_portable.max_pool2d_forward(ctx, &s, x, y[1], am[1]);
    size_t bad = 0;
    for (size_t i = 0; i < yn; i++)
        bad += !same_float(y[0][i], y[1][i]) || am[0][i] != am[1][i];
    CHECK_MSG(bad == 0, "max pool %lldx%lldx%lldx%lld: %zu of %zu outputs differ", (long long)N,
              (long long)C, (long long)H, (long long)W, bad, yn);
    /* without the arg-max (an inference plan keeps none): the same maxima */
    float *y_only = malloc(yn * sizeof *y_only);
    for (int k = 0; k < 2; k++) {
        (k ? nb_conv_portable : nb_conv_avx2).max_pool2d_forward(ctx, &s, x, y_only, NULL);
        size_t off = 0;
        for (size_t i = 0; i < yn; i++)
            off += !same_float(y_only[i], y[k][i]);
        CHECK_MSG(off == 0, "max pool %s without arg-max: %zu outputs differ",
                  k ? "portable" : "AVX2", off);
    }
    free(y_only);
    free(x), free(y[0]), free(y[1]), free(am[0]), free(am[1]);
}

/* Pooling backward writing (beta = 0) into a dx full of stale values equals accumulating
 * (beta = 1) into zeros, on ctx's kernels (on the fast backends the first is image_avx2.c's
 * 2×2 max-pool backward, the second the portable scatter): max pooling's 2×2 window on an odd size (a last
 * row and column no window covers, which writing must zero), overlapping and padded windows,
 * and average pooling's. */
static void check_pool_backward_write(nb_gemm *ctx, int64_t H, int64_t W, int64_t k,
                                      int64_t stride, int64_t pad)
{
    nb_conv_shape s = {.N = 3, .C = 5, .H = H, .W = W, .K = 5, .R = k, .S = k,
                       .stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad,
                       .dil_h = 1, .dil_w = 1, .groups = 1};
    s.P = (H + 2 * pad - k) / stride + 1, s.Q = (W + 2 * pad - k) / stride + 1;
    size_t xn = (size_t)(s.N * s.C * H * W), yn = (size_t)(s.N * s.C * s.P * s.Q);
    float *x = random_floats(xn), *y = malloc(yn * sizeof *y), *dy = random_floats(yn);
    float *written = random_floats(xn), *added = calloc(xn, sizeof *added);
    int32_t *am = malloc(yn * sizeof *am);
    nb_max_pool2d_forward(ctx, NB_PRECISION_FP32, &s, x, y, am);
    nb_max_pool2d_backward(ctx, NB_PRECISION_FP32, &s, dy, am, 0.0f, written);
    nb_max_pool2d_backward(ctx, NB_PRECISION_FP32, &s, dy, am, 1.0f, added);
    CHECK_MSG(memcmp(written, added, xn * sizeof *added) == 0,
              "max pool backward %lldx%lld k%lld s%lld p%lld: writing differs from adding to 0",
              (long long)H, (long long)W, (long long)k, (long long)stride, (long long)pad);
    memset(added, 0, xn * sizeof *added);
    for (size_t i = 0; i < xn; i++)
        written[i] = 7.0f;
    nb_avg_pool2d_backward(ctx, NB_PRECISION_FP32, &s, 1, dy, 0.0f, written);
    nb_avg_pool2d_backward(ctx, NB_PRECISION_FP32, &s, 1, dy, 1.0f, added);
    CHECK_MSG(memcmp(written, added, xn * sizeof *added) == 0,
              "avg pool backward %lldx%lld k%lld s%lld p%lld: writing differs from adding to 0",
              (long long)H, (long long)W, (long long)k, (long long)stride, (long long)pad);
    free(x), free(y), free(dy), free(written), free(added), free(am);
}

static void check_pool_backward_writes(nb_gemm *ctx)
{
    check_pool_backward_write(ctx, 28, 28, 2, 2, 0);
    check_pool_backward_write(ctx, 7, 9, 2, 2, 0);
    check_pool_backward_write(ctx, 17, 19, 2, 2, 0); /* 9 windows a row: one overlapping */
    check_pool_backward_write(ctx, 7, 7, 3, 2, 1);
    check_pool_backward_write(ctx, 5, 6, 3, 1, 1);
}

static void compare_bn_and_pool(nb_gemm *ctx, int threads)
{
    static const bn_case bn_cases[] = {{5, 3, 37}, {4, 16, 196}, {6, 8, 1}, {8, 32, 100},
                                       {3, 5, 9}};
    for (size_t i = 0; i < sizeof bn_cases / sizeof bn_cases[0]; i++) {
        size_t n;
        float *a = bn_all(&nb_conv_avx2, ctx, &bn_cases[i], &n);
        float *b = bn_all(&nb_conv_portable, ctx, &bn_cases[i], &n);
        double d = difference(a, b, n);
        CHECK_MSG(d < TOL, "batch norm %lldx%lldx%lld, %d threads: AVX2 differs by %.3g",
                  (long long)bn_cases[i].N, (long long)bn_cases[i].C,
                  (long long)bn_cases[i].HW, threads, d);
        printf("  batch norm %3lldx%2lldx%3lld     %d thread%s: AVX2 vs portable worst %.2e\n",
               (long long)bn_cases[i].N, (long long)bn_cases[i].C, (long long)bn_cases[i].HW,
               threads, threads > 1 ? "s" : " ", d);
        free(a), free(b);
    }
    compare_max_pool(ctx, 3, 4, 28, 28);
    compare_max_pool(ctx, 2, 3, 7, 7);
    compare_max_pool(ctx, 2, 2, 33, 34);
    compare_max_pool(ctx, 1, 2, 16, 50);
    compare_max_pool(ctx, 2, 2, 15, 16);
}

/* fashion-cnn's conv2 on 300 samples: more than one piece per thread (conv_onednn_run.c) — the
 * same bits as one sample per call. */
static void forward_in_pieces(nb_gemm *ctx, int threads)
{
    conv_case c = {"pieces", 300, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 0};
    nb_conv_shape s = shape_of(&c), one = s;
    one.N = 1;
    size_t xs = (size_t)(s.C * s.H * s.W), ys = (size_t)(s.K * s.P * s.Q);
    float *x = random_floats((size_t)s.N * xs), *w = random_floats((size_t)(s.K * s.C * 9));
    float *b = random_floats((size_t)s.K), *y = malloc((size_t)s.N * ys * sizeof *y);
    float *y1 = malloc((size_t)s.N * ys * sizeof *y1);
    float *ws = malloc(nb_conv2d_workspace(ctx, &s, NB_PRECISION_FP32) * sizeof *ws + 64);
    nb_conv2d_forward(ctx, NB_PRECISION_FP32, &s, x, w, b, y, ws);
    for (int64_t n = 0; n < s.N; n++)
        nb_conv2d_forward(ctx, NB_PRECISION_FP32, &one, x + n * (int64_t)xs, w, b,
                          y1 + n * (int64_t)ys, ws);
    CHECK_MSG(memcmp(y, y1, (size_t)s.N * ys * sizeof *y) == 0,
              "%d threads: conv forward on 300 samples differs from one sample at a time",
              threads);
    free(x), free(w), free(b), free(y), free(y1), free(ws);
}

int main(void)
{
    nb_error err = {0};
    if (!nb_gemm_available(NB_GEMM_ONEDNN)) {
        check_skip("oneDNN is not built in (install libdnnl-dev and rebuild)");
        return check_finish("test_conv_backends");
    }
    nb_gemm *portable = nb_gemm_new(NB_GEMM_PORTABLE, 1, &err);
    CHECK(portable != NULL);
    CHECK(strcmp(nb_conv2d_implementation(portable, NB_PRECISION_FP32), "portable") == 0);
    if (portable)
        check_pool_backward_writes(portable);
    for (int threads = 1; threads <= 2; threads++) {
        nb_gemm *onednn = nb_gemm_new(NB_GEMM_ONEDNN, threads, &err);
        CHECK(onednn != NULL);
        if (!onednn || !portable)
            break;
        CHECK(strcmp(nb_conv2d_implementation(onednn, NB_PRECISION_FP32), "onednn") == 0);
        /* bf16 graphs run convolution in fp32 on the same kernels */
        CHECK(strcmp(nb_conv2d_implementation(onednn, NB_PRECISION_BF16), "onednn") == 0);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            float *a[OUTS], *b[OUTS];
            size_t n[OUTS];
            nb_conv_shape shape = shape_of(&cases[i]);
            const char *impl = nb_conv2d_implementation_for(onednn, NB_PRECISION_FP32, &shape);
            const char *want = direct_case(&cases[i]) &&
                                       nb_conv_avx2.supports(onednn, NB_PRECISION_FP32)
                                   ? "avx2"
                                   : "onednn";
            CHECK_MSG(strcmp(impl, want) == 0, "%s: runs on %s, expected %s", cases[i].label,
                      impl, want);
            /* twice on oneDNN: the second call reuses the cached primitives */
            for (int rep = 0; rep < 2; rep++) {
                run_all(onednn, &cases[i], a, n);
                run_all(portable, &cases[i], b, n);
                double worst = 0;
                for (int o = 0; o < OUTS; o++) {
                    double d = difference(a[o], b[o], n[o]);
                    CHECK_MSG(d < TOL, "%s, %d threads: %s differs by %.3g", cases[i].label,
                              threads, out_names[o], d);
                    worst = fmax(worst, d);
                    free(a[o]), free(b[o]);
                }
                if (rep == 1)
                    printf("  %-28s %d thread%s: %s vs portable worst %.2e\n",
                           cases[i].label, threads, threads > 1 ? "s" : " ", impl, worst);
            }
        }
        check_pool_backward_writes(onednn);
        forward_in_pieces(onednn, threads);
        if (nb_conv_avx2.supports(onednn, NB_PRECISION_FP32))
            compare_bn_and_pool(onednn, threads);
        else if (threads == 1)
            printf("  batch norm and max pooling in AVX2: this CPU lacks AVX2 or FMA, not "
                   "compared\n");
        nb_gemm_free(onednn);
    }
    nb_gemm_free(portable);
    return check_finish("test_conv_backends");
}
