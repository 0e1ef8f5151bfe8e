/* The graph: named nodes in creation (= topological) order, memory planned once per batch
 * size, forward in order, backpropagation in reverse order (docs/lecture.md §3).
 *
 * Backprop computes, for every module z_{k+1} = f_k(z_k, w_k) that the root depends on,
 *   ∂c/∂z_k += ∂c/∂z_{k+1} · ∂f_k/∂z_k   and   ∂c/∂w_k += ∂c/∂z_{k+1} · ∂f_k/∂w_k,
 * never forming a Jacobian: each module implements its vector–Jacobian product. Because
 * every product accumulates (+=), a node feeding several modules (the lecture's Duplicate,
 * n-way fan-out) receives the sum of their gradients without a module of its own. */
#include "backend/linear.h"
#include "core/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const nb_op_def *const nb_op_table[NB_OP_COUNT] = {
    [NB_OP_INPUT] = &nb_op_input_def,
    [NB_OP_LABELS] = &nb_op_labels_def,
    [NB_OP_PARAM] = &nb_op_param_def,
    [NB_OP_LINEAR] = &nb_op_linear_def,
    [NB_OP_RELU] = &nb_op_relu_def,
    [NB_OP_TANH] = &nb_op_tanh_def,
    [NB_OP_SIGMOID] = &nb_op_sigmoid_def,
    [NB_OP_ADD] = &nb_op_add_def,
    [NB_OP_MAX] = &nb_op_max_def,
    [NB_OP_MUL] = &nb_op_mul_def,
    [NB_OP_SCALE] = &nb_op_scale_def,
    [NB_OP_SUM] = &nb_op_sum_def,
    [NB_OP_MEAN] = &nb_op_mean_def,
    [NB_OP_SOFTMAX] = &nb_op_softmax_def,
    [NB_OP_LOG_SOFTMAX] = &nb_op_log_softmax_def,
    [NB_OP_DROPOUT] = &nb_op_dropout_def,
    [NB_OP_RESHAPE] = &nb_op_reshape_def,
    [NB_OP_NEAREST] = &nb_op_nearest_def,
    [NB_OP_MSE] = &nb_op_mse_def,
    [NB_OP_NLL] = &nb_op_nll_def,
    [NB_OP_CROSS_ENTROPY] = &nb_op_cross_entropy_def,
    [NB_OP_CONV2D] = &nb_op_conv2d_def,
    [NB_OP_MAX_POOL2D] = &nb_op_max_pool2d_def,
    [NB_OP_AVG_POOL2D] = &nb_op_avg_pool2d_def,
    [NB_OP_GLOBAL_AVG_POOL] = &nb_op_global_avg_pool_def,
    [NB_OP_BATCH_NORM] = &nb_op_batch_norm_def,
    [NB_OP_BUFFER] = &nb_op_buffer_def,
    [NB_OP_LEAKY_RELU] = &nb_op_leaky_relu_def,
    [NB_OP_GELU] = &nb_op_gelu_def,
    [NB_OP_LAYER_NORM] = &nb_op_layer_norm_def,
};

const char *nb_op_name(nb_op op)
{
    return (unsigned)op < NB_OP_COUNT ? nb_op_table[op]->name : "?";
}

static const nb_op_def *op_def(nb_op op)
{
    return (unsigned)op < NB_OP_COUNT ? nb_op_table[op] : NULL;
}

const char *nb_op_formula(nb_op op)
{
    const nb_op_def *d = op_def(op);
    return d && d->formula ? d->formula : "";
}

const char *nb_op_vjp(nb_op op, int input)
{
    const nb_op_def *d = op_def(op);
    return d && input >= 0 && input < NB_MAX_INPUTS && d->vjp[input] ? d->vjp[input] : "";
}

int nb_op_is_leaf(nb_op op)
{
    const nb_op_def *d = op_def(op);
    return d && d->role == NB_ROLE_LEAF;
}

int nb_op_is_cost(nb_op op)
{
    const nb_op_def *d = op_def(op);
    return d && d->role == NB_ROLE_COST;
}

const char *nb_op_no_grad_reason(nb_op op)
{
    const nb_op_def *d = op_def(op);
    return d && d->role != NB_ROLE_LEAF && !d->backward ? d->no_grad_reason : NULL;
}


nb_graph *nb_graph_new(uint64_t seed, nb_gemm *gemm)
{
    nb_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    nb_rng_seed(&g->rng, seed);
    g->gemm = gemm;
    return g;
}

