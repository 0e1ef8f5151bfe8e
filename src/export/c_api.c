/* The public functions of a generated C file (nb_export_c): what a program calls.
 *
 * A classifier gets NAME_predict (the arg-max class, and the softmax of the output, as nabla
 * predict prints them), NAME_predict_batch and NAME_class_name. A regression model gets
 * NAME_regress instead: its output in the targets' own units, value = y · σ + μ with the
 * standardisation of the training targets stored with the model (as nabla predict prints
 * them), NAME_regress_batch and NAME_target_name; an arg-max and a softmax mean nothing
 * there. Both get NAME_forward, the raw output with a caller's scratch buffer. */
#include "export/c_file.h"

#include <stdlib.h>
#include <string.h>

/* One string of NUL-terminated names and their offsets: constant data without relocations (an
 * array of pointers would need them). names is comma-separated; at most `limit` are written. */
static void put_names(FILE *f, const char *names, int64_t limit)
{
    long at = 0;
    int count = 0;
    fputs("static const char name_text[] =", f);
    for (const char *s = names; count < limit; count++) {
        size_t len = strcspn(s, ",");
        fputs("\n    \"", f);
        for (size_t i = 0; i < len; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == '"' || ch == '\\')
                fprintf(f, "\\%c", ch);
            else if (ch < 32 || ch >= 127)
                fprintf(f, "\\%03o", ch);
            else
                fputc(ch, f);
        }
        fputs("\" \"\\0\"", f);
        s += len;
        if (!*s) {
            count++;
            break;
        }
        s++;
    }
    fprintf(f, ";\nstatic const long name_at[%d] = {", count);
    int k = 0;
    for (const char *s = names; k < count; k++) {
        size_t len = strcspn(s, ",");
        fprintf(f, "%s%ld", k ? ", " : "", at);
        at += (long)len + 1;
        s += len + (s[len] ? 1 : 0);
    }
    fprintf(f, "};\n#define NAMES %d\n\n", count);
}

static const char *output_names(const nb_export_plan *p)
{
    return p->regression ? p->target_names : p->classes;
}

int nb_c_api_data(FILE *f, const c_file *c)
{
    const nb_export_plan *p = c->plan;
    if (output_names(p))
        put_names(f, output_names(p), p->outputs);
    if (!p->regression)
        return 0;
    float *scale = malloc(2 * (size_t)p->outputs * sizeof *scale);
    if (!scale)
        return 1;
    if (nb_export_target_affine(p, scale, scale + p->outputs)) {
        fputs("/* The training targets' standardisation, undone: value = y * scale + shift\n"
              " * (scale = max(std, eps), shift = mean). */\n", f);
        nb_c_put_floats(f, "float", "target", "scale", scale, p->outputs);
        nb_c_put_floats(f, "float", "target", "shift", scale + p->outputs, p->outputs);
        fputs("\n", f);
    }
    free(scale);
    return 0;
}

void nb_c_api_declare(FILE *f, const c_file *c)
{
    const char *n = c->name, *P = c->upper;
    if (c->plan->regression)
        fprintf(f,
                "#define %s_REGRESSION 1    /* %s_regress, not %s_predict */\n\n"
                "/* Runs the model on one raw input (%s_INPUT_FEATURES floats) and writes its\n"
                " * %s_OUTPUTS predicted values, in the training targets' own units (their\n"
                " * standardisation undone: y * std + mean), to values. Uses %s_SCRATCH_FLOATS\n"
                " * floats of stack: where the stack is small, call %s_forward with a buffer\n"
                " * of your own (it gives the standardised values). */\n"
                "void %s_regress(const float *input, float *values);\n\n"
                "/* %s_regress for n inputs stored one after another; values: n x %s_OUTPUTS. */\n"
                "void %s_regress_batch(const float *inputs, int n, float *values);\n\n",
                P, n, n, P, P, P, n, n, n, P, n);
    else
        fprintf(f,
                "/* Runs the model on one raw input (%s_INPUT_FEATURES floats) and writes the softmax of\n"
                " * its output to probabilities (%s_OUTPUTS floats; may be NULL). Returns the arg-max\n"
                " * (the predicted class). Uses %s_SCRATCH_FLOATS floats of stack: where the stack is\n"
                " * small, call %s_forward with a buffer of your own. */\n"
                "int %s_predict(const float *input, float *probabilities);\n\n"
                "/* %s_predict for n inputs stored one after another; probabilities (n x %s_OUTPUTS)\n"
                " * and classes (n) may be NULL. */\n"
                "void %s_predict_batch(const float *inputs, int n, float *probabilities, int *classes);\n\n",
                P, P, P, n, n, n, P, n);
    fprintf(f,
            "/* The model's raw output (%s_OUTPUTS floats, e.g. logits) for one raw input, using\n"
            " * scratch (%s_SCRATCH_FLOATS floats, not aliasing input or output) as working memory. */\n"
            "void %s_forward(const float *input, float *output, float *scratch);\n\n",
            P, P, n);
    if (c->plan->regression)
        fprintf(f, "/* The name of target k (a column of the training data), or NULL. */\n"
                "const char *%s_target_name(int k);\n\n", n);
    else
        fprintf(f, "/* The name of class k, or NULL when the model has none. */\n"
                "const char *%s_class_name(int k);\n\n", n);
}

