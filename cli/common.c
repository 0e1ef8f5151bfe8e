/* Helpers shared by the subcommands: data specs, model arguments, number parsing. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_fail(const char *cmd, const nb_error *err)
{
    fprintf(stderr, "nabla %s: %s\n", cmd, err->msg[0] ? err->msg : nb_status_name(err->code));
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    if (nb_dist_launched() > 1 && nb_dist_launched_rank() > 0)
        return 2; /* under mpirun every rank sees the same options: rank 0 says it once */
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nabla %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'nabla %s --help'.\n", cmd);
    va_end(ap);
    return 2;
}

int cli_int(const char *cmd, const char *opt, const char *text, long long lo, long long hi,
            long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < lo || v > hi) {
        cli_usage_error(cmd, "%s: expected an integer from %lld to %lld, got '%s'", opt, lo, hi,
                        text);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_float(const char *cmd, const char *opt, const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || *end || end == text || v != v) {
        cli_usage_error(cmd, "%s: expected a number, got '%s'", opt, text);
        return 0;
    }
    *out = v;
    return 1;
}

static nb_status fashion(nb_dataset *ds, const char *split, nb_error *err)
{
    char images[512], labels[512];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", FASHION_DIR, split);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", FASHION_DIR, split);
    if (access(images, R_OK) != 0)
        return nb_error_set(err, NB_EIO, "%s: not found; install the data set with "
                            "'apt-get install dataset-fashion-mnist' (or run 'make deps')", images);
    return nb_idx_load(ds, images, labels, err);
}

/* Splits a comma-separated list into *names (one allocation: pointers, then the text). */
static int64_t split_names(const char *text, char ***names)
{
    *names = NULL;
    if (!text)
        return 0;
    int64_t n = 1;
    for (const char *c = text; *c; c++)
        n += *c == ',';
    size_t len = strlen(text) + 1;
    char **out = malloc((size_t)n * sizeof *out + len);
    if (!out)
        return -1;
    char *copy = memcpy((char *)(out + n), text, len);
    for (int64_t i = 0; i < n; i++) {
        out[i] = copy;
        copy += strcspn(copy, ",");
        *copy++ = '\0';
    }
    *names = out;
    return n;
}

/* The CSV's options for model m: regression targets, or labels through m's class names. */
static nb_status load_csv(const char *path, const char *columns, const nb_model *m,
                          nb_dataset *ds, nb_error *err)
{
    nb_csv_options opt = {.targets = columns, .kind = NB_TARGET_CLASSES};
    char **names = NULL;
    if (m && nb_model_targets(m) >= 0)
        opt.kind = NB_TARGET_VALUES;
    else if (m && (opt.class_count = split_names(nb_model_classes_text(m), &names)) < 0)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    opt.class_names = (const char *const *)names;
    nb_status s = nb_csv_load_with(ds, path, &opt, err);
    free(names);
    return s;
}

int cli_data_files(const char *spec, cli_data_source *src)
{
    memset(src, 0, sizeof *src);
    if (strcmp(spec, "fashion-mnist") == 0 || strcmp(spec, "fashion-mnist-test") == 0) {
        const char *split = spec[13] ? "t10k" : "train";
        snprintf(src->path[0], sizeof src->path[0], "%s/%s-images-idx3-ubyte.gz", FASHION_DIR, split);
        snprintf(src->path[1], sizeof src->path[1], "%s/%s-labels-idx1-ubyte.gz", FASHION_DIR, split);
        return 2;
    }
    if (strncmp(spec, "idx:", 4) == 0) {
        snprintf(src->path[0], sizeof src->path[0], "%s", spec + 4);
        char *comma = strchr(src->path[0], ',');
        if (!comma)
            return 1;
        *comma = 0;
        snprintf(src->path[1], sizeof src->path[1], "%s", comma + 1);
        return 2;
    }
    if (strncmp(spec, "csv:", 4) == 0) {
        char *buf = src->path[0];
        snprintf(buf, sizeof src->path[0], "%s", spec + 4);
        /* csv:FILE:COLUMN, unless FILE itself contains the colon */
        char *colon = strrchr(buf, ':');
        if (colon && colon != buf && access(buf, F_OK) != 0) {
            *colon = 0;
            src->column = colon + 1;
        }
        return 1;
    }
    return 0;
}

nb_status cli_load_data(const char *spec, nb_dataset *ds, const char **classes, nb_error *err)
{
    return cli_load_data_for(spec, ds, classes, NULL, err);
}

