/*
 * nabla/model.h — initialisation, the text description, model files, prediction (src/model/).
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_MODEL_H
#define NABLA_MODEL_H

#include "core.h"
#include "data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Initialisation (§5.8), drawn from the caller's generator.
 * ---------------------------------------------------------------------------------------- */

typedef enum nb_init_kind {
    NB_INIT_TORCH = 0,      /* PyTorch Linear default: W, b ~ U(−1/√fan_in, 1/√fan_in) */
    NB_INIT_KAIMING_NORMAL, /* W ~ N(0, 2/fan_in), b = 0 */
    NB_INIT_KAIMING_UNIFORM,/* W ~ U(−√(6/fan_in), √(6/fan_in)), b = 0 */
    NB_INIT_XAVIER_NORMAL,  /* W ~ N(0, 2/(fan_in+fan_out)), b = 0 */
    NB_INIT_XAVIER_UNIFORM  /* W ~ U(−√(6/(fan_in+fan_out)), …), b = 0 */
} nb_init_kind;

void nb_graph_init_params(nb_graph *g, nb_init_kind kind, nb_rng *rng);
/* Parses "torch", "kaiming-normal", "kaiming-uniform", "xavier-normal", "xavier-uniform";
 * -1 if unknown. */
int nb_init_parse(const char *name);

/* ------------------------------------------------------------------------------------------
 * The text model description (documented in README.md, "Model descriptions").
 *
 *     # the lecture's mynet (§7)
 *     x   = input(3, 10, 20)
 *     h   = flatten(x)
 *     fc1 = linear(h, 60)
 *     r1  = relu(fc1)
 *     ...
 *     output fc3
 *
 * or the one-line MLP shorthand "784-256-128-10" (ReLU between layers; an optional suffix
 * ":tanh" or ":sigmoid" picks another non-linearity). The output defaults to the last node.
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_model_desc {
    nb_graph *graph; /* owned by the description until taken */
    int input;       /* the first input node */
    int output;      /* the model output ȳ */
} nb_model_desc;

/* Builds nodes described by `text` into g. `source` names the text in error messages
 * ("mynet.nb:4:7: ..."). On success *input and *output are set. */
nb_status nb_describe(nb_graph *g, const char *text, const char *source, int *input,
                      int *output, nb_error *err);
/* Whether text is an MLP shorthand such as "784-256-10". */
int nb_is_shorthand(const char *text);

/* ------------------------------------------------------------------------------------------
 * Models: a described graph together with what it needs to be used on raw data — the
 * description text, the input normalisation fitted on the training set, class names — saved
 * as one safetensors file that PyTorch's load_state_dict accepts (tensors "<node>.weight",
 * "<node>.bias"; the rest in __metadata__: "nabla.description", "nabla.norm",
 * "nabla.classes", and for a regression "nabla.loss" ("mse" when the loss was appended),
 * "nabla.target_norm" and "nabla.targets").
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_model nb_model;

/* Builds a model from a description or an MLP shorthand; `source` names it in errors. For
 * training, a labels node "y" and a loss node "loss" are appended: NLL when the output is a
 * log_softmax, otherwise cross-entropy on the output taken as logits. gemm as in
 * nb_graph_new. Parameters start at zero: initialise them (nb_graph_init_params on
 * nb_model_graph(m)) or load them before training. Caller owns the model. */
nb_model *nb_model_new(const char *description, const char *source, uint64_t seed,
                       nb_gemm *gemm, nb_error *err);

/* The loss appended to a description that does not end in its own. */
typedef enum nb_loss_kind {
    NB_LOSS_AUTO = 0,      /* classification: cross-entropy (NLL after a log_softmax) */
    NB_LOSS_MSE            /* regression: a target input "__targets__" shaped like the output,
                              and mse(output, __targets__) (mean over the batch); the model
                              file records it ("nabla.loss": "mse") */
} nb_loss_kind;
/* nb_model_new with the loss chosen. NB_LOSS_MSE on a description ending in another loss is
 * an error. A description ending in mse(prediction, target) is a regression model whatever
 * `loss` says, its target node must be an input. */
nb_model *nb_model_new_with_loss(const char *description, const char *source, nb_loss_kind loss,
                                 uint64_t seed, nb_gemm *gemm, nb_error *err);