static void define_regress(FILE *f, const c_file *c)
{
    const char *n = c->name, *P = c->upper;
    int affine = c->plan->target_norm != NULL;
    fprintf(f,
            "void %s_regress(const float *input, float *values)\n"
            "{\n"
            "    float scratch[%s_SCRATCH_FLOATS];\n"
            "%s"
            "    %s_forward(input, values, scratch);\n", n, P, affine ? "    int j;\n" : "", n);
    if (affine)
        fprintf(f, "    for (j = 0; j < %s_OUTPUTS; j++)\n"
                "        values[j] = values[j] * target_scale[j] + target_shift[j];\n", P);
    fprintf(f, "}\n\n"
            "void %s_regress_batch(const float *inputs, int n, float *values)\n"
            "{\n"
            "    int i;\n"
            "    for (i = 0; i < n; i++)\n"
            "        %s_regress(inputs + (long)i * %s_INPUT_FEATURES, values + (long)i * %s_OUTPUTS);\n"
            "}\n\n", n, n, P, P);
}

static void define_predict(FILE *f, const c_file *c)
{
    const char *n = c->name, *P = c->upper;
    fprintf(f,
            "int %s_predict(const float *input, float *probabilities)\n"
            "{\n"
            "    float scratch[%s_SCRATCH_FLOATS], z[%s_OUTPUTS];\n"
            "    double sum = 0.0;\n"
            "    int j, best = 0;\n"
            "    %s_forward(input, z, scratch);\n"
            "    for (j = 1; j < %s_OUTPUTS; j++)\n"
            "        best = z[j] > z[best] ? j : best;\n"
            "    if (!probabilities)\n"
            "        return best;\n"
            "    /* softmax(z) = exp(z - max) / sum exp(z - max) */\n"
            "    for (j = 0; j < %s_OUTPUTS; j++) {\n"
            "        probabilities[j] = %s_EXPF(z[j] - z[best]);\n"
            "        sum += probabilities[j];\n"
            "    }\n"
            "    for (j = 0; j < %s_OUTPUTS; j++)\n"
            "        probabilities[j] = (float)(probabilities[j] / sum);\n"
            "    return best;\n"
            "}\n\n", n, P, P, n, P, P, P, P);
    fprintf(f,
            "void %s_predict_batch(const float *inputs, int n, float *probabilities, int *classes)\n"
            "{\n"
            "    int i;\n"
            "    for (i = 0; i < n; i++) {\n"
            "        int k = %s_predict(inputs + (long)i * %s_INPUT_FEATURES,\n"
            "                           probabilities ? probabilities + (long)i * %s_OUTPUTS : 0);\n"
            "        if (classes)\n"
            "            classes[i] = k;\n"
            "    }\n"
            "}\n\n", n, n, P, P);
}

void nb_c_api_define(FILE *f, const c_file *c)
{
    if (c->plan->regression)
        define_regress(f, c);
    else
        define_predict(f, c);
    fprintf(f, "const char *%s_%s_name(int k)\n{\n", c->name,
            c->plan->regression ? "target" : "class");
    if (output_names(c->plan))
        fputs("    return k >= 0 && k < NAMES ? name_text + name_at[k] : 0;\n}\n", f);
    else
        fputs("    (void)k;\n    return 0;\n}\n", f);
}
