/* Memory plans (lecture §3's forward and backward need storage for every activation): the
 * part every plan shares (plan_common: the gemm context, which gradients flow, the kernels'
 * workspace, labels, the fusion of Linear and ReLU), and the plan for training, where every
 * node's value, scratch and gradient has memory of its own for the whole step. The plan for
 * inference, which reuses memory along the forward pass: plan_inference.c. */
#include "backend/linear.h"
#include "core/graph.h"

#include <stdlib.h>
#include <string.h>

/* Linear followed by ReLU, when the ReLU is the Linear's only consumer: the Linear's forward
 * writes both outputs in one pass over its product while it is in cache (op_linear.c), and
 * the ReLU's forward has nothing left to do. Both outputs are still stored, so every node's
 * value is what it would be without the fusion; backward is unchanged. Only the library's own
 * modules are fused (a test may have swapped in another definition). */
static void plan_fusion(nb_graph *g)
{
    for (int i = 0; i < g->count; i++) {
        g->nodes[i].consumers = 0;
        g->nodes[i].relu_out = -1;
        g->nodes[i].fused = 0;
    }
    for (int i = 0; i < g->count; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            g->nodes[g->nodes[i].inputs[k]].consumers++;
    for (int i = 0; i < g->count; i++) {
        nb_node *r = &g->nodes[i];
        if (r->op != NB_OP_RELU || r->def != &nb_op_relu_def)
            continue;
        nb_node *lin = nb_in(g, r, 0);
        if (lin->op == NB_OP_LINEAR && lin->def == &nb_op_linear_def && lin->consumers == 1) {
            lin->relu_out = i;
            r->fused = 1;
        }
    }
}

nb_status nb_graph_grow(float **buf, size_t *floats, size_t need, const char *what,
                        nb_error *err)
{
    if (need <= *floats)
        return NB_OK;
    float *grown = realloc(*buf, need * sizeof *grown);
    if (!grown)
        return nb_error_set(err, NB_ENOMEM, "out of memory planning %zu MB of %s",
                            need * sizeof *grown >> 20, what);
    *buf = grown;
    *floats = need;
    return NB_OK;
}

nb_status nb_graph_node_scratch(nb_graph *g, nb_error *err)
{
    if (g->count + 1 <= g->mark_capacity)
        return NB_OK;
    char *mark = realloc(g->mark, (size_t)g->count + 1);
    if (mark)
        g->mark = mark;
    int *first = realloc(g->first_user, ((size_t)g->count + 1) * sizeof *first);
    if (first)
        g->first_user = first;
    char *kept = realloc(g->kept, (size_t)g->count + 1);
    if (kept)
        g->kept = kept;
    if (!mark || !first || !kept)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    g->mark_capacity = g->count + 1;
    return NB_OK;
}

nb_status nb_graph_plan_common(nb_graph *g, int64_t batch, nb_error *err)
{
    if (g->error.code)
        return nb_graph_error(g, err);
    if (batch < 1 || batch > ((int64_t)1 << 24))
        return nb_error_set(err, NB_EINVAL, "batch size %lld out of range (1 to 2^24)",
                            (long long)batch);
    if (!g->gemm) {
        g->gemm = nb_gemm_new(NB_GEMM_AUTO, 0, err);
        if (!g->gemm)
            return err ? err->code : NB_ENOMEM;
        g->owns_gemm = 1;
    }
    g->batch = 0; /* until the plan is complete */
    /* requires_grad flows forward from parameters and from inputs that ask for it */
    for (int i = 0; i < g->count; i++) {
        nb_node *n = &g->nodes[i];
        if (nb_node_is_leaf(n))
            continue;
        n->requires_grad = 0;
        for (int k = 0; k < n->n_inputs; k++)
            n->requires_grad |= nb_in(g, n, k)->requires_grad;
    }
    size_t labels = 0, workspace = 0;
    for (int i = 0; i < g->count; i++) {
        nb_node *n = &g->nodes[i];
        if (n->op == NB_OP_PARAM || n->op == NB_OP_BUFFER)
            continue;
        if (n->def->workspace) {
            size_t w = n->def->workspace(g, n, batch);
            workspace = w > workspace ? w : workspace;
        }
        if (n->op == NB_OP_LABELS) {
            n->value_offset = labels;
            labels += (size_t)batch;
        }
    }
    nb_status s = nb_graph_grow(&g->workspace, &g->workspace_floats, workspace, "scratch", err);
    if (s)
        return s;
    if (labels > g->label_floats) {
        int32_t *l = realloc(g->label_arena, labels * sizeof *l);
        if (!l)
            return nb_error_set(err, NB_ENOMEM, "out of memory for labels");
        g->label_arena = l;
        g->label_floats = labels;
    }
    if ((s = nb_graph_node_scratch(g, err)))
        return s;
    plan_fusion(g);
    for (int i = 0; i < g->count; i++) {
        nb_node *n = &g->nodes[i];
        if (n->op == NB_OP_PARAM) {
            n->value = g->params + n->param_offset;
            n->grad = g->param_grads + n->param_offset;
        } else if (n->op == NB_OP_BUFFER) {
            n->value = g->buffers + n->param_offset;
            n->grad = NULL;
        } else if (n->op == NB_OP_LABELS) {
            n->labels = g->label_arena + n->value_offset;
        }
    }
    if (labels)
        memset(g->label_arena, 0, labels * sizeof *g->label_arena);
    nb_linear_forget(g->gemm); /* the kernels' kept activations belong to the old plan */
    return NB_OK;
}

/* The plan for training: every node's value, scratch and gradient in memory of its own, all
 * kept from the forward to the backward (which reads them). */
nb_status nb_graph_prepare(nb_graph *g, int64_t batch, nb_error *err)
{
    nb_status s = nb_graph_plan_common(g, batch, err);
    if (s)
        return s;
    size_t floats = 0, grads = 0;
    for (int i = 0; i < g->count; i++) {
        nb_node *n = &g->nodes[i];
        size_t rows = n->batched ? (size_t)batch : 1;
        if (nb_node_is_leaf(n) && n->op != NB_OP_INPUT)
            continue; /* parameters, buffers, labels: planned above */
        n->value_offset = floats;
        floats += rows * (size_t)n->size;
        n->grad_offset = grads;
        grads += rows * (size_t)n->size;
        n->aux_offset = floats;
        floats += (size_t)batch * (size_t)n->aux_size + (size_t)n->aux_fixed; /* scratch */
    }
    if ((s = nb_graph_grow(&g->arena, &g->arena_floats, floats, "activations", err)))
        return s;
    if (grads > g->grad_arena_floats) {
        /* calloc, not realloc + memset: zeros without touching the pages (inference never
         * writes them); the old gradients are not kept, prepare zeroes them anyway */
        float *d = calloc(grads, sizeof *d);
        if (!d)
            return nb_error_set(err, NB_ENOMEM, "out of memory planning %zu MB of gradients",
                                grads * sizeof *d >> 20);
        free(g->grad_arena);
        g->grad_arena = d;
        g->grad_arena_floats = grads;
    } else if (grads) {
        memset(g->grad_arena, 0, grads * sizeof *g->grad_arena);
    }
    for (int i = 0; i < g->count; i++) {
        nb_node *n = &g->nodes[i];
        if (!nb_node_is_leaf(n) || n->op == NB_OP_INPUT) {
            n->value = g->arena + n->value_offset;
            n->grad = g->grad_arena + n->grad_offset;
            n->aux = g->arena + n->aux_offset;
        }
    }
    /* Fresh inputs hold zeros rather than garbage until the caller fills them. */
    if (floats) /* a graph of labels alone has no float arena at all */
        memset(g->arena, 0, floats * sizeof *g->arena);
    g->inference = 0;
    g->batch = batch;
    return NB_OK;
}
