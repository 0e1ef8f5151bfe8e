/* nabla train MODEL: minibatch training with the lecture's practical tricks (§5). */
#include "cli.h"
#include "plot.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void help(void)
{
    printf("Usage: nabla train MODEL [OPTIONS]\n\n"
           "Trains MODEL — a description file (.nb), an MLP shorthand such as 784-256-128-10,\n"
           "or a model file (.safetensors) to continue from — on a labelled data set with\n"
           "cross-entropy (§5.2), or on numeric targets with the mean squared error (§1: a\n"
           "description ending in mse(...), or --loss mse), and saves it as safetensors.\n\n"
           "Data:\n"
           "  --data SPEC          training data (default fashion-mnist)\n"
           "  --val-split F        hold out a stratified fraction F for validation (default 0)\n"
           "  --val SPEC           a separate validation set\n"
           "  --test SPEC          evaluate on SPEC after training and report test accuracy\n"
           "  --normalize MODE     none|feature|channel|global (default feature): b' = (b-m)/max(s,eps)\n"
           "                       with statistics from the training set only (§5.5)\n"
           "  --loss NAME          cross-entropy (default: classification) | mse: regression on\n"
           "                       the targets of csv:FILE:COL[,COL...], one output per target\n"
           "  --normalize-targets MODE  standard (default) | none: regression learns\n"
           "                       t' = (t-m)/s per target (training set statistics, kept in the\n"
           "                       model, undone by predict and eval)\n"
           "  --order ORDER        shuffle|sequential|stratified (default shuffle, every epoch)\n"
           "  --no-shuffle         same as --order sequential\n");
    printf("Optimisation:\n"
           "  --epochs N           passes over the data (default 10)\n"
           "  --batch N            samples per step (default 128; 1 = SGD; 0 = full batch)\n"
           "  --optimizer NAME     sgd|adam|adamw (default sgd)\n"
           "  --lr F               learning rate (default 0.1 for sgd, 0.001 for adam/adamw)\n"
           "  --momentum F         SGD momentum (default 0.9), --nesterov, --dampening F\n"
           "  --beta1 F --beta2 F --adam-eps F   Adam's moments (0.9, 0.999, 1e-8)\n"
           "  --weight-decay F     torch's weight_decay (decoupled for adamw; adamw default 0.01)\n"
           "  --l2 A               the lecture's L2 term A*|w|^2 (= --weight-decay 2A)\n"
           "  --l1 F               L1 (lasso) penalty F*sum|w|\n"
           "  --clip F             clip the gradient's 2-norm to F\n"
           "  --schedule NAME      constant|step|exp|cosine (default constant)\n"
           "  --step-size N --gamma F --min-lr F   schedule parameters (in steps; gamma 0.1)\n"
           "  --warmup N           linear warm-up over N steps\n"
           "  --init-scheme NAME   torch|kaiming-normal|kaiming-uniform|xavier-normal|xavier-uniform\n"
           "                       (default kaiming-uniform, §5.8)\n"
           "  --init FILE          start from the weights in FILE (safetensors)\n");
    printf("Run:\n"
           "  -o, --output FILE    the trained model (default model.safetensors)\n"
           "  --checkpoint FILE    written atomically after every epoch and when stopped by a\n"
           "                       signal (default OUTPUT.ckpt); 'none': no checkpoints\n"
           "  --resume             continue from the checkpoint as if never stopped\n"
           "  --keep WHICH         last|best (default last): save the last epoch's weights, or\n"
           "                       those of the epoch with the best validation metric\n"
           "  --keep-metric M      loss|accuracy (default loss): what best means (validation\n"
           "                       loss lowest or accuracy highest), for --keep and --early-stop\n"
           "  --early-stop N       stop after N epochs in a row without a better validation\n"
           "                       metric (patience); --keep and --early-stop need --val or\n"
           "                       --val-split, and carry over --resume\n"
           "  --log FILE           per-epoch CSV log, started afresh (replacing FILE); with\n"
           "                       --resume, its rows up to the checkpoint's epoch are kept\n"
           "  --plot FILE.png      training curves: loss and accuracy per epoch, training vs\n"
           "                       validation, and the --test result; after --resume, the\n"
           "                       earlier epochs come from the --log file\n"
           "  --seed N             seed for initialisation, order and dropout (default 1)\n"
           "  --augment            image models: random crops of the image padded by 2 pixels\n"
           "                       and random horizontal flips of every training sample,\n"
           "                       drawn from the seed, epoch and row (reproducible, resumable)\n"
           "  --augment-pad N      the crops' padding (default 2; 0: flips only)\n"
           "  --threads N          threads (default: all cores)\n"
           "  --gemm NAME          auto|onednn|openblas|portable matrix-product backend\n"
           PRECISION_HELP
           "  --json               print a JSON summary on stdout\n"
           "  -q, --quiet          no progress output\n"
           "  -h, --help           this help\n\n" DATA_HELP);
    if (nb_dist_available())
        printf("\nDistributed (MPI): mpirun -np N nabla train MODEL [OPTIONS] runs N processes that\n"
               "share every batch of --batch rows (each gathers and computes its own contiguous\n"
               "share; one gradient all-reduce per step) and step the same optimiser; the result\n"
               "equals one process's up to float summation order. Every rank loads the data (and\n"
               "--resume's checkpoint): keep them on every host. Rank 0 alone writes the model,\n"
               "checkpoints, log, plot and output; each rank uses its share of the host's cores.\n"
               "On several hosts: mpirun --hostfile HOSTS -np N nabla train ...\n"
               "Ctrl-C (or SIGTERM) on mpirun reaches the ranks as SIGTERM a second later; they\n"
               "stop before the same step and rank 0 writes the checkpoint, within the second\n"
               "before mpirun's SIGKILL (mpirun --mca odls_base_sigkill_timeout S: S seconds).\n");
    else
        printf("\nDistributed training (mpirun -np N nabla train) is unavailable: nabla was built\n"
               "without MPI (install libopenmpi-dev and rebuild).\n");
}

