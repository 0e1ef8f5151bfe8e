/* Minibatch training (docs/lecture.md §2): every step averages the gradient of the loss over a
 * batch of samples and moves the parameters against it,
 *     w ← w − η ∂L(B, w)/∂w,        L(B, w) = 1/|B| Σ_{p∈B} C(y[p], G(x[p], w)),
 * with |B| = 1 giving stochastic gradient descent and |B| = P full-batch descent. The order of
 * the samples is drawn anew every epoch (§5.4) from the trainer's own generator. */
#include "backend/gemm_pool.h"
#include "core/graph.h"
#include "train/augment.h"
#include "model/model.h"
#include "train/best.h"
#include "train/trainer.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    if (nb_model_targets(m) < 0 && (nb_model_labels(m) < 0 || !train->labels)) {
        nb_error_set(err, NB_EINVAL, "training needs labelled data and a model whose output "
                     "holds class scores, or targets and a regression model (ending in "
                     "mse(prediction, target) with the target an input)");
        return NULL;
    }
    /* Cross-entropy takes scores (logits) and applies the softmax itself (§5.2). On a softmax
     * output it would fit softmax(softmax(z)): the probabilities barely move away from 1/C,
     * and prediction would apply the softmax a second time. */
    nb_graph *lg = nb_model_graph(m);
    int scores = nb_model_output(m);
    if (nb_node_op(lg, nb_model_loss(m)) == NB_OP_CROSS_ENTROPY &&
        nb_node_op(lg, scores) == NB_OP_SOFTMAX) {
        nb_error_set(err, NB_EINVAL, "the model's output '%s' is a softmax, but training uses "
                     "cross-entropy, which takes the scores before the softmax and applies it "
                     "itself; end the description in those scores (remove the softmax), or "
                     "use log_softmax followed by nll", nb_node_name(lg, scores));
        return NULL;
    }
    /* Label smoothing changes the cross-entropy's target: it needs one (a description ending
     * in log_softmax is trained with nll, a regression with the squared error). */
    int lossn = nb_model_loss(m);
    if (cfg->label_smoothing != 0.0f) {
        if (!(cfg->label_smoothing > 0.0f && cfg->label_smoothing < 1.0f)) {
            nb_error_set(err, NB_EINVAL, "label smoothing %g, expected 0 <= eps < 1",
                         (double)cfg->label_smoothing);
            return NULL;
        }
        nb_op op = nb_node_op(lg, lossn);
        if (op != NB_OP_CROSS_ENTROPY) {
            nb_error_set(err, NB_EINVAL, "label smoothing applies to a cross-entropy loss, but "
                         "this model's loss is %s%s", nb_op_name(op),
                         op == NB_OP_NLL ? " (its output is a log_softmax: end the description "
                                           "in the scores before it instead)"
                         : op == NB_OP_MSE ? " (a regression has no classes to smooth)" : "");
            return NULL;
        }
    }
    if (cfg->epochs < 0 || cfg->batch < 0) {
        nb_error_set(err, NB_EINVAL, "epochs and batch size must not be negative");
        return NULL;
    }
    if ((cfg->keep == NB_KEEP_BEST || cfg->patience > 0) && !val) {
        nb_error_set(err, NB_EINVAL, "keeping the best epoch and early stopping need a "
                     "validation set");
        return NULL;
    }
    nb_trainer *t = calloc(1, sizeof *t);
    nb_graph *g = nb_model_graph(m);
    size_t params = nb_graph_param_floats(g);
    if (!t || !(t->order = malloc((size_t)train->count * sizeof *t->order)) ||
        !(t->scratch = malloc((size_t)train->count * sizeof *t->scratch)) ||
        !(t->snapshot = malloc((params ? params : 1) * sizeof *t->snapshot)) ||
        !(t->buffer_snapshot = malloc((nb_graph_buffer_floats(g) + 1) * sizeof(float)))) {
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
    if ((cfg->augment_pad > 0 || cfg->augment_flip) &&
        nb_augment_init(&t->augment, m, nb_model_norm(m), cfg->augment_pad, cfg->augment_flip,
                        cfg->seed, err)) {
        nb_trainer_free(t);
        return NULL;
    }
    if (nb_best_init(&t->best, cfg, params, nb_graph_buffer_floats(g), err) ||
        !(t->optim = nb_optim_new(&cfg->optim, params, err)) ||
        nb_graph_prepare(g, t->batch, err)) {
        nb_trainer_free(t);
        return NULL;
    }
    if (cfg->label_smoothing > 0.0f &&
        nb_cross_entropy_set_smoothing(g, lossn, cfg->label_smoothing, err)) {
        nb_trainer_free(t);
        return NULL;
    }
    /* the smoothing in effect, the description's included: what checkpoints record */
    t->cfg.label_smoothing = nb_cross_entropy_smoothing(g, lossn);
    return t;
}

