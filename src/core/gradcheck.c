/* The gradient check of nabla.h: backprop's vector–Jacobian products against central finite
 * differences of L = Σ r ⊙ out. */
#include "core/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* L = Σ r ⊙ out after a forward pass with Dropout's generator rewound to `rng`. */
static double loss(nb_graph *g, int output, const float *r, size_t n, const nb_rng *rng)
{
    g->rng = *rng;
    nb_graph_forward_to(g, output, NULL);
    const float *y = g->nodes[output].value;
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)r[i] * y[i];
    return s;
}

/* Whether node n makes a discrete choice per element: ReLU and LeakyReLU (the side of 0),
 * Max, nearest neighbour, and max pooling (its arg-max, kept in the node's scratch). */
static int decides(const nb_node *n)
{
    return n->op == NB_OP_RELU || n->op == NB_OP_LEAKY_RELU || n->op == NB_OP_MAX ||
           n->op == NB_OP_NEAREST || n->op == NB_OP_MAX_POOL2D;
}

/* The choice element k of n made. */
static unsigned decision(nb_graph *g, const nb_node *n, int64_t k)
{
    const float *a = nb_in(g, n, 0)->value;
    if (n->op == NB_OP_RELU || n->op == NB_OP_LEAKY_RELU)
        return a[k] > 0.0f;
    if (n->op == NB_OP_MAX) {
        const float *b = nb_in(g, n, 1)->value;
        return (unsigned)((a[k] > b[k]) + 2 * (a[k] == b[k]));
    }
    if (n->op == NB_OP_MAX_POOL2D)
        return (unsigned)((const int32_t *)n->aux)[k];
    return (unsigned)n->value[k];
}

/* A hash of every branch the forward pass took at a point where the function is not
 * differentiable: which side of 0 each ReLU (or LeakyReLU) input is on, which input of each
 * Max won (or tied), which row each nearest neighbour picked, which element each max-pooling
 * window chose. A perturbation that changes it crossed a kink, and the difference quotient
 * there says nothing about the derivative. */
static uint64_t branches(nb_graph *g, int output)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i <= output; i++) {
        nb_node *n = &g->nodes[i];
        if (!g->mark[i] || !decides(n))
            continue;
        int64_t e = nb_node_elems(n, g->batch);
        for (int64_t k = 0; k < e; k++)
            h = (h ^ decision(g, n, k)) * 1099511628211ull;
    }
    return h;
}

/* The branch each ReLU, Max and nearest-neighbour element takes (as branches() hashes them)
 * into d (NULL: only counted); returns how many there are. */
static size_t decisions(nb_graph *g, int output, uint8_t *d)
{
    size_t count = 0;
    for (int i = 0; i <= output; i++) {
        nb_node *n = &g->nodes[i];
        if (!g->mark[i] || !decides(n))
            continue;
        int64_t e = nb_node_elems(n, g->batch);
        for (int64_t k = 0; d && k < e; k++)
            d[count + (size_t)k] = (uint8_t)decision(g, n, k);
        count += (size_t)e;
    }
    return count;
}

/* The central difference quotient (L(θ+ε) − L(θ−ε)) / 2ε at *x; *kink is set when either
 * perturbation changed a branch. */
static double numeric(nb_graph *g, int output, const float *r, size_t n, const nb_rng *rng,
                      float *x, double eps, uint64_t at_rest, int *kink)
{
    float saved = *x;
    *x = saved + (float)eps;
    double up = (double)*x - saved, hi = loss(g, output, r, n, rng);
    *kink = branches(g, output) != at_rest;
    *x = saved - (float)eps;
    double down = saved - (double)*x, lo = loss(g, output, r, n, rng);
    *kink |= branches(g, output) != at_rest;
    *x = saved;
    /* divide by the step actually taken in float, not the nominal one */
    return (hi - lo) / (up + down);
}

