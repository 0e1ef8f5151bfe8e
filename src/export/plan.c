/* The part of a model that an exporter writes: the nodes the output depends on, from the input
 * onwards, in the graph's topological order, with what each module needs to be recomputed
 * elsewhere (shapes, factors, weights). Losses, labels and nodes off the path are dropped. */
#include "export/plan.h"
#include "core/graph.h"
#include "ops/window.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

nb_status nb_export_write(const char *path, int (*fill)(FILE *f, void *ctx), void *ctx,
                          nb_error *err)
{
    char *data = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&data, &size);
    int failed = !f || fill(f, ctx) != 0 || ferror(f);
    if (f && fclose(f) != 0)
        failed = 1;
    if (failed) {
        free(data);
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    }
    nb_atomic_file *af = nb_atomic_open(path, err);
    nb_status s = af ? nb_atomic_write(af, data, size, err) : (err ? err->code : NB_EIO);
    if (af && !s)
        s = nb_atomic_commit(af, err);
    else
        nb_atomic_abort(af);
    free(data);
    return s;
}

float nb_export_norm_inv(const nb_norm *norm, int64_t slot)
{
    float d = norm->std[slot] > norm->eps ? norm->std[slot] : norm->eps;
    return d > 0 ? 1.0f / d : 1.0f; /* as nb_dataset_gather */
}

int nb_export_target_affine(const nb_export_plan *plan, float *scale, float *shift)
{
    const nb_norm *t = plan->target_norm;
    if (!t || t->mode == NB_NORM_NONE || t->size <= 0)
        return 0;
    int64_t per_slot = plan->outputs / t->size;
    for (int64_t j = 0; j < plan->outputs; j++) {
        int64_t k = j / per_slot;
        float d = t->std[k] > t->eps ? t->std[k] : t->eps;
        scale[j] = d > 0 ? d : 1.0f;
        shift[j] = t->mean[k];
    }
    return 1;
}

void nb_export_plan_free(nb_export_plan *plan)
{
    if (!plan)
        return;
    free(plan->nodes);
    memset(plan, 0, sizeof *plan);
}