void nb_trainer_free(nb_trainer *t)
{
    if (!t)
        return;
    nb_optim_free(t->optim);
    nb_best_free(&t->best);
    free(t->order);
    free(t->scratch);
    free(t->snapshot);
    free(t->buffer_snapshot);
    nb_augment_free(&t->augment);
    free(t);
}

int nb_trainer_epoch(const nb_trainer *t) { return t->epoch; }
const char *nb_trainer_resume_changes(const nb_trainer *t) { return t->resume_changes; }
int nb_trainer_weights_proven(const nb_trainer *t) { return t->proven; }
int nb_trainer_stopped_early(const nb_trainer *t) { return t->best.stopped; }

int nb_trainer_best_epoch(const nb_trainer *t, double *metric)
{
    if (metric)
        *metric = t->best.epoch ? t->best.metric : NAN;
    return t->best.epoch;
}

/* NB_KEEP_BEST: the model takes the best epoch's weights (when an epoch was validated). */
static void use_best(nb_trainer *t)
{
    if (!t->best.weights || !t->best.epoch)
        return;
    nb_graph *g = nb_model_graph(t->model);
    memcpy(nb_graph_params(g), t->best.weights, t->best.params * sizeof(float));
    if (t->best.floats > t->best.params) /* the running statistics of those weights */
        memcpy(nb_graph_buffers(g), t->best.weights + t->best.params,
               (t->best.floats - t->best.params) * sizeof(float));
    nb_graph_params_changed(g);
}

/* nb_dataset_gather on the graph's threads, each gathering a block of the samples (and their
 * standardised regression targets into t, when t is not NULL). */
typedef struct gather_job {
    const nb_dataset *ds;
    const int64_t *idx;
    int64_t n;
    const nb_norm *norm, *tnorm;
    float *x, *t;
    int32_t *y;
} gather_job;

static void gather_task(void *arg, int64_t first, int64_t last, int task)
{
    (void)task;
    const gather_job *j = arg;
    nb_dataset_gather(j->ds, j->idx + first, last - first, j->norm,
                      j->x + first * j->ds->features, j->y ? j->y + first : NULL);
    if (j->t)
        nb_dataset_gather_targets(j->ds, j->idx + first, last - first, j->tnorm,
                                  j->t + first * j->ds->target_count);
}

/* The model's inputs, and its labels or targets, for samples idx[0..n) of ds. */
static void gather(nb_model *m, const nb_dataset *ds, const int64_t *idx, int64_t n)
{
    nb_graph *g = nb_model_graph(m);
    int y = nb_model_labels(m), tn = nb_model_targets(m);
    gather_job job = {.ds = ds, .idx = idx, .n = n,
                      .norm = nb_model_norm(m)->mode ? nb_model_norm(m) : NULL,
                      .tnorm = nb_model_target_norm(m)->mode ? nb_model_target_norm(m) : NULL,
                      .x = nb_value(g, nb_model_input(m)),
                      .t = tn >= 0 ? nb_value(g, tn) : NULL,
                      .y = y >= 0 ? nb_labels_data(g, y) : NULL};
    int64_t grain = 16384 / (ds->features > 0 ? ds->features : 1); /* ~16 k features a task */
    nb_parallel_for(g->gemm, n, grain, 8, 0, gather_task, &job);
}

/* Index of the largest of C scores. */
static int64_t argmax(const float *z, int64_t C)
{
    int64_t best = 0;
    for (int64_t j = 1; j < C; j++)
        best = z[j] > z[best] ? j : best;
    return best;
}

