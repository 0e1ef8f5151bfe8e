/*
 * nabla (∇) — neural networks with reverse-mode automatic differentiation, in C11.
 *
 * One public header. The library is organised in layers, each below in its own section:
 *
 *   errors      status codes and messages (the library never prints, never exits)
 *   rng         a seeded generator owned by the caller (no global state)
 *   graph       a DAG of named nodes: inputs, parameters, modules and losses;
 *               forward in topological order, backward (vector–Jacobian products)
 *               in reverse order — docs/lecture.md §3
 *   modules     Linear, ReLU, tanh, sigmoid, Add, Max, Mul, Scale, Sum/Mean, Softmax,
 *               LogSoftmax, Dropout, Flatten/Reshape, nearest neighbour — §4
 *   losses      MSE, NLL, cross-entropy — §1, §5.2
 *   description the text model format and the MLP shorthand
 *   init        Kaiming, Xavier, PyTorch's Linear default — §5.8
 *   gemm        the matrix-product backend (oneDNN, OpenBLAS or portable C)
 *   data        IDX, CSV, spirals; normalisation, splits, minibatch order — §5.4, §5.5, §6
 *   optim       SGD, momentum, Nesterov, Adam, AdamW, L1/L2, schedules, clipping — §2, §5
 *   files       safetensors model files and checkpoints
 *   export      ONNX, and a model compiled to one dependency-free C file
 *
 * Conventions: float32 tensors, row-major, batch dimension first, PyTorch's layouts
 * (a Linear weight is [out, in] and Y = X Wᵀ + b). Every function that returns memory says
 * who owns it; every nb_*_free(NULL) is a no-op.
 */
#ifndef NABLA_H
#define NABLA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_VERSION "0.1.0"
#define NB_MAX_DIMS 4
#define NB_NAME_MAX 64

/* ------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------- */

typedef enum nb_status {
    NB_OK = 0,
    NB_ENOMEM,   /* an allocation failed */
    NB_EIO,      /* a file could not be opened, read or written */
    NB_EFORMAT,  /* a file or text is malformed */
    NB_ESHAPE,   /* tensor shapes do not fit together */
    NB_EINVAL,   /* an argument is out of its domain */
    NB_ENOGRAD,  /* a gradient was asked of a module that has none */
    NB_ENUMERIC, /* a value became NaN or infinite */
    NB_ENOTSUP,  /* the feature is not built in or not supported by this machine */
    NB_EINTR,    /* interrupted on request */
    NB_EDIST     /* the ranks of an MPI job disagree: their replicas of the weights differ */
} nb_status;

/* A status together with a human-readable message naming the file, line or node at fault. */
typedef struct nb_error {
    nb_status code;
    char msg[512];
} nb_error;

/* Static string such as "NB_ESHAPE". */
const char *nb_status_name(nb_status status);