void nb_graph_free(nb_graph *g)
{
    if (!g)
        return;
    for (int i = 0; g->gemm && !g->owns_gemm && i < g->count; i++)
        nb_linear_release(g->gemm, &g->nodes[i]); /* a shared context outlives this graph */
    if (g->owns_gemm)
        nb_gemm_free(g->gemm);
    free(g->nodes);
    free(g->params);
    free(g->param_grads);
    free(g->param_nodes);
    free(g->buffers);
    free(g->buffer_nodes);
    free(g->workspace);
    free(g->arena);
    free(g->grad_arena);
    free(g->label_arena);
    free(g->mark);
    free(g->first_user);
    free(g->kept);
    free(g);
}

nb_status nb_graph_error(const nb_graph *g, nb_error *err)
{
    if (g->error.code && err)
        *err = g->error;
    return g->error.code;
}

/* ---- shapes ------------------------------------------------------------------------------ */

char *nb_shape_format(const nb_node *n, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "[%s", n->batched ? "N" : "");
    for (int i = 0; i < n->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", (i || n->batched) ? "," : "",
                                 (long long)n->dims[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

nb_status nb_shape_mismatch(nb_error *err, const nb_node *n, const nb_node *a,
                            const nb_node *b, const char *why)
{
    char sa[64], sb[64];
    return nb_error_set(err, NB_ESHAPE, "%s '%s': %s: '%s' is %s but '%s' is %s",
                        nb_op_table[n->op]->name, n->name, why, a->name,
                        nb_shape_format(a, sa, sizeof sa), b->name,
                        nb_shape_format(b, sb, sizeof sb));
}

void nb_shape_copy(nb_node *dst, const nb_node *src)
{
    dst->ndim = src->ndim;
    memcpy(dst->dims, src->dims, sizeof dst->dims);
    dst->batched = src->batched;
}

static int64_t shape_size(const nb_node *n)
{
    int64_t s = 1;
    for (int i = 0; i < n->ndim; i++)
        s *= n->dims[i];
    return s;
}

/* ---- building ---------------------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(nb_graph *g, nb_status code, const char *fmt, ...)
{
    if (!g->error.code) {
        va_list ap;
        va_start(ap, fmt);
        g->error.code = code;
        vsnprintf(g->error.msg, sizeof g->error.msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int add_node(nb_graph *g, const char *name, nb_op op, const int *inputs, int n_inputs,
                    int ndim, const int64_t *dims, float fparam, int iparam,
                    const int64_t *ints, float fparam2)
{
    if (!g || g->error.code)
        return -1;
    const nb_op_def *def = nb_op_table[op];
    if (!name || !*name || strlen(name) >= NB_NAME_MAX)
        return fail(g, NB_EINVAL, "%s: node name '%s' must have 1 to 63 characters", def->name,
                    name ? name : "(null)");
    if (n_inputs < 0 || n_inputs > NB_MAX_INPUTS || ndim < 0 || ndim > NB_MAX_DIMS)
        return fail(g, NB_EINVAL, "%s '%s': invalid arguments", def->name, name);
    if (nb_graph_find(g, name) >= 0)
        return fail(g, NB_EINVAL, "%s '%s': a node of that name already exists", def->name, name);
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] < 0 || inputs[i] >= g->count)
            return fail(g, NB_EINVAL, "%s '%s': an input is not a node of this graph", def->name,
                        name);
    if (g->count == g->capacity) {
        int cap = g->capacity ? 2 * g->capacity : 16;
        nb_node *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return fail(g, NB_ENOMEM, "%s '%s': out of memory", def->name, name);
        g->nodes = nodes;
        g->capacity = cap;
    }
    nb_node *n = &g->nodes[g->count];
    memset(n, 0, sizeof *n);
    strcpy(n->name, name);
    n->op = op;
    n->def = def;
    n->n_inputs = n_inputs;
    if (n_inputs)
        memcpy(n->inputs, inputs, (size_t)n_inputs * sizeof *inputs);
    n->fparam = fparam;
    n->iparam = iparam;
    n->fparam2 = fparam2;
    if (ints)
        memcpy(n->ints, ints, sizeof n->ints);
    n->ndim = ndim;
    if (ndim > 0)
        memcpy(n->dims, dims, (size_t)ndim * sizeof *dims);
    for (int i = 0; i < n_inputs; i++) {
        if (g->nodes[inputs[i]].op == NB_OP_LABELS && op != NB_OP_NLL && op != NB_OP_CROSS_ENTROPY)
            return fail(g, NB_ESHAPE, "%s '%s': class labels can only feed a classification loss",
                        def->name, name);
        n->requires_grad |= g->nodes[inputs[i]].requires_grad;
    }
    nb_error err = {0};
    if (def->shape(g, n, &err) != NB_OK) {
        g->error = err;
        return -1;
    }
    n->size = shape_size(n);
    g->batch = 0; /* the memory plan no longer covers every node */
    return g->count++;
}

int nb_graph_add(nb_graph *g, const char *name, nb_op op, const int *inputs, int n_inputs,
                 int ndim, const int64_t *dims, float fparam, int iparam)
{
    return add_node(g, name, op, inputs, n_inputs, ndim, dims, fparam, iparam, NULL, 0);
}

int nb_graph_add_settings(nb_graph *g, const char *name, nb_op op, const int *inputs,
                          int n_inputs, const int64_t *ints, float fparam, float fparam2)
{
    return add_node(g, name, op, inputs, n_inputs, 0, NULL, fparam, 0, ints, fparam2);
}

int nb_input(nb_graph *g, const char *name, int ndim, const int64_t *dims)
{
    if (!g || g->error.code)
        return -1;
    if (ndim < 1 || ndim > NB_MAX_DIMS - 1)
        return fail(g, NB_ESHAPE, "input '%s': %d dimensions per sample, expected 1 to 3", name, ndim);
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1 || dims[i] > ((int64_t)1 << 30))
            return fail(g, NB_ESHAPE, "input '%s': dimension %d is %lld, expected 1 to 2^30", name, i,
                        (long long)dims[i]);
        size *= dims[i]; /* at most 2^30 · 2^30 before the check below stops it */
        if (size > ((int64_t)1 << 30))
            return fail(g, NB_ESHAPE, "input '%s': %lld or more features per sample, expected at "
                        "most 2^30", name, (long long)size);
    }
    return nb_graph_add(g, name, NB_OP_INPUT, NULL, 0, ndim, dims, 0, 0);
}

