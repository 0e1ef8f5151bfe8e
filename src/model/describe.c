/* The text model description: one statement per line,
 *
 *     name = op(arg, arg, key=value)     # comment
 *     output name
 *
 * where each arg is a node defined on an earlier line or a number. Nodes must be defined
 * before use, so the file order is a topological order of the DAG. The ops and their
 * arguments:
 *
 *     input(d1[, d2, d3])     labels()              param(d1[, …])
 *     linear(x, out[, bias=false])                  nearest(x, k)
 *     relu(x)  tanh(x)  sigmoid(x)  softmax(x)  log_softmax(x)  sum(x)  mean(x)  flatten(x)
 *     leaky_relu(x[, slope=0.01])  gelu(x)  layer_norm(x[, eps=1e-5, dims=all of a sample])
 *     add(a, b)  max(a, b)  mul(a, b)  scale(x, factor)  dropout(x, p)  reshape(x, d1[, …])
 *     mse(pred, target[, reduction=sum])  nll(logp, labels)
 *     cross_entropy(logits, labels[, label_smoothing=0])   (smoothing acts in training only)
 *     conv2d(x, out, k[, stride=1, padding=0|same|valid, dilation=1, groups=1, bias=true])
 *     max_pool2d(x, k[, stride=k, padding=0])   avg_pool2d(x, k[, …, count_include_pad=true])
 *     global_avg_pool(x)   batch_norm(x[, momentum=0.1, eps=1e-5])
 * where a window size k (kernel, stride, padding, dilation) is "3" or "3x5" (height x width).
 *
 * Errors carry "source:line:column". The one-line MLP shorthand "784-256-128-10" expands to
 * x = input(784), fc1 = linear(x, 256), relu1 = relu(fc1), …, fc3 = linear(relu2, 10)
 * (shorthand.c). */
#include "model/describe.h"
#include "core/graph.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 8
#define MAX_NODES 16384

typedef struct arg {
    char key[NB_NAME_MAX];   /* empty for positional arguments */
    char text[NB_NAME_MAX];
    int column;
} arg;

typedef struct parser {
    const char *source;
    int line;
    nb_error *err;
    int64_t file_floats; /* what the model file's tensors hold; < 0: no limit */
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static nb_status parse_error(const parser *p, int column, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nb_error_set(p->err, NB_EFORMAT, "%s:%d:%d: %s", p->source, p->line, column, msg);
}

static int is_name_char(int c) { return isalnum(c) || c == '_' || c == '.'; }

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    return s;
}

/* Reads a name or number token into out; returns the position after it or NULL. */
static const char *token(const char *s, char *out, size_t size)
{
    size_t n = 0;
    while (is_name_char((unsigned char)s[n]) || s[n] == '-' || s[n] == '+')
        n++;
    if (n == 0 || n >= size)
        return NULL;
    memcpy(out, s, n);
    out[n] = 0;
    return s + n;
}

static int parse_int(const char *text, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text)
        return 0;
    *out = v;
    return 1;
}

static int parse_float(const char *text, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    /* strtod takes "inf" and "nan", and 1e39 becomes inf as a float */
    if (errno || *end || end == text || !(fabs(v) <= FLT_MAX))
        return 0;
    *out = (float)v;
    return 1;
}

typedef enum argkind { A_NODE, A_INT, A_FLOAT, A_PAIR } argkind;

/* One row per op: its name, and the kinds of its positional arguments. `variadic` ops take
 * 1 to 3 trailing integers (dims). */
typedef struct opspec {
    const char *name;
    nb_op op;
    int n_pos;
    argkind kinds[3];
    int variadic_dims;
} opspec;

