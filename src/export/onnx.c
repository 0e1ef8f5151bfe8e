/* A model as an ONNX file (nb_export_onnx), encoded by libprotobuf-c with the ONNX schema
 * (src/export/onnx/onnx.proto, compiled by protoc-c at build time into the build folder).
 *
 * The graph, for a model whose input node is x and output node z:
 *
 *   input [N, dims…] ─Sub(mean)─Mul(inv)─▶ x ─ … one ONNX node per module … ─▶ z ─Softmax─▶ probabilities
 *
 * Normalisation x̂ = (x − mean) · inv is the library's own (inv = 1/max(std, eps) rounded to
 * float, data/dataset.c), so the ONNX model takes the raw inputs nabla predict takes. Modules:
 *
 *   linear        Gemm(x, W, b; transB = 1)          Y = X Wᵀ + b
 *   relu/tanh/sigmoid, add/max/mul                    Relu/Tanh/Sigmoid, Add/Max/Mul
 *   leaky_relu    LeakyRelu(x; alpha = slope)
 *   gelu          the exact form with Erf (ONNX's Gelu needs opset 20):
 *                 Mul(Mul(x, ½), Add(Erf(Mul(x, 1/√2)), 1))
 *   scale         Mul(x, [a])
 *   sum, mean     Flatten(axis 1) when needed, then MatMul(x, c) with a constant column c
 *                 [D, 1] of 1 (sum) or 1/D (mean)      [N, d…] → [N, 1]
 *   softmax, log_softmax   Softmax / LogSoftmax(axis −1)  (opset ≥ 13: over that axis alone,
 *                 as nabla's "over the last dimension")
 *   dropout       Identity (inference)
 *   flatten, reshape       Flatten(axis 1) / Reshape(x, [−1, d…])
 *   conv2d        Conv(x, W, b; kernel_shape, strides, pads [t, l, b, r], dilations, group)
 *   max_pool2d, avg_pool2d   MaxPool / AveragePool (count_include_pad as nabla's)
 *   global_avg_pool          GlobalAveragePool, then Flatten: [N, C, 1, 1] → [N, C]
 *   batch_norm    BatchNormalization(x, γ, β, running mean, running variance; epsilon)
 *   layer_norm    opset 17: LayerNormalization(x, γ, β; axis = −K, epsilon); opsets 13–16 (and
 *                 what OpenCV 4.6 runs): rows of D values, their mean and variance as MatMul
 *                 by a constant column of 1/D, (x − μ)/Sqrt(σ² + ε), then Mul γ, Add β
 *   nearest       refused: ONNX has no arg-min-distance module
 *
 * A classifier gets a second output, "probabilities" = Softmax(z); a regression model one
 * named "values" = z · σ + μ (Mul, Add: the targets' standardisation undone, as nabla
 * predict prints them; Identity when the targets were not standardised).
 *
 * Weights are referenced, not copied, until the message is packed. */
#include "export/plan.h"

#ifndef NB_HAVE_ONNX

int nb_export_onnx_available(void) { return 0; }

nb_status nb_export_onnx(nb_model *m, const char *path, int opset, nb_error *err)
{
    (void)m;
    (void)opset;
    return nb_error_set(err, NB_ENOTSUP, "%s: ONNX export is not built in (nabla was built "
                        "without libprotobuf-c and protoc-c)", path ? path : "ONNX");
}

#else

#include "export/onnx_build.h"

#include <stdlib.h>
#include <string.h>

int nb_export_onnx_available(void) { return 1; }

/* y = Flatten(x; axis 1): [N, d…] → [N, D]. */
static void flatten(nb_onnx_build *b, const char *y, const char *x)
{
    Onnx__NodeProto *n = nb_onnx_node(b, "Flatten", y, x, NULL, NULL);
    nb_onnx_add_attr(b, n, nb_onnx_attr_int(b, "axis", 1));
}

