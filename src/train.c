/* Minibatch training (LECTURE.md §2): every step averages the gradient of the loss over a
 * batch of samples and moves the parameters against it,
 *     w ← w − η ∂L(B, w)/∂w,        L(B, w) = 1/|B| Σ_{p∈B} C(y[p], G(x[p], w)),
 * with |B| = 1 giving stochastic gradient descent and |B| = P full-batch descent. The order of
 * the samples is drawn anew every epoch (§5.4) from the trainer's own generator. */
#include "graph.h"
#include "model.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct nb_trainer {
    nb_model *model;
    const nb_dataset *train, *val;
    nb_train_config cfg;
    nb_optim *optim;
    nb_rng rng;            /* data order */
    int epoch;             /* completed epochs */
    int64_t step;
    int64_t batch;
    int64_t *order, *scratch;
    float *snapshot;       /* parameters at the start of the epoch, restored on NaN */
    nb_dist *dist;         /* NULL, or the MPI job whose ranks share every batch (src/dist.c) */
};

void nb_train_config_default(nb_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    nb_optim_config_default(&cfg->optim);
    cfg->optim.lr = 0.1f;
    cfg->optim.momentum = 0.9f;
    cfg->epochs = 10;
    cfg->batch = 128;
    cfg->order = NB_ORDER_SHUFFLE;
    cfg->seed = 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

nb_trainer *nb_trainer_new(nb_model *m, const nb_dataset *train, const nb_dataset *val,
                           const nb_train_config *cfg, nb_error *err)
{
    if (nb_model_check_data(m, train, "training data", err) ||
        (val && nb_model_check_data(m, val, "validation data", err)))
        return NULL;
    if (nb_model_labels(m) < 0 || !train->labels) {
        nb_error_set(err, NB_EINVAL, "training needs labelled data and a model whose output "
                     "holds class scores");
        return NULL;
    }
    if (cfg->epochs < 0 || cfg->batch < 0) {
        nb_error_set(err, NB_EINVAL, "epochs and batch size must not be negative");
        return NULL;
    }
    nb_trainer *t = calloc(1, sizeof *t);
    nb_graph *g = nb_model_graph(m);
    size_t params = nb_graph_param_floats(g);
    if (!t || !(t->order = malloc((size_t)train->count * sizeof *t->order)) ||
        !(t->scratch = malloc((size_t)train->count * sizeof *t->scratch)) ||
        !(t->snapshot = malloc((params ? params : 1) * sizeof *t->snapshot))) {
        nb_trainer_free(t);
        nb_error_set(err, NB_ENOMEM, "out of memory for the trainer");
        return NULL;
    }
    t->model = m;
    t->train = train;
    t->val = val;
    t->cfg = *cfg;
    t->batch = cfg->batch < 1 || cfg->batch > train->count ? train->count : cfg->batch;
    if (t->cfg.schedule.kind == NB_SCHED_COSINE && t->cfg.schedule.total <= 0) /* anneal over the run */
        t->cfg.schedule.total = (int64_t)cfg->epochs * ((train->count + t->batch - 1) / t->batch);
    nb_rng_seed(&t->rng, cfg->seed);
    if (!(t->optim = nb_optim_new(&cfg->optim, params, err)) ||
        nb_graph_prepare(g, t->batch, err)) {
        nb_trainer_free(t);
        return NULL;
    }
    return t;
}

void nb_trainer_free(nb_trainer *t)
{
    if (!t)
        return;
    nb_optim_free(t->optim);
    free(t->order);
    free(t->scratch);
    free(t->snapshot);
    free(t);
}

int nb_trainer_epoch(const nb_trainer *t) { return t->epoch; }

nb_status nb_trainer_set_dist(nb_trainer *t, nb_dist *d, nb_error *err)
{
    int64_t N = nb_dist_size(d), last = t->train->count % t->batch;
    if (d && (t->batch < N || (last > 0 && last < N)))
        return nb_error_set(err, NB_EINVAL, "every rank needs rows in every batch: %lld samples "
                            "in batches of %lld leave %lld rows for %lld ranks; choose another "
                            "--batch", (long long)t->train->count, (long long)t->batch,
                            (long long)(t->batch < N ? t->batch : last), (long long)N);
    t->dist = d;
    return NB_OK;
}

/* Index of the largest of C scores. */
static int64_t argmax(const float *z, int64_t C)
{
    int64_t best = 0;
    for (int64_t j = 1; j < C; j++)
        best = z[j] > z[best] ? j : best;
    return best;
}

nb_status nb_evaluate(nb_model *m, const nb_dataset *ds, double *loss, double *accuracy,
                      int64_t *confusion, nb_error *err)
{
    nb_graph *g = nb_model_graph(m);
    int in = nb_model_input(m), out = nb_model_output(m), y = nb_model_labels(m);
    int lossn = nb_model_loss(m);
    nb_status s = nb_model_check_data(m, ds, "evaluation data", err);
    if (!s && (y < 0 || !ds->labels))
        s = nb_error_set(err, NB_EINVAL, "evaluation needs labels and a classifier");
    if (s)
        return s;
    const nb_norm *norm = nb_model_norm(m)->mode ? nb_model_norm(m) : NULL;
    int64_t C = nb_model_classes(m), batch = nb_graph_batch(g), correct = 0;
    if (batch < 1)
        batch = 256;
    int64_t rows[256];
    if (batch > 256)
        batch = 256;
    if (confusion)
        memset(confusion, 0, (size_t)(C * C) * sizeof *confusion);
    int was_training = nb_graph_training(g);
    nb_graph_set_training(g, 0);
    double total = 0.0;
    for (int64_t start = 0; start < ds->count; start += batch) {
        int64_t n = ds->count - start < batch ? ds->count - start : batch;
        if (nb_graph_batch(g) != n && (s = nb_graph_prepare(g, n, err)))
            break;
        for (int64_t i = 0; i < n; i++)
            rows[i] = start + i;
        nb_dataset_gather(ds, rows, n, norm, nb_value(g, in), nb_labels_data(g, y));
        if ((s = nb_graph_forward_to(g, lossn, err)))
            break;
        total += (double)nb_value(g, lossn)[0] * (double)n;
        const float *z = nb_value(g, out);
        for (int64_t r = 0; r < n; r++) {
            int64_t p = argmax(z + r * C, C), truth = ds->labels[start + r];
            correct += p == truth;
            if (confusion)
                confusion[truth * C + p]++;
        }
    }
    nb_graph_set_training(g, was_training);
    if (loss)
        *loss = total / (double)ds->count;
    if (accuracy)
        *accuracy = (double)correct / (double)ds->count;
    return s;
}

nb_status nb_trainer_run(nb_trainer *t, const nb_train_callbacks *cb, nb_error *err)
{
    nb_model *m = t->model;
    nb_graph *g = nb_model_graph(m);
    int in = nb_model_input(m), out = nb_model_output(m), y = nb_model_labels(m);
    int lossn = nb_model_loss(m);
    const nb_norm *norm = nb_model_norm(m)->mode ? nb_model_norm(m) : NULL;
    const nb_dataset *ds = t->train;
    int64_t C = nb_model_classes(m), P = ds->count;
    float *w = nb_graph_params(g), *dw = nb_graph_param_grads(g);
    size_t params = nb_graph_param_floats(g);
    nb_status s = NB_OK;
    while (t->epoch < t->cfg.epochs) {
        double start = now(), loss_sum = 0.0, lr = 0.0;
        int64_t correct = 0, done = 0;
        memcpy(t->snapshot, w, params * sizeof *w);
        nb_dataset_order(ds, t->cfg.order, t->batch, &t->rng, t->order, t->scratch);
        nb_graph_set_training(g, 1);
        for (int64_t first = 0; first < P; first += t->batch) {
            if (cb && cb->interrupted && cb->interrupted(cb->user)) {
                memcpy(w, t->snapshot, params * sizeof *w);
                return nb_error_set(err, NB_EINTR, "interrupted in epoch %d", t->epoch + 1);
            }
            int64_t n = P - first < t->batch ? P - first : t->batch, lo, nr;
            nb_dist_share(t->dist, n, &lo, &nr); /* this rank's rows: lo, lo+1, …, lo+nr−1 */
            if (nb_graph_batch(g) != nr && (s = nb_graph_prepare(g, nr, err)))
                return s;
            nb_dataset_gather(ds, t->order + first + lo, nr, norm, nb_value(g, in),
                              nb_labels_data(g, y));
            nb_graph_zero_grad(g);
            if ((s = nb_graph_forward_to(g, lossn, err)))
                return s;
            double loss = nb_value(g, lossn)[0];
            /* With ranks: the seed nr/n makes each rank's gradient its share of the batch mean;
             * the all-reduce sums them, and a non-finite loss on any rank reaches all. */
            float seed = (float)nr / (float)n;
            if ((s = nb_graph_backward(g, lossn, t->dist ? &seed : NULL, err)) ||
                (s = nb_dist_allreduce_grads(t->dist, dw, params, &loss, err)))
                return s;
            if (!isfinite(loss)) {
                memcpy(w, t->snapshot, params * sizeof *w);
                return nb_error_set(err, NB_ENUMERIC, "epoch %d, step %" PRId64 ": the loss "
                                    "became %g; stopped, keeping the weights from the end of "
                                    "epoch %d. Lower the learning rate or clip gradients.",
                                    t->epoch + 1, t->step + 1, loss, t->epoch);
            }
            lr = nb_schedule_lr(&t->cfg.schedule, t->cfg.optim.lr, t->step);
            nb_optim_step(t->optim, w, dw, (float)lr); /* w ← w − η ∂L/∂w, or Adam's rule */
            t->step++;
            const float *z = nb_value(g, out);
            const int32_t *labels = nb_labels_data(g, y);
            for (int64_t r = 0; r < nr; r++)
                correct += argmax(z + r * C, C) == labels[r];
            loss_sum += loss * (double)nr;
            done += n;
            if (cb && cb->progress)
                cb->progress(cb->user, t->epoch + 1, done, P, loss, now() - start);
        }
        nb_graph_set_training(g, 0);
        if (t->dist) { /* each rank counted its own rows */
            double sums[2] = {loss_sum, (double)correct};
            if ((s = nb_dist_sum(t->dist, sums, 2, err)))
                return s;
            loss_sum = sums[0];
            correct = (int64_t)sums[1];
        }
        t->epoch++;
        nb_epoch_stats st = {
            .epoch = t->epoch, .epochs = t->cfg.epochs, .step = t->step, .lr = lr,
            .train_loss = loss_sum / (double)P, .train_accuracy = (double)correct / (double)P,
            .val_loss = NAN, .val_accuracy = NAN,
        };
        st.seconds = now() - start;
        st.samples_per_second = (double)P / st.seconds;
        if (t->val && (s = nb_evaluate(m, t->val, &st.val_loss, &st.val_accuracy, NULL, err)))
            return s;
        if (nb_graph_batch(g) != t->batch && (s = nb_graph_prepare(g, t->batch, err)))
            return s;
        if (cb && cb->epoch_end && cb->epoch_end(cb->user, &st))
            break;
    }
    return NB_OK;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

nb_status nb_trainer_save_checkpoint(const nb_trainer *t, const char *path, nb_error *err)
{
    nb_graph *g = nb_model_graph(t->model);
    int n_state = nb_optim_state_count(t->optim);
    nb_tensor_ref extra[8];
    char names[8][32];
    for (int i = 0; i < n_state && i < 8; i++) {
        snprintf(names[i], sizeof names[i], "optim.state.%d", i);
        extra[i] = (nb_tensor_ref){.name = names[i], .ndim = 1,
                                   .dims = {(int64_t)nb_graph_param_floats(g)},
                                   .data = nb_optim_state(t->optim, i)};
    }
    const nb_rng *dropout = nb_graph_rng(g);
    char state[512];
    snprintf(state, sizeof state,
             "{\"epoch\": %d, \"step\": %" PRId64 ", \"optimizer\": %d, \"optimizer_steps\": %" PRId64
             ", \"rng\": [\"%016" PRIx64 "\", \"%016" PRIx64 "\", \"%016" PRIx64 "\", \"%016" PRIx64
             "\"], \"dropout_rng\": [\"%016" PRIx64 "\", \"%016" PRIx64 "\", \"%016" PRIx64
             "\", \"%016" PRIx64 "\"]}",
             t->epoch, t->step, (int)t->cfg.optim.kind, nb_optim_steps(t->optim), t->rng.s[0],
             t->rng.s[1], t->rng.s[2], t->rng.s[3], dropout->s[0], dropout->s[1], dropout->s[2],
             dropout->s[3]);
    const char *keys[] = {"nabla.checkpoint"};
    const char *values[] = {state};
    return nb_model_save_extra(t->model, path, extra, n_state < 8 ? n_state : 8, keys, values, 1,
                               err);
}

nb_status nb_trainer_resume(nb_trainer *t, const char *path, nb_error *err)
{
    nb_safetensors *st;
    nb_status s = nb_safetensors_read(path, &st, err);
    if (s)
        return s;
    nb_graph *g = nb_model_graph(t->model);
    const char *state = nb_safetensors_meta(st, "nabla.checkpoint");
    int epoch = -1, kind = -1;
    int64_t step = -1, optim_steps = -1;
    uint64_t r[8];
    if (!state ||
        sscanf(state, "{\"epoch\": %d, \"step\": %" SCNd64 ", \"optimizer\": %d, \"optimizer_steps\": %" SCNd64
               ", \"rng\": [\"%" SCNx64 "\", \"%" SCNx64 "\", \"%" SCNx64 "\", \"%" SCNx64
               "\"], \"dropout_rng\": [\"%" SCNx64 "\", \"%" SCNx64 "\", \"%" SCNx64 "\", \"%" SCNx64 "\"]}",
               &epoch, &step, &kind, &optim_steps, &r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6],
               &r[7]) != 12 || epoch < 0 || step < 0 || optim_steps < 0)
        s = nb_error_set(err, NB_EFORMAT, "%s: not a nabla checkpoint (__metadata__ "
                         "'nabla.checkpoint' missing or malformed)", path);
    else if (kind != (int)t->cfg.optim.kind)
        s = nb_error_set(err, NB_EINVAL, "%s: the checkpoint was written with another optimiser "
                         "(kind %d, this run uses %d)", path, kind, (int)t->cfg.optim.kind);
    if (!s)
        s = nb_model_take_weights(t->model, st, path, "optim.", err);
    for (int i = 0; !s && i < nb_optim_state_count(t->optim); i++) {
        char name[32];
        snprintf(name, sizeof name, "optim.state.%d", i);
        const nb_tensor_ref *ref = nb_safetensors_find(st, name);
        if (!ref || ref->ndim != 1 || ref->dims[0] != (int64_t)nb_graph_param_floats(g))
            s = nb_error_set(err, NB_EFORMAT, "%s: tensor '%s' missing or of the wrong size",
                             path, name);
        else
            memcpy(nb_optim_state(t->optim, i), ref->data, nb_graph_param_floats(g) * sizeof(float));
    }
    if (!s) {
        t->epoch = epoch;
        t->step = step;
        nb_optim_set_steps(t->optim, optim_steps);
        memcpy(t->rng.s, r, sizeof t->rng.s);
        memcpy(nb_graph_rng(g)->s, r + 4, sizeof t->rng.s);
    }
    nb_safetensors_free(st);
    return s;
}
