/* nabla import WEIGHTS --model DESC -o MODEL: PyTorch weights (a safetensors state_dict) plus
 * a description become a nabla model file. The input normalisation is never guessed: none
 * unless the user names where it comes from (a data set to fit it on, given values, or
 * another nabla model file), because a normalisation fitted on other data than the network
 * was trained with silently costs accuracy. */
#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("Usage: nabla import WEIGHTS.safetensors --model DESC -o MODEL.safetensors [OPTIONS]\n\n"
           "Makes a nabla model file from PyTorch weights: a state_dict saved as safetensors\n"
           "(safetensors.torch.save_file(model.state_dict(), PATH); F32, F16, BF16, F64 and\n"
           "I64 counts, read as float32) and a description of the same network (a .nb file or an MLP shorthand\n"
           "such as 784-256-128-10, whose layers are fc1, fc2, ...). Every parameter of the\n"
           "description must be in WEIGHTS with its shape, and every tensor of WEIGHTS must be a\n"
           "parameter. PyTorch's pickled .pt files are not read (they can run code).\n\n"
           "Options:\n"
           "  --model DESC         the network (required)\n"
           "  -o, --output FILE    the model file to write (required)\n"
           "  --names MAP          exact (default): tensor names are the description's\n"
           "                       (fc1.weight, ...) | sequential: the i-th module of WEIGHTS\n"
           "                       (nn.Sequential's 0.weight, 2.weight, ...; ordered by name,\n"
           "                       numbers numerically) is the i-th module with parameters of\n"
           "                       the description, checked by shapes\n"
           "  --normalize N        the input normalisation b' = (b-m)/max(s,eps) stored in the\n"
           "                       model (applied by eval, predict, train on raw data):\n"
           "                         none (default): the network takes the data as they are\n"
           "                         feature:SPEC | channel:SPEC | global:SPEC: fitted on the\n"
           "                           data set SPEC, per feature, channel or overall, as\n"
           "                           'nabla train --normalize' fits it on its training set\n"
           "                         mean-std:M,S: one mean and standard deviation for every\n"
           "                           feature, in the data's raw units (torchvision's\n"
           "                           ToTensor + Normalize(m, s) on bytes is M = 255m, S = 255s)\n"
           "                         from:MODEL.safetensors: the one stored in a nabla model\n"
           "  --classes A,B,...    class names (default: those of --normalize's data set)\n"
           "  -q, --quiet          say nothing on success\n"
           "  -h, --help           this help\n\n" DATA_HELP);
}

/* ---- --names sequential ---------------------------------------------------------------- */

/* One module's tensors, "<prefix>.<member>": weight and bias, and a batch norm's buffers
 * (running_mean, running_var, num_batches_tracked). */
enum { MEMBERS = 8 };
typedef struct module_group {
    char prefix[NB_NAME_MAX * 4];
    int n;
    const char *member[MEMBERS];        /* the suffixes, "weight", ... */
    const nb_tensor_ref *tensor[MEMBERS]; /* file side */
    int node[MEMBERS];                  /* model side */
} module_group;

/* strcmp with digit runs compared as numbers: "2" < "10", "net.2" < "net.10". */
static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
            while (*a == '0')
                a++;
            while (*b == '0')
                b++;
            size_t la = strspn(a, "0123456789"), lb = strspn(b, "0123456789");
            if (la != lb)
                return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c)
                return c;
            a += la;
            b += lb;
        } else {
            if (*a != *b)
                return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++;
            b++;
        }
    }
    return (*a != 0) - (*b != 0);
}

static int group_cmp(const void *pa, const void *pb)
{
    return natural_cmp(((const module_group *)pa)->prefix, ((const module_group *)pb)->prefix);
}

/* Adds "<prefix>.<member>" to its module's group (made when new); 0 when the name has no
 * prefix, the prefix is too long or the module has too many members. */
static int add_member(module_group *gs, int *n, const char *name, const nb_tensor_ref *t,
                      int node)
{
    const char *dot = strrchr(name, '.');
    size_t len = dot ? (size_t)(dot - name) : 0;
    if (!dot || len == 0 || len >= sizeof gs->prefix || !dot[1])
        return 0;
    module_group *grp = NULL;
    for (int i = 0; i < *n && !grp; i++)
        if (strlen(gs[i].prefix) == len && strncmp(gs[i].prefix, name, len) == 0)
            grp = &gs[i];
    if (!grp) {
        grp = &gs[(*n)++];
        memcpy(grp->prefix, name, len);
        grp->prefix[len] = '\0';
    }
    if (grp->n == MEMBERS)
        return 0;
    grp->member[grp->n] = dot + 1;
    grp->tensor[grp->n] = t;
    grp->node[grp->n] = node;
    grp->n++;
    return 1;
}

