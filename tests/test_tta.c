/* Test-time augmentation (nb_model_set_tta, src/model/tta.c), checked against its definition
 * computed here from two plain predictions: with NB_TTA_FLIP the probabilities of an image are
 *     p̄ = ½ (softmax(G(x)) + softmax(G(mirror(x)))),
 * the class is arg-max p̄, and evaluation's loss is the mean of −log p̄[y]. The model is a
 * randomly initialised convolution over 2-channel 4×5 images, which is not mirror-symmetric,
 * so a TTA that did nothing (or mirrored the wrong axis) would differ from p̄. The data are
 * run in batches of 4 so the last chunk is short. Models that are not image classifiers are
 * refused. */
#include "check.h"
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 7, C = 2, H = 4, W = 5, F = C * H * W, K = 4 };

static nb_model *new_model(const char *desc, nb_loss_kind loss)
{
    nb_error err = {0};
    nb_model *m = nb_model_new_with_loss(desc, "tta", loss, 7, NULL, &err);
    CHECK_OK(m ? NB_OK : err.code, &err);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    if (m)
        nb_graph_init_params(nb_model_graph(m), NB_INIT_KAIMING_UNIFORM, &rng);
    return m;
}

static void test_flip_matches_definition(void)
{
    nb_error err = {0};
    nb_model *m = new_model("x = input(2, 4, 5)\nc = conv2d(x, 3, 3, padding=1)\n"
                            "r = relu(c)\nf = flatten(r)\nz = linear(f, 4)", NB_LOSS_AUTO);
    if (!m)
        return;
    float x[N * F], mirrored[N * F];
    int32_t y[N];
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    for (int i = 0; i < N * F; i++)
        x[i] = 2.0f * nb_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < N; i++)
        y[i] = i % K;
    for (int r = 0; r < N * C * H; r++)
        for (int w = 0; w < W; w++)
            mirrored[r * W + w] = x[r * W + (W - 1 - w)];
    nb_dataset ds = {.count = N, .ndim = 3, .dims = {C, H, W}, .features = F, .dtype = NB_F32,
                     .f32 = x, .labels = y, .classes = K};
    nb_dataset dm = ds;
    dm.f32 = mirrored;
    CHECK_OK(nb_graph_prepare(nb_model_graph(m), 4, &err), &err);

    float plain[N * K], flipped[N * K], tta[N * K];
    int32_t classes[N];
    CHECK_OK(nb_model_predict(m, &ds, NULL, N, plain, NULL, &err), &err);
    CHECK_OK(nb_model_predict(m, &dm, NULL, N, flipped, NULL, &err), &err);
    CHECK(nb_model_tta(m) == NB_TTA_NONE);
    CHECK_OK(nb_model_set_tta(m, NB_TTA_FLIP, &err), &err);
    CHECK(nb_model_tta(m) == NB_TTA_FLIP);
    CHECK_OK(nb_model_predict(m, &ds, NULL, N, tta, classes, &err), &err);

    double worst = 0, moved = 0, loss = 0;
    int correct = 0;
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int j = 0; j < K; j++) {
            double mean = 0.5 * ((double)plain[i * K + j] + flipped[i * K + j]);
            worst = fmax(worst, fabs(tta[i * K + j] - mean));
            moved = fmax(moved, fabs(tta[i * K + j] - plain[i * K + j]));
            best = mean > 0.5 * ((double)plain[i * K + best] + flipped[i * K + best]) ? j : best;
        }
        CHECK_MSG(classes[i] == best, "sample %d: class %d, expected %d", i, classes[i], best);
        loss -= log(0.5 * ((double)plain[i * K + y[i]] + flipped[i * K + y[i]]));
        correct += best == y[i];
    }
    CHECK_MSG(worst < 1e-6, "TTA probabilities differ from the mean of the views by %g", worst);
    CHECK_MSG(moved > 1e-3, "TTA changed no probability by more than %g: the views were not "
              "mirrored", moved);

    nb_metrics mt;
    CHECK_OK(nb_metrics_compute(m, &ds, 2, &mt, &err), &err);
    CHECK_NEAR(mt.loss, loss / N, 1e-6, 1e-5);
    CHECK_NEAR(mt.accuracy, (double)correct / N, 0, 0);
    nb_metrics_free(&mt);
    /* the data set is untouched, and switching TTA off gives the plain predictions back */
    CHECK(x[1] != mirrored[1] && x[W - 1] == mirrored[0]);
    CHECK_OK(nb_model_set_tta(m, NB_TTA_NONE, &err), &err);
    float again[N * K];
    CHECK_OK(nb_model_predict(m, &ds, NULL, N, again, NULL, &err), &err);
    CHECK(memcmp(again, plain, sizeof plain) == 0);
    nb_model_free(m);
}

static void test_refusals(void)
{
    nb_error err = {0};
    nb_model *mlp = new_model("x = input(6)\nz = linear(x, 3)", NB_LOSS_AUTO);
    if (mlp) {
        CHECK(nb_model_set_tta(mlp, NB_TTA_FLIP, &err) == NB_EINVAL && strstr(err.msg, "images"));
        CHECK(nb_model_tta(mlp) == NB_TTA_NONE);
        CHECK_OK(nb_model_set_tta(mlp, NB_TTA_NONE, &err), &err);
        CHECK(nb_model_set_tta(mlp, (nb_tta)7, &err) == NB_EINVAL && strstr(err.msg, "unknown"));
    }
    nb_model_free(mlp);
    nb_model *reg = new_model("x = input(4, 5)\nf = flatten(x)\ny = linear(f, 1)", NB_LOSS_MSE);
    if (reg)
        CHECK(nb_model_set_tta(reg, NB_TTA_FLIP, &err) == NB_EINVAL &&
              strstr(err.msg, "classifier"));
    nb_model_free(reg);
    nb_model *gray = new_model("x = input(4, 5)\nf = flatten(x)\nz = linear(f, 3)", NB_LOSS_AUTO);
    if (gray) /* [H, W] images are images too */
        CHECK_OK(nb_model_set_tta(gray, NB_TTA_FLIP, &err), &err);
    nb_model_free(gray);
}

int main(void)
{
    test_flip_matches_definition();
    test_refusals();
    return check_finish("test_tta");
}
