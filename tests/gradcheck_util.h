/* Shared by the gradient tests (test_gradients.c, test_conv.c): a described graph filled with
 * values away from kinks and ties, checked against central finite differences with a random
 * upstream gradient (nb_gradcheck), and the same check run on a deliberately broken backward,
 * which must fail. Include after check.h. */
#ifndef NB_GRADCHECK_UTIL_H
#define NB_GRADCHECK_UTIL_H

#include "check.h"
#include "core/graph.h"
#include "nabla.h"

#include <stdio.h>

/* The largest relative error a correct backward may show in float with eps = 1e-2. */
#define GRADCHECK_TOL 1e-2

/* Fills every input with values in ±[0.1, 1] (away from ReLU's kink at 0; distinct, so max
 * pooling has no ties), labels below `classes` at random, and parameters from the generator
 * with non-zero biases. */
static void fill_graph(nb_graph *g, nb_rng *rng, int classes)
{
    nb_graph_init_params(g, NB_INIT_XAVIER_UNIFORM, rng);
    float *p = nb_graph_params(g);
    for (size_t i = 0; i < nb_graph_param_floats(g); i++)
        if (p[i] == 0.0f)
            p[i] = 0.1f * (nb_rng_uniform(rng) - 0.5f);
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        int64_t n = nb_node_size(g, i) * nb_graph_batch(g);
        if (nb_node_op(g, i) == NB_OP_INPUT) {
            float *x = nb_value(g, i);
            for (int64_t k = 0; k < n; k++) {
                float u = 0.1f + 0.9f * nb_rng_uniform(rng);
                x[k] = nb_rng_uniform(rng) < 0.5f ? -u : u;
            }
        } else if (nb_node_op(g, i) == NB_OP_LABELS) {
            int32_t *y = nb_labels_data(g, i);
            for (int64_t k = 0; k < nb_graph_batch(g); k++)
                y[k] = (int32_t)nb_rng_below(rng, (uint64_t)classes);
        }
    }
}

/* `desc` described (every input asking for its gradient when input_grad), not prepared.
 * Owned by the caller (nb_graph_free). */
static nb_graph *described(const char *label, const char *desc, int input_grad, int *in,
                           int *out)
{
    nb_error err = {0};
    nb_graph *g = nb_graph_new(7, NULL);
    CHECK_OK(nb_describe(g, desc, label, in, out, &err), &err);
    for (int i = 0; input_grad && i < nb_graph_node_count(g); i++)
        if (nb_node_op(g, i) == NB_OP_INPUT)
            nb_node_set_requires_grad(g, i, 1);
    return g;
}

/* `desc` prepared for `batch` samples and filled from seed 42. Owned by the caller. */
static nb_graph *build_filled(const char *label, const char *desc, int64_t batch, int classes,
                              int input_grad, int *in, int *out)
{
    nb_error err = {0};
    nb_graph *g = described(label, desc, input_grad, in, out);
    CHECK_OK(nb_graph_prepare(g, batch, &err), &err);
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    fill_graph(g, &rng, classes);
    return g;
}

/* Checks every gradient of the prepared, filled graph g (inputs' too where they ask) within
 * GRADCHECK_TOL, prints and returns the worst relative error; frees g. max_elements: per
 * tensor, 0 for nb_gradcheck's default; step: the finite difference's, 0 for 1e-2 (smaller
 * for a module curved enough that 1e-2 leaves a truncation error near the tolerance). */
static double gradcheck_graph(const char *label, nb_graph *g, int out, int training,
                              int64_t max_elements, double step)
{
    nb_graph_set_training(g, training);
    nb_gradcheck_tensor res[16];
    int count = 0;
    nb_error err = {0};
    nb_gradcheck_options opt = {.seed = 1, .eps = step > 0 ? step : 1e-2, .floor = 1e-2,
                                .max_elements = max_elements};
    CHECK_OK(nb_gradcheck(g, out, &opt, res, 16, &count, &err), &err);
    double worst = 0;
    CHECK_MSG(count > 0, "%s: nothing was checked", label);
    for (int i = 0; i < count; i++) {
        CHECK_MSG(res[i].worst <= GRADCHECK_TOL && res[i].checked > 0,
                  "%s: %s: worst error %.3g at %lld (backprop %.6g, numeric %.6g), %lld checked",
                  label, nb_node_name(g, res[i].node), res[i].worst, (long long)res[i].worst_at,
                  res[i].analytic, res[i].numeric, (long long)res[i].checked);
        worst = res[i].worst > worst ? res[i].worst : worst;
    }
    printf("  %-22s worst relative error %.2e over %d tensors\n", label, worst, count);
    nb_graph_free(g);
    return worst;
}

/* Builds `desc` at batch 3 and checks it (gradcheck_graph). */
static double gradcheck_model(const char *label, const char *desc, int training, int classes,
                              int64_t max_elements)
{
    int in, out;
    nb_graph *g = build_filled(label, desc, 3, classes, 1, &in, &out);
    return gradcheck_graph(label, g, out, training, max_elements, 0);
}

/* Builds `desc` at `batch`, replaces node `name`'s backward with `backward` (which
 * accumulates, so gradients are zeroed before it), and checks, in training mode or not, that
 * the gradient check notices: the worst error must exceed 10·GRADCHECK_TOL. */
static void broken_backward_is_caught_in(const char *label, const char *desc, const char *name,
                                         void (*backward)(nb_graph *, nb_node *, int64_t),
                                         int64_t batch, int input_grad, int training)
{
    int in, out;
    nb_graph *g = described(label, desc, input_grad, &in, &out);
    nb_error err = {0};
    nb_node *n = &g->nodes[nb_graph_find(g, name)];
    nb_op_def broken = *n->def;
    broken.backward = backward;
    broken.writes_fresh = 0;
    n->def = &broken;
    CHECK_OK(nb_graph_prepare(g, batch, &err), &err);
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    fill_graph(g, &rng, 3);
    nb_graph_set_training(g, training);
    nb_gradcheck_tensor res[4];
    int count = 0;
    CHECK_OK(nb_gradcheck(g, out, NULL, res, 4, &count, &err), &err);
    double worst = 0;
    for (int i = 0; i < count; i++)
        worst = res[i].worst > worst ? res[i].worst : worst;
    CHECK_MSG(worst > 10 * GRADCHECK_TOL, "%s: the broken backward went unnoticed (%.3g)", label,
              worst);
    printf("  broken %s backward caught: worst relative error %.3g\n", label, worst);
    nb_graph_free(g);
}

/* The same, in evaluation mode. */
static void broken_backward_is_caught(const char *label, const char *desc, const char *name,
                                      void (*backward)(nb_graph *, nb_node *, int64_t),
                                      int64_t batch, int input_grad)
{
    broken_backward_is_caught_in(label, desc, name, backward, batch, input_grad, 0);
}

#endif
