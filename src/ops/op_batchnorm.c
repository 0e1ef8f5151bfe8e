/* Batch normalisation (torch.nn.BatchNorm1d / BatchNorm2d; Ioffe & Szegedy 2015), per channel c
 * over the M = N·HW values x[n,c,·] of a batch ([N,C]: HW = 1; [N,C,L]: HW = L; [N,C,H,W]:
 * HW = H·W):
 *
 *   training    μ = (1/M) Σ x,   σ² = (1/M) Σ (x − μ)²   (biased: what normalises the batch)
 *               x̂ = (x − μ)/√(σ² + eps),   y = γ x̂ + β
 *               running_mean ← (1 − m)·running_mean + m·μ
 *               running_var  ← (1 − m)·running_var  + m·σ²·M/(M − 1)   (unbiased, as PyTorch)
 *               num_batches_tracked += 1
 *   evaluation  μ, σ² = running_mean, running_var (constants)
 *
 *   backward    dβ += Σ dy,   dγ += Σ dy·x̂
 *               training:    dx += γ/√(σ²+eps) · (dy − dβ/M − x̂·dγ/M)
 *                            (μ and σ² depend on every x of the channel: the two extra terms
 *                            are their paths, ∂C/∂μ·∂μ/∂x and ∂C/∂σ²·∂σ²/∂x, simplified)
 *               evaluation:  dx += γ/√(σ²+eps) · dy
 * where dβ, dγ here are this batch's sums. The forward keeps μ and 1/√(σ² + eps) in the node's
 * scratch for backward, and which of the two modes it ran in (iparam).
 *
 * The running statistics are buffers (nb_buffer): saved in model files and checkpoints, never
 * trained. With a single value per channel (M = 1) the unbiased factor M/(M − 1) is taken as 1
 * where PyTorch refuses the batch. */
#include "backend/conv.h"
#include "core/graph.h"

#include <stdio.h>

enum { BN_X, BN_WEIGHT, BN_BIAS, BN_MEAN, BN_VAR, BN_COUNT };

static int64_t per_channel(const nb_node *x)
{
    int64_t hw = 1;
    for (int i = 1; i < x->ndim; i++)
        hw *= x->dims[i];
    return hw;
}

static nb_status bn_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, BN_X);
    char sx[64];
    if (!x->batched || x->ndim < 1 || x->ndim > 3)
        return nb_error_set(err, NB_ESHAPE, "batch_norm '%s': input '%s' is %s, expected "
                            "[N,C], [N,C,L] or [N,C,H,W]", n->name, x->name,
                            nb_shape_format(x, sx, sizeof sx));
    for (int k = BN_WEIGHT; k <= BN_VAR; k++) {
        const nb_node *p = nb_in(g, n, k);
        if (p->ndim != 1 || p->dims[0] != x->dims[0])
            return nb_shape_mismatch(err, n, x, p, "one value per channel expected");
    }
    if (nb_in(g, n, BN_COUNT)->size != 1)
        return nb_shape_mismatch(err, n, x, nb_in(g, n, BN_COUNT), "a single count expected");
    if (!(n->fparam >= 0.0f && n->fparam <= 1.0f) || !(n->fparam2 > 0.0f))
        return nb_error_set(err, NB_EINVAL, "batch_norm '%s': momentum %g and eps %g, expected "
                            "0 ≤ momentum ≤ 1 and eps > 0", n->name, (double)n->fparam,
                            (double)n->fparam2);
    nb_shape_copy(n, x);
    n->aux_fixed = 3 * x->dims[0]; /* μ, 1/√(σ² + eps), σ² per channel */
    return NB_OK;
}

