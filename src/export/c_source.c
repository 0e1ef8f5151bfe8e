/* A trained model as one dependency-free C99 file and its header (nb_export_c).
 *
 * The generated file holds the weights as static const arrays, the input normalisation, one
 * static function per module family (c_kernels.c) and a forward function that calls them in
 * the graph's topological order on slices of one scratch buffer. Its sizes are planned here,
 * once: each node's values live from its definition to its last reader, Reshape, Flatten and
 * Dropout (identity at inference) share their input's storage, and a point-wise module whose
 * input dies with it writes in place; live ranges that do not overlap share memory
 * (first fit). No allocation, no global mutable state, nothing beyond <math.h> — and not even
 * that when the user supplies the few math functions by macro (freestanding targets).
 *
 * --quantize int8: each Linear weight row as int8 with one float scale (symmetric, per output
 * channel); weight-only with float activations, or, given calibration data, int8 inputs and
 * int32 sums (c_source_int8.c). The public functions are written by c_api.c. */
#include "export/c_file.h"
#include "export/c_kernels.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int is_in_place(nb_op op)
{
    return op == NB_OP_RELU || op == NB_OP_TANH || op == NB_OP_SIGMOID || op == NB_OP_SCALE ||
           op == NB_OP_SOFTMAX || op == NB_OP_LOG_SOFTMAX || op == NB_OP_ADD ||
           op == NB_OP_MAX || op == NB_OP_MUL || op == NB_OP_LEAKY_RELU || op == NB_OP_GELU;
}

/* Storage: roots, their live ranges [root, end] and first-fit offsets. */
static nb_status plan_storage(c_file *c, nb_error *err)
{
    const nb_export_plan *p = c->plan;
    int n = p->count;
    int *end = malloc((size_t)n * sizeof *end);
    c->root = malloc((size_t)n * sizeof *c->root);
    c->offset = malloc((size_t)n * sizeof *c->offset);
    if (!end || !c->root || !c->offset) {
        free(end);
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const nb_export_node *e = &p->nodes[i];
        int last = i == p->output ? INT_MAX : e->last_use, r = i;
        if (e->op == NB_OP_RESHAPE || e->op == NB_OP_DROPOUT)
            r = c->root[e->inputs[0]];
        else if (is_in_place(e->op))
            /* the input's storage is read last here: write over it */
            for (int k = 0; k < e->n_inputs && r == i; k++)
                if (end[c->root[e->inputs[k]]] == i)
                    r = c->root[e->inputs[k]];
        c->root[i] = r;
        end[r] = r == i ? last : (last > end[r] ? last : end[r]);
    }
    c->scratch = 0;
    for (int i = 0; i < n; i++) {
        if (c->root[i] != i)
            continue;
        long at = 0, size = (long)p->nodes[i].size;
        for (int moved = 1; moved;) { /* lowest offset clear of every overlapping range */
            moved = 0;
            for (int j = 0; j < i; j++)
                if (c->root[j] == j && end[j] >= i && c->offset[j] < at + size &&
                    at < c->offset[j] + (long)p->nodes[j].size) {
                    at = c->offset[j] + (long)p->nodes[j].size;
                    moved = 1;
                }
        }
        c->offset[i] = at;
        c->scratch = at + size > c->scratch ? at + size : c->scratch;
    }
    free(end);
    if (c->scratch > INT_MAX / 4)
        return nb_error_set(err, NB_ENOTSUP, "C export: the model needs %ld floats of scratch "
                            "per sample, more than a generated file supports", c->scratch);
    return NB_OK;
}

/* A C identifier for each node's arrays: its name with other characters as '_', made unique. */
static nb_status plan_identifiers(c_file *c, nb_error *err)
{
    const nb_export_plan *p = c->plan;
    c->ident = calloc((size_t)p->count, sizeof *c->ident);
    if (!c->ident)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    for (int i = 0; i < p->count; i++) {
        char *id = c->ident[i];
        snprintf(id, sizeof c->ident[i], "%s%s", isdigit((unsigned char)p->nodes[i].name[0]) ?
                 "n" : "", p->nodes[i].name);
        for (char *s = id; *s; s++)
            *s = isalnum((unsigned char)*s) ? *s : '_';
        for (int j = 0; j < i; j++)
            if (strcmp(c->ident[j], id) == 0) {
                size_t len = strlen(id);
                snprintf(id + len, sizeof c->ident[i] - len, "_%d", i);
                break;
            }
    }
    return NB_OK;
}

