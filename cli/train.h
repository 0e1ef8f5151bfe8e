/* nabla train in parts: its options (train_options.c), the stop signals (train_signals.c),
 * what a run reports at each epoch and at its end (train_report.c), and the run itself, from
 * the set-up to the outcome (cmd_train.c). */
#ifndef NB_CLI_TRAIN_H
#define NB_CLI_TRAIN_H

#include "nabla.h"
#include "plot.h"

#include <stdio.h>

/* Everything the command line says, checked as far as it can be without opening a file. */
typedef struct train_options {
    nb_train_config cfg;
    const char *model_arg;  /* MODEL: shorthand, description file or model file */
    const char *data, *val_spec, *test_spec;
    const char *output, *checkpoint, *log_path, *plot, *init_file, *gemm_name;
    double val_split;
    int norm_mode, init_scheme, target_norm;
    int loss;               /* -1: as the model says; NB_LOSS_AUTO or NB_LOSS_MSE */
    int precision;          /* cli_precision */
    int resume, json, quiet, threads;
    char checkpoint_default[4200]; /* OUTPUT.ckpt */
} train_options;

/* Parses nabla train's arguments into *o: -1 to go on, else the exit status to return (0
 * after --help, 2 after a usage error, which it has printed). */
int train_parse_options(int argc, char **argv, train_options *o);
const char *train_optimizer_name(nb_optim_kind kind);

/* SIGINT and SIGTERM: the first asks training to stop between two steps (train_interrupted
 * then says so), a second ends the process at once. catch 0 restores the defaults. */
void train_catch_stop_signals(int catch);
int train_interrupted(void *user);
int train_stop_signal(void); /* the first signal caught, or 0 */

/* The state of a run that the trainer's callbacks report and write. */
typedef struct train_run {
    int tty, quiet;
    FILE *log;
    const char *log_path;
    nb_trainer *trainer;
    const char *checkpoint;
    nb_epoch_stats last;
    const char *plot;     /* --plot: the epochs are kept for the curves */
    plot_history history;
    nb_dist *dist;        /* under mpirun; only rank 0 prints and writes */
    nb_model *model;
    nb_dist_stats comm;   /* at the end of the last epoch */
    double comm_epoch;    /* all-reduce seconds in the last epoch */
    /* A file that could not be written at an epoch's end: training stops, and the run fails
     * with this error (never as if it had finished). */
    int failed;
    nb_error fail_err;
    int tracking;         /* --keep best or --early-stop: mark the best epoch */
    int noted_slow;       /* the note on a checkpoint slower than mpirun's grace was given */
} train_run;

/* nb_train_callbacks for a train_run (user): the progress bar, and at each epoch's end its
 * line, the --log line and the checkpoint (train_epoch_end_dist: with the ranks' all-reduce
 * time, under mpirun). */
void train_progress(void *user, int epoch, int64_t done, int64_t total, double loss,
                    double secs);
int train_epoch_end(void *user, const nb_epoch_stats *s);
int train_epoch_end_dist(void *user, const nb_epoch_stats *s);

/* Whether path can be written (a probe file beside it), before any training time is spent. */
int train_check_writable(const char *path, nb_error *err);

/* What --json prints at the end of a successful run. */
typedef struct train_summary {
    const train_options *o;
    const train_run *run;
    const nb_trainer *trainer;
    nb_model *model;
    nb_gemm *gemm;
    nb_precision used;
    int64_t test_count;
    double test_loss, test_accuracy;
    const nb_metrics *test_metrics;  /* regression's test figures */
    int best_epoch;
    double best_metric;
    nb_dist *dist;
    int threads;
} train_summary;
void train_print_json(const train_summary *s);

#endif
