/*
 * nabla/core.h — the graph: nodes, shapes, memory, forward and backward, precision, gradient check (src/core/).
 * The modules that build nodes are in ops.h and loss.h.
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_CORE_H
#define NABLA_CORE_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * The graph. Nodes are created in topological order (a node can only name nodes that
 * already exist), so creation order is the forward order and its reverse the backward order.
 *
 * Building errors are sticky, as in cairo: the first error (a shape mismatch names both nodes
 * and both shapes) is kept, every later builder call returns -1, and nb_graph_error reports
 * it. Node handles are small non-negative ints.
 *
 * Shapes exclude the batch dimension for batched nodes (inputs, activations); parameters and
 * scalar losses are not batched. The batch size is chosen by nb_graph_prepare and may change
 * between runs without rebuilding; memory grows only when a batch is larger than any before,
 * so forward and backward never allocate.
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_graph nb_graph;

typedef enum nb_op {
    NB_OP_INPUT = 0,
    NB_OP_LABELS,
    NB_OP_PARAM,
    NB_OP_LINEAR,
    NB_OP_RELU,
    NB_OP_TANH,
    NB_OP_SIGMOID,
    NB_OP_ADD,
    NB_OP_MAX,
    NB_OP_MUL,
    NB_OP_SCALE,
    NB_OP_SUM,
    NB_OP_MEAN,
    NB_OP_SOFTMAX,
    NB_OP_LOG_SOFTMAX,
    NB_OP_DROPOUT,
    NB_OP_RESHAPE,
    NB_OP_NEAREST,
    NB_OP_MSE,
    NB_OP_NLL,
    NB_OP_CROSS_ENTROPY,
    NB_OP_CONV2D,
    NB_OP_MAX_POOL2D,
    NB_OP_AVG_POOL2D,
    NB_OP_GLOBAL_AVG_POOL,
    NB_OP_BATCH_NORM,
    NB_OP_BUFFER,
    NB_OP_LEAKY_RELU,
    NB_OP_GELU,
    NB_OP_LAYER_NORM,
    NB_OP_COUNT
} nb_op;

typedef enum nb_reduction { NB_REDUCE_MEAN = 0, NB_REDUCE_SUM } nb_reduction;

/* A new empty graph. seed feeds the graph's own generator (used by Dropout). Caller owns the
 * graph; NULL when out of memory. gemm may be NULL: the graph then creates the default
 * backend itself; otherwise the caller keeps ownership of gemm and it must outlive the graph. */
nb_graph *nb_graph_new(uint64_t seed, nb_gemm *gemm);
void nb_graph_free(nb_graph *g);

/* The first building error, or NB_OK. */
nb_status nb_graph_error(const nb_graph *g, nb_error *err);

/* Leaves: a batched float input with per-sample dims, and a batch of int32 class labels. */
int nb_input(nb_graph *g, const char *name, int ndim, const int64_t *dims);
int nb_labels(nb_graph *g, const char *name);
/* A free parameter (not batched). Modules that own parameters create them themselves, named
 * "<module>.weight" and "<module>.bias". */
int nb_param(nb_graph *g, const char *name, int ndim, const int64_t *dims);


/* Lookup and introspection. */
int nb_graph_find(const nb_graph *g, const char *name);       /* -1 if absent */
int nb_graph_node_count(const nb_graph *g);
const char *nb_node_name(const nb_graph *g, int node);
nb_op nb_node_op(const nb_graph *g, int node);
const char *nb_op_name(nb_op op);
/* What an op computes, as its source states it (UTF-8, static; "" when unknown): the forward
 * formula, e.g. "Y = X·Wᵀ + b", and what its backward adds to input k's gradient, e.g.
 * "dW += dYᵀ·X" for k = 1 ("" for an input that receives none). */