void nb_c_put_float(FILE *f, float v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", (double)v);
    for (int digits = 6; digits < 9; digits++) {
        char shorter[32];
        snprintf(shorter, sizeof shorter, "%.*g", digits, (double)v);
        if (strtof(shorter, NULL) == v) {
            memcpy(buf, shorter, sizeof buf);
            break;
        }
    }
    fputs(buf, f);
    fputs(strpbrk(buf, ".en") ? "f" : ".0f", f);
}

void nb_c_put_floats(FILE *f, const char *type_name, const char *ident, const char *suffix,
                     const float *v, int64_t n)
{
    fprintf(f, "static const %s %s_%s[%lld] = {", type_name, ident, suffix, (long long)n);
    for (int64_t i = 0; i < n; i++) {
        fputs(i % 8 ? ", " : i ? ",\n    " : "\n    ", f);
        nb_c_put_float(f, v[i]);
    }
    fputs("\n};\n", f);
}

/* Prints a call of the forward function: fmt's %B is a node index whose buffer ("scratch +
 * 1234") is printed, %F a float printed as a literal, %s a string, %L a long long. */
static void put_fmt(FILE *f, const c_file *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            fputc(*p, f);
            continue;
        }
        switch (*++p) {
        case 'B': fprintf(f, "scratch + %ld", c->offset[c->root[va_arg(ap, int)]]); break;
        case 'F': nb_c_put_float(f, (float)va_arg(ap, double)); break;
        case 's': fputs(va_arg(ap, const char *), f); break;
        case 'L': fprintf(f, "%lld", va_arg(ap, long long)); break;
        default: fputc(*p, f); break;
        }
    }
    va_end(ap);
}

static void put_call(FILE *f, const c_file *c, int i)
{
    const nb_export_node *e = &c->plan->nodes[i];
    const nb_export_node *a = e->n_inputs > 0 ? &c->plan->nodes[e->inputs[0]] : NULL;
    const char *id = c->ident[i];
    int x = e->n_inputs > 0 ? e->inputs[0] : 0, x2 = e->n_inputs > 1 ? e->inputs[1] : 0;
    long long n = e->size, C = e->dims[0], last = e->dims[e->ndim - 1];
    const nb_norm *norm = c->plan->norm;
    fprintf(f, "    /* %s: %s%s */\n    ", e->name, nb_op_name(e->op),
            e->op == NB_OP_INPUT ? " (the raw input, normalised)" : "");
    switch (e->op) {
    case NB_OP_INPUT:
        if (norm->mode != NB_NORM_NONE && norm->size > 0)
            put_fmt(f, c, "normalize(input, %B, input_mean, input_inv, %L, %L);\n", i,
                    (long long)norm->size, (long long)(c->plan->features / norm->size));
        else
            put_fmt(f, c, "copy(input, %B, %L);\n", i, n);
        return;
    case NB_OP_LINEAR:
        if (c->q8_clip)
            put_fmt(f, c, "linear_i8(%B, %s_inv_in, %F, %F, %s_q, %s_rescale, ", x, id,
                    c->q8_unsigned[i] ? 0.0 : -127.0, c->q8_unsigned[i] ? 255.0 : 127.0, id, id);
        else if (c->opt->quantize == NB_QUANT_INT8)
            put_fmt(f, c, "linear_q8(%B, %s_q, %s_scale, ", x, id, id);
        else
            put_fmt(f, c, "linear(%B, %s_weight, ", x, id);
        put_fmt(f, c, "%s%s, %B, %L, %L);\n", e->bias ? id : "0", e->bias ? "_bias" : "", i,
                (long long)e->cols, (long long)e->rows);
        return;
    case NB_OP_NEAREST:
        put_fmt(f, c, "nearest(%B, %s_weight, %B, %L, %L);\n", x, id, i, (long long)e->rows,
                (long long)e->cols);
        return;
    case NB_OP_RESHAPE:
    case NB_OP_DROPOUT:
        fprintf(f, "/* the same values as '%s' */\n", a->name);
        return;
    case NB_OP_CONV2D:
        put_fmt(f, c, "conv2d(%B, %s_weight, %s%s, %B, &%s_window);\n", x, id,
                e->bias ? id : "0", e->bias ? "_bias" : "", i, id);
        return;
    case NB_OP_MAX_POOL2D:
    case NB_OP_AVG_POOL2D:
        put_fmt(f, c, "%s(%B, %B, &%s_window);\n",
                e->op == NB_OP_MAX_POOL2D ? "max_pool" : "avg_pool", x, i, id);
        return;
    case NB_OP_GLOBAL_AVG_POOL:
        put_fmt(f, c, "global_avg(%B, %B, %L, %L);\n", x, i, (long long)a->dims[0],
                (long long)(a->size / a->dims[0]));
        return;
    case NB_OP_BATCH_NORM:
        put_fmt(f, c, "channel_affine(%B, %B, %s_a, %s_b, %L, %L);\n", x, i, id, id, C, n / C);
        return;
    case NB_OP_ADD:
    case NB_OP_MAX:
    case NB_OP_MUL:
        put_fmt(f, c, "%s(%B, %B, %B, %L);\n",
                e->op == NB_OP_ADD ? "add" : e->op == NB_OP_MAX ? "max2" : "mul", x, x2, i, n);
        return;
    case NB_OP_SCALE:
        put_fmt(f, c, "scale(%B, %F, %B, %L);\n", x, (double)e->factor, i, n);
        return;
    case NB_OP_SUM:
    case NB_OP_MEAN:
        put_fmt(f, c, "reduce(%B, %F, %B, %L);\n", x,
                (double)(e->op == NB_OP_SUM ? 1.0f : 1.0f / (float)a->size), i,
                (long long)a->size);
        return;
    case NB_OP_LEAKY_RELU:
        put_fmt(f, c, "leaky_relu(%B, %B, %L, %F);\n", x, i, n, (double)e->factor);
        return;
    case NB_OP_GELU:
        put_fmt(f, c, "gelu(%B, %B, %L);\n", x, i, n);
        return;
    case NB_OP_LAYER_NORM:
        put_fmt(f, c, "layer_norm(%B, %B, %s_weight, %s_bias, %L, %L, %F);\n", x, i, id, id,
                n / (e->rows * e->cols), (long long)(e->rows * e->cols), (double)e->eps);
        return;
    case NB_OP_SOFTMAX:
    case NB_OP_LOG_SOFTMAX:
        put_fmt(f, c, "softmax_rows(%B, %B, %L, %L, %L);\n", x, i, n / last, last,
                (long long)(e->op == NB_OP_LOG_SOFTMAX));
        return;
    default: /* relu, tanh, sigmoid */
        put_fmt(f, c, "%s(%B, %B, %L);\n",
                e->op == NB_OP_RELU ? "relu" : e->op == NB_OP_TANH ? "tanh_" : "sigmoid", x, i, n);
        return;
    }
}