/* Records a formatted message in err (may be NULL) and returns code. */
nb_status nb_error_set(nb_error *err, nb_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Library version and the matrix-product backends compiled in, e.g.
 * "nabla 0.1.0 (gemm: onednn, openblas, portable; default onednn)".
 * Static string. */
const char *nb_version_string(void);

/* ------------------------------------------------------------------------------------------
 * Random numbers: xoshiro256** seeded through splitmix64. The state is a plain value, so a
 * checkpoint can store it and a run can own several independent streams.
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_rng {
    uint64_t s[4];
} nb_rng;

void nb_rng_seed(nb_rng *rng, uint64_t seed);
uint64_t nb_rng_next(nb_rng *rng);
/* Uniform in [0, 1), 24 random bits. */
float nb_rng_uniform(nb_rng *rng);
/* Standard normal (Box–Muller in double precision). */
float nb_rng_normal(nb_rng *rng);
/* Uniform integer in [0, n), unbiased (Lemire's method). n > 0. */
uint32_t nb_rng_below(nb_rng *rng, uint32_t n);

/* ------------------------------------------------------------------------------------------
 * Matrix products. C = alpha · op(A) · op(B) + beta · C, row-major, op(X) = X or Xᵀ.
 * The backend is chosen at build time (the fastest available) and can be overridden at run
 * time by passing a backend to nb_gemm_new (the CLI: --gemm NAME or NABLA_GEMM=NAME).
 * ---------------------------------------------------------------------------------------- */

typedef enum nb_gemm_backend {
    NB_GEMM_AUTO = 0,
    NB_GEMM_ONEDNN,
    NB_GEMM_OPENBLAS,
    NB_GEMM_PORTABLE
} nb_gemm_backend;

typedef struct nb_gemm nb_gemm;

/* Creates a backend context (caches oneDNN primitives per shape). Caller owns it; NULL with
 * err set if the backend is not built in. threads = 0 means one per core. */
nb_gemm *nb_gemm_new(nb_gemm_backend backend, int threads, nb_error *err);
void nb_gemm_free(nb_gemm *gemm);
/* "onednn", "openblas" or "portable". Static string. */
const char *nb_gemm_name(const nb_gemm *gemm);
const char *nb_gemm_backend_name(nb_gemm_backend backend);
/* Parses "auto", "onednn", "openblas", "portable"; returns -1 if unknown. */
int nb_gemm_backend_parse(const char *name);
/* Whether the backend was compiled in. */
int nb_gemm_available(nb_gemm_backend backend);
/* Row-major sgemm: A is M×K (or K×M when transA), B is K×N (or N×K when transB), C is M×N.
 * lda, ldb, ldc are row strides in elements. */
void nb_gemm_run(nb_gemm *gemm, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

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

/* Modules (§4). x, a, b are node handles. */
int nb_linear(nb_graph *g, const char *name, int x, int64_t out_features, int bias);
int nb_relu(nb_graph *g, const char *name, int x);
int nb_tanh(nb_graph *g, const char *name, int x);
int nb_sigmoid(nb_graph *g, const char *name, int x);
/* LeakyReLU (torch.nn.LeakyReLU): y = x for x > 0, slope·x otherwise; PyTorch's default slope
 * (negative_slope) is 0.01. The gradient at x = 0 is slope·dy, as PyTorch's. */
int nb_leaky_relu(nb_graph *g, const char *name, int x, float slope);
/* GELU in its exact form (torch.nn.GELU(), approximate='none', PyTorch's default):
 * y = x·Φ(x) = x/2·(1 + erf(x/√2)), Φ the standard normal CDF; not the tanh approximation. */
int nb_gelu(nb_graph *g, const char *name, int x);
int nb_add(nb_graph *g, const char *name, int a, int b);
int nb_max(nb_graph *g, const char *name, int a, int b);
int nb_mul(nb_graph *g, const char *name, int a, int b);
int nb_scale(nb_graph *g, const char *name, int x, float factor);
/* Sum / mean over all features of each sample: [N, ...] -> [N, 1]. */
int nb_sum(nb_graph *g, const char *name, int x);
int nb_mean(nb_graph *g, const char *name, int x);
/* Over the last dimension. */
int nb_softmax(nb_graph *g, const char *name, int x);
int nb_log_softmax(nb_graph *g, const char *name, int x);
int nb_dropout(nb_graph *g, const char *name, int x, float p);
int nb_reshape(nb_graph *g, const char *name, int x, int ndim, const int64_t *dims);
int nb_flatten(nb_graph *g, const char *name, int x);
/* ȳ = argmin_k ‖x − w_k‖² over the rows of a parameter "<name>.weight" of shape [K, D].
 * Output [N, 1] holds the index as a float. Forward only: backward through it fails with
 * NB_ENOGRAD. */
int nb_nearest(nb_graph *g, const char *name, int x, int64_t k);

/* Convolutional modules on images [N, C, H, W] (per-sample shape [C, H, W]), with
 * PyTorch's semantics (torch.nn.Conv2d, MaxPool2d, AvgPool2d, BatchNorm1d/2d); their kernels
 * run in fp32 whatever the graph's precision. */
typedef struct nb_conv2d_options {
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;     /* ≥ 1 */
    int64_t pad_h, pad_w;           /* zeros on both sides; ≥ 0 */
    int pad_same;                   /* PyTorch's padding='same' (stride 1): dil·(k − 1) zeros in
                                       all, the odd one at the bottom/right; pad_h/w ignored */
    int64_t dilation_h, dilation_w; /* ≥ 1 */
    int64_t groups;                 /* divides the input channels and out_channels */
    int bias;
} nb_conv2d_options;
/* A square kernel k, stride 1, no padding, dilation 1, one group, with bias. */
void nb_conv2d_options_default(nb_conv2d_options *opt, int64_t k);
/* Y = X ⋆ W + b (cross-correlation), parameters "<name>.weight" [out, C/groups, kh, kw] and
 * "<name>.bias" [out]. Output [N, out, P, Q] with P = ⌊(H + 2·pad_h − dil_h·(kh − 1) − 1) /
 * stride_h⌋ + 1 (and Q likewise). */
int nb_conv2d(nb_graph *g, const char *name, int x, int64_t out_channels,
              const nb_conv2d_options *opt);

typedef struct nb_pool2d_options {
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;     /* ≥ 1; PyTorch's default is the kernel size */
    int64_t pad_h, pad_w;           /* ≤ half the kernel, as PyTorch requires */
    int count_include_pad;          /* avg_pool2d: divide by kh·kw even where the window covers
                                       padding (PyTorch's default, 1) */
} nb_pool2d_options;
/* A square window k, stride k, no padding, count_include_pad. */
void nb_pool2d_options_default(nb_pool2d_options *opt, int64_t k);
/* The maximum of each window. Its gradient goes to the element that was the maximum; at a tie
 * the first in row-major window order wins (PyTorch's CPU rule). */
int nb_max_pool2d(nb_graph *g, const char *name, int x, const nb_pool2d_options *opt);
int nb_avg_pool2d(nb_graph *g, const char *name, int x, const nb_pool2d_options *opt);
/* The mean of each channel: [N, C, H, W] → [N, C] (AdaptiveAvgPool2d(1) then flatten). */
int nb_global_avg_pool(nb_graph *g, const char *name, int x);
/* Batch normalisation over [N, C] or [N, C, H, W] (BatchNorm1d / BatchNorm2d):
 * y = γ (x − μ)/√(σ² + eps) + β per channel. In training mode μ, σ² are the batch's mean and
 * biased variance, and the running statistics move as PyTorch's do:
 *     running_mean ← (1 − momentum)·running_mean + momentum·μ
 *     running_var  ← (1 − momentum)·running_var + momentum·σ²·M/(M − 1)   (unbiased; M = N·H·W)
 *     num_batches_tracked ← num_batches_tracked + 1
 * In evaluation mode running_mean and running_var replace μ and σ². Parameters
 * "<name>.weight" (γ, starts at 1) and "<name>.bias" (β, 0) [C]; buffers (nb_buffer)
 * "<name>.running_mean" (0), "<name>.running_var" (1) [C] and "<name>.num_batches_tracked"
 * [] (a scalar; a float here, exact to 2^24 batches; int64 in PyTorch). */
int nb_batch_norm(nb_graph *g, const char *name, int x, float momentum, float eps);

/* Layer normalisation (torch.nn.LayerNorm(normalized_shape, eps)) of each sample over its
 * last `dims` dimensions (normalized_shape = those dimensions; 0: all of the per-sample shape,
 * nn.LayerNorm(x.shape[1:]), which for [N, D] is nn.LayerNorm(D)): for each group of D values
 *     y = γ ⊙ (x − μ)/√(σ² + eps) + β,   μ, σ² their mean and biased variance,
 * the same in training and evaluation. Parameters "<name>.weight" (γ, starts at 1) and
 * "<name>.bias" (β, 0), shaped as normalized_shape. */
int nb_layer_norm(nb_graph *g, const char *name, int x, int dims, float eps);

/* Losses: scalar (unbatched [1]) nodes. The batch loss is the average loss of §1 with
 * NB_REDUCE_MEAN. */
int nb_mse(nb_graph *g, const char *name, int prediction, int target, nb_reduction reduction);
int nb_nll(nb_graph *g, const char *name, int log_probs, int labels);
int nb_cross_entropy(nb_graph *g, const char *name, int logits, int labels);

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

/* Plans memory for a batch of `batch` samples (allocates only if larger than before). */
nb_status nb_graph_prepare(nb_graph *g, int64_t batch, nb_error *err);
int64_t nb_graph_batch(const nb_graph *g);

/* Storage of a node for the prepared batch; NULL before nb_graph_prepare. The graph owns it.
 * nb_value is float data; labels nodes use nb_labels_data. */
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
 * Data (§5.4, §5.5, §6). A data set keeps images as bytes when its source is bytes (IDX) and
 * converts per batch; other sources store floats. Labels are int32 class indices.
 * ---------------------------------------------------------------------------------------- */

typedef enum nb_dtype { NB_U8 = 0, NB_F32 = 1 } nb_dtype;

typedef struct nb_dataset {
    int64_t count;             /* samples */
    int ndim;                  /* per-sample dims, e.g. 1 × [784] or 2 × [28, 28] */
    int64_t dims[NB_MAX_DIMS];
    int64_t features;          /* product of dims */
    nb_dtype dtype;            /* storage of the features */
    uint8_t *u8;               /* count × features when dtype == NB_U8, else NULL */
    float *f32;                /* count × features when dtype == NB_F32, else NULL */
    int32_t *labels;           /* count, or NULL when unlabelled */
    int classes;               /* 1 + the largest label, or 0 */
    /* Regression targets: count × target_count floats (row-major), or NULL. */
    float *targets;
    int64_t target_count;
    /* Names, each list one allocation (pointers then strings), or NULL: the `classes` class
     * names when labels were read as text (sorted byte-wise, as scikit-learn's LabelEncoder
     * sorts them), and the target_count target column names. */
    char **class_names;
    char **target_names;
} nb_dataset;

/* Loads an IDX image file (idx3 ubyte, or idx2) and its idx1 labels file (may be NULL),
 * gzipped or plain. ds is filled; free its contents with nb_dataset_free. */
nb_status nb_idx_load(nb_dataset *ds, const char *images_path, const char *labels_path,
                      nb_error *err);
/* Loads a CSV file with a header row. label_column is a column name or a 0-based index as
 * text, or NULL for none; it holds class labels (as nb_csv_options' NB_TARGET_CLASSES). */
nb_status nb_csv_load(nb_dataset *ds, const char *path, const char *label_column,
                      nb_error *err);

/* What the target columns of a CSV hold. */
typedef enum nb_target_kind {
    /* One column of class labels: either every field a number, each an integer 0 ≤ k < 2^20
     * (the class index), or text, each distinct field a class name; classes are then
     * numbered in the names' sorted order, as scikit-learn's LabelEncoder does. */
    NB_TARGET_CLASSES = 0,
    /* One or more columns of numbers (regression targets), into ds->targets. */
    NB_TARGET_VALUES
} nb_target_kind;

typedef struct nb_csv_options {
    /* The target column(s): a column name or a 0-based index, or several of them separated
     * by commas (a name that contains commas is matched whole first); NULL for none. */
    const char *targets;
    nb_target_kind kind;
    /* NB_TARGET_CLASSES: when class_count > 0, labels are mapped through these names (a
     * trained model's): a field equal to names[k] is class k, a number k < class_count is
     * class k, anything else is an error naming the line and the field. */
    const char *const *class_names;
    int64_t class_count;
} nb_csv_options;

/* nb_csv_load with options (NULL: no target columns). */
nb_status nb_csv_load_with(nb_dataset *ds, const char *path, const nb_csv_options *opt,
                           nb_error *err);
/* The practicum's K interleaved 2-D spirals: `per_class` points per class, Gaussian noise of
 * standard deviation `noise`. */
nb_status nb_spirals(nb_dataset *ds, int64_t per_class, int classes, float noise,
                     uint64_t seed, nb_error *err);
/* Frees the contents (not ds itself) and zeroes it. */
void nb_dataset_free(nb_dataset *ds);
/* Moves a random fraction of src (stratified by class when labelled) into val, the rest
 * into train. src is left empty. */
nb_status nb_dataset_split(nb_dataset *src, double val_fraction, uint64_t seed,
                           nb_dataset *train, nb_dataset *val, nb_error *err);

/* Normalisation b' = (b − m) / max(σ, ε), statistics from the training set only (§5.5). */
typedef enum nb_norm_mode { NB_NORM_NONE = 0, NB_NORM_FEATURE, NB_NORM_CHANNEL, NB_NORM_GLOBAL } nb_norm_mode;

typedef struct nb_norm {
    nb_norm_mode mode;
    int64_t size;  /* number of (mean, std) pairs: features, channels (dims[0]) or 1 */
    int64_t features;
    float eps;
    float *mean;   /* owned */
    float *std;    /* owned */
} nb_norm;

nb_status nb_norm_fit(nb_norm *norm, const nb_dataset *train, nb_norm_mode mode, float eps,
                      nb_error *err);
void nb_norm_free(nb_norm *norm);

/* Gathers samples idx[0..n) of ds into x (n × features floats), applying norm (may be NULL),
 * and their labels into y (may be NULL). Allocates nothing. */
void nb_dataset_gather(const nb_dataset *ds, const int64_t *idx, int64_t n,
                       const nb_norm *norm, float *x, int32_t *y);

/* Standardisation of regression targets, t' = (t − m) / σ per target column, fitted on the
 * training targets (a constant column gets σ = 1): the statistics are kept with the model and
 * predictions are mapped back, ȳ = ȳ'·σ + m. NB_NORM_NONE (identity) when mode is none. */
nb_status nb_norm_fit_targets(nb_norm *norm, const nb_dataset *train, nb_norm_mode mode,
                              nb_error *err);
/* Gathers the targets of samples idx[0..n) into t (n × target_count), applying norm (may be
 * NULL). Allocates nothing. */
void nb_dataset_gather_targets(const nb_dataset *ds, const int64_t *idx, int64_t n,
                               const nb_norm *norm, float *t);

/* Minibatch order for one epoch (§5.4): sequential, shuffled, or stratified so that every
 * class appears in every minibatch. */
typedef enum nb_order { NB_ORDER_SEQUENTIAL = 0, NB_ORDER_SHUFFLE, NB_ORDER_STRATIFIED } nb_order;
/* Fills order[0..ds->count) with a permutation of sample indices. scratch needs
 * ds->count int64s for NB_ORDER_STRATIFIED (may be NULL otherwise). */
void nb_dataset_order(const nb_dataset *ds, nb_order kind, int64_t batch, nb_rng *rng,
                      int64_t *order, int64_t *scratch);

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
 * Safetensors files: an 8-byte little-endian header length, a JSON header, then the data.
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_tensor_ref {
    const char *name;
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    float *data;  /* F32, row-major */
} nb_tensor_ref;

/* Writing any file atomically (src/formats/atomic_file.c): the bytes go to a temporary file
 * PATH.tmp.XXXXXX beside PATH, which replaces PATH only when complete (fsync, rename, fsync of
 * the directory). On any failure the temporary file is removed and PATH left as it was; the
 * message names PATH, the step and the cause (e.g. "No space left on device").
 * nb_atomic_open: NULL with err set on failure; caller owns the handle, which
 * nb_atomic_commit or nb_atomic_abort (NULL: a no-op) frees. After a failed nb_atomic_write
 * the caller still calls nb_atomic_abort. */
typedef struct nb_atomic_file nb_atomic_file;
nb_atomic_file *nb_atomic_open(const char *path, nb_error *err);
nb_status nb_atomic_write(nb_atomic_file *af, const void *data, size_t n, nb_error *err);
nb_status nb_atomic_commit(nb_atomic_file *af, nb_error *err);
void nb_atomic_abort(nb_atomic_file *af);

/* Writes tensors and string metadata (meta_keys[i] → meta_values[i]) atomically (as above). */
nb_status nb_safetensors_write(const char *path, const nb_tensor_ref *tensors, int count,
                               const char *const *meta_keys, const char *const *meta_values,
                               int meta_count, nb_error *err);

typedef struct nb_safetensors nb_safetensors;
/* Reads and validates a whole file. Caller owns *out. Tensors stored as F16, BF16, F64 or I64
 * are converted to float32 (I64 only within ±2^24, where the conversion is exact; F64 beyond
 * float32's range is refused). */
nb_status nb_safetensors_read(const char *path, nb_safetensors **out, nb_error *err);
void nb_safetensors_free(nb_safetensors *st);
int nb_safetensors_count(const nb_safetensors *st);
/* The i-th tensor, or the one named `name` (NULL if absent). Owned by st. */
const nb_tensor_ref *nb_safetensors_at(const nb_safetensors *st, int i);
const nb_tensor_ref *nb_safetensors_find(const nb_safetensors *st, const char *name);
/* Metadata value or NULL. Owned by st. */
const char *nb_safetensors_meta(const nb_safetensors *st, const char *key);

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

/* Inference in evaluation mode (dropout off): samples idx[0..n) of ds (idx NULL: the first n),
 * normalised with the model's statistics. probs (n × classes, may be NULL) receives the
 * softmax of the output; classes (n, may be NULL) the arg-max. Runs in chunks of the
 * prepared batch size. */
nb_status nb_model_predict(nb_model *m, const nb_dataset *ds, const int64_t *idx, int64_t n,
                           float *probs, int32_t *classes, nb_error *err);
/* The outputs themselves (n × nb_model_classes floats), for regression in the targets' own
 * units (the target standardisation undone). */
nb_status nb_model_predict_values(nb_model *m, const nb_dataset *ds, const int64_t *idx,
                                  int64_t n, float *values, nb_error *err);

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
 * augmentation, …) that differ from those the checkpoint was written with, as "lr 0.05 (the
 * checkpoint's: 0.1), …", or "" (also for checkpoints that do not record them). Owned by t. */
const char *nb_trainer_resume_changes(const nb_trainer *t);

/* Loss and accuracy of m on ds (labelled, or with targets for a regression model), in
 * evaluation mode; a regression model's accuracy is NAN. confusion (classes² counts, row =
 * true class, column = predicted; may be NULL; classifiers only) is filled. */
nb_status nb_evaluate(nb_model *m, const nb_dataset *ds, double *loss, double *accuracy,
                      int64_t *confusion, nb_error *err);

/* Everything eval reports (src/eval/metrics.c), with scikit-learn's definitions.
 *
 * Classification: accuracy; top-k accuracy (the true class among the k highest scores, ties
 * counted against it); per class c, precision = TP/(TP+FP), recall = TP/(TP+FN),
 * F1 = 2PR/(P+R), each 0 when its denominator is (scikit-learn's zero_division=0); macro
 * averages over the classes that occur in the data or the predictions (as
 * classification_report), weighted averages by support.
 *
 * Regression, per target j in its own units (the target standardisation undone), with e the
 * error ȳ − y over the P samples: MSE = Σe²/P, RMSE = √MSE, MAE = Σ|e|/P,
 * R² = 1 − Σe² / Σ(y − mean y)² (1 for a constant target predicted exactly, else 0 there);
 * the overall figures are the plain means over targets (multioutput='uniform_average'). */
typedef struct nb_metrics {
    int64_t samples;
    double loss;          /* the model's training loss (regression: on standardised targets) */
    /* classification: classes > 0 */
    int64_t classes;
    double accuracy;
    int top_k;            /* 0: not computed */
    double top_k_accuracy;
    int64_t *confusion;   /* classes², row = true class, column = predicted */
    int64_t *support;     /* samples of each true class */
    double *precision, *recall, *f1;   /* per class */
    double macro_precision, macro_recall, macro_f1;
    double weighted_precision, weighted_recall, weighted_f1;
    /* regression: targets > 0 */
    int64_t targets;
    double *mse, *rmse, *mae, *r2;     /* per target */
    double mse_mean, rmse_mean, mae_mean, r2_mean;
} nb_metrics;

/* Computes the metrics of m on ds (top_k ≥ 0; 0 skips top-k). out's arrays are owned by out:
 * free them with nb_metrics_free. */
nb_status nb_metrics_compute(nb_model *m, const nb_dataset *ds, int top_k, nb_metrics *out,
                             nb_error *err);
void nb_metrics_free(nb_metrics *mt);

/* ------------------------------------------------------------------------------------------
 * Distributed data-parallel training over MPI (src/dist/dist.c; built when Open MPI is found).
 *
 * `mpirun -np N nabla train …` starts N copies; each is a rank r of N. Every rank builds the
 * same model from the same seed, loads the whole data set and draws the same epoch order.
 * Each global minibatch of B rows (the batch size) is split into N contiguous shares of
 * ⌊B/N⌋ or ⌈B/N⌉ rows; rank r gathers and runs only its share of n_r rows. Its loss is the
 * mean over those rows, so its backward pass is seeded with n_r/B instead of 1:
 *     ∂L/∂w = 1/B Σ_{p∈B} ∂C_p/∂w = Σ_r (n_r/B) · (1/n_r Σ_{p∈share r} ∂C_p/∂w),
 * and one in-place all-reduce (sum) of the flat gradient buffer per step gives every rank
 * the gradient a single process would compute, up to floating-point summation order (each
 * rank sums its rows, then the all-reduce sums the N partial sums). Every rank then steps
 * the same optimiser on identical buffers, so the replicas stay equal without exchanging
 * weights. The library never initialises MPI by itself: the caller creates an nb_dist.
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_dist nb_dist;

/* Whether MPI support is compiled in. */
int nb_dist_available(void);
/* World size named by an MPI launcher in the environment (Open MPI's mpirun:
 * OMPI_COMM_WORLD_SIZE; Hydra or srun --mpi=pmi2: PMI_SIZE), or 0 when the process was not
 * started by one. Needs no MPI: a plain run never initialises it (a singleton MPI_Init
 * starts Open MPI's runtime and costs far more than loading a small data set). */
int nb_dist_launched(void);
/* This process's rank as the launcher names it (OMPI_COMM_WORLD_RANK, PMI_RANK), or 0: lets a
 * command that does not join the job print its messages once. */
int nb_dist_launched_rank(void);

/* Joins the MPI job (MPI_Init_thread, MPI_THREAD_FUNNELED: only the calling thread talks
 * MPI; the matrix products' own threads never do). Errors come back as statuses
 * (MPI_ERRORS_RETURN on a private communicator); a failure after MPI_Init, when the other
 * ranks may already be waiting, aborts the job. NB_ENOTSUP when built without MPI. One per
 * process; caller owns it. */
nb_dist *nb_dist_new(nb_error *err);
/* Leaves the job (MPI_Finalize). Collective: every rank must call it, after the same
 * sequence of collective calls; a rank that cannot (an error only it saw) calls
 * nb_dist_abort instead. NULL is a no-op. */
void nb_dist_free(nb_dist *d);
/* Ends every rank of the job with `status` (MPI_Abort); does not return. NULL: returns. */
void nb_dist_abort(nb_dist *d, int status);
int nb_dist_rank(const nb_dist *d);       /* 0-based; rank 0 writes every file */
int nb_dist_size(const nb_dist *d);       /* N */
int nb_dist_local_size(const nb_dist *d); /* ranks on this host */
/* Threads for this rank's matrix products: its share of the host's cores — the cores it is
 * bound to (mpirun binds each rank to one core when N ≤ 2) and at most online cores / ranks
 * on the host; at least 1. */
int nb_dist_threads(const nb_dist *d);

/* This rank's contiguous share [*first, *first + *count) of n rows: the first n mod N ranks
 * take ⌈n/N⌉ rows, the others ⌊n/N⌋. */
void nb_dist_share(const nb_dist *d, int64_t n, int64_t *first, int64_t *count);

/* One training step's all-reduce: sums g[0..n) over all ranks, in place (one MPI_Allreduce
 * of the whole flat buffer, split only past 2^31 floats). *loss is this rank's loss; if it is
 * not finite, g[0] is replaced by NaN before the sum, so every rank sees a non-finite g[0]
 * afterwards and sets *loss to NaN: all ranks then stop at the same step, without a second
 * message. Time spent here is counted in nb_dist_stats. */
nb_status nb_dist_allreduce_grads(nb_dist *d, float *g, size_t n, double *loss, nb_error *err);
/* Sums v[0..n) over all ranks, in place (epoch statistics). */
nb_status nb_dist_sum(nb_dist *d, double *v, int n, nb_error *err);
/* Replaces v[0..n) by its mean over all ranks, in place. Batch norm under data parallelism:
 * each rank normalises its share of a batch by that share's own mean and variance (as
 * PyTorch's DistributedDataParallel without SyncBatchNorm; the gradient all-reduce then sums
 * the shares' gradients), and after every step the trainer averages the buffers (running
 * statistics) over the ranks with this. The averaged running mean is exactly the running
 * mean of the whole batch's mean when the shares are equal; the averaged running variance is
 * the mean of the shares' unbiased variances (the spread between shares' means is left
 * out). The replicas stay equal, so the model file and checkpoint rank 0 writes hold the
 * average. */
nb_status nb_dist_average(nb_dist *d, float *v, size_t n, nb_error *err);
/* 1 on every rank if flag is non-zero on any (an agreed decision, e.g. to stop). */
int nb_dist_any(nb_dist *d, int flag);
/* Agrees on an outcome (collective): returns the largest status of all ranks (0 when every
 * rank succeeded) and sets *first (may be NULL) to the lowest rank whose status is non-zero,
 * or -1 — the one rank that reports the failure, so that it is printed once. Lets ranks that
 * failed at the same point (before training, or at its end) leave the job normally
 * (nb_dist_free) instead of aborting it. */
int nb_dist_agree(nb_dist *d, int status, int *first);
/* Checks that w[0..n) is bitwise the same on every rank (a 64-bit hash compared across
 * ranks): NB_EDIST, on every rank, naming the first rank that differs from rank 0. The trainer
 * runs it after every epoch (nb_trainer_set_dist). */
nb_status nb_dist_check_replicas(nb_dist *d, const float *w, size_t n, nb_error *err);
/* Gives rank r > 0 a generator derived from rng's state and r (rank 0 keeps rng), so that
 * the ranks' Dropout masks are independent draws rather than copies. The trainer does this to
 * its model's generator (nb_trainer_set_dist, nb_trainer_resume). */
void nb_dist_fork_rng(const nb_dist *d, nb_rng *rng);

/* Communication counters since nb_dist_new: gradient all-reduces, bytes reduced per rank,
 * and the seconds spent in them (MPI_Wtime around the call: transfer plus waiting for the
 * slowest rank). */
typedef struct nb_dist_stats {
    int64_t allreduces;
    double bytes;
    double seconds;
} nb_dist_stats;
void nb_dist_get_stats(const nb_dist *d, nb_dist_stats *stats);

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
#endif /* NABLA_H */
