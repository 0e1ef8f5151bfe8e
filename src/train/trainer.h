/* Internal to train/: the trainer's state, shared by the training loop (train.c), its
 * checkpoints (checkpoint.c) and its MPI protocol (train_dist.c). */
#ifndef NB_TRAIN_TRAINER_H
#define NB_TRAIN_TRAINER_H

#include "nabla.h"
#include "train/augment.h"
#include "train/best.h"

struct nb_trainer {
    nb_model *model;
    const nb_dataset *train, *val;
    nb_train_config cfg;
    char resume_changes[512]; /* settings that differ from the resumed checkpoint's */
    nb_optim *optim;
    nb_rng rng;            /* data order; drawn from at the start of each epoch */
    nb_rng epoch_rng;      /* rng as it was before the current epoch's order was drawn */
    int epoch;             /* completed epochs */
    int64_t step;
    /* Progress within the current epoch, so that an interrupted run resumes at the very step
     * where it stopped: samples done, and the running loss sum and correct count. */
    int64_t position;
    double epoch_loss_sum;
    int64_t epoch_correct;
    int64_t batch;
    int64_t *order, *scratch;
    float *snapshot;       /* the last weights known to give a finite loss (an epoch's start) */
    float *buffer_snapshot; /* and the buffers (batch norm's running statistics) with them */
    nb_augment augment;     /* cfg.augment_*: crops and flips of each training batch */
    int good_epoch;        /* the epoch whose start they are */
    int proven;            /* whether a step of this run computed a finite loss with them */
    nb_dist *dist;         /* NULL, or the MPI job whose ranks share every batch (src/dist/dist.c) */
    nb_best best;          /* the best validated epoch, early stopping (src/train/best.c) */
};

/* With ranks, the epoch's loss sum and correct count over all rows (train_dist.c). */
nb_status nb_trainer_sum_over_ranks(const nb_trainer *t, double *loss_sum, int64_t *correct,
                                    nb_error *err);
/* With ranks, at an epoch's end after the epoch_end callback, whose return is *stop: checks
 * that the replicas agree (NB_EDIST on every rank if not) and makes the stop the ranks' common
 * decision (train_dist.c). */
nb_status nb_trainer_dist_epoch_end(nb_trainer *t, int *stop, nb_error *err);

#endif
