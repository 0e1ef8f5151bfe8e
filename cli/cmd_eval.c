/* nabla eval / nabla predict: use a trained model (§6: evaluation mode, class scores and the
 * arg-max class). */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* The i-th comma-separated class name, or its index. */
static const char *class_name(const char *names, int64_t i, char *buf, size_t size)
{
    const char *s = names;
    for (int64_t k = 0; s && k < i; k++) {
        s = strchr(s, ',');
        if (s)
            s++;
    }
    if (!s) {
        snprintf(buf, size, "%lld", (long long)i);
        return buf;
    }
    size_t n = strcspn(s, ",");
    snprintf(buf, size, "%.*s", (int)(n < size - 1 ? n : size - 1), s);
    return buf;
}

typedef struct common {
    const char *model, *data, *gemm;
    int threads, json, precision;
    long long limit;
} common;

static int parse_common(const char *cmd, int argc, char **argv, common *o, void (*help)(void),
                        int *format_csv)
{
    static const struct option options[] = {
        {"data", required_argument, 0, 'd'}, {"json", no_argument, 0, 'j'},
        {"format", required_argument, 0, 'f'}, {"limit", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'}, {"gemm", required_argument, 0, 'g'},
        {"precision", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    long long n;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'd': o->data = optarg; break;
        case 'j': o->json = 1; break;
        case 'f':
            if (!format_csv || (strcmp(optarg, "csv") && strcmp(optarg, "json")))
                return cli_usage_error(cmd, "--format: expected csv or json");
            *format_csv = strcmp(optarg, "csv") == 0;
            o->json = !*format_csv;
            break;
        case 'n':
            if (!format_csv)
                return cli_usage_error(cmd, "--limit: eval always uses the whole data set");
            if (!cli_int(cmd, "--limit", optarg, 0, 1LL << 40, &o->limit))
                return 2;
            break;
        case 't': if (!cli_int(cmd, "--threads", optarg, 0, 1024, &n)) return 2; o->threads = (int)n; break;
        case 'g': o->gemm = optarg; break;
        case 'p':
            if ((o->precision = cli_precision_parse(optarg)) < 0)
                return cli_usage_error(cmd, "--precision: expected fp32, bf16 or bf16-or-fp32");
            break;
        case 'h': help(); return -1;
        case ':': return cli_usage_error(cmd, "option '%s' requires an argument", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(cmd, "expected one MODEL file argument");
    o->model = argv[optind];
    return 0;
}

/* The gemm backend and the trained model for eval and predict, in the requested precision.
 * *gemm is set even when the model fails (the caller frees both). */
static nb_model *open_model(const char *cmd, const common *o, nb_gemm **gemm, nb_error *err)
{
    *gemm = cli_gemm(o->gemm, o->threads, err);
    nb_model *m = *gemm ? nb_model_load(o->model, 1, *gemm, err) : NULL;
    if (m && cli_set_precision(cmd, nb_model_graph(m), o->precision, NULL, err)) {
        nb_model_free(m);
        m = NULL;
    }
    return m;
}

static void eval_help(void)
{
    printf("Usage: nabla eval MODEL.safetensors [OPTIONS]\n\n"
           "Loss, accuracy, per-class accuracy and the confusion matrix (rows: true class,\n"
           "columns: predicted) of a trained model on a labelled data set, in evaluation mode.\n\n"
           "Options:\n"
           "  --data SPEC     data set (default fashion-mnist-test)\n"
           "  --json          print JSON instead of text\n"
           "  --threads N, --gemm NAME, --precision P   as for train\n"
           "  -h, --help      this help\n\n" DATA_HELP);
}

int cmd_eval(int argc, char **argv)
{
    common o = {.data = "fashion-mnist-test"};
    int r = parse_common("eval", argc, argv, &o, eval_help, NULL);
    if (r)
        return r < 0 ? 0 : r;
    nb_error err = {0};
    nb_dataset ds = {0};
    const char *ignored;
    nb_gemm *gemm = NULL;
    nb_model *m = open_model("eval", &o, &gemm, &err);
    int64_t C = m ? nb_model_classes(m) : 0;
    int64_t *confusion = m ? calloc((size_t)(C * C), sizeof *confusion) : NULL;
    double loss, acc;
    int status = 1;
    if (!m || !confusion || cli_load_data(o.data, &ds, &ignored, &err) ||
        nb_evaluate(m, &ds, &loss, &acc, confusion, &err)) {
        if (m && !confusion)
            nb_error_set(&err, NB_ENOMEM, "out of memory");
        cli_fail("eval", &err);
        goto done;
    }
    const char *names = nb_model_classes_text(m);
    char name[64];
    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", o.model);
        cJSON_AddStringToObject(j, "data", o.data);
        cJSON_AddNumberToObject(j, "samples", (double)ds.count);
        cJSON_AddNumberToObject(j, "loss", loss);
        cJSON_AddNumberToObject(j, "accuracy", acc);
        cJSON *per = cJSON_AddArrayToObject(j, "per_class"), *cm = cJSON_AddArrayToObject(j, "confusion");
        for (int64_t i = 0; i < C; i++) {
            int64_t total = 0;
            cJSON *row = cJSON_CreateArray();
            for (int64_t k = 0; k < C; k++) {
                total += confusion[i * C + k];
                cJSON_AddItemToArray(row, cJSON_CreateNumber((double)confusion[i * C + k]));
            }
            cJSON_AddItemToArray(cm, row);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "class", class_name(names, i, name, sizeof name));
            cJSON_AddNumberToObject(e, "samples", (double)total);
            cJSON_AddNumberToObject(e, "accuracy", total ? (double)confusion[i * C + i] / (double)total : 0);
            cJSON_AddItemToArray(per, e);
        }
        char *text = cJSON_Print(j);
        puts(text ? text : "{}");
        free(text);
        cJSON_Delete(j);
    } else {
        printf("%s on %s: %lld samples\nloss %.4f\naccuracy %.2f%%\n\nper class:\n", o.model,
               o.data, (long long)ds.count, loss, 100 * acc);
        for (int64_t i = 0; i < C; i++) {
            int64_t total = 0;
            for (int64_t k = 0; k < C; k++)
                total += confusion[i * C + k];
            printf("  %-14s %6.2f%%  (%lld samples)\n", class_name(names, i, name, sizeof name),
                   total ? 100.0 * (double)confusion[i * C + i] / (double)total : 0.0, (long long)total);
        }
        printf("\nconfusion matrix (row: true, column: predicted):\n%14s", "");
        for (int64_t k = 0; k < C; k++)
            printf(" %5lld", (long long)k);
        printf("\n");
        for (int64_t i = 0; i < C; i++) {
            printf("  %-12.12s", class_name(names, i, name, sizeof name));
            for (int64_t k = 0; k < C; k++)
                printf(" %5lld", (long long)confusion[i * C + k]);
            printf("\n");
        }
    }
    status = 0;
done:
    free(confusion);
    nb_dataset_free(&ds);
    nb_model_free(m);
    nb_gemm_free(gemm);
    return status;
}

static void predict_help(void)
{
    printf("Usage: nabla predict MODEL.safetensors [OPTIONS]\n\n"
           "Runs the model in evaluation mode (dropout off) on every input and prints, per row,\n"
           "its index, the arg-max class, its name and the class probabilities (softmax).\n\n"
           "Options:\n"
           "  --data SPEC     inputs (default fashion-mnist-test); labels, if any, are ignored\n"
           "  --format F      csv (default) or json\n"
           "  --limit N       only the first N inputs\n"
           "  --threads N, --gemm NAME, --precision P   as for train\n"
           "  -h, --help      this help\n\n" DATA_HELP);
}

int cmd_predict(int argc, char **argv)
{
    common o = {.data = "fashion-mnist-test"};
    int csv = 1;
    int r = parse_common("predict", argc, argv, &o, predict_help, &csv);
    if (r)
        return r < 0 ? 0 : r;
    nb_error err = {0};
    nb_dataset ds = {0};
    const char *ignored;
    nb_gemm *gemm = NULL;
    nb_model *m = open_model("predict", &o, &gemm, &err);
    float *probs = NULL;
    int32_t *cls = NULL;
    int status = 1;
    if (!m || cli_load_data(o.data, &ds, &ignored, &err))
        goto fail;
    int64_t n = o.limit && o.limit < ds.count ? o.limit : ds.count, C = nb_model_classes(m);
    free(ds.labels); /* predictions need no labels, and labels beyond the classes are no error */
    ds.labels = NULL;
    probs = malloc((size_t)(n * C) * sizeof *probs);
    cls = malloc((size_t)n * sizeof *cls);
    if (!probs || !cls) {
        nb_error_set(&err, NB_ENOMEM, "out of memory");
        goto fail;
    }
    if (nb_model_predict(m, &ds, NULL, n, probs, cls, &err))
        goto fail;
    const char *names = nb_model_classes_text(m);
    char name[64];
    if (csv) {
        printf("index,class,name");
        for (int64_t j = 0; j < C; j++)
            printf(",p%lld", (long long)j);
        printf("\n");
        for (int64_t i = 0; i < n; i++) {
            printf("%lld,%d,\"%s\"", (long long)i, cls[i], class_name(names, cls[i], name, sizeof name));
            for (int64_t j = 0; j < C; j++)
                printf(",%.6g", probs[i * C + j]);
            printf("\n");
        }
    } else {
        cJSON *arr = cJSON_CreateArray();
        for (int64_t i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "index", (double)i);
            cJSON_AddNumberToObject(e, "class", cls[i]);
            cJSON_AddStringToObject(e, "name", class_name(names, cls[i], name, sizeof name));
            cJSON *p = cJSON_AddArrayToObject(e, "probabilities");
            for (int64_t j = 0; j < C; j++)
                cJSON_AddItemToArray(p, cJSON_CreateNumber((double)probs[i * C + j]));
            cJSON_AddItemToArray(arr, e);
        }
        char *text = cJSON_PrintUnformatted(arr);
        puts(text ? text : "[]");
        free(text);
        cJSON_Delete(arr);
    }
    status = 0;
    goto done;
fail:
    cli_fail("predict", &err);
done:
    free(probs);
    free(cls);
    nb_dataset_free(&ds);
    nb_model_free(m);
    nb_gemm_free(gemm);
    return status;
}
