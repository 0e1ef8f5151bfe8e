/* nabla's side of the benchmark against PyTorch (bench/bench.py drives it; issue 7).
 *
 * The MLP 784-H1-H2-10 (ReLU, cross-entropy; default 784-256-128-10), SGD lr 0.1 momentum
 * 0.9, on Fashion-MNIST normalised (one global mean and standard deviation of the training
 * pixels, from the bytes per batch), shuffled every epoch. One measurement per run, printed as
 * one JSON object on stdout, so that bench.py can run each in its own process (peak RSS) and
 * alternate them with PyTorch's:
 *
 *   bench_mlp [options] train     train --epochs epochs with the library's trainer; seconds
 *                                 per epoch, test accuracy and loss at the end
 *   bench_mlp [options] infer     inference throughput at --batch (default 1000) over the test
 *                                 set: gather + normalise + forward, median of --repeats passes
 *   bench_mlp [options] latency   one sample at a time: median time of gather + forward
 *   bench_mlp [options] gemm      the roofline: the backend's own products of one training step
 *                                 at --batch (forward Y = X·Wᵀ, dX = dY·W except the first
 *                                 layer's, dW = dYᵀ·X), timed alone; samples/s they allow
 *   bench_mlp [options] prepare   writes what PyTorch needs to train on exactly the same run:
 *                                 the initial parameters (--init-out, float32 in the order
 *                                 l1.weight, l1.bias, l2.weight, …), the sample order of every
 *                                 epoch (--order-out, int64, epochs × samples, the trainer's own
 *                                 draws) and the normalisation (in the JSON)
 *
 * options: --data DIR  --hidden H1,H2,…  --batch N  --epochs E  --samples S (first S training
 * samples)  --threads T (0: one per core)  --gemm NAME  --seed S  --lr LR  --momentum M
 * --repeats R  --init-out FILE  --order-out FILE  --precision fp32|bf16 (Linear's products;
 * the JSON then names the oneDNN kernels that ran: "kernels")
 */
#include "bench_util.h"
#include "nabla.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_LAYERS 8

typedef struct options {
    const char *data, *gemm, *mode, *init_out, *order_out, *precision;
    int hidden[MAX_LAYERS], n_hidden;
    int64_t batch, samples;
    int epochs, threads, repeats;
    uint64_t seed;
    float lr, momentum;
} options;

static void die(const char *what, const nb_error *err)
{
    bench_fail("bench_mlp", what, err);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_mlp [--data DIR] [--hidden H1,H2] [--batch N] [--epochs E] "
                    "[--samples S] [--threads T] [--gemm NAME] [--seed S] [--lr LR] "
                    "[--momentum M] [--repeats R] [--init-out FILE] [--order-out FILE] "
                    "[--precision fp32|bf16] "
                    "train|infer|latency|gemm|prepare\n");
    exit(2);
}

static void parse(options *o, int argc, char **argv)
{
    *o = (options){.data = "/usr/share/datasets/fashion-mnist", .hidden = {256, 128},
                   .n_hidden = 2, .batch = 0, .epochs = 3, .threads = 0, .seed = 1,
                   .lr = 0.1f, .momentum = 0.9f, .repeats = 0};
    const char *a, *v;
    for (int i = 1; (a = bench_next_option(argc, argv, &i, &o->mode, &v));) {
        if (!v)
            usage();
        if (!strcmp(a, "--data"))
            o->data = v;
        else if (!strcmp(a, "--gemm"))
            o->gemm = v;
        else if (!strcmp(a, "--batch"))
            o->batch = atoll(v);
        else if (!strcmp(a, "--samples"))
            o->samples = atoll(v);
        else if (!strcmp(a, "--epochs"))
            o->epochs = atoi(v);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--repeats"))
            o->repeats = atoi(v);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--lr"))
            o->lr = strtof(v, NULL);
        else if (!strcmp(a, "--momentum"))
            o->momentum = strtof(v, NULL);
        else if (!strcmp(a, "--init-out"))
            o->init_out = v;
        else if (!strcmp(a, "--order-out"))
            o->order_out = v;
        else if (!strcmp(a, "--precision"))
            o->precision = v;
        else if (!strcmp(a, "--hidden")) {
            o->n_hidden = 0;
            for (const char *p = v; *p && o->n_hidden < MAX_LAYERS; p = strchr(p, ',') ? strchr(p, ',') + 1 : "")
                o->hidden[o->n_hidden++] = atoi(p);
        } else
            usage();
    }
    if (!o->mode)
        usage();
}

/* "784-256-128-10" for the hidden widths. */
static void shorthand(const options *o, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "784");
    for (int i = 0; i < o->n_hidden; i++)
        used += (size_t)snprintf(buf + used, size - used, "-%d", o->hidden[i]);
    snprintf(buf + used, size - used, "-10");
}

