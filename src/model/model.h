/* Internal: model helpers shared by the model, its inference, evaluation (src/eval/) and the
 * trainer's checkpoints. */
#ifndef NB_MODEL_H
#define NB_MODEL_H

#include "nabla.h"

/* nb_model_save with extra tensors and metadata entries (a checkpoint's optimiser state). */
nb_status nb_model_save_extra(const nb_model *m, const char *path, const nb_tensor_ref *extra,
                              int n_extra, const char *const *keys, const char *const *values,
                              int n_meta, nb_error *err);
/* nb_model_load_weights from an open file; tensors whose names start with skip_prefix (may be
 * NULL) are not model parameters and are ignored. */
nb_status nb_model_take_weights(nb_model *m, const nb_safetensors *st, const char *path,
                                const char *skip_prefix, nb_error *err);

/* The samples' count and size against the model's input: all that inference needs. */
nb_status nb_model_check_inputs(const nb_model *m, const nb_dataset *ds, const char *what,
                                nb_error *err);
/* Regression outputs in the targets' own units: out = z·max(σ, ε) + m per target (the
 * inverse of their standardisation; norm NULL or mode none: a copy). rows × C floats. */
void nb_targets_to_units(const nb_norm *norm, const float *z, int64_t rows, int64_t C,
                         float *out);

/* Test-time augmentation (tta.c). nb_tta_check: whether mode applies to m. nb_tta_logits:
 * with the n samples of a batch already gathered into the model's input, the logits log p̄
 * of the augmented views' mean probabilities (n × classes floats); scratch holds
 * (n + 1) × classes doubles. The input holds the gathered batch again on return. */
nb_status nb_tta_check(const nb_model *m, nb_tta mode, nb_error *err);
nb_status nb_tta_logits(nb_model *m, int64_t n, float *logits, double *scratch, nb_error *err);

#endif