typedef struct run {
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
} run;

/* SIGINT (Ctrl-C) and SIGTERM (what schedulers send before they kill, and what mpirun sends
 * every rank when it is interrupted): the first asks training to stop between two steps and
 * write the checkpoint; a second ends the process at once, as without a handler. */
static volatile sig_atomic_t stop_signal;
static void on_stop_signal(int sig)
{
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}
static int interrupted(void *user) { (void)user; return stop_signal != 0; }

static void catch_stop_signals(int catch)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = catch ? on_stop_signal : SIG_DFL;
    sa.sa_flags = SA_RESTART; /* a write or fsync under way completes */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void progress(void *user, int epoch, int64_t done, int64_t total, double loss, double secs)
{
    run *r = user;
    if (r->quiet || !r->tty)
        return;
    static int64_t last;
    if (done != total && done - last < total / 50 && done > last)
        return;
    last = done;
    int width = 30, fill = (int)(width * done / total);
    double rate = (double)done / (secs > 0 ? secs : 1e-9);
    fprintf(stderr, "\repoch %d [%.*s%*s] %3d%% loss %.4f  %.0f samples/s  ETA %.0fs ", epoch,
            fill, "==============================", width - fill, "", (int)(100 * done / total),
            loss, rate, (double)(total - done) / rate);
    if (done == total)
        fprintf(stderr, "\r%*s\r", 100, "");
}

/* Under Open MPI, Ctrl-C or SIGTERM on mpirun reaches the ranks as SIGTERM, and SIGKILL
 * follows odls_base_sigkill_timeout seconds later (1 by default; mpirun passes a --mca value
 * on in the environment): a checkpoint that takes more than half of that to write could be
 * cut off on such a stop (the previous one would stay). Said once, while there is time. */
static void note_slow_checkpoint(run *r, double seconds)
{
    if (!r->dist || r->noted_slow || !getenv("OMPI_COMM_WORLD_SIZE"))
        return;
    const char *grace_text = getenv("OMPI_MCA_odls_base_sigkill_timeout");
    double grace = grace_text && atof(grace_text) > 0 ? atof(grace_text) : 1;
    if (seconds <= grace / 2)
        return;
    r->noted_slow = 1;
    fprintf(stderr, "nabla train: note: writing the checkpoint %s took %.2g s; a Ctrl-C or "
            "SIGTERM on mpirun leaves the ranks %g s to write it before mpirun kills them: "
            "start mpirun with --mca odls_base_sigkill_timeout %d to stop cleanly that way\n",
            r->checkpoint, seconds, grace, (int)ceil(4 * seconds) + 1);
}

static int epoch_end(void *user, const nb_epoch_stats *s)
{
    run *r = user;
    r->last = *s;
    if (r->plot && plot_history_add(&r->history, s, &r->fail_err)) {
        r->failed = 1;
        return 1;
    }
    if (!r->quiet) {
        fprintf(stderr, "epoch %d/%d  loss %.4f", s->epoch, s->epochs, s->train_loss);
        if (!isnan(s->train_accuracy))
            fprintf(stderr, "  acc %.2f%%", 100 * s->train_accuracy);
        if (!isnan(s->val_loss))
            fprintf(stderr, "  val loss %.4f", s->val_loss);
        if (!isnan(s->val_accuracy))
            fprintf(stderr, "  val acc %.2f%%", 100 * s->val_accuracy);
        fprintf(stderr, "  lr %.3g  %.1fs  %.0f samples/s%s\n", s->lr, s->seconds,
                s->samples_per_second, r->tracking && s->improved ? "  (best)" : "");
        if (s->stopping)
            fprintf(stderr, "early stop: no better validation metric for %d epochs since "
                    "epoch %d\n", s->epoch - s->best_epoch, s->best_epoch);
    }
    if (r->log) {
        errno = 0;
        if (fprintf(r->log, "%d,%lld,%.9g,%.6f,%.6f,%.9g,%.6f,%.6f,%.1f\n", s->epoch,
                    (long long)s->step, s->lr, s->train_loss, s->train_accuracy, s->val_loss,
                    s->val_accuracy, s->seconds, s->samples_per_second) < 0 ||
            fflush(r->log) != 0) {
            nb_error_set(&r->fail_err, NB_EIO, "%s: writing epoch %d's line failed: %s",
                         r->log_path, s->epoch, errno ? strerror(errno) : "write error");
            r->failed = 1;
            return 1;
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (r->checkpoint && nb_trainer_save_checkpoint(r->trainer, r->checkpoint, &r->fail_err)) {
        r->failed = 1;
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (r->checkpoint)
        note_slow_checkpoint(r, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec));
    return 0;
}

/* Under mpirun every rank ends an epoch here (rank 0 writing, the others quiet): the
 * replicas must still hold the same weights, and all ranks take rank 0's decision to stop. */
static int epoch_end_dist(void *user, const nb_epoch_stats *s)
{
    run *r = user;
    int stop = epoch_end(user, s), root = nb_dist_rank(r->dist) == 0;
    nb_graph *g = nb_model_graph(r->model);
    nb_error err = {0};
    if (nb_dist_check_replicas(r->dist, nb_graph_params(g), nb_graph_param_floats(g), &err)) {
        if (root)
            cli_fail("train", &err);
        nb_dist_abort(r->dist, 1);
    }
    nb_dist_stats now;
    nb_dist_get_stats(r->dist, &now);
    int64_t calls = now.allreduces - r->comm.allreduces;
    if (!r->quiet)
        fprintf(stderr, "  %d rank%s: %.2fs (%.1f%%) in %lld gradient all-reduces of %.2f MB\n",
                nb_dist_size(r->dist), nb_dist_size(r->dist) > 1 ? "s" : "",
                now.seconds - r->comm.seconds,
                100 * (now.seconds - r->comm.seconds) / s->seconds, (long long)calls,
                calls ? (now.bytes - r->comm.bytes) / (double)calls / 1e6 : 0.0);
    r->comm_epoch = now.seconds - r->comm.seconds;
    r->comm = now;
    return nb_dist_any(r->dist, stop);
}

/* Reports an unwritable output before any training time is spent. */
static int check_writable(const char *path, nb_error *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        nb_error_set(err, NB_EIO, "%s: is a directory; expected a file path", path);
        return 0;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.probe.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        nb_error_set(err, NB_EIO, "%s: cannot write here: %s", path, strerror(errno));
        return 0;
    }
    int closed = close(fd) == 0, e = errno;
    unlink(tmp);
    if (!closed) {
        nb_error_set(err, NB_EIO, "%s: cannot write here: %s", path, strerror(e));
        return 0;
    }
    return 1;
}

/* "--lr" for the option named "lr", for messages. */
static const char *options_dashed(const char *name)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "--%s", name);
    return buf;
}

