/*
 * nabla/train.h — optimisers, schedules, the trainer, checkpoints, its MPI side (src/train/).
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_TRAIN_H
#define NABLA_TRAIN_H

#include "model.h"
#include "data.h"
#include "dist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Optimisers (§2, §5.6, §5.7), each following torch.optim's update rule exactly.
 * ---------------------------------------------------------------------------------------- */

typedef enum nb_optim_kind { NB_OPT_SGD = 0, NB_OPT_ADAM, NB_OPT_ADAMW } nb_optim_kind;

typedef struct nb_optim_config {
    nb_optim_kind kind;
    float lr;
    float momentum;     /* SGD */
    float dampening;    /* SGD */
    int nesterov;       /* SGD */
    float beta1, beta2, eps; /* Adam, AdamW */
    float weight_decay; /* torch's weight_decay: g += wd·w (SGD, Adam), decoupled for AdamW.
                           The lecture's L2 term α‖w‖² is weight_decay = 2α. */
    float l1;           /* L1 (lasso): g += l1·sign(w) */
    float clip_norm;    /* > 0: scale g so that ‖g‖₂ ≤ clip_norm, as clip_grad_norm_ */
} nb_optim_config;

/* Fills the defaults: SGD, lr 0.01, Adam betas (0.9, 0.999), eps 1e-8. */
void nb_optim_config_default(nb_optim_config *cfg);

typedef struct nb_optim nb_optim;
/* Optimiser state for n parameters. Caller owns it. */
nb_optim *nb_optim_new(const nb_optim_config *cfg, size_t n, nb_error *err);
void nb_optim_free(nb_optim *opt);
/* One step: w ← update(w, g) with learning rate lr (from a schedule). g may be modified
 * (decay and clipping are applied to it in place). */
void nb_optim_step(nb_optim *opt, float *w, float *g, float lr);
/* State for checkpoints: `count` buffers of n floats, and the step counter. */
int nb_optim_state_count(const nb_optim *opt);
float *nb_optim_state(nb_optim *opt, int i);
int64_t nb_optim_steps(const nb_optim *opt);
void nb_optim_set_steps(nb_optim *opt, int64_t steps);

typedef enum nb_schedule_kind {
    NB_SCHED_CONSTANT = 0,
    NB_SCHED_STEP,        /* lr · gamma^⌊t/step_size⌋ */
    NB_SCHED_EXPONENTIAL, /* lr · gamma^t */
    NB_SCHED_COSINE       /* min_lr + (lr − min_lr)(1 + cos(π t/T))/2 */
} nb_schedule_kind;

typedef struct nb_schedule {
    nb_schedule_kind kind;
    int64_t warmup;    /* linear warm-up over this many steps (0: none) */
    int64_t step_size; /* NB_SCHED_STEP */
    float gamma;       /* NB_SCHED_STEP, NB_SCHED_EXPONENTIAL */
    int64_t total;     /* NB_SCHED_COSINE: T */
    float min_lr;      /* NB_SCHED_COSINE */
} nb_schedule;

/* Learning rate at step t (0-based) for base rate lr. */
float nb_schedule_lr(const nb_schedule *s, float lr, int64_t t);

/* ------------------------------------------------------------------------------------------
 * Training (§2, §5) and evaluation (§6). The trainer owns the run's generator (data order),
 * the optimiser state and the step counter; a checkpoint holds all of them, so a resumed run
 * continues bit for bit as if it had never stopped. The library reports progress through
 * callbacks and never prints.
 * ---------------------------------------------------------------------------------------- */

/* Which weights a finished run leaves in the model: the last epoch's (the default), or those
 * of the epoch whose validation metric was best (Keras' ModelCheckpoint(save_best_only=True)). */
typedef enum nb_keep { NB_KEEP_LAST = 0, NB_KEEP_BEST } nb_keep;
/* The validation metric that decides "best" and early stopping: the loss (lower is better;
 * Keras' default, "val_loss") or the accuracy (higher is better). An epoch improves only if
 * it beats the best so far strictly. */