static void load(const options *o, const char *split, nb_dataset *ds)
{
    bench_load_split("bench_mlp", o->data, split, ds);
}

/* The model with its parameters drawn as PyTorch's Linear does, from the run's seed. */
static nb_model *make_model(const options *o, nb_gemm *gemm, const nb_dataset *train)
{
    char desc[256];
    nb_error err = {0};
    shorthand(o, desc, sizeof desc);
    nb_model *m = nb_model_new(desc, "bench", o->seed, gemm, &err);
    if (!m)
        die("model", &err);
    bench_init_like_torch("bench_mlp", m, o->seed, train);
    if (o->precision && strcmp(o->precision, "fp32") != 0) {
        if (strcmp(o->precision, "bf16") != 0) {
            fprintf(stderr, "bench_mlp: --precision: expected fp32 or bf16\n");
            exit(2);
        }
        if (nb_graph_set_precision(nb_model_graph(m), NB_PRECISION_BF16, &err))
            die("precision", &err);
    }
    return m;
}

/* ", \"precision\": …, \"kernels\": …" of the model's graph (after a run). */
static void print_precision(nb_model *m)
{
    char kernels[512];
    nb_graph *g = nb_model_graph(m);
    printf(", \"precision\": \"%s\", \"kernels\": \"%s\"",
           nb_precision_name(nb_graph_precision(g)), nb_graph_kernels(g, kernels, sizeof kernels));
}

static void train_config(const options *o, nb_train_config *cfg)
{
    nb_train_config_default(cfg);
    cfg->optim.kind = NB_OPT_SGD;
    cfg->optim.lr = o->lr;
    cfg->optim.momentum = o->momentum;
    cfg->epochs = o->epochs;
    cfg->batch = o->batch ? o->batch : 128;
    cfg->order = NB_ORDER_SHUFFLE;
    cfg->seed = o->seed;
}

typedef struct epochs_seen {
    double seconds[256];
    double loss[256];
    int count;
} epochs_seen;

static int on_epoch(void *user, const nb_epoch_stats *s)
{
    epochs_seen *e = user;
    if (e->count < 256) {
        e->seconds[e->count] = s->seconds;
        e->loss[e->count] = s->train_loss;
        e->count++;
    }
    return 0;
}

static void print_common(const options *o, nb_gemm *gemm, int64_t samples)
{
    char desc[256];
    shorthand(o, desc, sizeof desc);
    printf("\"model\": \"%s\", \"gemm\": \"%s\", \"threads\": %d, \"samples\": %lld, "
           "\"version\": \"%s\"",
           desc, nb_gemm_name(gemm), o->threads, (long long)samples, nb_version_string());
}

static void run_train(const options *o, nb_gemm *gemm)
{
    nb_dataset train = {0}, test = {0};
    nb_error err = {0};
    load(o, "train", &train);
    long rss_loaded = peak_rss_kb();
    if (o->samples > 0 && o->samples < train.count)
        train.count = o->samples; /* the first S samples */
    nb_model *m = make_model(o, gemm, &train);
    long rss_model = peak_rss_kb();
    nb_train_config cfg;
    train_config(o, &cfg);
    nb_trainer *t = nb_trainer_new(m, &train, NULL, &cfg, &err);
    if (!t)
        die("trainer", &err);
    epochs_seen seen = {0};
    nb_train_callbacks cb = {.user = &seen, .epoch_end = on_epoch};
    double start = now();
    nb_status s = nb_trainer_run(t, &cb, &err);
    double total = now() - start;
    int64_t trained = train.count;
    double loss = NAN, accuracy = NAN;
    nb_trainer_free(t);
    t = NULL;
    nb_dataset_free(&train); /* the test set is loaded once training is done, as in bench.py */
    load(o, "t10k", &test);
    if (!s)
        s = nb_evaluate(m, &test, &loss, &accuracy, NULL, &err);
    printf("{\"mode\": \"train\", \"batch\": %lld, \"epochs\": %d, ", (long long)cfg.batch,
           o->epochs);
    print_common(o, gemm, trained);
    print_precision(m);
    printf(", \"status\": \"%s\", \"seconds_total\": %.6f, \"epoch_seconds\": [",
           nb_status_name(s), total);
    for (int i = 0; i < seen.count; i++)
        printf("%s%.6f", i ? ", " : "", seen.seconds[i]);
    printf("], \"train_loss\": [");
    for (int i = 0; i < seen.count; i++)
        printf("%s%.6f", i ? ", " : "", seen.loss[i]);
    printf("], \"test_accuracy\": %.6f, \"test_loss\": %.6f, \"peak_rss_kb\": %ld, "
           "\"peak_rss_kb_after_load\": %ld, \"peak_rss_kb_after_norm\": %ld}\n", accuracy, loss,
           peak_rss_kb(), rss_loaded, rss_model);
    nb_model_free(m);
    nb_dataset_free(&test);
}

