/* nabla: the command-line tool. Dispatches to one subcommand per file. */
#include "cli.h"

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
    {"graph", cmd_graph, "the computation graph (or its gradient graph) in Graphviz DOT"},
    {"plot-regions", cmd_plot_regions, "picture of a 2-input classifier's decision regions"},
    {"plot-csv", cmd_plot_csv, "line charts of CSV columns (training logs, examples)"},
};

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
        printf("%s\n", nb_version_string());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
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
