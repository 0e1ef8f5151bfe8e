/* Internal: building an ONNX message with libprotobuf-c (onnx_build.c) for the exporter
 * (onnx.c). Everything the message points to comes from one list of blocks, freed together
 * by nb_onnx_build_free; any allocation failure sets `oom` and makes the builders return NULL
 * (later calls accept NULL and do nothing), so the caller checks once at the end. Only with
 * NB_HAVE_ONNX. */
#ifndef NB_ONNX_BUILD_H
#define NB_ONNX_BUILD_H

#include "nabla.h"
#include "onnx.pb-c.h"

typedef struct nb_onnx_build {
    void **blocks;
    size_t count, capacity;
    int oom;
    Onnx__GraphProto *graph;
    size_t nodes_cap, inits_cap;
    int opset;
    char **names;              /* per plan node: its value's name */
} nb_onnx_build;

void *nb_onnx_grab(nb_onnx_build *b, size_t size);   /* zeroed */
char *nb_onnx_text(nb_onnx_build *b, const char *s); /* a copy */
void nb_onnx_build_free(nb_onnx_build *b);

/* Attributes of the given type and value, for nb_onnx_add_attr. */
Onnx__AttributeProto *nb_onnx_attr_int(nb_onnx_build *b, const char *name, int64_t v);
Onnx__AttributeProto *nb_onnx_attr_ints(nb_onnx_build *b, const char *name, int n,
                                        const int64_t *v);
Onnx__AttributeProto *nb_onnx_attr_float(nb_onnx_build *b, const char *name, float v);

/* A node op_type(in0, in1, in2) → output (inputs after the first NULL are left out), named
 * after its output and appended to the graph; attributes may follow. */
Onnx__NodeProto *nb_onnx_node(nb_onnx_build *b, const char *op_type, const char *output,
                              const char *in0, const char *in1, const char *in2);
void nb_onnx_add_attr(nb_onnx_build *b, Onnx__NodeProto *n, Onnx__AttributeProto *a);

/* An initializer: float data (referenced, read while packing) or int64 data (copied). */
void nb_onnx_initializer(nb_onnx_build *b, const char *name, int ndim, const int64_t *dims,
                         const float *f, const int64_t *i64, size_t count);

/* A float tensor value [N, dims…] with a symbolic batch dimension N. */
Onnx__ValueInfoProto *nb_onnx_value_info(nb_onnx_build *b, const char *name, int ndim,
                                         const int64_t *dims);

/* "<name>.<what>", the name of an initializer or intermediate value of a module. */
char *nb_onnx_derived(nb_onnx_build *b, const char *name, const char *what);

#endif
