/* bf16 mixed precision (src/backend/bf16.c, issue 8):
 *   - conversion: round to nearest even in every corner (ties both ways, subnormals, the
 *     overflow to inf, inf, NaN kept NaN), every bf16 value round-trips, the vectorised
 *     conversion equals the scalar one bit for bit;
 *   - Linear's three products in bf16 (forward with bias and fused ReLU, dX, dW, accumulation
 *     into parameter gradients) equal the products of the bf16-rounded operands up to fp32
 *     accumulation — which an fp32 product would not — and the exact products within the
 *     derived bound 2u·Σ|a_k b_k|, u = 2^-8; one and two threads, batches that split or not;
 *   - the gradient check in bf16 mode passes within 8uL on small models, and fails at fp32's
 *     tolerance (so backprop really ran in bf16);
 *   - the weights' shadow follows the parameters: writes through nb_value of a parameter or
 *     declared by nb_graph_params_changed are seen, a write the graph was not told of is not
 *     (the contract: reading, through nb_graph_params too, is not a change), and the trainer's bf16 run equals a hand-written loop that invalidates the
 *     shadow after every step, and differs from one that does not (a stale shadow is caught);
 *   - the refusal path: NABLA_DISABLE_BF16=1 makes nb_bf16_supported and
 *     nb_graph_set_precision refuse with NB_ENOTSUP and a message, leaving the graph in fp32.
 * On a machine without bf16 support only the conversion and refusal checks run. */
#include "backend/bf16.h"
#include "check.h"
#include "backend/gemm_pool.h"
#include "core/graph.h"
#include "nabla.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

static const double U = 1.0 / 256; /* bf16's unit roundoff 2^-8 */