int nb_labels(nb_graph *g, const char *name)
{
    return nb_graph_add(g, name, NB_OP_LABELS, NULL, 0, 0, NULL, 0, 0);
}

int nb_param(nb_graph *g, const char *name, int ndim, const int64_t *dims)
{
    if (!g || g->error.code)
        return -1;
    if (ndim < 1 || ndim > NB_MAX_DIMS)
        return fail(g, NB_ESHAPE, "parameter '%s': %d dimensions, expected 1 to 4", name, ndim);
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1 || dims[i] > ((int64_t)1 << 30) || size > ((int64_t)1 << 32) / dims[i])
            return fail(g, NB_ESHAPE, "parameter '%s': size out of range (max 2^32 elements)", name);
        size *= dims[i];
    }
    if (g->param_floats + (size_t)size > g->param_capacity) {
        size_t cap = g->param_capacity ? g->param_capacity : 1024;
        while (cap < g->param_floats + (size_t)size)
            cap *= 2;
        float *p = realloc(g->params, cap * sizeof *p);
        if (!p)
            return fail(g, NB_ENOMEM, "parameter '%s': out of memory", name);
        g->params = p;
        float *d = realloc(g->param_grads, cap * sizeof *d);
        if (!d)
            return fail(g, NB_ENOMEM, "parameter '%s': out of memory", name);
        g->param_grads = d;
        g->param_capacity = cap;
    }
    int *pn = realloc(g->param_nodes, (size_t)(g->param_count + 1) * sizeof *pn);
    if (!pn)
        return fail(g, NB_ENOMEM, "parameter '%s': out of memory", name);
    g->param_nodes = pn;
    int id = nb_graph_add(g, name, NB_OP_PARAM, NULL, 0, ndim, dims, 0, 0);
    if (id < 0)
        return -1;
    nb_node *n = &g->nodes[id];
    n->requires_grad = 1;
    n->param_offset = g->param_floats;
    memset(g->params + g->param_floats, 0, (size_t)size * sizeof(float));
    memset(g->param_grads + g->param_floats, 0, (size_t)size * sizeof(float));
    g->param_floats += (size_t)size;
    g->param_nodes[g->param_count++] = id;
    return id;
}

int nb_buffer(nb_graph *g, const char *name, int ndim, const int64_t *dims)
{
    if (!g || g->error.code)
        return -1;
    if (ndim < 0 || ndim > NB_MAX_DIMS) /* 0: a scalar, as PyTorch's num_batches_tracked */
        return fail(g, NB_ESHAPE, "buffer '%s': %d dimensions, expected 0 to 4", name, ndim);
    int64_t size = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 1 || dims[i] > ((int64_t)1 << 30) || size > ((int64_t)1 << 32) / dims[i])
            return fail(g, NB_ESHAPE, "buffer '%s': size out of range (max 2^32 elements)", name);
        size *= dims[i];
    }
    if (g->buffer_floats + (size_t)size > g->buffer_capacity) {
        size_t cap = g->buffer_capacity ? g->buffer_capacity : 256;
        while (cap < g->buffer_floats + (size_t)size)
            cap *= 2;
        float *b = realloc(g->buffers, cap * sizeof *b);
        if (!b)
            return fail(g, NB_ENOMEM, "buffer '%s': out of memory", name);
        g->buffers = b;
        g->buffer_capacity = cap;
    }
    int *bn = realloc(g->buffer_nodes, (size_t)(g->buffer_count + 1) * sizeof *bn);
    if (!bn)
        return fail(g, NB_ENOMEM, "buffer '%s': out of memory", name);
    g->buffer_nodes = bn;
    int id = nb_graph_add(g, name, NB_OP_BUFFER, NULL, 0, ndim, dims, 0, 0);
    if (id < 0)
        return -1;
    nb_node *n = &g->nodes[id];
    n->param_offset = g->buffer_floats;
    memset(g->buffers + g->buffer_floats, 0, (size_t)size * sizeof(float));
    g->buffer_floats += (size_t)size;
    g->buffer_nodes[g->buffer_count++] = id;
    return id;
}

