/* softmax_vs_logsoftmax — why cross-entropy is computed on log-softmax, never on softmax
 * probabilities (docs/lecture.md §4, §5.2).
 *
 * Part 1. Three logits z = a·(1, 0, −1) whose true class is 2, the one the model rates lowest
 * (a confidently wrong prediction, exactly when a useful gradient matters most), for growing
 * a. The exact values, computed here in double, are
 *
 *     L = −log softmax(z)_2 = 2a + log(1 + e^−a + e^−2a),     dL/dz = softmax(z) − e_2 → (1, 0, −1)
 *
 * and four ways of computing them with the library's graph are compared:
 *
 *   cross_entropy(z, y)         the fused loss: L = m + log Σ_j e^(z_j − m) − z_y, m = max z
 *   nll(log_softmax(z), y)      log y_i = z_i − log Σ_j e^(z_j) (§4), then NLL
 *   softmax(z), then −log p_y   the probability underflows to 0 in float once a ≳ 50:
 *                               L = inf and dL/dp_y = −1/0 turns the gradient into NaN
 *   … with −log(p_y + 1e-12)    the usual patch: L is finite but wrong (−log 1e-12 = 27.6)
 *                               and the gradient is exactly 0 — softmax has saturated, its
 *                               Jacobian y_i(δ_ij − y_j) vanishes, and learning stops
 *
 * (the log of the last two is taken in C on the graph's probabilities; dL/dp is fed back
 * into the softmax node as the upstream gradient of nb_graph_backward).
 *
 * Part 2. The sigmoid σ(s) = e^s/(e^s + 1) is the one-value softmax — softmax((s, 0))_0 — and
 * saturates the same way: σ'(s) = σ(1 − σ) vanishes for |s| ≫ 1, and log σ(s) computed from
 * σ becomes −inf. Its log written as s − log(1 + e^s), which is log_softmax((s, 0))_0, stays
 * exact, and its derivative 1 − σ(s) does not vanish where the prediction is wrong (s ≪ 0).
 *
 * Exit status 1 unless both log-softmax losses and their gradients are finite and agree with
 * the exact values (relative error ≤ 1e-5 on L, absolute ≤ 1e-5 on dL/dz) at every scale. */
#include "example.h"
#include "nabla.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define C 3
#define Y 2 /* the true class */

static const double scales[] = {1, 10, 100, 1e3, 1e4};
#define SCALES (int)(sizeof scales / sizeof scales[0])

static const char *const logits_text = "z   = input(3)\n"
                                       "y   = labels()\n"
                                       "p   = softmax(z)\n"
                                       "lp  = log_softmax(z)\n"
                                       "nl  = nll(lp, y)\n"
                                       "ce  = cross_entropy(z, y)\n";

static const char *const sigmoid_text = "s   = input(1)\n"
                                        "q   = sigmoid(s)\n"
                                        "u   = input(2)           # (s, 0)\n"
                                        "lq  = log_softmax(u)     # lq_0 = s - log(1 + e^s)\n";

static void print_row(const char *method, double loss, const float *dz, const char *note)
{
    printf("  %-26s %14.7g   (%10.3g, %10.3g, %10.3g)  %s\n", method, loss, (double)dz[0],
           (double)dz[1], (double)dz[2], note);
}

/* Whether a computed loss and gradient agree with the exact ones. */
static int exact(double loss, const float *dz, double want, const double *dwant)
{
    int ok = isfinite(loss) && fabs(loss - want) <= 1e-5 * fabs(want);
    for (int j = 0; j < C; j++)
        ok = ok && isfinite(dz[j]) && fabs(dz[j] - dwant[j]) <= 1e-5;
    return ok;
}

static int part1(nb_error *err)
{
    nb_graph *g = nb_graph_new(1, NULL);
    int z, out, ok = 1;
    if (!g || nb_describe(g, logits_text, "logits", &z, &out, err))
        goto fail;
    int y = nb_graph_find(g, "y"), p = nb_graph_find(g, "p"), nl = nb_graph_find(g, "nl"),
        ce = nb_graph_find(g, "ce");
    nb_node_set_requires_grad(g, z, 1); /* we want dL/dz */
    if (nb_graph_prepare(g, 1, err))
        goto fail;
    float *zv = nb_value(g, z), *dz = nb_grad(g, z), *pv = nb_value(g, p);
    nb_labels_data(g, y)[0] = Y;

    printf("Part 1: z = a*(1, 0, -1), true class %d; loss L and gradient dL/dz\n", Y);
    for (int k = 0; k < SCALES; k++) {
        double a = scales[k];
        /* exact, in double: softmax(z) = (1, e^-a, e^-2a) / (1 + e^-a + e^-2a) */
        double e1 = exp(-a), e2 = exp(-2 * a), den = 1 + e1 + e2;
        double want = 2 * a + log1p(e1 + e2);
        double dwant[C] = {1 / den, e1 / den, e2 / den - 1};
        float dexact[C] = {(float)dwant[0], (float)dwant[1], (float)dwant[2]};
        zv[0] = (float)a, zv[1] = 0, zv[2] = (float)-a;
        if (nb_graph_forward(g, err))
            goto fail;
        printf("a = %g\n", a);
        print_row("exact (double)", want, dexact, "");

        const int fused[2] = {ce, nl};
        const char *names[2] = {"cross_entropy (fused)", "log_softmax + nll"};
        for (int f = 0; f < 2; f++) {
            if (nb_graph_backward(g, fused[f], NULL, err))
                goto fail;
            double loss = nb_value(g, fused[f])[0];
            int good = exact(loss, dz, want, dwant);
            ok &= good;
            print_row(names[f], loss, dz, good ? "exact" : "WRONG");
        }

        /* softmax, then the log in C: L = −log p_y, dL/dp = −1/p_y at y (0 elsewhere) */
        for (int patched = 0; patched < 2; patched++) {
            float py = pv[Y] + (patched ? 1e-12f : 0.0f);
            float dp[C] = {0, 0, -1.0f / py};
            if (nb_graph_backward(g, p, dp, err))
                goto fail;
            double loss = -logf(py);
            const char *note = !isfinite(loss) ? "p_y = 0: inf loss, NaN gradient"
                               : fabs(loss - want) > 1e-3 * want ? "saturated: wrong loss, zero gradient"
                                                                 : "";
            print_row(patched ? "softmax, -log(p_y + 1e-12)" : "softmax, then -log p_y", loss, dz,
                      note);
        }
    }
    nb_graph_free(g);
    return ok;
fail:
    nb_graph_free(g);
    return -1;
}

