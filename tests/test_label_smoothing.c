/* Cross-entropy with label smoothing (src/loss/loss.c): ε = 0, and any ε in evaluation mode,
 * give bit for bit the loss and gradient of the arithmetic used before smoothing existed
 * (re-done here step by step); values by hand for ε > 0; bad ε refused by the library, the
 * description parser and the trainer. The gradient check is in test_gradients.c, the
 * comparison with PyTorch's F.cross_entropy(label_smoothing=ε) in torch_autograd.py. */
#include "check.h"
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 150, CLASSES = 10, BLOCK = 64 }; /* three of the forward's 64-row blocks */

/* The plain cross-entropy exactly as loss.c computed it before smoothing: per row the
 * max-shifted exponentials, their sum e in double, the softmax as p·(float)(1/e), and
 * m + log e − z[y] summed in double per block of 64 rows, the blocks added in order; the
 * gradient (p − onehot)·(1/N) in float. */
static float reference(const float *z, const int32_t *y, int64_t N, int64_t C, float *dz)
{
    double total = 0.0;
    for (int64_t first = 0; first < N; first += BLOCK) {
        double s = 0.0;
        for (int64_t r = first; r < N && r < first + BLOCK; r++) {
            const float *zr = z + r * C;
            float *p = dz + r * C, m = zr[0];
            for (int64_t j = 1; j < C; j++)
                m = zr[j] > m ? zr[j] : m;
            double e = 0.0;
            for (int64_t j = 0; j < C; j++) {
                p[j] = expf(zr[j] - m);
                e += p[j];
            }
            float inv = (float)(1.0 / e);
            for (int64_t j = 0; j < C; j++)
                p[j] *= inv;
            s += (double)m + log(e) - zr[y[r]];
        }
        total += s;
    }
    float d = 1.0f / (float)N;
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < C; j++)
            dz[r * C + j] = d * (dz[r * C + j] - (j == y[r] ? 1.0f : 0.0f));
    return (float)(total / (double)N);
}

/* A graph z → cross_entropy(z, y, ε) prepared for `rows`, with z's gradient requested. */
static nb_graph *ce_graph(float eps, int64_t rows, int64_t classes, int *z, int *y, int *ce)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    *z = nb_input(g, "z", 1, &classes);
    *y = nb_labels(g, "y");
    *ce = eps == 0.0f ? nb_cross_entropy(g, "ce", *z, *y)
                      : nb_cross_entropy_smoothed(g, "ce", *z, *y, eps);
    nb_node_set_requires_grad(g, *z, 1);
    CHECK_OK(nb_graph_prepare(g, rows, &err), &err);
    return g;
}

/* Forward and backward of a ce_graph on logits zv and labels yv, in the given mode. */
static void forward_backward(nb_graph *g, int z, int y, int ce, const float *zv,
                             const int32_t *yv, int training)
{
    nb_error err = {0};
    int64_t rows = nb_graph_batch(g);
    memcpy(nb_value(g, z), zv, (size_t)(rows * nb_node_size(g, z)) * sizeof *zv);
    memcpy(nb_labels_data(g, y), yv, (size_t)rows * sizeof *yv);
    nb_graph_set_training(g, training);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK_OK(nb_graph_backward(g, ce, NULL, &err), &err);
}

/* Loss and dz of ce_graph(eps) on z, y in the given mode; dz: ROWS·CLASSES floats. */
static float run(float eps, int training, const float *zv, const int32_t *yv, float *dz)
{
    int z, y, ce;
    nb_graph *g = ce_graph(eps, ROWS, CLASSES, &z, &y, &ce);
    forward_backward(g, z, y, ce, zv, yv, training);
    float loss = nb_value(g, ce)[0];
    memcpy(dz, nb_grad(g, z), ROWS * CLASSES * sizeof *dz);
    nb_graph_free(g);
    return loss;
}

