/* nabla gradcheck MODEL: backprop against central finite differences on random data. */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>

static void help(void)
{
    printf("Usage: nabla gradcheck MODEL [OPTIONS]\n\n"
           "Builds MODEL (a description file or an MLP shorthand such as 8-16-4), draws random\n"
           "inputs, parameters and a random upstream gradient r from a seed, and compares every\n"
           "parameter and input gradient of L = sum(r * output) computed by backpropagation\n"
           "with central finite differences. Prints the worst relative error per tensor and\n"
           "exits with status 1 if any exceeds the tolerance.\n\n"
           "Options:\n"
           "  --seed N        random seed (default 1)\n"
           "  --batch N       samples per batch (default 3)\n"
           "  --eps F         finite-difference step (default 1e-2)\n"
           "  --tol F         largest accepted relative error (default 1e-2; with --precision\n"
           "                  bf16 8·2^-8·L for L Linear layers on the longest path, and errors\n"
           "                  relative to each tensor's largest gradient)\n"
           "  --max-elements N  check at most N elements per tensor (default 2000)\n"
           "  --training      run in training mode: Dropout (its mask is held fixed) and a\n"
           "                  cross_entropy's label_smoothing act\n"
           "  --threads N     threads for matrix products (default 1)\n"
           "  --gemm NAME     auto|onednn|openblas|portable (default auto, or NABLA_GEMM)\n"
           "  --precision P   fp32 (default), bf16 or bf16-or-fp32: backprop's Linear products in\n"
           "                  bf16, the finite differences in fp32 (inputs whose ReLU/Max branch\n"
           "                  bf16 rounding flips are drawn again)\n"
           "  -h, --help      this help\n");
}

/* Random parameters (Xavier-scaled) and inputs from `seed`; labels within the class count of
 * the loss that reads them. */
static void draw(nb_graph *g, uint64_t seed, int64_t batch)
{
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_graph_init_params(g, NB_INIT_XAVIER_UNIFORM, &rng);
    float *p = nb_graph_params(g);
    for (size_t i = 0; i < nb_graph_param_floats(g); i++)
        if (p[i] == 0.0f)
            p[i] = 0.2f * (nb_rng_uniform(&rng) - 0.5f);
    nb_graph_params_changed(g);
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        if (nb_node_op(g, i) == NB_OP_INPUT) {
            float *x = nb_value(g, i);
            for (int64_t k = 0; k < batch * nb_node_size(g, i); k++)
                x[k] = nb_rng_normal(&rng);
        }
        if (nb_node_op(g, i) == NB_OP_NLL || nb_node_op(g, i) == NB_OP_CROSS_ENTROPY) {
            int64_t classes = nb_node_size(g, nb_node_input(g, i, 0));
            int32_t *y = nb_labels_data(g, nb_node_input(g, i, 1));
            for (int64_t k = 0; k < batch; k++)
                y[k] = (int32_t)nb_rng_below(&rng, (uint32_t)classes);
        }
    }
}

