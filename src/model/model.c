/* A model: the described graph plus what using it on raw data needs (the description itself,
 * the training set's normalisation statistics, class names; for regression the targets'
 * standardisation and names), and its safetensors file. */
#include "model/describe.h"
#include "core/graph.h"
#include "model/model.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nb_model {
    nb_graph *graph;
    int input, output, labels, loss;
    int targets;          /* regression: the input fed with the targets, else -1 */
    nb_loss_kind appended; /* NB_LOSS_MSE when the regression loss was appended */
    char *description;
    char *classes;
    char *target_names;
    nb_norm norm;
    nb_norm target_norm;  /* t' = (t − m)/σ learnt, undone on prediction */
    nb_tta tta;           /* test-time augmentation of predict and evaluation */
};

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

/* nb_model_new with the description's parameters limited by what a model file's tensors hold
 * (nb_describe_budget; file_floats < 0: no limit). */
static nb_model *model_new(const char *description, const char *source, nb_loss_kind loss,
                           uint64_t seed, nb_gemm *gemm, int64_t file_floats, nb_error *err)
{
    nb_model *m = calloc(1, sizeof *m);
    if (!m || !(m->graph = nb_graph_new(seed, gemm)) || !(m->description = dup_string(description))) {
        nb_model_free(m);
        nb_error_set(err, NB_ENOMEM, "out of memory building the model");
        return NULL;
    }
    nb_graph *g = m->graph;
    if (nb_describe_budget(g, description, source, file_floats, &m->input, &m->output, err)) {
        nb_model_free(m);
        return NULL;
    }
    nb_op op = nb_node_op(g, m->output);
    m->labels = -1;
    m->targets = -1;
    if (!source)
        source = "<model>";
    if (loss == NB_LOSS_MSE && (op == NB_OP_NLL || op == NB_OP_CROSS_ENTROPY)) {
        nb_error_set(err, NB_EINVAL, "%s: the description ends in its own loss %s; a mean "
                     "squared error cannot be appended (end it in mse(...) instead)", source,
                     nb_op_name(op));
        nb_model_free(m);
        return NULL;
    }
    if (op == NB_OP_MSE || op == NB_OP_NLL || op == NB_OP_CROSS_ENTROPY) {
        /* the description ends in its own loss: the model output is that loss's prediction */
        m->loss = m->output;
        m->output = nb_node_input(g, m->loss, 0);
        if (op != NB_OP_MSE)
            m->labels = nb_node_input(g, m->loss, 1);
        else if (nb_node_op(g, nb_node_input(g, m->loss, 1)) == NB_OP_INPUT)
            m->targets = nb_node_input(g, m->loss, 1); /* the data's targets go there */
    } else if (loss == NB_LOSS_MSE && nb_node_is_batched(g, m->output)) {
        /* Regression (§1): C(y, ȳ) = ‖y − ȳ‖² against a target input shaped like ȳ. */
        int64_t dims[NB_MAX_DIMS];
        int ndim = nb_node_shape(g, m->output, dims);
        m->targets = nb_input(g, "__targets__", ndim, dims);
        m->loss = nb_mse(g, "__loss__", m->output, m->targets, NB_REDUCE_MEAN);
        m->appended = NB_LOSS_MSE;
    } else if (nb_node_is_batched(g, m->output)) {
        /* Classification (§6): the output holds class scores. Cross-entropy on logits, or NLL
         * when the output already is a log_softmax — never a log of softmax (§5.2). */
        m->labels = nb_labels(g, "__labels__");
        m->loss = op == NB_OP_LOG_SOFTMAX ? nb_nll(g, "__loss__", m->output, m->labels)
                                          : nb_cross_entropy(g, "__loss__", m->output, m->labels);
    } else {
        m->loss = m->output;
    }
    nb_error gerr;
    if (nb_graph_error(g, &gerr)) { /* the appended loss does not fit: say which model */
        nb_error_set(err, gerr.code, "%s: %s", source, gerr.msg);
        nb_model_free(m);
        return NULL;
    }
    return m;
}

