/* The trainer's best-epoch keeping and early stopping through the library alone, as a C
 * program embedding nabla uses them (nb_train_config keep / monitor / patience):
 *   - with NB_KEEP_BEST the model ends with the weights of the epoch whose validation loss
 *     (or accuracy) was best: nb_evaluate gives exactly that epoch's reported figure; with
 *     NB_KEEP_LAST the last epoch's;
 *   - patience N stops N epochs after the best, as the figures reported per epoch say;
 *   - a checkpoint written mid-run and resumed by a fresh trainer ends with the same weights;
 *   - with batch norm, the kept model has the best epoch's running statistics too (its
 *     evaluation again gives exactly that epoch's figure), and so has its model file;
 *   - keeping or patience without validation data, and a negative patience, are refused.
 * The run (a 2-64-64-3 ReLU net, lr 0.2, batches of 8 on noisy spirals) is one whose
 * validation loss is lowest early, so the best and the last epoch differ. */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include "check.h"
#include "nabla.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { EPOCHS = 14 };

typedef struct record {
    int epochs;
    double val_loss[EPOCHS + 1], val_acc[EPOCHS + 1];
    int best_epoch[EPOCHS + 1], improved[EPOCHS + 1], stopping[EPOCHS + 1];
    nb_trainer *trainer;
    const char *checkpoint; /* written after epoch `checkpoint_at` */
    int checkpoint_at;
} record;

static int on_epoch(void *user, const nb_epoch_stats *s)
{
    record *r = user;
    r->epochs = s->epoch;
    r->val_loss[s->epoch] = s->val_loss;
    r->val_acc[s->epoch] = s->val_accuracy;
    r->best_epoch[s->epoch] = s->best_epoch;
    r->improved[s->epoch] = s->improved;
    r->stopping[s->epoch] = s->stopping;
    nb_error err = {0};
    if (r->checkpoint && s->epoch == r->checkpoint_at)
        CHECK_OK(nb_trainer_save_checkpoint(r->trainer, r->checkpoint, &err), &err);
    return 0;
}

static nb_dataset train, val;
static const char *description = "2-64-64-3";

/* Trains a fresh model with cfg; returns it (caller frees) and fills *r. resume: a checkpoint
 * to continue from. */
static nb_model *train_run(const nb_train_config *cfg, record *r, const char *checkpoint,
                           int checkpoint_at, const char *resume, nb_trainer **keep)
{
    nb_error err = {0};
    nb_model *m = nb_model_new(description, "test", 2, NULL, &err);
    CHECK_OK(m == NULL, &err);
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_graph_init_params(nb_model_graph(m), NB_INIT_KAIMING_UNIFORM, &rng);
    nb_trainer *t = nb_trainer_new(m, &train, &val, cfg, &err);
    CHECK_OK(t == NULL, &err);
    memset(r, 0, sizeof *r);
    r->trainer = t;
    r->checkpoint = checkpoint;
    r->checkpoint_at = checkpoint_at;
    if (resume)
        CHECK_OK(nb_trainer_resume(t, resume, &err), &err);
    nb_train_callbacks cb = {.user = r, .epoch_end = on_epoch};
    CHECK_OK(nb_trainer_run(t, &cb, &err), &err);
    if (keep)
        *keep = t;
    else
        nb_trainer_free(t);
    return m;
}

static double eval_loss(nb_model *m, double *acc)
{
    double loss = NAN;
    nb_error err = {0};
    CHECK_OK(nb_evaluate(m, &val, &loss, acc, NULL, &err), &err);
    return loss;
}

static void config(nb_train_config *cfg)
{
    nb_train_config_default(cfg);
    cfg->epochs = EPOCHS;
    cfg->batch = 8;
    cfg->optim.lr = 0.2f;
    cfg->seed = 2;
}