static void no_smoothing_is_bit_identical(void)
{
    static float zv[ROWS * CLASSES], want[ROWS * CLASSES], got[ROWS * CLASSES];
    int32_t yv[ROWS];
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    for (int i = 0; i < ROWS * CLASSES; i++)
        zv[i] = 8.0f * (nb_rng_uniform(&rng) - 0.5f);
    for (int r = 0; r < ROWS; r++)
        yv[r] = (int32_t)nb_rng_below(&rng, CLASSES);
    float ref = reference(zv, yv, ROWS, CLASSES, want);
    static const struct {
        const char *what;
        float eps;
        int training;
    } cases[] = {
        {"cross_entropy, training", 0.0f, 1},
        {"cross_entropy, evaluation", 0.0f, 0},
        {"label smoothing 0.3 in evaluation", 0.3f, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float loss = run(cases[c].eps, cases[c].training, zv, yv, got);
        CHECK_MSG(memcmp(&loss, &ref, sizeof loss) == 0, "%s: loss %.9g, before smoothing %.9g",
                  cases[c].what, loss, ref);
        CHECK_MSG(memcmp(got, want, sizeof got) == 0, "%s: the gradient differs in its bits",
                  cases[c].what);
    }
    /* ε = 0 through the smoothed constructor too, in training */
    nb_error err = {0};
    int z, y, ce;
    nb_graph *g = ce_graph(0.25f, ROWS, CLASSES, &z, &y, &ce);
    CHECK_OK(nb_cross_entropy_set_smoothing(g, ce, 0.0f, &err), &err);
    CHECK(nb_cross_entropy_smoothing(g, ce) == 0.0f);
    forward_backward(g, z, y, ce, zv, yv, 1);
    CHECK(memcmp(nb_value(g, ce), &ref, sizeof ref) == 0);
    CHECK(memcmp(nb_grad(g, z), want, sizeof want) == 0);
    nb_graph_free(g);
    /* and smoothing does change both (so the comparisons above can fail) */
    float smoothed = run(0.3f, 1, zv, yv, got);
    CHECK_MSG(fabsf(smoothed - ref) > 1e-3f, "smoothed %.9g vs plain %.9g", smoothed, ref);
    CHECK(memcmp(got, want, sizeof got) != 0);
    printf("  eps = 0 and evaluation: bit-identical to the plain loss %.9g over %d rows; "
           "eps = 0.3 in training: %.9g\n", ref, ROWS, smoothed);
}

/* Two rows by hand, ε = 0.3, K = 3:
 *   C_n = (1 − ε)(lse(z_n) − z_n[y_n]) + ε(lse(z_n) − mean_j z_n,j)
 *   dz_n,j = (softmax(z_n)_j − (1 − ε)[j = y_n] − ε/K) / N */
static void values_by_hand(void)
{
    int z, y, ce;
    const double eps = 0.3;
    nb_graph *g = ce_graph((float)eps, 2, 3, &z, &y, &ce);
    const float zv[6] = {1, 2, 3, 0.5f, -1, 2};
    const int32_t yv[2] = {0, 2};
    forward_backward(g, z, y, ce, zv, yv, 1);
    double want = 0.0;
    for (int r = 0; r < 2; r++) {
        const float *zr = zv + 3 * r;
        double se = exp(zr[0]) + exp(zr[1]) + exp(zr[2]), lse = log(se);
        double mean = (zr[0] + zr[1] + zr[2]) / 3.0;
        want += ((1 - eps) * (lse - zr[yv[r]]) + eps * (lse - mean)) / 2;
        for (int j = 0; j < 3; j++) {
            double dzj = (exp(zr[j]) / se - (1 - eps) * (j == yv[r]) - eps / 3) / 2;
            CHECK_NEAR(nb_grad(g, z)[3 * r + j], dzj, 1e-7, 1e-6);
        }
    }
    CHECK_NEAR(nb_value(g, ce)[0], want, 1e-7, 1e-6);
    /* the gradient of each row sums to 0: q is a distribution, as softmax is */
    for (int r = 0; r < 2; r++)
        CHECK_NEAR(nb_grad(g, z)[3 * r] + nb_grad(g, z)[3 * r + 1] + nb_grad(g, z)[3 * r + 2],
                   0, 1e-7, 0);
    printf("  by hand: eps 0.3, loss %.7f (want %.7f)\n", nb_value(g, ce)[0], want);
    nb_graph_free(g);
}

static void bad_smoothing_is_refused(void)
{
    nb_error err = {0};
    int64_t three = 3;
    const float bad[] = {-0.1f, 1.0f, 1.5f, NAN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nb_graph *g = nb_graph_new(1, NULL);
        int z = nb_input(g, "z", 1, &three), y = nb_labels(g, "y");
        CHECK(nb_cross_entropy_smoothed(g, "ce", z, y, bad[i]) < 0);
        CHECK(nb_graph_error(g, &err) == NB_EINVAL && strstr(err.msg, "label smoothing"));
        nb_graph_free(g);
        g = nb_graph_new(1, NULL);
        z = nb_input(g, "z", 1, &three);
        y = nb_labels(g, "y");
        int ce = nb_cross_entropy(g, "ce", z, y);
        CHECK(nb_cross_entropy_set_smoothing(g, ce, bad[i], &err) == NB_EINVAL &&
              strstr(err.msg, "expected 0 ≤ ε < 1"));
        CHECK(nb_cross_entropy_smoothing(g, ce) == 0.0f);
        int lp = nb_log_softmax(g, "lp", z), nll = nb_nll(g, "nll", lp, y);
        CHECK(nb_cross_entropy_set_smoothing(g, nll, 0.1f, &err) == NB_EINVAL &&
              strstr(err.msg, "'nll' is nll"));
        nb_graph_free(g);
    }
    /* the description: cross_entropy(z, y, label_smoothing=F) */
    static const struct {
        const char *desc, *message;
    } descs[] = {
        {"z = input(3)\ny = labels()\nl = cross_entropy(z, y, label_smoothing=1)",
         "<t>:3:25: cross_entropy: label_smoothing: expected a number 0 <= F < 1, found '1'"},
        {"z = input(3)\ny = labels()\nl = cross_entropy(z, y, label_smoothing=abc)",
         "label_smoothing: expected a number 0 <= F < 1, found 'abc'"},
        {"z = input(3)\ny = labels()\nl = cross_entropy(z, y, label_smoothing=-0.1)",
         "found '-0.1'"},
        {"z = input(3)\np = log_softmax(z)\ny = labels()\nl = nll(p, y, label_smoothing=0.1)",
         "nll: unknown option 'label_smoothing=0.1'"},
    };
    for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++) {
        nb_graph *g = nb_graph_new(1, NULL);
        int in, out;
        CHECK_MSG(nb_describe(g, descs[i].desc, "<t>", &in, &out, &err) == NB_EFORMAT &&
                  strstr(err.msg, descs[i].message), "%s: %s", descs[i].desc, err.msg);
        nb_graph_free(g);
    }
    nb_graph *g = nb_graph_new(1, NULL);
    int in, out;
    CHECK_OK(nb_describe(g, "z = input(3)\ny = labels()\nl = cross_entropy(z, y, "
                         "label_smoothing=0.125)", "<t>", &in, &out, &err), &err);
    CHECK(nb_cross_entropy_smoothing(g, out) == 0.125f);
    nb_graph_free(g);
}