nb_status cli_load_data_for(const char *spec, nb_dataset *ds, const char **classes,
                            const nb_model *m, nb_error *err)
{
    *classes = NULL;
    if (strcmp(spec, "fashion-mnist") == 0 || strcmp(spec, "fashion-mnist-test") == 0) {
        *classes = FASHION_CLASSES;
        return fashion(ds, spec[13] ? "t10k" : "train", err);
    }
    cli_data_source src;
    cli_data_files(spec, &src);
    if (strncmp(spec, "idx:", 4) == 0)
        return nb_idx_load(ds, src.path[0], src.path[1][0] ? src.path[1] : NULL, err);
    if (strncmp(spec, "csv:", 4) == 0)
        return load_csv(src.path[0], src.column, m, ds, err);
    if (strncmp(spec, "spirals", 7) == 0 && (spec[7] == 0 || spec[7] == ':')) {
        double v[4] = {100, 3, 0.2, 1};
        const char *s = spec + 7;
        for (int i = 0; i < 4 && *s == ':'; i++) {
            char *end;
            v[i] = strtod(s + 1, &end);
            if (end == s + 1)
                return nb_error_set(err, NB_EINVAL, "%s: field %d: expected a number", spec, i + 1);
            s = end;
        }
        if (*s || v[0] < 1 || v[0] > 1e7 || v[1] < 1 || v[1] > 1000 || v[2] < 0 || v[3] < 0)
            return nb_error_set(err, NB_EINVAL, "%s: expected spirals[:N[:K[:NOISE[:SEED]]]] with "
                                "1 ≤ N ≤ 1e7, 1 ≤ K ≤ 1000, NOISE ≥ 0", spec);
        return nb_spirals(ds, (int64_t)v[0], (int)v[1], (float)v[2], (uint64_t)v[3], err);
    }
    return nb_error_set(err, NB_EINVAL, "unknown data set '%s' (fashion-mnist, "
                        "fashion-mnist-test, idx:IMAGES,LABELS, csv:FILE[:COLUMN], spirals[:…])",
                        spec);
}

nb_status cli_check_targets(const char *spec, const nb_dataset *ds, const nb_model *m,
                            nb_error *err)
{
    int regression = nb_model_targets(m) >= 0;
    if (ds->class_names && !nb_model_classes_text(m))
        return nb_error_set(err, NB_EINVAL, "%s: the labels are class names (\"%s\", ...) but "
                            "the model has none: its classes are the indices 0 to %lld", spec,
                            ds->class_names[0], (long long)nb_model_classes(m) - 1);
    if (regression ? ds->targets != NULL : ds->labels != NULL)
        return NB_OK;
    const char *col = regression ? "COLUMN[,COLUMN...]" : "COLUMN";
    const char *what = regression ? "target column(s) (numbers)" : "label column";
    if (strncmp(spec, "csv:", 4) == 0)
        return nb_error_set(err, NB_EINVAL, "%s has no %s: name it as %s:%s, a column name or a "
                            "0-based index", spec, what, spec, col);
    return nb_error_set(err, NB_EINVAL, "%s has no %s; %s", spec, what,
                        regression ? "regression data comes from csv:FILE:COLUMN[,COLUMN...]"
                                   : "give IDX labels as idx:IMAGES,LABELS");
}

int cli_is_model_file(const char *path)
{
    size_t n = strlen(path);
    return (n > 12 && strcmp(path + n - 12, ".safetensors") == 0) ||
           (n > 5 && strcmp(path + n - 5, ".ckpt") == 0);
}

nb_status cli_read_model_text(const char *arg, char **text, nb_error *err)
{
    if (nb_is_shorthand(arg)) {
        *text = strdup(arg);
        return *text ? NB_OK : nb_error_set(err, NB_ENOMEM, "out of memory");
    }
    FILE *f = fopen(arg, "rb");
    if (!f)
        return nb_error_set(err, NB_EIO, "%s: %s (expected a model description file or an MLP "
                            "shorthand such as 784-256-10)", arg, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    nb_status s = buf ? NB_OK : nb_error_set(err, NB_ENOMEM, "out of memory");
    while (!s) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
        if (n + 1 == cap) {
            if (cap >= (1u << 20)) {
                s = nb_error_set(err, NB_EFORMAT, "%s: larger than 1 MB: not a model description", arg);
                break;
            }
            char *b = realloc(buf, cap *= 2);
            if (!b)
                s = nb_error_set(err, NB_ENOMEM, "out of memory");
            else
                buf = b;
        }
    }
    if (!s && ferror(f))
        s = nb_error_set(err, NB_EIO, "%s: read error", arg);
    fclose(f);
    if (!s && memchr(buf, 0, n))
        s = nb_error_set(err, NB_EFORMAT, "%s: contains a NUL byte: not a text description", arg);
    if (s) {
        free(buf);
        return s;
    }
    buf[n] = 0;
    *text = buf;
    return NB_OK;
}

nb_model *cli_open_model(const char *arg, uint64_t seed, nb_gemm *gemm, nb_error *err)
{
    return cli_open_model_loss(arg, -1, seed, gemm, err);
}

