/* Linear (docs/lecture.md §4), with PyTorch's layout: W is [out, in], rows of X are samples.
 *
 *   forward   Y = X Wᵀ + b                      X (N,in)  W (out,in)  b (out)  Y (N,out)
 *   backward  dX += dY W                        (the lecture's dC/dX = Wᵀ·dC/dY, row-major)
 *             dW += dYᵀ X                       (dC/dW = dC/dY·Xᵀ)
 *             db += Σ_n dY[n,:]
 *
 * All three products go through the gemm backend; backward accumulates (beta = 1) so that
 * fan-out and gradient accumulation across calls need nothing extra — except where the graph
 * marked a gradient fresh (graph.c): the product then writes it (beta = 0), which spares
 * zeroing it first.
 *
 * Forward adds the bias in the product's output pass, block by block on the thread that
 * computed the block; when the graph fused a ReLU behind this Linear (its only consumer,
 * graph.c), the same pass also writes the ReLU's output r = max(Y, 0).
 *
 * The products are the backend's Linear kernels (backend/linear.h), asked for in the graph's
 * precision: in bf16 they take bf16 operands and do the same output pass; the bias gradient
 * stays here, in fp32. */
#include "backend/linear.h"
#include "core/graph.h"

#include <stdio.h>

static nb_status linear_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    char sx[64];
    if (!x->batched || x->ndim != 1)
        return nb_error_set(err, NB_ESHAPE,
                            "linear '%s': input '%s' is %s, expected [N,features] "
                            "(flatten it first)", n->name, x->name, nb_shape_format(x, sx, sizeof sx));
    if (w->ndim != 2 || w->dims[1] != x->dims[0])
        return nb_shape_mismatch(err, n, x, w, "weight [out,in] must match the input's features");
    if (n->n_inputs == 3) {
        const nb_node *b = nb_in(g, n, 2);
        if (b->ndim != 1 || b->dims[0] != w->dims[0])
            return nb_shape_mismatch(err, n, w, b, "bias must have one element per output");
    }
    n->batched = 1;
    n->ndim = 1;
    n->dims[0] = w->dims[0];
    return NB_OK;
}

/* The weights as the kernels see them: values and the parameters' generation, which moves on
 * only when they change, so the backend may keep them converted (bf16) across products. */
static nb_weights weights(nb_graph *g, const nb_node *w)
{
    return (nb_weights){.values = w->value, .generation = nb_graph_weights_generation(g),
                        .reused = !g->training};
}

static nb_linear_shape kernel_shape(const nb_graph *g, const nb_node *n, int64_t N)
{
    return (nb_linear_shape){.layer = n, .N = (int)N, .out = (int)n->dims[0],
                             .in = (int)nb_in((nb_graph *)g, n, 0)->dims[0]};
}

static void linear_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const nb_node *x = nb_in(g, n, 0);
    nb_linear_shape s = kernel_shape(g, n, N);
    nb_weights W = weights(g, nb_in(g, n, 1));
    const float *b = n->n_inputs == 3 ? nb_in(g, n, 2)->value : NULL; /* (out) */
    float *R = n->relu_out >= 0 ? g->nodes[n->relu_out].value : NULL; /* (N,out) */
    nb_linear_forward(g->gemm, g->precision, &s, x->value, &W, b, n->value, R);
}

static void linear_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    nb_linear_shape s = kernel_shape(g, n, N);
    nb_weights W = weights(g, w);
    const float *dY = n->grad;                             /* (N,out) */
    /* dX += dY W,  dW += dYᵀ X */
    float beta_x = x->requires_grad ? nb_grad_beta(&x->grad_fresh) : 0.0f;
    float beta_w = w->requires_grad ? nb_grad_beta(&w->grad_fresh) : 0.0f;
    nb_linear_backward(g->gemm, g->precision, &s, x->value, &W, dY, beta_x,
                       x->requires_grad ? x->grad : NULL, beta_w,
                       w->requires_grad ? w->grad : NULL);
    if (n->n_inputs == 3 && nb_in(g, n, 2)->requires_grad) {
        int out = s.out;
        nb_node *bias = nb_in(g, n, 2);
        float *restrict db = bias->grad;                   /* db += Σ_n dY[n,:] */
        if (nb_grad_beta(&bias->grad_fresh) == 0.0f)
            for (int j = 0; j < out; j++)
                db[j] = 0.0f;
        for (int64_t r = 0; r < N; r++) {
            const float *restrict dy = dY + r * out;
            for (int j = 0; j < out; j++)
                db[j] += dy[j];
        }
    }
}

const nb_op_def nb_op_linear_def = {
    .name = "linear",
    .n_inputs = 3,
    .shape = linear_shape,
    .forward = linear_forward,
    .backward = linear_backward,
    .writes_fresh = 1,
    .formula = "Y = X·Wᵀ + b",
    .vjp = {"dX += dY·W", "dW += dYᵀ·X", "db += Σₙ dY[n,:]"},
};

int nb_linear(nb_graph *g, const char *name, int x, int64_t out_features, int bias)
{
    if (!g || !name || x < 0 || x >= nb_graph_node_count(g))
        return nb_graph_add(g, name ? name : "", NB_OP_LINEAR, &x, 1, 0, NULL, 0, 0);
    char wname[NB_NAME_MAX + 8], bname[NB_NAME_MAX + 8];
    snprintf(wname, sizeof wname, "%s.weight", name);
    snprintf(bname, sizeof bname, "%s.bias", name);
    int64_t in = nb_node_size(g, x);
    int64_t wdims[2] = {out_features, in};
    int inputs[3];
    inputs[0] = x;
    inputs[1] = nb_param(g, wname, 2, wdims);
    inputs[2] = bias ? nb_param(g, bname, 1, &out_features) : -1;
    if (inputs[1] < 0 || (bias && inputs[2] < 0))
        return -1;
    return nb_graph_add(g, name, NB_OP_LINEAR, inputs, bias ? 3 : 2, 0, NULL, 0, bias != 0);
}