static void shape_str(const int64_t *dims, int ndim, char *buf, size_t size)
{
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int k = 0; k < ndim && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", k ? "," : "", (long long)dims[k]);
    if (at < size)
        snprintf(buf + at, size - at, "]");
}

/* Copies tensor t into node, checking the shape; the message names both. */
static nb_status copy_tensor(nb_graph *g, int node, const nb_tensor_ref *t, const char *path,
                             int quiet, nb_error *err)
{
    int64_t dims[NB_MAX_DIMS];
    int ndim = nb_node_shape(g, node, dims);
    char want[96], got[96];
    shape_str(dims, ndim, want, sizeof want);
    shape_str(t->dims, t->ndim, got, sizeof got);
    int same = t->ndim == ndim;
    for (int k = 0; same && k < ndim; k++)
        same = t->dims[k] == dims[k];
    same = same || (t->ndim == 0 && ndim == 1 && dims[0] == 1); /* a PyTorch scalar */
    if (!same)
        return nb_error_set(err, NB_ESHAPE, "%s: tensor '%s' %s does not fit '%s' %s of the "
                            "description (the i-th module of the file goes to the i-th module "
                            "with parameters)", path, t->name, got, nb_node_name(g, node), want);
    memcpy(nb_value(g, node), t->data, (size_t)nb_node_size(g, node) * sizeof(float));
    if (!quiet)
        fprintf(stderr, "  %-24s -> %s %s\n", t->name, nb_node_name(g, node), want);
    return NB_OK;
}

/* Pairs the i-th module of the file (ordered by name, numbers numerically) with the i-th
 * module with parameters of the description (creation order), member by member. */
static nb_status map_sequential(nb_model *m, const nb_safetensors *st, const char *path,
                                int quiet, nb_error *err)
{
    nb_graph *g = nb_model_graph(m);
    int n_params = nb_graph_param_count(g), n_buffers = nb_graph_buffer_count(g);
    int n_tensors = nb_safetensors_count(st), n_model = 0, n_file = 0;
    module_group *model = calloc((size_t)(n_params + n_buffers) + 1, sizeof *model);
    module_group *file = calloc((size_t)n_tensors + 1, sizeof *file);
    nb_status s = model && file ? NB_OK : nb_error_set(err, NB_ENOMEM, "out of memory");
    for (int i = 0; !s && i < n_params + n_buffers; i++) {
        int node = i < n_params ? nb_graph_param_node(g, i) : nb_graph_buffer_node(g, i - n_params);
        if (!add_member(model, &n_model, nb_node_name(g, node), NULL, node))
            s = nb_error_set(err, NB_EINVAL, "the description's '%s' belongs to no module "
                             "(not NAME.weight, NAME.bias, ...); use --names exact",
                             nb_node_name(g, node));
    }
    for (int i = 0; !s && i < n_tensors; i++) {
        const nb_tensor_ref *t = nb_safetensors_at(st, i);
        if (!add_member(file, &n_file, t->name, t, -1))
            s = nb_error_set(err, NB_EFORMAT, "%s: tensor '%s' belongs to no module (expected "
                             "MODULE.weight, MODULE.bias, ...)", path, t->name);
    }
    if (!s)
        qsort(file, (size_t)n_file, sizeof *file, group_cmp);
    if (!s && n_file != n_model)
        s = nb_error_set(err, NB_ESHAPE, "%s: %d modules with parameters (%s%s%s), the "
                         "description has %d (%s%s%s)", path, n_file,
                         n_file ? file[0].prefix : "", n_file > 1 ? " ... " : "",
                         n_file > 1 ? file[n_file - 1].prefix : "", n_model,
                         n_model ? model[0].prefix : "", n_model > 1 ? " ... " : "",
                         n_model > 1 ? model[n_model - 1].prefix : "");
    for (int i = 0; !s && i < n_model; i++) {
        module_group *a = &file[i], *b = &model[i];
        if (a->n != b->n)
            s = nb_error_set(err, NB_ESHAPE, "%s: module %d '%s' has %d tensors, the "
                             "description's '%s' has %d (e.g. a Linear with and one without "
                             "bias)", path, i + 1, a->prefix, a->n, b->prefix, b->n);
        for (int k = 0; !s && k < a->n; k++) {
            int at = -1;
            for (int j = 0; j < b->n; j++)
                at = strcmp(a->member[k], b->member[j]) == 0 ? j : at;
            if (at < 0)
                s = nb_error_set(err, NB_ESHAPE, "%s: tensor '%s' has no counterpart in the "
                                 "description's module '%s'", path, a->tensor[k]->name,
                                 b->prefix);
            else
                s = copy_tensor(g, b->node[at], a->tensor[k], path, quiet, err);
        }
    }
    free(model);
    free(file);
    return s;
}

