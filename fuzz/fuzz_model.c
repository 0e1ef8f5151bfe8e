/* libFuzzer harness for nb_model_load (src/model/model.c): the input is a model file — safetensors
 * whose __metadata__ carries "nabla.description", "nabla.norm" and "nabla.classes", and for a
 * regression "nabla.loss", "nabla.target_norm" and "nabla.targets".
 *
 * A model that loads must be usable: its normalisations (inputs, targets) fit and never divide
 * by zero, it predicts on two all-zero samples when its activations are small (classes, or a
 * regression's values), and it survives a round trip (nb_model_save, nb_model_load: same
 * description, weights, names, loss and normalisations). The round trip
 * writes under /dev/shm (or /tmp), in a directory made and removed around it. */
#include "fuzz_file.h"
#include "nabla.h"

#include <math.h>

#define RUN_LIMIT ((int64_t)1 << 18)

static nb_gemm *gemm;
static void check_one_norm(const nb_norm *norm, int64_t features)
{
    FUZZ_ASSERT(norm->mode >= NB_NORM_NONE && norm->mode <= NB_NORM_GLOBAL, "mode %d",
                (int)norm->mode);
    if (norm->mode == NB_NORM_NONE)
        return;
    FUZZ_ASSERT(norm->features == features && norm->size >= 1 && features % norm->size == 0,
                "norm of %lld entries for %lld features, model has %lld",
                (long long)norm->size, (long long)norm->features, (long long)features);
    for (int64_t i = 0; i < norm->size; i++)
        FUZZ_ASSERT(isfinite(norm->mean[i]) && norm->std[i] >= 0 &&
                        (norm->std[i] > 0 || norm->eps > 0) && isfinite(norm->std[i]),
                    "norm entry %lld: mean %g, std %g, eps %g: (b - m) / max(std, eps) is not "
                    "finite", (long long)i, norm->mean[i], norm->std[i], norm->eps);
}

static void check_norm(const nb_model *m)
{
    check_one_norm(nb_model_norm(m), nb_model_features(m));
    if (nb_model_targets(m) >= 0)
        check_one_norm(nb_model_target_norm(m), nb_model_classes(m));
    else
        FUZZ_ASSERT(nb_model_target_norm(m)->mode == NB_NORM_NONE && !nb_model_target_names_text(m),
                    "a classifier with target statistics or names");
}

/* Two all-zero samples through nb_model_predict. */
static void predict(nb_model *m)
{
    nb_graph *g = nb_model_graph(m);
    int64_t floats = 0;
    for (int i = 0; i < nb_graph_node_count(g); i++)
        if ((floats += nb_node_size(g, i)) > RUN_LIMIT)
            return;
    int64_t features = nb_model_features(m), classes = nb_model_classes(m);
    nb_dataset ds = {.count = 2, .ndim = 1, .dims = {features}, .features = features,
                     .dtype = NB_F32};
    ds.f32 = calloc((size_t)(2 * features), sizeof *ds.f32);
    float *probs = malloc((size_t)(2 * classes) * sizeof *probs);
    int32_t cls[2] = {-1, -1};
    nb_error err = {0};
    if (ds.f32 && probs && nb_model_predict(m, &ds, NULL, 2, probs, cls, &err) == NB_OK)
        for (int r = 0; r < 2; r++)
            FUZZ_ASSERT(cls[r] >= 0 && cls[r] < classes, "class %d of %lld", cls[r],
                        (long long)classes);
    if (ds.f32 && probs && nb_model_targets(m) >= 0)
        (void)nb_model_predict_values(m, &ds, NULL, 2, probs, &err); /* no crash, any value */
    free(ds.f32);
    free(probs);
}

static void round_trip(nb_model *m)
{
    const char *out_path = fuzz_out_begin("m.safetensors");
    nb_error err = {0};
    nb_status s = nb_model_save(m, out_path, &err);
    FUZZ_ASSERT(s == NB_OK, "a model that loads cannot be saved: %s", err.msg);
    nb_model *back = nb_model_load(out_path, 1, gemm, &err);
    FUZZ_ASSERT(back, "a saved model does not load: %s", err.msg);
    FUZZ_ASSERT(strcmp(nb_model_description(m), nb_model_description(back)) == 0,
                "description changed");
    nb_graph *a = nb_model_graph(m), *b = nb_model_graph(back);
    size_t n = nb_graph_param_floats(a);
    FUZZ_ASSERT(nb_graph_param_floats(b) == n &&
                    (n == 0 || memcmp(nb_graph_params(a), nb_graph_params(b), n * sizeof(float)) == 0),
                "weights changed in the round trip");
    FUZZ_ASSERT(nb_model_norm(m)->mode == nb_model_norm(back)->mode, "norm mode changed");
    const char *ca = nb_model_classes_text(m), *cb = nb_model_classes_text(back);
    FUZZ_ASSERT((!ca && !cb) || (ca && cb && strcmp(ca, cb) == 0), "class names changed");
    const char *ta = nb_model_target_names_text(m), *tb = nb_model_target_names_text(back);
    FUZZ_ASSERT((!ta && !tb) || (ta && tb && strcmp(ta, tb) == 0), "target names changed");
    FUZZ_ASSERT(nb_model_targets(m) == nb_model_targets(back) &&
                    nb_model_loss(m) == nb_model_loss(back),
                "the regression target or the loss changed in the round trip");
    const nb_norm *na = nb_model_target_norm(m), *nbk = nb_model_target_norm(back);
    FUZZ_ASSERT(na->mode == nbk->mode && na->size == nbk->size &&
                    (na->size == 0 || (memcmp(na->mean, nbk->mean, (size_t)na->size * sizeof(float)) == 0 &&
                                       memcmp(na->std, nbk->std, (size_t)na->size * sizeof(float)) == 0)),
                "target statistics changed in the round trip");
    nb_model_free(back);
    fuzz_out_end();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file file;
    nb_error err = {0};
    if (!file.path[0]) {
        fuzz_file_open(&file, "model");
        if (!(gemm = nb_gemm_new(NB_GEMM_PORTABLE, 1, &err)))
            fuzz_die(err.msg);
    }
    fuzz_file_write(&file, data, size);

    nb_model *m = nb_model_load(file.path, 1, gemm, &err);
    if (!m) {
        FUZZ_ASSERT(err.code != NB_OK && err.msg[0], "no model and no message");
        FUZZ_ASSERT(strstr(err.msg, file.path), "the message names no file: %s", err.msg);
        return 0;
    }
    FUZZ_ASSERT(nb_model_description(m) && nb_model_features(m) >= 1, "features %lld",
                (long long)nb_model_features(m));
    check_norm(m);
    predict(m);
    round_trip(m);
    nb_model_free(m);
    return 0;
}
