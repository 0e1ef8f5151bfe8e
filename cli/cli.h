/* The command-line tool's shared helpers. Only the tool prints and exits; the library
 * returns statuses. */
#ifndef NB_CLI_H
#define NB_CLI_H

#include "nabla.h"

#include <stdio.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define FASHION_CLASSES "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"

/* Prints "nabla CMD: message" to stderr and returns exit status 1 (2 for usage errors). */
int cli_fail(const char *cmd, const nb_error *err);
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Loads a data set from a spec (see DATA_HELP); *classes receives class names or NULL. */
nb_status cli_load_data(const char *spec, nb_dataset *ds, const char **classes, nb_error *err);
/* cli_load_data for model m (may be NULL): a CSV's target columns are read as regression
 * targets for a regression model, else as class labels mapped through m's class names. */
nb_status cli_load_data_for(const char *spec, nb_dataset *ds, const char **classes,
                            const nb_model *m, nb_error *err);
/* An error saying how to name the label (or target) column when ds has none for m. */
nb_status cli_check_targets(const char *spec, const nb_dataset *ds, const nb_model *m,
                            nb_error *err);
#define DATA_HELP                                                                              \
    "Data sets (SPEC):\n"                                                                       \
    "  fashion-mnist         Fashion-MNIST training images (" FASHION_DIR ")\n"               \
    "  fashion-mnist-test    Fashion-MNIST test images\n"                                     \
    "  idx:IMAGES,LABELS     IDX files, gzipped or plain (LABELS may be omitted)\n"           \
    "  csv:FILE[:COLUMN]     CSV with a header row; COLUMN (name or 0-based index) = label:\n" \
    "                        class indices 0..K-1 or class names (cat, dog: sorted)\n"        \
    "  csv:FILE:COL,COL,...  regression targets (numbers) for a model ending in mse\n"        \
    "  spirals[:N[:K[:NOISE[:SEED]]]]  K interleaved 2-D spirals, N points each\n"            \
    "                        (defaults 100, 3, 0.2, 1)\n"

/* Whether an executable `name` is on PATH (an empty PATH means /usr/bin:/bin); its full
 * path is copied into found (may be NULL) when it is. */
int cli_find_on_path(const char *name, char *found, size_t size);

/* The files a data spec reads: path[0] and path[1] (idx: images and labels; "" when absent)
 * and the column of csv:FILE:COLUMN (NULL when absent; points into path[0]'s buffer).
 * Returns how many paths (0 for generated data such as spirals). */
typedef struct cli_data_source {
    char path[2][1024];
    const char *column;
} cli_data_source;
int cli_data_files(const char *spec, cli_data_source *src);

/* Outputs of a command: refused when empty, equal to one another or to an input (the same
 * file, by device and inode, or the same path), or being written by another nabla process
 * (an advisory fcntl lock on PATH.lock beside each, held until cli_outputs_release and released
 * by the kernel if the process dies). inputs may hold NULLs (absent options). */
typedef struct cli_outputs {
    int count;
    int fd[8];
    char *lock[8];
} cli_outputs;
nb_status cli_outputs_claim(cli_outputs *out, const char *const *paths, const char *const *names,
                            int n, const char *const *inputs, int n_inputs, nb_error *err);
void cli_outputs_release(cli_outputs *out);

/* --log PATH of nabla train (cli/train_log.c), open for appending epoch rows: a fresh log
 * (resume_epoch < 0), or after --resume the log cut back to its rows of epochs
 * 1..resume_epoch; either replaces PATH atomically. NULL with err set on failure (PATH then
 * as it was). */
FILE *train_log_open(const char *path, int resume_epoch, nb_error *err);

/* Reads a model argument: an MLP shorthand, or a description file. *text is malloc'd. */
nb_status cli_read_model_text(const char *arg, char **text, nb_error *err);
/* Whether path names a safetensors file (by extension). */
int cli_is_model_file(const char *path);
/* Builds a model from a shorthand, description file or model file. */
nb_model *cli_open_model(const char *arg, uint64_t seed, nb_gemm *gemm, nb_error *err);
/* cli_open_model with train's --loss: -1 (as the model says), NB_LOSS_AUTO or NB_LOSS_MSE; a
 * model file must agree with it. */
nb_model *cli_open_model_loss(const char *arg, int loss, uint64_t seed, nb_gemm *gemm,
                              nb_error *err);
/* Gives a new model the names its training data carries: class names (`classes`, e.g.
 * Fashion-MNIST's, or those read from a CSV's labels) and target column names. */
nb_status cli_model_take_names(nb_model *m, const nb_dataset *ds, const char *classes,
                               nb_error *err);

/* Parses numbers, reporting the option on failure. Return 0 on error. */
int cli_int(const char *cmd, const char *opt, const char *text, long long lo, long long hi,
            long long *out);
int cli_float(const char *cmd, const char *opt, const char *text, double *out);

/* The gemm backend for --threads / --gemm (or NABLA_GEMM from the environment). */
nb_gemm *cli_gemm(const char *backend, int threads, nb_error *err);

/* --precision: fp32, bf16 (refused where unavailable) or bf16-or-fp32 (bf16 where available,
 * else fp32, saying so on stderr). */
typedef enum cli_precision { CLI_FP32 = 0, CLI_BF16, CLI_BF16_OR_FP32 } cli_precision;
/* -1 if text names none of them. */
int cli_precision_parse(const char *text);
/* Puts g in the precision chosen; *used receives the one it runs in (may be NULL). */
nb_status cli_set_precision(const char *cmd, nb_graph *g, int choice, nb_precision *used,
                            nb_error *err);
#define PRECISION_HELP                                                                         \
    "  --precision P        fp32 (default) | bf16: Linear's matrix products with bfloat16\n"    \
    "                       operands, fp32 accumulation, fp32 everything else (needs oneDNN\n"  \
    "                       and a CPU with AVX512-BF16 or AMX; refused otherwise) |\n"           \
    "                       bf16-or-fp32: bf16 where available, else fp32 with a note\n"

int cmd_gradcheck(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_graph(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_plot_regions(int argc, char **argv);
int cmd_plot_csv(int argc, char **argv);

#endif