/* A one-float constant "<node>.<what>". */
static char *constant(nb_onnx_build *b, const char *node, const char *what, float v)
{
    int64_t one = 1;
    char *name = nb_onnx_derived(b, node, what);
    float *data = nb_onnx_grab(b, sizeof *data);
    if (data)
        *data = v;
    if (name && data)
        nb_onnx_initializer(b, name, 1, &one, data, NULL, 1);
    return name;
}

/* GELU as nabla computes it (op_activation.c): y = (x·½)·(1 + erf(x·(1/√2))). */
static void gelu(nb_onnx_build *b, const char *name, const char *y, const char *x)
{
    char *scaled = nb_onnx_derived(b, name, "scaled"), *erf = nb_onnx_derived(b, name, "erf");
    char *cdf2 = nb_onnx_derived(b, name, "cdf2"), *half_x = nb_onnx_derived(b, name, "half_x");
    nb_onnx_node(b, "Mul", scaled, x, constant(b, name, "rsqrt2", 0.70710678118654752440f), NULL);
    nb_onnx_node(b, "Erf", erf, scaled, NULL, NULL);
    nb_onnx_node(b, "Add", cdf2, erf, constant(b, name, "one", 1.0f), NULL);
    nb_onnx_node(b, "Mul", half_x, x, constant(b, name, "half", 0.5f), NULL);
    nb_onnx_node(b, "Mul", y, half_x, cdf2, NULL);
}

/* Layer norm over the last K = weight_ndim dimensions (op_layernorm.c). Below opset 17, as
 * rows of D values: μ = rows·c, σ² = (rows − μ)²·c with c the column [D, 1] of 1/D, μ and σ
 * spread over the row by MatMul with a row [1, D] of ones (OpenCV 4.6 does not broadcast
 * [.., D] against [.., 1]). */
