/* Convolution, pooling and batch norm: forward values against direct loops written from the
 * definitions (no im2col), every gradient against central finite differences (strided,
 * padded, dilated, grouped convolutions; overlapping pools; batch norm in training and in
 * evaluation), a deliberately wrong convolution backward caught, batch norm's running
 * statistics, and shapes that must be refused. */
#include "check.h"
#include "gradcheck_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* `desc` prepared for `batch` samples, inputs asking for their gradients, filled. */
static nb_graph *build(const char *label, const char *desc, int64_t batch, int *in, int *out)
{
    return build_filled(label, desc, batch, 3, 1, in, out);
}

/* At most 400 elements per tensor: the convolutions' inputs are large. */
static double gradcheck(const char *label, const char *desc, int training)
{
    return gradcheck_model(label, desc, training, 3, 400);
}

static void every_module(void)
{
    gradcheck("conv", "x = input(2, 5, 6)\ny = conv2d(x, 3, 3)", 0);
    gradcheck("conv-strided-padded", "x = input(2, 7, 6)\ny = conv2d(x, 4, 3x2, stride=2x1, "
              "padding=1x2)", 0);
    gradcheck("conv-dilated", "x = input(2, 7, 7)\ny = conv2d(x, 3, 3, dilation=2, padding=1)", 0);
    gradcheck("conv-grouped", "x = input(4, 5, 5)\ny = conv2d(x, 6, 3, groups=2, bias=false)", 0);
    gradcheck("conv-depthwise", "x = input(3, 5, 5)\ny = conv2d(x, 3, 3, groups=3, stride=2)", 0);
    gradcheck("conv-same-even", "x = input(2, 5, 4)\ny = conv2d(x, 2, 4x2, padding=same)", 0);
    gradcheck("conv-1x1", "x = input(3, 4, 4)\ny = conv2d(x, 2, 1)", 0);
    gradcheck("max-pool", "x = input(2, 6, 6)\ny = max_pool2d(x, 2)", 0);
    gradcheck("max-pool-overlap", "x = input(2, 7, 7)\ny = max_pool2d(x, 3, stride=2, padding=1)", 0);
    gradcheck("avg-pool-overlap", "x = input(2, 7, 6)\ny = avg_pool2d(x, 3, stride=2, padding=1)", 0);
    gradcheck("avg-pool-exclude-pad", "x = input(2, 5, 5)\ny = avg_pool2d(x, 3x2, stride=1, "
              "padding=1, count_include_pad=false)", 0);
    gradcheck("global-avg-pool", "x = input(3, 4, 5)\ny = global_avg_pool(x)", 0);
    gradcheck("batch-norm-2d-train", "x = input(3, 4, 4)\ny = batch_norm(x)", 1);
    gradcheck("batch-norm-2d-eval", "x = input(3, 4, 4)\ny = batch_norm(x)", 0);
    gradcheck("batch-norm-1d-train", "x = input(5)\ny = batch_norm(x, momentum=0.2, eps=1e-3)", 1);
    gradcheck("cnn", "x = input(1, 8, 8)\nc1 = conv2d(x, 4, 3, padding=1)\nb1 = batch_norm(c1)\n"
              "r1 = relu(b1)\np1 = max_pool2d(r1, 2)\nc2 = conv2d(p1, 4, 3, padding=1)\n"
              "g = global_avg_pool(c2)\nz = linear(g, 3)\ny = labels()\n"
              "l = cross_entropy(z, y)", 1);
}

/* ---- forward values against the definitions ------------------------------------------------ */

/* y[n,k,p,q] = b[k] + Σ w[k,c,r,s] x[n, g·Cg + c, p·sh − pt + r·dh, q·sw − pl + s·dw] */
static void reference_conv(nb_graph *g, int node, int64_t N, const int64_t win[12], float *y)
{
    const nb_node *n = &g->nodes[node], *x = &g->nodes[n->inputs[0]], *w = &g->nodes[n->inputs[1]];
    const float *b = n->n_inputs == 3 ? g->nodes[n->inputs[2]].value : NULL;
    int64_t C = x->dims[0], H = x->dims[1], W = x->dims[2], K = n->dims[0], P = n->dims[1];
    int64_t Q = n->dims[2], R = w->dims[2], S = w->dims[3], groups = win[10], Cg = C / groups;
    for (int64_t i = 0; i < N; i++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t p = 0; p < P; p++)
                for (int64_t q = 0; q < Q; q++) {
                    double sum = b ? b[k] : 0.0;
                    int64_t grp = k / (K / groups);
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t r = 0; r < R; r++)
                            for (int64_t s = 0; s < S; s++) {
                                int64_t h = p * win[2] - win[4] + r * win[8];
                                int64_t v = q * win[3] - win[5] + s * win[9];
                                if (h < 0 || h >= H || v < 0 || v >= W)
                                    continue;
                                sum += (double)w->value[((k * Cg + c) * R + r) * S + s] *
                                       x->value[((i * C + grp * Cg + c) * H + h) * W + v];
                            }
                    y[((i * K + k) * P + p) * Q + q] = (float)sum;
                }
}