typedef enum nb_monitor { NB_MONITOR_VAL_LOSS = 0, NB_MONITOR_VAL_ACCURACY } nb_monitor;

typedef struct nb_train_config {
    nb_optim_config optim;
    nb_schedule schedule;
    int epochs;
    int64_t batch;        /* samples per step; 0 or ≥ the set size: full-batch descent */
    nb_order order;       /* shuffle (default), sequential or stratified */
    uint64_t seed;        /* data order; the model's graph has its own (Dropout) */
    /* Both need a validation set. */
    nb_keep keep;         /* NB_KEEP_BEST: the model ends with the best epoch's weights */
    nb_monitor monitor;   /* what "best" means for keep and patience */
    int patience;         /* > 0: stop after this many epochs in a row without improvement
                             (Keras' EarlyStopping(patience)); 0: never stop early */
    /* Image augmentation (src/train/augment.c), for a model whose input is [C, H, W] or
     * [H, W]: random crops of the image padded by augment_pad pixels (of raw value 0), and
     * random horizontal flips — torchvision's RandomCrop(padding) and RandomHorizontalFlip.
     * Each sample's draw depends only on seed, the epoch and its row in the epoch's order, so
     * runs are reproducible and resume exactly. 0: none. */
    int augment_pad;
    int augment_flip;
    /* Label smoothing ε ∈ [0, 1) of a cross-entropy loss (PyTorch's label_smoothing): each
     * step fits the target (1 − ε)·onehot(y) + ε/K instead of onehot(y), so the training loss
     * reported includes it; the validation loss (and any evaluation) is the plain
     * cross-entropy. > 0 sets the model's cross-entropy node to ε (nb_trainer_new fails on a
     * model whose loss is another); 0 leaves the model's own (the description's
     * label_smoothing=, else none). */
    float label_smoothing;
} nb_train_config;

void nb_train_config_default(nb_train_config *cfg);

typedef struct nb_epoch_stats {
    int epoch, epochs;    /* 1-based */
    int64_t step;         /* optimiser steps so far */
    double lr;            /* at the last step */
    double train_loss, train_accuracy;   /* running averages over the epoch */
    double val_loss, val_accuracy;       /* NAN without a validation set */
    double seconds, samples_per_second;
    int best_epoch;       /* the epoch with the best validation metric so far (0: none) */
    double best_metric;   /* its value of the monitored metric */
    int improved;         /* whether this epoch is the new best */
    int stopping;         /* patience ran out: this is the last epoch */
} nb_epoch_stats;

typedef struct nb_train_callbacks {
    void *user;
    /* After each step: samples done of total in this epoch, the step's loss. May be NULL. */
    void (*progress)(void *user, int epoch, int64_t done, int64_t total, double loss,
                     double seconds);
    /* After each epoch; a non-zero return stops training (as after the last epoch). */
    int (*epoch_end)(void *user, const nb_epoch_stats *stats);
    /* Polled before each step; non-zero stops with NB_EINTR at the end of that epoch's last
     * complete step (the model is consistent; the caller writes a checkpoint). Under MPI
     * (nb_trainer_set_dist) the ranks agree before every step (one small all-reduce): a
     * request on any rank stops all of them before the same step, with the epoch's running
     * sums gathered so that rank 0's checkpoint holds them. */
    int (*interrupted)(void *user);
} nb_train_callbacks;

typedef struct nb_trainer nb_trainer;

/* A trainer for model m on train (and val, may be NULL), which must outlive it. Checks the
 * data against the model. Caller owns the trainer. */
nb_trainer *nb_trainer_new(nb_model *m, const nb_dataset *train, const nb_dataset *val,
                           const nb_train_config *cfg, nb_error *err);
void nb_trainer_free(nb_trainer *t);
/* Runs the remaining epochs (none after an early stop, also when resumed from it). On success
 * with NB_KEEP_BEST the model then holds the best epoch's weights (the checkpoints written by
 * epoch_end hold the last epoch's state, best weights included, so that a run resumes as if
 * it had never stopped). NB_ENUMERIC if the loss became NaN or infinite: the model then holds
 * the best epoch's weights (NB_KEEP_BEST, once an epoch was validated), or else the weights
 * from the end of the last good epoch. Under MPI, rank 0's validation metric decides what is
 * best and when to stop, and every rank follows it. */