nb_model *nb_model_new(const char *description, const char *source, uint64_t seed,
                       nb_gemm *gemm, nb_error *err)
{
    return model_new(description, source, NB_LOSS_AUTO, seed, gemm, -1, err);
}

nb_model *nb_model_new_with_loss(const char *description, const char *source, nb_loss_kind loss,
                                 uint64_t seed, nb_gemm *gemm, nb_error *err)
{
    if (loss != NB_LOSS_AUTO && loss != NB_LOSS_MSE) {
        nb_error_set(err, NB_EINVAL, "building a model: unknown loss kind %d", (int)loss);
        return NULL;
    }
    return model_new(description, source, loss, seed, gemm, -1, err);
}

void nb_model_free(nb_model *m)
{
    if (!m)
        return;
    nb_graph_free(m->graph);
    free(m->description);
    free(m->classes);
    free(m->target_names);
    nb_norm_free(&m->norm);
    nb_norm_free(&m->target_norm);
    free(m);
}

nb_graph *nb_model_graph(nb_model *m) { return m->graph; }
int nb_model_input(const nb_model *m) { return m->input; }
int nb_model_output(const nb_model *m) { return m->output; }
int nb_model_labels(const nb_model *m) { return m->labels; }
int nb_model_loss(const nb_model *m) { return m->loss; }
const char *nb_model_description(const nb_model *m) { return m->description; }
int64_t nb_model_classes(const nb_model *m) { return nb_node_size(m->graph, m->output); }
int64_t nb_model_features(const nb_model *m) { return nb_node_size(m->graph, m->input); }
const nb_norm *nb_model_norm(const nb_model *m) { return &m->norm; }
const char *nb_model_classes_text(const nb_model *m) { return m->classes; }
int nb_model_targets(const nb_model *m) { return m->targets; }
nb_tta nb_model_tta(const nb_model *m) { return m->tta; }

nb_status nb_model_set_tta(nb_model *m, nb_tta mode, nb_error *err)
{
    nb_status s = nb_tta_check(m, mode, err);
    if (!s)
        m->tta = mode;
    return s;
}
const nb_norm *nb_model_target_norm(const nb_model *m) { return &m->target_norm; }
const char *nb_model_target_names_text(const nb_model *m) { return m->target_names; }

void nb_model_set_target_norm(nb_model *m, nb_norm *norm)
{
    nb_norm_free(&m->target_norm);
    m->target_norm = *norm;
    memset(norm, 0, sizeof *norm);
}

void nb_model_set_norm(nb_model *m, nb_norm *norm)
{
    nb_norm_free(&m->norm);
    m->norm = *norm;
    memset(norm, 0, sizeof *norm);
}

static nb_status set_text(char **field, const char *text, nb_error *err)
{
    char *copy = text ? dup_string(text) : NULL;
    if (text && !copy)
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    free(*field);
    *field = copy;
    return NB_OK;
}

nb_status nb_model_set_classes(nb_model *m, const char *names, nb_error *err)
{
    return set_text(&m->classes, names, err);
}

nb_status nb_model_set_target_names(nb_model *m, const char *names, nb_error *err)
{
    return set_text(&m->target_names, names, err);
}

nb_status nb_model_check_inputs(const nb_model *m, const nb_dataset *ds, const char *what,
                              nb_error *err)
{
    int64_t features = nb_model_features(m);
    if (ds->count < 1)
        return nb_error_set(err, NB_EINVAL, "%s: the data set is empty", what);
    if (ds->features != features)
        return nb_error_set(err, NB_ESHAPE, "%s: samples have %lld features, the model's input "
                            "'%s' expects %lld", what, (long long)ds->features,
                            nb_node_name(m->graph, m->input), (long long)features);
    return NB_OK;
}