/* The tolerance of a bf16 check, derived from bf16's 8-bit significand.
 *
 * Rounding to bf16 (nearest even) errs by at most u = 2^-8 ≈ 3.9e-3 relative. A product of K
 * terms of rounded operands, Σ a_k(1+α_k) b_k(1+β_k), accumulated in fp32 (whose own error,
 * K·2^-24, is negligible), differs from the exact Σ a_k b_k by at most
 *     2u · Σ|a_k b_k| = 2u · κ · |Σ a_k b_k|,     κ = Σ|a_k b_k| / |Σ a_k b_k|,
 * the sum's condition number: 2u·κ relative. Backprop's gradient for a parameter of the first
 * of L Linear layers passes through 2L such products — L forward products (the loss depends
 * on each), L−1 products dX = dY·W and its own dW = dYᵀ·X — and to first order their relative
 * errors add: ≤ 2L · 2u · κ. The finite differences run in fp32, so they add nothing of the
 * kind. A single element can still be a small sum of large terms (κ ≫ 1), so the check
 * measures bf16 errors normwise, against the tensor's largest gradient; κ is then the ratio
 * of the terms' magnitudes to that, which on the lecture's models (random inputs, Xavier
 * weights) stays below 2 — every.nb, whose sum(h) adds 12 outputs of opposite signs, is
 * the worst: 2.8e-2 over 80 seeds at L = 2. So
 *     tol = 2u · 2L · 2 = 8uL:   3.1e-2 for one layer, 6.3e-2 for two, 9.4e-2 for three,
 * with L the most Linear layers on a path from an input to the output. */
double nb_gradcheck_tolerance(const nb_graph *g, int output)
{
    if (g->precision != NB_PRECISION_BF16)
        return 1e-2;
    int layers = 0;
    int *depth = calloc((size_t)g->count, sizeof *depth);
    if (!depth)
        return 8.0 / 256.0;
    for (int i = 0; i <= output && i < g->count; i++) {
        const nb_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            depth[i] = depth[n->inputs[k]] > depth[i] ? depth[n->inputs[k]] : depth[i];
        depth[i] += n->op == NB_OP_LINEAR;
    }
    layers = output >= 0 && output < g->count ? depth[output] : 0;
    free(depth);
    return 8.0 / 256.0 * (layers > 1 ? layers : 1);
}

