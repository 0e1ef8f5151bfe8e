/* Every module and loss against central finite differences (random upstream gradient, inputs
 * kept away from kinks and ties), and proof that a deliberately wrong backward is caught. */
#include "check.h"
#include "gradcheck_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Every classifier below has at least 4 classes. */
static double check_model(const char *label, const char *desc, int training)
{
    return gradcheck_model(label, desc, training, 4, 0);
}

static void every_module(void)
{
    check_model("linear", "x = input(5)\ny = linear(x, 4)", 0);
    check_model("linear-nobias", "x = input(5)\ny = linear(x, 4, bias=false)", 0);
    check_model("relu", "x = input(6)\ny = relu(x)", 0);
    check_model("tanh", "x = input(6)\ny = tanh(x)", 0);
    check_model("sigmoid", "x = input(6)\ny = sigmoid(x)", 0);
    check_model("add", "a = input(6)\nb = input(6)\ny = add(a, b)", 0);
    check_model("max", "a = input(6)\nb = input(6)\ny = max(a, b)", 0);
    check_model("mul", "a = input(6)\nb = input(6)\ny = mul(a, b)", 0);
    check_model("scale", "x = input(6)\ny = scale(x, -2.5)", 0);
    check_model("sum", "x = input(2, 3)\ny = sum(x)", 0);
    check_model("mean", "x = input(2, 3)\ny = mean(x)", 0);
    check_model("softmax", "x = input(5)\ny = softmax(x)", 0);
    check_model("log_softmax", "x = input(5)\ny = log_softmax(x)", 0);
    check_model("dropout-train", "x = input(8)\ny = dropout(x, 0.5)", 1);
    check_model("dropout-eval", "x = input(8)\ny = dropout(x, 0.5)", 0);
    check_model("reshape", "x = input(2, 3)\ny = reshape(x, 3, 2)\nz = tanh(y)", 0);
    check_model("flatten", "x = input(3, 2, 2)\ny = flatten(x)\nz = linear(y, 3)", 0);
    check_model("mse-mean", "x = input(4)\nt = input(4)\nl = mse(x, t)", 0);
    check_model("mse-sum", "x = input(4)\nt = input(4)\nl = mse(x, t, reduction=sum)", 0);
    check_model("nll", "x = input(5)\ny = labels()\nl = nll(x, y)", 0);
    check_model("cross_entropy", "x = input(5)\ny = labels()\nl = cross_entropy(x, y)", 0);
    /* label smoothing acts in training mode (in evaluation the loss is the plain one) */
    check_model("ce-smoothing-0.2", "x = input(5)\ny = labels()\n"
                                   "l = cross_entropy(x, y, label_smoothing=0.2)", 1);
    check_model("ce-smoothing-0.9", "x = input(4)\ny = labels()\n"
                                   "l = cross_entropy(x, y, label_smoothing=0.9)", 1);
    check_model("ce-smoothing-mlp", "x = input(5)\nh = linear(x, 6)\nt = tanh(h)\n"
                                   "z = linear(t, 4)\ny = labels()\n"
                                   "l = cross_entropy(z, y, label_smoothing=0.1)", 1);
    check_model("logsoftmax+nll", "x = input(5)\np = log_softmax(x)\ny = labels()\nl = nll(p, y)", 0);
    check_model("leaky_relu", "x = input(6)\ny = leaky_relu(x)", 0);
    check_model("leaky_relu-0.2", "x = input(6)\ny = leaky_relu(x, 0.2)", 0);
    check_model("leaky_relu-negative", "x = input(6)\ny = leaky_relu(x, slope=-0.5)", 0);
    check_model("gelu", "x = input(7)\ny = gelu(x)", 0);
    check_model("gelu-mlp", "x = input(5)\nh = linear(x, 6)\ng = gelu(h)\nz = linear(g, 4)\n"
                            "y = labels()\nl = cross_entropy(z, y)", 0);
    /* The lecture's mynet on a smaller image, and a DAG: fan-out, a residual Add and a Max. */
    check_model("mynet", "x = input(3, 2, 4)\nh = flatten(x)\nfc1 = linear(h, 6)\nr1 = relu(fc1)\n"
                         "fc2 = linear(r1, 5)\nr2 = relu(fc2)\nfc3 = linear(r2, 4)", 0);
    check_model("residual-dag", "x = input(6)\na = linear(x, 6)\nb = tanh(a)\nc = linear(b, 6)\n"
                                "s = add(x, c)\nm = max(b, c)\nt = mul(s, m)\nz = linear(t, 4)\n"
                                "y = labels()\nl = cross_entropy(z, y)", 0);
}