static void layer_norm(nb_onnx_build *b, const nb_export_node *e, const char *y, const char *x)
{
    int K = e->weight_ndim;
    int64_t D = 1;
    for (int k = 0; k < K; k++)
        D *= e->weight_dims[k];
    char *w = nb_onnx_derived(b, e->name, "weight"), *bias = nb_onnx_derived(b, e->name, "bias");
    nb_onnx_initializer(b, w, K, e->weight_dims, e->weight, NULL, (size_t)D);
    nb_onnx_initializer(b, bias, K, e->weight_dims, e->bias, NULL, (size_t)D);
    if (b->opset >= 17) {
        Onnx__NodeProto *n = nb_onnx_node(b, "LayerNormalization", y, x, w, bias);
        nb_onnx_add_attr(b, n, nb_onnx_attr_int(b, "axis", -K));
        nb_onnx_add_attr(b, n, nb_onnx_attr_float(b, "epsilon", e->eps));
        return;
    }
    const char *rows = x;
    if (e->ndim > 1) { /* [N, d…] → [N, D], or [N, R, D] (OpenCV 4.6 mis-sizes [N·R, D]) */
        int64_t len = K == e->ndim ? 2 : 3, shape[3] = {-1, D, D};
        char *s = nb_onnx_derived(b, e->name, "rows_shape");
        if (len == 3)
            shape[1] = e->size / D;
        rows = nb_onnx_derived(b, e->name, "rows");
        nb_onnx_initializer(b, s, 1, &len, NULL, shape, (size_t)len);
        nb_onnx_node(b, "Reshape", rows, x, s, NULL);
    }
    int64_t cdims[2] = {D, 1}, rdims[2] = {1, D};
    float *column = nb_onnx_grab(b, (size_t)D * sizeof *column);
    float *ones = nb_onnx_grab(b, (size_t)D * sizeof *ones);
    char *c = nb_onnx_derived(b, e->name, "mean_weights"), *o = nb_onnx_derived(b, e->name, "ones");
    for (int64_t k = 0; column && ones && k < D; k++)
        column[k] = 1.0f / (float)D, ones[k] = 1.0f;
    if (column && ones) {
        nb_onnx_initializer(b, c, 2, cdims, column, NULL, (size_t)D);
        nb_onnx_initializer(b, o, 2, rdims, ones, NULL, (size_t)D);
    }
    char *mean = nb_onnx_derived(b, e->name, "mean"), *xc = nb_onnx_derived(b, e->name, "centred");
    char *sq = nb_onnx_derived(b, e->name, "squared"), *var = nb_onnx_derived(b, e->name, "var");
    char *ve = nb_onnx_derived(b, e->name, "var_eps"), *sd = nb_onnx_derived(b, e->name, "std");
    char *xhat = nb_onnx_derived(b, e->name, "normalised");
    char *mean_row = nb_onnx_derived(b, e->name, "mean_row");
    char *sd_row = nb_onnx_derived(b, e->name, "std_row");
    char *scaled = nb_onnx_derived(b, e->name, "scaled");
    nb_onnx_node(b, "MatMul", mean, rows, c, NULL);
    nb_onnx_node(b, "MatMul", mean_row, mean, o, NULL);
    nb_onnx_node(b, "Sub", xc, rows, mean_row, NULL);
    nb_onnx_node(b, "Mul", sq, xc, xc, NULL);
    nb_onnx_node(b, "MatMul", var, sq, c, NULL);
    nb_onnx_node(b, "Add", ve, var, constant(b, e->name, "eps", e->eps), NULL);
    nb_onnx_node(b, "Sqrt", sd, ve, NULL, NULL);
    nb_onnx_node(b, "MatMul", sd_row, sd, o, NULL);
    nb_onnx_node(b, "Div", xhat, xc, sd_row, NULL);
    if (e->ndim > 1) { /* back to [N, d…] */
        int64_t shape[NB_MAX_DIMS + 1] = {-1}, len = e->ndim + 1;
        memcpy(shape + 1, e->dims, (size_t)e->ndim * sizeof *shape);
        char *s = nb_onnx_derived(b, e->name, "shape");
        char *back = nb_onnx_derived(b, e->name, "normalised_shaped");
        nb_onnx_initializer(b, s, 1, &len, NULL, shape, (size_t)len);
        nb_onnx_node(b, "Reshape", back, xhat, s, NULL);
        xhat = back;
    }
    nb_onnx_node(b, "Mul", scaled, xhat, w, NULL);
    nb_onnx_node(b, "Add", y, scaled, bias, NULL);
}