nb_model *cli_open_model_loss(const char *arg, int loss, uint64_t seed, nb_gemm *gemm,
                              nb_error *err)
{
    if (cli_is_model_file(arg)) {
        nb_model *m = nb_model_load(arg, seed, gemm, err);
        int regression = m && nb_model_targets(m) >= 0;
        if (m && loss >= 0 && regression != (loss == NB_LOSS_MSE)) {
            nb_error_set(err, NB_EINVAL, "--loss %s: %s is a %s model", loss == NB_LOSS_MSE ?
                         "mse" : "cross-entropy", arg, regression ? "regression" : "classification");
            nb_model_free(m);
            return NULL;
        }
        return m;
    }
    char *text;
    if (cli_read_model_text(arg, &text, err))
        return NULL;
    nb_model *m = nb_model_new_with_loss(text, arg, loss < 0 ? NB_LOSS_AUTO : (nb_loss_kind)loss,
                                         seed, gemm, err);
    free(text);
    return m;
}

/* names[0..n) joined with commas into a new string. */
static char *join_names(char *const *names, int64_t n)
{
    size_t len = 1;
    for (int64_t i = 0; i < n; i++)
        len += strlen(names[i]) + 1;
    char *text = malloc(len), *at = text;
    for (int64_t i = 0; text && i < n; i++)
        at += sprintf(at, "%s%s", i ? "," : "", names[i]);
    return text;
}

nb_status cli_model_take_names(nb_model *m, const nb_dataset *ds, const char *classes,
                               nb_error *err)
{
    char *text = NULL;
    nb_status s = NB_OK;
    if (classes)
        s = nb_model_set_classes(m, classes, err);
    else if (ds->class_names && !(text = join_names(ds->class_names, ds->classes)))
        s = nb_error_set(err, NB_ENOMEM, "out of memory");
    else if (text)
        s = nb_model_set_classes(m, text, err);
    free(text);
    text = NULL;
    if (!s && ds->target_names && nb_model_targets(m) >= 0) {
        if (!(text = join_names(ds->target_names, ds->target_count)))
            s = nb_error_set(err, NB_ENOMEM, "out of memory");
        else
            s = nb_model_set_target_names(m, text, err);
    }
    free(text);
    return s;
}

nb_gemm *cli_gemm(const char *backend, int threads, nb_error *err)
{
    if (!backend)
        backend = getenv("NABLA_GEMM");
    int kind = backend ? nb_gemm_backend_parse(backend) : NB_GEMM_AUTO;
    if (kind < 0) {
        nb_error_set(err, NB_EINVAL, "unknown gemm backend '%s' (auto, onednn, openblas, portable)",
                     backend);
        return NULL;
    }
    return nb_gemm_new((nb_gemm_backend)kind, threads, err);
}

int cli_precision_parse(const char *text)
{
    static const char *const names[] = {[CLI_FP32] = "fp32", [CLI_BF16] = "bf16",
                                        [CLI_BF16_OR_FP32] = "bf16-or-fp32"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

nb_status cli_set_precision(const char *cmd, nb_graph *g, int choice, nb_precision *used,
                            nb_error *err)
{
    nb_precision want = choice == CLI_FP32 ? NB_PRECISION_FP32 : NB_PRECISION_BF16;
    nb_error why = {0};
    nb_status s = nb_graph_set_precision(g, want, &why);
    if (s == NB_ENOTSUP && choice == CLI_BF16_OR_FP32) {
        fprintf(stderr, "nabla %s: %s; running in fp32 (--precision bf16-or-fp32)\n", cmd,
                why.msg);
        s = nb_graph_set_precision(g, NB_PRECISION_FP32, &why);
    } else if (s == NB_ENOTSUP) {
        s = nb_error_set(err, s, "--precision bf16: %s (--precision bf16-or-fp32 falls back to "
                         "fp32)", why.msg);
        return s;
    }
    if (s && err)
        *err = why;
    if (used)
        *used = nb_graph_precision(g);
    /* bf16 covers Linear's products; say so where the model has image modules */
    for (int i = 0; !s && nb_graph_precision(g) == NB_PRECISION_BF16 &&
                    i < nb_graph_node_count(g); i++) {
        nb_op op = nb_node_op(g, i);
        if (op == NB_OP_CONV2D || op == NB_OP_BATCH_NORM || op == NB_OP_MAX_POOL2D ||
            op == NB_OP_AVG_POOL2D) {
            fprintf(stderr, "nabla %s: note: --precision bf16 applies to Linear layers; "
                    "convolution, pooling and batch norm run in fp32\n", cmd);
            break;
        }
    }
    return s;
}

int cli_find_on_path(const char *name, char *found, size_t size)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        char file[4096];
        snprintf(file, sizeof file, "%.*s/%s", (int)(len ? len : 1), len ? path : ".", name);
        if (access(file, X_OK) == 0) {
            if (found && size)
                snprintf(found, size, "%s", file);
            return 1;
        }
        path += len + (colon != NULL);
    }
    return 0;
}