static void bn_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const nb_node *x = nb_in(g, n, BN_X);
    int64_t C = x->dims[0];
    nb_bn_shape s = {.N = N, .C = C, .HW = per_channel(x)};
    float *mean = n->aux, *invstd = n->aux + C, *var = n->aux + 2 * C;
    float *running_mean = nb_in(g, n, BN_MEAN)->value, *running_var = nb_in(g, n, BN_VAR)->value;
    n->iparam = g->training; /* what backward differentiates */
    nb_batch_norm_forward(g->gemm, g->precision, &s, x->value, nb_in(g, n, BN_WEIGHT)->value,
                          nb_in(g, n, BN_BIAS)->value, n->fparam2, g->training, running_mean,
                          running_var, n->value, mean, invstd, var);
    if (!g->training)
        return;
    double M = (double)(N * s.HW), unbias = M > 1 ? M / (M - 1) : 1.0, m = n->fparam;
    for (int64_t c = 0; c < C; c++) {
        running_mean[c] = (float)((1.0 - m) * running_mean[c] + m * mean[c]);
        running_var[c] = (float)((1.0 - m) * running_var[c] + m * var[c] * unbias);
    }
    nb_in(g, n, BN_COUNT)->value[0] += 1.0f;
}

static void bn_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, BN_X), *w = nb_in(g, n, BN_WEIGHT), *b = nb_in(g, n, BN_BIAS);
    int64_t C = x->dims[0];
    nb_bn_shape s = {.N = N, .C = C, .HW = per_channel(x)};
    /* γ and β share one beta: both are created together, and fresh together */
    float pbeta = w->requires_grad ? nb_grad_beta(&w->grad_fresh) : 1.0f;
    if (b->requires_grad)
        nb_grad_beta(&b->grad_fresh);
    nb_batch_norm_backward(g->gemm, g->precision, &s, x->value, n->grad, w->value, n->aux,
                           n->aux + C, n->iparam,
                           x->requires_grad ? nb_grad_beta(&x->grad_fresh) : 1.0f,
                           x->requires_grad ? x->grad : NULL, pbeta,
                           w->requires_grad ? w->grad : NULL, b->requires_grad ? b->grad : NULL);
}

const nb_op_def nb_op_batch_norm_def = {
    .name = "batch_norm",
    .n_inputs = 6,
    .formula = "Y = γ (X − μ)/√(σ² + ε) + β",
    .vjp = {"dX += γσ⁻¹ (dY − Σ dY/M − X̂ Σ dY⊙X̂/M)", "dγ += Σ dY ⊙ X̂", "dβ += Σ dY",
            "— (running mean, not trained)", "— (running variance, not trained)",
            "— (count, not trained)"},
    .shape = bn_shape,
    .forward = bn_forward,
    .backward = bn_backward,
    .writes_fresh = 1,
    /* each channel's statistics are read from x before its values are written, and
     * y[n,c,·] = a_c·x[n,c,·] + b_c element by element: y may be x */
    .in_place = 1,
};

int nb_batch_norm(nb_graph *g, const char *name, int x, float momentum, float eps)
{
    if (!g || !name || x < 0 || x >= nb_graph_node_count(g) || g->error.code)
        return nb_graph_add(g, name ? name : "", NB_OP_BATCH_NORM, &x, 1, 0, NULL, 0, 0);
    int64_t C = g->nodes[x].ndim >= 1 ? g->nodes[x].dims[0] : 1;
    static const char *const suffix[] = {"", ".weight", ".bias", ".running_mean",
                                         ".running_var", ".num_batches_tracked"};
    int inputs[6] = {x};
    for (int k = BN_WEIGHT; k <= BN_COUNT; k++) {
        char pname[NB_NAME_MAX + 24];
        snprintf(pname, sizeof pname, "%s%s", name, suffix[k]);
        inputs[k] = k <= BN_BIAS ? nb_param(g, pname, 1, &C)
                                 : nb_buffer(g, pname, k == BN_COUNT ? 0 : 1, &C);
        if (inputs[k] < 0)
            return -1;
    }
    /* PyTorch's reset: γ = 1, β = 0, running_mean = 0, running_var = 1, count = 0 */
    float *gamma = nb_value(g, inputs[BN_WEIGHT]), *var = nb_value(g, inputs[BN_VAR]);
    for (int64_t c = 0; c < C; c++)
        gamma[c] = var[c] = 1.0f;
    return nb_graph_add_settings(g, name, NB_OP_BATCH_NORM, inputs, 6, NULL, momentum, eps);
}