int cmd_gradcheck(int argc, char **argv)
{
    static const struct option options[] = {
        {"seed", required_argument, 0, 's'}, {"batch", required_argument, 0, 'b'},
        {"eps", required_argument, 0, 'e'},  {"tol", required_argument, 0, 't'},
        {"max-elements", required_argument, 0, 'm'}, {"training", no_argument, 0, 'T'},
        {"gemm", required_argument, 0, 'g'}, {"threads", required_argument, 0, 'j'},
        {"precision", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0},
    };
    long long seed = 1, batch = 3, max_elements = 2000, threads = 1;
    const char *gemm_name = NULL;
    double eps = 1e-2, tol = 1e-2;
    int training = 0, precision = CLI_FP32, tol_given = 0, c;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 's': if (!cli_int("gradcheck", "--seed", optarg, 0, (long long)1 << 62, &seed)) return 2; break;
        case 'b': if (!cli_int("gradcheck", "--batch", optarg, 1, 4096, &batch)) return 2; break;
        case 'm': if (!cli_int("gradcheck", "--max-elements", optarg, 0, 1LL << 40, &max_elements)) return 2; break;
        case 'e':
            if (!cli_float("gradcheck", "--eps", optarg, &eps))
                return 2;
            if (!(eps > 0))
                return cli_usage_error("gradcheck", "--eps: expected a positive step, got '%s'", optarg);
            break;
        case 't':
            if (!cli_float("gradcheck", "--tol", optarg, &tol))
                return 2;
            if (!(tol > 0))
                return cli_usage_error("gradcheck", "--tol: expected a positive tolerance, got '%s'", optarg);
            tol_given = 1;
            break;
        case 'p':
            if ((precision = cli_precision_parse(optarg)) < 0)
                return cli_usage_error("gradcheck", "--precision: expected fp32, bf16 or bf16-or-fp32");
            break;
        case 'T': training = 1; break;
        case 'g': gemm_name = optarg; break;
        case 'j': if (!cli_int("gradcheck", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("gradcheck", "option '%s' requires an argument", argv[optind - 1]);
        default: return cli_usage_error("gradcheck", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("gradcheck", "expected one MODEL argument");
    const char *arg = argv[optind];
    nb_error err = {0};
    char *text = NULL;
    if (cli_read_model_text(arg, &text, &err))
        return cli_fail("gradcheck", &err);
    nb_gemm *gemm = cli_gemm(gemm_name, (int)threads, &err);
    nb_graph *g = gemm ? nb_graph_new((uint64_t)seed, gemm) : NULL;
    int in, out;
    if (!g || nb_describe(g, text, arg, &in, &out, &err)) {
        free(text);
        nb_graph_free(g);
        nb_gemm_free(gemm);
        return cli_fail("gradcheck", &err);
    }
    free(text);
    for (int i = 0; i < nb_graph_node_count(g); i++)
        if (nb_node_op(g, i) == NB_OP_INPUT)
            nb_node_set_requires_grad(g, i, 1);
    nb_precision used = NB_PRECISION_FP32;
    if (cli_set_precision("gradcheck", g, precision, &used, &err) ||
        nb_graph_prepare(g, batch, &err)) {
        nb_graph_free(g);
        nb_gemm_free(gemm);
        return cli_fail("gradcheck", &err);
    }
    if (!tol_given) /* the library's rule for the precision in use */
        tol = nb_gradcheck_tolerance(g, out);
    nb_graph_set_training(g, training);
    int capacity = nb_graph_node_count(g), count = 0, redrawn = 0;
    nb_gradcheck_tensor *res = calloc((size_t)capacity, sizeof *res);
    nb_gradcheck_options opt = {.seed = (uint64_t)seed, .eps = eps, .floor = 1e-2,
                                .max_elements = max_elements, .tol = tol};
    nb_status s = res ? NB_OK : nb_error_set(&err, NB_ENOMEM, "out of memory");
    /* bf16: a draw that puts a ReLU/Max input within bf16's rounding of its kink is refused
     * (NB_ENUMERIC; about 0.4 % of such inputs are, see nb_gradcheck); draw again */
    for (int attempt = 0; res && attempt < 1000; attempt++) {
        draw(g, (uint64_t)seed + 0x9e3779b97f4a7c15ull * (uint64_t)attempt, batch);
        s = nb_gradcheck(g, out, &opt, res, capacity, &count, &err);
        if (s != NB_ENUMERIC || used != NB_PRECISION_BF16)
            break;
        redrawn++;
    }
    if (s) {
        free(res);
        nb_graph_free(g);
        nb_gemm_free(gemm);
        return cli_fail("gradcheck", &err);
    }
    if (redrawn)
        printf("(drew the inputs and parameters %d more time%s: bf16 rounding moved a ReLU/Max "
               "input across its kink)\n", redrawn, redrawn > 1 ? "s" : "");
    printf("%-24s %-16s %9s %8s %12s %13s %13s\n", "tensor", "shape", "checked", "at kink",
           "worst error", "backprop", "numeric");
    int bad = 0;
    for (int i = 0; i < count; i++) {
        char shape[64];
        nb_node_shape_str(g, res[i].node, shape, sizeof shape);
        int fail = !res[i].passed;
        bad |= fail;
        printf("%-24s %-16s %9lld %8lld %12.3e %13.6g %13.6g%s\n", nb_node_name(g, res[i].node),
               shape, (long long)res[i].checked, (long long)res[i].skipped, res[i].worst,
               res[i].analytic, res[i].numeric, fail ? "  FAIL" : "");
    }
    printf("%s: %d tensors, tolerance %.1e: %s\n", arg, count, tol, bad ? "FAILED" : "ok");
    free(res);
    nb_graph_free(g);
    nb_gemm_free(gemm);
    return bad ? 1 : 0;
}
