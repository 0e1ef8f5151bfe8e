/* nabla: the command-line tool. Dispatches to one subcommand per file. */
#include "cli.h"
#include "plot.h"

#include <errno.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"train", cmd_train, "train a model on a data set and save it"},
    {"eval", cmd_eval, "loss, accuracy, per-class accuracy and confusion matrix of a model"},
    {"predict", cmd_predict, "classes and probabilities for each input"},
    {"import", cmd_import, "make a model file from PyTorch weights (safetensors) and a description"},
    {"info", cmd_info, "modules, shapes, parameters and Jacobian sizes of a model"},
    {"gradcheck", cmd_gradcheck, "check backprop against finite differences"},
    {"export", cmd_export, "the model as ONNX, or as one dependency-free C file (optionally int8)"},
    {"graph", cmd_graph, "the computation graph (or its gradient graph) in Graphviz DOT"},
    {"plot-regions", cmd_plot_regions, "picture of a 2-input classifier's decision regions"},
    {"plot-csv", cmd_plot_csv, "line charts of CSV columns (training logs, examples)"},
};

/* nabla --version: the library's line (version, matrix products compiled in), then what this
 * tool can do here: each backend, bf16 (asked of the CPU now), MPI, ONNX export and cairo
 * (compiled in or not), Graphviz (looked up on PATH now, as `nabla graph --png` does). */
static void print_version(void)
{
    printf("%s\n", nb_version_string());
    static const nb_gemm_backend backends[] = {NB_GEMM_ONEDNN, NB_GEMM_OPENBLAS,
                                               NB_GEMM_PORTABLE};
    printf("  %-18s", "matrix products:");
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        printf("%s%s %s", i ? ", " : "", nb_gemm_backend_name(backends[i]),
               nb_gemm_available(backends[i]) ? "yes" : "no (built without it)");
    printf("\n");
    nb_error why = {0};
    if (nb_bf16_supported(&why) == NB_OK)
        printf("  bf16:             yes (--precision bf16)\n");
    else
        printf("  bf16:             no (%s)\n", why.msg);
    printf("  MPI:              %s\n",
           nb_dist_available() ? "yes (mpirun -np N nabla train)"
                               : "no (built without Open MPI: install libopenmpi-dev, rebuild)");
    printf("  ONNX export:      %s\n",
           nb_export_onnx_available()
               ? "yes (export --format onnx)"
               : "no (built without protobuf-c: install libprotobuf-c-dev protobuf-c-compiler)");
    nb_error plot = {0};
    if (plot_check(&plot) == NB_OK)
        printf("  cairo:            yes (train --plot, plot-csv, plot-regions)\n");
    else
        printf("  cairo:            no (%s)\n", plot.msg);
    char dot[4096];
    if (cli_find_on_path("dot", dot, sizeof dot))
        printf("  Graphviz:         yes, %s (graph --png, --svg)\n", dot);
    else
        printf("  Graphviz:         no ('dot' is not on PATH: install graphviz for "
               "graph --png, --svg)\n");
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: nabla COMMAND [OPTIONS]\n\n"
                 "Neural networks with reverse-mode automatic differentiation.\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'nabla COMMAND --help' for a command's options; 'nabla --version'.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        print_version();
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            /* Under mpirun only train joins the job; any other command would run N times and
             * print N times: rank 0 runs it alone, the other ranks leave at once. */
            int ranks = nb_dist_launched();
            if (ranks > 1 && commands[i].run != cmd_train) {
                if (nb_dist_launched_rank() > 0)
                    return 0;
                fprintf(stderr, "nabla %s: started by mpirun with %d processes; it runs once, in "
                        "rank 0 (only train is distributed)\n", argv[1], ranks);
            }
            int status = commands[i].run(argc - 1, argv + 1);
            /* results printed on standard output (predictions, JSON, DOT) that did not reach
             * their file — a full disk, a closed pipe — fail the command */
            errno = 0;
            if ((fflush(stdout) != 0 || ferror(stdout)) && status == 0) {
                fprintf(stderr, "nabla %s: writing the results to standard output failed: %s\n",
                        argv[1], errno ? strerror(errno) : "write error");
                status = 1;
            }
            return status;
        }
    fprintf(stderr, "nabla: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