/* One comment line naming what was exported; the model's own text never ends it early. */
static void put_origin(FILE *f, const c_file *c)
{
    fprintf(f, " * Generated by nabla %s", NB_VERSION);
    if (c->opt->source) {
        fputs(" from ", f);
        for (const char *s = c->opt->source; *s; s++)
            fputc(*s == '*' && s[1] == '/' ? '+' : (unsigned char)*s < 32 ? '?' : *s, f);
    }
    fprintf(f, "%s; do not edit.\n", c->q8_clip ? " (int8 weights and Linear inputs, int sums)" :
            c->opt->quantize == NB_QUANT_INT8 ? " (int8 weights, float activations)" : "");
}

static int write_header(FILE *f, void *ctx)
{
    const c_file *c = ctx;
    const char *P = c->upper;
    fprintf(f, "/* %s: a neural network compiled to C.\n", c->header);
    put_origin(f, c);
    fprintf(f, " *\n"
            " * Self-contained C99: no allocation, no global mutable state (every function is\n"
            " * reentrant), nothing beyond <math.h>. On a freestanding target, define each math\n"
            " * function the model uses as a macro naming your own float f(float): here %s_EXPF",
            P);
    if (c->uses_log)
        fprintf(f, ", %s_LOGF", P);
    if (c->uses_tanh)
        fprintf(f, ", %s_TANHF", P);
    if (c->uses_erf)
        fprintf(f, ", %s_ERFF", P);
    if (c->uses_sqrt)
        fprintf(f, ", %s_SQRTF", P);
    fprintf(f, "\n * (e.g. -D%s_EXPF=my_expf), and <math.h> is not included.", P);
    if (c->q8_clip)
        fprintf(f, " Besides its scratch, a forward\n * pass keeps %ld bytes of int8 inputs "
                "(as short) on the stack.", 2 * c->q8_max_in);
    fputs(" */\n", f);
    fprintf(f, "#ifndef %s_H\n#define %s_H\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", P,
            P);
    fprintf(f, "#define %s_INPUT_FEATURES %lld  /* floats per input sample, raw (not normalised) */\n"
            "#define %s_OUTPUTS %lld         /* values per output sample */\n"
            "#define %s_SCRATCH_FLOATS %ld  /* working memory of one forward pass */\n\n",
            P, (long long)c->plan->features, P, (long long)c->plan->outputs, P, c->scratch);
    nb_c_api_declare(f, c);
    fprintf(f, "#ifdef __cplusplus\n}\n#endif\n#endif\n");
    return 0;
}