static uint32_t bits_of(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static nb_bf16 round_bits(uint32_t u) { return nb_bf16_from_float(float_of(u)); }

static float rounded(float x) { return nb_bf16_to_float(nb_bf16_from_float(x)); }

/* ---- conversion ------------------------------------------------------------------------- */

static void test_conversion(void)
{
    /* ties go to the even neighbour: 1 + 2^-8 lies halfway between 1 (0x3f80, even) and
     * 1 + 2^-7 (0x3f81); 1 + 3·2^-8 between 0x3f81 (odd) and 0x3f82 */
    CHECK(round_bits(0x3f808000u) == 0x3f80);
    CHECK(round_bits(0x3f818000u) == 0x3f82);
    CHECK(round_bits(0x3f808001u) == 0x3f81); /* just above half: up */
    CHECK(round_bits(0x3f807fffu) == 0x3f80); /* just below: down */
    CHECK(round_bits(0xbf818000u) == 0xbf82); /* sign does not matter */
    CHECK(round_bits(0x3f80ffffu) == 0x3f81);
    CHECK(nb_bf16_from_float(1.0f) == 0x3f80 && nb_bf16_from_float(-2.0f) == 0xc000);
    CHECK(nb_bf16_from_float(0.0f) == 0x0000 && nb_bf16_from_float(-0.0f) == 0x8000);
    /* subnormals round the same way, no flush to zero */
    CHECK(round_bits(0x00008000u) == 0x0000); /* tie, even: down */
    CHECK(round_bits(0x00018000u) == 0x0002); /* tie, odd: up */
    CHECK(round_bits(0x00010001u) == 0x0001);
    CHECK(round_bits(0x007fffffu) == 0x0080); /* largest subnormal rounds up to FLT_MIN */
    /* infinities stay; past the largest finite bf16 (0x7f7f) plus half an ulp: inf */
    CHECK(nb_bf16_from_float(float_of(0x7f800000u)) == 0x7f80);
    CHECK(nb_bf16_from_float(float_of(0xff800000u)) == 0xff80);
    CHECK(round_bits(0x7f7f7fffu) == 0x7f7f);
    CHECK(round_bits(0x7f7f8000u) == 0x7f80); /* tie at the top, odd: up, to inf */
    CHECK(nb_bf16_from_float(FLT_MAX) == 0x7f80);
    CHECK(nb_bf16_from_float(-FLT_MAX) == 0xff80);
    /* NaN stays NaN, quiet, sign kept — also one whose payload sits in the dropped bits,
     * which a plain carry would turn into inf */
    uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff800001u, 0x7fbfffffu,
                       0x7fffffffu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        nb_bf16 h = round_bits(nans[i]);
        CHECK_MSG((h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0, "0x%08x -> 0x%04x", nans[i], h);
        CHECK_MSG((h & 0x0040) != 0, "0x%08x -> 0x%04x is not quiet", nans[i], h);
        CHECK((h & 0x8000) == ((nans[i] >> 16) & 0x8000));
    }
    /* every bf16 value converts to float and back unchanged (NaNs: to a NaN) */
    int bad = 0;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float x = nb_bf16_to_float((nb_bf16)h);
        nb_bf16 back = nb_bf16_from_float(x);
        int nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
        bad += bits_of(x) != h << 16;
        bad += nan ? !((back & 0x7f80) == 0x7f80 && (back & 0x7f)) : back != h;
    }
    CHECK_MSG(bad == 0, "%d bf16 values do not round-trip", bad);
    /* the relative error of rounding is at most u = 2^-8 over the normal range */
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    double worst = 0;
    for (int i = 0; i < 100000; i++) {
        float x = (nb_rng_uniform(&rng) - 0.5f) * 1e6f * nb_rng_uniform(&rng);
        if (x != 0.0f) {
            double e = (double)fabsf(rounded(x) - x) / fabsf(x);
            worst = e > worst ? e : worst;
        }
    }
    CHECK_MSG(worst <= U && worst > U / 2, "worst relative rounding error %.3g (u = %.3g)",
              worst, U);
    /* the vectorised conversion: bit for bit the scalar one, on random bit patterns (every
     * class of float among them) and an odd length for the tail */
    size_t n = 100003;
    float *src = malloc(n * sizeof *src);
    nb_bf16 *dst = malloc(n * sizeof *dst);
    CHECK(src && dst);
    if (src && dst) {
        for (size_t i = 0; i < n; i++)
            src[i] = float_of((uint32_t)nb_rng_next(&rng));
        for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
            src[i] = float_of(nans[i]);
        src[10] = float_of(0x3f808000u);
        src[11] = float_of(0x00018000u);
        src[12] = float_of(0x7f7f8000u);
        nb_bf16_convert(src, dst, n);
        size_t differ = 0;
        for (size_t i = 0; i < n; i++)
            differ += dst[i] != nb_bf16_from_float(src[i]);
        CHECK_MSG(differ == 0, "%zu of %zu conversions differ from the scalar rounding", differ, n);
    }
    free(src);
    free(dst);
}

/* ---- the products ----------------------------------------------------------------------- */

static float *random_floats(nb_rng *rng, size_t n, float scale)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++)
        x[i] = scale * (2.0f * nb_rng_uniform(rng) - 1.0f);
    return x;
}

/* got against the product of rounded operands (within fp32 accumulation, tight: an fp32
 * product misses it by ~2u·Σ|ab|) and against the exact one (within the bf16 bound).
 * sum_abs is Σ|a_k b_k| of the exact operands, K the length of the sum. Returns failures. */
static int check_value(const char *what, int64_t at, double got, double of_rounded, double exact,
                       double sum_abs, double rounded_abs, int K)
{
    double fp32 = (K + 4) * (double)FLT_EPSILON;
    int before = check_failures;
    CHECK_MSG(fabs(got - of_rounded) <= fp32 * rounded_abs + 1e-30,
              "%s[%lld] = %.9g, product of the bf16 operands %.9g", what, (long long)at, got,
              of_rounded);
    CHECK_MSG(fabs(got - exact) <= (2 * U + U * U + fp32) * sum_abs + 1e-30,
              "%s[%lld] = %.9g, exact %.9g: beyond 2u·Σ|ab| = %.3g", what, (long long)at, got,
              exact, 2 * U * sum_abs);
    return check_failures - before;
}

