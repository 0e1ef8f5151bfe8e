/* Targets beyond class indices, and the evaluation figures: CSV class labels written as names
 * (sorted like scikit-learn's LabelEncoder, or mapped through a model's names), regression
 * targets from one or several columns in the order named, their standardisation, splits that
 * carry targets and names along, and nb_metrics_compute on models with known weights, whose
 * figures are worked out by hand below. */
#include "nabla.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void write_csv(char *path, size_t size, const char *name, const char *text)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_class_names(void)
{
    char path[256];
    nb_error err = {0};
    nb_dataset ds;
    write_csv(path, sizeof path, "pets.csv", "w,animal\n1,dog\n2,cat\n3,bird\n4,cat\n5,\"a cat\"\n");
    CHECK_OK(nb_csv_load(&ds, path, "animal", &err), &err);
    /* sorted byte-wise: "a cat" < "bird" < "cat" < "dog" */
    CHECK(ds.classes == 4 && ds.class_names && ds.labels && !ds.targets);
    if (ds.class_names && ds.classes == 4) {
        const char *want[] = {"a cat", "bird", "cat", "dog"};
        for (int k = 0; k < 4; k++)
            CHECK_MSG(strcmp(ds.class_names[k], want[k]) == 0, "class %d is %s", k,
                      ds.class_names[k]);
        int32_t labels[] = {3, 2, 1, 2, 0};
        CHECK(memcmp(ds.labels, labels, sizeof labels) == 0);
    }
    nb_dataset_free(&ds);
    CHECK(!ds.class_names && !ds.labels && ds.classes == 0);

    /* integers stay class indices, with no names */
    write_csv(path, sizeof path, "num.csv", "w,k\n1,2\n2,0\n");
    CHECK_OK(nb_csv_load(&ds, path, "k", &err), &err);
    CHECK(ds.classes == 3 && !ds.class_names && ds.labels && ds.labels[0] == 2);
    nb_dataset_free(&ds);

    /* through a model's names: names and in-range indices both map */
    static const char *const names[] = {"cat", "dog"};
    nb_csv_options opt = {.targets = "animal", .class_names = names, .class_count = 2};
    write_csv(path, sizeof path, "mapped.csv", "w,animal\n1,dog\n2,cat\n3,1\n");
    CHECK_OK(nb_csv_load_with(&ds, path, &opt, &err), &err);
    CHECK(ds.classes == 2 && !ds.class_names && ds.labels && ds.labels[0] == 1 &&
          ds.labels[1] == 0 && ds.labels[2] == 1);
    nb_dataset_free(&ds);
    CHECK(nb_csv_load_with(&ds, path, &(nb_csv_options){.targets = "animal", .class_names = names,
                                                         .class_count = -1}, &err) == NB_EINVAL);

    /* several columns cannot be class labels */
    write_csv(path, sizeof path, "two.csv", "a,b,c\n1,0,1\n");
    CHECK(nb_csv_load(&ds, path, "b,c", &err) == NB_EFORMAT &&
          strstr(err.msg, "one column") && strstr(err.msg, "two.csv"));
}

