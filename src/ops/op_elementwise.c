/* Element-wise modules of two inputs of the same shape, and Scale (docs/lecture.md §4).
 *
 *   Add    Y = A + B            dA += dY,           dB += dY
 *   Max    Y = max(A, B)        dA += dY if A > B,  dB += dY if B > A;
 *                               at a tie A = B each receives dY/2 (the mean of the two
 *                               one-sided derivatives, PyTorch's torch.maximum convention)
 *   Mul    Y = A ⊙ B            dA += dY ⊙ B,       dB += dY ⊙ A
 *   Scale  Y = a·X              dX += a·dY
 */
#include "core/graph.h"

static nb_status binary_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *a = nb_in(g, n, 0), *b = nb_in(g, n, 1);
    int same = a->batched == b->batched && a->ndim == b->ndim;
    for (int i = 0; same && i < a->ndim; i++)
        same = a->dims[i] == b->dims[i];
    if (!same)
        return nb_shape_mismatch(err, n, a, b, "both inputs must have the same shape");
    nb_shape_copy(n, a);
    return NB_OK;
}

static void add_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *a = nb_in(g, n, 0)->value, *b = nb_in(g, n, 1)->value;
    float *y = n->value;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        y[i] = a[i] + b[i];
}

static void add_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *a = nb_in(g, n, 0), *b = nb_in(g, n, 1);
    const float *dy = n->grad;
    for (int k = 0; k < 2; k++) {
        nb_node *x = k ? b : a;
        if (!x->requires_grad)
            continue;
        for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
            x->grad[i] += dy[i];
    }
}

static void max_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *a = nb_in(g, n, 0)->value, *b = nb_in(g, n, 1)->value;
    float *y = n->value;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        y[i] = a[i] >= b[i] ? a[i] : b[i];
}

static void max_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *A = nb_in(g, n, 0), *B = nb_in(g, n, 1);
    const float *a = A->value, *b = B->value, *dy = n->grad;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++) {
        float wa = a[i] > b[i] ? 1.0f : a[i] < b[i] ? 0.0f : 0.5f;
        if (A->requires_grad)
            A->grad[i] += wa * dy[i];
        if (B->requires_grad)
            B->grad[i] += (1.0f - wa) * dy[i];
    }
}

static void mul_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *a = nb_in(g, n, 0)->value, *b = nb_in(g, n, 1)->value;
    float *y = n->value;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        y[i] = a[i] * b[i];
}

static void mul_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *A = nb_in(g, n, 0), *B = nb_in(g, n, 1);
    const float *dy = n->grad;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++) {
        if (A->requires_grad)
            A->grad[i] += dy[i] * B->value[i];
        if (B->requires_grad)
            B->grad[i] += dy[i] * A->value[i];
    }
}

static nb_status scale_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    (void)err;
    nb_shape_copy(n, nb_in(g, n, 0));
    return NB_OK;
}

static void scale_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    float a = n->fparam, *y = n->value;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        y[i] = a * x[i];
}

static void scale_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *dx = nb_in(g, n, 0)->grad, a = n->fparam;
    const float *dy = n->grad;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        dx[i] += a * dy[i];
}

const nb_op_def nb_op_add_def = {.name = "add", .n_inputs = 2, .shape = binary_shape,
                                 .forward = add_forward, .backward = add_backward, .in_place = 3,
                                 .formula = "Y = A + B", .vjp = {"dA += dY", "dB += dY"}};
const nb_op_def nb_op_max_def = {.name = "max", .n_inputs = 2, .shape = binary_shape,
                                 .forward = max_forward, .backward = max_backward, .in_place = 3,
                                 .formula = "Y = max(A, B)",
                                 .vjp = {"dA += dY where A > B (½ at a tie)",
                                         "dB += dY where B > A (½ at a tie)"}};
const nb_op_def nb_op_mul_def = {.name = "mul", .n_inputs = 2, .shape = binary_shape,
                                 .forward = mul_forward, .backward = mul_backward, .in_place = 3,
                                 .formula = "Y = A ⊙ B", .vjp = {"dA += dY ⊙ B", "dB += dY ⊙ A"}};
const nb_op_def nb_op_scale_def = {.name = "scale", .n_inputs = 1, .shape = scale_shape,
                                   .forward = scale_forward, .backward = scale_backward,
                                   .in_place = 1,
                                   .formula = "Y = a·X", .vjp = {"dX += a·dY"}};

int nb_add(nb_graph *g, const char *name, int a, int b)
{
    int in[2] = {a, b};
    return nb_graph_add(g, name, NB_OP_ADD, in, 2, 0, NULL, 0, 0);
}

int nb_max(nb_graph *g, const char *name, int a, int b)
{
    int in[2] = {a, b};
    return nb_graph_add(g, name, NB_OP_MAX, in, 2, 0, NULL, 0, 0);
}

int nb_mul(nb_graph *g, const char *name, int a, int b)
{
    int in[2] = {a, b};
    return nb_graph_add(g, name, NB_OP_MUL, in, 2, 0, NULL, 0, 0);
}

int nb_scale(nb_graph *g, const char *name, int x, float factor)
{
    return nb_graph_add(g, name, NB_OP_SCALE, &x, 1, 0, NULL, factor, 0);
}