static const opspec specs[] = {
    {"input", NB_OP_INPUT, 0, {0}, 1},
    {"labels", NB_OP_LABELS, 0, {0}, 0},
    {"param", NB_OP_PARAM, 0, {0}, 1},
    {"linear", NB_OP_LINEAR, 2, {A_NODE, A_INT}, 0},
    {"nearest", NB_OP_NEAREST, 2, {A_NODE, A_INT}, 0},
    {"relu", NB_OP_RELU, 1, {A_NODE}, 0},
    {"tanh", NB_OP_TANH, 1, {A_NODE}, 0},
    {"sigmoid", NB_OP_SIGMOID, 1, {A_NODE}, 0},
    {"leaky_relu", NB_OP_LEAKY_RELU, 1, {A_NODE}, 0},
    {"gelu", NB_OP_GELU, 1, {A_NODE}, 0},
    {"softmax", NB_OP_SOFTMAX, 1, {A_NODE}, 0},
    {"log_softmax", NB_OP_LOG_SOFTMAX, 1, {A_NODE}, 0},
    {"sum", NB_OP_SUM, 1, {A_NODE}, 0},
    {"mean", NB_OP_MEAN, 1, {A_NODE}, 0},
    {"flatten", NB_OP_RESHAPE, 1, {A_NODE}, 0},
    {"reshape", NB_OP_RESHAPE, 1, {A_NODE}, 1},
    {"add", NB_OP_ADD, 2, {A_NODE, A_NODE}, 0},
    {"max", NB_OP_MAX, 2, {A_NODE, A_NODE}, 0},
    {"mul", NB_OP_MUL, 2, {A_NODE, A_NODE}, 0},
    {"scale", NB_OP_SCALE, 2, {A_NODE, A_FLOAT}, 0},
    {"dropout", NB_OP_DROPOUT, 2, {A_NODE, A_FLOAT}, 0},
    {"mse", NB_OP_MSE, 2, {A_NODE, A_NODE}, 0},
    {"nll", NB_OP_NLL, 2, {A_NODE, A_NODE}, 0},
    {"cross_entropy", NB_OP_CROSS_ENTROPY, 2, {A_NODE, A_NODE}, 0},
    {"conv2d", NB_OP_CONV2D, 3, {A_NODE, A_INT, A_PAIR}, 0},
    {"max_pool2d", NB_OP_MAX_POOL2D, 2, {A_NODE, A_PAIR}, 0},
    {"avg_pool2d", NB_OP_AVG_POOL2D, 2, {A_NODE, A_PAIR}, 0},
    {"global_avg_pool", NB_OP_GLOBAL_AVG_POOL, 1, {A_NODE}, 0},
    {"batch_norm", NB_OP_BATCH_NORM, 1, {A_NODE}, 0},
    {"layer_norm", NB_OP_LAYER_NORM, 1, {A_NODE}, 0},
};

static const opspec *find_spec(const char *name)
{
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}

/* ---- image modules --------------------------------------------------------------------------- */

/* "3" → (3, 3), "3x5" → (3, 5); values within ±2^31 (the shape rules check their ranges). */
static int parse_pair(const char *text, int64_t *a, int64_t *b)
{
    char first[NB_NAME_MAX];
    const char *x = strchr(text, 'x');
    if (!x)
        return parse_int(text, a) && *a >= -((int64_t)1 << 31) && *a <= ((int64_t)1 << 31) &&
               (*b = *a, 1);
    if ((size_t)(x - text) >= sizeof first)
        return 0;
    memcpy(first, text, (size_t)(x - text));
    first[x - text] = 0;
    return parse_pair(first, a, a) && parse_pair(x + 1, b, b) && !strchr(x + 1, 'x');
}

static int is_bool(const char *text) { return !strcmp(text, "true") || !strcmp(text, "false"); }

/* conv2d, max_pool2d, avg_pool2d, global_avg_pool, batch_norm, layer_norm: positional
 * arguments as the spec says, then the options of each. */