/* A Linear layer (in -> out, bias, then ReLU when relu) on N random samples in bf16: the
 * forward output, dX and dW (twice, accumulating) against double references. */
static void test_linear(nb_gemm *gemm, int N, int in, int out, int relu)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, gemm);
    int64_t dims[1] = {in};
    int x = nb_input(g, "x", 1, dims);
    int y = nb_linear(g, "fc", x, out, 1);
    int top = relu ? nb_relu(g, "r", y) : y;
    int w = nb_graph_find(g, "fc.weight"), b = nb_graph_find(g, "fc.bias");
    nb_node_set_requires_grad(g, x, 1);
    CHECK_OK(nb_graph_set_precision(g, NB_PRECISION_BF16, &err), &err);
    CHECK_OK(nb_graph_prepare(g, N, &err), &err);
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)(N * 1000 + in));
    float *X = random_floats(&rng, (size_t)N * in, 1.0f);
    float *W = random_floats(&rng, (size_t)out * in, 0.1f);
    float *B = random_floats(&rng, (size_t)out, 0.1f);
    float *dY = random_floats(&rng, (size_t)N * out, 1.0f);
    if (!X || !W || !B || !dY) {
        CHECK(!"out of memory");
        goto done;
    }
    memcpy(nb_value(g, x), X, (size_t)N * in * sizeof *X);
    memcpy(nb_value(g, w), W, (size_t)out * in * sizeof *W);
    memcpy(nb_value(g, b), B, (size_t)out * sizeof *B);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    const float *Y = nb_value(g, y), *R = relu ? nb_value(g, top) : NULL;
    int bad = 0;
    for (int i = 0; i < N && bad < 5; i++)
        for (int j = 0; j < out && bad < 5; j++) {
            double of_rounded = B[j], exact = B[j], sum_abs = fabs(B[j]), rounded_abs = fabs(B[j]);
            for (int k = 0; k < in; k++) {
                double xr = rounded(X[(size_t)i * in + k]), wr = rounded(W[(size_t)j * in + k]);
                of_rounded += xr * wr;
                rounded_abs += fabs(xr * wr);
                exact += (double)X[(size_t)i * in + k] * W[(size_t)j * in + k];
                sum_abs += fabs((double)X[(size_t)i * in + k] * W[(size_t)j * in + k]);
            }
            float got = Y[(size_t)i * out + j];
            bad += check_value("Y", (int64_t)i * out + j, got, of_rounded, exact, sum_abs,
                               rounded_abs, in);
            if (R)
                bad += R[(size_t)i * out + j] != (got > 0.0f ? got : 0.0f);
        }
    /* backward from the Linear's output with upstream dY: dX = dY W, dW = dYᵀ X (accumulated
     * by a second call: parameter gradients add up until zeroed) */
    nb_graph_zero_grad(g);
    for (int pass = 1; pass <= 2; pass++)
        CHECK_OK(nb_graph_backward(g, y, dY, &err), &err);
    const float *dX = nb_grad(g, x), *dW = nb_grad(g, w);
    for (int i = 0; i < N && bad < 10; i++)
        for (int k = 0; k < in && bad < 10; k++) {
            double of_rounded = 0, exact = 0, sum_abs = 0, rounded_abs = 0;
            for (int j = 0; j < out; j++) {
                double dr = rounded(dY[(size_t)i * out + j]), wr = rounded(W[(size_t)j * in + k]);
                of_rounded += dr * wr;
                rounded_abs += fabs(dr * wr);
                exact += (double)dY[(size_t)i * out + j] * W[(size_t)j * in + k];
                sum_abs += fabs((double)dY[(size_t)i * out + j] * W[(size_t)j * in + k]);
            }
            bad += check_value("dX", (int64_t)i * in + k, dX[(size_t)i * in + k], of_rounded,
                               exact, sum_abs, rounded_abs, out);
        }
    for (int j = 0; j < out && bad < 15; j++)
        for (int k = 0; k < in && bad < 15; k++) {
            double of_rounded = 0, exact = 0, sum_abs = 0, rounded_abs = 0;
            for (int i = 0; i < N; i++) {
                double dr = rounded(dY[(size_t)i * out + j]), xr = rounded(X[(size_t)i * in + k]);
                of_rounded += dr * xr;
                rounded_abs += fabs(dr * xr);
                exact += (double)dY[(size_t)i * out + j] * X[(size_t)i * in + k];
                sum_abs += fabs((double)dY[(size_t)i * out + j] * X[(size_t)i * in + k]);
            }
            bad += check_value("dW (2 passes)", (int64_t)j * in + k, dW[(size_t)j * in + k],
                               2 * of_rounded, 2 * exact, 2 * sum_abs, 2 * rounded_abs, 2 * N);
        }
    CHECK_MSG(bad == 0, "Linear %d -> %d%s on %d samples, %d thread(s): %d mismatches", in, out,
              relu ? " + ReLU" : "", N, nb_gemm_threads(gemm), bad);
    char kernels[512];
    nb_graph_kernels(g, kernels, sizeof kernels);
    CHECK_MSG(strstr(kernels, "fwd ") && !strstr(kernels, "fwd -") && !strstr(kernels, "dX -") &&
                  !strstr(kernels, "dW -") && !strstr(kernels, "fell back"),
              "kernels: %s", kernels);
