/* Reshape and Flatten: the same numbers under another per-sample shape, e.g. the lecture's
 * 3×10×20 image → 600 features (§7). Row-major storage makes this a copy:
 *   y = x,  dx += dy. */
#include "core/graph.h"

#include <string.h>

static nb_status reshape_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, 0);
    int64_t size = 1;
    for (int i = 0; i < n->ndim; i++)
        size = n->dims[i] > 0 && size <= x->size ? size * n->dims[i] : -1;
    if (size != x->size) {
        char sx[64], sn[64];
        return nb_error_set(err, NB_ESHAPE, "reshape '%s': '%s' is %s (%lld per sample), "
                            "cannot become %s (%lld)", n->name, x->name,
                            nb_shape_format(x, sx, sizeof sx), (long long)x->size,
                            nb_shape_format(n, sn, sizeof sn), (long long)size);
    }
    n->batched = x->batched;
    return NB_OK;
}

static void reshape_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    if (n->value != x) /* in place (an inference plan): the numbers are there already */
        memcpy(n->value, x, (size_t)nb_node_elems(n, N) * sizeof(float));
}

static void reshape_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *dx = nb_in(g, n, 0)->grad;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        dx[i] += n->grad[i];
}

const nb_op_def nb_op_reshape_def = {.name = "reshape", .n_inputs = 1, .shape = reshape_shape,
                                     .forward = reshape_forward, .backward = reshape_backward,
                                     .in_place = 1,
                                     .formula = "same numbers, new shape",
                                     .vjp = {"dX += reshape(dY)"}};

int nb_reshape(nb_graph *g, const char *name, int x, int ndim, const int64_t *dims)
{
    if (ndim < 1 || ndim > NB_MAX_DIMS - 1)
        ndim = -1; /* rejected by nb_graph_add as invalid */
    return nb_graph_add(g, name, NB_OP_RESHAPE, &x, 1, ndim, dims, 0, 0);
}

int nb_flatten(nb_graph *g, const char *name, int x)
{
    int64_t size = g && x >= 0 && x < g->count ? g->nodes[x].size : 0;
    return nb_graph_add(g, name, NB_OP_RESHAPE, &x, 1, 1, &size, 0, 0);
}