static void test_regression_targets(void)
{
    char path[256];
    nb_error err = {0};
    nb_dataset ds;
    write_csv(path, sizeof path, "reg.csv", "a,y,b,z\n1,10,2,-1.5\n3,20,4,2.5\n5,60,6,0.5\n");
    /* columns by name and index, in the order named: z first */
    nb_csv_options opt = {.targets = "z,1", .kind = NB_TARGET_VALUES};
    CHECK_OK(nb_csv_load_with(&ds, path, &opt, &err), &err);
    CHECK(ds.count == 3 && ds.features == 2 && ds.target_count == 2 && ds.targets && !ds.labels);
    if (ds.targets && ds.f32 && ds.target_names) {
        float t[] = {-1.5f, 10, 2.5f, 20, 0.5f, 60}, x[] = {1, 2, 3, 4, 5, 6};
        CHECK(memcmp(ds.targets, t, sizeof t) == 0 && memcmp(ds.f32, x, sizeof x) == 0);
        CHECK(strcmp(ds.target_names[0], "z") == 0 && strcmp(ds.target_names[1], "y") == 0);
    }

    /* standardisation: the mean and the population σ per target; a constant column σ = 1 */
    nb_norm norm;
    CHECK_OK(nb_norm_fit_targets(&norm, &ds, NB_NORM_FEATURE, &err), &err);
    CHECK(norm.size == 2 && fabsf(norm.mean[0] - 0.5f) < 1e-6f && fabsf(norm.mean[1] - 30) < 1e-5f);
    CHECK(fabs(norm.std[0] - sqrt(8.0 / 3)) < 1e-6 && fabs(norm.std[1] - sqrt(1400.0 / 3)) < 1e-4);
    float t[6];
    int64_t rows[] = {2, 0};
    nb_dataset_gather_targets(&ds, rows, 2, &norm, t);
    CHECK(fabs(t[0] - 0.0) < 1e-6 && fabs(t[1] - 30 / sqrt(1400.0 / 3)) < 1e-5);
    CHECK(fabs(t[2] - (-2 / sqrt(8.0 / 3))) < 1e-6);
    nb_norm_free(&norm);

    /* splits carry targets and names */
    nb_dataset tr, va;
    CHECK_OK(nb_dataset_split(&ds, 1.0 / 3, 7, &tr, &va, &err), &err);
    CHECK(tr.count == 2 && va.count == 1 && tr.target_count == 2 && va.target_count == 2);
    if (tr.targets && va.targets && va.target_names) {
        /* every sample keeps its own targets: y = 10, 20, 60 for a = 1, 3, 5 */
        for (int64_t i = 0; i < tr.count; i++)
            CHECK(tr.targets[2 * i + 1] == (tr.f32[2 * i] == 1 ? 10 : tr.f32[2 * i] == 3 ? 20 : 60));
        CHECK(va.targets[1] == (va.f32[0] == 1 ? 10 : va.f32[0] == 3 ? 20 : 60));
        CHECK(strcmp(va.target_names[1], "y") == 0);
    }
    nb_dataset_free(&tr);
    nb_dataset_free(&va);

    write_csv(path, sizeof path, "const.csv", "a,y\n1,4\n2,4\n");
    CHECK_OK(nb_csv_load_with(&ds, path, &(nb_csv_options){.targets = "y",
                                                           .kind = NB_TARGET_VALUES}, &err), &err);
    CHECK_OK(nb_norm_fit_targets(&norm, &ds, NB_NORM_FEATURE, &err), &err);
    CHECK(norm.size == 1 && norm.mean[0] == 4 && norm.std[0] == 1);
    nb_norm_free(&norm);
    CHECK(nb_norm_fit_targets(&norm, &ds, NB_NORM_CHANNEL, &err) == NB_EINVAL);
    nb_dataset_free(&ds);
    CHECK(nb_csv_load(&ds, path, NULL, &err) == NB_OK && !ds.targets);
    CHECK(nb_norm_fit_targets(&norm, &ds, NB_NORM_FEATURE, &err) == NB_EINVAL &&
          strstr(err.msg, "no regression targets"));
    nb_dataset_free(&ds);

    /* list errors */
    CHECK(nb_csv_load_with(&ds, path, &(nb_csv_options){.targets = "y,y",
                                                        .kind = NB_TARGET_VALUES}, &err) ==
              NB_EFORMAT && strstr(err.msg, "named twice"));
    CHECK(nb_csv_load_with(&ds, path, &(nb_csv_options){.targets = "y,",
                                                        .kind = NB_TARGET_VALUES}, &err) ==
              NB_EFORMAT && strstr(err.msg, "empty entry"));
    CHECK(nb_csv_load_with(&ds, path, &(nb_csv_options){.targets = "y", .kind = 7}, &err) ==
          NB_EINVAL);
}

/* A model whose weights are set by hand. */
static nb_model *known_model(const char *desc, nb_loss_kind loss, const float *w, size_t n)
{
    nb_error err = {0};
    nb_model *m = nb_model_new_with_loss(desc, "known", loss, 1, NULL, &err);
    CHECK_OK(m ? NB_OK : err.code, &err);
    if (m) {
        CHECK(nb_graph_param_floats(nb_model_graph(m)) == n);
        memcpy(nb_graph_params(nb_model_graph(m)), w, n * sizeof *w);
    }
    return m;
}