/* ---- --normalize ----------------------------------------------------------------------- */

static nb_status norm_copy(nb_norm *dst, const nb_norm *src, nb_error *err)
{
    *dst = *src;
    dst->mean = dst->std = NULL;
    if (src->size > 0) {
        dst->mean = malloc((size_t)src->size * sizeof(float));
        dst->std = malloc((size_t)src->size * sizeof(float));
        if (!dst->mean || !dst->std) {
            nb_norm_free(dst);
            return nb_error_set(err, NB_ENOMEM, "out of memory");
        }
        memcpy(dst->mean, src->mean, (size_t)src->size * sizeof(float));
        memcpy(dst->std, src->std, (size_t)src->size * sizeof(float));
    }
    return NB_OK;
}

/* Builds the normalisation --normalize names for a model of `features` inputs. *classes may
 * receive the fit data set's class names (static or owned by *data). */
static nb_status make_norm(const char *spec, int64_t features, nb_norm *norm, nb_dataset *data,
                           const char **classes, nb_error *err)
{
    static const char *const modes[] = {[NB_NORM_FEATURE] = "feature:", [NB_NORM_CHANNEL] = "channel:",
                                        [NB_NORM_GLOBAL] = "global:"};
    memset(norm, 0, sizeof *norm);
    norm->features = features;
    if (strcmp(spec, "none") == 0)
        return NB_OK;
    for (int mode = NB_NORM_FEATURE; mode <= NB_NORM_GLOBAL; mode++) {
        size_t len = strlen(modes[mode]);
        if (strncmp(spec, modes[mode], len) != 0)
            continue;
        nb_status s = cli_load_data(spec + len, data, classes, err);
        if (!s && data->features != features)
            s = nb_error_set(err, NB_ESHAPE, "--normalize %s: samples have %lld features, the "
                             "model's input has %lld", spec, (long long)data->features,
                             (long long)features);
        return s ? s : nb_norm_fit(norm, data, (nb_norm_mode)mode, 1e-5f, err);
    }
    if (strncmp(spec, "mean-std:", 9) == 0) {
        char *end;
        double m = strtod(spec + 9, &end), sd = *end == ',' ? strtod(end + 1, &end) : -1;
        if (*end || !(sd > 0) || !(sd < 3.4e38) || !(m > -3.4e38 && m < 3.4e38))
            return nb_error_set(err, NB_EINVAL, "--normalize %s: expected mean-std:M,S with a "
                                "finite mean M and a standard deviation S > 0", spec);
        norm->mode = NB_NORM_GLOBAL;
        norm->size = 1;
        norm->eps = 0;
        norm->mean = malloc(sizeof(float));
        norm->std = malloc(sizeof(float));
        if (!norm->mean || !norm->std) {
            nb_norm_free(norm);
            return nb_error_set(err, NB_ENOMEM, "out of memory");
        }
        norm->mean[0] = (float)m;
        norm->std[0] = (float)sd;
        return NB_OK;
    }
    if (strncmp(spec, "from:", 5) == 0) {
        nb_model *src = nb_model_load(spec + 5, 1, NULL, err);
        if (!src)
            return err->code;
        nb_status s = nb_model_features(src) != features
                          ? nb_error_set(err, NB_ESHAPE, "--normalize %s: that model takes %lld "
                                         "features, this one %lld", spec,
                                         (long long)nb_model_features(src), (long long)features)
                          : norm_copy(norm, nb_model_norm(src), err);
        nb_model_free(src);
        return s;
    }
    return nb_error_set(err, NB_EINVAL, "--normalize %s: expected none, feature:SPEC, "
                        "channel:SPEC, global:SPEC, mean-std:M,S or from:MODEL", spec);
}