/* Each module's ONNX nodes; NB_ENOTSUP for one ONNX lacks. */
static nb_status emit(nb_onnx_build *b, const nb_export_plan *p, int i, nb_error *err)
{
    const nb_export_node *e = &p->nodes[i];
    const char *y = b->names[i];
    const char *x = e->n_inputs > 0 ? b->names[e->inputs[0]] : NULL;
    const char *x2 = e->n_inputs > 1 ? b->names[e->inputs[1]] : NULL;
    Onnx__NodeProto *n;
    switch (e->op) {
    case NB_OP_LINEAR: {
        int64_t wd[2] = {e->rows, e->cols};
        char *w = nb_onnx_derived(b, e->name, "weight");
        char *bias = e->bias ? nb_onnx_derived(b, e->name, "bias") : NULL;
        nb_onnx_initializer(b, w, 2, wd, e->weight, NULL, (size_t)(e->rows * e->cols));
        if (bias)
            nb_onnx_initializer(b, bias, 1, wd, e->bias, NULL, (size_t)e->rows);
        n = nb_onnx_node(b, "Gemm", y, x, w, bias);
        nb_onnx_add_attr(b, n, nb_onnx_attr_int(b, "transB", 1));
        return NB_OK;
    }
    case NB_OP_RELU: nb_onnx_node(b, "Relu", y, x, NULL, NULL); return NB_OK;
    case NB_OP_TANH: nb_onnx_node(b, "Tanh", y, x, NULL, NULL); return NB_OK;
    case NB_OP_SIGMOID: nb_onnx_node(b, "Sigmoid", y, x, NULL, NULL); return NB_OK;
    case NB_OP_LEAKY_RELU:
        n = nb_onnx_node(b, "LeakyRelu", y, x, NULL, NULL);
        nb_onnx_add_attr(b, n, nb_onnx_attr_float(b, "alpha", e->factor));
        return NB_OK;
    case NB_OP_GELU: gelu(b, e->name, y, x); return NB_OK;
    case NB_OP_LAYER_NORM: layer_norm(b, e, y, x); return NB_OK;
    case NB_OP_ADD: nb_onnx_node(b, "Add", y, x, x2, NULL); return NB_OK;
    case NB_OP_MAX: nb_onnx_node(b, "Max", y, x, x2, NULL); return NB_OK;
    case NB_OP_MUL: nb_onnx_node(b, "Mul", y, x, x2, NULL); return NB_OK;
    case NB_OP_DROPOUT: nb_onnx_node(b, "Identity", y, x, NULL, NULL); return NB_OK;
    case NB_OP_SCALE: {
        int64_t one = 1;
        char *a = nb_onnx_derived(b, e->name, "factor");
        nb_onnx_initializer(b, a, 1, &one, &e->factor, NULL, 1);
        nb_onnx_node(b, "Mul", y, x, a, NULL);
        return NB_OK;
    }
    case NB_OP_SUM:
    case NB_OP_MEAN: {
        const nb_export_node *in = &p->nodes[e->inputs[0]];
        const char *flat = x;
        if (in->ndim > 1) {
            flat = nb_onnx_derived(b, e->name, "flat");
            flatten(b, flat, x);
        }
        /* Σ_i x_i = x · 1 and (1/D) Σ_i x_i = x · (1/D) with a constant column [D, 1]: opset
         * 13's ReduceSum takes its axes as an input, which OpenCV 4.6 does not read, and its
         * ReduceMean mis-shapes a [N, D] input */
        int64_t D = p->nodes[e->inputs[0]].size, dims[2] = {D, 1};
        float *column = nb_onnx_grab(b, (size_t)D * sizeof *column);
        float value = e->op == NB_OP_SUM ? 1.0f : 1.0f / (float)D; /* as op_reduce.c */
        char *w = nb_onnx_derived(b, e->name, e->op == NB_OP_SUM ? "ones" : "weights");
        for (int64_t k = 0; column && k < D; k++)
            column[k] = value;
        if (column)
            nb_onnx_initializer(b, w, 2, dims, column, NULL, (size_t)D);
        nb_onnx_node(b, "MatMul", y, flat, w, NULL);
        return NB_OK;
    }
    case NB_OP_SOFTMAX:
    case NB_OP_LOG_SOFTMAX:
        n = nb_onnx_node(b, e->op == NB_OP_SOFTMAX ? "Softmax" : "LogSoftmax", y, x, NULL, NULL);
        nb_onnx_add_attr(b, n, nb_onnx_attr_int(b, "axis", -1));
        return NB_OK;
    case NB_OP_RESHAPE:
        if (e->ndim == 1) {
            flatten(b, y, x);
        } else {
            int64_t shape[NB_MAX_DIMS + 1] = {-1}, len = e->ndim + 1;
            memcpy(shape + 1, e->dims, (size_t)e->ndim * sizeof *shape);
            char *s = nb_onnx_derived(b, e->name, "shape");
            nb_onnx_initializer(b, s, 1, &len, NULL, shape, (size_t)len);
            nb_onnx_node(b, "Reshape", y, x, s, NULL);
        }
        return NB_OK;
    case NB_OP_CONV2D:
    case NB_OP_MAX_POOL2D:
    case NB_OP_AVG_POOL2D: {
        int64_t kernel[2] = {e->kh, e->kw}, strides[2] = {e->sh, e->sw};
        int64_t pads[4] = {e->pt, e->pl, e->pb, e->pr}, dil[2] = {e->dh, e->dw};
        if (e->op == NB_OP_CONV2D) {
            char *w = nb_onnx_derived(b, e->name, "weight");
            char *bias = e->bias ? nb_onnx_derived(b, e->name, "bias") : NULL;
            nb_onnx_initializer(b, w, e->weight_ndim, e->weight_dims, e->weight, NULL,
                                (size_t)(e->rows * e->cols));
            if (bias)
                nb_onnx_initializer(b, bias, 1, e->weight_dims, e->bias, NULL, (size_t)e->rows);
            n = nb_onnx_node(b, "Conv", y, x, w, bias);
            nb_onnx_add_attr(b, n, nb_onnx_attr_ints(b, "dilations", 2, dil));
            nb_onnx_add_attr(b, n, nb_onnx_attr_int(b, "group", e->groups));
        } else {
            n = nb_onnx_node(b, e->op == NB_OP_MAX_POOL2D ? "MaxPool" : "AveragePool", y, x, NULL,
                             NULL);
            if (e->op == NB_OP_AVG_POOL2D)
                nb_onnx_add_attr(b, n, nb_onnx_attr_int(b, "count_include_pad", e->include_pad));
        }
        nb_onnx_add_attr(b, n, nb_onnx_attr_ints(b, "kernel_shape", 2, kernel));
        nb_onnx_add_attr(b, n, nb_onnx_attr_ints(b, "strides", 2, strides));
        nb_onnx_add_attr(b, n, nb_onnx_attr_ints(b, "pads", 4, pads));
        return NB_OK;
    }
    case NB_OP_GLOBAL_AVG_POOL: { /* ONNX keeps [N, C, 1, 1]; nabla's is [N, C] */
        char *pooled = nb_onnx_derived(b, e->name, "pooled");
        nb_onnx_node(b, "GlobalAveragePool", pooled, x, NULL, NULL);
        flatten(b, y, pooled);
        return NB_OK;
    }
    case NB_OP_BATCH_NORM: { /* evaluation: the running statistics */
        const char *what[4] = {"weight", "bias", "running_mean", "running_var"};
        const float *data[4] = {e->weight, e->bias, e->mean, e->var};
        char *names[4];
        for (int k = 0; k < 4; k++) {
            names[k] = nb_onnx_derived(b, e->name, what[k]);
            nb_onnx_initializer(b, names[k], 1, e->dims, data[k], NULL, (size_t)e->dims[0]);
        }
        n = nb_onnx_node(b, "BatchNormalization", y, x, names[0], names[1]);
        if (n) { /* five inputs */
            char **inputs = nb_onnx_grab(b, 5 * sizeof *inputs);
            if (inputs) {
                memcpy(inputs, n->input, 3 * sizeof *inputs);
                inputs[3] = names[2];
                inputs[4] = names[3];
                n->input = inputs;
                n->n_input = 5;
            }
        }
        nb_onnx_add_attr(b, n, nb_onnx_attr_float(b, "epsilon", e->eps));
        return NB_OK;
    }
    default:
        return nb_error_set(err, NB_ENOTSUP, "ONNX export: node '%s' is %s, which has no ONNX "
                            "equivalent%s", e->name, nb_op_name(e->op),
                            e->op == NB_OP_NEAREST ? " (export it with --format c instead)" : "");
    }
}

