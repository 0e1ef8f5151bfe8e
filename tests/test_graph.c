/* The engine on cases small enough to compute by hand (docs/lecture.md §3, §4), graph building
 * errors, batch-size changes, the nearest-neighbour model and numerically hard losses. */
#include "check.h"
#include "nabla.h"

#include <math.h>
#include <string.h>

/* A 2×3 Linear: W = [[1,2,3],[4,5,6]], b = [0.5,−1], x = [1,−1,2].
 * y = W x + b = [1−2+6+0.5, 4−5+12−1] = [5.5, 10]. With dC/dy = [1, −2]:
 * dC/dx = Wᵀ dy = [1−8, 2−10, 3−12] = [−7, −8, −9], dC/dW = dy xᵀ, dC/db = dy. */
static void linear_by_hand(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int64_t three = 3;
    int x = nb_input(g, "x", 1, &three);
    int y = nb_linear(g, "fc", x, 2, 1);
    CHECK_OK(nb_graph_error(g, &err), &err);
    nb_node_set_requires_grad(g, x, 1);
    CHECK_OK(nb_graph_prepare(g, 1, &err), &err);
    float W[6] = {1, 2, 3, 4, 5, 6}, b[2] = {0.5f, -1}, xv[3] = {1, -1, 2}, dy[2] = {1, -2};
    memcpy(nb_value(g, nb_graph_find(g, "fc.weight")), W, sizeof W);
    memcpy(nb_value(g, nb_graph_find(g, "fc.bias")), b, sizeof b);
    memcpy(nb_value(g, x), xv, sizeof xv);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK_NEAR(nb_value(g, y)[0], 5.5, 1e-6, 0);
    CHECK_NEAR(nb_value(g, y)[1], 10.0, 1e-6, 0);
    nb_graph_zero_grad(g);
    CHECK_OK(nb_graph_backward(g, y, dy, &err), &err);
    const float dx[3] = {-7, -8, -9};
    for (int i = 0; i < 3; i++)
        CHECK_NEAR(nb_grad(g, x)[i], dx[i], 1e-6, 0);
    const float *dW = nb_grad(g, nb_graph_find(g, "fc.weight"));
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 3; i++)
            CHECK_NEAR(dW[j * 3 + i], dy[j] * xv[i], 1e-6, 0);
    CHECK_NEAR(nb_grad(g, nb_graph_find(g, "fc.bias"))[1], -2.0, 1e-6, 0);
    /* gradients accumulate across backward calls until zeroed */
    CHECK_OK(nb_graph_backward(g, y, dy, &err), &err);
    CHECK_NEAR(nb_grad(g, nb_graph_find(g, "fc.bias"))[1], -4.0, 1e-6, 0);
    nb_graph_free(g);
}

/* Softmax of [1, 2, 3]: e^k / (e + e² + e³). With dy = [1, 0, 0] the Jacobian row gives
 * dx_i = y_1(δ_1i − y_i). */
static void softmax_by_hand(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int64_t three = 3;
    int x = nb_input(g, "x", 1, &three);
    int y = nb_softmax(g, "p", x);
    int ly = nb_log_softmax(g, "lp", x);
    nb_node_set_requires_grad(g, x, 1);
    CHECK_OK(nb_graph_prepare(g, 1, &err), &err);
    float xv[3] = {1, 2, 3};
    memcpy(nb_value(g, x), xv, sizeof xv);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    double z = exp(1) + exp(2) + exp(3), p[3] = {exp(1) / z, exp(2) / z, exp(3) / z};
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(nb_value(g, y)[i], p[i], 1e-6, 0);
        CHECK_NEAR(nb_value(g, ly)[i], log(p[i]), 1e-6, 0);
    }
    float dy[3] = {1, 0, 0};
    CHECK_OK(nb_graph_backward(g, y, dy, &err), &err);
    for (int i = 0; i < 3; i++)
        CHECK_NEAR(nb_grad(g, x)[i], p[0] * ((i == 0) - p[i]), 1e-6, 0);
    nb_graph_free(g);
}

/* Fan-out (the lecture's Duplicate): x feeds relu, tanh and both inputs of an add, so
 * dC/dx is the sum of all four contributions. */
