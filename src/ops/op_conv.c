/* 2-D convolution (torch.nn.Conv2d), a Linear whose weights are shared across positions:
 * each output pixel is a Linear of the input window under it.
 *
 *   forward   Y[n,k,p,q] = b[k] + Σ_{c,r,s} W[k,c,r,s] · X[n, g·Cg + c, p·sh − pt + r·dh,
 *                                                              q·sw − pl + s·dw]
 *             X (N,C,H,W)  W (K,Cg,R,S)  b (K)  Y (N,K,P,Q);  g = k / Kg is k's group,
 *             Cg = C/groups, Kg = K/groups, X is 0 outside [0,H)×[0,W) (zero padding),
 *             P = ⌊(H + pt + pb − dh(R − 1) − 1)/sh⌋ + 1, Q likewise.
 *   backward  dX[n,c,h,w] += Σ_{k,r,s: h = p·sh − pt + r·dh, w = q·sw − pl + s·dw} dY[n,k,p,q]·W[k,c,r,s]
 *             dW[k,c,r,s] += Σ_{n,p,q} dY[n,k,p,q] · X[n, g·Cg + c, p·sh − pt + r·dh, …]
 *             db[k]       += Σ_{n,p,q} dY[n,k,p,q]
 * With X unrolled per sample and group into col = im2col(X) (CgRS × PQ), these are Linear's
 * three products: Y = W·col + b, dcol = Wᵀ·dY (then folded back: dX = col2im(dcol)),
 * dW = dY·colᵀ. The kernels live in the backend (backend/conv.h); this file holds the shape
 * rule and the wiring. Cross-correlation, no kernel flip, as PyTorch. */
#include "ops/window.h"

#include <stdio.h>
#include <string.h>

#define LIMIT NB_WINDOW_LIMIT

void nb_conv2d_options_default(nb_conv2d_options *opt, int64_t k)
{
    *opt = (nb_conv2d_options){.kernel_h = k, .kernel_w = k, .stride_h = 1, .stride_w = 1,
                               .dilation_h = 1, .dilation_w = 1, .groups = 1, .bias = 1};
}

nb_conv_shape nb_window_shape(nb_graph *g, const nb_node *n, int64_t N)
{
    const nb_node *x = nb_in(g, n, 0);
    return (nb_conv_shape){.N = N, .C = x->dims[0], .H = x->dims[1], .W = x->dims[2],
                           .K = n->dims[0], .R = n->ints[CONV_KH], .S = n->ints[CONV_KW],
                           .P = n->dims[1], .Q = n->dims[2], .stride_h = n->ints[CONV_SH],
                           .stride_w = n->ints[CONV_SW], .pad_h = n->ints[CONV_PT],
                           .pad_w = n->ints[CONV_PL], .dil_h = n->ints[CONV_DH],
                           .dil_w = n->ints[CONV_DW], .groups = n->ints[CONV_GROUPS]};
}

/* Output extent of one spatial dimension, or an error naming it. */
static nb_status out_extent(const nb_node *n, const char *what, int64_t in, int64_t k,
                            int64_t stride, int64_t pad_lo, int64_t pad_hi, int64_t dil,
                            int64_t *out, nb_error *err)
{
    int64_t span = dil * (k - 1) + 1; /* k, dil ≤ 2^30: no overflow */
    if (in + pad_lo + pad_hi < span)
        return nb_error_set(err, NB_ESHAPE, "%s '%s': the %s window spans %lld (kernel %lld, "
                            "dilation %lld) but the padded input is only %lld", nb_op_name(n->op),
                            n->name, what, (long long)span, (long long)k, (long long)dil,
                            (long long)(in + pad_lo + pad_hi));
    *out = (in + pad_lo + pad_hi - span) / stride + 1;
    return NB_OK;
}

static nb_status window_check(const nb_node *n, nb_error *err)
{
    static const char *const names[] = {"kernel height", "kernel width", "stride", "stride",
                                        "padding", "padding", "padding", "padding", "dilation",
                                        "dilation", "groups"};
    for (int i = 0; i <= CONV_GROUPS; i++) {
        int64_t v = n->ints[i], lo = i >= CONV_PT && i <= CONV_PR ? 0 : 1;
        if (v < lo || v > LIMIT)
            return nb_error_set(err, NB_EINVAL, "%s '%s': %s %lld, expected %lld to 2^30",
                                nb_op_name(n->op), n->name, names[i], (long long)v,
                                (long long)lo);
    }
    return NB_OK;
}