done:
    free(X);
    free(W);
    free(B);
    free(dY);
    nb_graph_free(g);
}

/* ---- the gradient check ------------------------------------------------------------------ */

/* desc checked in bf16 (redrawing inputs whose ReLU branch bf16 flips, as the CLI does)
 * within tol, and shown to miss fp32's tolerance somewhere. */
static void test_gradcheck(nb_gemm *gemm, const char *label, const char *desc, double tol)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(3, gemm);
    int in, out;
    CHECK_OK(nb_describe(g, desc, label, &in, &out, &err), &err);
    nb_node_set_requires_grad(g, in, 1);
    CHECK_OK(nb_graph_set_precision(g, NB_PRECISION_BF16, &err), &err);
    CHECK_OK(nb_graph_prepare(g, 3, &err), &err);
    /* the library's rule (nb_gradcheck_tolerance) is the 8uL derived for these models */
    CHECK_MSG(fabs(nb_gradcheck_tolerance(g, out) - tol) < 1e-12, "%s: tolerance %.4g, expected %.4g",
              label, nb_gradcheck_tolerance(g, out), tol);
    nb_gradcheck_tensor res[16];
    int count = 0;
    nb_gradcheck_options opt = {.seed = 5, .eps = 1e-2, .floor = 1e-2};
    nb_status s = NB_ENUMERIC;
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    for (int attempt = 0; attempt < 100 && s == NB_ENUMERIC; attempt++) {
        nb_graph_init_params(g, NB_INIT_XAVIER_UNIFORM, &rng);
        float *x = nb_value(g, in);
        for (int64_t k = 0; k < 3 * nb_node_size(g, in); k++)
            x[k] = nb_rng_normal(&rng);
        int labels = nb_graph_find(g, "y");
        if (labels >= 0)
            for (int k = 0; k < 3; k++)
                nb_labels_data(g, labels)[k] = (int32_t)nb_rng_below(&rng, 3);
        s = nb_gradcheck(g, out, &opt, res, 16, &count, &err);
    }
    CHECK_OK(s, &err);
    CHECK(nb_graph_precision(g) == NB_PRECISION_BF16); /* restored after the fp32 differences */
    double worst = 0;
    for (int i = 0; i < count; i++) {
        CHECK_MSG(res[i].worst <= tol && res[i].checked > 0, "%s: %s: worst error %.3g > %.3g",
                  label, nb_node_name(g, res[i].node), res[i].worst, tol);
        CHECK(res[i].passed && res[i].tolerance == nb_gradcheck_tolerance(g, out));
        worst = res[i].worst > worst ? res[i].worst : worst;
    }
    /* fp32's check allows 1e-4 relative here; bf16's rounding must show above it */
    CHECK_MSG(worst > 1e-3, "%s: worst error %.3g: did backprop run in bf16?", label, worst);
    printf("gradcheck %s in bf16: worst normwise error %.3g (tolerance %.3g)\n", label, worst, tol);
    nb_graph_free(g);
}