static nb_status build_image(parser *p, nb_graph *g, const char *name, const opspec *spec,
                             const arg *args, int n_args, int op_column, int *node)
{
    nb_op op = spec->op;
    int x = -1, n_pos = 0, stride_given = 0;
    int64_t out = 0, kh = 0, kw = 0;
    nb_conv2d_options conv;
    nb_conv2d_options_default(&conv, 1);
    int include_pad = 1;
    float momentum = 0.1f, eps = 1e-5f;
    int64_t norm_dims = 0; /* layer_norm: 0, all of a sample */
    int norm = op == NB_OP_BATCH_NORM || op == NB_OP_LAYER_NORM;
    for (int i = 0; i < n_args; i++) {
        const arg *a = &args[i];
        const char *k = a->key;
        int ok = 1;
        if (!k[0] && n_pos < spec->n_pos) {
            argkind kind = spec->kinds[n_pos++];
            if (kind == A_NODE && (x = nb_graph_find(g, a->text)) < 0)
                return parse_error(p, a->column, "%s: '%s' is not a node defined above",
                                   spec->name, a->text);
            if (kind == A_INT)
                ok = parse_int(a->text, &out) && out >= 1 && out <= (1 << 30);
            if (kind == A_PAIR)
                ok = parse_pair(a->text, &kh, &kw);
            if (!ok)
                return parse_error(p, a->column, "%s: expected %s, found '%s'", spec->name,
                                   kind == A_INT ? "a positive integer"
                                                 : "a size such as 3 or 3x5", a->text);
            continue;
        }
        if (!k[0])
            return parse_error(p, a->column, "%s: too many arguments", spec->name);
        int window = op == NB_OP_CONV2D || op == NB_OP_MAX_POOL2D || op == NB_OP_AVG_POOL2D;
        if (window && !strcmp(k, "stride"))
            ok = parse_pair(a->text, &conv.stride_h, &conv.stride_w), stride_given = 1;
        else if (window && !strcmp(k, "padding") && op == NB_OP_CONV2D && !strcmp(a->text, "same"))
            conv.pad_same = 1;
        else if (window && !strcmp(k, "padding") && op == NB_OP_CONV2D && !strcmp(a->text, "valid"))
            conv.pad_h = conv.pad_w = 0;
        else if (window && !strcmp(k, "padding"))
            ok = parse_pair(a->text, &conv.pad_h, &conv.pad_w);
        else if (op == NB_OP_CONV2D && !strcmp(k, "dilation"))
            ok = parse_pair(a->text, &conv.dilation_h, &conv.dilation_w);
        else if (op == NB_OP_CONV2D && !strcmp(k, "groups"))
            ok = parse_int(a->text, &conv.groups) && conv.groups >= -(1 << 30) &&
                 conv.groups <= (1 << 30);
        else if (op == NB_OP_CONV2D && !strcmp(k, "bias") && is_bool(a->text))
            conv.bias = !strcmp(a->text, "true");
        else if (op == NB_OP_AVG_POOL2D && !strcmp(k, "count_include_pad") && is_bool(a->text))
            include_pad = !strcmp(a->text, "true");
        else if (op == NB_OP_BATCH_NORM && !strcmp(k, "momentum"))
            ok = parse_float(a->text, &momentum);
        else if (norm && !strcmp(k, "eps"))
            ok = parse_float(a->text, &eps);
        else if (op == NB_OP_LAYER_NORM && !strcmp(k, "dims"))
            ok = parse_int(a->text, &norm_dims) && norm_dims >= 1 && norm_dims < NB_MAX_DIMS;
        else
            return parse_error(p, a->column, "%s: unknown option '%s=%s' (options: %s)",
                               spec->name, k, a->text,
                               op == NB_OP_CONV2D ? "stride, padding (a size, same or valid), "
                                                    "dilation, groups, bias=true|false"
                               : op == NB_OP_MAX_POOL2D ? "stride, padding"
                               : op == NB_OP_AVG_POOL2D ? "stride, padding, "
                                                          "count_include_pad=true|false"
                               : op == NB_OP_BATCH_NORM ? "momentum, eps"
                               : op == NB_OP_LAYER_NORM ? "eps, dims" : "none");
        if (!ok)
            return parse_error(p, a->column, "%s: %s: expected %s, found '%s'", spec->name, k,
                               !strcmp(k, "momentum") || !strcmp(k, "eps") ? "a finite number"
                               : !strcmp(k, "groups") ? "an integer"
                               : !strcmp(k, "dims") ? "a count of dimensions (1 to 3)"
                                                    : "a size such as 2 or 2x1",
                               a->text);
    }
    if (n_pos < spec->n_pos)
        return parse_error(p, op_column, "%s: expected %d argument%s, found %d", spec->name,
                           spec->n_pos, spec->n_pos == 1 ? "" : "s", n_pos);
    /* parameters this statement creates, against a model file's budget (saturating) */
    int64_t need = -1, C = 1, D = 1, dims[NB_MAX_DIMS];
    int ndim = nb_node_shape(g, x, dims);
    if (ndim >= 1)
        C = dims[0];
    for (int i = norm_dims ? ndim - (int)norm_dims : 0; i >= 0 && i < ndim; i++)
        D *= dims[i]; /* layer_norm's row: ≤ 2^32 per sample */
    if (op == NB_OP_CONV2D && conv.groups >= 1 && kh >= 1 && kw >= 1) {
        double n = (double)out * (double)(C / conv.groups) * (double)kh * (double)kw + (double)out;
        need = n > 9e18 ? INT64_MAX : (int64_t)n;
    } else if (op == NB_OP_BATCH_NORM) {
        need = 4 * C + 1;
    } else if (op == NB_OP_LAYER_NORM) {
        need = 2 * D;
    }
    int64_t have = (int64_t)(nb_graph_param_floats(g) + nb_graph_buffer_floats(g));
    if (need > 0 && p->file_floats >= 0 && need > p->file_floats + NB_DESCRIBE_SLACK - have)
        return parse_error(p, op_column, "%s '%s' needs %lld parameter floats, far more than "
                           "the %lld that the file's tensors hold", spec->name, name,
                           (long long)need, (long long)p->file_floats);
    nb_pool2d_options pool;
    nb_pool2d_options_default(&pool, 1);
    pool.kernel_h = kh;
    pool.kernel_w = kw;
    pool.stride_h = stride_given ? conv.stride_h : kh;
    pool.stride_w = stride_given ? conv.stride_w : kw;
    pool.pad_h = conv.pad_h;
    pool.pad_w = conv.pad_w;
    pool.count_include_pad = include_pad;
    conv.kernel_h = kh;
    conv.kernel_w = kw;
    int id = op == NB_OP_CONV2D       ? nb_conv2d(g, name, x, out, &conv)
           : op == NB_OP_MAX_POOL2D   ? nb_max_pool2d(g, name, x, &pool)
           : op == NB_OP_AVG_POOL2D   ? nb_avg_pool2d(g, name, x, &pool)
           : op == NB_OP_BATCH_NORM   ? nb_batch_norm(g, name, x, momentum, eps)
           : op == NB_OP_LAYER_NORM   ? nb_layer_norm(g, name, x, (int)norm_dims, eps)
                                      : nb_global_avg_pool(g, name, x);
    if (id < 0) {
        nb_error gerr;
        nb_graph_error(g, &gerr);
        return parse_error(p, op_column, "%s", gerr.msg);
    }
    *node = id;
    return NB_OK;
}

