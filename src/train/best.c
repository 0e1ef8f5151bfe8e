/* The best epoch and early stopping, as Keras' ModelCheckpoint(save_best_only=True) and
 * EarlyStopping(patience) do it, monitoring the validation loss (lower is better) or accuracy
 * (higher is better):
 *
 *     after epoch e:  improved = metric(e) < best   (loss)     or   metric(e) > best  (accuracy)
 *                     improved → best = metric(e), best_epoch = e, wait = 0, keep w(e)
 *                     otherwise wait += 1;  wait ≥ patience > 0 → stop
 *
 * The first validated epoch always improves (best starts at ±∞); a NaN never does. Only the
 * validation set decides — the held-out data (§5.3): the training loss keeps falling while a
 * model overfits, which is what the validation curve shows and what this keeps from it. */
#include "train/best.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BEST_TENSOR "optim.best"

const char *nb_best_monitor_name(nb_monitor m)
{
    return m == NB_MONITOR_VAL_ACCURACY ? "val_accuracy" : "val_loss";
}

nb_status nb_best_init(nb_best *b, const nb_train_config *cfg, size_t params, size_t buffers,
                       nb_error *err)
{
    size_t floats = params + buffers;
    memset(b, 0, sizeof *b);
    b->keep = cfg->keep;
    b->monitor = cfg->monitor;
    b->patience = cfg->patience;
    b->params = params;
    b->floats = floats;
    if (cfg->patience < 0)
        return nb_error_set(err, NB_EINVAL, "patience must not be negative (0: never stop early)");
    if ((cfg->keep != NB_KEEP_LAST && cfg->keep != NB_KEEP_BEST) ||
        (cfg->monitor != NB_MONITOR_VAL_LOSS && cfg->monitor != NB_MONITOR_VAL_ACCURACY))
        return nb_error_set(err, NB_EINVAL, "unknown keep or monitor setting");
    if (b->keep == NB_KEEP_BEST && !(b->weights = malloc((floats ? floats : 1) * sizeof(float))))
        return nb_error_set(err, NB_ENOMEM, "out of memory for the best epoch's weights");
    return NB_OK;
}

void nb_best_free(nb_best *b)
{
    free(b->weights);
    b->weights = NULL;
}

nb_status nb_best_update(nb_best *b, int epoch, const float *w, const float *buf, nb_dist *dist,
                         nb_epoch_stats *stats, nb_error *err)
{
    double metric = b->monitor == NB_MONITOR_VAL_ACCURACY ? stats->val_accuracy : stats->val_loss;
    int improved = b->epoch == 0 ? !isnan(metric)
                   : b->monitor == NB_MONITOR_VAL_ACCURACY ? metric > b->metric
                                                           : metric < b->metric;
    if (dist) {
        /* Every rank evaluated the same weights on the same data, but the thread counts (and
         * so the summation orders) may differ between hosts: rank 0's figures decide. */
        int root = nb_dist_rank(dist) == 0;
        double v[2] = {root ? metric : 0.0, root ? (double)improved : 0.0};
        nb_status s = nb_dist_sum(dist, v, 2, err);
        if (s)
            return s;
        metric = v[0];
        improved = v[1] != 0.0;
    }
    if (improved) {
        b->epoch = epoch;
        b->metric = metric;
        b->wait = 0;
        if (b->weights) {
            memcpy(b->weights, w, b->params * sizeof *w);
            if (b->floats > b->params)
                memcpy(b->weights + b->params, buf, (b->floats - b->params) * sizeof *buf);
        }
    } else {
        b->wait++;
    }
    b->stopped = b->patience > 0 && b->wait >= b->patience;
    stats->best_epoch = b->epoch;
    stats->best_metric = b->epoch ? b->metric : NAN;
    stats->improved = improved;
    stats->stopping = b->stopped;
    return NB_OK;
}

void nb_best_to_json(const nb_best *b, cJSON *o)
{
    cJSON_AddNumberToObject(o, "best_epoch", b->epoch);
    cJSON_AddNumberToObject(o, "best_metric", b->epoch ? b->metric : 0.0);
    cJSON_AddNumberToObject(o, "wait", b->wait);
    cJSON_AddStringToObject(o, "monitor", nb_best_monitor_name(b->monitor));
}

int nb_best_tensor(const nb_best *b, nb_tensor_ref *ref)
{
    if (!b->weights || !b->epoch)
        return 0;
    *ref = (nb_tensor_ref){.name = BEST_TENSOR, .ndim = 1, .dims = {(int64_t)b->floats},
                           .data = b->weights};
    return 1;
}

/* A non-negative integer below 2^31, or -1; `fallback` when the key is absent. */
static int64_t small_int(const cJSON *o, const char *key, int64_t fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return fallback;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > INT32_MAX ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    return (int64_t)v->valuedouble;
}

nb_status nb_best_from_json(const nb_best *b, const cJSON *o, const nb_safetensors *st,
                            const char *path, nb_best_saved *out, nb_error *err)
{
    int64_t epoch = small_int(o, "best_epoch", 0), wait = small_int(o, "wait", 0);
    int64_t done = small_int(o, "epoch", -1);
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(o, "best_metric");
    const cJSON *monitor = cJSON_GetObjectItemCaseSensitive(o, "monitor");
    int known = cJSON_IsString(monitor) && (strcmp(monitor->valuestring, "val_loss") == 0 ||
                                            strcmp(monitor->valuestring, "val_accuracy") == 0);
    memset(out, 0, sizeof *out);
    if (epoch < 0 || wait < 0 || done < 0 || epoch > done || wait > done ||
        (epoch && (!cJSON_IsNumber(metric) || !isfinite(metric->valuedouble) || !known)))
        return nb_error_set(err, NB_EFORMAT, "%s: __metadata__ 'nabla.checkpoint': malformed "
                            "best_epoch, best_metric, wait or monitor", path);
    if (epoch && strcmp(monitor->valuestring, nb_best_monitor_name(b->monitor)) != 0)
        return nb_error_set(err, NB_EINVAL, "%s: the checkpoint's best epoch was chosen by %s; "
                            "this run monitors %s", path, monitor->valuestring,
                            nb_best_monitor_name(b->monitor));
    if (b->weights && epoch) {
        const nb_tensor_ref *ref = nb_safetensors_find(st, BEST_TENSOR);
        if (!ref)
            return nb_error_set(err, NB_EINVAL, "%s: the checkpoint holds no best epoch's "
                                "weights (it was written without keeping the best); the best "
                                "epoch so far is unknown", path);
        if (ref->ndim != 1 || ref->dims[0] != (int64_t)b->floats)
            return nb_error_set(err, NB_EFORMAT, "%s: tensor '" BEST_TENSOR "' has the wrong "
                                "size; expected [%zu] (parameters and buffers)", path, b->floats);
        out->weights = ref->data;
    }
    out->epoch = (int)epoch;
    out->metric = epoch ? metric->valuedouble : 0.0;
    out->wait = (int)wait;
    return NB_OK;
}

void nb_best_apply(nb_best *b, const nb_best_saved *saved)
{
    if (b->weights && saved->weights)
        memcpy(b->weights, saved->weights, b->floats * sizeof(float));
    b->epoch = saved->epoch;
    b->metric = saved->metric;
    b->wait = saved->wait;
    b->stopped = b->patience > 0 && b->wait >= b->patience;
}