static void conv_values(void)
{
    static const struct {
        const char *desc;
        int64_t win[12]; /* kh kw sh sw pt pl pb pr dh dw groups */
    } cases[] = {
        {"x = input(3, 9, 8)\ny = conv2d(x, 4, 3)", {3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
        {"x = input(2, 9, 8)\ny = conv2d(x, 3, 3x2, stride=2x3, padding=1x2)",
         {3, 2, 2, 3, 1, 2, 1, 2, 1, 1, 1}},
        {"x = input(4, 9, 9)\ny = conv2d(x, 6, 3, dilation=2x1, groups=2, bias=false)",
         {3, 3, 1, 1, 0, 0, 0, 0, 2, 1, 2}},
        {"x = input(2, 6, 7)\ny = conv2d(x, 2, 4, padding=same)", {4, 4, 1, 1, 1, 1, 2, 2, 1, 1, 1}},
        {"x = input(4, 5, 5)\ny = conv2d(x, 8, 1)", {1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int in, out;
        nb_graph *g = build("conv-values", cases[c].desc, 5, &in, &out);
        nb_error err = {0};
        CHECK_OK(nb_graph_forward(g, &err), &err);
        int64_t n = 5 * nb_node_size(g, out);
        float *ref = malloc((size_t)n * sizeof *ref);
        reference_conv(g, out, 5, cases[c].win, ref);
        double worst = 0;
        for (int64_t i = 0; i < n; i++)
            worst = fmax(worst, fabs(ref[i] - nb_value(g, out)[i]));
        CHECK_MSG(worst < 1e-5, "case %zu: conv2d differs from its definition by %.3g", c, worst);
        free(ref);
        nb_graph_free(g);
    }
    printf("  conv2d forward matches the definition in %zu configurations\n",
           sizeof cases / sizeof cases[0]);
}

static void pool_values(void)
{
    /* a 1×4×4 image, 2×2 windows at stride 1: the maximum and the mean of each, ties to the
     * first element in row-major order */
    int in, out;
    nb_graph *g = build("pool", "x = input(1, 4, 4)\ny = max_pool2d(x, 2, stride=1)", 1, &in, &out);
    static const float x[16] = {1, 5, 2, 0, 3, 5, 2, 2, 0, 0, 9, 1, 4, 4, 1, 1};
    memcpy(nb_value(g, in), x, sizeof x);
    nb_error err = {0};
    CHECK_OK(nb_graph_forward(g, &err), &err);
    static const float want[9] = {5, 5, 2, 5, 9, 9, 4, 9, 9};
    for (int i = 0; i < 9; i++)
        CHECK_NEAR(nb_value(g, out)[i], want[i], 0, 0);
    float seed[9];
    for (int i = 0; i < 9; i++)
        seed[i] = 1.0f;
    CHECK_OK(nb_graph_backward(g, out, seed, &err), &err);
    /* the tie 5/5 in the first two windows goes to (0,1), the first; 9 wins four windows */
    static const float dx[16] = {0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0};
    for (int i = 0; i < 16; i++)
        CHECK_NEAR(nb_grad(g, in)[i], dx[i], 0, 0);
    nb_graph_free(g);

    g = build("pool", "x = input(1, 3, 3)\ny = avg_pool2d(x, 2, stride=2, padding=1)", 1, &in, &out);
    static const float x3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    memcpy(nb_value(g, in), x3, sizeof x3);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    static const float avg[4] = {1 / 4.0f, (2 + 3) / 4.0f, (4 + 7) / 4.0f, (5 + 6 + 8 + 9) / 4.0f};
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(nb_value(g, out)[i], avg[i], 1e-6, 0);
    nb_graph_free(g);
}

/* One training forward moves the running statistics by PyTorch's rule; evaluation uses them. */
static void batch_norm_statistics(void)
{
    int in, out;
    nb_graph *g = build("bn", "x = input(2, 1, 2)\ny = batch_norm(x, momentum=0.5)", 2, &in, &out);
    static const float x[8] = {1, 2, 10, 20, 3, 6, 30, 40}; /* channel 0: 1 2 3 6; 1: 10 20 30 40 */
    memcpy(nb_value(g, in), x, sizeof x);
    float *gamma = nb_value(g, nb_graph_find(g, "y.weight")), *beta = nb_value(g, nb_graph_find(g, "y.bias"));
    gamma[0] = gamma[1] = 1.0f;
    beta[0] = beta[1] = 0.0f;
    nb_error err = {0};
    nb_graph_set_training(g, 1);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    const float *rm = nb_value(g, nb_graph_find(g, "y.running_mean"));
    const float *rv = nb_value(g, nb_graph_find(g, "y.running_var"));
    const float *count = nb_value(g, nb_graph_find(g, "y.num_batches_tracked"));
    /* channel 0: mean 3, biased var (4+1+0+9)/4 = 3.5, unbiased 14/3 */
    CHECK_NEAR(rm[0], 0.5 * 3, 1e-6, 0);
    CHECK_NEAR(rv[0], 0.5 * 1 + 0.5 * 14.0 / 3, 1e-5, 0);
    CHECK_NEAR(rm[1], 0.5 * 25, 1e-5, 0);
    CHECK_NEAR(rv[1], 0.5 + 0.5 * 500.0 / 3, 1e-3, 0);
    CHECK_NEAR(count[0], 1, 0, 0);
    CHECK_NEAR(nb_value(g, out)[0], (1 - 3) / sqrt(3.5 + 1e-5), 1e-5, 0);
    CHECK(nb_graph_buffer_count(g) == 3 && nb_graph_buffer_floats(g) == 5);
    CHECK(nb_graph_param_floats(g) == 4); /* γ and β only: buffers are not trained */
    nb_graph_set_training(g, 0);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK_NEAR(nb_value(g, out)[0], (1 - rm[0]) / sqrt(rv[0] + 1e-5), 1e-5, 0);
    CHECK_NEAR(count[0], 1, 0, 0); /* evaluation does not count */
    nb_graph_free(g);
}

/* ---- a wrong backward is caught ------------------------------------------------------------ */

/* dW without the input's padding offset: uses x[n, c, p + r, q + s] as if pad were 0. */
static void broken_conv_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    int64_t C = x->dims[0], H = x->dims[1], W = x->dims[2], K = n->dims[0], P = n->dims[1];
    int64_t Q = n->dims[2], R = w->dims[2], S = w->dims[3];
    for (int64_t i = 0; i < N; i++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t r = 0; r < R; r++)
                    for (int64_t s = 0; s < S; s++)
                        for (int64_t p = 0; p < P && p + r < H; p++)
                            for (int64_t q = 0; q < Q && q + s < W; q++)
                                w->grad[((k * C + c) * R + r) * S + s] +=
                                    n->grad[((i * K + k) * P + p) * Q + q] *
                                    x->value[((i * C + c) * H + p + r) * W + q + s];
}

static void wrong_backward_is_caught(void)
{
    broken_backward_is_caught("conv2d", "x = input(2, 5, 5)\ny = conv2d(x, 2, 3, padding=1, "
                              "bias=false)", "y", broken_conv_backward, 2, 0);
}

/* ---- shapes that must be refused ------------------------------------------------------------ */

static void refused(const char *desc, const char *expect)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int in, out;
    nb_status s = nb_describe(g, desc, "bad.nb", &in, &out, &err);
    CHECK_MSG(s != NB_OK && strstr(err.msg, expect), "'%s': status %d, message '%s', expected "
              "'%s'", desc, s, err.msg, expect);
    nb_graph_free(g);
}

static void bad_shapes(void)
{
    refused("x = input(3, 8, 8)\ny = conv2d(x, 4, 3, groups=2)", "groups = 2 must divide");
    refused("x = input(4, 8, 8)\ny = conv2d(x, 3, 3, groups=2)", "groups = 2 must divide");
    refused("x = input(1, 8, 8)\ny = conv2d(x, 4, 3, stride=0)", "stride 0");
    refused("x = input(1, 8, 8)\ny = conv2d(x, 4, 3, stride=-2)", "stride -2");
    refused("x = input(1, 8, 8)\ny = conv2d(x, 4, 9)", "window spans 9");
    refused("x = input(1, 8, 8)\ny = conv2d(x, 4, 3, dilation=4)", "window spans 9");
    refused("x = input(1, 8, 8)\ny = conv2d(x, 4, 0)", "kernel 0x0");
    refused("x = input(1, 8, 8)\ny = conv2d(x, 4, 3, padding=-1)", "padding -1");
    refused("x = input(1, 8, 8)\ny = conv2d(x, 4, 2147483648)", "kernel");
    refused("x = input(1, 8, 8)\ny = conv2d(x, 4, 3x)", "expected a size");
    refused("x = input(64)\ny = conv2d(x, 4, 3)", "expected images");
    refused("x = input(1, 32768, 32768)\ny = conv2d(x, 1024, 1)", "more than 2^30");
    refused("x = input(1, 8, 8)\ny = max_pool2d(x, 2, padding=2)", "more than half");
    refused("x = input(1, 8, 8)\ny = max_pool2d(x, 2, stride=0)", "stride 0");
    refused("x = input(1, 8, 8)\ny = avg_pool2d(x, 10)", "window spans 10");
    refused("x = input(1, 8, 8)\ny = batch_norm(x, momentum=2)", "momentum");
    refused("x = input(1, 8, 8)\ny = batch_norm(x, eps=0)", "eps");
    refused("x = input(1, 8, 8)\ny = batch_norm(x, affine=false)", "unknown option");
    refused("x = input(1, 8, 8)\ny = global_avg_pool(x, 2)", "too many arguments");
}

/* One thread or two: the same numbers up to the order of float sums (each sum has a fixed
 * order per thread count, and the work split changes only which thread runs it). */
static void threads_agree(void)
{
    const char *desc = "x = input(3, 10, 10)\nc = conv2d(x, 8, 3, padding=1)\nb = batch_norm(c)\n"
                       "p = max_pool2d(b, 2)\nz = flatten(p)\nf = linear(z, 3)";
    float *results[2];
    for (int t = 0; t < 2; t++) {
        nb_error err = {0};
        nb_gemm *gemm = nb_gemm_new(NB_GEMM_AUTO, t + 1, &err);
        nb_graph *g = nb_graph_new(7, gemm);
        int in, out;
        CHECK_OK(nb_describe(g, desc, "threads", &in, &out, &err), &err);
        CHECK_OK(nb_graph_prepare(g, 6, &err), &err);
        nb_rng rng;
        nb_rng_seed(&rng, 42);
        fill_graph(g, &rng, 3);
        nb_graph_set_training(g, 1);
        CHECK_OK(nb_graph_forward(g, &err), &err);
        CHECK_OK(nb_graph_backward(g, out, NULL, &err), &err);
        size_t n = nb_graph_param_floats(g);
        results[t] = malloc(n * sizeof(float));
        memcpy(results[t], nb_graph_param_grads(g), n * sizeof(float));
        if (t == 1) {
            /* relative to the largest gradient: oneDNN's convolution primitives sum in an
             * order that depends on the samples in a thread's block (conv_onednn_run.c), so an
             * element that cancels out differs by rounding of the large terms it sums */
            double worst = 0, largest = 1e-30;
            for (size_t i = 0; i < n; i++)
                largest = fmax(largest, fabs(results[0][i]));
            for (size_t i = 0; i < n; i++)
                worst = fmax(worst, fabs(results[0][i] - results[1][i]) / largest);
            CHECK_MSG(worst < 1e-5, "1 and 2 threads differ by %.3g", worst);
            printf("  1 and 2 threads: gradients agree to %.2e\n", worst);
        }
        nb_graph_free(g);
        nb_gemm_free(gemm);
    }
    free(results[0]);
    free(results[1]);
}

int main(void)
{
    every_module();
    conv_values();
    pool_values();
    batch_norm_statistics();
    wrong_backward_is_caught();
    bad_shapes();
    threads_agree();
    return check_finish("test_conv");
}