nb_status nb_gradcheck(nb_graph *g, int output, const nb_gradcheck_options *opt,
                       nb_gradcheck_tensor *results, int capacity, int *count, nb_error *err)
{
    nb_gradcheck_options o = opt ? *opt : (nb_gradcheck_options){0};
    if (o.eps <= 0)
        o.eps = 1e-2;
    if (o.floor <= 0)
        o.floor = 1e-2;
    if (!(o.tol > 0) && output >= 0 && output < g->count)
        o.tol = nb_gradcheck_tolerance(g, output); /* before bf16 switches to fp32 below */
    *count = 0;
    if (!g->batch)
        return nb_error_set(err, NB_EINVAL, "gradcheck: prepare the graph and fill its inputs first");
    nb_node *out = &g->nodes[output];
    size_t n = (size_t)nb_node_elems(out, g->batch);
    float *r = malloc(n * sizeof *r);
    if (!r)
        return nb_error_set(err, NB_ENOMEM, "gradcheck: out of memory");
    nb_rng pick;
    nb_rng_seed(&pick, o.seed ^ 0x5eedull);
    for (size_t i = 0; i < n; i++)
        r[i] = nb_rng_uniform(&pick) * 2.0f - 1.0f;

    /* backprop once, keeping the analytic gradients of every checked tensor */
    nb_rng rng = g->rng;
    nb_graph_zero_grad(g);
    g->rng = rng;
    nb_status s = nb_graph_forward_to(g, output, err);
    if (!s)
        s = nb_graph_backward(g, output, r, err);
    size_t total = 0;
    for (int i = 0; i <= output; i++) {
        nb_node *t = &g->nodes[i];
        if ((t->op == NB_OP_PARAM || t->op == NB_OP_INPUT) && t->requires_grad && g->mark[i])
            total += (size_t)nb_node_elems(t, g->batch);
    }
    float *analytic = s ? NULL : malloc((total ? total : 1) * sizeof *analytic);
    if (!s && !analytic)
        s = nb_error_set(err, NB_ENOMEM, "gradcheck: out of memory");
    if (s) {
        free(r);
        return s;
    }
    char *checked = malloc((size_t)output + 1);
    if (!checked) {
        free(r);
        free(analytic);
        return nb_error_set(err, NB_ENOMEM, "gradcheck: out of memory");
    }
    memcpy(checked, g->mark, (size_t)output + 1);
    /* In bf16 precision backprop above ran with bf16 products; the finite differences below
     * run in fp32, so that the check measures backprop's rounding against the derivative of
     * the exact function (a difference quotient of bf16 forwards would be noise: each
     * forward errs by ~u·|L| with u = 2^-8, divided by 2ε). */
    nb_precision precision = g->precision;
    int bf16 = precision == NB_PRECISION_BF16;
    size_t n_dec = bf16 ? decisions(g, output, NULL) : 0, flips = 0;
    uint8_t *dec = bf16 ? malloc(2 * n_dec + 1) : NULL;
    int64_t largest = 0;
    for (int i = 0; i <= output; i++) {
        nb_node *t = &g->nodes[i];
        int64_t size = nb_node_elems(t, g->batch);
        if ((t->op == NB_OP_PARAM || t->op == NB_OP_INPUT) && t->requires_grad && checked[i])
            largest = size > largest ? size : largest;
    }
    double *nums = malloc((size_t)(largest ? largest : 1) * sizeof *nums);
    char *kinks = malloc((size_t)(largest ? largest : 1));
    if ((bf16 && !dec) || !nums || !kinks) {
        free(dec);
        free(nums);
        free(kinks);
        free(checked);
        free(analytic);
        free(r);
        return nb_error_set(err, NB_ENOMEM, "gradcheck: out of memory");
    }
    if (bf16) {
        decisions(g, output, dec); /* of the bf16 forward pass that backprop differentiated */
        nb_graph_set_precision(g, NB_PRECISION_FP32, NULL);
    }
    loss(g, output, r, n, &rng);
    uint64_t at_rest = branches(g, output);
    if (bf16) {
        decisions(g, output, dec + n_dec);
        for (size_t k = 0; k < n_dec; k++)
            flips += dec[k] != dec[n_dec + k];
    }
    free(dec);
    if (flips) {
        /* a ReLU or Max input within bf16's rounding of its kink: the bf16 forward took the
         * other branch, so backprop differentiated another piece of the function than the
         * finite differences see — a kink of the whole check, not of one element */
        s = nb_error_set(err, NB_ENUMERIC, "gradcheck: bf16 rounding moves %zu of %zu ReLU/Max "
                         "inputs across their kink; draw inputs further from the kinks", flips,
                         n_dec);
        nb_graph_set_precision(g, precision, NULL);
        g->rng = rng;
        nb_graph_forward_to(g, output, NULL);
        free(nums);
        free(kinks);
        free(checked);
        free(analytic);
        free(r);
        return s;
    }
    size_t at = 0;
    for (int i = 0; i <= output; i++) {
        nb_node *t = &g->nodes[i];
        if (!((t->op == NB_OP_PARAM || t->op == NB_OP_INPUT) && t->requires_grad && checked[i]))
            continue;
        int64_t size = nb_node_elems(t, g->batch);
        memcpy(analytic + at, t->grad, (size_t)size * sizeof *analytic);
        nb_gradcheck_tensor res = {.node = i, .worst_at = -1};
        int64_t stride = 1;
        if (o.max_elements > 0 && size > o.max_elements)
            stride = (size + o.max_elements - 1) / o.max_elements;
        /* bf16: errors are normwise, relative to the tensor's largest gradient element (the
         * floor rises to it): an element that is a small sum of large terms keeps the absolute
         * rounding error of those terms, so its own relative error says nothing */
        double floor = o.floor;
        for (int64_t k = 0; k < size; k += stride) {
            int kink;
            nums[k] = numeric(g, output, r, n, &rng, &t->value[k], o.eps, at_rest, &kink);
            kinks[k] = (char)kink;
            if (bf16 && !kink)
                floor = fmax(floor, fabs(nums[k]));
        }
        for (int64_t k = 0; k < size; k += stride) {
            double a = analytic[at + (size_t)k], num = nums[k];
            double e = fabs(a - num) / fmax(fmax(fabs(a), fabs(num)), floor);
            if (kinks[k]) { /* the derivative is not defined within ±ε: nothing to compare */
                res.skipped++;
                continue;
            }
            res.checked++;
            if (e > res.worst || res.worst_at < 0) {
                res.worst = e;
                res.worst_at = k;
                res.analytic = a;
                res.numeric = num;
            }
        }
        at += (size_t)size;
        res.tolerance = o.tol;
        res.passed = res.worst <= o.tol;
        if (*count < capacity)
            results[(*count)++] = res;
    }
    g->rng = rng;
    if (bf16)
        nb_graph_set_precision(g, precision, NULL); /* worked before: cannot fail now */
    nb_graph_forward_to(g, output, NULL);
    free(nums);
    free(kinks);
    free(checked);
    free(analytic);
    free(r);
    return NB_OK;
}