int cmd_import(int argc, char **argv)
{
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'}, {"output", required_argument, 0, 'o'},
        {"names", required_argument, 0, 'n'}, {"normalize", required_argument, 0, 'N'},
        {"classes", required_argument, 0, 'c'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    const char *desc = NULL, *output = NULL, *norm_spec = "none", *class_names = NULL;
    int sequential = 0, quiet = 0, c;
    while ((c = getopt_long(argc, argv, ":o:qh", options, NULL)) != -1) {
        switch (c) {
        case 'm': desc = optarg; break;
        case 'o': output = optarg; break;
        case 'n':
            if (strcmp(optarg, "exact") != 0 && strcmp(optarg, "sequential") != 0)
                return cli_usage_error("import", "--names: expected exact or sequential");
            sequential = optarg[0] == 's';
            break;
        case 'N': norm_spec = optarg; break;
        case 'c': class_names = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': help(); return 0;
        case ':': return cli_usage_error("import", "option '%s' requires an argument", argv[optind - 1]);
        default: return cli_usage_error("import", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("import", "expected one WEIGHTS.safetensors argument");
    if (!desc)
        return cli_usage_error("import", "--model DESC is required (the network the weights "
                               "belong to, e.g. --model 784-256-128-10 or --model net.nb)");
    if (!output)
        return cli_usage_error("import", "-o MODEL.safetensors is required");
    const char *weights = argv[optind];
    size_t wl = strlen(weights);
    if ((wl >= 3 && strcmp(weights + wl - 3, ".pt") == 0) ||
        (wl >= 4 && (strcmp(weights + wl - 4, ".pth") == 0 || strcmp(weights + wl - 4, ".bin") == 0)))
        return cli_usage_error("import", "%s: PyTorch's pickle files are not read (loading one can "
                               "run code); save the state_dict as safetensors: "
                               "safetensors.torch.save_file(model.state_dict(), PATH)", weights);

    nb_error err = {0};
    nb_safetensors *st = NULL;
    nb_model *m = NULL;
    nb_dataset data = {0};
    nb_norm norm = {0};
    const char *classes = NULL;
    char *text = NULL;
    int status = 1;
    if (cli_read_model_text(desc, &text, &err) || !(m = nb_model_new(text, desc, 1, NULL, &err)))
        goto done;
    if (nb_safetensors_read(weights, &st, &err))
        goto done;
    if (!quiet && nb_safetensors_meta(st, "nabla.norm") && strcmp(norm_spec, "none") == 0)
        fprintf(stderr, "nabla import: note: %s carries a nabla normalisation; not used (add "
                "--normalize from:%s to keep it)\n", weights, weights);
    if (sequential) {
        if (!quiet)
            fprintf(stderr, "%s -> %s, modules in order:\n", weights, desc);
        if (map_sequential(m, st, weights, quiet, &err))
            goto done;
    } else if (nb_model_load_weights(m, weights, &err)) {
        const nb_tensor_ref *first = nb_safetensors_at(st, 0);
        if (first && isdigit((unsigned char)first->name[0]))
            snprintf(err.msg + strlen(err.msg), sizeof err.msg - strlen(err.msg),
                     " (names like '%s' are nn.Sequential's: add --names sequential)",
                     first->name);
        goto done;
    }
    if (make_norm(norm_spec, nb_model_features(m), &norm, &data, &classes, &err))
        goto done;
    nb_model_set_norm(m, &norm);
    if (class_names)
        classes = class_names;
    if (classes && nb_model_set_classes(m, classes, &err))
        goto done;
    if (nb_model_save(m, output, &err))
        goto done;
    if (!quiet)
        fprintf(stderr, "wrote %s: %d tensors, %zu parameters, normalisation %s\n", output,
                nb_graph_param_count(nb_model_graph(m)), nb_graph_param_floats(nb_model_graph(m)),
                norm_spec);
    status = 0;
done:
    if (status)
        cli_fail("import", &err);
    free(text);
    nb_norm_free(&norm);
    nb_dataset_free(&data);
    nb_safetensors_free(st);
    nb_model_free(m);
    return status;
}
