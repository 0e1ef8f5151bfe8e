/* Internal: the best epoch so far and early stopping (src/train/best.c), for the trainer. */
#ifndef NB_TRAIN_BEST_H
#define NB_TRAIN_BEST_H

#include "nabla.h"

#include <cjson/cJSON.h>

typedef struct nb_best {
    nb_keep keep;
    nb_monitor monitor;
    int patience;
    size_t params;   /* parameter floats */
    size_t floats;   /* parameter and buffer floats */
    float *weights;  /* the best epoch's parameters, then its buffers (batch norm's running
                        statistics, which belong to those weights) (NB_KEEP_BEST), owned */
    int epoch;       /* 1-based; 0: no epoch validated yet */
    double metric;   /* its monitored value */
    int wait;        /* epochs since the best one */
    int stopped;     /* patience ran out */
} nb_best;

/* Sets up tracking for cfg; allocates the weights copy when keeping the best. */
nb_status nb_best_init(nb_best *b, const nb_train_config *cfg, size_t params, size_t buffers,
                       nb_error *err);
void nb_best_free(nb_best *b);

/* After epoch `epoch` was validated: decides whether it improved on the best (under MPI, rank
 * 0 decides and every rank adopts its metric), copies the parameters w and buffers buf when
 * it did and the best is kept, counts patience. Fills stats' best_*, improved and stopping. */
nb_status nb_best_update(nb_best *b, int epoch, const float *w, const float *buf, nb_dist *dist,
                         nb_epoch_stats *stats, nb_error *err);

/* "val_loss" or "val_accuracy". */
const char *nb_best_monitor_name(nb_monitor m);

/* Checkpoint state: adds "best_epoch", "best_metric", "wait", "monitor" to o. The best
 * weights travel as the tensor "optim.best" (nb_best_tensor gives it when there is one). */
void nb_best_to_json(const nb_best *b, cJSON *o);
int nb_best_tensor(const nb_best *b, nb_tensor_ref *ref);

/* What a checkpoint says of the best epoch, validated but not yet applied. */
typedef struct nb_best_saved {
    int epoch, wait;
    double metric;
    const float *weights; /* in the checkpoint's tensors; NULL when not kept */
} nb_best_saved;

/* Reads and checks the fields (absent in checkpoints of older versions: nothing tracked yet)
 * against b's settings; nb_best_apply then takes them, so that a checkpoint refused for any
 * reason leaves b as it was. */
nb_status nb_best_from_json(const nb_best *b, const cJSON *o, const nb_safetensors *st,
                            const char *path, nb_best_saved *out, nb_error *err);
void nb_best_apply(nb_best *b, const nb_best_saved *saved);

#endif
