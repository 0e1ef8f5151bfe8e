/* The memory plan for inference: a forward pass with no backward after it, so an activation
 * is needed only from the module that writes it to the last module that reads it, as in
 * PyTorch under no_grad (which frees each tensor after its last use) and in the arena
 * planners of TensorFlow Lite and ONNX Runtime (which lay them out ahead of time).
 *
 * 1. Liveness. The nodes computed are the outputs asked for and everything they depend on.
 *    Node i's value lives from the step that writes it (its own; a ReLU fused into its Linear
 *    is written by the Linear's step) to the last computed node that reads it; an output
 *    lives to the end, and so do the inputs (the caller fills them before the pass and may
 *    run it again on them). Scratch (aux) that only carries state to backward — max pooling's
 *    arg-max, dropout's mask, cross-entropy's softmax — is not allocated at all; other scratch
 *    (batch norm's statistics) lives for its own node's step only.
 * 2. In place. A module whose forward may write over its input (nb_op_def.in_place: ReLU,
 *    batch norm, dropout, …) and is the last reader of that input, of the same size, takes
 *    the input's memory: conv → batch norm → ReLU then holds one activation where the training
 *    plan holds three.
 * 3. Placement: greedy by size (TFLite's "greedy by size" arena planner): blocks are placed
 *    largest first, each at the lowest offset where it overlaps no already placed block that
 *    is alive at the same time. Offsets are whole cache lines.
 *
 * Every module computes what it computes in the training plan, from the same inputs, with
 * the same kernels: only where the numbers are stored differs, so the outputs are bit for bit
 * the same (tests/test_infer_plan.c checks). */
#include "core/graph.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum { ALIGN_FLOATS = 16 }; /* 64 bytes */

typedef struct block {
    size_t size, offset; /* floats */
    int first, last;     /* steps (node indices) during which it is alive, inclusive */
} block;