/* What conv2d, pooling and batch norm need besides weights: the window, and batch norm's
 * per-channel y = a·x + b with a = γ/√(var + eps), b = β − mean·a, in double as the library's
 * evaluation-mode forward computes them (backend/conv_portable.c). Non-zero when out of
 * memory. */
static int put_module_data(FILE *f, const c_file *c, int i)
{
    const nb_export_node *e = &c->plan->nodes[i];
    const char *id = c->ident[i];
    if (e->op == NB_OP_CONV2D || e->op == NB_OP_MAX_POOL2D || e->op == NB_OP_AVG_POOL2D) {
        const nb_export_node *x = &c->plan->nodes[e->inputs[0]];
        fprintf(f, "/* %s: %s %lldx%lld, stride %lldx%lld, padding %lld,%lld,%lld,%lld, dilation "
                "%lldx%lld, groups %lld */\n", e->name, nb_op_name(e->op), (long long)e->kh,
                (long long)e->kw, (long long)e->sh, (long long)e->sw, (long long)e->pt,
                (long long)e->pl, (long long)e->pb, (long long)e->pr, (long long)e->dh,
                (long long)e->dw, (long long)e->groups);
        fprintf(f, "static const struct window %s_window = {%lld, %lld, %lld, %lld, %lld, %lld, "
                "%lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %lld, %d};\n\n", id,
                (long long)x->dims[0], (long long)x->dims[1], (long long)x->dims[2],
                (long long)e->dims[0], (long long)e->dims[1], (long long)e->dims[2],
                (long long)e->kh, (long long)e->kw, (long long)e->sh, (long long)e->sw,
                (long long)e->pt, (long long)e->pl, (long long)e->dh, (long long)e->dw,
                (long long)e->groups, e->include_pad);
    }
    if (e->op != NB_OP_BATCH_NORM)
        return 0;
    int64_t C = e->dims[0];
    float *ab = malloc(2 * (size_t)C * sizeof *ab);
    if (!ab)
        return 1;
    for (int64_t k = 0; k < C; k++) {
        double istd = 1.0 / sqrt((double)e->var[k] + (double)e->eps), mu = e->mean[k];
        ab[k] = (float)(e->weight[k] * istd);
        ab[C + k] = (float)(e->bias[k] - mu * e->weight[k] * istd);
    }
    fprintf(f, "/* %s: batch_norm in evaluation, y = a x + b per channel (eps %g) */\n", e->name,
            (double)e->eps);
    nb_c_put_floats(f, "float", id, "a", ab, C);
    nb_c_put_floats(f, "float", id, "b", ab + C, C);
    fputs("\n", f);
    free(ab);
    return 0;
}

/* P_FN names the float function: <math.h>'s (math) unless the user defined the macro. */
static void put_math(FILE *f, const char *P, const char *fn, const char *math, int used)
{
    if (used)
        fprintf(f, "#ifndef %s_%s\n#define %s_%s %s\n#else\nfloat %s_%s(float);\n#endif\n", P,
                fn, P, fn, math, P, fn);
}

