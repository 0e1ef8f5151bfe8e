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

#include "onnx.pb-c.h"

#include <stdlib.h>
#include <string.h>

int nb_export_onnx_available(void) { return 1; }

/* Everything the message points to is allocated from one list, freed together. */
typedef struct onnx_build {
    void **blocks;
    size_t count, capacity;
    int oom;
    Onnx__GraphProto *graph;
    size_t nodes_cap, inits_cap;
    int opset;
    char **names;              /* per plan node: its value's name */
} onnx_build;

static void *grab(onnx_build *b, size_t size)
{
    if (b->count == b->capacity) {
        size_t cap = b->capacity ? 2 * b->capacity : 64;
        void **blocks = realloc(b->blocks, cap * sizeof *blocks);
        if (!blocks) {
            b->oom = 1;
            return NULL;
        }
        b->blocks = blocks;
        b->capacity = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (!p) {
        b->oom = 1;
        return NULL;
    }
    return b->blocks[b->count++] = p;
}

static char *text(onnx_build *b, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = grab(b, n);
    return d ? memcpy(d, s, n) : NULL;
}

/* Appends p to the graph's nodes or initializers, whose arrays grow by doubling. */
static void *grow(onnx_build *b, void *items, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return items;
    size_t c = *cap ? 2 * *cap : 16;
    void *grown = grab(b, c * elem);
    if (!grown)
        return NULL;
    if (n)
        memcpy(grown, items, n * elem);
    *cap = c;
    return grown;
}

static void push_node(onnx_build *b, Onnx__NodeProto *n)
{
    Onnx__GraphProto *g = b->graph;
    Onnx__NodeProto **list = n ? grow(b, g->node, g->n_node, &b->nodes_cap, sizeof *list) : NULL;
    if (list) {
        list[g->n_node++] = n;
        g->node = list;
    }
}

static void push_initializer(onnx_build *b, Onnx__TensorProto *t)
{
    Onnx__GraphProto *g = b->graph;
    Onnx__TensorProto **list =
        t ? grow(b, g->initializer, g->n_initializer, &b->inits_cap, sizeof *list) : NULL;
    if (list) {
        list[g->n_initializer++] = t;
        g->initializer = list;
    }
}

/* An attribute of the given type; the caller sets its value. */
static Onnx__AttributeProto *attr(onnx_build *b, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = grab(b, sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = text(b, name);
    a->has_type = 1;
    a->type = type;
    return a;
}

static Onnx__AttributeProto *attr_int(onnx_build *b, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->has_i = 1;
        a->i = v;
    }
    return a;
}

static Onnx__AttributeProto *attr_ints(onnx_build *b, const char *name, int n,
                                       const int64_t *v)
{
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *ints = grab(b, (size_t)n * sizeof *ints);
    if (!a || !ints)
        return NULL;
    memcpy(ints, v, (size_t)n * sizeof *ints);
    a->n_ints = (size_t)n;
    a->ints = ints;
    return a;
}

static Onnx__AttributeProto *attr_float(onnx_build *b, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->has_f = 1;
        a->f = v;
    }
    return a;
}

/* A node op_type(inputs…) → output, named after its output; attributes may follow. */
static Onnx__NodeProto *node(onnx_build *b, const char *op_type, const char *output,
                             const char *in0, const char *in1, const char *in2)
{
    Onnx__NodeProto *n = grab(b, sizeof *n);
    char **inputs = grab(b, 3 * sizeof *inputs), **outputs = grab(b, sizeof *outputs);
    if (!n || !inputs || !outputs)
        return NULL;
    onnx__node_proto__init(n);
    const char *in[3] = {in0, in1, in2};
    for (int k = 0; k < 3 && in[k]; k++)
        inputs[n->n_input++] = text(b, in[k]);
    n->input = inputs;
    outputs[0] = text(b, output);
    n->n_output = 1;
    n->output = outputs;
    n->name = text(b, output);
    n->op_type = text(b, op_type);
    push_node(b, n);
    return n;
}

