/* One forward and one backward pass of a described model on data from files, for
 * tests/torch_autograd.py, which runs the same computation through PyTorch's autograd.
 *
 *     tool_autograd [--training] MODEL DATA_DIR OUT_DIR
 *
 * The graph runs in evaluation mode, or with --training in training mode (where a
 * cross-entropy's label smoothing acts; keep Dropout and batch norm out of such models).
 * MODEL is a description file (the text format of src/model/describe.c). DATA_DIR holds raw
 * little-endian arrays, row-major, no header (what numpy's ndarray.tofile writes):
 *
 *     <input>.bin        float32 [N, per-sample dims] for every input node
 *     <labels>.i32       int32 [N] for every labels node
 *     <param>.bin        float32, the parameter's shape ("fc1.weight.bin" is [out, in])
 *     seed.bin           float32, the upstream gradient dC/d(output), output's full shape.
 *                        Optional when the output is a scalar loss: backward then starts
 *                        from 1 (seed NULL).
 *
 * The batch size N is read from the input files' sizes. Every file must have exactly the
 * size its node asks for, and a .bin or .i32 file that names no node is an error (it would
 * otherwise hide a misspelt parameter name). Every input node gets requires_grad.
 *
 * OUT_DIR (created if absent) receives float32 arrays in the same raw format:
 *
 *     output.bin         the output node's value
 *     <param>.grad.bin   dC/d(param) for every parameter
 *     <input>.grad.bin   dC/d(input) for every input node
 *     manifest.txt       one line per array: "<kind> <node> <file> <dim> <dim> …",
 *                        kind ∈ {output, param, input}, dims including the batch
 *
 * Exit status 0 on success, 1 on a bad file or a failing library call (the message names
 * the file or node), 2 on bad usage. */
#include "nabla.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define PATH_CAP 4096
#define MODEL_MAX (1 << 20)

static nb_status join(char *out, const char *dir, const char *name, const char *ext,
                      nb_error *err)
{
    int n = snprintf(out, PATH_CAP, "%s/%s%s", dir, name, ext);
    if (n < 0 || n >= PATH_CAP)
        return nb_error_set(err, NB_EINVAL, "%s/%s%s: path too long", dir, name, ext);
    return NB_OK;
}

/* Size of a regular file in bytes; -1 when it does not exist (other failures are errors). */
static nb_status file_size(const char *path, long long *size, nb_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            *size = -1;
            return NB_OK;
        }
        return nb_error_set(err, NB_EIO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return nb_error_set(err, NB_EIO, "%s: not a regular file", path);
    *size = (long long)st.st_size;
    return NB_OK;
}

/* Reads exactly `bytes` bytes of `path` into dst; the file must be that long. */
static nb_status read_exact(const char *path, void *dst, size_t bytes, const char *what,
                            nb_error *err)
{
    long long size;
    nb_status s = file_size(path, &size, err);
    if (s)
        return s;
    if (size < 0)
        return nb_error_set(err, NB_EIO, "%s: missing (%s)", path, what);
    if ((unsigned long long)size != bytes)
        return nb_error_set(err, NB_EFORMAT, "%s: %lld bytes, expected %zu (%s)", path, size,
                            bytes, what);
    FILE *f = fopen(path, "rb");
    if (!f)
        return nb_error_set(err, NB_EIO, "%s: %s", path, strerror(errno));
    size_t got = fread(dst, 1, bytes, f);
    int bad = ferror(f);
    fclose(f);
    if (got != bytes || bad)
        return nb_error_set(err, NB_EIO, "%s: read %zu of %zu bytes", path, got, bytes);
    return NB_OK;
}

static nb_status write_all(const char *path, const void *src, size_t bytes, nb_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return nb_error_set(err, NB_EIO, "%s: %s", path, strerror(errno));
    size_t put = fwrite(src, 1, bytes, f);
    int bad = ferror(f);
    if (fclose(f) != 0 || put != bytes || bad)
        return nb_error_set(err, NB_EIO, "%s: write failed", path);
    return NB_OK;
}