static int write_source(FILE *f, void *ctx)
{
    const c_file *c = ctx;
    const nb_export_plan *p = c->plan;
    const char *n = c->name, *P = c->upper;
    fprintf(f, "/* A neural network compiled to C: %s_%s and the functions beside it, declared in %s.\n",
            n, p->regression ? "regress" : "predict", c->header);
    put_origin(f, c);
    fputs(" *\n * Nodes (in the order they run):\n", f);
    for (int i = 0; i < p->count; i++) {
        char shape[64] = "[";
        for (int d = 0; d < p->nodes[i].ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? "," : "",
                     (long long)p->nodes[i].dims[d]);
        fprintf(f, " *   %-20s %-12s %s]\n", c->ident[i], nb_op_name(p->nodes[i].op), shape);
    }
    fputs(" */\n", f);
    fprintf(f, "#include \"%s\"\n\n", c->header);
    static const char *const fns[4] = {"LOGF", "TANHF", "ERFF", "SQRTF"};
    const int used[4] = {c->uses_log, c->uses_tanh, c->uses_erf, c->uses_sqrt};
    fprintf(f, "#if !defined(%s_EXPF)", P);
    for (int k = 0; k < 4; k++)
        if (used[k])
            fprintf(f, " || !defined(%s_%s)", P, fns[k]);
    fputs("\n#include <math.h>\n#endif\n", f);
    put_math(f, P, "EXPF", "expf", 1);
    put_math(f, P, "LOGF", "logf", c->uses_log);
    put_math(f, P, "TANHF", "tanhf", c->uses_tanh);
    put_math(f, P, "ERFF", "erff", c->uses_erf);
    put_math(f, P, "SQRTF", "sqrtf", c->uses_sqrt);
    fputs("\n", f);

    nb_c_kernels_write_types(f, c->kernels);
    const nb_norm *norm = p->norm;
    if (norm->mode != NB_NORM_NONE && norm->size > 0) {
        float *inv = malloc((size_t)norm->size * sizeof *inv);
        if (!inv)
            return 1;
        for (int64_t s = 0; s < norm->size; s++)
            inv[s] = nb_export_norm_inv(norm, s);
        fputs("/* Input normalisation fitted on the training set: x^ = (x - mean) * inv,\n"
              " * inv = 1 / max(std, eps). */\n", f);
        nb_c_put_floats(f, "float", "input", "mean", norm->mean, norm->size);
        nb_c_put_floats(f, "float", "input", "inv", inv, norm->size);
        free(inv);
        fputs("\n", f);
    }
    for (int i = 0; i < p->count; i++) {
        if (put_module_data(f, c, i))
            return 1;
    }
    for (int i = 0; i < p->count; i++) {
        const nb_export_node *e = &p->nodes[i];
        if (!e->weight || e->op == NB_OP_BATCH_NORM)
            continue;
        fprintf(f, "/* %s: %s, weight [%lld, %lld]%s */\n", e->name, nb_op_name(e->op),
                (long long)e->rows, (long long)e->cols, e->bias ? ", bias" : "");
        if (e->op == NB_OP_LINEAR && c->opt->quantize == NB_QUANT_INT8)
            nb_c_int8_put_weights(f, c, i);
        else
            nb_c_put_floats(f, "float", c->ident[i], "weight", e->weight, e->rows * e->cols);
        if (e->bias) /* layer_norm: β as γ */
            nb_c_put_floats(f, "float", c->ident[i], "bias", e->bias,
                            e->op == NB_OP_LAYER_NORM ? e->rows * e->cols : e->rows);
        fputs("\n", f);
    }
    if (nb_c_api_data(f, c))
        return 1;
    if (c->kernels & K_LINEAR_I8)
        fprintf(f, "#define Q8_MAX_IN %ld /* the widest int8 Linear's inputs */\n\n",
                c->q8_max_in);
    nb_c_kernels_write(f, c->kernels, P);

    fprintf(f, "void %s_forward(const float *input, float *output, float *scratch)\n{\n", n);
    for (int i = 0; i < p->count; i++)
        put_call(f, c, i);
    put_fmt(f, c, "    copy(%B, output, %L);\n}\n\n", p->output, (long long)p->outputs);

    nb_c_api_define(f, c);
    return 0;
}