/* ---- introspection ----------------------------------------------------------------------- */

int nb_graph_find(const nb_graph *g, const char *name)
{
    for (int i = 0; i < g->count; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return i;
    return -1;
}

int nb_graph_node_count(const nb_graph *g) { return g->count; }
const char *nb_node_name(const nb_graph *g, int node) { return g->nodes[node].name; }
nb_op nb_node_op(const nb_graph *g, int node) { return g->nodes[node].op; }
int nb_node_input_count(const nb_graph *g, int node) { return g->nodes[node].n_inputs; }
int nb_node_input(const nb_graph *g, int node, int i) { return g->nodes[node].inputs[i]; }
int nb_node_is_batched(const nb_graph *g, int node) { return g->nodes[node].batched; }
int64_t nb_node_size(const nb_graph *g, int node) { return g->nodes[node].size; }
int nb_node_requires_grad(const nb_graph *g, int node) { return g->nodes[node].requires_grad; }

int nb_node_shape(const nb_graph *g, int node, int64_t dims[NB_MAX_DIMS])
{
    const nb_node *n = &g->nodes[node];
    memcpy(dims, n->dims, sizeof n->dims);
    return n->ndim;
}

char *nb_node_shape_str(const nb_graph *g, int node, char *buf, size_t size)
{
    return nb_shape_format(&g->nodes[node], buf, size);
}

void nb_node_set_requires_grad(nb_graph *g, int node, int flag)
{
    if (g->nodes[node].op == NB_OP_INPUT) {
        g->nodes[node].requires_grad = flag != 0;
        g->batch = 0;
    }
}

size_t nb_graph_param_floats(const nb_graph *g) { return g->param_floats; }
/* Reading is not a change: a writer declares it (nb_graph_params_changed), so that the
 * backend's copies of the weights in another precision survive reads. */
float *nb_graph_params(nb_graph *g) { return g->params; }
float *nb_graph_param_grads(nb_graph *g) { return g->param_grads; }
int nb_graph_param_count(const nb_graph *g) { return g->param_count; }
int nb_graph_param_node(const nb_graph *g, int i) { return g->param_nodes[i]; }
size_t nb_graph_buffer_floats(const nb_graph *g) { return g->buffer_floats; }
float *nb_graph_buffers(nb_graph *g) { return g->buffers; }
int nb_graph_buffer_count(const nb_graph *g) { return g->buffer_count; }
int nb_graph_buffer_node(const nb_graph *g, int i) { return g->buffer_nodes[i]; }

void nb_graph_set_training(nb_graph *g, int training) { g->training = training != 0; }
int nb_graph_training(const nb_graph *g) { return g->training; }
nb_rng *nb_graph_rng(nb_graph *g) { return &g->rng; }
int64_t nb_graph_batch(const nb_graph *g) { return g->batch; }

float *nb_value(nb_graph *g, int node)
{
    nb_node *n = &g->nodes[node];
    if (n->op == NB_OP_PARAM) {
        g->param_generation = 0; /* a writable pointer: a change */
        return g->params + n->param_offset;
    }
    if (n->op == NB_OP_BUFFER)
        return g->buffers + n->param_offset;
    if (g->batch && g->inference) /* only inputs and outputs hold their values */
        return n->op == NB_OP_INPUT || g->kept[node] == NB_INFER_OUTPUT ? n->value : NULL;
    return g->batch ? n->value : NULL;
}

float *nb_grad(nb_graph *g, int node)
{
    nb_node *n = &g->nodes[node];
    if (n->op == NB_OP_PARAM)
        return g->param_grads + n->param_offset;
    if (n->op == NB_OP_BUFFER)
        return NULL; /* not trained */
    return g->batch && !g->inference ? n->grad : NULL;
}

int32_t *nb_labels_data(nb_graph *g, int node)
{
    return g->batch ? g->nodes[node].labels : NULL;
}