/* The whole model file as a NUL-terminated string. Caller frees *text. */
static nb_status read_text(const char *path, char **text, nb_error *err)
{
    long long size;
    nb_status s = file_size(path, &size, err);
    if (s)
        return s;
    if (size < 0)
        return nb_error_set(err, NB_EIO, "%s: no such model file", path);
    if (size > MODEL_MAX)
        return nb_error_set(err, NB_EFORMAT, "%s: %lld bytes, larger than a model file can be",
                            path, size);
    char *buf = malloc((size_t)size + 1);
    if (!buf)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    s = read_exact(path, buf, (size_t)size, "model description", err);
    if (s) {
        free(buf);
        return s;
    }
    buf[size] = 0;
    if (strlen(buf) != (size_t)size) {
        free(buf);
        return nb_error_set(err, NB_EFORMAT, "%s: contains a NUL byte; not a text description",
                            path);
    }
    *text = buf;
    return NB_OK;
}

/* Full dims of a node for the prepared batch: [N, per-sample dims] or the unbatched dims. */
static int full_dims(nb_graph *g, int node, int64_t batch, int64_t dims[NB_MAX_DIMS + 1])
{
    int64_t d[NB_MAX_DIMS];
    int nd = nb_node_shape(g, node, d), k = 0;
    if (nb_node_is_batched(g, node))
        dims[k++] = batch;
    for (int i = 0; i < nd; i++)
        dims[k++] = d[i];
    return k;
}

static size_t floats_of(nb_graph *g, int node, int64_t batch)
{
    return (size_t)nb_node_size(g, node) * (size_t)(nb_node_is_batched(g, node) ? batch : 1);
}

/* The batch size implied by the input files: every <input>.bin must hold a whole number of
 * samples, the same number in each, and every <labels>.i32 that many labels. */
static nb_status infer_batch(nb_graph *g, const char *dir, int64_t *batch, nb_error *err)
{
    char path[PATH_CAP], first[PATH_CAP] = "";
    *batch = 0;
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        nb_op op = nb_node_op(g, i);
        if (op != NB_OP_INPUT && op != NB_OP_LABELS)
            continue;
        int64_t per = op == NB_OP_INPUT ? nb_node_size(g, i) * 4 : 4;
        long long size;
        nb_status s = join(path, dir, nb_node_name(g, i), op == NB_OP_INPUT ? ".bin" : ".i32",
                           err);
        if (!s)
            s = file_size(path, &size, err);
        if (s)
            return s;
        if (size < 0)
            return nb_error_set(err, NB_EIO, "%s: missing (%s '%s')", path, nb_op_name(op),
                                nb_node_name(g, i));
        if (size == 0 || size % per)
            return nb_error_set(err, NB_EFORMAT, "%s: %lld bytes is not a positive multiple of "
                                "%lld (one sample of '%s')", path, size, (long long)per,
                                nb_node_name(g, i));
        int64_t n = size / per;
        if (*batch && n != *batch)
            return nb_error_set(err, NB_EFORMAT, "%s holds %lld samples but %s holds %lld",
                                path, (long long)n, first, (long long)*batch);
        if (!*batch) {
            *batch = n;
            memcpy(first, path, sizeof first);
        }
    }
    return NB_OK;
}

/* Rejects a data file that names no node: a misspelt parameter would otherwise be ignored
 * and the graph would run on whatever the library left in that parameter. */
static nb_status check_strays(nb_graph *g, const char *dir, nb_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return nb_error_set(err, NB_EIO, "%s: %s", dir, strerror(errno));
    nb_status s = NB_OK;
    struct dirent *e;
    while (!s && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        int is_bin = len > 4 && strcmp(name + len - 4, ".bin") == 0;
        int is_i32 = len > 4 && strcmp(name + len - 4, ".i32") == 0;
        if ((!is_bin && !is_i32) || strcmp(name, "seed.bin") == 0)
            continue;
        char base[NB_NAME_MAX];
        if (len - 4 >= sizeof base) {
            s = nb_error_set(err, NB_EFORMAT, "%s/%s: no node has so long a name", dir, name);
            break;
        }
        memcpy(base, name, len - 4);
        base[len - 4] = 0;
        int node = nb_graph_find(g, base);
        nb_op op = node >= 0 ? nb_node_op(g, node) : NB_OP_COUNT;
        int ok = is_bin ? (op == NB_OP_INPUT || op == NB_OP_PARAM) : op == NB_OP_LABELS;
        if (!ok)
            s = nb_error_set(err, NB_EFORMAT, "%s/%s: the model has no %s named '%s'", dir, name,
                             is_bin ? "input or parameter" : "labels node", base);
    }
    closedir(d);
    return s;
}