static size_t aligned(size_t floats)
{
    return (floats + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

static int by_size(const void *a, const void *b)
{
    const block *x = *(const block *const *)a, *y = *(const block *const *)b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return (x->first > y->first) - (x->first < y->first);
}

static int by_offset(const void *a, const void *b)
{
    const block *x = *(const block *const *)a, *y = *(const block *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* Greedy by size: returns the arena's floats; `order` and `near` are scratch of count
 * pointers each. */
static size_t place(block *blocks, int count, block **order, block **near)
{
    for (int b = 0; b < count; b++)
        order[b] = &blocks[b];
    qsort(order, (size_t)count, sizeof *order, by_size);
    size_t total = 0;
    for (int b = 0; b < count; b++) {
        block *x = order[b];
        int m = 0;
        for (int p = 0; p < b; p++) /* the placed blocks alive at the same time as x */
            if (order[p]->first <= x->last && x->first <= order[p]->last)
                near[m++] = order[p];
        qsort(near, (size_t)m, sizeof *near, by_offset);
        size_t at = 0;
        for (int p = 0; p < m && near[p]->offset < at + x->size; p++)
            if (near[p]->offset + near[p]->size > at)
                at = near[p]->offset + near[p]->size;
        x->offset = at;
        total = at + x->size > total ? at + x->size : total;
    }
    return total;
}

/* Whether node i may take input k's memory: it may write over it, it is its last reader, and
 * the two are the same size. */
static int takes_over(nb_graph *g, int i, int k, const int *last)
{
    const nb_node *n = &g->nodes[i], *x = nb_in(g, n, k);
    int xi = n->inputs[k];
    return (n->def->in_place >> k & 1u) && !n->fused && n->relu_out < 0 &&
           !nb_node_is_leaf(x) && g->kept[xi] != NB_INFER_OUTPUT && last[xi] == i &&
           x->batched == n->batched && x->size == n->size;
}

/* Values and scratch of the computed nodes as blocks (value_block[i], aux_block[i]; −1:
 * none), with the in-place hand-overs. Returns the number of blocks. */
static int make_blocks(nb_graph *g, int64_t batch, const int *start, const int *last,
                       int *value_block, int *aux_block, block *blocks)
{
    int count = 0;
    for (int i = 0; i < g->count; i++) {
        nb_node *n = &g->nodes[i];
        value_block[i] = aux_block[i] = -1;
        if (!g->kept[i] || (nb_node_is_leaf(n) && n->op != NB_OP_INPUT))
            continue;
        for (int k = 0; k < n->n_inputs && value_block[i] < 0; k++)
            if (takes_over(g, i, k, last)) {
                value_block[i] = value_block[n->inputs[k]];
                block *b = &blocks[value_block[i]];
                b->last = last[i] > b->last ? last[i] : b->last;
            }
        if (value_block[i] < 0) {
            value_block[i] = count;
            blocks[count++] = (block){.size = aligned((size_t)nb_node_elems(n, batch)),
                                      .first = start[i], .last = last[i]};
        }
        size_t aux = (size_t)batch * (size_t)n->aux_size + (size_t)n->aux_fixed;
        if (aux && !n->def->aux_for_backward) {
            aux_block[i] = count;
            blocks[count++] = (block){.size = aligned(aux), .first = start[i],
                                      .last = start[i]};
        }
    }
    return count;
}

/* kept[i]: which nodes the pass computes (ancestors of the outputs; a ReLU fused into a
 * computed Linear too, since the Linear writes it) and which are outputs. start[i] and
 * last[i]: the steps between which node i's value must stay. */
static void liveness(nb_graph *g, const int *outputs, int n_outputs, int *start, int *last)
{
    memset(g->mark, 0, (size_t)g->count);
    for (int o = 0; o < n_outputs; o++)
        g->mark[outputs[o]] = 1;
    nb_graph_mark_ancestors(g);
    for (int i = 0; i < g->count; i++)
        if (g->mark[i] && g->nodes[i].relu_out >= 0)
            g->mark[g->nodes[i].relu_out] = 1;
    for (int i = 0; i < g->count; i++) /* inputs always: the caller fills them */
        g->kept[i] = g->mark[i] || g->nodes[i].op == NB_OP_INPUT ? NB_INFER_COMPUTED
                                                                 : NB_INFER_SKIPPED;
    for (int o = 0; o < n_outputs; o++)
        g->kept[outputs[o]] = NB_INFER_OUTPUT;
    for (int i = 0; i < g->count; i++) {
        const nb_node *n = &g->nodes[i];
        start[i] = n->fused ? n->inputs[0] : i;
        last[i] = start[i];
        if (g->kept[i] == NB_INFER_OUTPUT || n->op == NB_OP_INPUT)
            last[i] = INT_MAX;
    }
    for (int i = 0; i < g->count; i++)
        for (int k = 0; g->kept[i] && k < g->nodes[i].n_inputs; k++) {
            int x = g->nodes[i].inputs[k];
            last[x] = i > last[x] ? i : last[x];
        }
}

nb_status nb_graph_prepare_inference(nb_graph *g, int64_t batch, const int *outputs,
                                     int n_outputs, nb_error *err)
{
    if (!g->error.code && (!outputs || n_outputs < 1))
        return nb_error_set(err, NB_EINVAL, "inference needs at least one output node");
    for (int o = 0; !g->error.code && o < n_outputs; o++)
        if (outputs[o] < 0 || outputs[o] >= g->count)
            return nb_error_set(err, NB_EINVAL, "output %d is not a node of the graph",
                                outputs[o]);
    nb_status s = nb_graph_plan_common(g, batch, err);
    if (s)
        return s;
    size_t n = (size_t)g->count;
    int *ints = malloc(4 * n * sizeof *ints);
    block *blocks = malloc(2 * n * sizeof *blocks);
    block **order = malloc(4 * n * sizeof *order);
    if (!ints || !blocks || !order) {
        free(ints), free(blocks), free(order);
        return nb_error_set(err, NB_ENOMEM, "out of memory planning inference");
    }
    int *start = ints, *last = ints + n, *value_block = ints + 2 * n, *aux_block = ints + 3 * n;
    liveness(g, outputs, n_outputs, start, last);
    int count = make_blocks(g, batch, start, last, value_block, aux_block, blocks);
    size_t floats = place(blocks, count, order, order + 2 * n);
    if ((s = nb_graph_grow(&g->arena, &g->arena_floats, floats, "activations", err))) {
        free(ints), free(blocks), free(order);
        return s;
    }
    for (int i = 0; i < g->count; i++) {
        nb_node *node = &g->nodes[i];
        if (nb_node_is_leaf(node) && node->op != NB_OP_INPUT)
            continue;
        node->grad = NULL; /* no backward */
        node->value = value_block[i] >= 0 ? g->arena + blocks[value_block[i]].offset : NULL;
        node->aux = aux_block[i] >= 0 ? g->arena + blocks[aux_block[i]].offset : NULL;
    }
    free(ints), free(blocks), free(order);
    if (floats) /* inputs and outputs read as zeros until written, as after nb_graph_prepare */
        memset(g->arena, 0, floats * sizeof *g->arena);
    g->inference = 1;
    g->batch = batch;
    return NB_OK;
}

int nb_graph_inference(const nb_graph *g)
{
    return g->batch && g->inference;
}