static void add_attr(onnx_build *b, Onnx__NodeProto *n, Onnx__AttributeProto *a)
{
    if (!n || !a)
        return;
    Onnx__AttributeProto **list = grab(b, (n->n_attribute + 1) * sizeof *list);
    if (!list)
        return;
    if (n->n_attribute)
        memcpy(list, n->attribute, n->n_attribute * sizeof *list);
    list[n->n_attribute++] = a;
    n->attribute = list;
}

/* An initializer: float data (referenced) or int64 data (copied), with dims. */
static void initializer(onnx_build *b, const char *name, int ndim, const int64_t *dims,
                        const float *f, const int64_t *i64, size_t count)
{
    Onnx__TensorProto *t = grab(b, sizeof *t);
    int64_t *d = grab(b, (size_t)(ndim ? ndim : 1) * sizeof *d);
    if (!t || !d)
        return;
    onnx__tensor_proto__init(t);
    t->name = text(b, name);
    memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    if (f) {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->n_float_data = count;
        t->float_data = (float *)f; /* only read while packing */
    } else {
        int64_t *v = grab(b, count * sizeof *v);
        if (!v)
            return;
        memcpy(v, i64, count * sizeof *v);
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        t->n_int64_data = count;
        t->int64_data = v;
    }
    push_initializer(b, t);
}