static void fan_out_sums(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int64_t one = 1;
    int x = nb_input(g, "x", 1, &one);
    int a = nb_relu(g, "a", x);
    int t = nb_tanh(g, "t", x);
    int d = nb_add(g, "d", x, x);
    int s1 = nb_add(g, "s1", a, t);
    int s2 = nb_add(g, "s2", s1, d);
    nb_node_set_requires_grad(g, x, 1);
    CHECK_OK(nb_graph_prepare(g, 1, &err), &err);
    nb_value(g, x)[0] = 0.5f;
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK_NEAR(nb_value(g, s2)[0], 0.5 + tanh(0.5) + 1.0, 1e-6, 0);
    CHECK_OK(nb_graph_backward(g, s2, NULL, &err), &err);
    double th = tanh(0.5);
    CHECK_NEAR(nb_grad(g, x)[0], 1.0 + (1 - th * th) + 2.0, 1e-6, 0);
    nb_graph_free(g);
}

/* Max sends the gradient to the larger input and splits it at a tie. */
static void max_ties(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int64_t three = 3;
    int a = nb_input(g, "a", 1, &three), b = nb_input(g, "b", 1, &three);
    int m = nb_max(g, "m", a, b);
    nb_node_set_requires_grad(g, a, 1);
    nb_node_set_requires_grad(g, b, 1);
    CHECK_OK(nb_graph_prepare(g, 1, &err), &err);
    float av[3] = {1, 2, 3}, bv[3] = {0, 2, 4};
    memcpy(nb_value(g, a), av, sizeof av);
    memcpy(nb_value(g, b), bv, sizeof bv);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK_OK(nb_graph_backward(g, m, NULL, &err), &err);
    CHECK(nb_grad(g, a)[0] == 1.0f && nb_grad(g, b)[0] == 0.0f);
    CHECK(nb_grad(g, a)[1] == 0.5f && nb_grad(g, b)[1] == 0.5f);
    CHECK(nb_grad(g, a)[2] == 0.0f && nb_grad(g, b)[2] == 1.0f);
    nb_graph_free(g);
}

/* Shape errors are found while building and name both nodes and both shapes; they stick. */
static void shape_errors(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int64_t d4 = 4, d5 = 5;
    int a = nb_input(g, "a", 1, &d4), b = nb_input(g, "b", 1, &d5);
    CHECK(nb_add(g, "sum", a, b) < 0);
    CHECK(nb_graph_error(g, &err) == NB_ESHAPE);
    CHECK_MSG(strstr(err.msg, "'a' is [N,4]") && strstr(err.msg, "'b' is [N,5]") &&
              strstr(err.msg, "sum"), "%s", err.msg);
    CHECK(nb_relu(g, "r", a) < 0); /* sticky */
    CHECK(nb_graph_prepare(g, 2, &err) == NB_ESHAPE);
    nb_graph_free(g);

    g = nb_graph_new(1, NULL);
    int64_t img[3] = {3, 10, 20};
    int x = nb_input(g, "x", 3, img);
    CHECK(nb_linear(g, "fc", x, 60, 1) < 0);
    nb_graph_error(g, &err);
    CHECK_MSG(strstr(err.msg, "flatten") != NULL, "%s", err.msg);
    nb_graph_free(g);

    g = nb_graph_new(1, NULL);
    x = nb_input(g, "x", 1, &d4);
    CHECK(nb_relu(g, "x", x) < 0);
    nb_graph_error(g, &err);
    CHECK_MSG(strstr(err.msg, "already exists") != NULL, "%s", err.msg);
    nb_graph_free(g);
}

/* The batch size changes between runs without rebuilding; results do not depend on it. */
static void batch_size_changes(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int in, out;
    CHECK_OK(nb_describe(g, "4-8-3", "mlp", &in, &out, &err), &err);
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_graph_init_params(g, NB_INIT_KAIMING_UNIFORM, &rng);
    float x[5 * 4], y5[5 * 3];
    for (int i = 0; i < 20; i++)
        x[i] = nb_rng_normal(&rng);
    CHECK_OK(nb_graph_prepare(g, 5, &err), &err);
    memcpy(nb_value(g, in), x, sizeof x);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    memcpy(y5, nb_value(g, out), sizeof y5);
    for (int64_t b = 1; b <= 5; b += 2) {
        CHECK_OK(nb_graph_prepare(g, b, &err), &err);
        memcpy(nb_value(g, in), x, (size_t)b * 4 * sizeof(float));
        CHECK_OK(nb_graph_forward(g, &err), &err);
        for (int i = 0; i < b * 3; i++)
            CHECK_NEAR(nb_value(g, out)[i], y5[i], 1e-5, 1e-5);
    }
    nb_graph_free(g);
}

