/* The ONNX message builder (onnx_build.h): blocks from one list, nodes, attributes,
 * initializers and value infos of an Onnx__GraphProto, for the exporter (onnx.c). */
#ifndef NB_HAVE_ONNX
typedef int nb_onnx_build_unused; /* ISO C wants a declaration in every file */
#else

#include "export/onnx_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything the message points to is allocated from one list, freed together. */

void *nb_onnx_grab(nb_onnx_build *b, size_t size)
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

char *nb_onnx_text(nb_onnx_build *b, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = nb_onnx_grab(b, n);
    return d ? memcpy(d, s, n) : NULL;
}

/* Appends p to the graph's nodes or initializers, whose arrays grow by doubling. */
static void *grow(nb_onnx_build *b, void *items, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return items;
    size_t c = *cap ? 2 * *cap : 16;
    void *grown = nb_onnx_grab(b, c * elem);
    if (!grown)
        return NULL;
    if (n)
        memcpy(grown, items, n * elem);
    *cap = c;
    return grown;
}

static void push_node(nb_onnx_build *b, Onnx__NodeProto *n)
{
    Onnx__GraphProto *g = b->graph;
    Onnx__NodeProto **list = n ? grow(b, g->node, g->n_node, &b->nodes_cap, sizeof *list) : NULL;
    if (list) {
        list[g->n_node++] = n;
        g->node = list;
    }
}

static void push_initializer(nb_onnx_build *b, Onnx__TensorProto *t)
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
static Onnx__AttributeProto *attr(nb_onnx_build *b, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = nb_onnx_grab(b, sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = nb_onnx_text(b, name);
    a->has_type = 1;
    a->type = type;
    return a;
}

Onnx__AttributeProto *nb_onnx_attr_int(nb_onnx_build *b, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) {
        a->has_i = 1;
        a->i = v;
    }
    return a;
}

Onnx__AttributeProto *nb_onnx_attr_ints(nb_onnx_build *b, const char *name, int n,
                                        const int64_t *v)
{
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *ints = nb_onnx_grab(b, (size_t)n * sizeof *ints);
    if (!a || !ints)
        return NULL;
    memcpy(ints, v, (size_t)n * sizeof *ints);
    a->n_ints = (size_t)n;
    a->ints = ints;
    return a;
}

Onnx__AttributeProto *nb_onnx_attr_float(nb_onnx_build *b, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) {
        a->has_f = 1;
        a->f = v;
    }
    return a;
}

/* A node op_type(inputs…) → output, named after its output; attributes may follow. */
Onnx__NodeProto *nb_onnx_node(nb_onnx_build *b, const char *op_type, const char *output,
                              const char *in0, const char *in1, const char *in2)
{
    Onnx__NodeProto *n = nb_onnx_grab(b, sizeof *n);
    char **inputs = nb_onnx_grab(b, 3 * sizeof *inputs);
    char **outputs = nb_onnx_grab(b, sizeof *outputs);
    if (!n || !inputs || !outputs)
        return NULL;
    onnx__node_proto__init(n);
    const char *in[3] = {in0, in1, in2};
    for (int k = 0; k < 3 && in[k]; k++)
        inputs[n->n_input++] = nb_onnx_text(b, in[k]);
    n->input = inputs;
    outputs[0] = nb_onnx_text(b, output);
    n->n_output = 1;
    n->output = outputs;
    n->name = nb_onnx_text(b, output);
    n->op_type = nb_onnx_text(b, op_type);
    push_node(b, n);
    return n;
}

void nb_onnx_add_attr(nb_onnx_build *b, Onnx__NodeProto *n, Onnx__AttributeProto *a)
{
    if (!n || !a)
        return;
    Onnx__AttributeProto **list = nb_onnx_grab(b, (n->n_attribute + 1) * sizeof *list);
    if (!list)
        return;
    if (n->n_attribute)
        memcpy(list, n->attribute, n->n_attribute * sizeof *list);
    list[n->n_attribute++] = a;
    n->attribute = list;
}

/* An initializer: float data (referenced) or int64 data (copied), with dims. */
void nb_onnx_initializer(nb_onnx_build *b, const char *name, int ndim, const int64_t *dims,
                         const float *f, const int64_t *i64, size_t count)
{
    Onnx__TensorProto *t = nb_onnx_grab(b, sizeof *t);
    int64_t *d = nb_onnx_grab(b, (size_t)(ndim ? ndim : 1) * sizeof *d);
    if (!t || !d)
        return;
    onnx__tensor_proto__init(t);
    t->name = nb_onnx_text(b, name);
    memcpy(d, dims, (size_t)ndim * sizeof *d);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    if (f) {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->n_float_data = count;
        t->float_data = (float *)f; /* only read while packing */
    } else {
        int64_t *v = nb_onnx_grab(b, count * sizeof *v);
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
Onnx__ValueInfoProto *nb_onnx_value_info(nb_onnx_build *b, const char *name, int ndim,
                                         const int64_t *dims)
{
    Onnx__ValueInfoProto *v = nb_onnx_grab(b, sizeof *v);
    Onnx__TypeProto *type = nb_onnx_grab(b, sizeof *type);
    Onnx__TypeProto__Tensor *tensor = nb_onnx_grab(b, sizeof *tensor);
    Onnx__TensorShapeProto *shape = nb_onnx_grab(b, sizeof *shape);
    Onnx__TensorShapeProto__Dimension **dim = nb_onnx_grab(b, (size_t)(ndim + 1) * sizeof *dim);
    if (!v || !type || !tensor || !shape || !dim)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tensor);
    onnx__tensor_shape_proto__init(shape);
    for (int k = 0; k <= ndim; k++) {
        if (!(dim[k] = nb_onnx_grab(b, sizeof *dim[k])))
            return NULL;
        onnx__tensor_shape_proto__dimension__init(dim[k]);
        if (k == 0) {
            dim[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim[k]->dim_param = nb_onnx_text(b, "N");
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
    v->name = nb_onnx_text(b, name);
    v->type = type;
    return v;
}

/* "<node>.<what>", the name of an initializer or intermediate value of a module. */
char *nb_onnx_derived(nb_onnx_build *b, const char *name, const char *what)
{
    size_t n = strlen(name) + strlen(what) + 2;
    char *s = nb_onnx_grab(b, n);
    if (s)
        snprintf(s, n, "%s.%s", name, what);
    return s;
}

void nb_onnx_build_free(nb_onnx_build *b)
{
    for (size_t i = 0; i < b->count; i++)
        free(b->blocks[i]);
    free(b->blocks);
    b->blocks = NULL;
    b->count = b->capacity = 0;
}

#endif