nb_status nb_trainer_run(nb_trainer *t, const nb_train_callbacks *cb, nb_error *err);
int nb_trainer_epoch(const nb_trainer *t); /* completed epochs */
/* The epoch with the best validation metric so far (0 when none was validated) and, if metric
 * is not NULL, its value. */
int nb_trainer_best_epoch(const nb_trainer *t, double *metric);
/* Whether the run stopped early because patience ran out. */
int nb_trainer_stopped_early(const nb_trainer *t);
/* Whether a step of the last nb_trainer_run computed a finite loss with the weights the model
 * now holds (after NB_ENUMERIC: whether they are worth saving). */
int nb_trainer_weights_proven(const nb_trainer *t);
/* Checkpoints: weights, optimiser state, epoch, step and generator states, written
 * atomically. Resuming requires the same model and optimiser kind. Under MPI only rank 0
 * writes; the other ranks return NB_OK (see nb_trainer_set_dist). */
nb_status nb_trainer_save_checkpoint(const nb_trainer *t, const char *path, nb_error *err);
nb_status nb_trainer_resume(nb_trainer *t, const char *path, nb_error *err);
/* After nb_trainer_resume: the hyper-parameters (batch size, rate, momentum, schedule, order,
 * augmentation, label smoothing, …) that differ from those the checkpoint was written with, as "lr 0.05 (the
 * checkpoint's: 0.1), …", or "" (also for checkpoints that do not record them). Owned by t. */
const char *nb_trainer_resume_changes(const nb_trainer *t);

/* The trainer under MPI (the protocol is described in dist.h). */
/* Makes trainer t train its share of every batch on d (src/train/train_dist.c). NB_EINVAL if
 * some global batch — the last one of an epoch included — would leave a rank without rows. d
 * must outlive t; NULL returns to single-process training. Call it once, on every rank, with
 * the same model, data and settings everywhere.
 *
 * The protocol the trainer then keeps, the same for the nabla command and any program that
 * embeds it (tests/tool_dist_embed.c runs one under mpirun):
 *   - the model's generator is forked per rank (nb_dist_fork_rng; again after
 *     nb_trainer_resume, which loads rank 0's), so Dropout masks differ between ranks while
 *     the data order, drawn from the trainer's own generator, is the same on all;
 *   - a stop is agreed: a request through nb_train_callbacks.interrupted on any rank stops
 *     every rank before the same step (NB_EINTR on all), a non-finite loss on any rank stops
 *     all at the same step (NB_ENUMERIC on all), and a non-zero return of epoch_end on any
 *     rank (e.g. rank 0 failing to write a file) ends the run after that epoch on all;
 *     early stopping follows rank 0's validation metric;
 *   - after every epoch (after epoch_end) the replicas' weights are compared bitwise
 *     (nb_dist_check_replicas): NB_EDIST on every rank if they differ;
 *   - rank 0 alone writes checkpoints: nb_trainer_save_checkpoint on the other ranks returns
 *     NB_OK without writing, so every rank may call it.
 * nb_trainer_dist_shared(s) says whether a status of nb_trainer_run reached every rank. When
 * it did, the ranks can leave together (nb_dist_agree, then nb_dist_free); otherwise the
 * other ranks may be waiting in a collective, and the job must end with nb_dist_abort. */
nb_status nb_trainer_set_dist(nb_trainer *t, nb_dist *d, nb_error *err);
/* Whether status s, returned by nb_trainer_run under MPI, was returned by every rank: NB_OK,
 * NB_EINTR, NB_ENUMERIC and NB_EDIST are agreed; any other failure (an allocation, an MPI
 * call) may be this rank's alone. */
int nb_trainer_dist_shared(nb_status s);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_TRAIN_H */
