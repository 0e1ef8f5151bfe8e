/* libFuzzer harness for nb_model_load (src/model/model.c): the input is a model file — safetensors
 * whose __metadata__ carries "nabla.description", "nabla.norm" and "nabla.classes".
 *
 * A model that loads must be usable: its normalisation fits its input and never divides by
 * zero, it predicts on two all-zero samples when its activations are small, and it survives a
 * round trip (nb_model_save, nb_model_load: same description, same weights). The round trip
 * writes under /dev/shm (or /tmp), in a directory made and removed around it. */
#include "fuzz_file.h"
#include "nabla.h"

#include <math.h>

#define RUN_LIMIT ((int64_t)1 << 18)

static nb_gemm *gemm;
static void check_norm(const nb_model *m)
{
    const nb_norm *norm = nb_model_norm(m);
    FUZZ_ASSERT(norm->mode >= NB_NORM_NONE && norm->mode <= NB_NORM_GLOBAL, "mode %d",
                (int)norm->mode);
    if (norm->mode == NB_NORM_NONE)
        return;
    int64_t features = nb_model_features(m);
    FUZZ_ASSERT(norm->features == features && norm->size >= 1 && features % norm->size == 0,
                "norm of %lld entries for %lld features, model has %lld",
                (long long)norm->size, (long long)norm->features, (long long)features);
    for (int64_t i = 0; i < norm->size; i++)
        FUZZ_ASSERT(isfinite(norm->mean[i]) && norm->std[i] >= 0 &&
                        (norm->std[i] > 0 || norm->eps > 0) && isfinite(norm->std[i]),
                    "norm entry %lld: mean %g, std %g, eps %g: (b - m) / max(std, eps) is not "
                    "finite", (long long)i, norm->mean[i], norm->std[i], norm->eps);
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