/* Cross-entropy is exact for logits of magnitude 1e4; softmax then log is not. */
static void large_logits(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int64_t three = 3;
    int z = nb_input(g, "z", 1, &three);
    int y = nb_labels(g, "y");
    int ce = nb_cross_entropy(g, "ce", z, y);
    nb_node_set_requires_grad(g, z, 1);
    CHECK_OK(nb_graph_prepare(g, 2, &err), &err);
    float zv[6] = {1e4f, 0, -1e4f, 1e4f, 0, -1e4f};
    memcpy(nb_value(g, z), zv, sizeof zv);
    nb_labels_data(g, y)[0] = 0;
    nb_labels_data(g, y)[1] = 1;
    CHECK_OK(nb_graph_forward(g, &err), &err);
    /* (0 + 1e4) / 2 */
    CHECK_NEAR(nb_value(g, ce)[0], 5e3, 1e-3, 0);
    CHECK_OK(nb_graph_backward(g, ce, NULL, &err), &err);
    const float *dz = nb_grad(g, z);
    /* d/dz = (softmax − onehot)/N: sample 0 → 0; sample 1 → [0.5, −0.5, 0] */
    CHECK_NEAR(dz[0], 0, 1e-7, 0);
    CHECK_NEAR(dz[3], 0.5, 1e-7, 0);
    CHECK_NEAR(dz[4], -0.5, 1e-7, 0);
    for (int i = 0; i < 6; i++)
        CHECK(isfinite(dz[i]));
    nb_graph_free(g);
}

/* The nearest-neighbour model: forward picks the closest row; backward refuses. */
static void nearest_neighbour(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int64_t two = 2;
    int x = nb_input(g, "x", 1, &two);
    int nn = nb_nearest(g, "nn", x, 3);
    CHECK_OK(nb_graph_prepare(g, 2, &err), &err);
    float W[6] = {0, 0, 10, 0, 0, 10}, xv[4] = {9, 1, 1, 8};
    memcpy(nb_value(g, nb_graph_find(g, "nn.weight")), W, sizeof W);
    memcpy(nb_value(g, x), xv, sizeof xv);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK(nb_value(g, nn)[0] == 1.0f && nb_value(g, nn)[1] == 2.0f);
    CHECK(nb_graph_backward(g, nn, NULL, &err) == NB_ENOGRAD);
    CHECK_MSG(strstr(err.msg, "nn") && strstr(err.msg, "piecewise constant"), "%s", err.msg);
    nb_graph_free(g);
}

/* Dropout: off in evaluation, inverted scaling in training, seeded. */
static void dropout_modes(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(5, NULL);
    int64_t n = 1000;
    int x = nb_input(g, "x", 1, &n);
    int d = nb_dropout(g, "d", x, 0.5f);
    CHECK_OK(nb_graph_prepare(g, 1, &err), &err);
    for (int i = 0; i < n; i++)
        nb_value(g, x)[i] = 1.0f;
    CHECK_OK(nb_graph_forward(g, &err), &err);
    for (int i = 0; i < n; i++)
        CHECK(nb_value(g, d)[i] == 1.0f);
    nb_graph_set_training(g, 1);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    int zeros = 0, twos = 0;
    for (int i = 0; i < n; i++) {
        zeros += nb_value(g, d)[i] == 0.0f;
        twos += nb_value(g, d)[i] == 2.0f;
    }
    CHECK(zeros + twos == n);
    CHECK_MSG(zeros > 430 && zeros < 570, "%d zeros of 1000", zeros);
    nb_graph_free(g);
}

/* Inputs too large per sample and backward from labels are refused, not crashed on. */
static void refusals(void)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    int64_t huge[3] = {1 << 30, 1 << 30, 1 << 30};
    CHECK(nb_input(g, "x", 3, huge) < 0);
    nb_graph_error(g, &err);
    CHECK_MSG(strstr(err.msg, "2^30") != NULL, "%s", err.msg);
    nb_graph_free(g);

    g = nb_graph_new(1, NULL);
    int y = nb_labels(g, "y");
    CHECK_OK(nb_graph_prepare(g, 2, &err), &err);
    CHECK(nb_graph_backward(g, y, NULL, &err) == NB_EINVAL);
    CHECK_MSG(strstr(err.msg, "labels") != NULL, "%s", err.msg);
    nb_graph_free(g);
}

int main(void)
{
    refusals();
    linear_by_hand();
    softmax_by_hand();
    fan_out_sums();
    max_ties();
    shape_errors();
    batch_size_changes();
    large_logits();
    nearest_neighbour();
    dropout_modes();
    return check_finish("test_graph");
}