int main(void)
{
    nb_error err = {0};
    CHECK_OK(nb_spirals(&train, 40, 3, 0.6f, 3, &err), &err);
    CHECK_OK(nb_spirals(&val, 40, 3, 0.6f, 4, &err), &err);
    nb_train_config cfg;
    record r, last_r;

    /* ---- keep best by loss, against keep last ---- */
    config(&cfg);
    nb_model *last = train_run(&cfg, &last_r, NULL, 0, NULL, NULL);
    CHECK(last_r.epochs == EPOCHS);
    CHECK(eval_loss(last, NULL) == last_r.val_loss[EPOCHS]); /* same batches: bit for bit */
    cfg.keep = NB_KEEP_BEST;
    nb_trainer *t;
    nb_model *best = train_run(&cfg, &r, NULL, 0, NULL, &t);
    int want = 1;
    for (int e = 1; e <= EPOCHS; e++) {
        CHECK(r.val_loss[e] == last_r.val_loss[e]); /* keeping changes nothing in training */
        want = r.val_loss[e] < r.val_loss[want] ? e : want;
        CHECK_MSG(r.best_epoch[e] == want && r.improved[e] == (want == e) && !r.stopping[e],
                  "epoch %d: best %d, improved %d (expected best %d)", e, r.best_epoch[e],
                  r.improved[e], want);
    }
    double metric;
    CHECK_MSG(want < EPOCHS - 2, "the run's validation loss is lowest at epoch %d of %d: the "
              "test needs an earlier best", want, EPOCHS);
    CHECK(nb_trainer_best_epoch(t, &metric) == want && metric == r.val_loss[want]);
    CHECK(!nb_trainer_stopped_early(t));
    CHECK_MSG(eval_loss(best, NULL) == r.val_loss[want], "kept model: %.9g, epoch %d: %.9g",
              eval_loss(best, NULL), want, r.val_loss[want]);
    CHECK(eval_loss(best, NULL) < eval_loss(last, NULL));
    printf("keep best: epoch %d of %d (val loss %.6f; last %.6f)\n", want, EPOCHS,
           r.val_loss[want], last_r.val_loss[EPOCHS]);
    nb_trainer_free(t);
    nb_model_free(best);
    int best_loss_epoch = want;

    /* ---- keep best by accuracy ---- */
    cfg.monitor = NB_MONITOR_VAL_ACCURACY;
    best = train_run(&cfg, &r, NULL, 0, NULL, NULL);
    want = 1;
    for (int e = 1; e <= EPOCHS; e++)
        want = r.val_acc[e] > r.val_acc[want] ? e : want;
    double acc = NAN;
    eval_loss(best, &acc);
    CHECK_MSG(acc == r.val_acc[want], "kept accuracy %.6f, epoch %d's %.6f", acc, want,
              r.val_acc[want]);
    printf("keep best accuracy: epoch %d (%.4f)\n", want, acc);
    nb_model_free(best);

    /* ---- patience ---- */
    cfg.monitor = NB_MONITOR_VAL_LOSS;
    cfg.patience = 3;
    int stop = 0, b = 1;
    for (int e = 1; e <= EPOCHS && !stop; e++) {
        b = last_r.val_loss[e] < last_r.val_loss[b] || e == 1 ? e : b;
        stop = e - b >= cfg.patience ? e : 0;
    }
    CHECK_MSG(stop > 0 && stop < EPOCHS, "patience 3 runs out at epoch %d", stop);
    best = train_run(&cfg, &r, NULL, 0, NULL, &t);
    CHECK_MSG(r.epochs == stop && nb_trainer_epoch(t) == stop && r.stopping[stop] &&
              nb_trainer_stopped_early(t), "stopped after epoch %d, expected %d", r.epochs, stop);
    CHECK(eval_loss(best, NULL) == last_r.val_loss[b]);
    printf("patience 3: stopped after epoch %d, best %d\n", r.epochs, b);
    nb_trainer_free(t);
    nb_model_free(best);

    /* ---- a checkpoint written after an epoch past the best resumes to the same end ---- */
    char dir[] = "/tmp/nb_keep_best_XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    cfg.patience = 0;
    cfg.keep = NB_KEEP_BEST;
    nb_model *whole = train_run(&cfg, &r, path, best_loss_epoch + 1, NULL, NULL);
    nb_model *resumed = train_run(&cfg, &r, NULL, 0, path, NULL);
    CHECK(r.epochs == EPOCHS);
    nb_graph *g1 = nb_model_graph(whole), *g2 = nb_model_graph(resumed);
    CHECK(memcmp(nb_graph_params(g1), nb_graph_params(g2),
                 nb_graph_param_floats(g1) * sizeof(float)) == 0);
    printf("resumed after epoch %d: the same kept weights\n", best_loss_epoch + 1);
    unlink(path);
    rmdir(dir);
    nb_model_free(whole);
    nb_model_free(resumed);

    /* ---- batch norm: running statistics are part of the kept state ---- */
    description = "x = input(2)\nh1 = linear(x, 64)\nb1 = batch_norm(h1)\nr1 = relu(b1)\n"
                  "h2 = linear(r1, 64)\nb2 = batch_norm(h2)\nr2 = relu(b2)\nz = linear(r2, 3)\n";
    config(&cfg);
    cfg.keep = NB_KEEP_BEST;
    best = train_run(&cfg, &r, NULL, 0, NULL, &t);
    int bn_best = nb_trainer_best_epoch(t, NULL);
    CHECK(bn_best >= 1 && bn_best <= EPOCHS);
    CHECK_MSG(bn_best < EPOCHS, "batch norm run: best epoch %d is the last; the check below "
              "needs an earlier one", bn_best);
    CHECK_MSG(eval_loss(best, NULL) == r.val_loss[bn_best], "batch norm: kept model %.9g, "
              "epoch %d: %.9g", eval_loss(best, NULL), bn_best, r.val_loss[bn_best]);
    /* and they are what the model file holds: saved and loaded, the same evaluation */
    char bn_dir[] = "/tmp/nb_keep_best_bn_XXXXXX", bn_path[64];
    CHECK(mkdtemp(bn_dir) != NULL);
    snprintf(bn_path, sizeof bn_path, "%s/bn.safetensors", bn_dir);
    CHECK_OK(nb_model_save(best, bn_path, &err), &err);
    nb_model *loaded = nb_model_load(bn_path, 1, NULL, &err);
    CHECK_OK(loaded == NULL, &err);
    if (loaded) {
        nb_graph_prepare(nb_model_graph(loaded), cfg.batch, &err); /* the same chunks */
        CHECK_MSG(eval_loss(loaded, NULL) == r.val_loss[bn_best], "saved and loaded: %.9g",
                  eval_loss(loaded, NULL));
    }
    nb_model_free(loaded);
    unlink(bn_path);
    rmdir(bn_dir);
    printf("batch norm: kept epoch %d with its running statistics (val loss %.6f), saved and "
           "loaded alike\n", bn_best, r.val_loss[bn_best]);
    nb_trainer_free(t);
    nb_model_free(best);

    /* ---- refused configurations ---- */
    nb_trainer *bad = nb_trainer_new(last, &train, NULL, &cfg, &err);
    CHECK(bad == NULL && err.code == NB_EINVAL && strstr(err.msg, "validation set"));
    cfg.keep = NB_KEEP_LAST;
    cfg.patience = -1;
    bad = nb_trainer_new(last, &train, &val, &cfg, &err);
    CHECK(bad == NULL && err.code == NB_EINVAL && strstr(err.msg, "patience"));
    nb_model_free(last);
    nb_dataset_free(&train);
    nb_dataset_free(&val);
    return check_finish("test_keep_best");
}
