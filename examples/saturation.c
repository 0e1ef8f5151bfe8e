/* saturation — the lecture's picture of sigmoid saturation (docs/lecture.md §4, §5.1, §5.2).
 *
 * The sigmoid σ(s) = 1/(1 + e^−s) is the one-value softmax, and it saturates: for |s| ≫ 0 its
 * output is flat and its derivative σ′(s) = σ(s)(1 − σ(s)) ≈ e^−|s| vanishes (4.5e-5 at
 * |s| = 10), so almost no gradient flows back through a saturated unit. Its logarithm
 *
 *     log σ(s) = log(e^s/(e^s + 1)) = s − log(1 + e^s)
 *
 * does not saturate where it matters: for s ≪ 0 (badly wrong, if the target is 1) it is ≈ s,
 * slope 1 − σ(s) → 1. That is why cross-entropy is computed on log-softmax, never on softmax
 * probabilities. log(1 + e^s) itself (softplus) is ≈ s for s ≫ 0, slope σ(s) → 1.
 *
 * Every number comes from nabla: the values from a forward pass of a graph holding
 * z = [s, 0] → sigmoid(z) and log_softmax(z) (log_softmax([s, 0]) = (log σ(s), −log(1 + e^s))),
 * the derivatives from backpropagation with a chosen upstream gradient (nb_graph_backward's
 * seed), each checked against its closed form.
 *
 *     build/examples/saturation [--png FILE.png]
 *
 * prints CSV for s ∈ [−10, 10] in steps of 0.05, columns
 *     s, sigmoid, dsigmoid, softplus, dsoftplus, log_sigmoid, dlog_sigmoid
 * and with --png also writes FILE.csv and draws FILE.png through the tool:
 *
 *     nabla plot-csv FILE.csv -o FILE.png --x s --title "…" \
 *         --y "sigmoid=σ(s),dsigmoid=σ′(s)" \
 *         --y "softplus=log(1+e^s),log_sigmoid=log σ(s) = s − log(1+e^s)" \
 *         --y "dsigmoid=σ′(s),dsoftplus=d/ds log(1+e^s) = σ(s),dlog_sigmoid=d/ds log σ(s) = 1 − σ(s)" \
 *         --log-y=3
 *
 * (the tool is $NABLA, else ../nabla next to this program's directory, else nabla on PATH).
 * Exit status 1 if a backpropagated derivative differs from its closed form. */
#include "nabla.h"
#include "plot_tool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define S_MIN (-10.0)
#define S_MAX 10.0
#define S_STEP 0.05
#define N 401 /* (S_MAX − S_MIN) / S_STEP + 1 */
#define TOLERANCE 1e-5 /* float32 against double closed forms */


