/* Inference (§6): a model in evaluation mode (dropout off) over samples of a data set, their
 * inputs normalised with the model's statistics: class scores turned into the arg-max class
 * and softmax probabilities, or a regression's outputs mapped back to the targets' units. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>

/* Runs the output for samples idx[0..n) (idx NULL: the first n) in chunks, calling `use` with
 * each chunk's first row and its [count, C] outputs. */
typedef void (*chunk_fn)(void *user, int64_t first, int64_t count, const float *z, int64_t C);

static nb_status run_output(nb_model *m, const nb_dataset *ds, const int64_t *idx, int64_t n,
                            chunk_fn use, void *user, nb_error *err)
{
    nb_graph *g = nb_model_graph(m);
    int in = nb_model_input(m), out = nb_model_output(m);
    const nb_norm *norm = nb_model_norm(m)->mode ? nb_model_norm(m) : NULL;
    nb_status s = nb_model_check_inputs(m, ds, "predict", err);
    if (s)
        return s;
    enum { CHUNK = 256 };
    int64_t C = nb_model_classes(m), rows[CHUNK];
    float *views = NULL; /* test-time augmentation: log p̄ of a chunk, and its scratch */
    double *scratch = NULL;
    if (nb_model_tta(m) != NB_TTA_NONE &&
        (!(views = malloc((size_t)(CHUNK * C) * sizeof *views)) ||
         !(scratch = malloc((size_t)((CHUNK + 1) * C) * sizeof *scratch)))) {
        free(views);
        return nb_error_set(err, NB_ENOMEM, "predict: out of memory for test-time augmentation");
    }
    int was_training = nb_graph_training(g);
    nb_graph_set_training(g, 0);
    for (int64_t start = 0; !s && start < n; start += CHUNK) {
        int64_t count = n - start < CHUNK ? n - start : CHUNK;
        for (int64_t i = 0; i < count; i++)
            rows[i] = idx ? idx[start + i] : start + i;
        /* no backward follows: memory planned for inference, the output kept; the first
         * chunk plans afresh (the graph may be planned for other outputs) */
        if ((start == 0 || nb_graph_batch(g) != count) &&
            (s = nb_graph_prepare_inference(g, count, &out, 1, err)))
            break;
        nb_dataset_gather(ds, rows, count, norm, nb_value(g, in), NULL);
        if (views) {
            if ((s = nb_tta_logits(m, count, views, scratch, err)))
                break;
        } else if ((s = nb_graph_forward_to(g, out, err))) {
            break;
        }
        use(user, start, count, views ? views : nb_value(g, out), C);
    }
    nb_graph_set_training(g, was_training);
    free(views);
    free(scratch);
    return s;
}

typedef struct class_out {
    float *probs;
    int32_t *classes;
} class_out;

static void to_classes(void *user, int64_t start, int64_t count, const float *z, int64_t C)
{
    const class_out *o = user;
    for (int64_t r = 0; r < count; r++) {
        const float *zr = z + r * C;
        int64_t best = 0;
        for (int64_t j = 1; j < C; j++)
            best = zr[j] > zr[best] ? j : best;
        if (o->classes)
            o->classes[start + r] = (int32_t)best;
        if (o->probs) { /* softmax(z) = exp(z − max) / Σ exp(z − max) */
            double sum = 0.0;
            for (int64_t j = 0; j < C; j++)
                sum += exp((double)(zr[j] - zr[best]));
            for (int64_t j = 0; j < C; j++)
                o->probs[(start + r) * C + j] = (float)(exp((double)(zr[j] - zr[best])) / sum);
        }
    }
}

nb_status nb_model_predict(nb_model *m, const nb_dataset *ds, const int64_t *idx, int64_t n,
                           float *probs, int32_t *classes, nb_error *err)
{
    class_out o = {probs, classes};
    return run_output(m, ds, idx, n, to_classes, &o, err);
}

void nb_targets_to_units(const nb_norm *norm, const float *z, int64_t rows, int64_t C,
                         float *out)
{
    int64_t per_slot = norm && norm->mode != NB_NORM_NONE && norm->size > 0 ? C / norm->size : 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < C; j++) {
            float v = z[r * C + j];
            if (per_slot) {
                int64_t k = j / per_slot;
                float d = norm->std[k] > norm->eps ? norm->std[k] : norm->eps;
                v = v * (d > 0 ? d : 1.0f) + norm->mean[k];
            }
            out[r * C + j] = v;
        }
}

typedef struct value_out {
    const nb_norm *norm;
    float *values;
} value_out;

static void to_values(void *user, int64_t start, int64_t count, const float *z, int64_t C)
{
    const value_out *o = user;
    nb_targets_to_units(o->norm, z, count, C, o->values + start * C);
}

nb_status nb_model_predict_values(nb_model *m, const nb_dataset *ds, const int64_t *idx,
                                  int64_t n, float *values, nb_error *err)
{
    value_out o = {nb_model_targets(m) >= 0 ? nb_model_target_norm(m) : NULL, values};
    return run_output(m, ds, idx, n, to_values, &o, err);
}