nb_status nb_model_check_data(const nb_model *m, const nb_dataset *ds, const char *what,
                              nb_error *err)
{
    nb_status s = nb_model_check_inputs(m, ds, what, err);
    if (s)
        return s;
    if (m->targets >= 0) {
        int64_t T = nb_node_size(m->graph, m->targets);
        if (!ds->targets)
            return nb_error_set(err, NB_EINVAL, "%s: the model predicts %lld value%s per sample "
                                "(regression) and the data has no numeric targets: name the "
                                "target column%s as csv:FILE:COLUMN%s", what, (long long)T,
                                T > 1 ? "s" : "", T > 1 ? "s" : "", T > 1 ? ",COLUMN,..." : "");
        if (ds->target_count != T)
            return nb_error_set(err, NB_ESHAPE, "%s: samples have %lld target%s, the model "
                                "predicts %lld", what, (long long)ds->target_count,
                                ds->target_count > 1 ? "s" : "", (long long)T);
    }
    if (m->labels >= 0 && ds->labels) {
        int64_t classes = nb_model_classes(m);
        for (int64_t i = 0; i < ds->count; i++)
            if (ds->labels[i] < 0 || ds->labels[i] >= classes)
                return nb_error_set(err, NB_EINVAL, "%s: sample %lld has label %d, the model "
                                    "has %lld classes (0 to %lld)", what, (long long)i,
                                    ds->labels[i], (long long)classes, (long long)classes - 1);
    }
    return NB_OK;
}

/* ---- files -------------------------------------------------------------------------------- */

static const char *norm_mode_names[] = {
    [NB_NORM_NONE] = "none", [NB_NORM_FEATURE] = "feature",
    [NB_NORM_CHANNEL] = "channel", [NB_NORM_GLOBAL] = "global",
};

/* {"mode": "feature", "eps": 1e-5, "features": 784, "mean": [...], "std": [...]} */
static char *norm_to_json(const nb_norm *norm)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "mode", norm_mode_names[norm->mode]);
    cJSON_AddNumberToObject(o, "eps", norm->eps);
    cJSON_AddNumberToObject(o, "features", (double)norm->features);
    cJSON *mean = cJSON_AddArrayToObject(o, "mean"), *std = cJSON_AddArrayToObject(o, "std");
    for (int64_t i = 0; mean && std && i < norm->size; i++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(norm->mean[i]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(norm->std[i]));
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static nb_status norm_from_json(nb_norm *norm, const char *key, const char *text,
                                int64_t features, const char *path, nb_error *err)
{
    memset(norm, 0, sizeof *norm);
    /* The safetensors reader bounds the header's JSON tokens, but this is one string of it,
     * parsed again: cJSON spends about 64 bytes per value, so "0,0,0,..." would cost 32 times
     * its length. Two arrays of at most `features` values and a few fields are all it holds. */
    size_t commas = 0;
    for (const char *c = text; *c; c++)
        commas += *c == ',';
    if (commas > 2 * (uint64_t)features + 16)
        return nb_error_set(err, NB_EFORMAT, "%s: __metadata__ '%s' holds about %zu "
                            "values, more than a mean and a std for each of the model's %lld "
                            "features", path, key, commas + 1, (long long)features);
    cJSON *o = cJSON_Parse(text);
    nb_status s = NB_OK;
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(o, "mode");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(o, "eps");
    const cJSON *mean = cJSON_GetObjectItemCaseSensitive(o, "mean");
    const cJSON *std = cJSON_GetObjectItemCaseSensitive(o, "std");
    int kind = -1;
    for (int i = 0; cJSON_IsString(mode) && i < 4; i++)
        if (strcmp(mode->valuestring, norm_mode_names[i]) == 0)
            kind = i;
    int64_t size = cJSON_IsArray(mean) ? cJSON_GetArraySize(mean) : -1;
    if (!o || kind < 0 || !cJSON_IsNumber(eps) || !(eps->valuedouble >= 0) ||
        !(eps->valuedouble <= FLT_MAX) || size < 0 ||
        !cJSON_IsArray(std) || cJSON_GetArraySize(std) != size ||
        (kind == NB_NORM_FEATURE && size != features) || (kind == NB_NORM_GLOBAL && size != 1) ||
        (kind != NB_NORM_NONE && (size < 1 || features % size)))
        s = nb_error_set(err, NB_EFORMAT, "%s: __metadata__ '%s': expected {\"mode\": "
                         "none|feature|channel|global, \"eps\", \"mean\": [...], \"std\": [...]} "
                         "with one entry per feature/channel (%lld features)", path, key,
                         (long long)features);
    if (!s && size > 0) {
        norm->mean = malloc((size_t)size * sizeof(float));
        norm->std = malloc((size_t)size * sizeof(float));
        if (!norm->mean || !norm->std)
            s = nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
        /* Values must fit a float (a larger double converted to float is undefined), and
         * max(std, eps) must be positive: it divides. */
        /* The two lists are walked in step: cJSON_GetArrayItem(i) walks from the head, which
         * made 100,000 features take 40 s. */
        const cJSON *a = mean->child, *b = std->child;
        for (int64_t i = 0; !s && i < size; i++, a = a->next, b = b->next) {
            if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !(fabs(a->valuedouble) <= FLT_MAX) ||
                !(b->valuedouble >= 0 && b->valuedouble <= FLT_MAX) ||
                !((float)b->valuedouble > 0 || (float)eps->valuedouble > 0))
                s = nb_error_set(err, NB_EFORMAT, "%s: '%s' entry %lld: expected a finite "
                                 "mean and a std >= 0 (> 0 when eps is 0), as floats", path, key,
                                 (long long)i);
            else {
                norm->mean[i] = (float)a->valuedouble;
                norm->std[i] = (float)b->valuedouble;
            }
        }
    }
    if (!s) {
        norm->mode = (nb_norm_mode)kind;
        norm->size = size;
        norm->features = features;
        norm->eps = (float)eps->valuedouble;
    } else {
        nb_norm_free(norm);
    }
    cJSON_Delete(o);
    return s;
}

