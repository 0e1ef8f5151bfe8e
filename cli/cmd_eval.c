/* nabla eval / nabla predict: use a trained model (§6: evaluation mode, class scores and the
 * arg-max class; for regression the predicted values in the targets' units). The figures come
 * from the library (nb_metrics_compute); this file only prints them. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
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
    long long limit, top_k;
    nb_tta tta;
} common;

static int parse_common(const char *cmd, int argc, char **argv, common *o, void (*help)(void),
                        int *format_csv)
{
    static const struct option options[] = {
        {"data", required_argument, 0, 'd'}, {"json", no_argument, 0, 'j'},
        {"format", required_argument, 0, 'f'}, {"limit", required_argument, 0, 'n'},
        {"threads", required_argument, 0, 't'}, {"gemm", required_argument, 0, 'g'},
        {"precision", required_argument, 0, 'p'}, {"top-k", required_argument, 0, 'k'},
        {"tta", required_argument, 0, 'a'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
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
        case 'k':
            if (format_csv)
                return cli_usage_error(cmd, "--top-k: an eval option");
            if (!cli_int(cmd, "--top-k", optarg, 1, 1 << 20, &o->top_k))
                return 2;
            break;
        case 'a':
            if (strcmp(optarg, "flip") && strcmp(optarg, "none"))
                return cli_usage_error(cmd, "--tta: expected flip or none, got '%s'", optarg);
            o->tta = strcmp(optarg, "flip") == 0 ? NB_TTA_FLIP : NB_TTA_NONE;
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
    if (m && (cli_set_precision(cmd, nb_model_graph(m), o->precision, NULL, err) ||
              nb_model_set_tta(m, o->tta, err))) {
        nb_model_free(m);
        m = NULL;
    }
    return m;
}

#define TTA_HELP                                                                          \
    "  --tta flip      test-time augmentation (image classifiers): each image's class\n"       \
    "                  probabilities are the mean of its own and its left-right mirror's\n"   \
    "                  (two forward passes; pairs with training under --augment)\n"

static void eval_help(void)
{
    printf("Usage: nabla eval MODEL.safetensors [OPTIONS]\n\n"
           "Evaluates a trained model on a data set, in evaluation mode (dropout off).\n"
           "Classifier: loss, accuracy, top-k accuracy, per class precision, recall, F1 and\n"
           "support with their macro and weighted averages (as scikit-learn's\n"
           "classification_report), per-class accuracy and the confusion matrix (rows: true\n"
           "class, columns: predicted). Regression: MSE, RMSE, MAE and R^2 per target and their\n"
           "means over the targets, in the targets' own units.\n\n"
           "Options:\n"
           "  --data SPEC     data set (default fashion-mnist-test); class names in a CSV are\n"
           "                  mapped through the model's\n"
           "  --top-k K       also the top-K accuracy (the true class among the K highest scores)\n"
           TTA_HELP
           "  --json          print JSON instead of text\n"
           "  --threads N, --gemm NAME, --precision P   as for train\n"
           "  -h, --help      this help\n\n" DATA_HELP);
}

static void print_json(cJSON *j)
{
    char *text = cJSON_Print(j);
    puts(text ? text : "{}");
    free(text);
    cJSON_Delete(j);
}

static cJSON *report_json(const common *o, const nb_metrics *mt)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o->model);
    cJSON_AddStringToObject(j, "data", o->data);
    cJSON_AddNumberToObject(j, "samples", (double)mt->samples);
    cJSON_AddNumberToObject(j, "loss", mt->loss);
    cJSON_AddStringToObject(j, "tta", o->tta == NB_TTA_FLIP ? "flip" : "none");
    return j;
}

static const char *target_name(const nb_model *m, int64_t t, char *buf, size_t size);

static void regression_report(const common *o, const nb_model *m, const nb_metrics *mt)
{
    char name[64];
    if (o->json) {
        cJSON *j = report_json(o, mt), *per = cJSON_CreateArray();
        cJSON_AddStringToObject(j, "task", "regression");
        cJSON_AddNumberToObject(j, "mse", mt->mse_mean);
        cJSON_AddNumberToObject(j, "rmse", mt->rmse_mean);
        cJSON_AddNumberToObject(j, "mae", mt->mae_mean);
        cJSON_AddNumberToObject(j, "r2", mt->r2_mean);
        for (int64_t t = 0; t < mt->targets; t++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "target", target_name(m, t, name, sizeof name));
            cJSON_AddNumberToObject(e, "mse", mt->mse[t]);
            cJSON_AddNumberToObject(e, "rmse", mt->rmse[t]);
            cJSON_AddNumberToObject(e, "mae", mt->mae[t]);
            cJSON_AddNumberToObject(e, "r2", mt->r2[t]);
            cJSON_AddItemToArray(per, e);
        }
        cJSON_AddItemToObject(j, "per_target", per);
        print_json(j);
        return;
    }
    printf("%s on %s: %lld samples\nloss %.6g (the training loss: on standardised targets when "
           "the model standardises them)\n\n%-16s %12s %12s %12s %9s\n", o->model, o->data,
           (long long)mt->samples, mt->loss, "target", "MSE", "RMSE", "MAE", "R^2");
    for (int64_t t = 0; t < mt->targets; t++)
        printf("%-16.16s %12.6g %12.6g %12.6g %9.6f\n", target_name(m, t, name, sizeof name),
               mt->mse[t], mt->rmse[t], mt->mae[t], mt->r2[t]);
    if (mt->targets > 1)
        printf("%-16s %12.6g %12.6g %12.6g %9.6f\n", "mean", mt->mse_mean, mt->rmse_mean,
               mt->mae_mean, mt->r2_mean);
}

static cJSON *averages_json(double p, double r, double f, int64_t support)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "precision", p);
    cJSON_AddNumberToObject(e, "recall", r);
    cJSON_AddNumberToObject(e, "f1", f);
    cJSON_AddNumberToObject(e, "support", (double)support);
    return e;
}

static void classification_report(const common *o, const nb_model *m, const nb_metrics *mt)
{
    const char *names = nb_model_classes_text(m);
    const int64_t C = mt->classes, *cm = mt->confusion;
    char name[64];
    if (o->json) {
        cJSON *j = report_json(o, mt);
        cJSON_AddNumberToObject(j, "accuracy", mt->accuracy);
        if (mt->top_k) {
            cJSON_AddNumberToObject(j, "top_k", mt->top_k);
            cJSON_AddNumberToObject(j, "top_k_accuracy", mt->top_k_accuracy);
        }
        cJSON *per = cJSON_AddArrayToObject(j, "per_class"), *rows = cJSON_AddArrayToObject(j, "confusion");
        for (int64_t i = 0; i < C; i++) {
            cJSON *row = cJSON_CreateArray();
            for (int64_t k = 0; k < C; k++)
                cJSON_AddItemToArray(row, cJSON_CreateNumber((double)cm[i * C + k]));
            cJSON_AddItemToArray(rows, row);
            cJSON *e = averages_json(mt->precision[i], mt->recall[i], mt->f1[i], mt->support[i]);
            cJSON_AddStringToObject(e, "class", class_name(names, i, name, sizeof name));
            cJSON_AddNumberToObject(e, "samples", (double)mt->support[i]);
            cJSON_AddNumberToObject(e, "accuracy", mt->recall[i]); /* of its own samples */
            cJSON_AddItemToArray(per, e);
        }
        cJSON_AddItemToObject(j, "macro_avg", averages_json(mt->macro_precision, mt->macro_recall,
                                                            mt->macro_f1, mt->samples));
        cJSON_AddItemToObject(j, "weighted_avg",
                              averages_json(mt->weighted_precision, mt->weighted_recall,
                                            mt->weighted_f1, mt->samples));
        print_json(j);
        return;
    }
    printf("%s on %s: %lld samples%s\nloss %.4f\naccuracy %.2f%%\n", o->model, o->data,
           (long long)mt->samples,
           o->tta == NB_TTA_FLIP ? ", test-time augmentation: each image and its mirror" : "",
           mt->loss, 100 * mt->accuracy);
    if (mt->top_k)
        printf("top-%d accuracy %.2f%%\n", mt->top_k, 100 * mt->top_k_accuracy);
    printf("\n%-16s %9s %9s %9s %9s\n", "", "precision", "recall", "f1-score", "support");
    for (int64_t i = 0; i < C; i++)
        printf("%-16.16s %9.4f %9.4f %9.4f %9lld\n", class_name(names, i, name, sizeof name),
               mt->precision[i], mt->recall[i], mt->f1[i], (long long)mt->support[i]);
    printf("%-16s %9.4f %9.4f %9.4f %9lld\n%-16s %9.4f %9.4f %9.4f %9lld\n", "macro avg",
           mt->macro_precision, mt->macro_recall, mt->macro_f1, (long long)mt->samples,
           "weighted avg", mt->weighted_precision, mt->weighted_recall, mt->weighted_f1,
           (long long)mt->samples);
    printf("\nper class:\n");
    for (int64_t i = 0; i < C; i++)
        printf("  %-14s %6.2f%%  (%lld samples)\n", class_name(names, i, name, sizeof name),
               100.0 * mt->recall[i], (long long)mt->support[i]);
    printf("\nconfusion matrix (row: true, column: predicted):\n%14s", "");
    for (int64_t k = 0; k < C; k++)
        printf(" %5lld", (long long)k);
    printf("\n");
    for (int64_t i = 0; i < C; i++) {
        printf("  %-12.12s", class_name(names, i, name, sizeof name));
        for (int64_t k = 0; k < C; k++)
            printf(" %5lld", (long long)cm[i * C + k]);
        printf("\n");
    }
}