nb_status nb_trainer_run(nb_trainer *t, const nb_train_callbacks *cb, nb_error *err)
{
    nb_model *m = t->model;
    nb_graph *g = nb_model_graph(m);
    int out = nb_model_output(m), y = nb_model_labels(m);
    int lossn = nb_model_loss(m);
    const nb_dataset *ds = t->train;
    int64_t C = nb_model_classes(m), P = ds->count;
    float *w = nb_graph_params(g), *dw = nb_graph_param_grads(g);
    size_t params = nb_graph_param_floats(g);
    nb_status s = NB_OK;
    size_t buffers = nb_graph_buffer_floats(g);
    float *buf = nb_graph_buffers(g);
    memcpy(t->snapshot, w, params * sizeof *w); /* until a step proves them or better ones */
    if (buffers)
        memcpy(t->buffer_snapshot, buf, buffers * sizeof *buf);
    t->good_epoch = t->epoch;
    t->proven = 0;
    while (t->epoch < t->cfg.epochs && !t->best.stopped) {
        double start = now(), loss_sum = t->epoch_loss_sum, lr = 0.0;
        int64_t correct = t->epoch_correct, done = t->position;
        /* A run resumed in mid-epoch draws the same order again from the same state. */
        t->epoch_rng = t->rng;
        nb_dataset_order(ds, t->cfg.order, t->batch, &t->rng, t->order, t->scratch);
        nb_graph_set_training(g, 1);
        int64_t done_at_start = t->position;
        for (int64_t first = t->position; first < P; first += t->batch) {
            int stop = cb && cb->interrupted && cb->interrupted(cb->user);
            /* With ranks, a request seen by any (a signal may reach one rank first, or only
             * one) stops all of them before the same step. */
            if (t->dist && cb && cb->interrupted)
                stop = nb_dist_any(t->dist, stop);
            if (stop) {
                /* Stop between two steps: weights, optimiser, step and position agree, so a
                 * checkpoint written now resumes exactly here. */
                t->position = first;
                if (first == 0) /* no step of this epoch yet: its order is drawn again */
                    t->rng = t->epoch_rng;
                /* the epoch's sums so far over all rows, as at its end */
                if ((s = nb_trainer_sum_over_ranks(t, &loss_sum, &correct, err)))
                    return s;
                t->epoch_loss_sum = loss_sum;
                t->epoch_correct = correct;
                nb_graph_set_training(g, 0);
                return nb_error_set(err, NB_EINTR, "interrupted in epoch %d after %lld of %lld "
                                    "samples", t->epoch + 1, (long long)first, (long long)P);
            }
            int64_t n = P - first < t->batch ? P - first : t->batch, lo, nr;
            nb_dist_share(t->dist, n, &lo, &nr); /* this rank's rows: lo, lo+1, …, lo+nr−1 */
            if ((nb_graph_batch(g) != nr || nb_graph_inference(g)) &&
                (s = nb_graph_prepare(g, nr, err)))
                return s;
            gather(m, ds, t->order + first + lo, nr);
            if (t->augment.blank)
                nb_augment_batch(&t->augment, nb_value(g, nb_model_input(m)), nr, t->epoch,
                                 first + lo);
            if ((s = nb_graph_forward_to(g, lossn, err)))
                return s;
            double loss = nb_value(g, lossn)[0];
            /* With ranks: the seed nr/n makes each rank's gradient its share of the batch mean;
             * the all-reduce sums them, and a non-finite loss on any rank reaches all. */
            float seed = (float)nr / (float)n;
            /* ∂L/∂w written afresh: no zero_grad, the first contribution to each gradient
             * overwrites it (graph.c) */
            if ((s = nb_graph_backward_step(g, lossn, t->dist ? &seed : NULL, err)) ||
                (s = nb_dist_allreduce_grads(t->dist, dw, params, &loss, err)))
                return s;
            if (!isfinite(loss)) {
                memcpy(w, t->snapshot, params * sizeof *w);
                if (buffers) /* the failed forward moved the running statistics too */
                    memcpy(buf, t->buffer_snapshot, buffers * sizeof *buf);
                nb_graph_params_changed(g);
                if (t->best.weights && t->best.epoch) {
                    use_best(t); /* validated weights, so a step has shown them finite */
                    t->proven = 1;
                    return nb_error_set(err, NB_ENUMERIC, "epoch %d, step %" PRId64 ": the "
                                        "loss became %g; stopped, keeping the best epoch's "
                                        "weights (epoch %d, %s %.6g). Lower the learning rate "
                                        "or clip gradients.", t->epoch + 1, t->step + 1, loss,
                                        t->best.epoch, nb_best_monitor_name(t->best.monitor),
                                        t->best.metric);
                }
                if (!t->proven)
                    return nb_error_set(err, NB_ENUMERIC, "epoch %d, step %" PRId64 ": the loss "
                                        "became %g before any step of this run had a finite "
                                        "loss; no weights are known to be good. Lower the "
                                        "learning rate or clip gradients.", t->epoch + 1,
                                        t->step + 1, loss);
                return nb_error_set(err, NB_ENUMERIC, "epoch %d, step %" PRId64 ": the loss "
                                    "became %g; stopped, keeping the last weights whose loss was "
                                    "finite (epoch %d's start). Lower the learning rate or clip "
                                    "gradients.", t->epoch + 1, t->step + 1, loss,
                                    t->good_epoch + 1);
            }
            if (first == done_at_start) { /* these weights gave a finite loss: keep them */
                memcpy(t->snapshot, w, params * sizeof *w);
                if (buffers) /* as they were before this step's forward: close enough */
                    memcpy(t->buffer_snapshot, buf, buffers * sizeof *buf);
                t->good_epoch = t->epoch;
                t->proven = 1;
            }
            lr = nb_schedule_lr(&t->cfg.schedule, t->cfg.optim.lr, t->step);
            /* w ← w − η ∂L/∂w, or Adam's rule, on the graph's threads */
            nb_optim_step_parallel(t->optim, w, dw, (float)lr, g->gemm);
            nb_graph_params_changed(g); /* bf16: the next forward remakes the weights' shadow */
            /* Each rank's batch norm normalised by its own share's statistics and moved its
             * running statistics by them: averaging keeps the replicas equal (see nabla.h) */
            if (t->dist && buffers && (s = nb_dist_average(t->dist, buf, buffers, err)))
                return s;
            t->step++;
            const float *z = nb_value(g, out);
            const int32_t *labels = y >= 0 ? nb_labels_data(g, y) : NULL;
            for (int64_t r = 0; labels && r < nr; r++)
                correct += argmax(z + r * C, C) == labels[r];
            loss_sum += loss * (double)nr;
            done += n;
            if (cb && cb->progress)
                cb->progress(cb->user, t->epoch + 1, done, P, loss, now() - start);
        }
        nb_graph_set_training(g, 0);
        if ((s = nb_trainer_sum_over_ranks(t, &loss_sum, &correct, err)))
            return s;
        t->epoch++;
        t->position = 0;
        t->epoch_loss_sum = 0.0;
        t->epoch_correct = 0;
        nb_epoch_stats st = {
            .epoch = t->epoch, .epochs = t->cfg.epochs, .step = t->step, .lr = lr,
            .train_loss = loss_sum / (double)P,
            .train_accuracy = y >= 0 ? (double)correct / (double)P : NAN,
            .val_loss = NAN, .val_accuracy = NAN,
        };
        st.seconds = now() - start;
        st.samples_per_second = (double)P / st.seconds;
        if (t->val && (s = nb_evaluate(m, t->val, &st.val_loss, &st.val_accuracy, NULL, err)))
            return s;
        if (t->val && (s = nb_best_update(&t->best, t->epoch, w, buf, t->dist, &st, err)))
            return s;
        /* evaluation planned the graph for inference (or another batch): plan it for
         * training again */
        if ((nb_graph_batch(g) != t->batch || nb_graph_inference(g)) &&
            (s = nb_graph_prepare(g, t->batch, err)))
            return s;
        int stop = cb && cb->epoch_end && cb->epoch_end(cb->user, &st);
        /* with ranks: the replicas still agree, and a stop on any rank is a stop on all */
        if (t->dist && (s = nb_trainer_dist_epoch_end(t, &stop, err)))
            return s;
        if (stop)
            break;
    }
    use_best(t);
    return NB_OK;
}