/* A float tensor value [N, dims…] with a symbolic batch dimension N. */
static Onnx__ValueInfoProto *value_info(onnx_build *b, const char *name, int ndim,
                                        const int64_t *dims)
{
    Onnx__ValueInfoProto *v = grab(b, sizeof *v);
    Onnx__TypeProto *type = grab(b, sizeof *type);
    Onnx__TypeProto__Tensor *tensor = grab(b, sizeof *tensor);
    Onnx__TensorShapeProto *shape = grab(b, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dim = grab(b, (size_t)(ndim + 1) * sizeof *dim);
    if (!v || !type || !tensor || !shape || !dim)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tensor);
    onnx__tensor_shape_proto__init(shape);
    for (int k = 0; k <= ndim; k++) {
        if (!(dim[k] = grab(b, sizeof *dim[k])))
            return NULL;
        onnx__tensor_shape_proto__dimension__init(dim[k]);
        if (k == 0) {
            dim[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim[k]->dim_param = text(b, "N");
        } else {
            dim[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim[k]->dim_value = dims[k - 1];
        }
    }
    shape->n_dim = (size_t)ndim + 1;
    shape->dim = dim;
    tensor->has_elem_type = 1;
    tensor->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tensor->shape = shape;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    v->name = text(b, name);
    v->type = type;
    return v;
}

/* "<node>.<what>", the name of an initializer or intermediate value of a module. */
static char *derived(onnx_build *b, const char *name, const char *what)
{
    size_t n = strlen(name) + strlen(what) + 2;
    char *s = grab(b, n);
    if (s)
        snprintf(s, n, "%s.%s", name, what);
    return s;
}

/* Each module's ONNX nodes; NB_ENOTSUP for one ONNX lacks. */
static nb_status emit(onnx_build *b, const nb_export_plan *p, int i, nb_error *err)
{
    const nb_export_node *e = &p->nodes[i];
    const char *y = b->names[i];
    const char *x = e->n_inputs > 0 ? b->names[e->inputs[0]] : NULL;
    const char *x2 = e->n_inputs > 1 ? b->names[e->inputs[1]] : NULL;
    Onnx__NodeProto *n;
    switch (e->op) {
    case NB_OP_LINEAR: {
        int64_t wd[2] = {e->rows, e->cols};
        char *w = derived(b, e->name, "weight"), *bias = e->bias ? derived(b, e->name, "bias") : NULL;
        initializer(b, w, 2, wd, e->weight, NULL, (size_t)(e->rows * e->cols));
        if (bias)
            initializer(b, bias, 1, wd, e->bias, NULL, (size_t)e->rows);
        n = node(b, "Gemm", y, x, w, bias);
        add_attr(b, n, attr_int(b, "transB", 1));
        return NB_OK;
    }
    case NB_OP_RELU: node(b, "Relu", y, x, NULL, NULL); return NB_OK;
    case NB_OP_TANH: node(b, "Tanh", y, x, NULL, NULL); return NB_OK;
    case NB_OP_SIGMOID: node(b, "Sigmoid", y, x, NULL, NULL); return NB_OK;
    case NB_OP_ADD: node(b, "Add", y, x, x2, NULL); return NB_OK;
    case NB_OP_MAX: node(b, "Max", y, x, x2, NULL); return NB_OK;
    case NB_OP_MUL: node(b, "Mul", y, x, x2, NULL); return NB_OK;
    case NB_OP_DROPOUT: node(b, "Identity", y, x, NULL, NULL); return NB_OK;
    case NB_OP_SCALE: {
        int64_t one = 1;
        char *a = derived(b, e->name, "factor");
        initializer(b, a, 1, &one, &e->factor, NULL, 1);
        node(b, "Mul", y, x, a, NULL);
        return NB_OK;
    }
    case NB_OP_SUM:
    case NB_OP_MEAN: {
        const nb_export_node *in = &p->nodes[e->inputs[0]];
        const char *flat = x;
        if (in->ndim > 1) {
            flat = derived(b, e->name, "flat");
            add_attr(b, node(b, "Flatten", flat, x, NULL, NULL), attr_int(b, "axis", 1));
        }
        /* Σ_i x_i = x · 1 and (1/D) Σ_i x_i = x · (1/D) with a constant column [D, 1]: opset
         * 13's ReduceSum takes its axes as an input, which OpenCV 4.6 does not read, and its
         * ReduceMean mis-shapes a [N, D] input */
        int64_t D = p->nodes[e->inputs[0]].size, dims[2] = {D, 1};
        float *column = grab(b, (size_t)D * sizeof *column);
        float value = e->op == NB_OP_SUM ? 1.0f : 1.0f / (float)D; /* as op_reduce.c */
        char *w = derived(b, e->name, e->op == NB_OP_SUM ? "ones" : "weights");
        for (int64_t k = 0; column && k < D; k++)
            column[k] = value;
        if (column)
            initializer(b, w, 2, dims, column, NULL, (size_t)D);
        node(b, "MatMul", y, flat, w, NULL);
        return NB_OK;
    }
    case NB_OP_SOFTMAX:
    case NB_OP_LOG_SOFTMAX:
        n = node(b, e->op == NB_OP_SOFTMAX ? "Softmax" : "LogSoftmax", y, x, NULL, NULL);
        add_attr(b, n, attr_int(b, "axis", -1));
        return NB_OK;
    case NB_OP_RESHAPE:
        if (e->ndim == 1) {
            add_attr(b, node(b, "Flatten", y, x, NULL, NULL), attr_int(b, "axis", 1));
        } else {
            int64_t shape[NB_MAX_DIMS + 1] = {-1}, len = e->ndim + 1;
            memcpy(shape + 1, e->dims, (size_t)e->ndim * sizeof *shape);
            char *s = derived(b, e->name, "shape");
            initializer(b, s, 1, &len, NULL, shape, (size_t)len);
            node(b, "Reshape", y, x, s, NULL);
        }
        return NB_OK;
    case NB_OP_CONV2D:
    case NB_OP_MAX_POOL2D:
    case NB_OP_AVG_POOL2D: {
        int64_t kernel[2] = {e->kh, e->kw}, strides[2] = {e->sh, e->sw};
        int64_t pads[4] = {e->pt, e->pl, e->pb, e->pr}, dil[2] = {e->dh, e->dw};
        if (e->op == NB_OP_CONV2D) {
            char *w = derived(b, e->name, "weight");
            char *bias = e->bias ? derived(b, e->name, "bias") : NULL;
            initializer(b, w, e->weight_ndim, e->weight_dims, e->weight, NULL,
                        (size_t)(e->rows * e->cols));
            if (bias)
                initializer(b, bias, 1, e->weight_dims, e->bias, NULL, (size_t)e->rows);
            n = node(b, "Conv", y, x, w, bias);
            add_attr(b, n, attr_ints(b, "dilations", 2, dil));
            add_attr(b, n, attr_int(b, "group", e->groups));
        } else {
            n = node(b, e->op == NB_OP_MAX_POOL2D ? "MaxPool" : "AveragePool", y, x, NULL, NULL);
            if (e->op == NB_OP_AVG_POOL2D)
                add_attr(b, n, attr_int(b, "count_include_pad", e->include_pad));
        }
        add_attr(b, n, attr_ints(b, "kernel_shape", 2, kernel));
        add_attr(b, n, attr_ints(b, "strides", 2, strides));
        add_attr(b, n, attr_ints(b, "pads", 4, pads));
        return NB_OK;
    }
    case NB_OP_GLOBAL_AVG_POOL: { /* ONNX keeps [N, C, 1, 1]; nabla's is [N, C] */
        char *pooled = derived(b, e->name, "pooled");
        node(b, "GlobalAveragePool", pooled, x, NULL, NULL);
        add_attr(b, node(b, "Flatten", y, pooled, NULL, NULL), attr_int(b, "axis", 1));
        return NB_OK;
    }
    case NB_OP_BATCH_NORM: { /* evaluation: the running statistics */
        const char *what[4] = {"weight", "bias", "running_mean", "running_var"};
        const float *data[4] = {e->weight, e->bias, e->mean, e->var};
        char *names[4];
        for (int k = 0; k < 4; k++) {
            names[k] = derived(b, e->name, what[k]);
            initializer(b, names[k], 1, e->dims, data[k], NULL, (size_t)e->dims[0]);
        }
        n = node(b, "BatchNormalization", y, x, names[0], names[1]);
        if (n) { /* five inputs */
            char **inputs = grab(b, 5 * sizeof *inputs);
            if (inputs) {
                memcpy(inputs, n->input, 3 * sizeof *inputs);
                inputs[3] = names[2];
                inputs[4] = names[3];
                n->input = inputs;
                n->n_input = 5;
            }
        }
        add_attr(b, n, attr_float(b, "epsilon", e->eps));
        return NB_OK;
    }
    default:
        return nb_error_set(err, NB_ENOTSUP, "ONNX export: node '%s' is %s, which has no ONNX "
                            "equivalent%s", e->name, nb_op_name(e->op),
                            e->op == NB_OP_NEAREST ? " (export it with --format c instead)" : "");
    }
}

/* Value names: node names, except where one would take a name the graph reserves. */
static int name_taken(const onnx_build *b, int upto, const char *s)
{
    if (strcmp(s, "input") == 0 || strcmp(s, "probabilities") == 0 ||
        strncmp(s, "input.", 6) == 0 || strcmp(s, "values") == 0 || strncmp(s, "values.", 7) == 0)
        return 1;
    for (int j = 0; j < upto; j++)
        if (strcmp(b->names[j], s) == 0)
            return 1;
    return 0;
}

static nb_status build_graph(onnx_build *b, const nb_export_plan *p, nb_error *err)
{
    b->names = grab(b, (size_t)p->count * sizeof *b->names);
    for (int i = 0; b->names && i < p->count; i++) {
        size_t len = strlen(p->nodes[i].name) + 16;
        if (!(b->names[i] = grab(b, len)))
            break;
        snprintf(b->names[i], len, "%s", p->nodes[i].name);
        for (int k = 1; name_taken(b, i, b->names[i]); k++)
            snprintf(b->names[i], len, "%s_%d", p->nodes[i].name, k);
    }
    if (b->oom)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    Onnx__GraphProto *g = b->graph;
    const nb_export_node *in = &p->nodes[0];
    Onnx__ValueInfoProto **gin = grab(b, sizeof *gin), **gout = grab(b, 3 * sizeof *gout);
    if (!gin || !gout)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    gin[0] = value_info(b, "input", in->ndim, in->dims);
    g->n_input = 1;
    g->input = gin;
    const nb_norm *norm = p->norm;
    if (norm->mode != NB_NORM_NONE && norm->size > 0) {
        /* per feature, shaped like a sample: broadcast over the batch */
        int64_t F = p->features, block = F / norm->size;
        float *mean = grab(b, (size_t)F * sizeof *mean), *inv = grab(b, (size_t)F * sizeof *inv);
        if (!mean || !inv)
            return nb_error_set(err, NB_ENOMEM, "out of memory");
        for (int64_t f = 0; f < F; f++) {
            mean[f] = norm->mean[f / block];
            inv[f] = nb_export_norm_inv(norm, f / block);
        }
        initializer(b, "input.mean", in->ndim, in->dims, mean, NULL, (size_t)F);
        initializer(b, "input.inv", in->ndim, in->dims, inv, NULL, (size_t)F);
        node(b, "Sub", "input.centred", "input", "input.mean", NULL);
        node(b, "Mul", b->names[0], "input.centred", "input.inv", NULL);
    } else {
        node(b, "Identity", b->names[0], "input", NULL, NULL);
    }
    for (int i = 1; i < p->count; i++) {
        nb_status s = emit(b, p, i, err);
        if (s)
            return s;
    }
    const nb_export_node *out = &p->nodes[p->output];
    gout[0] = value_info(b, b->names[p->output], out->ndim, out->dims);
    g->n_output = 1;
    if (p->classifier) { /* what nabla predict prints: softmax over all of a sample's outputs */
        const char *z = b->names[p->output];
        if (out->ndim > 1) {
            z = derived(b, z, "flat");
            add_attr(b, node(b, "Flatten", z, b->names[p->output], NULL, NULL),
                     attr_int(b, "axis", 1));
        }
        add_attr(b, node(b, "Softmax", "probabilities", z, NULL, NULL), attr_int(b, "axis", -1));
        gout[g->n_output++] = value_info(b, "probabilities", 1, &p->outputs);
    }
    if (p->regression) { /* what nabla predict prints: y·σ + μ, the targets' own units */
        float *scale = grab(b, (size_t)p->outputs * sizeof *scale);
        float *shift = grab(b, (size_t)p->outputs * sizeof *shift);
        if (!scale || !shift)
            return nb_error_set(err, NB_ENOMEM, "out of memory");
        if (nb_export_target_affine(p, scale, shift)) {
            initializer(b, "values.scale", out->ndim, out->dims, scale, NULL, (size_t)p->outputs);
            initializer(b, "values.shift", out->ndim, out->dims, shift, NULL, (size_t)p->outputs);
            node(b, "Mul", "values.scaled", b->names[p->output], "values.scale", NULL);
            node(b, "Add", "values", "values.scaled", "values.shift", NULL);
        } else {
            node(b, "Identity", "values", b->names[p->output], NULL, NULL);
        }
        gout[g->n_output++] = value_info(b, "values", out->ndim, out->dims);
    }
    g->output = gout;
    return b->oom ? nb_error_set(err, NB_ENOMEM, "out of memory") : NB_OK;
}

static void metadata(onnx_build *b, Onnx__ModelProto *model, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = grab(b, sizeof *e);
    Onnx__StringStringEntryProto **list =
        grab(b, (model->n_metadata_props + 1) * sizeof *list);
    if (!e || !list)
        return;
    onnx__string_string_entry_proto__init(e);
    e->key = text(b, key);
    e->value = text(b, value);
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
    onnx_build b = {.opset = opset};
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
    if ((b.graph = grab(&b, sizeof *b.graph))) {
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
    for (size_t i = 0; i < b.count; i++)
        free(b.blocks[i]);
    free(b.blocks);
    nb_export_plan_free(&plan);
    return s;
}

#endif