int cmd_eval(int argc, char **argv)
{
    common o = {.data = "fashion-mnist-test"};
    int r = parse_common("eval", argc, argv, &o, eval_help, NULL);
    if (r)
        return r < 0 ? 0 : r;
    nb_error err = {0};
    nb_dataset ds = {0};
    nb_metrics mt = {0};
    const char *ignored;
    nb_gemm *gemm = NULL;
    nb_model *m = open_model("eval", &o, &gemm, &err);
    int status = 1;
    if (!m || cli_load_data_for(o.data, &ds, &ignored, m, &err) ||
        cli_check_targets(o.data, &ds, m, &err) ||
        nb_metrics_compute(m, &ds, (int)o.top_k, &mt, &err)) {
        cli_fail("eval", &err);
        goto done;
    }
    if (mt.targets)
        regression_report(&o, m, &mt);
    else
        classification_report(&o, m, &mt);
    status = 0;
done:
    nb_metrics_free(&mt);
    nb_dataset_free(&ds);
    nb_model_free(m);
    nb_gemm_free(gemm);
    return status;
}

static void predict_help(void)
{
    printf("Usage: nabla predict MODEL.safetensors [OPTIONS]\n\n"
           "Runs the model in evaluation mode (dropout off) on every input and prints, per row,\n"
           "its index, the arg-max class, its name and the class probabilities (softmax); for a\n"
           "regression model, the predicted value of each target (named as the columns it was\n"
           "trained on) in the targets' own units.\n\n"
           "Options:\n"
           "  --data SPEC     inputs (default fashion-mnist-test); labels, if any, are ignored\n"
           "  --format F      csv (default) or json\n"
           "  --limit N       only the first N inputs\n"
           TTA_HELP
           "  --threads N, --gemm NAME, --precision P   as for train\n"
           "  -h, --help      this help\n\n" DATA_HELP);
}

