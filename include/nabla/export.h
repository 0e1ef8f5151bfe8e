/*
 * nabla/export.h — ONNX and dependency-free C export (src/export/).
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_EXPORT_H
#define NABLA_EXPORT_H

#include "model.h"
#include "data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Export (src/export/): a trained model for other tools and for C programs without nabla.
 * Both take the nodes between the model's input and its output (losses and labels are
 * dropped), put the input normalisation stored with the model in front, so the exported model
 * takes raw inputs as nabla predict does, and refuse a module the format cannot express
 * (NB_ENOTSUP naming the node). Files are written atomically.
 * ---------------------------------------------------------------------------------------- */

/* Whether ONNX export is built in (it needs libprotobuf-c and protoc-c at build time). */
int nb_export_onnx_available(void);
/* Writes m as an ONNX model (opset `opset`, 13 to 17; 0 means 13): Linear as Gemm, the
 * point-wise modules, Add/Max/Mul, Scale as Mul by a constant, Sum/Mean as MatMul by a
 * constant column, Softmax/LogSoftmax, Dropout as Identity, Flatten/Reshape as Reshape,
 * conv2d as Conv, max/avg_pool2d as MaxPool/AveragePool, global_avg_pool as GlobalAveragePool
 * and Flatten, batch_norm as BatchNormalization (running statistics); the normalisation as Sub
 * and Mul nodes first. Input "input" [N, dims…]; outputs the model's
 * output under its node name and, for a classifier, "probabilities" = Softmax of it, for a
 * regression model "values" = output·σ + μ (Mul, Add: the targets' standardisation undone) —
 * what nabla predict prints. Class names go into metadata_props ("nabla.classes"), target
 * names into "nabla.targets". Nearest neighbour is refused. NB_ENOTSUP when built without protobuf-c. */
nb_status nb_export_onnx(nb_model *m, const char *path, int opset, nb_error *err);

typedef enum nb_quantize { NB_QUANT_NONE = 0, NB_QUANT_INT8 } nb_quantize;

typedef struct nb_export_c_options {
    const char *name;     /* prefix of the generated symbols, a C identifier (NULL: "model") */
    nb_quantize quantize; /* NB_QUANT_INT8: Linear weights as int8, one float scale per output
                             row (symmetric); conv2d weights stay float. Without calibration
                             data, activations, bias and accumulation stay float too */
    const nb_dataset *calibration; /* NB_QUANT_INT8 (or NULL): raw inputs run through the
                             model to set each Linear input's clipping threshold (the one
                             of least squared quantisation error); the generated Linear then
                             rounds its inputs to 8 bits ([0, 255] if never negative, else
                             [-127, 127]) and sums the products with the int8 weights in
                             int32, rescaled to float for the bias */
    const char *source;   /* what the model came from, named in the files' comments (or NULL) */
} nb_export_c_options;

/* Writes m as one self-contained C99 file (c_path) and its header (h_path, which the .c file
 * includes by its base name) — every module but the losses, batch norm folded into a
 * per-channel y = a·x + b: the weights as static const arrays, the normalisation, and for a
 * classifier
 *   int  NAME_predict(const float *input, float *probabilities);   → the arg-max class
 *   void NAME_predict_batch(const float *inputs, int n, float *probabilities, int *classes);
 *   const char *NAME_class_name(int k);
 * or for a regression model (NAME_REGRESSION defined), in the targets' own units (their
 * standardisation undone, value = y·σ + μ, as nb_model_predict_values)
 *   void NAME_regress(const float *input, float *values);
 *   void NAME_regress_batch(const float *inputs, int n, float *values);
 *   const char *NAME_target_name(int k);
 * and for both
 *   void NAME_forward(const float *input, float *output, float *scratch);   → raw output
 * No allocation, no global mutable state, nothing beyond <math.h> (whose functions the user
 * may replace by macros, NAME_EXPF …, on freestanding targets). NAME_predict keeps
 * NAME_SCRATCH_FLOATS floats (sized here, from the nodes' live ranges) on the stack;
 * NAME_forward takes a caller's buffer instead. opt may be NULL. */
nb_status nb_export_c(nb_model *m, const char *c_path, const char *h_path,
                      const nb_export_c_options *opt, nb_error *err);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_EXPORT_H */
