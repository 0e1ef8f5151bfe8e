/* Layer normalisation (torch.nn.LayerNorm; Ba, Kiros & Hinton 2016): each sample normalised
 * over its last K dimensions (normalized_shape), independently of the other samples, in
 * training and in evaluation alike. With D = the product of those K dimensions, a sample of
 * the per-sample shape holds R = size/D rows of D values, and for each row:
 *
 *   μ = (1/D) Σ x,   σ² = (1/D) Σ (x − μ)²   (biased, as PyTorch),   σ⁻¹ = 1/√(σ² + eps)
 *   x̂ = (x − μ)·σ⁻¹,   y = γ ⊙ x̂ + β      (γ, β: normalized_shape, one value per position)
 *
 *   backward   dβ += Σ_rows dy,   dγ += Σ_rows dy ⊙ x̂,   and with g = dy ⊙ γ
 *              dx += σ⁻¹ · (g − mean(g) − x̂ · mean(g ⊙ x̂))   (means over the row's D values:
 *              μ and σ depend on every x of the row; the two extra terms are their paths)
 *
 * K = iparam (1 ≤ K ≤ ndim), eps = fparam. nabla's default K = ndim normalises the whole
 * per-sample shape: nn.LayerNorm(x.shape[1:]) (for [N, D] inputs the usual nn.LayerNorm(D));
 * K = 1 is nn.LayerNorm(x.shape[-1]). The forward keeps μ and σ⁻¹ of each row in the node's
 * scratch for backward. */
#include "backend/gemm_pool.h"
#include "core/graph.h"

#include <math.h>
#include <stdio.h>

enum { LN_X, LN_WEIGHT, LN_BIAS };

/* D: the values of one row (the product of the last K dimensions). */
static int64_t row_size(const nb_node *x, int K)
{
    int64_t D = 1;
    for (int i = x->ndim - K; i < x->ndim; i++)
        D *= x->dims[i];
    return D;
}

static nb_status ln_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, LN_X);
    char sx[64];
    int K = n->iparam;
    if (!x->batched || x->ndim < 1)
        return nb_error_set(err, NB_ESHAPE, "layer_norm '%s': input '%s' is %s, expected a "
                            "batched tensor", n->name, x->name, nb_shape_format(x, sx, sizeof sx));
    if (K < 1 || K > x->ndim)
        return nb_error_set(err, NB_ESHAPE, "layer_norm '%s': dims=%d, but input '%s' is %s: "
                            "expected 1 to %d (the last dimensions of a sample)", n->name, K,
                            x->name, nb_shape_format(x, sx, sizeof sx), x->ndim);
    for (int k = LN_WEIGHT; k <= LN_BIAS; k++) {
        const nb_node *p = nb_in(g, n, k);
        int ok = p->ndim == K;
        for (int i = 0; ok && i < K; i++)
            ok = p->dims[i] == x->dims[x->ndim - K + i];
        if (!ok)
            return nb_shape_mismatch(err, n, x, p, "the input's last dims= dimensions expected");
    }
    if (!(n->fparam > 0.0f) || !isfinite(n->fparam))
        return nb_error_set(err, NB_EINVAL, "layer_norm '%s': eps %g, expected a finite eps > 0",
                            n->name, (double)n->fparam);
    nb_shape_copy(n, x);
    n->aux_size = 2 * (x->size / row_size(x, K)); /* μ, σ⁻¹ per row */
    return NB_OK;
}

typedef struct ln_job {
    const float *x, *gamma, *beta, *dy;
    float *y, *stats, *dx;
    float eps;
    int64_t D;
} ln_job;

/* Rows [first, last): statistics in double, two passes, so that σ² does not cancel. */
static void ln_forward_rows(void *arg, int64_t first, int64_t last, int task)
{
    (void)task;
    const ln_job *j = arg;
    int64_t D = j->D;
    for (int64_t r = first; r < last; r++) {
        const float *x = j->x + r * D;
        float *y = j->y + r * D;
        double sum = 0.0, sq = 0.0;
        for (int64_t i = 0; i < D; i++)
            sum += x[i];
        double mu = sum / (double)D;
        for (int64_t i = 0; i < D; i++)
            sq += (x[i] - mu) * (x[i] - mu);
        double istd = 1.0 / sqrt(sq / (double)D + (double)j->eps);
        j->stats[2 * r] = (float)mu;
        j->stats[2 * r + 1] = (float)istd;
        for (int64_t i = 0; i < D; i++)
            y[i] = (float)((x[i] - mu) * istd) * j->gamma[i] + j->beta[i];
    }
}