/* Builds one statement's node. */
static nb_status build(parser *p, nb_graph *g, const char *name, const opspec *spec,
                       const arg *args, int n_args, int op_column, int *node)
{
    int nodes[3] = {-1, -1, -1};
    int64_t ints[3] = {0};
    float floats[3] = {0};
    int64_t dims[NB_MAX_DIMS];
    int ndim = 0, bias = 1, slope_given = 0;
    float slope = 0.01f; /* leaky_relu: PyTorch's negative_slope */
    float smoothing = 0.0f; /* cross_entropy: PyTorch's label_smoothing */
    nb_reduction reduction = NB_REDUCE_MEAN;
    int n_pos = 0;
    if ((spec->op >= NB_OP_CONV2D && spec->op <= NB_OP_BATCH_NORM) ||
        spec->op == NB_OP_LAYER_NORM)
        return build_image(p, g, name, spec, args, n_args, op_column, node);
    for (int i = 0; i < n_args; i++) {
        const arg *a = &args[i];
        if (a->key[0]) {
            if (spec->op == NB_OP_LINEAR && strcmp(a->key, "bias") == 0 &&
                (strcmp(a->text, "true") == 0 || strcmp(a->text, "false") == 0)) {
                bias = strcmp(a->text, "true") == 0;
            } else if (spec->op == NB_OP_MSE && strcmp(a->key, "reduction") == 0 &&
                       (strcmp(a->text, "mean") == 0 || strcmp(a->text, "sum") == 0)) {
                reduction = strcmp(a->text, "sum") == 0 ? NB_REDUCE_SUM : NB_REDUCE_MEAN;
            } else if (spec->op == NB_OP_DROPOUT && strcmp(a->key, "p") == 0 && n_pos == 1 &&
                       parse_float(a->text, &floats[1])) {
                n_pos = 2;
            } else if (spec->op == NB_OP_LEAKY_RELU && strcmp(a->key, "slope") == 0 &&
                       !slope_given) {
                if (!parse_float(a->text, &slope))
                    return parse_error(p, a->column, "%s: slope: expected a finite number, "
                                       "found '%s'", spec->name, a->text);
                slope_given = 1;
            } else if (spec->op == NB_OP_CROSS_ENTROPY && strcmp(a->key, "label_smoothing") == 0) {
                if (!parse_float(a->text, &smoothing) || !(smoothing >= 0.0f && smoothing < 1.0f))
                    return parse_error(p, a->column, "%s: label_smoothing: expected a number "
                                       "0 <= F < 1, found '%s'", spec->name, a->text);
            } else {
                return parse_error(p, a->column, "%s: unknown option '%s=%s' (options: %s)",
                                   spec->name, a->key, a->text,
                                   spec->op == NB_OP_LINEAR ? "bias=true|false"
                                   : spec->op == NB_OP_MSE  ? "reduction=mean|sum"
                                   : spec->op == NB_OP_DROPOUT ? "p=probability"
                                   : spec->op == NB_OP_LEAKY_RELU ? "slope=number"
                                   : spec->op == NB_OP_CROSS_ENTROPY ? "label_smoothing=number"
                                                                     : "none");
            }
            continue;
        }
        if (n_pos < spec->n_pos) {
            argkind kind = spec->kinds[n_pos];
            if (kind == A_NODE) {
                nodes[n_pos] = nb_graph_find(g, a->text);
                if (nodes[n_pos] < 0)
                    return parse_error(p, a->column, "%s: '%s' is not a node defined above",
                                       spec->name, a->text);
            } else if (kind == A_INT) {
                if (!parse_int(a->text, &ints[n_pos]) || ints[n_pos] < 1 || ints[n_pos] > (1 << 30))
                    return parse_error(p, a->column, "%s: expected a positive integer, found '%s'",
                                       spec->name, a->text);
            } else if (!parse_float(a->text, &floats[n_pos])) {
                return parse_error(p, a->column, "%s: expected a finite number, found '%s'", spec->name,
                                   a->text);
            }
            n_pos++;
        } else if (spec->variadic_dims && ndim < NB_MAX_DIMS - 1) {
            if (!parse_int(a->text, &dims[ndim]) || dims[ndim] < 1 || dims[ndim] > (1 << 30))
                return parse_error(p, a->column, "%s: expected a positive dimension, found '%s'",
                                   spec->name, a->text);
            ndim++;
        } else if (spec->op == NB_OP_LEAKY_RELU && !slope_given) {
            if (!parse_float(a->text, &slope))
                return parse_error(p, a->column, "%s: expected a finite number (the slope), "
                                   "found '%s'", spec->name, a->text);
            slope_given = 1;
        } else {
            return parse_error(p, a->column, "%s: too many arguments", spec->name);
        }
    }
    if (n_pos < spec->n_pos || (spec->variadic_dims && ndim == 0))
        return parse_error(p, op_column, "%s: expected %d argument%s%s, found %d", spec->name,
                           spec->n_pos, spec->n_pos == 1 ? "" : "s",
                           spec->variadic_dims ? " and 1 to 3 dimensions" : "", n_args);
    /* Sizes are checked before the graph allocates: a per-sample input past 2^32 elements
     * would overflow the graph's size arithmetic (each dim alone may be 2^30), and the
     * parameters must stay within the budget. */
    int64_t need = -1; /* parameter floats this statement creates */
    if (spec->op == NB_OP_INPUT) {
        int64_t size = 1;
        for (int i = 0; i < ndim; i++)
            size = size > ((int64_t)1 << 32) / dims[i] ? ((int64_t)1 << 32) + 1 : size * dims[i];
        if (size > ((int64_t)1 << 32))
            return parse_error(p, op_column, "input: more than 2^32 elements per sample");
    } else if (spec->op == NB_OP_LINEAR || spec->op == NB_OP_NEAREST) {
        int64_t in = nb_node_size(g, nodes[0]); /* ≤ 2^32, out ≤ 2^30: no overflow */
        need = ints[1] * in + (spec->op == NB_OP_LINEAR && bias ? ints[1] : 0);
    } else if (spec->op == NB_OP_PARAM) {
        need = 1;
        for (int i = 0; i < ndim; i++)
            need = need > INT64_MAX / dims[i] ? INT64_MAX : need * dims[i];
    }
    int64_t have = (int64_t)(nb_graph_param_floats(g) + nb_graph_buffer_floats(g));
    if (need > 0 && p->file_floats >= 0 &&
        need > p->file_floats + NB_DESCRIBE_SLACK - have)
        return parse_error(p, op_column, "%s '%s' needs %lld parameter floats, far more than "
                           "the %lld that the file's tensors hold", spec->name, name,
                           (long long)need, (long long)p->file_floats);
    int id = -1;
    switch (spec->op) {
    case NB_OP_INPUT: id = nb_input(g, name, ndim, dims); break;
    case NB_OP_LABELS: id = nb_labels(g, name); break;
    case NB_OP_PARAM: id = nb_param(g, name, ndim, dims); break;
    case NB_OP_LINEAR: id = nb_linear(g, name, nodes[0], ints[1], bias); break;
    case NB_OP_NEAREST: id = nb_nearest(g, name, nodes[0], ints[1]); break;
    case NB_OP_RELU: id = nb_relu(g, name, nodes[0]); break;
    case NB_OP_TANH: id = nb_tanh(g, name, nodes[0]); break;
    case NB_OP_SIGMOID: id = nb_sigmoid(g, name, nodes[0]); break;
    case NB_OP_LEAKY_RELU: id = nb_leaky_relu(g, name, nodes[0], slope); break;
    case NB_OP_GELU: id = nb_gelu(g, name, nodes[0]); break;
    case NB_OP_SOFTMAX: id = nb_softmax(g, name, nodes[0]); break;
    case NB_OP_LOG_SOFTMAX: id = nb_log_softmax(g, name, nodes[0]); break;
    case NB_OP_SUM: id = nb_sum(g, name, nodes[0]); break;
    case NB_OP_MEAN: id = nb_mean(g, name, nodes[0]); break;
    case NB_OP_RESHAPE:
        id = spec->variadic_dims ? nb_reshape(g, name, nodes[0], ndim, dims)
                                 : nb_flatten(g, name, nodes[0]);
        break;
    case NB_OP_ADD: id = nb_add(g, name, nodes[0], nodes[1]); break;
    case NB_OP_MAX: id = nb_max(g, name, nodes[0], nodes[1]); break;
    case NB_OP_MUL: id = nb_mul(g, name, nodes[0], nodes[1]); break;
    case NB_OP_SCALE: id = nb_scale(g, name, nodes[0], floats[1]); break;
    case NB_OP_DROPOUT: id = nb_dropout(g, name, nodes[0], floats[1]); break;
    case NB_OP_MSE: id = nb_mse(g, name, nodes[0], nodes[1], reduction); break;
    case NB_OP_NLL: id = nb_nll(g, name, nodes[0], nodes[1]); break;
    case NB_OP_CROSS_ENTROPY:
        id = nb_cross_entropy_smoothed(g, name, nodes[0], nodes[1], smoothing);
        break;
    default: break;
    }
    if (id < 0) {
        nb_error gerr;
        nb_graph_error(g, &gerr);
        return parse_error(p, op_column, "%s", gerr.msg);
    }
    *node = id;
    return NB_OK;
}

