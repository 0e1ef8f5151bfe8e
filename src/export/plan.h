/* Internal: what both exporters (ONNX, C source) read from a model — the nodes the output
 * needs, in topological order, with their shapes, module parameters and weights. Not part of
 * the public API. */
#ifndef NB_EXPORT_PLAN_H
#define NB_EXPORT_PLAN_H

#include "nabla.h"

#include <stdio.h>

typedef struct nb_export_node {
    int node;                  /* handle in the model's graph */
    nb_op op;
    const char *name;          /* owned by the graph */
    int n_inputs;
    int inputs[2];             /* indices into nb_export_plan.nodes */
    int ndim;
    int64_t dims[NB_MAX_DIMS]; /* per sample */
    int64_t size;              /* floats per sample */
    float factor;              /* Scale: a; Dropout: p; LeakyReLU: the slope */
    /* Linear and nearest: weight [rows, cols] ([out, in], or [K, D]); conv2d: weight [K, C/g,
     * R, S] (rows = K, cols = C/g·R·S); batch_norm: weight γ, bias β, running mean and
     * variance [C]; layer_norm: weight γ and bias β shaped as the normalised last
     * weight_ndim dimensions. bias is NULL when absent. Owned by the graph. */
    const float *weight, *bias, *mean, *var;
    int64_t rows, cols;
    int weight_ndim;
    int64_t weight_dims[NB_MAX_DIMS];
    /* conv2d and pooling: kernel, stride, padding top/left/bottom/right, dilation, groups,
     * count_include_pad (avg_pool2d) */
    int64_t kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, groups;
    int include_pad;
    float eps;                 /* batch_norm, layer_norm */
    int consumers;             /* plan nodes that read this one */
    int last_use;              /* index of the last plan node that reads it (its own if none) */
} nb_export_node;

typedef struct nb_export_plan {
    nb_export_node *nodes;     /* owned; nodes[0] is the input */
    int count;
    int output;                /* index of the model's output (the last node) */
    const nb_norm *norm;       /* the model's input normalisation, owned by the model */
    const char *classes;       /* comma-separated class names or NULL, owned by the model */
    int classifier;            /* predictions are softmax(output) and its arg-max */
    int regression;            /* predictions are the output in the targets' units, y·σ + μ */
    const nb_norm *target_norm;/* regression: the targets' standardisation, NULL when none;
                                  owned by the model */
    const char *target_names;  /* regression: comma-separated or NULL, owned by the model */
    int64_t features, outputs;
} nb_export_plan;

/* Collects the nodes between m's input and output. Refuses (NB_ENOTSUP, naming the node and
 * `format`) a parameter used outside Linear or nearest, and sizes past 2^31 − 1 floats; the
 * exporters refuse the modules their format lacks. Caller frees the plan. */
nb_status nb_export_plan_make(nb_model *m, const char *format, nb_export_plan *plan,
                              nb_error *err);
void nb_export_plan_free(nb_export_plan *plan);

/* The normalisation as per-slot mean and reciprocal d = 1/max(std, eps) (1 when that is 0),
 * computed in float exactly as the library's data gathering does: x̂ = (x − mean) · inv. Slot
 * s covers features [s·B, (s+1)·B), B = features / norm->size. */
float nb_export_norm_inv(const nb_norm *norm, int64_t slot);

/* Regression: the per-output affine map that undoes the targets' standardisation, value =
 * y · scale[j] + shift[j] (scale = max(std, eps), 1 when that is 0; shift = mean), computed in
 * float as nabla predict does (nb_targets_to_units). scale and shift hold plan->outputs floats.
 * Returns 0 (and writes nothing) when the plan has no target standardisation. */
int nb_export_target_affine(const nb_export_plan *plan, float *scale, float *shift);

/* Writes path atomically (nb_atomic_open …) with the text or bytes that fill(f, ctx) prints
 * to f, an in-memory stream; fill returns non-zero when it runs out of memory. */
nb_status nb_export_write(const char *path, int (*fill)(FILE *f, void *ctx), void *ctx,
                          nb_error *err);

#endif