nb_status nb_window_output(nb_graph *g, nb_node *n, int64_t channels, nb_error *err)
{
    const nb_node *x = nb_in(g, n, 0);
    char sx[64];
    if (!x->batched || x->ndim != 3)
        return nb_error_set(err, NB_ESHAPE, "%s '%s': input '%s' is %s, expected images "
                            "[N,C,H,W] (input(C, H, W))", nb_op_name(n->op), n->name, x->name,
                            nb_shape_format(x, sx, sizeof sx));
    nb_status s = window_check(n, err);
    int64_t P = 0, Q = 0;
    if (!s)
        s = out_extent(n, "vertical", x->dims[1], n->ints[CONV_KH], n->ints[CONV_SH],
                       n->ints[CONV_PT], n->ints[CONV_PB], n->ints[CONV_DH], &P, err);
    if (!s)
        s = out_extent(n, "horizontal", x->dims[2], n->ints[CONV_KW], n->ints[CONV_SW],
                       n->ints[CONV_PL], n->ints[CONV_PR], n->ints[CONV_DW], &Q, err);
    if (s)
        return s;
    if (P > LIMIT / Q || channels > LIMIT / (P * Q))
        return nb_error_set(err, NB_ESHAPE, "%s '%s': output [%lld,%lld,%lld] has more than 2^30 "
                            "elements per sample", nb_op_name(n->op), n->name,
                            (long long)channels, (long long)P, (long long)Q);
    n->batched = 1;
    n->ndim = 3;
    n->dims[0] = channels;
    n->dims[1] = P;
    n->dims[2] = Q;
    return NB_OK;
}

static nb_status conv_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    if (w->ndim != 4)
        return nb_shape_mismatch(err, n, x, w, "weight must be [out, in/groups, kh, kw]");
    int64_t groups = n->ints[CONV_GROUPS];
    nb_status s = nb_window_output(g, n, w->dims[0], err);
    if (s)
        return s;
    if (x->dims[0] % groups || w->dims[0] % groups || w->dims[1] * groups != x->dims[0] ||
        w->dims[2] != n->ints[CONV_KH] || w->dims[3] != n->ints[CONV_KW])
        return nb_shape_mismatch(err, n, x, w, "weight must be [out, in/groups, kh, kw] with "
                                 "groups dividing in and out");
    if (n->n_inputs == 3) {
        const nb_node *b = nb_in(g, n, 2);
        if (b->ndim != 1 || b->dims[0] != w->dims[0])
            return nb_shape_mismatch(err, n, w, b, "bias must have one element per output channel");
    }
    /* the unrolled input of one sample and group: the backend's matrix products take int
     * sizes, and one copy per thread is kept */
    int64_t CgRS = w->dims[1] * w->dims[2] * w->dims[3], PQ = n->dims[1] * n->dims[2];
    if (CgRS > LIMIT || PQ > LIMIT || CgRS > LIMIT / PQ)
        return nb_error_set(err, NB_ESHAPE, "conv2d '%s': unrolling a window of %lld values at "
                            "%lld positions exceeds 2^30 floats", n->name, (long long)CgRS,
                            (long long)PQ);
    return NB_OK;
}

static size_t conv_workspace(const nb_graph *g, const nb_node *n, int64_t N)
{
    nb_conv_shape s = nb_window_shape((nb_graph *)g, n, N);
    return nb_conv2d_workspace(g->gemm, &s, g->precision);
}

static void conv_forward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_conv_shape s = nb_window_shape(g, n, N);
    const float *b = n->n_inputs == 3 ? nb_in(g, n, 2)->value : NULL;
    nb_conv2d_forward(g->gemm, g->precision, &s, nb_in(g, n, 0)->value, nb_in(g, n, 1)->value,
                      b, n->value, g->workspace);
}

static void conv_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0), *w = nb_in(g, n, 1);
    nb_node *b = n->n_inputs == 3 ? nb_in(g, n, 2) : NULL;
    nb_conv_shape s = nb_window_shape(g, n, N);
    int dw = w->requires_grad, db = b && b->requires_grad;
    if (x->requires_grad && dw) { /* both at once: the backend may share work between them */
        nb_conv2d_backward(g->gemm, g->precision, &s, x->value, n->grad, w->value,
                           nb_grad_beta(&x->grad_fresh), x->grad, nb_grad_beta(&w->grad_fresh),
                           w->grad, db ? nb_grad_beta(&b->grad_fresh) : 1.0f, db ? b->grad : NULL,
                           g->workspace);
        return;
    }
    if (x->requires_grad)                                         /* dX += dY ⋆ᵀ W */
        nb_conv2d_backward_data(g->gemm, g->precision, &s, n->grad, w->value,
                                nb_grad_beta(&x->grad_fresh), x->grad, g->workspace);
    if (dw || db)                                                 /* dW += dY ⋆ X, db += Σ dY */
        nb_conv2d_backward_weights(g->gemm, g->precision, &s, x->value, n->grad,
                                   dw ? nb_grad_beta(&w->grad_fresh) : 1.0f, dw ? w->grad : NULL,
                                   db ? nb_grad_beta(&b->grad_fresh) : 1.0f, db ? b->grad : NULL,
                                   g->workspace);
}