/* ---- the shadow of the weights ----------------------------------------------------------- */

static void test_shadow(nb_gemm *gemm)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, gemm), *ref = nb_graph_new(1, gemm);
    int64_t dims[1] = {40};
    int x = nb_input(g, "x", 1, dims), y = nb_linear(g, "fc", x, 30, 0);
    int rx = nb_input(ref, "x", 1, dims), ry = nb_linear(ref, "fc", rx, 30, 0);
    int w = nb_graph_find(g, "fc.weight"), rw = nb_graph_find(ref, "fc.weight");
    CHECK_OK(nb_graph_set_precision(g, NB_PRECISION_BF16, &err), &err);
    CHECK_OK(nb_graph_set_precision(ref, NB_PRECISION_BF16, &err), &err);
    CHECK_OK(nb_graph_prepare(g, 8, &err), &err);
    CHECK_OK(nb_graph_prepare(ref, 8, &err), &err);
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    float *X = random_floats(&rng, 8 * 40, 1.0f), *W1 = random_floats(&rng, 30 * 40, 1.0f);
    float *W2 = random_floats(&rng, 30 * 40, 1.0f);
    memcpy(nb_value(g, x), X, 8 * 40 * sizeof *X);
    memcpy(nb_value(ref, rx), X, 8 * 40 * sizeof *X);
    float *p = nb_graph_params(g); /* a pointer kept across forward passes */
    memcpy(p, W1, 30 * 40 * sizeof *p);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    /* the contract: a write through a kept pointer is not seen until declared... */
    memcpy(p, W2, 30 * 40 * sizeof *p);
    memcpy(nb_value(ref, rw), W1, 30 * 40 * sizeof *p);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK_OK(nb_graph_forward(ref, &err), &err);
    CHECK(memcmp(nb_value(g, y), nb_value(ref, ry), 8 * 30 * sizeof(float)) == 0);
    /* ...and is once declared */
    nb_graph_params_changed(g);
    memcpy(nb_value(ref, rw), W2, 30 * 40 * sizeof *p);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK_OK(nb_graph_forward(ref, &err), &err);
    CHECK(memcmp(nb_value(g, y), nb_value(ref, ry), 8 * 30 * sizeof(float)) == 0);
    /* nb_value of a parameter counts as a write; so does initialisation */
    memcpy(nb_value(g, w), W1, 30 * 40 * sizeof *p);
    memcpy(nb_value(ref, rw), W1, 30 * 40 * sizeof *p);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK_OK(nb_graph_forward(ref, &err), &err);
    CHECK(memcmp(nb_value(g, y), nb_value(ref, ry), 8 * 30 * sizeof(float)) == 0);
    nb_rng_seed(&rng, 4);
    nb_graph_init_params(g, NB_INIT_KAIMING_UNIFORM, &rng);
    memcpy(nb_value(ref, rw), nb_graph_params(g), 30 * 40 * sizeof *p);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK_OK(nb_graph_forward(ref, &err), &err);
    CHECK(memcmp(nb_value(g, y), nb_value(ref, ry), 8 * 30 * sizeof(float)) == 0);
    /* evaluation mode reads the blocked layout (a second shadow): the same numbers */
    nb_graph_set_training(g, 1);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK(memcmp(nb_value(g, y), nb_value(ref, ry), 8 * 30 * sizeof(float)) == 0);
    free(X);
    free(W1);
    free(W2);
    nb_graph_free(g);
    nb_graph_free(ref);
}

