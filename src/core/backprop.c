/* Forward and backward over the graph (docs/lecture.md §3): forward in creation (topological)
 * order, backpropagation in reverse, each module's vector–Jacobian product accumulating (+=)
 * into its inputs' gradients — which is what makes fan-out (the lecture's Duplicate) need no
 * module of its own. The graph itself, its nodes and memory plan: graph.c. */
#include "core/graph.h"

#include <string.h>

/* ---- forward and backward ---------------------------------------------------------------- */

void nb_graph_mark_ancestors(nb_graph *g)
{
    for (int i = g->count - 1; i >= 0; i--)
        if (g->mark[i])
            for (int k = 0; k < g->nodes[i].n_inputs; k++)
                g->mark[g->nodes[i].inputs[k]] = 1;
}

/* mark[i] = 1 for `root` and every node it depends on. */
static void mark_ancestors(nb_graph *g, int root)
{
    memset(g->mark, 0, (size_t)g->count);
    g->mark[root] = 1;
    nb_graph_mark_ancestors(g);
}

static nb_status check_prepared(nb_graph *g, int node, nb_error *err)
{
    if (g->error.code)
        return nb_graph_error(g, err);
    if (!g->batch)
        return nb_error_set(err, NB_EINVAL, "the graph has no batch size yet: it must be prepared after it is built");
    if (node < 0 || node >= g->count)
        return nb_error_set(err, NB_EINVAL, "node %d is not in the graph", node);
    return NB_OK;
}

nb_status nb_graph_forward_to(nb_graph *g, int target, nb_error *err)
{
    nb_status s = check_prepared(g, target, err);
    if (s)
        return s;
    if (g->inference && g->kept[target] != NB_INFER_OUTPUT)
        return nb_error_set(err, NB_EINVAL, "'%s' is not an output of the inference plan: "
                            "prepare the graph with it among the outputs",
                            g->nodes[target].name);
    mark_ancestors(g, target);
    for (int i = 0; i <= target; i++) {
        nb_node *n = &g->nodes[i];
        if (g->mark[i] && !nb_node_is_leaf(n) && !n->fused)
            n->def->forward(g, n, g->batch);
    }
    return NB_OK;
}

nb_status nb_graph_forward(nb_graph *g, nb_error *err)
{
    if (g->count == 0)
        return nb_error_set(err, NB_EINVAL, "the graph is empty");
    nb_status s = check_prepared(g, 0, err);
    for (int i = 0; !s && i < g->count; i++)
        if (!nb_node_is_leaf(&g->nodes[i]) && !g->nodes[i].fused &&
            (!g->inference || g->kept[i])) /* inference: only what the outputs need */
            g->nodes[i].def->forward(g, &g->nodes[i], g->batch);
    return s;
}

/* Gradients are not zeroed before the pass where that can be avoided: a node whose gradient
 * is first contributed to by a module that can overwrite (nb_op_def.writes_fresh; backward
 * runs in reverse order, so that is its highest-numbered consumer that backward visits) is
 * marked fresh instead, and that module writes rather than adds; later contributions add as
 * usual. Other gradients are zeroed first. Parameters are handled so only when params_fresh
 * (a training step); otherwise their gradients accumulate across calls. A gradient that is
 * still fresh at the end received nothing and is zeroed then. */
static nb_status backward(nb_graph *g, int root, const float *seed, int params_fresh,
                          nb_error *err)
{
    nb_status s = check_prepared(g, root, err);
    if (s)
        return s;
    if (g->inference)
        return nb_error_set(err, NB_EINVAL, "backward from '%s': the graph is prepared for "
                            "inference, which keeps nothing for backward: prepare it for "
                            "training first", g->nodes[root].name);
    if (g->nodes[root].op == NB_OP_LABELS)
        return nb_error_set(err, NB_EINVAL, "backward from '%s': class labels are integers and "
                            "have no gradient", g->nodes[root].name);
    mark_ancestors(g, root);
    for (int i = 0; i <= root; i++) {
        nb_node *n = &g->nodes[i];
        const nb_op_def *def = n->def;
        if (g->mark[i] && !nb_node_is_leaf(n) && n->requires_grad && !def->backward)
            return nb_error_set(err, NB_ENOGRAD, "%s '%s' has no gradient: %s", def->name,
                                n->name, def->no_grad_reason);
    }
    for (int i = 0; i <= root; i++)
        g->first_user[i] = -1;
    for (int i = 0; i <= root; i++) {
        nb_node *n = &g->nodes[i];
        if (g->mark[i] && !nb_node_is_leaf(n) && n->requires_grad)
            for (int k = 0; k < n->n_inputs; k++)
                g->first_user[n->inputs[k]] = i; /* the last one wins: backward's first */
    }
    for (int i = 0; i < root; i++) {
        nb_node *n = &g->nodes[i];
        n->grad_fresh = 0;
        if (!g->mark[i] || !n->requires_grad || (n->op == NB_OP_PARAM && !params_fresh))
            continue;
        int first = g->first_user[i];
        if (first >= 0 && g->nodes[first].def->writes_fresh)
            n->grad_fresh = 1;
        else
            memset(n->grad, 0, (size_t)nb_node_elems(n, g->batch) * sizeof(float));
    }
    nb_node *r = &g->nodes[root];
    r->grad_fresh = 0;
    size_t root_floats = (size_t)nb_node_elems(r, g->batch);
    if (seed)
        memcpy(r->grad, seed, root_floats * sizeof *seed);
    else
        for (size_t k = 0; k < root_floats; k++)
            r->grad[k] = 1.0f;
    for (int i = root; i >= 0; i--) {
        nb_node *n = &g->nodes[i];
        if (g->mark[i] && !nb_node_is_leaf(n) && n->requires_grad)
            n->def->backward(g, n, g->batch);
    }
    for (int i = 0; i < root; i++) {
        nb_node *n = &g->nodes[i];
        if (n->grad_fresh) {
            memset(n->grad, 0, (size_t)nb_node_elems(n, g->batch) * sizeof(float));
            n->grad_fresh = 0;
        }
    }
    if (params_fresh) /* parameters the root does not depend on */
        for (int p = 0; p < g->param_count; p++) {
            nb_node *n = &g->nodes[g->param_nodes[p]];
            if (g->param_nodes[p] > root || !g->mark[g->param_nodes[p]])
                memset(n->grad, 0, (size_t)n->size * sizeof(float));
        }
    return NB_OK;
}

nb_status nb_graph_backward(nb_graph *g, int root, const float *seed, nb_error *err)
{
    return backward(g, root, seed, 0, err);
}

nb_status nb_graph_backward_step(nb_graph *g, int root, const float *seed, nb_error *err)
{
    return backward(g, root, seed, 1, err);
}

void nb_graph_zero_grad(nb_graph *g)
{
    if (g->param_floats)
        memset(g->param_grads, 0, g->param_floats * sizeof *g->param_grads);
}