static int parse_choice(const char *text, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

int cmd_train(int argc, char **argv)
{
    enum {
        O_DATA = 256, O_VAL_SPLIT, O_VAL, O_TEST, O_NORMALIZE, O_ORDER, O_NO_SHUFFLE, O_EPOCHS,
        O_BATCH, O_OPTIMIZER, O_LR, O_MOMENTUM, O_NESTEROV, O_DAMPENING, O_BETA1, O_BETA2,
        O_ADAM_EPS, O_WD, O_L2, O_L1, O_CLIP, O_SCHEDULE, O_STEP_SIZE, O_GAMMA, O_MIN_LR,
        O_WARMUP, O_INIT_SCHEME, O_INIT, O_CHECKPOINT, O_RESUME, O_LOG, O_SEED, O_THREADS,
        O_GEMM, O_JSON, O_PLOT, O_PRECISION, O_KEEP, O_KEEP_METRIC, O_EARLY_STOP, O_LOSS,
        O_NORM_TARGETS, O_AUGMENT, O_AUGMENT_PAD
    };
    static const struct option options[] = {
        {"data", required_argument, 0, O_DATA}, {"val-split", required_argument, 0, O_VAL_SPLIT},
        {"val", required_argument, 0, O_VAL}, {"test", required_argument, 0, O_TEST},
        {"normalize", required_argument, 0, O_NORMALIZE}, {"order", required_argument, 0, O_ORDER},
        {"no-shuffle", no_argument, 0, O_NO_SHUFFLE}, {"epochs", required_argument, 0, O_EPOCHS},
        {"batch", required_argument, 0, O_BATCH}, {"optimizer", required_argument, 0, O_OPTIMIZER},
        {"lr", required_argument, 0, O_LR}, {"momentum", required_argument, 0, O_MOMENTUM},
        {"nesterov", no_argument, 0, O_NESTEROV}, {"dampening", required_argument, 0, O_DAMPENING},
        {"beta1", required_argument, 0, O_BETA1}, {"beta2", required_argument, 0, O_BETA2},
        {"adam-eps", required_argument, 0, O_ADAM_EPS}, {"weight-decay", required_argument, 0, O_WD},
        {"l2", required_argument, 0, O_L2}, {"l1", required_argument, 0, O_L1},
        {"clip", required_argument, 0, O_CLIP}, {"schedule", required_argument, 0, O_SCHEDULE},
        {"step-size", required_argument, 0, O_STEP_SIZE}, {"gamma", required_argument, 0, O_GAMMA},
        {"min-lr", required_argument, 0, O_MIN_LR}, {"warmup", required_argument, 0, O_WARMUP},
        {"init-scheme", required_argument, 0, O_INIT_SCHEME}, {"init", required_argument, 0, O_INIT},
        {"output", required_argument, 0, 'o'}, {"checkpoint", required_argument, 0, O_CHECKPOINT},
        {"resume", no_argument, 0, O_RESUME}, {"log", required_argument, 0, O_LOG},
        {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, O_THREADS},
        {"gemm", required_argument, 0, O_GEMM}, {"json", no_argument, 0, O_JSON},
        {"plot", required_argument, 0, O_PLOT}, {"precision", required_argument, 0, O_PRECISION},
        {"keep", required_argument, 0, O_KEEP}, {"keep-metric", required_argument, 0, O_KEEP_METRIC},
        {"early-stop", required_argument, 0, O_EARLY_STOP},
        {"loss", required_argument, 0, O_LOSS},
        {"normalize-targets", required_argument, 0, O_NORM_TARGETS},
        {"augment", no_argument, 0, O_AUGMENT}, {"augment-pad", required_argument, 0, O_AUGMENT_PAD},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    static const char *const optimizers[] = {[NB_OPT_SGD] = "sgd", [NB_OPT_ADAM] = "adam",
                                             [NB_OPT_ADAMW] = "adamw"};
    static const char *const schedules[] = {[NB_SCHED_CONSTANT] = "constant", [NB_SCHED_STEP] = "step",
                                            [NB_SCHED_EXPONENTIAL] = "exp", [NB_SCHED_COSINE] = "cosine"};
    static const char *const orders[] = {[NB_ORDER_SEQUENTIAL] = "sequential",
                                         [NB_ORDER_SHUFFLE] = "shuffle",
                                         [NB_ORDER_STRATIFIED] = "stratified"};
    static const char *const keeps[] = {[NB_KEEP_LAST] = "last", [NB_KEEP_BEST] = "best"};
    static const char *const metrics[] = {[NB_MONITOR_VAL_LOSS] = "loss",
                                          [NB_MONITOR_VAL_ACCURACY] = "accuracy"};
    static const char *const norms[] = {[NB_NORM_NONE] = "none", [NB_NORM_FEATURE] = "feature",
                                        [NB_NORM_CHANNEL] = "channel", [NB_NORM_GLOBAL] = "global"};
    nb_train_config cfg;
    nb_train_config_default(&cfg);
    const char *data = "fashion-mnist", *val_spec = NULL, *test_spec = NULL, *output = "model.safetensors";
    const char *checkpoint = NULL, *log_path = NULL, *init_file = NULL, *gemm_name = NULL;
    const char *plot = NULL;
    double val_split = 0, v;
    long long n;
    int norm_mode = NB_NORM_FEATURE, init_scheme = NB_INIT_KAIMING_UNIFORM, resume = 0, json = 0;
    int quiet = 0, threads = 0, lr_given = 0, wd_given = 0, precision = CLI_FP32, c;
    int loss = -1, target_norm = NB_NORM_FEATURE; /* loss -1: as the model says */
    nb_precision used = NB_PRECISION_FP32;
    cfg.schedule.gamma = 0.1f;
#define FLOAT_OPT(field)                                                                      \
    do {                                                                                      \
        if (!cli_float("train", options_dashed(options[optind_opt].name), optarg, &v))       \
            return 2;                                                                         \
        field = (float)v;                                                                     \
    } while (0)
    int optind_opt = 0;
    while ((c = getopt_long(argc, argv, ":o:qh", options, &optind_opt)) != -1) {
        switch (c) {
        case O_DATA: data = optarg; break;
        case O_VAL: val_spec = optarg; break;
        case O_TEST: test_spec = optarg; break;
        case O_VAL_SPLIT:
            if (!cli_float("train", "--val-split", optarg, &val_split) || val_split < 0 || val_split >= 1)
                return cli_usage_error("train", "--val-split: expected 0 <= F < 1");
            break;
        case O_NORMALIZE:
            if ((norm_mode = parse_choice(optarg, norms, 4)) < 0)
                return cli_usage_error("train", "--normalize: expected none, feature, channel or global");
            break;
        case O_ORDER:
            if ((n = parse_choice(optarg, orders, 3)) < 0)
                return cli_usage_error("train", "--order: expected shuffle, sequential or stratified");
            cfg.order = (nb_order)n;
            break;
        case O_NO_SHUFFLE: cfg.order = NB_ORDER_SEQUENTIAL; break;
        case O_EPOCHS: if (!cli_int("train", "--epochs", optarg, 0, 1000000, &n)) return 2; cfg.epochs = (int)n; break;
        case O_BATCH: if (!cli_int("train", "--batch", optarg, 0, 1 << 24, &n)) return 2; cfg.batch = n; break;
        case O_OPTIMIZER:
            if ((n = parse_choice(optarg, optimizers, 3)) < 0)
                return cli_usage_error("train", "--optimizer: expected sgd, adam or adamw");
            cfg.optim.kind = (nb_optim_kind)n;
            break;
        case O_LR: FLOAT_OPT(cfg.optim.lr); lr_given = 1; break;
        case O_MOMENTUM: FLOAT_OPT(cfg.optim.momentum); break;
        case O_NESTEROV: cfg.optim.nesterov = 1; break;
        case O_DAMPENING: FLOAT_OPT(cfg.optim.dampening); break;
        case O_BETA1: FLOAT_OPT(cfg.optim.beta1); break;
        case O_BETA2: FLOAT_OPT(cfg.optim.beta2); break;
        case O_ADAM_EPS: FLOAT_OPT(cfg.optim.eps); break;
        case O_WD: FLOAT_OPT(cfg.optim.weight_decay); wd_given = 1; break;
        case O_L2: FLOAT_OPT(cfg.optim.weight_decay); cfg.optim.weight_decay *= 2; wd_given = 1; break;
        case O_L1: FLOAT_OPT(cfg.optim.l1); break;
        case O_CLIP: FLOAT_OPT(cfg.optim.clip_norm); break;
        case O_SCHEDULE:
            if ((n = parse_choice(optarg, schedules, 4)) < 0)
                return cli_usage_error("train", "--schedule: expected constant, step, exp or cosine");
            cfg.schedule.kind = (nb_schedule_kind)n;
            break;
        case O_STEP_SIZE: if (!cli_int("train", "--step-size", optarg, 1, 1LL << 40, &n)) return 2; cfg.schedule.step_size = n; break;
        case O_GAMMA: FLOAT_OPT(cfg.schedule.gamma); break;
        case O_MIN_LR: FLOAT_OPT(cfg.schedule.min_lr); break;
        case O_WARMUP: if (!cli_int("train", "--warmup", optarg, 0, 1LL << 40, &n)) return 2; cfg.schedule.warmup = n; break;
        case O_INIT_SCHEME:
            if ((init_scheme = nb_init_parse(optarg)) < 0)
                return cli_usage_error("train", "--init-scheme: expected torch, kaiming-normal, "
                                       "kaiming-uniform, xavier-normal or xavier-uniform");
            break;
        case O_INIT: init_file = optarg; break;
        case 'o': output = optarg; break;
        case O_CHECKPOINT: checkpoint = optarg; break;
        case O_RESUME: resume = 1; break;
        case O_LOG: log_path = optarg; break;
        case O_SEED: if (!cli_int("train", "--seed", optarg, 0, 1LL << 62, &n)) return 2; cfg.seed = (uint64_t)n; break;
        case O_THREADS: if (!cli_int("train", "--threads", optarg, 0, 1024, &n)) return 2; threads = (int)n; break;
        case O_GEMM: gemm_name = optarg; break;
        case O_AUGMENT: cfg.augment_flip = 1; if (!cfg.augment_pad) cfg.augment_pad = 2; break;
        case O_AUGMENT_PAD:
            if (!cli_int("train", "--augment-pad", optarg, 0, 1 << 20, &n)) return 2;
            cfg.augment_pad = (int)n ? (int)n : -1; /* -1: no crops, set below */
            break;
        case O_JSON: json = 1; break;
        case O_PLOT: plot = optarg; break;
        case O_PRECISION:
            if ((precision = cli_precision_parse(optarg)) < 0)
                return cli_usage_error("train", "--precision: expected fp32, bf16 or bf16-or-fp32");
            break;
        case O_KEEP:
            if ((n = parse_choice(optarg, keeps, 2)) < 0)
                return cli_usage_error("train", "--keep: expected last or best");
            cfg.keep = (nb_keep)n;
            break;
        case O_KEEP_METRIC:
            if ((n = parse_choice(optarg, metrics, 2)) < 0)
                return cli_usage_error("train", "--keep-metric: expected loss or accuracy");
            cfg.monitor = (nb_monitor)n;
            break;
        case O_EARLY_STOP: if (!cli_int("train", "--early-stop", optarg, 1, 1000000, &n)) return 2; cfg.patience = (int)n; break;
        case O_LOSS:
            if (strcmp(optarg, "mse") && strcmp(optarg, "cross-entropy"))
                return cli_usage_error("train", "--loss: expected cross-entropy or mse");
            loss = strcmp(optarg, "mse") == 0 ? NB_LOSS_MSE : NB_LOSS_AUTO;
            break;
        case O_NORM_TARGETS:
            if (strcmp(optarg, "standard") && strcmp(optarg, "none"))
                return cli_usage_error("train", "--normalize-targets: expected standard or none");
            target_norm = strcmp(optarg, "none") ? NB_NORM_FEATURE : NB_NORM_NONE;
            break;
        case 'q': quiet = 1; break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("train", "option '%s' requires an argument", argv[optind - 1]);
        default: return cli_usage_error("train", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("train", "expected one MODEL argument (e.g. 784-256-128-10)");
    const char *model_arg = argv[optind];
    if (cfg.augment_pad && !cfg.augment_flip)
        return cli_usage_error("train", "--augment-pad needs --augment");
    if (cfg.augment_pad < 0)
        cfg.augment_pad = 0;
    if (cfg.optim.kind != NB_OPT_SGD && !lr_given)
        cfg.optim.lr = 1e-3f;
    if (cfg.optim.kind != NB_OPT_SGD)
        cfg.optim.momentum = 0; /* SGD's default; Adam's moments are beta1/beta2 */
    if (cfg.optim.kind == NB_OPT_ADAMW && !wd_given)
        cfg.optim.weight_decay = 1e-2f; /* torch.optim.AdamW's default */
    if ((cfg.keep == NB_KEEP_BEST || cfg.patience > 0) && !val_spec && val_split == 0)
        return cli_usage_error("train", "%s needs validation data: add --val-split F or --val SPEC",
                               cfg.keep == NB_KEEP_BEST ? "--keep best" : "--early-stop");
    if (cfg.schedule.kind == NB_SCHED_STEP && cfg.schedule.step_size < 1)
        return cli_usage_error("train", "--schedule step needs --step-size N (steps)");
    if (cfg.schedule.kind == NB_SCHED_EXPONENTIAL && cfg.schedule.gamma == 0.1f)
        cfg.schedule.gamma = 0.9999f; /* per step: a tenth of the rate after ~23k steps */

    char ckpt_default[4200];
    if (!output[0])
        return cli_usage_error("train", "-o: expected a file name");
    if (checkpoint && !checkpoint[0])
        return cli_usage_error("train", "--checkpoint: expected a file name, or 'none' for no "
                               "checkpoints");
    if (log_path && !log_path[0])
        return cli_usage_error("train", "--log: expected a file name");
    if (plot && !plot[0])
        return cli_usage_error("train", "--plot: expected a file name");
    if (checkpoint && strcmp(checkpoint, "none") == 0) {
        if (resume)
            return cli_usage_error("train", "--resume needs a checkpoint to continue from; "
                                   "--checkpoint none turns them off");
        checkpoint = NULL;
    } else if (!checkpoint) {
        snprintf(ckpt_default, sizeof ckpt_default, "%s.ckpt", output);
        checkpoint = ckpt_default;
    }
    if (val_spec && val_split > 0)
        return cli_usage_error("train", "--val-split and --val both choose the validation set; "
                               "give one of them");
    if (!(cfg.optim.lr >= 0) || !isfinite(cfg.optim.lr))
        return cli_usage_error("train", "--lr: expected a finite rate >= 0");
    /* From here a signal asks the run to stop: during the set-up, before the first step.
     * Under mpirun, Ctrl-C makes mpirun send every rank SIGTERM (and SIGKILL a second later,
     * mpirun's odls_base_sigkill_timeout); the ranks agree to stop before the same step. */
    catch_stop_signals(1);
    nb_error err = {0};
    int status = 1;
    /* Under mpirun (and only then: a plain run never initialises MPI), join the job. */
    nb_dist *dist = NULL;
    int ranks = nb_dist_launched(), root = 1;
    char who[64] = "train"; /* "train [rank 3 of 4]" in error messages of ranks other than 0 */
    /* Under MPI, every rank ends through one agreement on the outcome (nb_dist_agree), met at
     * the same point by all: before training (a rank that failed to set up meets the others
     * there, and none trains), then at the end. A failure inside a step seen by one rank
     * alone leaves the others waiting in a collective: only then is the job aborted. */
    int skip_agree = 0, need_abort = 0;
    if (ranks > 1 || (ranks == 1 && nb_dist_available())) {
        if (!(dist = nb_dist_new(&err)))
            return cli_fail("train", &err);
        if ((root = nb_dist_rank(dist) == 0) == 0) {
            snprintf(who, sizeof who, "train [rank %d of %d]", nb_dist_rank(dist),
                     nb_dist_size(dist));
            quiet = 1; /* rank 0 alone prints and writes: the others open no file */
            json = 0;
            log_path = NULL;
            plot = NULL;
        }
        if (!threads)
            threads = nb_dist_threads(dist);
    }
    nb_dataset train = {0}, val = {0}, test = {0}, all = {0};
    nb_metrics test_metrics = {0}; /* regression's test figures, in the targets' units */
    nb_gemm *gemm = NULL;
    nb_model *m = NULL;
    nb_trainer *t = NULL;
    run r = {.tty = isatty(2), .quiet = quiet, .checkpoint = root ? checkpoint : NULL,
             .plot = plot, .dist = dist, .log_path = log_path,
             .tracking = cfg.keep == NB_KEEP_BEST || cfg.patience > 0};
    const char *classes = NULL, *ignored;
    cli_outputs claimed = {0};

    /* rank 0 writes: its outputs are distinct, none is an input, and no other nabla process
     * is writing them */
    cli_data_source sources[3];
    cli_data_files(data, &sources[0]);
    cli_data_files(val_spec ? val_spec : "", &sources[1]);
    cli_data_files(test_spec ? test_spec : "", &sources[2]);
    const char *outs[] = {output, checkpoint, log_path, plot};
    const char *out_names[] = {"-o", "--checkpoint", "--log", "--plot"};
    const char *ins[] = {cli_is_model_file(model_arg) ? model_arg : NULL, init_file,
                         sources[0].path[0][0] ? sources[0].path[0] : NULL,
                         sources[0].path[1][0] ? sources[0].path[1] : NULL,
                         sources[1].path[0][0] ? sources[1].path[0] : NULL,
                         sources[1].path[1][0] ? sources[1].path[1] : NULL,
                         sources[2].path[0][0] ? sources[2].path[0] : NULL,
                         sources[2].path[1][0] ? sources[2].path[1] : NULL};
    if (root && cli_outputs_claim(&claimed, outs, out_names, 4, ins, 8, &err))
        goto done;
    if (root && (!check_writable(output, &err) || (checkpoint && !check_writable(checkpoint, &err)) ||
                 (log_path && !check_writable(log_path, &err))))
        goto done;
    if (plot && (plot_check(&err) || !check_writable(plot, &err)))
        goto done;
    if (!(gemm = cli_gemm(gemm_name, threads, &err)))
        goto done;
    /* The model first: it says whether the data's target columns are classes or values. */
    if (!(m = cli_open_model_loss(model_arg, loss, cfg.seed, gemm, &err)))
        goto done;
    if (nb_model_targets(m) >= 0 && cfg.monitor == NB_MONITOR_VAL_ACCURACY) {
        nb_error_set(&err, NB_EINVAL, "--keep-metric accuracy: %s is a regression model, which "
                     "has no accuracy; keep the best validation loss (--keep-metric loss)",
                     model_arg);
        goto done;
    }
    if (cli_load_data_for(data, &all, &classes, m, &err) ||
        (!cli_is_model_file(model_arg) && cli_model_take_names(m, &all, classes, &err)) ||
        cli_check_targets(data, &all, m, &err))
        goto done;
    if (val_split > 0) {
        int64_t samples = all.count;
        if (nb_dataset_split(&all, val_split, cfg.seed, &train, &val, &err))
            goto done;
        if (train.count == 0 || val.count == 0) {
            nb_error_set(&err, NB_EINVAL, "--val-split %g of %s's %lld samples leaves %s",
                         val_split, data, (long long)samples,
                         train.count ? "no validation samples" : "no training samples");
            goto done;
        }
    } else {
        train = all;
        memset(&all, 0, sizeof all);
    }
    if (val_spec && (cli_load_data_for(val_spec, &val, &ignored, m, &err) ||
                     cli_check_targets(val_spec, &val, m, &err)))
        goto done;
    if (test_spec && (cli_load_data_for(test_spec, &test, &ignored, m, &err) ||
                      cli_check_targets(test_spec, &test, m, &err)))
        goto done;
    if (!cli_is_model_file(model_arg)) {
        nb_rng rng;
        nb_rng_seed(&rng, cfg.seed ^ 0x1417ull);
        nb_graph_init_params(nb_model_graph(m), (nb_init_kind)init_scheme, &rng);
        nb_norm norm = {0};
        if (norm_mode != NB_NORM_NONE && nb_norm_fit(&norm, &train, (nb_norm_mode)norm_mode, 1e-5f, &err))
            goto done;
        nb_model_set_norm(m, &norm);
        if (nb_model_targets(m) >= 0 && target_norm != NB_NORM_NONE) {
            if (nb_norm_fit_targets(&norm, &train, (nb_norm_mode)target_norm, &err))
                goto done;
            nb_model_set_target_norm(m, &norm);
        }
    }
    if (init_file && nb_model_load_weights(m, init_file, &err))
        goto done;
    /* every data set is checked now, naming what the user wrote; the test set not only
     * after the whole run */
    if (nb_model_check_data(m, &train, data, &err) ||
        (val_spec && nb_model_check_data(m, &val, val_spec, &err)) ||
        (test_spec && nb_model_check_data(m, &test, test_spec, &err)))
        goto done;
    if (test_spec && !test.labels && nb_model_targets(m) < 0) {
        nb_error_set(&err, NB_EINVAL, "--test %s: no labels; the test accuracy needs them",
                     test_spec);
        goto done;
    }
    if (cli_set_precision(who, nb_model_graph(m), precision, &used, &err))
        goto done;
    if (!(t = nb_trainer_new(m, &train, val.count ? &val : NULL, &cfg, &err)))
        goto done;
    r.trainer = t;
    r.model = m;
    if (root && cfg.optim.lr == 0)
        fprintf(stderr, "nabla train: note: --lr 0: the weights will not change\n");
    if (resume) {
        if (access(checkpoint, R_OK) != 0) {
            nb_error_set(&err, NB_EIO, "--resume: %s: %s", checkpoint, strerror(errno));
            goto done;
        }
        if (nb_trainer_resume(t, checkpoint, &err))
            goto done;
        if (!quiet)
            fprintf(stderr, "resuming from %s after epoch %d\n", checkpoint, nb_trainer_epoch(t));
        if (root && nb_trainer_resume_changes(t)[0])
            fprintf(stderr, "nabla train: note: --resume with other settings than the "
                    "checkpoint's: %s\n", nb_trainer_resume_changes(t));
        /* the curves show the whole run: the epochs before the stop come from the log */
        if (plot && log_path && access(log_path, R_OK) == 0 &&
            plot_history_read_log(&r.history, log_path, nb_trainer_epoch(t), &err))
            goto done;
    }
    if (dist) {
        if (nb_trainer_set_dist(t, dist, &err))
            goto done;
        nb_dist_fork_rng(dist, nb_graph_rng(nb_model_graph(m))); /* Dropout: own masks */
    }
    if (log_path && !(r.log = train_log_open(log_path, resume ? nb_trainer_epoch(t) : -1, &err)))
        goto done;
    if (dist) {
        int first;
        if (nb_dist_agree(dist, 0, &first)) { /* another rank failed to set up: it reports */
            status = 1;
            skip_agree = 1; /* that was the agreement */
            goto done;
        }
    }
    if (!quiet)
        fprintf(stderr, "training %s on %s: %lld samples, %lld parameters, batch %lld, %s, gemm %s%s\n",
                model_arg, data, (long long)train.count,
                (long long)nb_graph_param_floats(nb_model_graph(m)), (long long)(cfg.batch ? cfg.batch : train.count),
                optimizers[cfg.optim.kind], nb_gemm_name(gemm),
                used == NB_PRECISION_BF16 ? ", precision bf16" : "");
    if (dist && !quiet)
        fprintf(stderr, "distributed: %d ranks (%d on this host, %d threads each), each batch "
                "split into shares of about %lld rows\n", nb_dist_size(dist),
                nb_dist_local_size(dist), threads,
                (long long)((cfg.batch ? cfg.batch : train.count) / nb_dist_size(dist)));
    nb_train_callbacks cb = {.user = &r, .progress = progress,
                             .epoch_end = dist ? epoch_end_dist : epoch_end,
                             .interrupted = interrupted};
    nb_status s = nb_trainer_run(t, &cb, &err);
    catch_stop_signals(0);
    if (s == NB_EINTR) {
        /* the trainer stopped between two steps (every rank at the same one): save exactly
         * that state, and exit with the signal's conventional status (130, 143) */
        /* under MPI the signal may have reached another rank alone: name the one any rank
         * got (SIGTERM before SIGINT), so every rank and the message agree */
        int sig = nb_dist_agree(dist, stop_signal ? stop_signal : SIGINT, NULL);
        const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
        if (!root) {
            err.msg[0] = 0;
        } else if (!checkpoint) {
            fprintf(stderr, "\nnabla train: %s: %s; no checkpoint written (--checkpoint none)\n",
                    name, err.msg);
            err.msg[0] = 0;
        } else {
            char where[sizeof err.msg];
            snprintf(where, sizeof where, "%s", err.msg);
            if (nb_trainer_save_checkpoint(t, checkpoint, &err))
                goto done;
            fprintf(stderr, "\nnabla train: %s: %s; saved the checkpoint %s — continue with "
                    "--resume\n", name, where, checkpoint);
            err.msg[0] = 0;
        }
        status = 128 + sig;
        goto done;
    }
    if (s == NB_ENUMERIC) {
        /* keep the last good model rather than nothing — but never overwrite a file with
         * weights no step has shown to give a finite loss */
        nb_error save_err = {0};
        if (root) { /* every rank stopped at the same step (the all-reduce carried the NaN) */
            cli_fail("train", &err);
            if (!nb_trainer_weights_proven(t))
                fprintf(stderr, "nabla train: %s left as it was\n", output);
            else if (nb_model_save(m, output, &save_err) == NB_OK)
                fprintf(stderr, "nabla train: saved the last good weights to %s\n", output);
            else
                cli_fail("train", &save_err);
        }
        status = 1;
        err.msg[0] = 0;
        goto done;
    }
    if (!s && r.failed) { /* an epoch's file could not be written: stopped, not finished */
        nb_error_set(&err, r.fail_err.code, "%s; training stopped at the end of epoch %d of %d, %s left as it "
                     "was", r.fail_err.msg, nb_trainer_epoch(t), cfg.epochs, output);
        goto done;
    }
    if (s) {
        skip_agree = need_abort = dist != NULL; /* this rank alone may have stopped here */
        goto done;
    }
    if (root && nb_model_save(m, output, &err))
        goto done;
    double test_loss = NAN, test_acc = NAN;
    if (root && test.count && nb_model_targets(m) >= 0 &&
        nb_metrics_compute(m, &test, 0, &test_metrics, &err))
        goto done;
    if (root && test.count && nb_evaluate(m, &test, &test_loss, &test_acc, NULL, &err))
        goto done;
    if (plot) {
        char title[512];
        snprintf(title, sizeof title, "nabla train %s on %s", model_arg, data);
        if (plot_training_curves(plot, title, &r.history, test_loss, test_acc, &err))
            goto done;
        if (!quiet)
            fprintf(stderr, "training curves: %s\n", plot);
    }
    double best_metric;
    int best_epoch = nb_trainer_best_epoch(t, &best_metric);
    const char *metric_name = cfg.monitor == NB_MONITOR_VAL_ACCURACY ? "val accuracy" : "val loss";
    if (!quiet && cfg.keep == NB_KEEP_BEST && best_epoch)
        fprintf(stderr, "kept epoch %d of %d, the best by %s (%.6g)\n", best_epoch,
                nb_trainer_epoch(t), metric_name, best_metric);
    if (!quiet) {
        fprintf(stderr, "saved %s", output);
        if (test.count && test_metrics.targets)
            fprintf(stderr, "; test RMSE %.6g, R^2 %.6f (means over %lld target%s) on %lld "
                    "samples", test_metrics.rmse_mean, test_metrics.r2_mean,
                    (long long)test_metrics.targets, test_metrics.targets > 1 ? "s" : "",
                    (long long)test.count);
        else if (test.count)
            fprintf(stderr, "; test loss %.4f, test accuracy %.2f%% on %lld samples", test_loss,
                    100 * test_acc, (long long)test.count);
        fprintf(stderr, "\n");
    }
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", output);
        cJSON_AddStringToObject(j, "data", data);
        cJSON_AddNumberToObject(j, "epochs", nb_trainer_epoch(t));
        if (r.last.epoch > 0) { /* figures of the last epoch this run trained */
            cJSON_AddNumberToObject(j, "steps", (double)r.last.step);
            cJSON_AddNumberToObject(j, "train_loss", r.last.train_loss);
            if (!isnan(r.last.train_accuracy)) /* a regression has none */
                cJSON_AddNumberToObject(j, "train_accuracy", r.last.train_accuracy);
        }
        if (r.last.epoch > 0 && !isnan(r.last.val_loss)) {
            cJSON_AddNumberToObject(j, "val_loss", r.last.val_loss);
            if (!isnan(r.last.val_accuracy))
                cJSON_AddNumberToObject(j, "val_accuracy", r.last.val_accuracy);
        }
        if (r.tracking) {
            cJSON_AddStringToObject(j, "keep", cfg.keep == NB_KEEP_BEST ? "best" : "last");
            cJSON_AddStringToObject(j, "monitor", cfg.monitor == NB_MONITOR_VAL_ACCURACY
                                                      ? "val_accuracy" : "val_loss");
            cJSON_AddNumberToObject(j, "best_epoch", best_epoch);
            if (best_epoch)
                cJSON_AddNumberToObject(j, "best_metric", best_metric);
            cJSON_AddNumberToObject(j, "saved_epoch", cfg.keep == NB_KEEP_BEST && best_epoch
                                                          ? best_epoch : nb_trainer_epoch(t));
            cJSON_AddBoolToObject(j, "stopped_early", nb_trainer_stopped_early(t));
        }
        if (test.count) {
            cJSON_AddNumberToObject(j, "test_loss", test_loss);
            if (test_metrics.targets) {
                cJSON_AddNumberToObject(j, "test_mse", test_metrics.mse_mean);
                cJSON_AddNumberToObject(j, "test_rmse", test_metrics.rmse_mean);
                cJSON_AddNumberToObject(j, "test_mae", test_metrics.mae_mean);
                cJSON_AddNumberToObject(j, "test_r2", test_metrics.r2_mean);
            } else
                cJSON_AddNumberToObject(j, "test_accuracy", test_acc);
        }
        if (r.last.epoch > 0) {
            cJSON_AddNumberToObject(j, "samples_per_second", r.last.samples_per_second);
            cJSON_AddNumberToObject(j, "seconds_last_epoch", r.last.seconds);
        }
        cJSON_AddStringToObject(j, "gemm", nb_gemm_name(gemm));
        cJSON_AddStringToObject(j, "precision", nb_precision_name(used));
        if (used == NB_PRECISION_BF16) {
            char kernels[512];
            cJSON_AddStringToObject(j, "kernels", nb_graph_kernels(nb_model_graph(m), kernels,
                                                                   sizeof kernels));
        }
        if (dist) {
            nb_dist_stats c;
            nb_dist_get_stats(dist, &c);
            cJSON_AddNumberToObject(j, "ranks", nb_dist_size(dist));
            cJSON_AddNumberToObject(j, "threads_per_rank", threads);
            cJSON_AddNumberToObject(j, "allreduces", (double)c.allreduces);
            cJSON_AddNumberToObject(j, "allreduce_bytes", c.allreduces ? c.bytes / (double)c.allreduces : 0);
            cJSON_AddNumberToObject(j, "allreduce_seconds", c.seconds);
            cJSON_AddNumberToObject(j, "allreduce_seconds_last_epoch", r.comm_epoch);
        }
        char *text = cJSON_PrintUnformatted(j);
        puts(text ? text : "{}");
        free(text);
        cJSON_Delete(j);
    }
    status = 0;
done:;
    int mine = status;
    if (dist && !skip_agree) {
        /* a failure before training meets the other ranks' agreement before training; after
         * it, this is the agreement at the end. The lowest failing rank alone reports. */
        int first, all = nb_dist_agree(dist, status, &first);
        if (first != nb_dist_rank(dist))
            err.msg[0] = 0;
        status = mine ? mine : all;
    }
    if (mine == 1 && err.msg[0])
        cli_fail(who, &err);
    cli_outputs_release(&claimed);
    if (r.log)
        fclose(r.log);
    plot_history_free(&r.history);
    nb_trainer_free(t);
    nb_model_free(m);
    nb_gemm_free(gemm);
    nb_dataset_free(&train);
    nb_dataset_free(&val);
    nb_dataset_free(&test);
    nb_metrics_free(&test_metrics);
    nb_dataset_free(&all);
    if (need_abort)
        nb_dist_abort(dist, status); /* a rank that stops alone would leave the others waiting */
    nb_dist_free(dist);
    return status;
}