/* A broken vector–Jacobian product for tanh: uses 1 − y instead of 1 − y². */
static void broken_tanh_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *dx = nb_in(g, n, 0)->grad;
    for (int64_t i = 0; i < N * n->size; i++)
        dx[i] += n->grad[i] * (1.0f - n->value[i]);
}

/* A broken Linear: forgets to accumulate dW (overwrites it with the first sample's share). */
static void broken_linear_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    int64_t in = x->dims[0], out = n->dims[0];
    (void)N;
    for (int64_t j = 0; j < out; j++)
        for (int64_t i = 0; i < in; i++)
            w->grad[j * in + i] = n->grad[j] * x->value[i];
}

/* Layer norm with γ drawn at random (it starts at 1, which would hide a γ missing from dX),
 * over the whole sample and over its last dimensions, in a small network; in evaluation and
 * in training mode (the same module in both). Rows of 4 values bend sharply where their
 * spread is small: there the step 1e-2 leaves a truncation error of 1.1e-2 (at step 3e-3,
 * 7e-4), so that case takes the smaller step. */
static void layer_norm_gradients(void)
{
    static const struct {
        const char *label, *desc;
        double step;
    } cases[] = {
        {"layer_norm", "x = input(6)\ny = layer_norm(x)", 0},
        {"layer_norm-3d", "x = input(2, 3, 4)\ny = layer_norm(x, eps=1e-3)", 0},
        {"layer_norm-last-dim", "x = input(2, 3, 4)\ny = layer_norm(x, dims=1)", 3e-3},
        {"layer_norm-last-2", "x = input(2, 3, 4)\ny = layer_norm(x, dims=2)", 0},
        {"layer_norm-mlp", "x = input(5)\nh = linear(x, 6)\ny = layer_norm(h)\ng = gelu(y)\n"
                           "z = linear(g, 4)\nt = labels()\nl = cross_entropy(z, t)", 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int training = 0; training < 2; training++) {
            int in, out;
            char label[64];
            snprintf(label, sizeof label, "%s%s", cases[c].label, training ? " (train)" : "");
            nb_graph *g = build_filled(label, cases[c].desc, 3, 4, 1, &in, &out);
            nb_rng rng;
            nb_rng_seed(&rng, 5);
            int w = nb_graph_find(g, "y.weight");
            for (int64_t i = 0; i < nb_node_size(g, w); i++)
                nb_value(g, w)[i] = 0.5f + nb_rng_uniform(&rng);
            nb_graph_params_changed(g);
            gradcheck_graph(label, g, out, training, 0, cases[c].step);
        }
}

/* Values by hand: LeakyReLU's gradient at the kink is the slope (PyTorch's x > 0 rule), GELU
 * against Φ from erf (1 and −1: ±Φ(±1)), layer norm of 1, 2, 3, 4 (μ 2.5, σ² 1.25). */
static void new_module_values(void)
{
    nb_error err = {0};
    int in, out;
    nb_graph *g = nb_graph_new(1, NULL);
    CHECK_MSG(nb_describe(g, "x = input(4)\nc = layer_norm(x, eps=0)", "eps", &in, &out, &err) ==
              NB_EFORMAT && strstr(err.msg, "eps 0, expected a finite eps > 0"), "eps=0: %s",
              err.msg);
    nb_graph_free(g);
    g = described("values", "x = input(4)\na = leaky_relu(x, 0.2)\nb = gelu(x)\n"
                  "c = layer_norm(x, eps=1e-30)", 1, &in, &out);
    CHECK_OK(nb_graph_prepare(g, 1, &err), &err);
    static const float x[4] = {1, -1, 0, 4};
    memcpy(nb_value(g, in), x, sizeof x);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    const float *a = nb_value(g, nb_graph_find(g, "a")), *b = nb_value(g, nb_graph_find(g, "b"));
    const float *c = nb_value(g, nb_graph_find(g, "c"));
    CHECK_NEAR(a[0], 1, 0, 0);
    CHECK_NEAR(a[1], -0.2, 1e-7, 0);
    CHECK_NEAR(b[0], 0.841344746, 1e-6, 0);
    CHECK_NEAR(b[1], -0.158655254, 1e-6, 0);
    CHECK_NEAR(b[2], 0, 0, 0);
    /* x = 1, −1, 0, 4: μ = 1, σ² = (0 + 4 + 1 + 9)/4 = 3.5 */
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(c[i], (x[i] - 1) / sqrt(3.5), 1e-6, 0);
    float seed[4] = {1, 1, 1, 1};
    CHECK_OK(nb_graph_backward(g, nb_graph_find(g, "a"), seed, &err), &err);
    CHECK_NEAR(nb_grad(g, in)[2], 0.2, 1e-7, 0); /* at x = 0: the slope */
    CHECK_NEAR(nb_grad(g, in)[0], 1, 0, 0);
    nb_graph_free(g);
}

/* A broken layer norm: dX as if μ and σ were constants (γσ⁻¹·dY, batch norm's evaluation
 * rule), dγ and dβ right. */
static void broken_layer_norm_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1), *b = nb_in(g, n, 2);
    int64_t D = x->size;
    for (int64_t r = 0; r < N; r++) {
        float mu = n->aux[2 * r], istd = n->aux[2 * r + 1];
        for (int64_t i = 0; i < D; i++) {
            float dy = n->grad[r * D + i];
            x->grad[r * D + i] += dy * w->value[i] * istd;
            w->grad[i] += dy * (x->value[r * D + i] - mu) * istd;
            b->grad[i] += dy;
        }
    }
}