nb_status nb_model_save(const nb_model *m, const char *path, nb_error *err)
{
    return nb_model_save_extra(m, path, NULL, 0, NULL, NULL, 0, err);
}

nb_status nb_model_save_extra(const nb_model *m, const char *path, const nb_tensor_ref *extra,
                              int n_extra, const char *const *extra_keys,
                              const char *const *extra_values, int n_meta, nb_error *err)
{
    nb_graph *g = m->graph;
    /* parameters, then buffers (batch norm's running statistics): PyTorch's state_dict */
    int params = nb_graph_param_count(g), count = params + nb_graph_buffer_count(g);
    enum { BASE_META = 8, MAX_META = 20 };
    if (n_meta > MAX_META - BASE_META)
        return nb_error_set(err, NB_EINVAL, "%s: too many metadata entries", path);
    nb_tensor_ref *t = calloc((size_t)(count + n_extra) + 1, sizeof *t);
    char *norm = norm_to_json(&m->norm);
    char *target_norm = m->targets >= 0 ? norm_to_json(&m->target_norm) : NULL;
    if (!t || !norm || (m->targets >= 0 && !target_norm)) {
        free(t);
        free(norm);
        free(target_norm);
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < count; i++) {
        int node = i < params ? nb_graph_param_node(g, i) : nb_graph_buffer_node(g, i - params);
        t[i].name = nb_node_name(g, node);
        t[i].ndim = nb_node_shape(g, node, t[i].dims);
        /* read directly (nb_value would count a change of the parameters) */
        t[i].data = (i < params ? g->params : g->buffers) + g->nodes[node].param_offset;
    }
    for (int i = 0; i < n_extra; i++)
        t[count + i] = extra[i];
    const char *keys[MAX_META] = {"format", "nabla.version", "nabla.description", "nabla.norm"};
    const char *values[MAX_META] = {"pt", NB_VERSION, m->description, norm};
    int n = 4;
    const char *optional[][2] = {{"nabla.classes", m->classes},
                                 {"nabla.loss", m->appended == NB_LOSS_MSE ? "mse" : NULL},
                                 {"nabla.target_norm", target_norm},
                                 {"nabla.targets", m->target_names}};
    for (int i = 0; i < 4; i++)
        if (optional[i][1]) {
            keys[n] = optional[i][0];
            values[n++] = optional[i][1];
        }
    for (int i = 0; i < n_meta; i++, n++) {
        keys[n] = extra_keys[i];
        values[n] = extra_values[i];
    }
    nb_status s = nb_safetensors_write(path, t, count + n_extra, keys, values, n, err);
    free(t);
    free(norm);
    free(target_norm);
    return s;
}