/* Labels of every NLL / cross-entropy must lie in [0, classes): the library would return
 * NaN, and a NaN compared with PyTorch's error is a confusing way to learn of a bad file. */
static nb_status check_labels(nb_graph *g, const char *dir, int64_t batch, nb_error *err)
{
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        nb_op op = nb_node_op(g, i);
        if (op != NB_OP_NLL && op != NB_OP_CROSS_ENTROPY)
            continue;
        int x = nb_node_input(g, i, 0), y = nb_node_input(g, i, 1);
        int64_t dims[NB_MAX_DIMS];
        int64_t classes = dims[nb_node_shape(g, x, dims) - 1];
        const int32_t *lab = nb_labels_data(g, y);
        for (int64_t n = 0; n < batch; n++)
            if (lab[n] < 0 || lab[n] >= classes)
                return nb_error_set(err, NB_EFORMAT, "%s/%s.i32: label %d of sample %lld is "
                                    "outside [0, %lld) ('%s' has %lld classes)", dir,
                                    nb_node_name(g, y), lab[n], (long long)n,
                                    (long long)classes, nb_node_name(g, x), (long long)classes);
    }
    return NB_OK;
}

static nb_status load_data(nb_graph *g, const char *dir, int64_t batch, nb_error *err)
{
    char path[PATH_CAP], what[NB_NAME_MAX + 32];
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        nb_op op = nb_node_op(g, i);
        const char *name = nb_node_name(g, i);
        nb_status s = NB_OK;
        snprintf(what, sizeof what, "%s '%s'", nb_op_name(op), name);
        if (op == NB_OP_INPUT || op == NB_OP_PARAM) {
            s = join(path, dir, name, ".bin", err);
            if (!s)
                s = read_exact(path, nb_value(g, i), floats_of(g, i, batch) * sizeof(float),
                               what, err);
        } else if (op == NB_OP_LABELS) {
            s = join(path, dir, name, ".i32", err);
            if (!s)
                s = read_exact(path, nb_labels_data(g, i), (size_t)batch * sizeof(int32_t),
                               what, err);
        }
        if (s)
            return s;
    }
    return NB_OK;
}

static nb_status write_tensor(FILE *manifest, nb_graph *g, int node, int64_t batch,
                              const char *dir, const char *kind, const char *file,
                              const float *data, nb_error *err)
{
    char path[PATH_CAP];
    int64_t dims[NB_MAX_DIMS + 1];
    int nd = full_dims(g, node, batch, dims);
    nb_status s = join(path, dir, file, "", err);
    if (!s)
        s = write_all(path, data, floats_of(g, node, batch) * sizeof(float), err);
    if (s)
        return s;
    fprintf(manifest, "%s %s %s", kind, nb_node_name(g, node), file);
    for (int k = 0; k < nd; k++)
        fprintf(manifest, " %lld", (long long)dims[k]);
    fputc('\n', manifest);
    return NB_OK;
}

static nb_status write_results(nb_graph *g, int output, int64_t batch, const char *dir,
                               nb_error *err)
{
    char path[PATH_CAP], file[NB_NAME_MAX + 16];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return nb_error_set(err, NB_EIO, "%s: %s", dir, strerror(errno));
    nb_status s = join(path, dir, "manifest", ".txt", err);
    if (s)
        return s;
    FILE *m = fopen(path, "w");
    if (!m)
        return nb_error_set(err, NB_EIO, "%s: %s", path, strerror(errno));
    s = write_tensor(m, g, output, batch, dir, "output", "output.bin", nb_value(g, output), err);
    for (int i = 0; !s && i < nb_graph_node_count(g); i++) {
        nb_op op = nb_node_op(g, i);
        if (op != NB_OP_PARAM && op != NB_OP_INPUT)
            continue;
        snprintf(file, sizeof file, "%s.grad.bin", nb_node_name(g, i));
        s = write_tensor(m, g, i, batch, dir, op == NB_OP_PARAM ? "param" : "input", file,
                         nb_grad(g, i), err);
    }
    int bad = ferror(m);
    if (fclose(m) != 0 || bad)
        s = s ? s : nb_error_set(err, NB_EIO, "%s: write failed", path);
    return s;
}