/* A cross-entropy backward that forgets the label smoothing: softmax − onehot(y). */
static void unsmoothed_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0);
    const int32_t *y = nb_in(g, n, 1)->labels;
    int64_t C = x->size;
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < C; j++)
            x->grad[r * C + j] += n->grad[0] / (float)N *
                                  (n->aux[r * C + j] - (j == y[r] ? 1.0f : 0.0f));
}

static void wrong_backward_is_caught(void)
{
    broken_backward_is_caught_in("label smoothing", "x = input(5)\ny = labels()\n"
                                 "l = cross_entropy(x, y, label_smoothing=0.5)", "l",
                                 unsmoothed_backward, 3, 1, 1);
    broken_backward_is_caught("tanh", "x = input(6)\ny = tanh(x)", "y", broken_tanh_backward, 3, 1);
    broken_backward_is_caught("linear", "x = input(5)\ny = linear(x, 4)", "y",
                              broken_linear_backward, 3, 1);
    broken_backward_is_caught("layer_norm", "x = input(6)\ny = layer_norm(x)", "y",
                              broken_layer_norm_backward, 3, 1);
}

/* One op, one place: every entry of the op table states its formula, and every module that
 * has a backward states the vector–Jacobian product of each input it computes (what `nabla
 * graph --backward` draws). A new op that forgets them fails here. */
static void op_table_documents_every_op(void)
{
    int leaves = 0, costs = 0;
    for (int op = 0; op < NB_OP_COUNT; op++) {
        const nb_op_def *d = nb_op_table[op];
        CHECK_MSG(d && d->name && *nb_op_formula((nb_op)op), "op %d has no formula", op);
        leaves += nb_op_is_leaf((nb_op)op);
        costs += nb_op_is_cost((nb_op)op);
        if (nb_op_is_leaf((nb_op)op) || nb_op_no_grad_reason((nb_op)op))
            continue;
        CHECK_MSG(d->backward, "op %s: neither a backward nor a reason", d->name);
        /* a cost's second input (labels, targets) receives a gradient only for MSE */
        for (int k = 0; k < (nb_op_is_cost((nb_op)op) ? 1 : d->n_inputs); k++)
            CHECK_MSG(*nb_op_vjp((nb_op)op, k), "op %s: no VJP for input %d", d->name, k);
    }
    CHECK(leaves == 4 && nb_op_is_leaf(NB_OP_PARAM) && nb_op_is_leaf(NB_OP_BUFFER) && !nb_op_is_leaf(NB_OP_LINEAR));
    CHECK(costs == 3 && nb_op_is_cost(NB_OP_CROSS_ENTROPY));
    CHECK(strcmp(nb_op_vjp(NB_OP_LINEAR, 1), "dW += dYᵀ·X") == 0);
    CHECK(nb_op_no_grad_reason(NB_OP_NEAREST) && !nb_op_no_grad_reason(NB_OP_RELU));
    CHECK(*nb_op_formula(NB_OP_COUNT) == 0 && *nb_op_vjp(NB_OP_LINEAR, 3) == 0);
}

int main(void)
{
    op_table_documents_every_op();
    every_module();
    layer_norm_gradients();
    new_module_values();
    wrong_backward_is_caught();
    return check_finish("test_gradients");
}
