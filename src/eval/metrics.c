/* Evaluation (§6): a trained model run in evaluation mode over a data set, and the figures a
 * practitioner reads — the loss, and either a classifier's accuracy, top-k accuracy,
 * confusion matrix and per-class precision, recall and F1, or a regression's MSE, RMSE, MAE
 * and R² per target, in the targets' own units. Definitions follow scikit-learn (see nabla.h,
 * nb_metrics), so numbers can be compared with sklearn.metrics directly. */
#include "core/graph.h"
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per target: Welford's running mean and M2 = Σ(y − mean)² of the true values (no
 * cancellation, unlike Σy² − (Σy)²/P, when the targets sit far from zero), and the sums of
 * squared and absolute errors. */
typedef struct target_stats {
    double n, mean, m2, sse, sae;
} target_stats;

static void target_add(target_stats *s, double y, double pred)
{
    s->n += 1;
    double d = y - s->mean;
    s->mean += d / s->n;
    s->m2 += d * (y - s->mean);
    double e = pred - y;
    s->sse += e * e;
    s->sae += fabs(e);
}

void nb_metrics_free(nb_metrics *mt)
{
    if (!mt)
        return;
    free(mt->confusion);
    free(mt->support);
    free(mt->precision);
    free(mt->recall);
    free(mt->f1);
    free(mt->mse);
    free(mt->rmse);
    free(mt->mae);
    free(mt->r2);
    memset(mt, 0, sizeof *mt);
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

/* Precision, recall and F1 per class from the confusion matrix, and their averages. */
static void class_report(nb_metrics *mt)
{
    int64_t C = mt->classes, present = 0;
    double mp = 0, mr = 0, mf = 0, wp = 0, wr = 0, wf = 0;
    for (int64_t c = 0; c < C; c++) {
        int64_t tp = mt->confusion[c * C + c], predicted = 0, actual = 0;
        for (int64_t k = 0; k < C; k++) {
            predicted += mt->confusion[k * C + c];
            actual += mt->confusion[c * C + k];
        }
        double p = ratio((double)tp, (double)predicted), r = ratio((double)tp, (double)actual);
        mt->support[c] = actual;
        mt->precision[c] = p;
        mt->recall[c] = r;
        mt->f1[c] = ratio(2 * p * r, p + r);
        if (predicted || actual) { /* a label of y_true ∪ y_pred, as scikit-learn averages */
            present++;
            mp += p;
            mr += r;
            mf += mt->f1[c];
        }
        wp += p * (double)actual;
        wr += r * (double)actual;
        wf += mt->f1[c] * (double)actual;
    }
    mt->macro_precision = ratio(mp, (double)present);
    mt->macro_recall = ratio(mr, (double)present);
    mt->macro_f1 = ratio(mf, (double)present);
    mt->weighted_precision = ratio(wp, (double)mt->samples);
    mt->weighted_recall = ratio(wr, (double)mt->samples);
    mt->weighted_f1 = ratio(wf, (double)mt->samples);
}

static void regression_report(nb_metrics *mt, const target_stats *st)
{
    int64_t T = mt->targets;
    for (int64_t j = 0; j < T; j++) {
        double P = st[j].n;
        mt->mse[j] = st[j].sse / P;
        mt->rmse[j] = sqrt(mt->mse[j]);
        mt->mae[j] = st[j].sae / P;
        /* R² = 1 − SS_res/SS_tot; a constant target has SS_tot = 0: scikit-learn's
         * force_finite gives 1 for a perfect prediction and 0 otherwise. */
        mt->r2[j] = st[j].m2 > 0 ? 1.0 - st[j].sse / st[j].m2 : st[j].sse == 0 ? 1.0 : 0.0;
        mt->mse_mean += mt->mse[j] / (double)T;
        mt->rmse_mean += mt->rmse[j] / (double)T;
        mt->mae_mean += mt->mae[j] / (double)T;
        mt->r2_mean += mt->r2[j] / (double)T;
    }
}

nb_status nb_metrics_compute(nb_model *m, const nb_dataset *ds, int top_k, nb_metrics *out,
                             nb_error *err)
{
    memset(out, 0, sizeof *out);
    nb_graph *g = nb_model_graph(m);
    int in = nb_model_input(m), outn = nb_model_output(m), y = nb_model_labels(m);
    int tn = nb_model_targets(m), lossn = nb_model_loss(m);
    nb_status s = nb_model_check_data(m, ds, "evaluation data", err);
    if (!s && tn < 0 && (y < 0 || !ds->labels))
        s = nb_error_set(err, NB_EINVAL, "evaluation needs labelled data and a classifier, or a "
                         "regression model and targets");
    if (!s && top_k < 0)
        s = nb_error_set(err, NB_EINVAL, "top-k: k = %d, expected k >= 1 (0: not computed)",
                         top_k);
    if (s)
        return s;
    int64_t C = nb_model_classes(m), T = tn >= 0 ? C : 0;
    const nb_norm *norm = nb_model_norm(m)->mode ? nb_model_norm(m) : NULL;
    const nb_norm *tnorm = nb_model_target_norm(m)->mode ? nb_model_target_norm(m) : NULL;
    enum { CHUNK = 256 };
    int64_t batch = nb_graph_batch(g) >= 1 && nb_graph_batch(g) < CHUNK ? nb_graph_batch(g) : CHUNK;
    int64_t rows[CHUNK], correct = 0, in_top = 0;
    target_stats *st = NULL;
    float *units = NULL, *views = NULL; /* views: test-time augmentation's log p̄ */
    double *scratch = NULL;
    out->samples = ds->count;
    if (T > 0) {
        out->targets = T;
        st = calloc((size_t)T, sizeof *st);
        units = malloc((size_t)(batch * T) * sizeof *units);
        out->mse = calloc((size_t)T, sizeof(double));
        out->rmse = calloc((size_t)T, sizeof(double));
        out->mae = calloc((size_t)T, sizeof(double));
        out->r2 = calloc((size_t)T, sizeof(double));
        if (!st || !units || !out->mse || !out->rmse || !out->mae || !out->r2)
            s = nb_error_set(err, NB_ENOMEM, "out of memory for %lld targets' metrics",
                             (long long)T);
    } else {
        out->classes = C;
        out->top_k = top_k;
        out->confusion = calloc((size_t)(C * C), sizeof *out->confusion);
        out->support = calloc((size_t)C, sizeof *out->support);
        out->precision = calloc((size_t)C, sizeof(double));
        out->recall = calloc((size_t)C, sizeof(double));
        out->f1 = calloc((size_t)C, sizeof(double));
        if (nb_model_tta(m) != NB_TTA_NONE) {
            views = malloc((size_t)(batch * C) * sizeof *views);
            scratch = malloc((size_t)((batch + 1) * C) * sizeof *scratch);
        }
        if (!out->confusion || !out->support || !out->precision || !out->recall || !out->f1 ||
            (nb_model_tta(m) != NB_TTA_NONE && (!views || !scratch)))
            s = nb_error_set(err, NB_ENOMEM, "out of memory for %lld classes' metrics",
                             (long long)C);
    }
    int was_training = nb_graph_training(g);
    nb_graph_set_training(g, 0);
    double total = 0.0;
    /* No backward follows: memory planned for inference, the loss and the output kept. The
     * first chunk plans afresh (the graph may be planned for other outputs). */
    const int keep[2] = {lossn, outn};
    for (int64_t start = 0; !s && start < ds->count; start += batch) {
        int64_t n = ds->count - start < batch ? ds->count - start : batch;
        if ((start == 0 || nb_graph_batch(g) != n) &&
            (s = nb_graph_prepare_inference(g, n, keep, 2, err)))
            break;
        for (int64_t i = 0; i < n; i++)
            rows[i] = start + i;
        nb_dataset_gather(ds, rows, n, norm, nb_value(g, in), y >= 0 ? nb_labels_data(g, y) : NULL);
        if (tn >= 0)
            nb_dataset_gather_targets(ds, rows, n, tnorm, nb_value(g, tn));
        const float *z;
        if (views) { /* the loss of the mean of the views' probabilities: −log p̄[y] */
            if ((s = nb_tta_logits(m, n, views, scratch, err)))
                break;
            for (int64_t r = 0; r < n; r++)
                total -= views[r * C + ds->labels[start + r]];
            z = views;
        } else {
            if ((s = nb_graph_forward_to(g, lossn, err)))
                break;
            total += (double)nb_value(g, lossn)[0] * (double)n;
            z = nb_value(g, outn);
        }
        if (T > 0) {
            nb_targets_to_units(tnorm, z, n, T, units);
            for (int64_t r = 0; r < n; r++)
                for (int64_t j = 0; j < T; j++)
                    target_add(&st[j], ds->targets[(start + r) * T + j], units[r * T + j]);
            continue;
        }
        for (int64_t r = 0; r < n; r++) {
            const float *zr = z + r * C;
            int64_t truth = ds->labels[start + r], best = 0, above = 0;
            for (int64_t j = 1; j < C; j++)
                best = zr[j] > zr[best] ? j : best;
            for (int64_t j = 0; j < C; j++)
                above += zr[j] > zr[truth];
            correct += best == truth;
            in_top += above < top_k;
            out->confusion[truth * C + best]++;
        }
    }
    nb_graph_set_training(g, was_training);
    if (!s) {
        out->loss = total / (double)ds->count;
        if (T > 0) {
            out->accuracy = NAN;
            regression_report(out, st);
        } else {
            out->accuracy = (double)correct / (double)ds->count;
            out->top_k_accuracy = top_k ? (double)in_top / (double)ds->count : NAN;
            class_report(out);
        }
    }
    free(st);
    free(units);
    free(views);
    free(scratch);
    if (s)
        nb_metrics_free(out);
    return s;
}

nb_status nb_evaluate(nb_model *m, const nb_dataset *ds, double *loss, double *accuracy,
                      int64_t *confusion, nb_error *err)
{
    nb_metrics mt;
    nb_status s = nb_metrics_compute(m, ds, 0, &mt, err);
    if (s)
        return s;
    if (loss)
        *loss = mt.loss;
    if (accuracy)
        *accuracy = mt.accuracy;
    if (confusion && mt.confusion)
        memcpy(confusion, mt.confusion, (size_t)(mt.classes * mt.classes) * sizeof *confusion);
    nb_metrics_free(&mt);
    return NB_OK;
}
