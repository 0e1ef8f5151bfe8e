/* Internal: training-time data augmentation for images (augment.c). */
#ifndef NB_AUGMENT_H
#define NB_AUGMENT_H

#include "nabla.h"

typedef struct nb_augment {
    int64_t C, H, W;      /* the model input's per-sample shape */
    int pad, flip;
    uint64_t seed;
    float *blank;         /* C·H·W: what a raw 0 becomes after normalisation (the padding) */
    float *scratch;       /* C·H·W: one sample being moved */
} nb_augment;

/* Prepares augmentation for model m's input (per-sample [C, H, W] or [H, W]) normalised by
 * norm (may be NULL). NB_EINVAL when the input is not an image or pad does not fit. */
nb_status nb_augment_init(nb_augment *a, const nb_model *m, const nb_norm *norm, int pad,
                          int flip, uint64_t seed, nb_error *err);
void nb_augment_free(nb_augment *a);

/* Augments the n samples at x in place; sample k is row `position + k` of epoch `epoch`'s
 * order, which alone fixes its draw. */
void nb_augment_batch(nb_augment *a, float *x, int64_t n, int epoch, int64_t position);

#endif
