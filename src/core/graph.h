/* Internal: the graph's node records and the module table. Not part of the public API. */
#ifndef NB_GRAPH_H
#define NB_GRAPH_H

#include "nabla.h"

/* In an inference plan: a node not computed, computed (its memory reused after its last
 * reader), or an output (its value stays until the next pass). */
enum nb_infer_role { NB_INFER_SKIPPED = 0, NB_INFER_COMPUTED, NB_INFER_OUTPUT };

#define NB_MAX_INPUTS 6 /* batch_norm: x, weight, bias, running_mean, running_var, count */

typedef struct nb_node {
    char name[NB_NAME_MAX];
    nb_op op;
    const struct nb_op_def *def; /* nb_op_table[op]; a test may swap in a broken one */
    int n_inputs;
    int inputs[NB_MAX_INPUTS];
    int ndim;
    int64_t dims[NB_MAX_DIMS]; /* per sample when batched */
    int batched;
    int64_t size;              /* elements per sample (batched) or in all */
    int requires_grad;
    float fparam;              /* Scale: factor; Dropout: p; LeakyReLU: slope; layer_norm: eps;
                                  cross_entropy: label smoothing */
    int iparam;                /* Linear: has bias; MSE: reduction; layer_norm: dims */
    float fparam2;             /* batch_norm: eps (fparam: momentum); cross_entropy: the label
                                  smoothing its last forward applied (fparam: the one set) */
    int64_t ints[12];          /* conv2d, pooling: the window (op_conv.c's CONV_* indices) */
    /* storage, resolved by nb_graph_prepare */
    size_t param_offset;       /* parameters: offset into the flat buffers */
    size_t value_offset, aux_offset; /* activations: offsets into the arena */
    size_t grad_offset;              /* and into the gradient arena */
    int64_t aux_size;          /* scratch floats per sample (Dropout's mask, …) */
    int64_t aux_fixed;         /* and floats besides, whatever the batch (batch norm's
                                  statistics); the node's aux holds aux_fixed + batch·aux_size */
    float *value, *grad, *aux;
    int32_t *labels;
    /* set by nb_graph_prepare */
    int consumers;             /* nodes that take this one as an input */
    int relu_out;              /* Linear: the ReLU node whose output its forward also writes
                                  (its only consumer), else -1 */
    int fused;                 /* ReLU: computed by its input Linear's forward */
    /* during backward: the gradient holds stale data and its first contribution must
     * overwrite it rather than add to it (see nb_graph_backward in graph.c) */
    int grad_fresh;
} nb_node;

struct nb_graph {
    nb_node *nodes;
    int count, capacity;
    nb_error error;            /* sticky building error */
    /* parameters: one flat buffer of values, one of gradients (same layout) */
    float *params, *param_grads;
    size_t param_floats, param_capacity;
    int *param_nodes;
    int param_count;
    /* buffers: state saved with the parameters but not trained (batch norm's running
     * statistics), in one flat buffer of their own */
    float *buffers;
    size_t buffer_floats, buffer_capacity;
    int *buffer_nodes;
    int buffer_count;
    /* scratch shared by all nodes for the duration of one forward or backward call (im2col
     * buffers): the largest nb_op_def.workspace, sized by nb_graph_prepare */
    float *workspace;
    size_t workspace_floats;
    /* activations (values and op scratch) for the prepared batch */
    float *arena;
    size_t arena_floats;
    /* their gradients, apart: calloc'ed when it grows, so that a graph that only runs forward
     * (inference) never touches — never makes resident — the pages of gradients it does not
     * use */
    float *grad_arena;
    size_t grad_arena_floats;
    int32_t *label_arena;
    size_t label_floats;
    int64_t batch;             /* 0: not prepared since the last change */
    /* Prepared for inference (nb_graph_prepare_inference, plan_inference.c): activations
     * share memory by liveness and nothing is kept for backward; kept[i] says what becomes of
     * node i (nb_infer_role). */
    int inference;
    char *kept;
    char *mark;                /* per-node scratch for backward's reachability */
    int *first_user;           /* per-node scratch: the consumer whose backward runs first */
    int mark_capacity;         /* of mark, first_user and kept */
    nb_rng rng;
    int training;
    nb_gemm *gemm;
    int owns_gemm;
    /* The precision the kernels are asked for (precision.c). The backend keeps copies of the
     * weights in that precision, remade when param_generation moved on: every optimiser
     * step, initialisation, load or declared write (nb_graph_params_changed) sets it to 0,
     * never a read, and the next kernel call takes a new number from the backend context —
     * unique among all the graphs sharing it, whose weights may reuse freed addresses. */
    nb_precision precision;
    uint64_t param_generation;
};