static int part2(nb_error *err)
{
    nb_graph *g = nb_graph_new(1, NULL);
    int s, out;
    if (!g || nb_describe(g, sigmoid_text, "sigmoid", &s, &out, err))
        goto fail;
    int q = nb_graph_find(g, "q"), u = nb_graph_find(g, "u"), lq = nb_graph_find(g, "lq");
    nb_node_set_requires_grad(g, s, 1);
    nb_node_set_requires_grad(g, u, 1);
    if (nb_graph_prepare(g, SCALES, err))
        goto fail;
    float *sv = nb_value(g, s), *uv = nb_value(g, u), *qv = nb_value(g, q);
    for (int k = 0; k < SCALES; k++) {
        sv[k] = (float)-scales[k]; /* the true class is 1, the score says 0 */
        uv[2 * k] = sv[k];
        uv[2 * k + 1] = 0;
    }
    if (nb_graph_forward(g, err))
        goto fail;

    /* σ'(s): backward from q with upstream 1; d log σ / ds the naive way: upstream 1/σ */
    float slope[SCALES], naive[SCALES], ones[SCALES], inv[SCALES], pick[2 * SCALES];
    for (int k = 0; k < SCALES; k++) {
        ones[k] = 1;
        inv[k] = 1 / qv[k];
        pick[2 * k] = 1, pick[2 * k + 1] = 0; /* d lq_0 */
    }
    if (nb_graph_backward(g, q, ones, err))
        goto fail;
    memcpy(slope, nb_grad(g, s), sizeof slope);
    if (nb_graph_backward(g, q, inv, err))
        goto fail;
    memcpy(naive, nb_grad(g, s), sizeof naive);
    if (nb_graph_backward(g, lq, pick, err))
        goto fail;

    printf("\nPart 2: the sigmoid saturates, s - log(1 + e^s) does not (true class 1)\n");
    printf("  %8s %12s %12s | %14s %12s | %16s %14s\n", "s", "sigma(s)", "sigma'(s)",
           "log sigma(s)", "its d/ds", "s - log(1+e^s)", "its d/ds");
    for (int k = 0; k < SCALES; k++)
        printf("  %8g %12.4g %12.4g | %14.7g %12.4g | %16.7g %14.7g\n", (double)sv[k],
               (double)qv[k], (double)slope[k], (double)logf(qv[k]), (double)naive[k],
               (double)nb_value(g, lq)[2 * k], (double)nb_grad(g, u)[2 * k]);
    nb_graph_free(g);
    return 1;
fail:
    nb_graph_free(g);
    return -1;
}

int main(int argc, char **argv)
{
    if (example_help(argc, argv, "softmax_vs_logsoftmax", "",
                     "Why cross-entropy is computed on log-softmax: for logits growing up to 1e4 it compares the\nfused cross-entropy and log_softmax + NLL (exact) with softmax followed by a log (infinite\nloss, NaN gradient) and its usual patch (a wrong loss, zero gradient); then the same for\nthe sigmoid and s - log(1 + e^s). docs/lecture.md sections 4 and 5.2.\n"))
        return 0;
    if (argc > 1) {
        fprintf(stderr, "usage: %s (no arguments; --help says more)\n", argv[0]);
        return 2;
    }
    nb_error err = {0};
    int ok = part1(&err);
    if (ok >= 0 && part2(&err) < 0)
        ok = -1;
    if (ok < 0) {
        fprintf(stderr, "softmax_vs_logsoftmax: %s\n", err.msg[0] ? err.msg : "out of memory");
        return 1;
    }
    printf("\n%s: the log-softmax losses are %s at every scale\n", ok ? "ok" : "FAILED",
           ok ? "finite and exact" : "NOT exact");
    return ok ? 0 : 1;
}