/* The kernels the plan uses, and refusals. */
static nb_status choose_kernels(c_file *c, nb_error *err)
{
    const nb_export_plan *p = c->plan;
    c->kernels = K_COPY;
    if (p->norm->mode != NB_NORM_NONE && p->norm->size > 0)
        c->kernels |= K_NORMALIZE;
    for (int i = 0; i < p->count; i++) {
        switch (p->nodes[i].op) {
        case NB_OP_INPUT: case NB_OP_RESHAPE: case NB_OP_DROPOUT: break;
        case NB_OP_LINEAR:
            c->kernels |= c->opt->quantize != NB_QUANT_INT8 ? K_LINEAR :
                          c->opt->calibration ? K_LINEAR_I8 : K_LINEAR_Q8;
            break;
        case NB_OP_RELU: c->kernels |= K_RELU; break;
        case NB_OP_TANH: c->kernels |= K_TANH; c->uses_tanh = 1; break;
        case NB_OP_SIGMOID: c->kernels |= K_SIGMOID; break;
        case NB_OP_ADD: c->kernels |= K_ADD; break;
        case NB_OP_MAX: c->kernels |= K_MAX; break;
        case NB_OP_MUL: c->kernels |= K_MUL; break;
        case NB_OP_SCALE: c->kernels |= K_SCALE; break;
        case NB_OP_SUM: case NB_OP_MEAN: c->kernels |= K_REDUCE; break;
        case NB_OP_SOFTMAX: c->kernels |= K_SOFTMAX; c->uses_log = 1; break;
        case NB_OP_LOG_SOFTMAX: c->kernels |= K_LOG_SOFTMAX; c->uses_log = 1; break;
        case NB_OP_NEAREST: c->kernels |= K_NEAREST; break;
        case NB_OP_CONV2D: c->kernels |= K_CONV2D; break;
        case NB_OP_MAX_POOL2D: c->kernels |= K_MAX_POOL; break;
        case NB_OP_AVG_POOL2D: c->kernels |= K_AVG_POOL; break;
        case NB_OP_GLOBAL_AVG_POOL: c->kernels |= K_GLOBAL_AVG; break;
        case NB_OP_BATCH_NORM: c->kernels |= K_CHANNEL_AFFINE; break;
        case NB_OP_LEAKY_RELU: c->kernels |= K_LEAKY_RELU; break;
        case NB_OP_GELU: c->kernels |= K_GELU; c->uses_erf = 1; break;
        case NB_OP_LAYER_NORM: c->kernels |= K_LAYER_NORM; c->uses_sqrt = 1; break;
        default:
            return nb_error_set(err, NB_ENOTSUP, "C export: node '%s' is a %s, which the C "
                                "export does not support", p->nodes[i].name,
                                nb_op_name(p->nodes[i].op));
        }
    }
    return NB_OK;
}

/* The base name of a path: what an #include beside it names. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

nb_status nb_export_c(nb_model *m, const char *c_path, const char *h_path,
                      const nb_export_c_options *opt, nb_error *err)
{
    nb_export_c_options defaults = {0};
    opt = opt ? opt : &defaults;
    c_file c = {.opt = opt, .name = opt->name ? opt->name : "model"};
    if (!c_path || !h_path)
        return nb_error_set(err, NB_EINVAL, "C export: the .c and .h paths must be given");
    size_t len = strlen(c.name);
    int valid = len > 0 && len <= NAME_LIMIT && !isdigit((unsigned char)c.name[0]);
    for (size_t i = 0; valid && i < len; i++)
        valid = isalnum((unsigned char)c.name[i]) || c.name[i] == '_';
    if (!valid)
        return nb_error_set(err, NB_EINVAL, "C export: name '%s' is not a C identifier of at "
                            "most %d characters (letters, digits, '_'; not starting with a "
                            "digit)", c.name, NAME_LIMIT);
    if (opt->quantize != NB_QUANT_NONE && opt->quantize != NB_QUANT_INT8)
        return nb_error_set(err, NB_EINVAL, "C export: unknown quantisation %d",
                            (int)opt->quantize);
    if (opt->calibration && opt->quantize != NB_QUANT_INT8)
        return nb_error_set(err, NB_EINVAL, "C export: calibration data applies to int8 "
                            "quantisation only");
    for (size_t i = 0; i <= len; i++)
        c.upper[i] = (char)toupper((unsigned char)c.name[i]);
    c.header = base_name(h_path);
    if (strchr(c.header, '"') || strchr(c.header, '\\') || !c.header[0])
        return nb_error_set(err, NB_EINVAL, "%s: a header name an #include can name is needed",
                            h_path);
    nb_export_plan plan;
    nb_status s = nb_export_plan_make(m, "C", &plan, err);
    if (s)
        return s;
    c.plan = &plan;
    if (opt->calibration && opt->quantize == NB_QUANT_INT8)
        s = nb_c_int8_calibrate(m, &c, opt->calibration, err);
    if (!s && !(s = choose_kernels(&c, err)) && !(s = plan_storage(&c, err)) &&
        !(s = plan_identifiers(&c, err)) && !(s = nb_export_write(h_path, write_header, &c, err)))
        s = nb_export_write(c_path, write_source, &c, err);
    free(c.root);
    free(c.offset);
    free(c.ident);
    free(c.q8_clip);
    free(c.q8_unsigned);
    nb_export_plan_free(&plan);
    return s;
}