int main(int argc, char **argv)
{
    if (example_help(argc, argv, "saturation", "[--png FILE.png]",
                     "The sigmoid saturates and its log does not: for s from -10 to 10 prints, as CSV, sigma(s),\nlog(1 + e^s), log sigma(s) = s - log(1 + e^s) and their slopes computed by backprop, checked\nagainst the closed forms. With --png the CSV goes to FILE.csv instead of standard output\nand the nabla tool draws it to FILE.png. docs/lecture.md sections 4 and 5.1.\n"))
        return 0;
    const char *png = NULL;
    if (argc == 3 && strcmp(argv[1], "--png") == 0) {
        png = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--png FILE.png]\n", argv[0]);
        return 2;
    }
    nb_error err = {0};
    nb_graph *g = nb_graph_new(1, NULL);
    float *seed = malloc(2 * N * sizeof *seed), *out = malloc(7 * N * sizeof *out);
    int status = 1;
    if (!g || !seed || !out) {
        fprintf(stderr, "saturation: out of memory\n");
        goto done;
    }
    int64_t two = 2;
    int z = nb_input(g, "z", 1, &two);          /* z = [s, 0] per sample */
    int sig = nb_sigmoid(g, "sigmoid", z);      /* [σ(s), ½] */
    int ls = nb_log_softmax(g, "log_softmax", z); /* [log σ(s), −log(1 + e^s)] */
    nb_node_set_requires_grad(g, z, 1);         /* we want dC/dz, not only parameter gradients */
    if (nb_graph_error(g, &err) || nb_graph_prepare(g, N, &err))
        goto fail;
    float *zv = nb_value(g, z);
    for (int n = 0; n < N; n++) {
        zv[2 * n] = (float)(S_MIN + S_STEP * n);
        zv[2 * n + 1] = 0.0f;
    }
    if (nb_graph_forward(g, &err))
        goto fail;
    for (int n = 0; n < N; n++) {
        out[7 * n + 0] = zv[2 * n];
        out[7 * n + 1] = nb_value(g, sig)[2 * n];
        out[7 * n + 3] = -nb_value(g, ls)[2 * n + 1];
        out[7 * n + 5] = nb_value(g, ls)[2 * n];
    }
    /* Three backward passes, each picking one output element per sample with its seed:
     *   d σ(s)/ds             seed (1, 0) at sigmoid      → σ(s)(1 − σ(s))
     *   d log(1 + e^s)/ds     seed (0, −1) at log_softmax → σ(s)
     *   d log σ(s)/ds         seed (1, 0) at log_softmax  → 1 − σ(s)          */
    const struct { int root; float a, b; int column; } passes[3] = {
        {sig, 1, 0, 2}, {ls, 0, -1, 4}, {ls, 1, 0, 6}};
    for (int p = 0; p < 3; p++) {
        for (int n = 0; n < N; n++)
            seed[2 * n] = passes[p].a, seed[2 * n + 1] = passes[p].b;
        if (nb_graph_backward(g, passes[p].root, seed, &err))
            goto fail;
        for (int n = 0; n < N; n++)
            out[7 * n + passes[p].column] = nb_grad(g, z)[2 * n];
    }

    double worst = 0;
    for (int n = 0; n < N; n++) {
        double s = out[7 * n], sg = 1 / (1 + exp(-s));
        double want[7] = {s, sg, sg * (1 - sg), log1p(exp(s)), sg, -log1p(exp(-s)), 1 - sg};
        for (int c = 1; c < 7; c++)
            worst = fmax(worst, fabs(out[7 * n + c] - want[c]) / fmax(1.0, fabs(want[c])));
    }

    FILE *table = stdout;
    char csv[4096];
    if (png && !(table = open_csv_beside(png, csv, sizeof csv)))
        goto done;
    fprintf(table, "s,sigmoid,dsigmoid,softplus,dsoftplus,log_sigmoid,dlog_sigmoid\n");
    for (int n = 0; n < N; n++)
        fprintf(table, "%.2f,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g\n", out[7 * n], out[7 * n + 1],
                out[7 * n + 2], out[7 * n + 3], out[7 * n + 4], out[7 * n + 5], out[7 * n + 6]);
    if (png && fclose(table) != 0) {
        perror(csv);
        goto done;
    }
    int lo = 0, mid = N / 2;
    fprintf(stderr, "s = %.0f: σ′(s) = %.3g (saturated), d/ds log σ(s) = %.6f (not)\n"
                    "s = %.0f: σ′(s) = %.3g (the largest)\n"
                    "backprop against the closed forms: worst relative error %.2g\n",
            out[7 * lo], out[7 * lo + 2], out[7 * lo + 6], out[7 * mid], out[7 * mid + 2], worst);
    if (worst > TOLERANCE) {
        fprintf(stderr, "saturation: backprop disagrees with the closed forms (> %g)\n", TOLERANCE);
        goto done;
    }
    if (png) {
        char *args[] = {NULL, "plot-csv", csv, "-o", (char *)png, "--x", "s",
                        "--title", "sigmoid saturates; log σ(s) = s − log(1+e^s) does not",
                        "--panel-title", "σ(s) and its slope",
                        "--panel-title", "log(1+e^s) and log σ(s)",
                        "--panel-title", "slopes by backprop (log scale)",
                        "--y", "sigmoid=σ(s),dsigmoid=σ′(s)",
                        "--y", "softplus=log(1+e^s),log_sigmoid=log σ(s) = s − log(1+e^s)",
                        "--y", "dsigmoid=σ′(s),dsoftplus=d/ds log(1+e^s) = σ(s),"
                               "dlog_sigmoid=d/ds log σ(s) = 1 − σ(s)",
                        "--ylabel", "σ(s), σ′(s)", "--ylabel", "log(1+e^s), log σ(s)",
                        "--ylabel", "slope", "--log-y=3", "--size", "1500x460", NULL};
        if (run_tool(argv[0], args) != 0)
            goto done;
        fprintf(stderr, "wrote %s and %s\n", csv, png);
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "saturation: %s\n", err.msg);
done:
    free(seed);
    free(out);
    nb_graph_free(g);
    return status;
}