nb_status nb_export_plan_make(nb_model *m, const char *format, nb_export_plan *plan,
                              nb_error *err)
{
    memset(plan, 0, sizeof *plan);
    nb_graph *g = nb_model_graph(m);
    int count = g->count, input = nb_model_input(m), output = nb_model_output(m);
    if (!g->nodes[output].batched)
        return nb_error_set(err, NB_ENOTSUP, "%s export: the model's output '%s' does not "
                            "depend on its input", format, g->nodes[output].name);
    /* needed[i]: node i feeds the output; index[i]: its position in the plan */
    int *index = malloc((size_t)count * sizeof *index);
    char *needed = calloc((size_t)count, 1);
    if (!index || !needed) {
        free(index);
        free(needed);
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    }
    needed[output] = 1;
    for (int i = output; i >= 0; i--) /* inputs precede their consumers */
        for (int k = 0; needed[i] && k < g->nodes[i].n_inputs; k++)
            needed[g->nodes[i].inputs[k]] = 1;
    nb_status s = NB_OK;
    int n = 0;
    for (int i = 0; i <= output; i++) {
        const nb_node *node = &g->nodes[i];
        if (!needed[i] || node->op == NB_OP_PARAM || node->op == NB_OP_BUFFER)
            continue;
        if (node->op == NB_OP_INPUT && i != input)
            s = nb_error_set(err, NB_ENOTSUP, "%s export: the output depends on a second input "
                             "'%s'; an exported model takes one", format, node->name);
        if (node->size > INT_MAX / 2)
            s = nb_error_set(err, NB_ENOTSUP, "%s export: node '%s' holds %lld floats per sample, "
                             "more than an exported model supports (2^30)", format, node->name,
                             (long long)node->size);
        n++;
    }
    nb_export_node *nodes = s ? NULL : calloc((size_t)n + 1, sizeof *nodes);
    if (!s && !nodes)
        s = nb_error_set(err, NB_ENOMEM, "out of memory");
    n = 0;
    for (int i = 0; !s && i <= output; i++) {
        const nb_node *node = &g->nodes[i];
        if (!needed[i] || node->op == NB_OP_PARAM || node->op == NB_OP_BUFFER)
            continue;
        nb_export_node *e = &nodes[n];
        index[i] = n;
        e->node = i;
        e->op = node->op;
        e->name = node->name;
        e->ndim = node->ndim;
        memcpy(e->dims, node->dims, sizeof e->dims);
        e->size = node->size;
        e->factor = node->fparam;
        e->last_use = n;
        if (node->op == NB_OP_CONV2D || node->op == NB_OP_MAX_POOL2D ||
            node->op == NB_OP_AVG_POOL2D) {
            const int64_t *w = node->ints;
            e->kh = w[CONV_KH], e->kw = w[CONV_KW], e->sh = w[CONV_SH], e->sw = w[CONV_SW];
            e->pt = w[CONV_PT], e->pl = w[CONV_PL], e->pb = w[CONV_PB], e->pr = w[CONV_PR];
            e->dh = w[CONV_DH], e->dw = w[CONV_DW], e->groups = w[CONV_GROUPS];
            e->include_pad = node->op == NB_OP_AVG_POOL2D && w[POOL_INCLUDE_PAD];
        }
        e->eps = node->op == NB_OP_LAYER_NORM ? node->fparam : node->fparam2;
        int owns_data = node->op == NB_OP_LINEAR || node->op == NB_OP_NEAREST ||
                        node->op == NB_OP_CONV2D || node->op == NB_OP_BATCH_NORM ||
                        node->op == NB_OP_LAYER_NORM;
        for (int k = 0; k < node->n_inputs; k++) {
            int h = node->inputs[k];
            const nb_node *in = &g->nodes[h];
            if (in->op == NB_OP_PARAM || in->op == NB_OP_BUFFER) {
                /* weights and running statistics, at fixed input positions */
                const float *v = nb_value(g, h);
                if (!owns_data || k == 0)
                    s = nb_error_set(err, NB_ENOTSUP, "%s export: '%s' (%s) takes the parameter "
                                     "'%s' as an input; only linear, conv2d, batch_norm, "
                                     "layer_norm and nearest own parameters in an exported "
                                     "model", format,
                                     node->name, nb_op_name(node->op), in->name);
                else if (k == 1) {
                    e->weight = v;
                    e->weight_ndim = in->ndim;
                    memcpy(e->weight_dims, in->dims, sizeof e->weight_dims);
                    e->rows = in->dims[0];
                    e->cols = in->size / (in->dims[0] ? in->dims[0] : 1);
                } else if (k == 2)
                    e->bias = v;
                else if (k == 3)
                    e->mean = v;
                else if (k == 4)
                    e->var = v;
            } else if (e->n_inputs < 2) {
                int j = index[h];
                e->inputs[e->n_inputs++] = j;
                nodes[j].consumers++;
                nodes[j].last_use = n;
            }
        }
        n++;
    }
    free(index);
    free(needed);
    if (!s && nodes[0].op != NB_OP_INPUT)
        s = nb_error_set(err, NB_ENOTSUP, "%s export: '%s' does not depend on the model's "
                         "input", format, nodes[0].name);
    if (s) {
        free(nodes);
        return s;
    }
    plan->nodes = nodes;
    plan->count = n;
    plan->output = n - 1;
    plan->norm = nb_model_norm(m);
    plan->classes = nb_model_classes_text(m);
    plan->classifier = nb_model_labels(m) >= 0;
    plan->regression = nb_model_targets(m) >= 0;
    if (plan->regression) {
        const nb_norm *t = nb_model_target_norm(m);
        plan->target_norm = t->mode != NB_NORM_NONE && t->size > 0 ? t : NULL;
        plan->target_names = nb_model_target_names_text(m);
    }
    plan->features = nb_model_features(m);
    plan->outputs = nodes[n - 1].size;
    return NB_OK;
}
