/* Test-time augmentation (TTA) for image classifiers. With --tta flip the prediction for an
 * image x is the mean of the class probabilities of x and of its left–right mirror,
 *     p̄ = ½ (softmax(G(x, w)) + softmax(G(flip(x), w))),
 * the evaluation-time counterpart of training with random flips (--augment): the network has
 * learnt both orientations, and averaging two views of each test image lowers the variance of
 * its prediction (the same averaging as in an ensemble, here of one model over two inputs).
 *
 * The result is handed on as logits log p̄: softmax(log p̄) = p̄ because Σⱼ p̄ⱼ = 1, so the
 * arg-max, the top-k and the probabilities that prediction and evaluation compute from logits
 * follow unchanged, and the cross-entropy of a sample is −log p̄[y]. Sums are taken in double;
 * a class both views give probability 0 gets log p̄ = −∞, as torch.log(0) does. */
#include "model/model.h"

#include <math.h>

nb_status nb_tta_check(const nb_model *m, nb_tta mode, nb_error *err)
{
    if (mode == NB_TTA_NONE)
        return NB_OK;
    if (mode != NB_TTA_FLIP)
        return nb_error_set(err, NB_EINVAL, "test-time augmentation: unknown mode %d", (int)mode);
    if (nb_model_labels(m) < 0)
        return nb_error_set(err, NB_EINVAL, "test-time augmentation averages class "
                            "probabilities: the model must be a classifier (this one's output "
                            "'%s' is not a class score vector)",
                            nb_node_name(nb_model_graph((nb_model *)m), nb_model_output(m)));
    int64_t dims[NB_MAX_DIMS];
    nb_graph *g = nb_model_graph((nb_model *)m);
    int ndim = nb_node_shape(g, nb_model_input(m), dims);
    if (ndim != 2 && ndim != 3)
        return nb_error_set(err, NB_EINVAL, "test-time augmentation by flips needs images: the "
                            "model's input '%s' has %d dimension%s per sample, expected [C, H, W] "
                            "or [H, W]", nb_node_name(g, nb_model_input(m)), ndim,
                            ndim == 1 ? "" : "s");
    return NB_OK;
}

/* Mirrors every image of the batch left–right in place: x[…, w] ↔ x[…, W − 1 − w] for each of
 * the rows × W values (rows = N·C·H; the layout is [N, C, H, W], W contiguous). */
static void mirror(float *x, int64_t rows, int64_t W)
{
    for (int64_t r = 0; r < rows; r++, x += W)
        for (int64_t a = 0, b = W - 1; a < b; a++, b--) {
            float t = x[a];
            x[a] = x[b];
            x[b] = t;
        }
}

/* softmax(z) of one row into p (double): exp(z − max z) / Σ exp(z − max z). */
static void softmax_row(const float *z, int64_t C, double *p)
{
    float top = z[0];
    for (int64_t j = 1; j < C; j++)
        top = z[j] > top ? z[j] : top;
    double sum = 0.0;
    for (int64_t j = 0; j < C; j++)
        sum += p[j] = exp((double)z[j] - top);
    for (int64_t j = 0; j < C; j++)
        p[j] /= sum;
}

nb_status nb_tta_logits(nb_model *m, int64_t n, float *logits, double *scratch, nb_error *err)
{
    nb_graph *g = nb_model_graph(m);
    int out = nb_model_output(m);
    int64_t C = nb_model_classes(m), dims[NB_MAX_DIMS];
    int ndim = nb_node_shape(g, nb_model_input(m), dims);
    int64_t W = dims[ndim - 1], rows = n * (nb_model_features(m) / W);
    float *x = nb_value(g, nb_model_input(m));
    nb_status s = nb_graph_forward_to(g, out, err);
    if (s)
        return s;
    for (int64_t r = 0; r < n; r++) /* the first view's probabilities, kept in scratch */
        softmax_row(nb_value(g, out) + r * C, C, scratch + r * C);
    mirror(x, rows, W);
    s = nb_graph_forward_to(g, out, err);
    mirror(x, rows, W); /* the caller's batch as it was gathered */
    if (s)
        return s;
    double *p = scratch + n * C;
    for (int64_t r = 0; r < n; r++) {
        softmax_row(nb_value(g, out) + r * C, C, p);
        for (int64_t j = 0; j < C; j++)
            logits[r * C + j] = (float)log(0.5 * (scratch[r * C + j] + p[j]));
    }
    return NB_OK;
}
