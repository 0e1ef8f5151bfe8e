/* The nearest-neighbour model of docs/lecture.md §1, a parametrised model with a discrete output:
 *
 *   ȳ_n = argmin_k ‖x_n − w_k‖²       x (N,D), W (K,D) with rows w_k, ȳ (N,1) as a float index
 *
 * Ties go to the smallest k. There is no useful gradient: ȳ is piecewise constant in x and W,
 * so its derivative is 0 almost everywhere and undefined on the boundaries, and backward
 * through it reports NB_ENOGRAD instead of silently returning zeros. */
#include "core/graph.h"

#include <stdio.h>

static nb_status nearest_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    if (!x->batched || x->ndim != 1 || w->ndim != 2 || w->dims[1] != x->dims[0])
        return nb_shape_mismatch(err, n, x, w, "rows of W [K,D] must match the input's D features");
    n->batched = 1;
    n->ndim = 1;
    n->dims[0] = 1;
    return NB_OK;
}

static void nearest_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    int64_t D = x->dims[0], K = w->dims[0];
    for (int64_t r = 0; r < N; r++) {
        const float *xr = x->value + r * D;
        double best = 0.0;
        int64_t arg = 0;
        for (int64_t k = 0; k < K; k++) {
            const float *wk = w->value + k * D;
            double d2 = 0.0;
            for (int64_t i = 0; i < D; i++)
                d2 += (double)(xr[i] - wk[i]) * (xr[i] - wk[i]);
            if (k == 0 || d2 < best) {
                best = d2;
                arg = k;
            }
        }
        n->value[r] = (float)arg;
    }
}

const nb_op_def nb_op_nearest_def = {
    .name = "nearest",
    .n_inputs = 2,
    .shape = nearest_shape,
    .forward = nearest_forward,
    .backward = NULL,
    .formula = "ȳ = argminₖ ‖x − wₖ‖²",
    .no_grad_reason = "argmin_k ‖x − w_k‖² is piecewise constant, so its derivative is zero "
                      "almost everywhere and undefined where two rows tie; train it without "
                      "gradients (e.g. k-means or by storing samples as rows)",
};

int nb_nearest(nb_graph *g, const char *name, int x, int64_t k)
{
    if (!g || !name || x < 0 || x >= nb_graph_node_count(g))
        return nb_graph_add(g, name ? name : "", NB_OP_NEAREST, &x, 1, 0, NULL, 0, 0);
    char wname[NB_NAME_MAX + 8];
    snprintf(wname, sizeof wname, "%s.weight", name);
    int64_t dims[2] = {k, nb_node_size(g, x)};
    int in[2] = {x, nb_param(g, wname, 2, dims)};
    if (in[1] < 0)
        return -1;
    return nb_graph_add(g, name, NB_OP_NEAREST, in, 2, 0, NULL, 0, 0);
}