/* Parses one line (without its newline). */
static nb_status parse_line(parser *p, nb_graph *g, const char *line, int *input, int *output,
                            int *explicit_output)
{
    const char *s = skip_space(line);
    if (*s == '#' || *s == '\n' || *s == 0)
        return NB_OK;
    char name[NB_NAME_MAX], opname[NB_NAME_MAX];
    int name_col = (int)(s - line) + 1;
    const char *t = token(s, name, sizeof name);
    if (!t || !isalpha((unsigned char)name[0]))
        return parse_error(p, name_col, "expected a node name (letters, digits, '_' or '.')");
    for (const char *c = name; *c; c++)
        if (!is_name_char((unsigned char)*c))
            return parse_error(p, name_col, "'%s' is not a valid node name", name);
    s = skip_space(t);
    if (strcmp(name, "output") == 0 && *s != '=') {
        int col = (int)(s - line) + 1;
        t = token(s, name, sizeof name);
        if (!t)
            return parse_error(p, col, "output: expected a node name");
        if ((*output = nb_graph_find(g, name)) < 0)
            return parse_error(p, col, "output: '%s' is not a node defined above", name);
        *explicit_output = 1;
        s = skip_space(t);
        if (*s && *s != '#')
            return parse_error(p, (int)(s - line) + 1, "unexpected text after the output name");
        return NB_OK;
    }
    if (*s != '=')
        return parse_error(p, (int)(s - line) + 1, "expected '=' after '%s'", name);
    s = skip_space(s + 1);
    int op_col = (int)(s - line) + 1;
    t = token(s, opname, sizeof opname);
    const opspec *spec = t ? find_spec(opname) : NULL;
    if (!spec)
        return parse_error(p, op_col, "unknown module '%s' (known: input, labels, param, linear, "
                           "relu, tanh, sigmoid, leaky_relu, gelu, add, max, mul, scale, sum, "
                           "mean, softmax, log_softmax, dropout, flatten, reshape, nearest, "
                           "conv2d, max_pool2d, avg_pool2d, global_avg_pool, batch_norm, "
                           "layer_norm, mse, nll, cross_entropy)", t ? opname : s);
    s = skip_space(t);
    if (*s != '(')
        return parse_error(p, (int)(s - line) + 1, "expected '(' after '%s'", opname);
    s = skip_space(s + 1);
    arg args[MAX_ARGS];
    int n_args = 0;
    while (*s != ')') {
        if (n_args == MAX_ARGS)
            return parse_error(p, (int)(s - line) + 1, "too many arguments");
        arg *a = &args[n_args];
        a->key[0] = 0;
        a->column = (int)(s - line) + 1;
        t = token(s, a->text, sizeof a->text);
        if (!t)
            return parse_error(p, a->column, "expected an argument or ')'");
        s = skip_space(t);
        if (*s == '=') {
            strcpy(a->key, a->text);
            s = skip_space(s + 1);
            t = token(s, a->text, sizeof a->text);
            if (!t)
                return parse_error(p, (int)(s - line) + 1, "expected a value after '%s='", a->key);
            s = skip_space(t);
        }
        n_args++;
        if (*s == ',')
            s = skip_space(s + 1);
        else if (*s != ')')
            return parse_error(p, (int)(s - line) + 1, "expected ',' or ')'");
    }
    s = skip_space(s + 1);
    if (*s && *s != '#')
        return parse_error(p, (int)(s - line) + 1, "unexpected text after ')'");
    if (nb_graph_find(g, name) >= 0)
        return parse_error(p, name_col, "'%s' is already defined", name);
    /* Names are looked up by a linear search (nb_graph_find), so parsing costs the square of
     * the node count: 60,000 statements in a 1 MB model file took 15 s. Hand-written models
     * stay far below this. */
    if (nb_graph_node_count(g) >= MAX_NODES)
        return parse_error(p, name_col, "more than %d nodes; descriptions are for hand-written "
                           "models", MAX_NODES);
    int node = -1;
    nb_status st = build(p, g, name, spec, args, n_args, op_col, &node);
    if (st)
        return st;
    if (spec->op == NB_OP_INPUT && *input < 0)
        *input = node;
    if (!*explicit_output)
        *output = node;
    return NB_OK;
}