/* The upstream gradient: seed.bin, or NULL (all ones) for a scalar loss. Caller frees. */
static nb_status load_seed(nb_graph *g, int output, int64_t batch, const char *dir,
                           float **seed, nb_error *err)
{
    char path[PATH_CAP];
    long long size;
    *seed = NULL;
    nb_status s = join(path, dir, "seed", ".bin", err);
    if (!s)
        s = file_size(path, &size, err);
    if (s)
        return s;
    if (size < 0) {
        if (!nb_node_is_batched(g, output) && nb_node_size(g, output) == 1)
            return NB_OK;
        char shape[64];
        return nb_error_set(err, NB_EIO, "%s: missing; the output '%s' is %s, not a scalar "
                            "loss, so it needs an upstream gradient", path,
                            nb_node_name(g, output), nb_node_shape_str(g, output, shape,
                                                                       sizeof shape));
    }
    size_t n = floats_of(g, output, batch);
    float *buf = malloc(n * sizeof *buf);
    if (!buf)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    char what[NB_NAME_MAX + 40];
    snprintf(what, sizeof what, "upstream gradient of '%s'", nb_node_name(g, output));
    s = read_exact(path, buf, n * sizeof *buf, what, err);
    if (s) {
        free(buf);
        return s;
    }
    *seed = buf;
    return NB_OK;
}

static nb_status run(const char *model_path, const char *data_dir, const char *out_dir,
                     int training, nb_error *err)
{
    const union { uint32_t u; unsigned char c[4]; } probe = {.u = 1};
    if (probe.c[0] != 1)
        return nb_error_set(err, NB_ENOTSUP, "the data files are little-endian; this machine "
                            "is not");
    char *text = NULL;
    float *seed = NULL;
    nb_graph *g = NULL;
    int input, output;
    int64_t batch;
    nb_status s = read_text(model_path, &text, err);
    if (s)
        return s;
    g = nb_graph_new(1, NULL);
    if (!g) {
        s = nb_error_set(err, NB_ENOMEM, "out of memory creating the graph");
        goto done;
    }
    if ((s = nb_describe(g, text, model_path, &input, &output, err)))
        goto done;
    for (int i = 0; i < nb_graph_node_count(g); i++)
        if (nb_node_op(g, i) == NB_OP_INPUT)
            nb_node_set_requires_grad(g, i, 1);
    if ((s = check_strays(g, data_dir, err)) || (s = infer_batch(g, data_dir, &batch, err)) ||
        (s = nb_graph_prepare(g, batch, err)) || (s = load_data(g, data_dir, batch, err)) ||
        (s = check_labels(g, data_dir, batch, err)) ||
        (s = load_seed(g, output, batch, data_dir, &seed, err)))
        goto done;
    nb_graph_set_training(g, training);
    nb_graph_zero_grad(g);
    if ((s = nb_graph_forward(g, err)) || (s = nb_graph_backward(g, output, seed, err)))
        goto done;
    s = write_results(g, output, batch, out_dir, err);
done:
    free(seed);
    free(text);
    nb_graph_free(g);
    return s;
}

int main(int argc, char **argv)
{
    int training = argc == 5 && strcmp(argv[1], "--training") == 0;
    if (argc != 4 + training) {
        fprintf(stderr, "usage: %s [--training] MODEL DATA_DIR OUT_DIR\n"
                        "  runs MODEL (a description file) forward and backward on the raw "
                        "float32/int32\n  arrays in DATA_DIR and writes the output and every "
                        "gradient to OUT_DIR\n  (in training mode with --training)\n",
                argc > 0 ? argv[0] : "tool_autograd");
        return 2;
    }
    nb_error err = {0};
    nb_status s = run(argv[1 + training], argv[2 + training], argv[3 + training], training, &err);
    if (s) {
        fprintf(stderr, "tool_autograd: %s: %s\n", nb_status_name(s), err.msg);
        return 1;
    }
    return 0;
}