const char *nb_op_formula(nb_op op);
const char *nb_op_vjp(nb_op op, int input);
/* Leaves (input, labels, parameter) hold given values; costs are the scalar losses. */
int nb_op_is_leaf(nb_op op);
int nb_op_is_cost(nb_op op);
/* Why backward cannot pass through the op (static), or NULL when it can. */
const char *nb_op_no_grad_reason(nb_op op);
/* Number of inputs and the i-th input's handle. */
int nb_node_input_count(const nb_graph *g, int node);
int nb_node_input(const nb_graph *g, int node, int i);
/* Per-sample dims (batched nodes) or full dims (parameters, losses); returns ndim. */
int nb_node_shape(const nb_graph *g, int node, int64_t dims[NB_MAX_DIMS]);
int nb_node_is_batched(const nb_graph *g, int node);
/* Whether backward computes this node's gradient. Parameters and everything computed from
 * them require it; inputs do not, unless asked (the gradient check asks, to verify dC/dx;
 * training does not, which saves the first layer's dX product). Set it before
 * nb_graph_prepare. */
void nb_node_set_requires_grad(nb_graph *g, int node, int flag);
int nb_node_requires_grad(const nb_graph *g, int node);
/* Elements per sample (batched) or in total (unbatched). */
int64_t nb_node_size(const nb_graph *g, int node);
/* Human-readable shape such as "[N,3,10,20]" written into buf. Returns buf. */
char *nb_node_shape_str(const nb_graph *g, int node, char *buf, size_t size);

/* Plans memory for a batch of `batch` samples (allocates only if larger than before), for
 * training: every node's value, scratch and gradient has memory of its own, and all of them
 * stay valid from a forward pass to the backward pass and after. */
nb_status nb_graph_prepare(nb_graph *g, int64_t batch, nb_error *err);
int64_t nb_graph_batch(const nb_graph *g);

/* Plans memory for inference on batches of `batch` samples: forward passes that compute
 * outputs[0..n_outputs) with no backward after them (evaluation, prediction). Activation
 * memory is planned by liveness (src/core/plan_inference.c): a node's value is stored only
 * from the module that writes it to the last module that reads it, memory is reused after
 * that, modules such as ReLU and batch norm write over their input when they are its last
 * reader, and nothing kept only for backward (max pooling's arg-max, dropout's mask,
 * cross-entropy's softmax, …) is stored. The outputs' values are bit for bit those of a
 * forward pass after nb_graph_prepare. Allocates only if larger than before; the graph stays
 * planned so until the next nb_graph_prepare or nb_graph_prepare_inference.
 *
 * After a forward pass on this plan (nb_graph_forward computes every output,
 * nb_graph_forward_to(g, o) those that output o needs, and fails for a node not in
 * `outputs`), exactly these values are valid: the outputs', the inputs' (nb_input nodes;
 * never overwritten, so a pass may be repeated on them), the labels', and the parameters'
 * and buffers'. nb_value of any other node returns NULL, nb_grad of every node but a
 * parameter NULL, and nb_graph_backward fails with NB_EINVAL: prepare with
 * nb_graph_prepare to train. Dropout and batch norm follow the training mode as in any
 * forward pass (batch norm's running statistics are updated in training mode). */
nb_status nb_graph_prepare_inference(nb_graph *g, int64_t batch, const int *outputs,
                                     int n_outputs, nb_error *err);
/* 1 when the graph is prepared by nb_graph_prepare_inference, 0 otherwise. */
int nb_graph_inference(const nb_graph *g);

/* Storage of a node for the prepared batch; NULL before nb_graph_prepare. The graph owns it.
 * nb_value is float data; labels nodes use nb_labels_data. After nb_graph_prepare_inference
 * only some nodes have values (see there). */
float *nb_value(nb_graph *g, int node);
float *nb_grad(nb_graph *g, int node);
int32_t *nb_labels_data(nb_graph *g, int node);