/* Regression: the input node that takes the targets (fed from nb_dataset's targets), or -1
 * for a classifier. */
int nb_model_targets(const nb_model *m);
/* The targets' standardisation (owned by the model; mode NB_NORM_NONE when absent): the model
 * learns t' = (t − m)/σ and nb_model_predict_values returns ȳ'·σ + m. nb_model_set_target_norm
 * takes ownership of norm's arrays and zeroes *norm. */
const nb_norm *nb_model_target_norm(const nb_model *m);
void nb_model_set_target_norm(nb_model *m, nb_norm *norm);
/* Target (column) names as one comma-separated string, or NULL. Copied. */
nb_status nb_model_set_target_names(nb_model *m, const char *names, nb_error *err);
const char *nb_model_target_names_text(const nb_model *m);
void nb_model_free(nb_model *m);
nb_graph *nb_model_graph(nb_model *m);
int nb_model_input(const nb_model *m);
int nb_model_output(const nb_model *m);
int nb_model_labels(const nb_model *m);  /* -1 when the output is not a class score vector */
int nb_model_loss(const nb_model *m);
const char *nb_model_description(const nb_model *m);
/* Number of classes (the output width), features per input sample. */
int64_t nb_model_classes(const nb_model *m);
int64_t nb_model_features(const nb_model *m);
/* The normalisation (owned by the model; mode NB_NORM_NONE when absent). nb_model_set_norm
 * takes ownership of norm's arrays and zeroes *norm. */
const nb_norm *nb_model_norm(const nb_model *m);
void nb_model_set_norm(nb_model *m, nb_norm *norm);
/* Class names as one comma-separated string, or NULL. Copied. */
nb_status nb_model_set_classes(nb_model *m, const char *names, nb_error *err);
const char *nb_model_classes_text(const nb_model *m);

/* Writes / reads a model file (atomic write). nb_model_load validates the tensors against the
 * described graph: every parameter present once, with its shape. */
nb_status nb_model_save(const nb_model *m, const char *path, nb_error *err);
nb_model *nb_model_load(const char *path, uint64_t seed, nb_gemm *gemm, nb_error *err);
/* Copies weights from a file into a model with the same parameters (train's --init). */
nb_status nb_model_load_weights(nb_model *m, const char *path, nb_error *err);

/* Checks that a data set fits the model: feature count, labels within the classes, as many
 * regression targets per sample as the model predicts. */
nb_status nb_model_check_data(const nb_model *m, const nb_dataset *ds, const char *what,
                              nb_error *err);

/* Test-time augmentation for nb_model_predict and nb_metrics_compute (src/model/tta.c).
 * NB_TTA_FLIP: an image classifier's prediction is the mean of the class probabilities of
 * each image and of its left–right mirror, p̄ = ½(softmax(G(x)) + softmax(G(flip x))); the
 * probabilities reported are p̄, the class its arg-max, the loss −log p̄[y]. Costs two
 * forward passes. Refused (NB_EINVAL) for a model that is not a classifier of [C, H, W] or
 * [H, W] images. The default is NB_TTA_NONE. */
typedef enum nb_tta { NB_TTA_NONE = 0, NB_TTA_FLIP = 1 } nb_tta;
nb_status nb_model_set_tta(nb_model *m, nb_tta mode, nb_error *err);
nb_tta nb_model_tta(const nb_model *m);

/* Inference in evaluation mode (dropout off): samples idx[0..n) of ds (idx NULL: the first n),
 * normalised with the model's statistics. probs (n × classes, may be NULL) receives the
 * softmax of the output (with test-time augmentation: p̄); classes (n, may be NULL) the
 * arg-max. Runs in chunks of the prepared batch size. */
nb_status nb_model_predict(nb_model *m, const nb_dataset *ds, const int64_t *idx, int64_t n,
                           float *probs, int32_t *classes, nb_error *err);
/* The outputs themselves (n × nb_model_classes floats), for regression in the targets' own
 * units (the target standardisation undone). */
nb_status nb_model_predict_values(nb_model *m, const nb_dataset *ds, const int64_t *idx,
                                  int64_t n, float *values, nb_error *err);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_MODEL_H */