const nb_op_def nb_op_conv2d_def = {
    .name = "conv2d",
    .n_inputs = 3,
    .formula = "Y[n,k] = b[k] + Σ_c W[k,c] ⋆ X[n,c]",
    .vjp = {"dX += dY ⋆ᵀ W  (col2im(Wᵀ·dY))", "dW += dY ⋆ X  (dY·colᵀ)",
            "db += Σ_{n,p,q} dY[n,:,p,q]"},
    .shape = conv_shape,
    .workspace = conv_workspace,
    .forward = conv_forward,
    .backward = conv_backward,
    .writes_fresh = 1,
};

int nb_window_build_error(nb_graph *g, nb_status code, const char *fmt, const char *name,
                       long long a, long long b)
{
    if (g && !g->error.code)
        nb_error_set(&g->error, code, fmt, name, a, b);
    return -1;
}

int nb_conv2d(nb_graph *g, const char *name, int x, int64_t out_channels,
              const nb_conv2d_options *opt)
{
    if (!g || !name || !opt || x < 0 || x >= nb_graph_node_count(g) || g->error.code)
        return nb_graph_add(g, name ? name : "", NB_OP_CONV2D, &x, 1, 0, NULL, 0, 0);
    const nb_node *xn = &g->nodes[x];
    int64_t C = xn->ndim == 3 ? xn->dims[0] : 1, groups = opt->groups;
    if (out_channels < 1 || out_channels > LIMIT)
        return nb_window_build_error(g, NB_EINVAL, "conv2d '%s': %lld output channels, expected 1 to "
                           "2^30%.0lld", name, (long long)out_channels, 0);
    if (groups < 1 || groups > LIMIT || C % groups || out_channels % groups)
        return nb_window_build_error(g, NB_ESHAPE, "conv2d '%s': groups = %lld must divide both the input "
                           "channels (%lld) and the output channels", name, (long long)groups,
                           (long long)C);
    if (opt->kernel_h < 1 || opt->kernel_w < 1 || opt->kernel_h > LIMIT || opt->kernel_w > LIMIT)
        return nb_window_build_error(g, NB_EINVAL, "conv2d '%s': kernel %lldx%lld, expected 1 to 2^30 "
                           "on each side", name, (long long)opt->kernel_h,
                           (long long)opt->kernel_w);
    int64_t ints[12] = {[CONV_KH] = opt->kernel_h, [CONV_KW] = opt->kernel_w,
                        [CONV_SH] = opt->stride_h, [CONV_SW] = opt->stride_w,
                        [CONV_PT] = opt->pad_h, [CONV_PL] = opt->pad_w, [CONV_PB] = opt->pad_h,
                        [CONV_PR] = opt->pad_w, [CONV_DH] = opt->dilation_h,
                        [CONV_DW] = opt->dilation_w, [CONV_GROUPS] = groups};
    if (opt->pad_same) {
        if (opt->stride_h != 1 || opt->stride_w != 1)
            return nb_window_build_error(g, NB_EINVAL, "conv2d '%s': padding='same' needs stride 1 (found "
                               "%lld, %lld)", name, (long long)opt->stride_h,
                               (long long)opt->stride_w);
        if (opt->dilation_h < 1 || opt->dilation_w < 1 || opt->dilation_h > LIMIT ||
            opt->dilation_w > LIMIT)
            return nb_window_build_error(g, NB_EINVAL, "conv2d '%s': dilation %lld, %lld, expected 1 to "
                               "2^30", name, (long long)opt->dilation_h,
                               (long long)opt->dilation_w);
        int64_t th = opt->dilation_h * (opt->kernel_h - 1), tw = opt->dilation_w * (opt->kernel_w - 1);
        ints[CONV_PT] = th / 2;
        ints[CONV_PB] = th - th / 2;
        ints[CONV_PL] = tw / 2;
        ints[CONV_PR] = tw - tw / 2;
    }
    /* The output's shape rule runs once before the parameters exist: a layer whose output
     * cannot be built must not first allocate a weight of up to 2^32 floats. */
    nb_node probe = {.op = NB_OP_CONV2D, .n_inputs = 1, .inputs = {x}};
    snprintf(probe.name, sizeof probe.name, "%s", name);
    memcpy(probe.ints, ints, sizeof ints);
    nb_error probe_err;
    if (nb_window_output(g, &probe, out_channels, &probe_err) != NB_OK) {
        nb_error_set(&g->error, probe_err.code, "%s", probe_err.msg);
        return -1;
    }
    char wname[NB_NAME_MAX + 8], bname[NB_NAME_MAX + 8];
    snprintf(wname, sizeof wname, "%s.weight", name);
    snprintf(bname, sizeof bname, "%s.bias", name);
    int64_t wdims[4] = {out_channels, C / groups, opt->kernel_h, opt->kernel_w};
    int inputs[3] = {x, nb_param(g, wname, 4, wdims), -1};
    if (opt->bias)
        inputs[2] = nb_param(g, bname, 1, &out_channels);
    if (inputs[1] < 0 || (opt->bias && inputs[2] < 0))
        return -1;
    return nb_graph_add_settings(g, name, NB_OP_CONV2D, inputs, opt->bias ? 3 : 2, ints, 0, 0);
}