static void test_metrics(void)
{
    nb_error err = {0};
    nb_metrics mt;
    /* Regression: ȳ = 2x + 1 standardised by m = 10, σ = 2 gives 2(2x + 1) + 10, on x = 0..3
     * against t = 12, 15, 20, 26: errors 0, 1, 0, −2; MSE 5/4, MAE 3/4, R² = 1 − 5/112.75.
     * A second, constant target t₂ = 7 predicted as 7 exactly: R² = 1 (force_finite). */
    float w[] = {2, 0, 1, 7}; /* y.weight [2, 1], y.bias [2] */
    nb_model *m = known_model("x = input(1)\ny = linear(x, 2)", NB_LOSS_MSE, w, 4);
    float x[] = {0, 1, 2, 3}, t[] = {12, 7, 15, 7, 20, 7, 26, 7};
    nb_dataset ds = {.count = 4, .ndim = 1, .dims = {1}, .features = 1, .dtype = NB_F32,
                     .f32 = x, .targets = t, .target_count = 2};
    nb_norm tn = {.mode = NB_NORM_FEATURE, .size = 2, .features = 2, .eps = 0,
                  .mean = malloc(2 * sizeof(float)), .std = malloc(2 * sizeof(float))};
    if (m && tn.mean && tn.std) {
        tn.mean[0] = 10, tn.std[0] = 2, tn.mean[1] = 0, tn.std[1] = 1;
        nb_model_set_target_norm(m, &tn);
        CHECK(nb_model_targets(m) >= 0 && nb_model_labels(m) < 0);
        CHECK_OK(nb_metrics_compute(m, &ds, 0, &mt, &err), &err);
        CHECK(mt.targets == 2 && mt.classes == 0 && mt.samples == 4 && isnan(mt.accuracy));
        CHECK(fabs(mt.mse[0] - 1.25) < 1e-9 && fabs(mt.mae[0] - 0.75) < 1e-9 &&
              fabs(mt.rmse[0] - sqrt(1.25)) < 1e-9 && fabs(mt.r2[0] - (1 - 5 / 112.75)) < 1e-9);
        CHECK(mt.mse[1] == 0 && mt.r2[1] == 1);
        CHECK(fabs(mt.r2_mean - (2 - 5 / 112.75) / 2) < 1e-9 && fabs(mt.mse_mean - 0.625) < 1e-9);
        /* the loss is on standardised targets: ((0)² + (−.5)² + 0² + 1²)/4 for t₁, 0 for t₂ */
        CHECK_MSG(fabs(mt.loss - 1.25 / 4) < 1e-6, "loss %g", mt.loss);
        nb_metrics_free(&mt);
        float v[8];
        CHECK_OK(nb_model_predict_values(m, &ds, NULL, 4, v, &err), &err);
        CHECK(v[0] == 12 && v[2] == 16 && v[4] == 20 && v[6] == 24 && v[1] == 7);
        /* a model that predicts 2 values and data with 1 target */
        ds.target_count = 1;
        CHECK(nb_metrics_compute(m, &ds, 0, &mt, &err) == NB_ESHAPE && strstr(err.msg, "predicts 2"));
        ds.targets = NULL;
        CHECK(nb_metrics_compute(m, &ds, 0, &mt, &err) == NB_EINVAL && strstr(err.msg, "csv:FILE:"));
    }
    nb_norm_free(&tn);
    nb_model_free(m);

    /* Classification: scores z = (x, −x, 0.5) on x = 2, −2, 0, 1, −1: predictions 0, 1, 2, 0, 1
     * against labels 0, 1, 1, 2, 1, so the confusion matrix (rows true) is
     *   [1 0 0; 0 2 1; 1 0 0]: precision 1/2, 1, 0; recall 1, 2/3, 0; F1 2/3, 4/5, 0;
     * macro over the three classes, weighted by supports 1, 3, 1. Top-2: the true class has
     * at most one higher score in every sample (sample 2: scores 0, 0, 0.5, true class 1;
     * sample 3: 1, −1, 0.5, true class 2), so all five count. */
    float wc[] = {1, -1, 0, 0, 0, 0.5f};
    m = known_model("x = input(1)\nz = linear(x, 3)", NB_LOSS_AUTO, wc, 6);
    float xc[] = {2, -2, 0, 1, -1};
    int32_t y[] = {0, 1, 1, 2, 1};
    nb_dataset dc = {.count = 5, .ndim = 1, .dims = {1}, .features = 1, .dtype = NB_F32,
                     .f32 = xc, .labels = y, .classes = 3};
    if (m) {
        CHECK_OK(nb_metrics_compute(m, &dc, 2, &mt, &err), &err);
        int64_t cm[] = {1, 0, 0, 0, 2, 1, 1, 0, 0};
        CHECK(mt.classes == 3 && memcmp(mt.confusion, cm, sizeof cm) == 0);
        CHECK(fabs(mt.accuracy - 0.6) < 1e-12 && fabs(mt.top_k_accuracy - 1.0) < 1e-12);
        double p[] = {0.5, 1, 0}, r[] = {1, 2.0 / 3, 0}, f[] = {2.0 / 3, 0.8, 0};
        for (int c = 0; c < 3; c++)
            CHECK_MSG(fabs(mt.precision[c] - p[c]) < 1e-12 && fabs(mt.recall[c] - r[c]) < 1e-12 &&
                      fabs(mt.f1[c] - f[c]) < 1e-12, "class %d: %g %g %g", c, mt.precision[c],
                      mt.recall[c], mt.f1[c]);
        CHECK(mt.support[0] == 1 && mt.support[1] == 3 && mt.support[2] == 1);
        CHECK(fabs(mt.macro_precision - 0.5) < 1e-12 && fabs(mt.macro_recall - 5.0 / 9) < 1e-12 &&
              fabs(mt.macro_f1 - (2.0 / 3 + 0.8) / 3) < 1e-12);
        CHECK(fabs(mt.weighted_precision - 0.7) < 1e-12 && fabs(mt.weighted_recall - 0.6) < 1e-12 &&
              fabs(mt.weighted_f1 - (2.0 / 3 + 2.4) / 5) < 1e-12);
        nb_metrics_free(&mt);
        CHECK_OK(nb_metrics_compute(m, &dc, 1, &mt, &err), &err);
        CHECK(fabs(mt.top_k_accuracy - mt.accuracy) < 1e-12); /* top-1 is the accuracy */
        nb_metrics_free(&mt);
        CHECK(nb_metrics_compute(m, &dc, -1, &mt, &err) == NB_EINVAL);
        nb_metrics_free(NULL);
    }
    nb_model_free(m);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/nabla-targets-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_class_names();
    test_regression_targets();
    test_metrics();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_finish("test_targets");
}
