/* Point-wise non-linearities z = h(s) (docs/lecture.md §3, §4):
 * backward is dC/ds = dC/dz · h'(s).
 * Each derivative is written in terms of the output where that is cheaper and exact (ReLU,
 * tanh, sigmoid), else of the input (LeakyReLU, GELU). */
#include "backend/gemm_pool.h"
#include "core/graph.h"

#include <math.h>

static nb_status same_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    (void)err;
    nb_shape_copy(n, nb_in(g, n, 0));
    return NB_OK;
}

/* ReLU   y = max(x, 0)
 *        dx += dy if y > 0 else 0. At the kink x = 0 we take the derivative 0, as PyTorch does;
 *        ReLU is scale-equivariant, which is why it is the default (§5.1). */
/* Written without branches (select, not if) so the compiler vectorises them: the signs of
 * activations are random, and a branch per element would be mispredicted half the time.
 * Behind a Linear whose only consumer it is, the forward is done by the Linear's output pass
 * (graph.c fuses them) and relu_forward is not called. Each backward here writes dx instead of
 * adding to it when the graph marked dx fresh (graph.c). */
/* The forwards here may run in place (y = x: nb_op_def.in_place), so x and y are not
 * restrict; the compiler's run-time overlap check still vectorises them in place. */
static void relu_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    float *y = n->value;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

typedef struct relu_job {
    float *dx;
    const float *y, *dy;
    int write;
} relu_job;

static void relu_backward_block(void *arg, int64_t first, int64_t last, int task)
{
    (void)task;
    const relu_job *j = arg;
    float *restrict dx = j->dx;
    const float *restrict y = j->y, *restrict dy = j->dy;
    if (j->write) {
        for (int64_t i = first; i < last; i++) {
            float d = dy[i]; /* loaded unconditionally: a select, not a branch */
            dx[i] = y[i] > 0.0f ? d : 0.0f;
        }
        return;
    }
    for (int64_t i = first; i < last; i++) {
        float d = dy[i];
        dx[i] += y[i] > 0.0f ? d : 0.0f;
    }
}

/* Large batches are split across the gemm context's threads (blocks of ≥ 64 k elements). */
static void relu_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0);
    relu_job job = {.dx = x->grad, .y = n->value, .dy = n->grad,
                    .write = nb_grad_beta(&x->grad_fresh) == 0.0f};
    nb_parallel_for(g->gemm, nb_node_elems(n, N), 65536, 64, 0, relu_backward_block, &job);
}

/* tanh   y = tanh(x);   dx += dy · (1 − y²). Saturates for |x| ≫ 1: vanishing gradients. */
static void tanh_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    float *y = n->value;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        y[i] = tanhf(x[i]);
}

static void tanh_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *dx = nb_in(g, n, 0)->grad;
    const float *y = n->value, *dy = n->grad;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

/* sigmoid   y = 1/(1 + e^−x);   dx += dy · y(1 − y). Evaluated as e^x/(1 + e^x) for x < 0 so
 * that e^−x cannot overflow. The sigmoid is the one-value softmax and saturates (§4). */
static void sigmoid_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    float *y = n->value;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++) {
        if (x[i] >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        } else {
            float t = expf(x[i]);
            y[i] = t / (1.0f + t);
        }
    }
}

static void sigmoid_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *dx = nb_in(g, n, 0)->grad;
    const float *y = n->value, *dy = n->grad;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

/* LeakyReLU   y = x if x > 0 else a·x   (a = fparam, the negative slope; PyTorch's 0.01)
 *            dx += dy if x > 0 else a·dy. At x = 0 the slope a, as PyTorch's
 *            leaky_relu_backward (x > 0 ? dy : a·dy). Reads x, not y: for a ≤ 0 the sign of y
 *            does not tell the side. */
static nb_status leaky_relu_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    if (!isfinite(n->fparam))
        return nb_error_set(err, NB_EINVAL, "leaky_relu '%s': slope %g, expected a finite "
                            "number", n->name, (double)n->fparam);
    return same_shape(g, n, err);
}

static void leaky_relu_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    float *y = n->value;
    float a = n->fparam;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        y[i] = x[i] > 0.0f ? x[i] : a * x[i];
}