/* Value names: node names, except where one would take a name the graph reserves. */
static int name_taken(const nb_onnx_build *b, int upto, const char *s)
{
    if (strcmp(s, "input") == 0 || strcmp(s, "probabilities") == 0 ||
        strncmp(s, "input.", 6) == 0 || strcmp(s, "values") == 0 || strncmp(s, "values.", 7) == 0)
        return 1;
    for (int j = 0; j < upto; j++)
        if (strcmp(b->names[j], s) == 0)
            return 1;
    return 0;
}

static nb_status build_graph(nb_onnx_build *b, const nb_export_plan *p, nb_error *err)
{
    b->names = nb_onnx_grab(b, (size_t)p->count * sizeof *b->names);
    for (int i = 0; b->names && i < p->count; i++) {
        size_t len = strlen(p->nodes[i].name) + 16;
        if (!(b->names[i] = nb_onnx_grab(b, len)))
            break;
        snprintf(b->names[i], len, "%s", p->nodes[i].name);
        for (int k = 1; name_taken(b, i, b->names[i]); k++)
            snprintf(b->names[i], len, "%s_%d", p->nodes[i].name, k);
    }
    if (b->oom)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    Onnx__GraphProto *g = b->graph;
    const nb_export_node *in = &p->nodes[0];
    Onnx__ValueInfoProto **gin = nb_onnx_grab(b, sizeof *gin);
    Onnx__ValueInfoProto **gout = nb_onnx_grab(b, 3 * sizeof *gout);
    if (!gin || !gout)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    gin[0] = nb_onnx_value_info(b, "input", in->ndim, in->dims);
    g->n_input = 1;
    g->input = gin;
    const nb_norm *norm = p->norm;
    if (norm->mode != NB_NORM_NONE && norm->size > 0) {
        /* per feature, shaped like a sample: broadcast over the batch */
        int64_t F = p->features, block = F / norm->size;
        float *mean = nb_onnx_grab(b, (size_t)F * sizeof *mean);
        float *inv = nb_onnx_grab(b, (size_t)F * sizeof *inv);
        if (!mean || !inv)
            return nb_error_set(err, NB_ENOMEM, "out of memory");
        for (int64_t f = 0; f < F; f++) {
            mean[f] = norm->mean[f / block];
            inv[f] = nb_export_norm_inv(norm, f / block);
        }
        nb_onnx_initializer(b, "input.mean", in->ndim, in->dims, mean, NULL, (size_t)F);
        nb_onnx_initializer(b, "input.inv", in->ndim, in->dims, inv, NULL, (size_t)F);
        nb_onnx_node(b, "Sub", "input.centred", "input", "input.mean", NULL);
        nb_onnx_node(b, "Mul", b->names[0], "input.centred", "input.inv", NULL);
    } else {
        nb_onnx_node(b, "Identity", b->names[0], "input", NULL, NULL);
    }
    for (int i = 1; i < p->count; i++) {
        nb_status s = emit(b, p, i, err);
        if (s)
            return s;
    }
    const nb_export_node *out = &p->nodes[p->output];
    gout[0] = nb_onnx_value_info(b, b->names[p->output], out->ndim, out->dims);
    g->n_output = 1;
    if (p->classifier) { /* what nabla predict prints: softmax over all of a sample's outputs */
        const char *z = b->names[p->output];
        if (out->ndim > 1) {
            z = nb_onnx_derived(b, z, "flat");
            flatten(b, z, b->names[p->output]);
        }
        nb_onnx_add_attr(b, nb_onnx_node(b, "Softmax", "probabilities", z, NULL, NULL),
                         nb_onnx_attr_int(b, "axis", -1));
        gout[g->n_output++] = nb_onnx_value_info(b, "probabilities", 1, &p->outputs);
    }
    if (p->regression) { /* what nabla predict prints: y·σ + μ, the targets' own units */
        float *scale = nb_onnx_grab(b, (size_t)p->outputs * sizeof *scale);
        float *shift = nb_onnx_grab(b, (size_t)p->outputs * sizeof *shift);
        if (!scale || !shift)
            return nb_error_set(err, NB_ENOMEM, "out of memory");
        if (nb_export_target_affine(p, scale, shift)) {
            size_t n = (size_t)p->outputs;
            nb_onnx_initializer(b, "values.scale", out->ndim, out->dims, scale, NULL, n);
            nb_onnx_initializer(b, "values.shift", out->ndim, out->dims, shift, NULL, n);
            nb_onnx_node(b, "Mul", "values.scaled", b->names[p->output], "values.scale", NULL);
            nb_onnx_node(b, "Add", "values", "values.scaled", "values.shift", NULL);
        } else {
            nb_onnx_node(b, "Identity", "values", b->names[p->output], NULL, NULL);
        }
        gout[g->n_output++] = nb_onnx_value_info(b, "values", out->ndim, out->dims);
    }
    g->output = gout;
    return b->oom ? nb_error_set(err, NB_ENOMEM, "out of memory") : NB_OK;
}