/* The trainer: cfg.label_smoothing sets the model's cross-entropy, the smoothing of the
 * description stays when it is 0, and a model trained with another loss is refused. */
static void trainer_applies_it(void)
{
    nb_error err = {0};
    enum { P = 8, D = 3 };
    float x[P * D];
    int32_t labels[P];
    for (int i = 0; i < P * D; i++)
        x[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < P; i++)
        labels[i] = i % 3;
    nb_dataset ds = {.count = P, .ndim = 1, .dims = {D}, .features = D, .dtype = NB_F32,
                     .f32 = x, .labels = labels, .classes = 3};
    nb_train_config cfg;
    nb_train_config_default(&cfg);
    cfg.epochs = 1;
    static const struct {
        const char *desc;
        float eps, want;     /* cfg's ε, and the loss node's after nb_trainer_new (< 0: fails) */
        const char *message;
    } cases[] = {
        {"x = input(3)\nz = linear(x, 3)", 0.2f, 0.2f, NULL},
        {"x = input(3)\nz = linear(x, 3)", 0.0f, 0.0f, NULL},
        {"x = input(3)\nz = linear(x, 3)\ny = labels()\nl = cross_entropy(z, y, "
         "label_smoothing=0.05)", 0.0f, 0.05f, NULL},
        {"x = input(3)\nz = linear(x, 3)\ny = labels()\nl = cross_entropy(z, y, "
         "label_smoothing=0.05)", 0.1f, 0.1f, NULL},
        {"x = input(3)\nz = linear(x, 3)", 1.0f, -1, "label smoothing 1, expected 0 <= eps < 1"},
        {"x = input(3)\nz = linear(x, 3)\np = log_softmax(z)", 0.1f, -1,
         "label smoothing applies to a cross-entropy loss, but this model's loss is nll"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_model *m = nb_model_new(cases[i].desc, "<t>", 1, NULL, &err);
        CHECK_MSG(m, "%s", err.msg);
        if (!m)
            continue;
        cfg.label_smoothing = cases[i].eps;
        nb_trainer *t = nb_trainer_new(m, &ds, NULL, &cfg, &err);
        if (cases[i].want < 0)
            CHECK_MSG(!t && strstr(err.msg, cases[i].message), "case %zu: %s", i, err.msg);
        else
            CHECK_MSG(t && nb_cross_entropy_smoothing(nb_model_graph(m), nb_model_loss(m)) ==
                      cases[i].want, "case %zu: %s", i, t ? "" : err.msg);
        nb_trainer_free(t);
        nb_model_free(m);
    }
}

int main(void)
{
    no_smoothing_is_bit_identical();
    values_by_hand();
    bad_smoothing_is_refused();
    trainer_applies_it();
    return check_finish("test_label_smoothing");
}