/* Inference: batches of the test set gathered from bytes, normalised and run forward. */
static void run_infer(const options *o, nb_gemm *gemm, int latency)
{
    nb_dataset train = {0}, test = {0};
    nb_error err = {0};
    load(o, "train", &train);
    load(o, "t10k", &test);
    nb_model *m = make_model(o, gemm, &train);
    nb_dataset_free(&train); /* only its statistics are needed */
    nb_graph *g = nb_model_graph(m);
    int in = nb_model_input(m), out = nb_model_output(m);
    int64_t batch = latency ? 1 : (o->batch ? o->batch : 1000);
    if (nb_graph_prepare(g, batch, &err))
        die("prepare", &err);
    const nb_norm *norm = nb_model_norm(m);
    int64_t *idx = malloc((size_t)test.count * sizeof *idx);
    int repeats = o->repeats ? o->repeats : (latency ? 20000 : 20);
    double *times = malloc((size_t)repeats * sizeof *times);
    if (!idx || !times)
        die("memory", NULL);
    for (int64_t i = 0; i < test.count; i++)
        idx[i] = i;
    volatile float sink = 0.0f;
    int64_t samples = 0;
    if (latency) {
        for (int r = -repeats / 10; r < repeats; r++) { /* the first tenth warms up */
            int64_t i = (r + repeats) % test.count;
            double t0 = now();
            nb_dataset_gather(&test, idx + i, 1, norm, nb_value(g, in), NULL);
            if (nb_graph_forward_to(g, out, &err))
                die("forward", &err);
            double t1 = now();
            sink += nb_value(g, out)[0];
            if (r >= 0)
                times[r] = t1 - t0;
        }
        samples = 1;
    } else {
        int64_t usable = test.count / batch * batch;
        for (int r = -2; r < repeats; r++) {
            double t0 = now();
            for (int64_t first = 0; first < usable; first += batch) {
                nb_dataset_gather(&test, idx + first, batch, norm, nb_value(g, in), NULL);
                if (nb_graph_forward_to(g, out, &err))
                    die("forward", &err);
                sink += nb_value(g, out)[0];
            }
            if (r >= 0)
                times[r] = now() - t0;
        }
        samples = usable;
    }
    double t = median(times, repeats);
    printf("{\"mode\": \"%s\", \"batch\": %lld, ", latency ? "latency" : "infer",
           (long long)batch);
    print_common(o, gemm, samples);
    print_precision(m);
    printf(", \"median_seconds\": %.9f, \"samples_per_second\": %.1f, \"latency_us\": %.3f, "
           "\"peak_rss_kb\": %ld}\n",
           t, (double)samples / t, t * 1e6 / (double)samples, peak_rss_kb());
    (void)sink;
    free(idx);
    free(times);
    nb_model_free(m);
    nb_dataset_free(&test);
}

/* The roofline: the products of one training step at the given batch, through the same
 * backend and threads, on operands of the right shapes; the median step time. */
typedef struct product {
    int transA, transB, M, N, K;
    float beta;
    float *A, *B, *C;
} product;

