/* nabla train's options: the help, the parsing of every option, and the checks that need no
 * file (cli/train.h). */
#include "cli.h"
#include "train.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
           "  --label-smoothing F  cross-entropy against (1-F)*onehot(label) + F/K over the K\n"
           "                       classes, 0 <= F < 1 (default 0; torch's label_smoothing): the\n"
           "                       training loss shown includes it, validation and test losses\n"
           "                       are the plain cross-entropy\n"
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

static const char *const optimizers[] = {[NB_OPT_SGD] = "sgd", [NB_OPT_ADAM] = "adam",
                                         [NB_OPT_ADAMW] = "adamw"};

const char *train_optimizer_name(nb_optim_kind kind)
{
    return (int)kind >= 0 && kind < (int)(sizeof optimizers / sizeof optimizers[0])
               ? optimizers[kind] : "unknown";
}

int train_parse_options(int argc, char **argv, train_options *o)
{
    enum {
        O_DATA = 256, O_VAL_SPLIT, O_VAL, O_TEST, O_NORMALIZE, O_ORDER, O_NO_SHUFFLE, O_EPOCHS,
        O_BATCH, O_OPTIMIZER, O_LR, O_MOMENTUM, O_NESTEROV, O_DAMPENING, O_BETA1, O_BETA2,
        O_ADAM_EPS, O_WD, O_L2, O_L1, O_CLIP, O_SCHEDULE, O_STEP_SIZE, O_GAMMA, O_MIN_LR,
        O_WARMUP, O_INIT_SCHEME, O_INIT, O_CHECKPOINT, O_RESUME, O_LOG, O_SEED, O_THREADS,
        O_GEMM, O_JSON, O_PLOT, O_PRECISION, O_KEEP, O_KEEP_METRIC, O_EARLY_STOP, O_LOSS,
        O_NORM_TARGETS, O_AUGMENT, O_AUGMENT_PAD, O_LABEL_SMOOTHING
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
        {"label-smoothing", required_argument, 0, O_LABEL_SMOOTHING},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
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
    memset(o, 0, sizeof *o);
    nb_train_config_default(&o->cfg);
    o->data = "fashion-mnist";
    o->output = "model.safetensors";
    o->norm_mode = NB_NORM_FEATURE;
    o->init_scheme = NB_INIT_KAIMING_UNIFORM;
    o->precision = CLI_FP32;
    o->loss = -1; /* as the model says */
    o->target_norm = NB_NORM_FEATURE;
    double v;
    long long n;
    int lr_given = 0, wd_given = 0, c;
    o->cfg.schedule.gamma = 0.1f;
#define FLOAT_OPT(field)                                                                      \
    do {                                                                                      \
        if (!cli_float("train", options_dashed(options[optind_opt].name), optarg, &v))       \
            return 2;                                                                         \
        field = (float)v;                                                                     \
    } while (0)
    int optind_opt = 0;
    while ((c = getopt_long(argc, argv, ":o:qh", options, &optind_opt)) != -1) {
        switch (c) {
        case O_DATA: o->data = optarg; break;
        case O_VAL: o->val_spec = optarg; break;
        case O_TEST: o->test_spec = optarg; break;
        case O_VAL_SPLIT:
            if (!cli_float("train", "--val-split", optarg, &o->val_split) || o->val_split < 0 || o->val_split >= 1)
                return cli_usage_error("train", "--val-split: expected 0 <= F < 1");
            break;
        case O_NORMALIZE:
            if ((o->norm_mode = parse_choice(optarg, norms, 4)) < 0)
                return cli_usage_error("train", "--normalize: expected none, feature, channel or global");
            break;
        case O_ORDER:
            if ((n = parse_choice(optarg, orders, 3)) < 0)
                return cli_usage_error("train", "--order: expected shuffle, sequential or stratified");
            o->cfg.order = (nb_order)n;
            break;
        case O_NO_SHUFFLE: o->cfg.order = NB_ORDER_SEQUENTIAL; break;
        case O_EPOCHS: if (!cli_int("train", "--epochs", optarg, 0, 1000000, &n)) return 2; o->cfg.epochs = (int)n; break;
        case O_BATCH: if (!cli_int("train", "--batch", optarg, 0, 1 << 24, &n)) return 2; o->cfg.batch = n; break;
        case O_OPTIMIZER:
            if ((n = parse_choice(optarg, optimizers, 3)) < 0)
                return cli_usage_error("train", "--optimizer: expected sgd, adam or adamw");
            o->cfg.optim.kind = (nb_optim_kind)n;
            break;
        case O_LR: FLOAT_OPT(o->cfg.optim.lr); lr_given = 1; break;
        case O_MOMENTUM: FLOAT_OPT(o->cfg.optim.momentum); break;
        case O_NESTEROV: o->cfg.optim.nesterov = 1; break;
        case O_DAMPENING: FLOAT_OPT(o->cfg.optim.dampening); break;
        case O_BETA1: FLOAT_OPT(o->cfg.optim.beta1); break;
        case O_BETA2: FLOAT_OPT(o->cfg.optim.beta2); break;
        case O_ADAM_EPS: FLOAT_OPT(o->cfg.optim.eps); break;
        case O_WD: FLOAT_OPT(o->cfg.optim.weight_decay); wd_given = 1; break;
        case O_L2: FLOAT_OPT(o->cfg.optim.weight_decay); o->cfg.optim.weight_decay *= 2; wd_given = 1; break;
        case O_L1: FLOAT_OPT(o->cfg.optim.l1); break;
        case O_CLIP: FLOAT_OPT(o->cfg.optim.clip_norm); break;
        case O_SCHEDULE:
            if ((n = parse_choice(optarg, schedules, 4)) < 0)
                return cli_usage_error("train", "--schedule: expected constant, step, exp or cosine");
            o->cfg.schedule.kind = (nb_schedule_kind)n;
            break;
        case O_STEP_SIZE: if (!cli_int("train", "--step-size", optarg, 1, 1LL << 40, &n)) return 2; o->cfg.schedule.step_size = n; break;
        case O_GAMMA: FLOAT_OPT(o->cfg.schedule.gamma); break;
        case O_MIN_LR: FLOAT_OPT(o->cfg.schedule.min_lr); break;
        case O_WARMUP: if (!cli_int("train", "--warmup", optarg, 0, 1LL << 40, &n)) return 2; o->cfg.schedule.warmup = n; break;
        case O_INIT_SCHEME:
            if ((o->init_scheme = nb_init_parse(optarg)) < 0)
                return cli_usage_error("train", "--init-scheme: expected torch, kaiming-normal, "
                                       "kaiming-uniform, xavier-normal or xavier-uniform");
            break;
        case O_INIT: o->init_file = optarg; break;
        case 'o': o->output = optarg; break;
        case O_CHECKPOINT: o->checkpoint = optarg; break;
        case O_RESUME: o->resume = 1; break;
        case O_LOG: o->log_path = optarg; break;
        case O_SEED: if (!cli_int("train", "--seed", optarg, 0, 1LL << 62, &n)) return 2; o->cfg.seed = (uint64_t)n; break;
        case O_THREADS: if (!cli_int("train", "--threads", optarg, 0, 1024, &n)) return 2; o->threads = (int)n; break;
        case O_GEMM: o->gemm_name = optarg; break;
        case O_AUGMENT: o->cfg.augment_flip = 1; if (!o->cfg.augment_pad) o->cfg.augment_pad = 2; break;
        case O_AUGMENT_PAD:
            if (!cli_int("train", "--augment-pad", optarg, 0, 1 << 20, &n)) return 2;
            o->cfg.augment_pad = (int)n ? (int)n : -1; /* -1: no crops, set below */
            break;
        case O_JSON: o->json = 1; break;
        case O_PLOT: o->plot = optarg; break;
        case O_PRECISION:
            if ((o->precision = cli_precision_parse(optarg)) < 0)
                return cli_usage_error("train", "--precision: expected fp32, bf16 or bf16-or-fp32");
            break;
        case O_KEEP:
            if ((n = parse_choice(optarg, keeps, 2)) < 0)
                return cli_usage_error("train", "--keep: expected last or best");
            o->cfg.keep = (nb_keep)n;
            break;
        case O_KEEP_METRIC:
            if ((n = parse_choice(optarg, metrics, 2)) < 0)
                return cli_usage_error("train", "--keep-metric: expected loss or accuracy");
            o->cfg.monitor = (nb_monitor)n;
            break;
        case O_EARLY_STOP: if (!cli_int("train", "--early-stop", optarg, 1, 1000000, &n)) return 2; o->cfg.patience = (int)n; break;
        case O_LOSS:
            if (strcmp(optarg, "mse") && strcmp(optarg, "cross-entropy"))
                return cli_usage_error("train", "--loss: expected cross-entropy or mse");
            o->loss = strcmp(optarg, "mse") == 0 ? NB_LOSS_MSE : NB_LOSS_AUTO;
            break;
        case O_LABEL_SMOOTHING: {
            char *end;
            errno = 0;
            v = strtod(optarg, &end);
            /* compared as the float it becomes: 1 - 1e-9 would round to 1 */
            if (errno || end == optarg || *end || !(v >= 0 && (float)v < 1.0f))
                return cli_usage_error("train", "--label-smoothing: expected a number 0 <= F < 1, "
                                       "got '%s'", optarg);
            o->cfg.label_smoothing = (float)v;
            break;
        }
        case O_NORM_TARGETS:
            if (strcmp(optarg, "standard") && strcmp(optarg, "none"))
                return cli_usage_error("train", "--normalize-targets: expected standard or none");
            o->target_norm = strcmp(optarg, "none") ? NB_NORM_FEATURE : NB_NORM_NONE;
            break;
        case 'q': o->quiet = 1; break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("train", "option '%s' requires an argument", argv[optind - 1]);
        default: return cli_usage_error("train", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("train", "expected one MODEL argument (e.g. 784-256-128-10)");
    o->model_arg = argv[optind];
    if (o->cfg.augment_pad && !o->cfg.augment_flip)
        return cli_usage_error("train", "--augment-pad needs --augment");
    if (o->cfg.augment_pad < 0)
        o->cfg.augment_pad = 0;
    if (o->cfg.optim.kind != NB_OPT_SGD && !lr_given)
        o->cfg.optim.lr = 1e-3f;
    if (o->cfg.optim.kind != NB_OPT_SGD)
        o->cfg.optim.momentum = 0; /* SGD's default; Adam's moments are beta1/beta2 */
    if (o->cfg.optim.kind == NB_OPT_ADAMW && !wd_given)
        o->cfg.optim.weight_decay = 1e-2f; /* torch.optim.AdamW's default */
    if ((o->cfg.keep == NB_KEEP_BEST || o->cfg.patience > 0) && !o->val_spec && o->val_split == 0)
        return cli_usage_error("train", "%s needs validation data: add --val-split F or --val SPEC",
                               o->cfg.keep == NB_KEEP_BEST ? "--keep best" : "--early-stop");
    if (o->cfg.schedule.kind == NB_SCHED_STEP && o->cfg.schedule.step_size < 1)
        return cli_usage_error("train", "--schedule step needs --step-size N (steps)");
    if (o->cfg.schedule.kind == NB_SCHED_EXPONENTIAL && o->cfg.schedule.gamma == 0.1f)
        o->cfg.schedule.gamma = 0.9999f; /* per step: a tenth of the rate after ~23k steps */
    if (!o->output[0])
        return cli_usage_error("train", "-o: expected a file name");
    if (o->checkpoint && !o->checkpoint[0])
        return cli_usage_error("train", "--checkpoint: expected a file name, or 'none' for no "
                               "checkpoints");
    if (o->log_path && !o->log_path[0])
        return cli_usage_error("train", "--log: expected a file name");
    if (o->plot && !o->plot[0])
        return cli_usage_error("train", "--plot: expected a file name");
    if (o->checkpoint && strcmp(o->checkpoint, "none") == 0) {
        if (o->resume)
            return cli_usage_error("train", "--resume needs a checkpoint to continue from; "
                                   "--checkpoint none turns them off");
        o->checkpoint = NULL;
    } else if (!o->checkpoint) {
        snprintf(o->checkpoint_default, sizeof o->checkpoint_default, "%s.ckpt", o->output);
        o->checkpoint = o->checkpoint_default;
    }
    if (o->val_spec && o->val_split > 0)
        return cli_usage_error("train", "--val-split and --val both choose the validation set; "
                               "give one of them");
    if (!(o->cfg.optim.lr >= 0) || !isfinite(o->cfg.optim.lr))
        return cli_usage_error("train", "--lr: expected a finite rate >= 0");
    return -1;
}
