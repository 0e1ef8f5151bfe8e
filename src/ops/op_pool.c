/* Pooling (torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1)): each channel of each image on
 * its own, a window of R × S slid with stride (sh, sw) over the input padded by (ph, pw).
 *
 *   max     y[n,c,p,q] = max_{(h,w) ∈ window(p,q)} x[n,c,h,w]   (padding counts as −∞)
 *           dx[n,c,h*,w*] += dy[n,c,p,q] at the window's arg-max (h*, w*). Ties: the first
 *           maximum in row-major window order wins, and only it receives the gradient (as
 *           PyTorch on the CPU); overlapping windows (stride < kernel) add up. The arg-max of
 *           every output is kept in the node's scratch from forward to backward.
 *   avg     y[n,c,p,q] = (1/D) Σ_{(h,w) ∈ window(p,q) ∩ x} x[n,c,h,w]
 *           dx[n,c,h,w] += dy[n,c,p,q] / D for every window containing (h, w);
 *           D = R·S with count_include_pad (PyTorch's default), else the elements inside x.
 *   global  y[n,c] = (1/HW) Σ_{h,w} x[n,c,h,w],   dx[n,c,h,w] += dy[n,c] / HW   ([N,C,H,W] → [N,C])
 *
 * Each backward writes dx rather than adding to it when the graph marked dx fresh (graph.c):
 * the kernels zero a plane while it is in cache, where zeroing all of dx beforehand was one
 * more pass over memory (fashion-cnn: 19 MB a step).
 *
 * The max is piecewise linear: at a tie its derivative does not exist, and the gradient check
 * treats a change of arg-max as a kink (gradcheck.c). */
#include "ops/window.h"

_Static_assert(sizeof(int32_t) == sizeof(float), "the arg-max is kept in float scratch");

void nb_pool2d_options_default(nb_pool2d_options *opt, int64_t k)
{
    *opt = (nb_pool2d_options){.kernel_h = k, .kernel_w = k, .stride_h = k, .stride_w = k,
                               .count_include_pad = 1};
}

static nb_status pool_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, 0);
    nb_status s = nb_window_output(g, n, x->ndim == 3 ? x->dims[0] : 1, err);
    if (s)
        return s;
    /* PyTorch: "pad should be at most half of effective kernel size" — so that every window
     * holds at least one element of x */
    if (2 * n->ints[CONV_PT] > n->ints[CONV_KH] || 2 * n->ints[CONV_PL] > n->ints[CONV_KW])
        return nb_error_set(err, NB_EINVAL, "%s '%s': padding %lld, %lld is more than half the "
                            "kernel %lldx%lld", nb_op_name(n->op), n->name,
                            (long long)n->ints[CONV_PT], (long long)n->ints[CONV_PL],
                            (long long)n->ints[CONV_KH], (long long)n->ints[CONV_KW]);
    if (n->op == NB_OP_MAX_POOL2D) /* the arg-max of every output, as int32 */
        n->aux_size = n->dims[0] * n->dims[1] * n->dims[2];
    return NB_OK;
}

static void max_forward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_conv_shape s = nb_window_shape(g, n, N);
    nb_max_pool2d_forward(g->gemm, g->precision, &s, nb_in(g, n, 0)->value, n->value,
                          (int32_t *)n->aux); /* NULL in an inference plan: not kept */
}

static void max_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_conv_shape s = nb_window_shape(g, n, N);
    nb_node *x = nb_in(g, n, 0);
    nb_max_pool2d_backward(g->gemm, g->precision, &s, n->grad, (const int32_t *)n->aux,
                           nb_grad_beta(&x->grad_fresh), x->grad);
}

static void avg_forward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_conv_shape s = nb_window_shape(g, n, N);
    nb_avg_pool2d_forward(g->gemm, g->precision, &s, (int)n->ints[POOL_INCLUDE_PAD],
                          nb_in(g, n, 0)->value, n->value);
}

static void avg_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_conv_shape s = nb_window_shape(g, n, N);
    nb_node *x = nb_in(g, n, 0);
    nb_avg_pool2d_backward(g->gemm, g->precision, &s, (int)n->ints[POOL_INCLUDE_PAD], n->grad,
                           nb_grad_beta(&x->grad_fresh), x->grad);
}

