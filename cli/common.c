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

nb_status cli_load_data(const char *spec, nb_dataset *ds, const char **classes, nb_error *err)
{
    *classes = NULL;
    if (strcmp(spec, "fashion-mnist") == 0 || strcmp(spec, "fashion-mnist-test") == 0) {
        *classes = FASHION_CLASSES;
        return fashion(ds, spec[13] ? "t10k" : "train", err);
    }
    if (strncmp(spec, "idx:", 4) == 0) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", spec + 4);
        char *comma = strchr(buf, ',');
        if (comma)
            *comma = 0;
        return nb_idx_load(ds, buf, comma ? comma + 1 : NULL, err);
    }
    if (strncmp(spec, "csv:", 4) == 0) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", spec + 4);
        char *colon = strrchr(buf, ':');
        if (colon && colon != buf && access(buf, F_OK) != 0)
            *colon = 0;
        else
            colon = NULL;
        return nb_csv_load(ds, buf, colon ? colon + 1 : NULL, err);
    }
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
    if (cli_is_model_file(arg))
        return nb_model_load(arg, seed, gemm, err);
    char *text;
    if (cli_read_model_text(arg, &text, err))
        return NULL;
    nb_model *m = nb_model_new(text, arg, seed, gemm, err);
    free(text);
    return m;
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
    return s;
}