static void metadata(nb_onnx_build *b, Onnx__ModelProto *model, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = nb_onnx_grab(b, sizeof *e);
    Onnx__StringStringEntryProto **list =
        nb_onnx_grab(b, (model->n_metadata_props + 1) * sizeof *list);
    if (!e || !list)
        return;
    onnx__string_string_entry_proto__init(e);
    e->key = nb_onnx_text(b, key);
    e->value = nb_onnx_text(b, value);
    if (model->n_metadata_props)
        memcpy(list, model->metadata_props, model->n_metadata_props * sizeof *list);
    list[model->n_metadata_props++] = e;
    model->metadata_props = list;
}

nb_status nb_export_onnx(nb_model *m, const char *path, int opset, nb_error *err)
{
    if (opset == 0)
        opset = 13;
    if (opset < 13 || opset > 17)
        return nb_error_set(err, NB_EINVAL, "ONNX export: opset %d: expected 13 to 17", opset);
    nb_export_plan plan;
    nb_status s = nb_export_plan_make(m, "ONNX", &plan, err);
    if (s)
        return s;
    nb_onnx_build b = {.opset = opset};
    Onnx__ModelProto model;
    Onnx__OperatorSetIdProto ops, *ops_list[1] = {&ops};
    onnx__model_proto__init(&model);
    onnx__operator_set_id_proto__init(&ops);
    ops.domain = "";
    ops.has_version = 1;
    ops.version = opset;
    model.has_ir_version = 1;
    model.ir_version = opset >= 15 ? 8 : 7; /* the IR version that introduced the opset */
    model.n_opset_import = 1;
    model.opset_import = ops_list;
    model.producer_name = "nabla";
    model.producer_version = NB_VERSION;
    if ((b.graph = nb_onnx_grab(&b, sizeof *b.graph))) {
        onnx__graph_proto__init(b.graph);
        b.graph->name = "nabla";
        model.graph = b.graph;
        s = build_graph(&b, &plan, err);
    } else
        s = nb_error_set(err, NB_ENOMEM, "out of memory");
    if (!s) {
        metadata(&b, &model, "nabla.version", NB_VERSION);
        metadata(&b, &model, "nabla.description", nb_model_description(m));
        if (plan.classes)
            metadata(&b, &model, "nabla.classes", plan.classes);
        if (plan.target_names)
            metadata(&b, &model, "nabla.targets", plan.target_names);
    }
    uint8_t *data = NULL;
    size_t size = 0;
    if (!s && !b.oom) {
        size = onnx__model_proto__get_packed_size(&model);
        if ((data = malloc(size ? size : 1)))
            onnx__model_proto__pack(&model, data);
    }
    if (!s && (b.oom || !data))
        s = nb_error_set(err, NB_ENOMEM, "out of memory");
    nb_atomic_file *af = s ? NULL : nb_atomic_open(path, err);
    if (!s && !af)
        s = err ? err->code : NB_EIO;
    if (af && !(s = nb_atomic_write(af, data, size, err)))
        s = nb_atomic_commit(af, err);
    else
        nb_atomic_abort(af);
    free(data);
    nb_onnx_build_free(&b);
    nb_export_plan_free(&plan);
    return s;
}

#endif