const nb_op_def nb_op_max_pool2d_def = {.name = "max_pool2d", .n_inputs = 1,
                                        .formula = "y[n,c,p,q] = max over window(p,q) of X[n,c]",
                                        .vjp = {"dX[argmax] += dY (first maximum at a tie)"},
                                        .shape = pool_shape, .forward = max_forward,
                                        .backward = max_backward, .aux_for_backward = 1,
                                        .writes_fresh = 1};
const nb_op_def nb_op_avg_pool2d_def = {.name = "avg_pool2d", .n_inputs = 1,
                                        .formula = "y[n,c,p,q] = (1/D) Σ over window(p,q) of X[n,c]",
                                        .vjp = {"dX[window] += dY / D"},
                                        .shape = pool_shape, .forward = avg_forward,
                                        .backward = avg_backward, .writes_fresh = 1};

static int pool(nb_graph *g, const char *name, nb_op op, int x, const nb_pool2d_options *opt)
{
    if (!opt)
        return nb_graph_add(g, name, op, &x, 1, -1, NULL, 0, 0); /* rejected as invalid */
    int64_t ints[12] = {[CONV_KH] = opt->kernel_h, [CONV_KW] = opt->kernel_w,
                        [CONV_SH] = opt->stride_h, [CONV_SW] = opt->stride_w,
                        [CONV_PT] = opt->pad_h, [CONV_PL] = opt->pad_w, [CONV_PB] = opt->pad_h,
                        [CONV_PR] = opt->pad_w, [CONV_DH] = 1, [CONV_DW] = 1,
                        [CONV_GROUPS] = 1, [POOL_INCLUDE_PAD] = opt->count_include_pad != 0};
    return nb_graph_add_settings(g, name, op, &x, 1, ints, 0, 0);
}

int nb_max_pool2d(nb_graph *g, const char *name, int x, const nb_pool2d_options *opt)
{
    return pool(g, name, NB_OP_MAX_POOL2D, x, opt);
}

int nb_avg_pool2d(nb_graph *g, const char *name, int x, const nb_pool2d_options *opt)
{
    return pool(g, name, NB_OP_AVG_POOL2D, x, opt);
}

/* ---- global average pooling ---------------------------------------------------------------- */

static nb_status global_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, 0);
    char sx[64];
    if (!x->batched || x->ndim != 3)
        return nb_error_set(err, NB_ESHAPE, "global_avg_pool '%s': input '%s' is %s, expected "
                            "images [N,C,H,W]", n->name, x->name, nb_shape_format(x, sx, sizeof sx));
    n->batched = 1;
    n->ndim = 1;
    n->dims[0] = x->dims[0];
    return NB_OK;
}

static void global_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const nb_node *x = nb_in(g, n, 0);
    int64_t HW = x->dims[1] * x->dims[2], planes = N * x->dims[0];
    for (int64_t i = 0; i < planes; i++) {
        const float *restrict v = x->value + i * HW;
        float sum = 0.0f;
        for (int64_t k = 0; k < HW; k++)
            sum += v[k];
        n->value[i] = sum / (float)HW;
    }
}

static void global_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0);
    int64_t HW = x->dims[1] * x->dims[2], planes = N * x->dims[0];
    int write = nb_grad_beta(&x->grad_fresh) == 0.0f;
    for (int64_t i = 0; i < planes; i++) {
        float d = n->grad[i] / (float)HW, *restrict dx = x->grad + i * HW;
        for (int64_t k = 0; k < HW; k++)
            dx[k] = write ? d : dx[k] + d;
    }
}

const nb_op_def nb_op_global_avg_pool_def = {.name = "global_avg_pool", .n_inputs = 1,
                                             .formula = "y[n,c] = (1/HW) Σ_{h,w} X[n,c,h,w]",
                                             .vjp = {"dX[n,c,:,:] += dY[n,c] / HW"},
                                             .shape = global_shape, .forward = global_forward,
                                             .backward = global_backward, .writes_fresh = 1};

int nb_global_avg_pool(nb_graph *g, const char *name, int x)
{
    return nb_graph_add(g, name, NB_OP_GLOBAL_AVG_POOL, &x, 1, 0, NULL, 0, 0);
}
