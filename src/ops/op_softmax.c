/* Softmax and LogSoftmax over the last dimension (docs/lecture.md §4).
 *
 *   Softmax     y_i = exp(x_i − m) / Σ_j exp(x_j − m),  m = max_j x_j
 *               Jacobian y_i(δ_ij − y_j), so  dx_i += y_i (dy_i − Σ_j dy_j y_j)
 *   LogSoftmax  y_i = x_i − m − log Σ_j exp(x_j − m)
 *               Jacobian δ_ij − softmax_j, so dx_i += dy_i − softmax_i Σ_j dy_j
 *
 * Subtracting the row maximum m changes nothing mathematically (it cancels) but keeps every
 * exponent ≤ 0, so exp cannot overflow for logits of any magnitude. LogSoftmax's gradient
 * does not saturate: softmax probabilities can round to 0 or 1, log-probabilities stay exact
 * — which is why cross-entropy is computed on log-softmax (§5.2). */
#include "core/graph.h"

#include <math.h>

static nb_status softmax_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, 0);
    (void)err;
    nb_shape_copy(n, x);
    return NB_OK;
}

static int64_t last_dim(const nb_node *n) { return n->dims[n->ndim - 1]; }
static int64_t rows(const nb_node *n, int64_t N) { return nb_node_elems(n, N) / last_dim(n); }

/* log Σ_j exp(x_j − m) with m = max_j x_j. The maximum is kept apart (not added back) so that
 * for logits near 1e4, where float steps are 1e-3, the small log term keeps its digits. */
static float log_sum_exp_shifted(const float *x, int64_t C, float *m_out)
{
    float m = x[0];
    for (int64_t j = 1; j < C; j++)
        m = x[j] > m ? x[j] : m;
    double s = 0.0;
    for (int64_t j = 0; j < C; j++)
        s += exp((double)(x[j] - m));
    *m_out = m;
    return (float)log(s);
}

static void softmax_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    int64_t C = last_dim(n);
    for (int64_t r = 0; r < rows(n, N); r++) {
        float m, lse = log_sum_exp_shifted(x + r * C, C, &m);
        for (int64_t j = 0; j < C; j++)
            n->value[r * C + j] = expf((x[r * C + j] - m) - lse);
    }
}

static void softmax_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *dx = nb_in(g, n, 0)->grad;
    const float *y = n->value, *dy = n->grad;
    int64_t C = last_dim(n);
    for (int64_t r = 0; r < rows(n, N); r++) {
        double dot = 0.0;
        for (int64_t j = 0; j < C; j++)
            dot += (double)dy[r * C + j] * y[r * C + j];
        for (int64_t i = 0; i < C; i++)
            dx[r * C + i] += y[r * C + i] * (dy[r * C + i] - (float)dot);
    }
}

static void log_softmax_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    int64_t C = last_dim(n);
    for (int64_t r = 0; r < rows(n, N); r++) {
        float m, lse = log_sum_exp_shifted(x + r * C, C, &m);
        for (int64_t j = 0; j < C; j++)
            n->value[r * C + j] = (x[r * C + j] - m) - lse;
    }
}

static void log_softmax_backward(nb_graph *g, nb_node *n, int64_t N)
{
    float *dx = nb_in(g, n, 0)->grad;
    const float *y = n->value, *dy = n->grad;
    int64_t C = last_dim(n);
    for (int64_t r = 0; r < rows(n, N); r++) {
        double sum = 0.0;
        for (int64_t j = 0; j < C; j++)
            sum += dy[r * C + j];
        for (int64_t i = 0; i < C; i++)
            dx[r * C + i] += dy[r * C + i] - expf(y[r * C + i]) * (float)sum;
    }
}

const nb_op_def nb_op_softmax_def = {.name = "softmax", .n_inputs = 1, .shape = softmax_shape,
                                     .forward = softmax_forward, .backward = softmax_backward,
                                     .formula = "yᵢ = e^xᵢ / Σⱼ e^xⱼ",
                                     .vjp = {"dxᵢ += yᵢ (dyᵢ − Σⱼ dyⱼ yⱼ)"}};
const nb_op_def nb_op_log_softmax_def = {.name = "log_softmax", .n_inputs = 1,
                                         .shape = softmax_shape, .forward = log_softmax_forward,
                                         .backward = log_softmax_backward,
                                         .formula = "yᵢ = xᵢ − log Σⱼ e^xⱼ",
                                         .vjp = {"dxᵢ += dyᵢ − softmaxᵢ Σⱼ dyⱼ"}};

int nb_softmax(nb_graph *g, const char *name, int x)
{
    return nb_graph_add(g, name, NB_OP_SOFTMAX, &x, 1, 0, NULL, 0, 0);
}

int nb_log_softmax(nb_graph *g, const char *name, int x)
{
    return nb_graph_add(g, name, NB_OP_LOG_SOFTMAX, &x, 1, 0, NULL, 0, 0);
}