nb_status nb_model_load_weights(nb_model *m, const char *path, nb_error *err)
{
    nb_safetensors *st;
    nb_status s = nb_safetensors_read(path, &st, err);
    if (s)
        return s;
    s = nb_model_take_weights(m, st, path, NULL, err);
    nb_safetensors_free(st);
    return s;
}

/* A buffer holds statistics: finite, and a variance or a count is not negative (batch norm
 * divides by √(running_var + eps)). */
static nb_status check_buffer(const nb_tensor_ref *t, const char *path, nb_error *err)
{
    size_t len = strlen(t->name);
    int nonneg = (len > 12 && strcmp(t->name + len - 12, ".running_var") == 0) ||
                 (len > 20 && strcmp(t->name + len - 20, ".num_batches_tracked") == 0);
    int64_t n = 1;
    for (int k = 0; k < t->ndim; k++)
        n *= t->dims[k];
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(t->data[i]) || (nonneg && t->data[i] < 0))
            return nb_error_set(err, NB_EFORMAT, "%s: tensor '%s' element %lld is %g, expected a "
                                "finite%s statistic", path, t->name, (long long)i,
                                (double)t->data[i], nonneg ? ", non-negative" : "");
    return NB_OK;
}

nb_status nb_model_take_weights(nb_model *m, const nb_safetensors *st, const char *path,
                                const char *skip_prefix, nb_error *err)
{
    nb_status s = NB_OK;
    nb_graph *g = m->graph;
    int params = nb_graph_param_count(g);
    for (int i = 0; !s && i < params + nb_graph_buffer_count(g); i++) {
        int node = i < params ? nb_graph_param_node(g, i) : nb_graph_buffer_node(g, i - params);
        const char *name = nb_node_name(g, node);
        const nb_tensor_ref *t = nb_safetensors_find(st, name);
        int64_t dims[NB_MAX_DIMS];
        int ndim = nb_node_shape(g, node, dims);
        char want[64];
        nb_node_shape_str(g, node, want, sizeof want);
        if (!t) {
            s = nb_error_set(err, NB_EFORMAT, "%s: tensor '%s' %s is missing", path, name, want);
            break;
        }
        int same = t->ndim == ndim;
        for (int k = 0; same && k < ndim; k++)
            same = t->dims[k] == dims[k];
        /* PyTorch keeps a one-number buffer (num_batches_tracked) as a 0-dim scalar */
        same = same || (t->ndim == 0 && ndim == 1 && dims[0] == 1);
        if (!same) {
            char got[96]; /* the whole shape: 4 dims of at most 16 digits */
            size_t at = (size_t)snprintf(got, sizeof got, "[");
            for (int k = 0; k < t->ndim && at < sizeof got; k++)
                at += (size_t)snprintf(got + at, sizeof got - at, "%s%lld", k ? "," : "",
                                       (long long)t->dims[k]);
            if (at < sizeof got)
                snprintf(got + at, sizeof got - at, "]");
            s = nb_error_set(err, NB_ESHAPE, "%s: tensor '%s' has shape %s, the model expects %s",
                             path, name, got, want);
        } else if (i >= params && (s = check_buffer(t, path, err))) {
            break;
        } else
            memcpy(nb_value(g, node), t->data, (size_t)nb_node_size(g, node) * sizeof(float));
    }
    /* Every tensor must belong to the model: a stray one means a different architecture. */
    for (int i = 0; !s && i < nb_safetensors_count(st); i++) {
        const char *name = nb_safetensors_at(st, i)->name;
        if (skip_prefix && strncmp(name, skip_prefix, strlen(skip_prefix)) == 0)
            continue;
        int node = nb_graph_find(g, name);
        if (node < 0 || (nb_node_op(g, node) != NB_OP_PARAM && nb_node_op(g, node) != NB_OP_BUFFER))
            s = nb_error_set(err, NB_EFORMAT, "%s: tensor '%s' is not a parameter or buffer of "
                             "the model", path, name);
    }
    return s;
}