nb_status nb_describe(nb_graph *g, const char *text, const char *source, int *input,
                      int *output, nb_error *err)
{
    return nb_describe_budget(g, text, source, -1, input, output, err);
}

nb_status nb_describe_budget(nb_graph *g, const char *text, const char *source,
                             int64_t file_floats, int *input, int *output, nb_error *err)
{
    char expanded[8192];
    if (!source)
        source = "<model>";
    if (nb_is_shorthand(text)) {
        nb_status s = nb_shorthand_expand(text, source, expanded, sizeof expanded, err);
        if (s)
            return s;
        text = expanded;
    }
    parser p = {.source = source, .line = 0, .err = err, .file_floats = file_floats};
    *input = -1;
    *output = -1;
    int explicit_output = 0;
    char line[1024];
    for (const char *s = text; *s;) {
        const char *eol = strchr(s, '\n');
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        p.line++;
        if (len >= sizeof line)
            return parse_error(&p, 1, "line longer than %zu characters", sizeof line - 1);
        memcpy(line, s, len);
        line[len] = 0;
        nb_status st = parse_line(&p, g, line, input, output, &explicit_output);
        if (st)
            return st;
        s = eol ? eol + 1 : s + len;
    }
    if (*input < 0)
        return nb_error_set(err, NB_EFORMAT, "%s: the model has no input (add 'x = input(...)')",
                            p.source);
    /* Labels have no values or gradient to run from; they can only feed a loss. */
    if (nb_node_op(g, *output) == NB_OP_LABELS)
        return nb_error_set(err, NB_EFORMAT, "%s: the output '%s' is a labels node, which can "
                            "only feed a classification loss (add 'output NAME')", p.source,
                            nb_node_name(g, *output));
    return NB_OK;
}