/* Training mode switches Dropout on; evaluation mode (the default) switches it off. */
void nb_graph_set_training(nb_graph *g, int training);
int nb_graph_training(const nb_graph *g);
nb_rng *nb_graph_rng(nb_graph *g);

/* Forward pass over all nodes, or only those needed for `target` (nb_graph_forward_to). */
nb_status nb_graph_forward(nb_graph *g, nb_error *err);
nb_status nb_graph_forward_to(nb_graph *g, int target, nb_error *err);

/* Backpropagation from `root`: zeroes every activation gradient, sets dC/droot to `seed`
 * (nb_node_size × batch floats; NULL means 1 for every element, the usual choice for a
 * scalar loss), then calls each module's vector–Jacobian product in reverse topological order.
 * Parameter gradients accumulate (+=) across calls until nb_graph_zero_grad. */
nb_status nb_graph_backward(nb_graph *g, int root, const float *seed, nb_error *err);
void nb_graph_zero_grad(nb_graph *g);

/* All parameters live in one flat buffer, and their gradients in another of the same layout,
 * in creation order (so an optimiser or a file format sees one array). Owned by the graph. */
size_t nb_graph_param_floats(const nb_graph *g);
/* A write through nb_graph_params is declared with nb_graph_params_changed (see "Mixed
 * precision"): reading it is not a change. */
float *nb_graph_params(nb_graph *g);
float *nb_graph_param_grads(nb_graph *g);
/* The parameter nodes in creation order. */
int nb_graph_param_count(const nb_graph *g);
int nb_graph_param_node(const nb_graph *g, int i);

/* Buffers: state kept by modules between calls and saved with the parameters in model files
 * and checkpoints, but not trained: no gradient, untouched by optimisers, weight decay and
 * gradient checks (batch norm's running statistics). One flat buffer, in creation order,
 * owned by the graph; nb_value of a buffer node points into it. */
int nb_buffer(nb_graph *g, const char *name, int ndim, const int64_t *dims);
size_t nb_graph_buffer_floats(const nb_graph *g);
float *nb_graph_buffers(nb_graph *g);
int nb_graph_buffer_count(const nb_graph *g);
int nb_graph_buffer_node(const nb_graph *g, int i);

/* ------------------------------------------------------------------------------------------
 * Mixed precision (src/backend/linear.h, bf16_linear.c). Precision is asked of the compute
 * backend: in NB_PRECISION_BF16 the three matrix products of every
 * Linear layer — Y = X Wᵀ, dX = dY W, dW = dYᵀ X — take bfloat16 operands (8-bit
 * significand, unit roundoff u = 2^−8) through oneDNN's bf16 matmul, accumulate in fp32 and
 * write fp32. Everything else stays fp32: the master weights, their gradients, the optimiser
 * state, bias, activations, losses. Activations and gradients are rounded to bf16 per
 * product; the weights are rounded (and laid out as the kernel wants) once per change into
 * a bf16 shadow copy. fp32 is the default.
 *
 * The shadow lives in the gemm context and follows a generation counter of the parameters:
 * the trainer's optimiser steps, nb_graph_init_params, loading weights and nb_value of a
 * parameter count as changes; reading does not (nb_graph_params, saving a model or a
 * checkpoint, the replicas' check), so the shadow survives them. Code that writes through
 * the nb_graph_params pointer (its own optimiser loop, say) calls nb_graph_params_changed
 * before the next forward pass.
 * ---------------------------------------------------------------------------------------- */

typedef enum nb_precision { NB_PRECISION_FP32 = 0, NB_PRECISION_BF16 } nb_precision;

/* "fp32" or "bf16". Static string. */
const char *nb_precision_name(nb_precision p);
/* NB_OK when this build and machine run bf16 products: nabla built with oneDNN, a CPU with
 * AVX512-BF16 or AMX-BF16 (with the kernel's permission to use AMX tiles), oneDNN agreeing,
 * and NABLA_DISABLE_BF16 not set. Otherwise NB_ENOTSUP with the reason in err. */
