/* nabla info MODEL: the modules, their shapes and parameters, and the lecture's Jacobian
 * bookkeeping (§3): for z_g = f(z_f, w), the vector–Jacobian products
 *   ∂c/∂z_f = ∂c/∂z_g · ∂z_g/∂z_f   [1×d_f] = [1×d_g]·[d_g×d_f]
 *   ∂c/∂w   = ∂c/∂z_g · ∂z_g/∂w     [1×|w|] = [1×d_g]·[d_g×|w|]
 * with d counting every element of the batch. nabla never forms these Jacobians; the sizes
 * show what backprop avoids. */
#include "cli.h"

#include <getopt.h>
#include <string.h>

static void help(void)
{
    printf("Usage: nabla info MODEL [--batch N]\n\n"
           "MODEL is a description file, an MLP shorthand or a model file. Lists every node\n"
           "with its module, inputs and shape, the parameter count, and for each module the\n"
           "sizes of its two Jacobians for a batch of N samples (default 1).\n");
}

int cmd_info(int argc, char **argv)
{
    static const struct option options[] = {
        {"batch", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    long long batch = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        if (c == 'b') {
            if (!cli_int("info", "--batch", optarg, 1, 1 << 24, &batch))
                return 2;
        } else if (c == 'h') {
            help();
            return 0;
        } else if (c == ':') {
            return cli_usage_error("info", "option '%s' requires an argument", argv[optind - 1]);
        } else {
            return cli_usage_error("info", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("info", "expected one MODEL argument");
    nb_error err = {0};
    nb_gemm *gemm = nb_gemm_new(NB_GEMM_PORTABLE, 1, &err);
    nb_model *m = gemm ? cli_open_model(argv[optind], 1, gemm, &err) : NULL;
    if (!m) {
        nb_gemm_free(gemm);
        return cli_fail("info", &err);
    }
    nb_graph *g = nb_model_graph(m);
    printf("%s: %lld parameters in %d tensors; input '%s', output '%s'\n\n", argv[optind],
           (long long)nb_graph_param_floats(g), nb_graph_param_count(g),
           nb_node_name(g, nb_model_input(m)), nb_node_name(g, nb_model_output(m)));
    printf("%-20s %-14s %-28s %-16s Jacobians [d_g×d_f] per input, batch of %lld\n", "node",
           "module", "inputs", "shape", batch);
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        nb_op op = nb_node_op(g, i);
        if (op == NB_OP_PARAM || op == NB_OP_BUFFER)
            continue;
        char inputs[256] = "", shape[64], jac[256] = "";
        size_t used = 0;
        int64_t dg = nb_node_size(g, i) * (nb_node_is_batched(g, i) ? batch : 1);
        for (int k = 0; k < nb_node_input_count(g, i); k++) {
            int in = nb_node_input(g, i, k);
            used += (size_t)snprintf(inputs + used, sizeof inputs - used, "%s%s", k ? "," : "",
                                     nb_node_name(g, in));
            if (used >= sizeof inputs)
                break;
            if (nb_node_op(g, in) == NB_OP_LABELS || nb_node_op(g, in) == NB_OP_BUFFER)
                continue; /* no gradient flows to labels or running statistics */
            int64_t df = nb_node_size(g, in) * (nb_node_is_batched(g, in) ? batch : 1);
            size_t j = strlen(jac);
            snprintf(jac + j, sizeof jac - j, "%s[%lld×%lld]", j ? " ; " : "", (long long)dg,
                     (long long)df);
        }
        printf("%-20s %-14s %-28s %-16s %s\n", nb_node_name(g, i), nb_op_name(op), inputs,
               nb_node_shape_str(g, i, shape, sizeof shape), jac);
    }
    printf("\nparameters:\n");
    for (int i = 0; i < nb_graph_param_count(g); i++) {
        int p = nb_graph_param_node(g, i);
        char shape[64];
        printf("  %-24s %-16s %lld\n", nb_node_name(g, p), nb_node_shape_str(g, p, shape, sizeof shape),
               (long long)nb_node_size(g, p));
    }
    if (nb_graph_buffer_count(g))
        printf("\nbuffers (saved, not trained):\n");
    for (int i = 0; i < nb_graph_buffer_count(g); i++) {
        int b = nb_graph_buffer_node(g, i);
        char shape[64];
        printf("  %-24s %-16s %lld\n", nb_node_name(g, b), nb_node_shape_str(g, b, shape, sizeof shape),
               (long long)nb_node_size(g, b));
    }
    nb_model_free(m);
    nb_gemm_free(gemm);
    return 0;
}