nb_model *nb_model_load(const char *path, uint64_t seed, nb_gemm *gemm, nb_error *err)
{
    nb_safetensors *st;
    if (nb_safetensors_read(path, &st, err))
        return NULL;
    const char *desc = nb_safetensors_meta(st, "nabla.description");
    if (!desc) {
        nb_error_set(err, NB_EFORMAT, "%s: __metadata__ has no 'nabla.description'; a bare "
                     "weights file loads with 'nabla train MODEL --init FILE'", path);
        nb_safetensors_free(st);
        return NULL;
    }
    /* Every parameter must be in the file, so the description may create hardly more
     * parameter floats than the file's weights hold: a short file cannot make us allocate
     * gigabytes. */
    int64_t floats = 0;
    for (int i = 0; i < nb_safetensors_count(st); i++) {
        const nb_tensor_ref *t = nb_safetensors_at(st, i);
        int64_t n = strncmp(t->name, "optim.", 6) != 0;
        for (int d = 0; d < t->ndim; d++) /* an empty tensor may have huge other dims */
            n = t->dims[d] == 0 ? 0 : n;
        for (int d = 0; d < t->ndim && n; d++)
            n *= t->dims[d]; /* the reader checked that the data is in the file */
        floats += n;
    }
    char source[600];
    snprintf(source, sizeof source, "%s: nabla.description", path);
    const char *loss = nb_safetensors_meta(st, "nabla.loss");
    if (loss && strcmp(loss, "mse") != 0) {
        nb_error_set(err, NB_EFORMAT, "%s: __metadata__ 'nabla.loss' is \"%.40s\"; expected "
                     "\"mse\" (or no entry: a classifier's loss)", path, loss);
        nb_safetensors_free(st);
        return NULL;
    }
    nb_model *m = model_new(desc, source, loss ? NB_LOSS_MSE : NB_LOSS_AUTO, seed, gemm, floats,
                            err);
    nb_status s = m ? NB_OK : (err ? err->code : NB_EFORMAT);
    const char *norm = nb_safetensors_meta(st, "nabla.norm");
    if (!s && norm)
        s = norm_from_json(&m->norm, "nabla.norm", norm, nb_model_features(m), path, err);
    const char *target_norm = nb_safetensors_meta(st, "nabla.target_norm");
    if (!s && target_norm && m->targets < 0)
        s = nb_error_set(err, NB_EFORMAT, "%s: __metadata__ has 'nabla.target_norm' but the "
                         "model is not a regression model", path);
    else if (!s && target_norm)
        s = norm_from_json(&m->target_norm, "nabla.target_norm", target_norm, nb_node_size(m->graph, m->targets),
                           path, err);
    const char *classes = nb_safetensors_meta(st, "nabla.classes");
    if (!s && classes)
        s = nb_model_set_classes(m, classes, err);
    const char *targets = nb_safetensors_meta(st, "nabla.targets");
    if (!s && targets && m->targets >= 0) /* a classifier has no use for them */
        s = nb_model_set_target_names(m, targets, err);
    if (!s)
        s = nb_model_take_weights(m, st, path, "optim.", err);
    nb_safetensors_free(st);
    if (s) {
        nb_model_free(m);
        return NULL;
    }
    return m;
}
