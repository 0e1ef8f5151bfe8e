/* Linear (LECTURE.md §4), with PyTorch's layout: W is [out, in], rows of X are samples.
 *
 *   forward   Y = X Wᵀ + b                      X (N,in)  W (out,in)  b (out)  Y (N,out)
 *   backward  dX += dY W                        (the lecture's dC/dX = Wᵀ·dC/dY, row-major)
 *             dW += dYᵀ X                       (dC/dW = dC/dY·Xᵀ)
 *             db += Σ_n dY[n,:]
 *
 * All three products go through the gemm backend; backward accumulates (beta = 1) so that
 * fan-out and gradient accumulation across calls need nothing extra. */
#include "graph.h"

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

static void linear_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    int in = (int)x->dims[0], out = (int)n->dims[0];
    float *Y = n->value;                                   /* (N,out) */
    nb_gemm_run(g->gemm, 0, 1, (int)N, out, in, 1.0f, x->value, in, w->value, in, 0.0f, Y, out);
    if (n->n_inputs == 3) {
        const float *b = nb_in(g, n, 2)->value;            /* (out) */
        for (int64_t r = 0; r < N; r++)
            for (int j = 0; j < out; j++)
                Y[r * out + j] += b[j];
    }
}

static void linear_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    int in = (int)x->dims[0], out = (int)n->dims[0];
    const float *dY = n->grad;                             /* (N,out) */
    if (x->requires_grad)                                  /* dX += dY W */
        nb_gemm_run(g->gemm, 0, 0, (int)N, in, out, 1.0f, dY, out, w->value, in, 1.0f, x->grad, in);
    if (w->requires_grad)                                  /* dW += dYᵀ X */
        nb_gemm_run(g->gemm, 1, 0, out, in, (int)N, 1.0f, dY, out, x->value, in, 1.0f, w->grad, in);
    if (n->n_inputs == 3 && nb_in(g, n, 2)->requires_grad) {
        float *db = nb_in(g, n, 2)->grad;                  /* db += Σ_n dY[n,:] */
        for (int64_t r = 0; r < N; r++)
            for (int j = 0; j < out; j++)
                db[j] += dY[r * out + j];
    }
}

const nb_op_def nb_op_linear_def = {
    .name = "linear",
    .n_inputs = 3,
    .shape = linear_shape,
    .forward = linear_forward,
    .backward = linear_backward,
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