/* Full-batch SGD with momentum on spirals, E steps: the trainer in bf16, and the same steps
 * written out — once telling the graph after each step that the weights changed, once not
 * (the stale shadow: every step's products then use the first step's weights). */
static float *train_by_hand(nb_gemm *gemm, const nb_dataset *ds, const nb_train_config *cfg,
                            int tell)
{
    nb_error err = {0};
    nb_model *m = nb_model_new("2-64-64-3", "test", 1, gemm, &err);
    CHECK(m != NULL);
    if (!m)
        return NULL;
    nb_graph *g = nb_model_graph(m);
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_graph_init_params(g, NB_INIT_KAIMING_UNIFORM, &rng);
    CHECK_OK(nb_graph_set_precision(g, NB_PRECISION_BF16, &err), &err);
    size_t n = nb_graph_param_floats(g);
    nb_optim *opt = nb_optim_new(&cfg->optim, n, &err);
    CHECK_OK(nb_graph_prepare(g, ds->count, &err), &err);
    int64_t *order = malloc((size_t)ds->count * sizeof *order);
    for (int64_t i = 0; order && i < ds->count; i++)
        order[i] = i;
    if (order)
        nb_dataset_gather(ds, order, ds->count, NULL, nb_value(g, nb_model_input(m)),
                          nb_labels_data(g, nb_model_labels(m)));
    free(order);
    float *w = nb_graph_params(g), *dw = nb_graph_param_grads(g);
    for (int e = 0; e < cfg->epochs; e++) {
        CHECK_OK(nb_graph_forward_to(g, nb_model_loss(m), &err), &err);
        CHECK_OK(nb_graph_backward_step(g, nb_model_loss(m), NULL, &err), &err);
        nb_optim_step(opt, w, dw, cfg->optim.lr);
        if (tell)
            nb_graph_params_changed(g);
    }
    float *out = malloc(n * sizeof *out);
    if (out)
        memcpy(out, w, n * sizeof *out);
    nb_optim_free(opt);
    nb_model_free(m);
    return out;
}

static void test_trainer(nb_gemm *gemm)
{
    nb_error err = {0};
    nb_dataset ds = {0};
    CHECK_OK(nb_spirals(&ds, 200, 3, 0.2f, 1, &err), &err);
    nb_train_config cfg;
    nb_train_config_default(&cfg);
    cfg.epochs = 6;
    cfg.batch = 0; /* full batch: one step per epoch, samples in order */
    cfg.order = NB_ORDER_SEQUENTIAL;
    cfg.optim.lr = 0.2f;
    nb_model *m = nb_model_new("2-64-64-3", "test", 1, gemm, &err);
    CHECK(m != NULL);
    nb_graph *g = nb_model_graph(m);
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_graph_init_params(g, NB_INIT_KAIMING_UNIFORM, &rng);
    CHECK_OK(nb_graph_set_precision(g, NB_PRECISION_BF16, &err), &err);
    nb_trainer *t = nb_trainer_new(m, &ds, NULL, &cfg, &err);
    CHECK(t != NULL);
    if (t)
        CHECK_OK(nb_trainer_run(t, NULL, &err), &err);
    float *good = train_by_hand(gemm, &ds, &cfg, 1), *stale = train_by_hand(gemm, &ds, &cfg, 0);
    size_t n = nb_graph_param_floats(g);
    if (good && stale) {
        CHECK_MSG(memcmp(nb_graph_params(g), good, n * sizeof *good) == 0,
                  "the trainer's bf16 run differs from the same steps with the shadow renewed "
                  "after each");
        CHECK_MSG(memcmp(good, stale, n * sizeof *good) != 0,
                  "a stale shadow went unnoticed: the weights did not depend on it");
    }
    free(good);
    free(stale);
    nb_trainer_free(t);
    nb_model_free(m);
    nb_dataset_free(&ds);
}