/* One entry of the module table: the shape rule, the forward and the vector–Jacobian
 * product, side by side in the module's own file, with the formulas they compute.
 *
 * A new op fills: name, n_inputs, shape, forward, backward (or no_grad_reason), formula and
 * vjp[k] for every input k that receives a gradient, and role when it is not a module. The
 * formulas are what `nabla graph` draws (nb_op_formula, nb_op_vjp) — write them as the
 * comment block above the code states them, in the lecture's notation and row-major. */
typedef enum nb_op_role {
    NB_ROLE_MODULE = 0, /* a deterministic function of its inputs (the default) */
    NB_ROLE_LEAF,       /* input, labels, parameter: a value given, not computed */
    NB_ROLE_COST,       /* a scalar cost C, the root of backpropagation in training */
} nb_op_role;

typedef struct nb_op_def {
    const char *name;
    int n_inputs;
    nb_op_role role;
    /* The forward, e.g. "Y = X·Wᵀ + b", and what backward adds to input k's gradient, e.g.
     * vjp[1] = "dW += dYᵀ·X"; NULL where an input receives none (labels). UTF-8. */
    const char *formula;
    const char *vjp[NB_MAX_INPUTS];
    /* Checks the inputs and sets n's shape; may set aux_size and aux_fixed. */
    nb_status (*shape)(nb_graph *g, nb_node *n, nb_error *err);
    /* Floats of g->workspace the forward and backward need for `batch` samples (NULL: none);
     * asked by nb_graph_prepare, when the backend context is known. */
    size_t (*workspace)(const nb_graph *g, const nb_node *n, int64_t batch);
    void (*forward)(nb_graph *g, nb_node *n, int64_t batch);
    /* Accumulates (+=) into the gradients of n's inputs that require them. NULL: the module
     * has no gradient, and `no_grad_reason` says why. */
    void (*backward)(nb_graph *g, nb_node *n, int64_t batch);
    const char *no_grad_reason;
    /* The backward honours grad_fresh on its inputs: where it is set, the first contribution
     * is written (=, or beta = 0) and the flag cleared, instead of added to a zeroed buffer. */
    int writes_fresh;
    /* Inference plans (plan_inference.c). in_place: bit k set when the forward stays correct
     * with its output in the very memory of input k (same size; every output element computed
     * from the input elements at its own index, each read before it is overwritten), so that
     * a plan may hand input k's buffer on when this node is its last reader. aux_for_backward:
     * the scratch only carries state to backward (an arg-max, a mask, the softmax), so an
     * inference plan allocates none and the forward gets n->aux == NULL. */
    unsigned in_place;
    int aux_for_backward;
} nb_op_def;

/* Accumulates into dst (n floats) or, when *fresh is set, overwrites it and clears *fresh: the
 * two ways a backward contributes to a gradient (see nb_op_def.writes_fresh). */
static inline float nb_grad_beta(int *fresh)
{
    float beta = *fresh ? 0.0f : 1.0f;
    *fresh = 0;
    return beta;
}

extern const nb_op_def *const nb_op_table[NB_OP_COUNT];

