/* Dropout (docs/lecture.md §4, §5.9), "inverted": in training each element is kept with
 * probability 1 − p and scaled by 1/(1 − p), so the expected output equals the input and
 * evaluation needs no rescaling.
 *
 *   training    m_i = [u_i ≥ p] / (1 − p),  u_i ~ U[0,1) from the graph's generator
 *               y = x ⊙ m,  dx += dy ⊙ m   (the gradient is masked the same way)
 *   evaluation  y = x,      dx += dy
 *
 * The mask lives in the node's scratch (aux) so that backward sees the forward's draw; an
 * inference plan keeps none (aux NULL), and may run the forward in place. */
#include "core/graph.h"

static nb_status dropout_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    if (!(n->fparam >= 0.0f && n->fparam < 1.0f))
        return nb_error_set(err, NB_EINVAL, "dropout '%s': p = %g, expected 0 ≤ p < 1", n->name,
                            (double)n->fparam);
    nb_shape_copy(n, nb_in(g, n, 0));
    n->aux_size = nb_in(g, n, 0)->size;
    return NB_OK;
}

static void dropout_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    int64_t e = nb_node_elems(n, N);
    n->iparam = g->training; /* what backward must undo */
    if (!g->training) {
        for (int64_t i = 0; i < e; i++)
            n->value[i] = x[i];
        return;
    }
    float p = n->fparam, keep = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < e; i++) {
        float m = nb_rng_uniform(&g->rng) >= p ? keep : 0.0f;
        if (n->aux)
            n->aux[i] = m;
        n->value[i] = x[i] * m;
    }
}

static void dropout_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *dx = nb_in(g, n, 0)->grad;
    int64_t e = nb_node_elems(n, N);
    for (int64_t i = 0; i < e; i++)
        dx[i] += n->iparam ? n->grad[i] * n->aux[i] : n->grad[i];
}

const nb_op_def nb_op_dropout_def = {.name = "dropout", .n_inputs = 1, .shape = dropout_shape,
                                     .forward = dropout_forward, .backward = dropout_backward,
                                     .in_place = 1, .aux_for_backward = 1,
                                     .formula = "Y = X ⊙ mask/(1−p)",
                                     .vjp = {"dX += dY ⊙ mask/(1−p)"}};

int nb_dropout(nb_graph *g, const char *name, int x, float p)
{
    return nb_graph_add(g, name, NB_OP_DROPOUT, &x, 1, 0, NULL, p, 0);
}