static void leaky_relu_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *restrict dx = nb_in(g, n, 0)->grad;
    const float *restrict x = nb_in(g, n, 0)->value, *restrict dy = n->grad;
    float a = n->fparam;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++) {
        float d = dy[i];
        dx[i] += x[i] > 0.0f ? d : a * d;
    }
}

/* GELU, exact (Hendrycks & Gimpel 2016; torch.nn.GELU(approximate='none'), PyTorch's default)
 *        y = x·Φ(x) = x/2 · (1 + erf(x/√2)),   Φ the standard normal CDF
 *        dx += dy · (Φ(x) + x·φ(x)),   φ(x) = e^(−x²/2)/√(2π) its density.
 * Not the tanh approximation (approximate='tanh'); export writes the erf form. */
#define GELU_SQRT1_2 0.70710678118654752440f  /* 1/√2 */
#define GELU_INV_SQRT_2PI 0.39894228040143267794f /* 1/√(2π) */

static void gelu_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    float *y = n->value;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * GELU_SQRT1_2));
}

static void gelu_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *dx = nb_in(g, n, 0)->grad;
    const float *x = nb_in(g, n, 0)->value, *dy = n->grad;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * GELU_SQRT1_2));
        float pdf = GELU_INV_SQRT_2PI * expf(-0.5f * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

const nb_op_def nb_op_relu_def = {.name = "relu", .n_inputs = 1, .shape = same_shape,
                                  .forward = relu_forward, .backward = relu_backward,
                                  .writes_fresh = 1, .in_place = 1, .formula = "Y = max(X, 0)",
                                  .vjp = {"dX += dY ⊙ [Y > 0]"}};
const nb_op_def nb_op_tanh_def = {.name = "tanh", .n_inputs = 1, .shape = same_shape,
                                  .forward = tanh_forward, .backward = tanh_backward, .in_place = 1,
                                  .formula = "Y = tanh(X)", .vjp = {"dX += dY ⊙ (1 − Y²)"}};
const nb_op_def nb_op_sigmoid_def = {.name = "sigmoid", .n_inputs = 1, .shape = same_shape,
                                     .forward = sigmoid_forward, .backward = sigmoid_backward,
                                     .in_place = 1,
                                     .formula = "Y = 1/(1 + e^−X)",
                                     .vjp = {"dX += dY ⊙ Y(1 − Y)"}};

const nb_op_def nb_op_leaky_relu_def = {.name = "leaky_relu", .n_inputs = 1,
                                        .shape = leaky_relu_shape,
                                        .forward = leaky_relu_forward,
                                        .backward = leaky_relu_backward, .in_place = 1,
                                        .formula = "Y = X if X > 0 else a·X",
                                        .vjp = {"dX += dY ⊙ (X > 0 ? 1 : a)"}};
const nb_op_def nb_op_gelu_def = {.name = "gelu", .n_inputs = 1, .shape = same_shape,
                                  .forward = gelu_forward, .backward = gelu_backward, .in_place = 1,
                                  .formula = "Y = X·Φ(X) = X/2·(1 + erf(X/√2))",
                                  .vjp = {"dX += dY ⊙ (Φ(X) + X·φ(X))"}};

int nb_relu(nb_graph *g, const char *name, int x) { return nb_graph_add(g, name, NB_OP_RELU, &x, 1, 0, NULL, 0, 0); }
int nb_tanh(nb_graph *g, const char *name, int x) { return nb_graph_add(g, name, NB_OP_TANH, &x, 1, 0, NULL, 0, 0); }
int nb_sigmoid(nb_graph *g, const char *name, int x) { return nb_graph_add(g, name, NB_OP_SIGMOID, &x, 1, 0, NULL, 0, 0); }
int nb_leaky_relu(nb_graph *g, const char *name, int x, float slope) { return nb_graph_add(g, name, NB_OP_LEAKY_RELU, &x, 1, 0, NULL, slope, 0); }
int nb_gelu(nb_graph *g, const char *name, int x) { return nb_graph_add(g, name, NB_OP_GELU, &x, 1, 0, NULL, 0, 0); }