/* Target t's column name, or "value" / "value<t>" for a model that has none. */
static const char *target_name(const nb_model *m, int64_t t, char *buf, size_t size)
{
    const char *names = nb_model_target_names_text(m);
    if (names)
        return class_name(names, t, buf, size);
    if (nb_model_classes(m) == 1)
        snprintf(buf, size, "value");
    else
        snprintf(buf, size, "value%lld", (long long)t);
    return buf;
}

/* ",text", quoted (with "" for a quote) when the text holds a comma, quote or space. */
static void print_csv_field(const char *text)
{
    if (!text[strcspn(text, ",\" \t")]) {
        printf(",%s", text);
        return;
    }
    printf(",\"");
    for (const char *c = text; *c; c++) {
        if (*c == '"')
            putchar('"');
        putchar(*c);
    }
    printf("\"");
}

/* A regression model's predictions: index and one value per target, named. */
static int predict_values(const common *o, nb_model *m, const nb_dataset *ds, int64_t n, int csv,
                          nb_error *err)
{
    (void)o;
    int64_t T = nb_model_classes(m);
    float *v = malloc((size_t)(n * T) * sizeof *v);
    if (!v) {
        nb_error_set(err, NB_ENOMEM, "out of memory");
        return 1;
    }
    if (nb_model_predict_values(m, ds, NULL, n, v, err)) {
        free(v);
        return 1;
    }
    char name[64];
    if (csv) {
        printf("index");
        for (int64_t t = 0; t < T; t++)
            print_csv_field(target_name(m, t, name, sizeof name));
        printf("\n");
        for (int64_t i = 0; i < n; i++) {
            printf("%lld", (long long)i);
            for (int64_t t = 0; t < T; t++)
                printf(",%.9g", v[i * T + t]);
            printf("\n");
        }
    } else {
        cJSON *arr = cJSON_CreateArray();
        for (int64_t i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject(), *values = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "index", (double)i);
            for (int64_t t = 0; t < T; t++)
                cJSON_AddNumberToObject(values, target_name(m, t, name, sizeof name),
                                        (double)v[i * T + t]);
            cJSON_AddItemToObject(e, "values", values);
            cJSON_AddItemToArray(arr, e);
        }
        char *text = cJSON_PrintUnformatted(arr);
        puts(text ? text : "[]");
        free(text);
        cJSON_Delete(arr);
    }
    free(v);
    return 0;
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
    if (!m || cli_load_data_for(o.data, &ds, &ignored, nb_model_targets(m) >= 0 ? m : NULL, &err))
        goto fail;
    int64_t n = o.limit && o.limit < ds.count ? o.limit : ds.count, C = nb_model_classes(m);
    free(ds.labels); /* predictions need no labels, and labels beyond the classes are no error */
    ds.labels = NULL;
    if (nb_model_targets(m) >= 0) {
        status = predict_values(&o, m, &ds, n, csv, &err);
        if (status)
            goto fail;
        goto done;
    }
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
