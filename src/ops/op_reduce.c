/* Reductions over the features of each sample:  [N, d…] → [N, 1], D = Π d.
 *
 *   Sum    y_n = Σ_i x_n,i          dx_n,i += dy_n
 *   Mean   y_n = (1/D) Σ_i x_n,i    dx_n,i += dy_n / D
 */
#include "core/graph.h"

static nb_status reduce_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    (void)err;
    n->batched = nb_in(g, n, 0)->batched;
    n->ndim = 1;
    n->dims[0] = 1;
    return NB_OK;
}

static void reduce_forward(nb_graph *g, nb_node *n, int64_t N, float factor)
{
    const nb_node *x = nb_in(g, n, 0);
    int64_t D = x->size, rows = n->batched ? N : 1;
    for (int64_t r = 0; r < rows; r++) {
        double s = 0.0; /* accumulate in double: D may be large */
        for (int64_t i = 0; i < D; i++)
            s += x->value[r * D + i];
        n->value[r] = (float)(s * factor);
    }
}

static void reduce_backward(nb_graph *g, nb_node *n, int64_t N, float factor)
{
    nb_node *x = nb_in(g, n, 0);
    int64_t D = x->size, rows = n->batched ? N : 1;
    for (int64_t r = 0; r < rows; r++) {
        float d = n->grad[r] * factor;
        for (int64_t i = 0; i < D; i++)
            x->grad[r * D + i] += d;
    }
}

static void sum_forward(nb_graph *g, nb_node *n, int64_t N) { reduce_forward(g, n, N, 1.0f); }
static void sum_backward(nb_graph *g, nb_node *n, int64_t N) { reduce_backward(g, n, N, 1.0f); }
static void mean_forward(nb_graph *g, nb_node *n, int64_t N)
{
    reduce_forward(g, n, N, 1.0f / (float)nb_in(g, n, 0)->size);
}
static void mean_backward(nb_graph *g, nb_node *n, int64_t N)
{
    reduce_backward(g, n, N, 1.0f / (float)nb_in(g, n, 0)->size);
}

const nb_op_def nb_op_sum_def = {.name = "sum", .n_inputs = 1, .shape = reduce_shape,
                                 .forward = sum_forward, .backward = sum_backward,
                                 .formula = "y = Σᵢ xᵢ", .vjp = {"dX += dY (to every feature)"}};
const nb_op_def nb_op_mean_def = {.name = "mean", .n_inputs = 1, .shape = reduce_shape,
                                  .forward = mean_forward, .backward = mean_backward,
                                  .formula = "y = (1/D) Σᵢ xᵢ", .vjp = {"dX += dY / D"}};

int nb_sum(nb_graph *g, const char *name, int x) { return nb_graph_add(g, name, NB_OP_SUM, &x, 1, 0, NULL, 0, 0); }
int nb_mean(nb_graph *g, const char *name, int x) { return nb_graph_add(g, name, NB_OP_MEAN, &x, 1, 0, NULL, 0, 0); }