/* The module definitions, one per file under src/ops/op_*.c. */
extern const nb_op_def nb_op_input_def, nb_op_labels_def, nb_op_param_def, nb_op_linear_def,
    nb_op_relu_def, nb_op_tanh_def, nb_op_sigmoid_def, nb_op_add_def, nb_op_max_def,
    nb_op_mul_def, nb_op_scale_def, nb_op_sum_def, nb_op_mean_def, nb_op_softmax_def,
    nb_op_log_softmax_def, nb_op_dropout_def, nb_op_reshape_def, nb_op_nearest_def,
    nb_op_mse_def, nb_op_nll_def, nb_op_cross_entropy_def, nb_op_conv2d_def,
    nb_op_max_pool2d_def, nb_op_avg_pool2d_def, nb_op_global_avg_pool_def,
    nb_op_batch_norm_def, nb_op_buffer_def, nb_op_leaky_relu_def, nb_op_gelu_def,
    nb_op_layer_norm_def;

/* Adds a node of kind op with the given inputs, preset dims (read by the shape rules of
 * leaves and Reshape; others compute their own) and module parameters; runs the shape rule.
 * Returns the handle or -1 (and records the sticky error). */
int nb_graph_add(nb_graph *g, const char *name, nb_op op, const int *inputs, int n_inputs,
                 int ndim, const int64_t *dims, float fparam, int iparam);

/* nb_graph_add for modules with settings beyond fparam/iparam: n->ints (12 values, may be
 * NULL) and fparam2 are set before the shape rule runs. */
int nb_graph_add_settings(nb_graph *g, const char *name, nb_op op, const int *inputs,
                          int n_inputs, const int64_t *ints, float fparam, float fparam2);

/* Backpropagation for a training step: as nb_graph_zero_grad followed by nb_graph_backward(g,
 * root, seed, err), but nothing is zeroed beforehand. Every gradient's first contribution
 * (parameters' included) overwrites it; a gradient that receives none is zeroed afterwards.
 * Saves a pass over all parameter gradients and every activation gradient per step. */
nb_status nb_graph_backward_step(nb_graph *g, int root, const float *seed, nb_error *err);

/* The optimiser step split across the threads of gemm's pool: the same element-wise rules on
 * blocks of the parameters, so the result is bit-identical to nb_optim_step. */
void nb_optim_step_parallel(nb_optim *opt, float *w, float *g, float lr, nb_gemm *gemm);

/* Floats in n's value (and gradient) for a batch of N samples: N per-sample blocks when the
 * node is batched, one block otherwise (parameters, costs). */
static inline int64_t nb_node_elems(const nb_node *n, int64_t N)
{
    return (n->batched ? N : 1) * n->size;
}

/* Leaves (input, labels, parameter) hold given values: no forward, no backward. */
static inline int nb_node_is_leaf(const nb_node *n)
{
    return n->def->role == NB_ROLE_LEAF;
}

static inline nb_node *nb_in(nb_graph *g, const nb_node *n, int i)
{
    return &g->nodes[n->inputs[i]];
}

/* Grows *buf to `need` floats when it holds fewer (*floats), keeping its contents; NB_ENOMEM
 * names `what` ("activations", "scratch"). */
nb_status nb_graph_grow(float **buf, size_t *floats, size_t need, const char *what,
                        nb_error *err);

/* Grows the per-node scratch arrays (mark, first_user, kept) to the graph's node count. */
nb_status nb_graph_node_scratch(nb_graph *g, nb_error *err);

/* The part of planning shared by nb_graph_prepare and nb_graph_prepare_inference: gemm
 * context, requires_grad, the workspace and the labels of `batch` samples, the fusion of
 * Linear and ReLU and the per-node scratch. */
nb_status nb_graph_plan_common(nb_graph *g, int64_t batch, nb_error *err);

/* mark[i] = 1 for every node that a node with mark[i] already set depends on (inputs precede
 * their users, so one walk downwards suffices). */
void nb_graph_mark_ancestors(nb_graph *g);

/* The parameters' current generation, numbered by the backend (precision.c). */
uint64_t nb_graph_weights_generation(nb_graph *g);

/* Shape-rule helpers: format a shape, and report a mismatch between two nodes. */
char *nb_shape_format(const nb_node *n, char *buf, size_t size);
nb_status nb_shape_mismatch(nb_error *err, const nb_node *n, const nb_node *a,
                            const nb_node *b, const char *why);
void nb_shape_copy(nb_node *dst, const nb_node *src);

#endif