static void ln_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const nb_node *x = nb_in(g, n, LN_X);
    int64_t D = row_size(x, n->iparam), rows = N * (x->size / D);
    ln_job j = {.x = x->value, .gamma = nb_in(g, n, LN_WEIGHT)->value,
                .beta = nb_in(g, n, LN_BIAS)->value, .y = n->value, .stats = n->aux,
                .eps = n->fparam, .D = D};
    nb_parallel_for(g->gemm, rows, 1 + 16384 / D, 1, 0, ln_forward_rows, &j);
}

/* dx of rows [first, last): g = dy ⊙ γ, dx += σ⁻¹ (g − mean(g) − x̂·mean(g ⊙ x̂)). */
static void ln_backward_rows(void *arg, int64_t first, int64_t last, int task)
{
    (void)task;
    const ln_job *j = arg;
    int64_t D = j->D;
    for (int64_t r = first; r < last; r++) {
        const float *x = j->x + r * D, *dy = j->dy + r * D;
        float *dx = j->dx + r * D;
        double mu = j->stats[2 * r], istd = j->stats[2 * r + 1], sum_g = 0.0, sum_gx = 0.0;
        for (int64_t i = 0; i < D; i++) {
            double gi = (double)dy[i] * j->gamma[i];
            sum_g += gi;
            sum_gx += gi * (x[i] - mu) * istd;
        }
        double mean_g = sum_g / (double)D, mean_gx = sum_gx / (double)D;
        for (int64_t i = 0; i < D; i++) {
            double xhat = (x[i] - mu) * istd;
            dx[i] += (float)(istd * ((double)dy[i] * j->gamma[i] - mean_g - xhat * mean_gx));
        }
    }
}

static void ln_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, LN_X), *w = nb_in(g, n, LN_WEIGHT), *b = nb_in(g, n, LN_BIAS);
    int64_t D = row_size(x, n->iparam), rows = N * (x->size / D);
    ln_job j = {.x = x->value, .gamma = w->value, .dy = n->grad, .dx = x->grad,
                .stats = n->aux, .D = D};
    if (x->requires_grad)
        nb_parallel_for(g->gemm, rows, 1 + 16384 / D, 1, 0, ln_backward_rows, &j);
    /* dγ, dβ: sums over the rows, in row order */
    for (int64_t r = 0; (w->requires_grad || b->requires_grad) && r < rows; r++) {
        const float *xr = x->value + r * D, *dy = n->grad + r * D;
        float mu = n->aux[2 * r], istd = n->aux[2 * r + 1];
        for (int64_t i = 0; i < D; i++) {
            if (w->requires_grad)
                w->grad[i] += dy[i] * ((xr[i] - mu) * istd);
            if (b->requires_grad)
                b->grad[i] += dy[i];
        }
    }
}

const nb_op_def nb_op_layer_norm_def = {
    .name = "layer_norm",
    .n_inputs = 3,
    .formula = "Y = γ ⊙ (X − μ)/√(σ² + ε) + β  (μ, σ² over each sample's last dims)",
    .vjp = {"dX += σ⁻¹ (G − mean G − X̂ mean(G ⊙ X̂)),  G = dY ⊙ γ", "dγ += Σ dY ⊙ X̂",
            "dβ += Σ dY"},
    .shape = ln_shape,
    .forward = ln_forward,
    .backward = ln_backward,
};

int nb_layer_norm(nb_graph *g, const char *name, int x, int dims, float eps)
{
    if (!g || !name || x < 0 || x >= nb_graph_node_count(g) || g->error.code)
        return nb_graph_add(g, name ? name : "", NB_OP_LAYER_NORM, &x, 1, 0, NULL, eps, dims);
    const nb_node *xn = &g->nodes[x];
    int K = dims == 0 ? xn->ndim : dims;
    if (K < 1 || K > xn->ndim) /* the shape rule says what was expected */
        return nb_graph_add(g, name, NB_OP_LAYER_NORM, (int[3]){x, x, x}, 3, 0, NULL, eps, K);
    int64_t shape[NB_MAX_DIMS], D = row_size(xn, K);
    for (int i = 0; i < K; i++)
        shape[i] = xn->dims[xn->ndim - K + i];
    xn = NULL; /* nb_param may move the nodes */
    static const char *const suffix[] = {"", ".weight", ".bias"};
    int inputs[3] = {x};
    for (int k = LN_WEIGHT; k <= LN_BIAS; k++) {
        char pname[NB_NAME_MAX + 8];
        snprintf(pname, sizeof pname, "%s%s", name, suffix[k]);
        if ((inputs[k] = nb_param(g, pname, K, shape)) < 0)
            return -1;
    }
    /* PyTorch's reset: γ = 1, β = 0 */
    float *gamma = nb_value(g, inputs[LN_WEIGHT]);
    for (int64_t i = 0; i < D; i++)
        gamma[i] = 1.0f;
    return nb_graph_add(g, name, NB_OP_LAYER_NORM, inputs, 3, 0, NULL, eps, K);
}