nb_status nb_bf16_supported(nb_error *err);
/* Switches the graph's Linear products to precision p; NB_ENOTSUP (and nothing changes) when
 * p is bf16 and nb_bf16_supported fails. Any time, before or after nb_graph_prepare. */
nb_status nb_graph_set_precision(nb_graph *g, nb_precision p, nb_error *err);
nb_precision nb_graph_precision(const nb_graph *g);
/* Declares that the parameters were written (invalidates the bf16 shadow). */
void nb_graph_params_changed(nb_graph *g);
/* What ran the bf16 products: for each kind (fwd, dX, dW) the oneDNN implementations of its
 * primitives so far (dnnl_query_impl_info_str, '+'-joined), the weights' layout and the CPU
 * feature, e.g. "fwd brg:avx512_core_bf16, dX brg:avx512_core_bf16, dW
 * brg:avx512_core_bf16+gemm:jit; weights plain bf16; CPU AVX512-BF16"; "fp32" in fp32 mode.
 * Written into buf; returns buf. */
char *nb_graph_kernels(const nb_graph *g, char *buf, size_t size);

/* ------------------------------------------------------------------------------------------
 * Gradient check: backprop against central finite differences (docs/lecture.md §3).
 *
 * With a random upstream gradient r (drawn from `seed`), the checked loss is L = Σ r ⊙ out
 * (an all-ones r would hide transposition bugs and make softmax's gradient vanish). For every
 * element of every parameter and of every input that requires a gradient,
 *   numeric = (L(θ + ε) − L(θ − ε)) / 2ε      (L accumulated in double)
 * is compared with backprop's value; the error is |a − n| / max(|a|, |n|, floor). Elements
 * whose perturbation crosses a kink (a ReLU input changes sign, a Max changes winner) are
 * skipped and counted: the derivative is not defined between the two points. The graph must be prepared and its inputs
 * and labels filled; Dropout's draw is held fixed across the perturbed forwards. A graph in
 * bf16 precision backpropagates in bf16 while the finite differences run in fp32: the errors
 * then measure bf16's rounding (about 2^−8 relative per operand; nb_gradcheck_tolerance
 * derives what that allows), normwise: relative to the largest gradient of
 * each tensor (the floor rises to it). When bf16's rounding alone puts a ReLU or Max input
 * on the other side of its kink, the two sides differentiate different functions: the check
 * then returns NB_ENUMERIC, and the caller draws other inputs.
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_gradcheck_tensor {
    int node;
    int64_t checked;    /* elements compared */
    int64_t skipped;    /* elements at a kink */
    double worst;       /* worst error */
    int64_t worst_at;   /* its flat index */
    double analytic, numeric; /* the two values there */
    double tolerance;   /* the largest error accepted */
    int passed;         /* worst <= tolerance */
} nb_gradcheck_tensor;

typedef struct nb_gradcheck_options {
    uint64_t seed;
    double eps;         /* default 1e-2 */
    double floor;       /* default 1e-2 */
    int64_t max_elements; /* per tensor, 0 = all; others are sampled */
    double tol;         /* largest accepted error; 0: nb_gradcheck_tolerance(g, output) */
} nb_gradcheck_options;

/* The error a correct backward may show on g (at its current precision) up to `output`:
 * 1e-2 in fp32, where the differences' truncation and float rounding dominate; in bf16
 * 8·2^−8·L for L Linear layers on the longest path from an input (the derivation is in
 * src/core/gradcheck.c). */
double nb_gradcheck_tolerance(const nb_graph *g, int output);

/* Fills results[0..*count) (at most `capacity`), one per checked tensor. */
nb_status nb_gradcheck(nb_graph *g, int output, const nb_gradcheck_options *opt,
                       nb_gradcheck_tensor *results, int capacity, int *count, nb_error *err);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_CORE_H */