static void run_gemm(const options *o, nb_gemm *gemm)
{
    int widths[MAX_LAYERS + 2], layers = 0;
    widths[layers++] = 784;
    for (int i = 0; i < o->n_hidden; i++)
        widths[layers++] = o->hidden[i];
    widths[layers++] = 10;
    int64_t N = o->batch ? o->batch : 128;
    product p[3 * (MAX_LAYERS + 1)];
    int count = 0;
    double flops = 0.0;
    for (int l = 0; l + 1 < layers; l++) {
        int in = widths[l], out = widths[l + 1];
        p[count++] = (product){.transB = 1, .M = (int)N, .N = out, .K = in};        /* Y = X Wᵀ */
        if (l > 0)
            p[count++] = (product){.M = (int)N, .N = in, .K = out, .beta = 1.0f};  /* dX = dY W */
        p[count++] = (product){.transA = 1, .M = out, .N = in, .K = (int)N};       /* dW = dYᵀ X */
    }
    for (int i = 0; i < count; i++) {
        size_t a = (size_t)p[i].M * p[i].K, b = (size_t)p[i].K * p[i].N, c = (size_t)p[i].M * p[i].N;
        p[i].A = malloc(a * sizeof(float));
        p[i].B = malloc(b * sizeof(float));
        p[i].C = calloc(c, sizeof(float));
        if (!p[i].A || !p[i].B || !p[i].C)
            die("memory", NULL);
        for (size_t k = 0; k < a; k++)
            p[i].A[k] = (float)(k % 13) * 0.01f - 0.06f;
        for (size_t k = 0; k < b; k++)
            p[i].B[k] = (float)(k % 7) * 0.01f - 0.03f;
        flops += 2.0 * p[i].M * (double)p[i].N * p[i].K;
    }
    /* calls per sample: enough for ~20 ms */
    int repeats = o->repeats ? o->repeats : 15;
    double *times = malloc((size_t)repeats * sizeof *times);
    long calls = 1;
    for (int r = -3; r < repeats; r++) {
        double t0 = now();
        for (long c = 0; c < calls; c++)
            for (int i = 0; i < count; i++) {
                const product *q = &p[i];
                nb_gemm_run(gemm, q->transA, q->transB, q->M, q->N, q->K, 1.0f, q->A,
                            q->transA ? q->M : q->K, q->B, q->transB ? q->K : q->N, q->beta,
                            q->C, q->N);
            }
        double t = (now() - t0) / (double)calls;
        if (r < 0) {
            long want = (long)(0.02 / (t > 1e-9 ? t : 1e-9)) + 1;
            calls = want > calls ? want : calls;
        } else {
            times[r] = t;
        }
    }
    double t = median(times, repeats);
    printf("{\"mode\": \"gemm\", \"batch\": %lld, ", (long long)N);
    print_common(o, gemm, N);
    printf(", \"step_seconds\": %.9f, \"gflops\": %.2f, \"samples_per_second\": %.1f, "
           "\"peak_rss_kb\": %ld}\n",
           t, flops / t * 1e-9, (double)N / t, peak_rss_kb());
    for (int i = 0; i < count; i++) {
        free(p[i].A);
        free(p[i].B);
        free(p[i].C);
    }
    free(times);
}

/* The initial parameters, the epochs' sample orders and the normalisation, for PyTorch. */
static void run_prepare(const options *o, nb_gemm *gemm)
{
    nb_dataset train = {0};
    load(o, "train", &train);
    if (o->samples > 0 && o->samples < train.count)
        train.count = o->samples;
    nb_model *m = make_model(o, gemm, &train);
    nb_graph *g = nb_model_graph(m);
    if (o->init_out)
        bench_write_params("bench_mlp", o->init_out, g);
    if (o->order_out) {
        /* the trainer's draws: its generator seeded with cfg.seed, one order per epoch */
        nb_train_config cfg;
        train_config(o, &cfg);
        nb_rng rng;
        nb_rng_seed(&rng, cfg.seed);
        int64_t *order = malloc((size_t)train.count * sizeof *order);
        FILE *f = fopen(o->order_out, "wb");
        if (!order || !f)
            die(o->order_out, NULL);
        for (int e = 0; e < o->epochs; e++) {
            nb_dataset_order(&train, cfg.order, cfg.batch, &rng, order, NULL);
            if (fwrite(order, sizeof *order, (size_t)train.count, f) != (size_t)train.count)
                die(o->order_out, NULL);
        }
        if (fclose(f))
            die(o->order_out, NULL);
        free(order);
    }
    const nb_norm *norm = nb_model_norm(m);
    printf("{\"mode\": \"prepare\", ");
    print_common(o, gemm, train.count);
    printf(", \"mean\": %.9g, \"std\": %.9g, \"eps\": %.9g, \"params\": %zu}\n",
           (double)norm->mean[0], (double)norm->std[0], (double)norm->eps,
           nb_graph_param_floats(g));
    nb_model_free(m);
    nb_dataset_free(&train);
}

int main(int argc, char **argv)
{
    options o;
    parse(&o, argc, argv);
    nb_error err = {0};
    if (o.threads <= 0) { /* as the library resolves 0: one per online core */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = cores > 0 ? (int)cores : 1;
    }
    int backend = o.gemm ? nb_gemm_backend_parse(o.gemm) : NB_GEMM_AUTO;
    if (backend < 0) {
        fprintf(stderr, "bench_mlp: unknown gemm backend %s\n", o.gemm);
        return 2;
    }
    nb_gemm *gemm = nb_gemm_new((nb_gemm_backend)backend, o.threads, &err);
    if (!gemm)
        die("gemm", &err);
    if (!strcmp(o.mode, "train"))
        run_train(&o, gemm);
    else if (!strcmp(o.mode, "infer"))
        run_infer(&o, gemm, 0);
    else if (!strcmp(o.mode, "latency"))
        run_infer(&o, gemm, 1);
    else if (!strcmp(o.mode, "gemm"))
        run_gemm(&o, gemm);
    else if (!strcmp(o.mode, "prepare"))
        run_prepare(&o, gemm);
    else
        usage();
    nb_gemm_free(gemm);
    return 0;
}