/* ---- refusal ----------------------------------------------------------------------------- */

static void test_refusal(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int64_t dims[1] = {4};
    nb_linear(g, "fc", nb_input(g, "x", 1, dims), 2, 1);
    setenv("NABLA_DISABLE_BF16", "1", 1);
    CHECK(nb_bf16_supported(&err) == NB_ENOTSUP);
    CHECK_MSG(strstr(err.msg, "NABLA_DISABLE_BF16") != NULL, "%s", err.msg);
    err = (nb_error){0};
    CHECK(nb_graph_set_precision(g, NB_PRECISION_BF16, &err) == NB_ENOTSUP);
    CHECK_MSG(strstr(err.msg, "bf16") != NULL, "%s", err.msg);
    CHECK(nb_graph_precision(g) == NB_PRECISION_FP32);
    CHECK_OK(nb_graph_set_precision(g, NB_PRECISION_FP32, &err), &err);
    char kernels[64];
    CHECK(strcmp(nb_graph_kernels(g, kernels, sizeof kernels), "fp32") == 0);
    setenv("NABLA_DISABLE_BF16", "0", 1); /* "0" does not disable */
    nb_error why = {0};
    nb_status s = nb_bf16_supported(&why);
    unsetenv("NABLA_DISABLE_BF16");
    CHECK(s == nb_bf16_supported(NULL));
    CHECK(nb_graph_set_precision(g, (nb_precision)7, &err) == NB_EINVAL);
    CHECK(strcmp(nb_precision_name(NB_PRECISION_BF16), "bf16") == 0);
    nb_graph_free(g);
}

int main(void)
{
    /* Without bf16 instructions the same path runs emulated (fp32 products of the bf16-rounded
     * operands: what these checks compare against), so that all of it but oneDNN's bf16
     * kernels is tested anywhere oneDNN is. Asked before the first probe, which is kept. */
    if (!getenv("NABLA_BF16_EMULATE"))
        setenv("NABLA_BF16_EMULATE", "1", 0);
    test_conversion();
    test_refusal();
    nb_error why = {0};
    if (nb_bf16_supported(&why)) {
        check_skip("bf16 products on this machine: %s", why.msg);
        return check_finish("test_bf16");
    }
    if (nb_bf16_emulated())
        printf("note: no bf16 instructions here (%s): the bf16 path runs emulated\n",
               nb_bf16_hardware());
    for (int threads = 1; threads <= 2; threads++) {
        nb_error err = {0};
        nb_gemm *gemm = nb_gemm_new(NB_GEMM_AUTO, threads, &err);
        CHECK_OK(gemm ? NB_OK : err.code, &err);
        if (!gemm)
            continue;
        test_linear(gemm, 1, 7, 5, 0);
        test_linear(gemm, 3, 33, 17, 1);
        test_linear(gemm, 37, 100, 64, 1);
        test_linear(gemm, 300, 200, 150, 0); /* split across threads */
        test_linear(gemm, 129, 784, 96, 1);
        test_shadow(gemm);
        test_trainer(gemm);
        if (threads == 1) {
            test_gradcheck(gemm, "8-16-4", "8-16-4", 8 * U * 2);
            test_gradcheck(gemm, "8-16-16-3", "8-16-16-3", 8 * U * 3);
            test_gradcheck(gemm, "mlp+ce",
                           "x = input(5)\nh = linear(x, 7)\na = sigmoid(h)\nz = linear(a, 3)\n"
                           "y = labels()\nloss = cross_entropy(z, y)\n", 8 * U * 2);
        }
        nb_gemm_free(gemm);
    }
    return check_finish("test_bf16");
}
