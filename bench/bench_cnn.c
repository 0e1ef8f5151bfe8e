/* nabla's side of the CNN benchmark against PyTorch (bench/bench_cnn.py drives it; issue 13).
 *
 * The small CNN of examples/fashion-cnn.nb (conv 3×3 32 → BN → ReLU → max-pool 2 → conv 3×3
 * 64 → BN → ReLU → max-pool 2 → linear 128 → ReLU → dropout → linear 10), SGD lr 0.01
 * momentum 0.9, cross-entropy, on Fashion-MNIST normalised by one global mean and standard
 * deviation. Batches are consecutive training samples (batch b = samples [bB, (b+1)B) modulo
 * the training set), so PyTorch sees the same ones. One measurement per run, one JSON object
 * on stdout, so that each runs in its own process (peak RSS) alternating with PyTorch's:
 *
 *   bench_cnn [options] prepare   the initial parameters (--init-out, float32, in the order and
 *                                 with the names listed in the JSON) and the normalisation, and
 *                                 the loss of the first batch in evaluation mode (a check that
 *                                 both sides hold the same network)
 *   bench_cnn [options] train     --steps training steps at --batch (default 128) after 3
 *                                 warm-up steps: samples/s, last loss, peak RSS
 *   bench_cnn [options] infer     forward passes at --batch (default 1000) over the test set:
 *                                 samples/s (median of --repeats passes), on the graph planned
 *                                 for inference (--plan training: for training, every
 *                                 activation kept, as before nb_graph_prepare_inference)
 *   bench_cnn [options] kernels   the profile: every image kernel and Linear product of one
 *                                 training step at --batch timed alone on the same context
 *                                 (median ms each), and the roofline: the largest convolution's
 *                                 forward (conv2, 32→64 at 14×14) on oneDNN alone, in GFLOP/s
 *
 * options: --data DIR  --model FILE (default examples/fashion-cnn.nb)  --batch N  --steps S
 * --threads T (0: one per core)  --gemm NAME  --seed S  --repeats R  --init-out FILE
 * --plan inference|training */
#include "backend/conv.h"
#include "backend/gemm_pool.h"
#include "bench_util.h"
#include "nabla.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef NB_HAVE_ONEDNN
#include <dnnl.h>
#endif

typedef struct options {
    const char *data, *model, *gemm, *mode, *init_out, *plan;
    int64_t batch;
    int steps, threads, repeats;
    uint64_t seed;
} options;

static void die(const char *what, const nb_error *err)
{
    bench_fail("bench_cnn", what, err);
}

/* CPU seconds of this process (all threads) or of the calling thread: on a machine shared
 * with other work, wall time measures the load as much as the program; CPU time does not
 * (at one thread it is the time the run would take alone, up to cache effects). */
static double cpu_now(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void parse(options *o, int argc, char **argv)
{
    *o = (options){.data = "/usr/share/datasets/fashion-mnist",
                   .model = "examples/fashion-cnn.nb", .steps = 40, .seed = 1,
                   .plan = "inference"};
    const char *a, *v;
    for (int i = 1; (a = bench_next_option(argc, argv, &i, &o->mode, &v));) {
        if (!v)
            die(a, NULL);
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--gemm")) o->gemm = v;
        else if (!strcmp(a, "--init-out")) o->init_out = v;
        else if (!strcmp(a, "--plan") && (!strcmp(v, "inference") || !strcmp(v, "training")))
            o->plan = v;
        else if (!strcmp(a, "--batch")) o->batch = atoll(v);
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--repeats")) o->repeats = atoi(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else die(a, NULL);
    }
    if (!o->mode)
        die("usage: bench_cnn [options] prepare|train|infer|kernels", NULL);
}

static void load(const options *o, const char *split, nb_dataset *ds)
{
    bench_load_split("bench_cnn", o->data, split, ds);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = f ? calloc(1, 1 << 16) : NULL;
    if (!text)
        die(path, NULL);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

/* The model with PyTorch's initialisation drawn from the seed and the training set's
 * normalisation. */
static nb_model *make_model(const options *o, nb_gemm *gemm, const nb_dataset *train)
{
    nb_error err = {0};
    char *desc = read_text(o->model);
    nb_model *m = nb_model_new(desc, o->model, o->seed, gemm, &err);
    free(desc);
    if (!m)
        die(o->model, &err);
    bench_init_like_torch("bench_cnn", m, o->seed, train);
    return m;
}

/* Batch b of consecutive samples, wrapping around the set. */
static void batch_indices(int64_t b, int64_t batch, int64_t count, int64_t *idx)
{
    for (int64_t i = 0; i < batch; i++)
        idx[i] = (b * batch + i) % count;
}

static void run_prepare(const options *o, nb_gemm *gemm)
{
    nb_dataset train = {0};
    nb_error err = {0};
    load(o, "train", &train);
    nb_model *m = make_model(o, gemm, &train);
    nb_graph *g = nb_model_graph(m);
    if (o->init_out)
        bench_write_params("bench_cnn", o->init_out, g);
    int64_t batch = o->batch ? o->batch : 128, idx[4096];
    if (batch > 4096)
        batch = 4096;
    batch_indices(0, batch, train.count, idx);
    if (nb_graph_prepare(g, batch, &err))
        die("prepare", &err);
    nb_dataset_gather(&train, idx, batch, nb_model_norm(m), nb_value(g, nb_model_input(m)),
                      nb_labels_data(g, nb_model_labels(m)));
    if (nb_graph_forward(g, &err))
        die("forward", &err);
    const nb_norm *norm = nb_model_norm(m);
    printf("{\"mode\": \"prepare\", \"mean\": %.9g, \"std\": %.9g, \"eps\": %.9g, "
           "\"first_batch_eval_loss\": %.7f, \"params\": [",
           (double)norm->mean[0], (double)norm->std[0], (double)norm->eps,
           (double)nb_value(g, nb_model_loss(m))[0]);
    for (int i = 0; i < nb_graph_param_count(g); i++) {
        int node = nb_graph_param_node(g, i);
        printf("%s[\"%s\", %lld]", i ? ", " : "", nb_node_name(g, node),
               (long long)nb_node_size(g, node));
    }
    printf("]}\n");
    nb_model_free(m);
    nb_dataset_free(&train);
}

static void print_common(const options *o, nb_gemm *gemm)
{
    printf("\"gemm\": \"%s\", \"conv\": \"%s\", \"threads\": %d, \"version\": \"%s\"",
           nb_gemm_name(gemm), nb_conv2d_implementation(gemm, NB_PRECISION_FP32), o->threads,
           nb_version_string());
}

static void run_train(const options *o, nb_gemm *gemm)
{
    nb_dataset train = {0};
    nb_error err = {0};
    load(o, "train", &train);
    nb_model *m = make_model(o, gemm, &train);
    nb_graph *g = nb_model_graph(m);
    int64_t batch = o->batch ? o->batch : 128;
    int64_t *idx = malloc((size_t)batch * sizeof *idx);
    nb_optim_config oc;
    nb_optim_config_default(&oc);
    oc.lr = 0.01f;
    oc.momentum = 0.9f;
    nb_optim *opt = nb_optim_new(&oc, nb_graph_param_floats(g), &err);
    if (!idx || !opt || nb_graph_prepare(g, batch, &err))
        die("setup", &err);
    nb_graph_set_training(g, 1);
    const int warmup = 3;
    double start = 0.0, cpu_start = 0.0, forward = 0.0, backward = 0.0, step = 0.0;
    float loss = NAN;
    for (int s = -warmup; s < o->steps; s++) {
        if (s == 0)
            start = now(), cpu_start = cpu_now(CLOCK_PROCESS_CPUTIME_ID),
            forward = backward = step = 0.0;
        batch_indices(s + warmup, batch, train.count, idx);
        double t0 = now();
        nb_dataset_gather(&train, idx, batch, nb_model_norm(m), nb_value(g, nb_model_input(m)),
                          nb_labels_data(g, nb_model_labels(m)));
        nb_graph_zero_grad(g);
        if (nb_graph_forward(g, &err))
            die("forward", &err);
        double t1 = now();
        if (nb_graph_backward(g, nb_model_loss(m), NULL, &err))
            die("backward", &err);
        double t2 = now();
        nb_optim_step(opt, nb_graph_params(g), nb_graph_param_grads(g), oc.lr);
        nb_graph_params_changed(g);
        double t3 = now();
        forward += t1 - t0, backward += t2 - t1, step += t3 - t2;
        loss = nb_value(g, nb_model_loss(m))[0];
    }
 double total = now() - start, cpu = cpu_now(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    printf("{\"mode\": \"train\", \"batch\": %lld, \"steps\": %d, ", (long long)batch, o->steps);
    print_common(o, gemm);
    printf(", \"seconds\": %.6f, \"cpu_seconds\": %.6f, \"samples_per_second\": %.1f, "
           "\"samples_per_cpu_second\": %.1f, \"forward_ms\": %.3f, "
           "\"backward_ms\": %.3f, \"optimiser_ms\": %.3f, \"last_loss\": %.6f, "
           "\"peak_rss_kb\": %ld}\n",
           total, cpu, (double)batch * o->steps / total, (double)batch * o->steps / cpu,
           1e3 * forward / o->steps,
           1e3 * backward / o->steps, 1e3 * step / o->steps, (double)loss, peak_rss_kb());
    nb_optim_free(opt);
    free(idx);
    nb_model_free(m);
    nb_dataset_free(&train);
}

static void run_infer(const options *o, nb_gemm *gemm)
{
    nb_dataset train = {0}, test = {0};
    nb_error err = {0};
    load(o, "train", &train);
    nb_model *m = make_model(o, gemm, &train);
    nb_dataset_free(&train); /* only its statistics are needed */
    load(o, "t10k", &test);
    nb_graph *g = nb_model_graph(m);
    int64_t batch = o->batch ? o->batch : 1000, usable = test.count / batch * batch;
    int repeats = o->repeats ? o->repeats : 5, out = nb_model_output(m);
    int64_t *idx = malloc((size_t)test.count * sizeof *idx);
    double *times = malloc((size_t)repeats * sizeof *times);
    double *cpu = malloc((size_t)repeats * sizeof *cpu);
    if (!idx || !times || !cpu)
        die("memory", NULL);
    if (!strcmp(o->plan, "training") ? nb_graph_prepare(g, batch, &err)
                                     : nb_graph_prepare_inference(g, batch, &out, 1, &err))
        die("setup", &err);
    for (int64_t i = 0; i < test.count; i++)
        idx[i] = i;
    volatile float sink = 0.0f;
    for (int r = -1; r < repeats; r++) {
        double t0 = now(), c0 = cpu_now(CLOCK_PROCESS_CPUTIME_ID);
        for (int64_t first = 0; first < usable; first += batch) {
            nb_dataset_gather(&test, idx + first, batch, nb_model_norm(m),
                              nb_value(g, nb_model_input(m)), NULL);
            if (nb_graph_forward_to(g, out, &err))
                die("forward", &err);
            sink += nb_value(g, out)[0];
        }
        if (r >= 0)
            times[r] = now() - t0, cpu[r] = cpu_now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    double t = median(times, repeats), c = median(cpu, repeats);
    printf("{\"mode\": \"infer\", \"plan\": \"%s\", \"batch\": %lld, ", o->plan,
           (long long)batch);
    print_common(o, gemm);
    printf(", \"samples\": %lld, \"median_seconds\": %.6f, \"samples_per_second\": %.1f, "
           "\"samples_per_cpu_second\": %.1f, \"peak_rss_kb\": %ld}\n",
           (long long)usable, t, (double)usable / t, (double)usable / c, peak_rss_kb());
    (void)sink;
    free(idx);
    free(times);
    free(cpu);
    nb_model_free(m);
    nb_dataset_free(&test);
}

/* ---- the profile ---------------------------------------------------------------------------- */

typedef struct timed {
    const char *name;
    double ms;
} timed;

static float *buffer(size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        die("memory", NULL);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return v;
}

static nb_conv_shape conv_shape(int64_t N, int64_t C, int64_t HW, int64_t K, int64_t R,
                                int64_t stride, int64_t pad)
{
    int64_t P = (HW + 2 * pad - R) / stride + 1;
    return (nb_conv_shape){.N = N, .C = C, .H = HW, .W = HW, .K = K, .R = R, .S = R, .P = P,
                           .Q = P, .stride_h = stride, .stride_w = stride, .pad_h = pad,
                           .pad_w = pad, .dil_h = 1, .dil_w = 1, .groups = 1};
}

enum { KERNELS = 18 };
typedef struct step_buffers {
    nb_conv_shape c1, c2, p1, p2;
    nb_bn_shape b1, b2;
    float *x, *y1, *w1, *dw1, *y2, *w2, *dw2, *q1, *dq1, *q2, *gm, *bt, *mu, *is, *va;
    float *flat, *fw1, *h, *fw2, *o, *dfw1, *dfw2, *ws;
    int32_t *am1, *am2;
    int64_t N;
} step_buffers;

/* Runs kernel k once; returns its name. */
static const char *kernel(nb_gemm *ctx, step_buffers *b, int k)
{
    const nb_precision fp = NB_PRECISION_FP32;
    int N = (int)b->N;
    switch (k) {
    case 0: nb_conv2d_forward(ctx, fp, &b->c1, b->x, b->w1, NULL, b->y1, b->ws); return "conv1 fwd";
    case 1: nb_batch_norm_forward(ctx, fp, &b->b1, b->y1, b->gm, b->bt, 1e-5f, 1, NULL, NULL, b->y1, b->mu, b->is, b->va); return "bn1 fwd";
    case 2: nb_max_pool2d_forward(ctx, fp, &b->p1, b->y1, b->q1, b->am1); return "pool1 fwd";
    case 3: nb_conv2d_forward(ctx, fp, &b->c2, b->q1, b->w2, NULL, b->y2, b->ws); return "conv2 fwd";
    case 4: nb_batch_norm_forward(ctx, fp, &b->b2, b->y2, b->gm, b->bt, 1e-5f, 1, NULL, NULL, b->y2, b->mu, b->is, b->va); return "bn2 fwd";
    case 5: nb_max_pool2d_forward(ctx, fp, &b->p2, b->y2, b->q2, b->am2); return "pool2 fwd";
    case 6: nb_gemm_run(ctx, 0, 1, N, 128, 3136, 1.0f, b->q2, 3136, b->fw1, 3136, 0.0f, b->h, 128); return "fc1 fwd";
    case 7: nb_gemm_run(ctx, 0, 1, N, 10, 128, 1.0f, b->h, 128, b->fw2, 128, 0.0f, b->o, 10); return "fc2 fwd";
    case 8: nb_gemm_run(ctx, 1, 0, 10, 128, N, 1.0f, b->o, 10, b->h, 128, 0.0f, b->dfw2, 128); return "fc2 dW";
    case 9: nb_gemm_run(ctx, 0, 0, N, 128, 10, 1.0f, b->o, 10, b->fw2, 128, 0.0f, b->h, 128); return "fc2 dX";
    case 10: nb_gemm_run(ctx, 1, 0, 128, 3136, N, 1.0f, b->h, 128, b->q2, 3136, 0.0f, b->dfw1, 3136); return "fc1 dW";
    case 11: nb_gemm_run(ctx, 0, 0, N, 3136, 128, 1.0f, b->h, 128, b->fw1, 3136, 0.0f, b->flat, 3136); return "fc1 dX";
    case 12: nb_max_pool2d_backward(ctx, fp, &b->p2, b->flat, b->am2, 0.0f, b->y2); return "pool2 bwd";
    case 13: nb_batch_norm_backward(ctx, fp, &b->b2, b->y2, b->y2, b->gm, b->mu, b->is, 1, 0.0f, b->y2, 0.0f, b->dw2, b->dw2 + 64); return "bn2 bwd";
    case 14: nb_conv2d_backward(ctx, fp, &b->c2, b->q1, b->y2, b->w2, 0.0f, b->dq1, 0.0f, b->dw2, 0.0f, NULL, b->ws); return "conv2 bwd data+weights";
    case 15: nb_max_pool2d_backward(ctx, fp, &b->p1, b->dq1, b->am1, 0.0f, b->y1); return "pool1 bwd";
    case 16: nb_batch_norm_backward(ctx, fp, &b->b1, b->y1, b->y1, b->gm, b->mu, b->is, 1, 0.0f, b->y1, 0.0f, b->dw1, b->dw1 + 32); return "bn1 bwd";
    default: nb_conv2d_backward_weights(ctx, fp, &b->c1, b->x, b->y1, 0.0f, b->dw1, 0.0f, NULL, b->ws); return "conv1 bwd weights";
    }
}

static double time_ms(nb_gemm *ctx, step_buffers *b, int k, int repeats, const char **name)
{
    double t[64];
    repeats = repeats < 1 ? 1 : repeats > 64 ? 64 : repeats;
    /* one thread: the calling thread's CPU time (see cpu_now); more: wall time */
    clockid_t clock = nb_gemm_threads(ctx) == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
    for (int r = -2; r < repeats; r++) {
        double t0 = cpu_now(clock);
        *name = kernel(ctx, b, k);
        if (r >= 0)
            t[r] = (cpu_now(clock) - t0) * 1e3;
    }
    return median(t, repeats);
}

/* The machine's convolution roofline: conv2's forward as one oneDNN primitive on one thread
 * with the layouts it prefers (format "any": blocked nChw8c on AVX2), the reorders to and
 * from them left out; median ms on the calling thread's CPU clock. 0 without oneDNN.
 * *with_reorders_ms: the same with the reorders a blocked path inside nabla would add (x and
 * w from plain NCHW / OIHW, y back to NCHW), to tell whether that path would pay. */
static double onednn_alone_ms(const nb_conv_shape *c, int repeats, double *with_reorders_ms)
{
#ifdef NB_HAVE_ONEDNN
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_memory_desc_t src, wei, dst;
    dnnl_dims_t sd = {c->N, c->C, c->H, c->W}, wd = {c->K, c->C, c->R, c->S};
    dnnl_dims_t dd = {c->N, c->K, c->P, c->Q}, st = {1, 1}, dl = {0, 0}, pd = {1, 1};
    dnnl_convolution_desc_t desc;
    dnnl_primitive_desc_t prim_desc;
    dnnl_primitive_t prim;
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) || dnnl_stream_create(&stream, engine, 0))
        return 0.0;
    dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wei, 4, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_format_tag_any);
    if (dnnl_dilated_convolution_forward_desc_init(&desc, dnnl_forward_training,
                                                   dnnl_convolution_direct, &src, &wei, NULL,
                                                   &dst, st, dl, pd, pd) ||
        dnnl_primitive_desc_create(&prim_desc, &desc, NULL, engine, NULL) ||
        dnnl_primitive_create(&prim, prim_desc))
        return 0.0;
    const int which[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    const dnnl_query_t query[3] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md};
    dnnl_exec_arg_t args[3];
    for (int i = 0; i < 3; i++) {
        args[i].arg = which[i];
        dnnl_memory_create(&args[i].memory, dnnl_primitive_desc_query_md(prim_desc, query[i], 0),
                           engine, DNNL_MEMORY_ALLOCATE);
    }
    /* plain twins of the three and the reorders between them: x, w in; y out */
    dnnl_memory_desc_t plain[3];
    dnnl_memory_desc_init_by_tag(&plain[0], 4, sd, dnnl_f32, dnnl_nchw);
    dnnl_memory_desc_init_by_tag(&plain[1], 4, wd, dnnl_f32, dnnl_oihw);
    dnnl_memory_desc_init_by_tag(&plain[2], 4, dd, dnnl_f32, dnnl_nchw);
    dnnl_memory_t flat[3];
    dnnl_primitive_t reorder[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        dnnl_primitive_desc_t rd;
        const dnnl_memory_desc_t *blocked = dnnl_primitive_desc_query_md(prim_desc, query[i], 0);
        dnnl_memory_create(&flat[i], &plain[i], engine, DNNL_MEMORY_ALLOCATE);
        if (i < 2 ? dnnl_reorder_primitive_desc_create(&rd, &plain[i], engine, blocked, engine, NULL)
                  : dnnl_reorder_primitive_desc_create(&rd, blocked, engine, &plain[i], engine, NULL))
            continue;
        dnnl_primitive_create(&reorder[i], rd);
        dnnl_primitive_desc_destroy(rd);
    }
    double t[64], tr[64];
    repeats = repeats < 1 ? 1 : repeats > 64 ? 64 : repeats;
    for (int r = -2; r < repeats; r++) {
        double t0 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
        dnnl_primitive_execute(prim, stream, 3, args);
        dnnl_stream_wait(stream);
        double t1 = cpu_now(CLOCK_THREAD_CPUTIME_ID);
        for (int i = 0; i < 3; i++) {
            dnnl_exec_arg_t io[2] = {{DNNL_ARG_FROM, i < 2 ? flat[i] : args[i].memory},
                                     {DNNL_ARG_TO, i < 2 ? args[i].memory : flat[i]}};
            if (i == 2)
                dnnl_primitive_execute(prim, stream, 3, args);
            if (reorder[i])
                dnnl_primitive_execute(reorder[i], stream, 2, io);
        }
        dnnl_stream_wait(stream);
        if (r >= 0)
            t[r] = (t1 - t0) * 1e3, tr[r] = (cpu_now(CLOCK_THREAD_CPUTIME_ID) - t1) * 1e3;
    }
    *with_reorders_ms = median(tr, repeats);
    for (int i = 0; i < 3; i++) {
        if (reorder[i])
            dnnl_primitive_destroy(reorder[i]);
        dnnl_memory_destroy(flat[i]);
        dnnl_memory_destroy(args[i].memory);
    }
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(prim_desc);
    dnnl_stream_destroy(stream);
    dnnl_engine_destroy(engine);
    return median(t, repeats);
#else
    (void)c, (void)repeats;
    *with_reorders_ms = 0.0;
    return 0.0;
#endif
}

static void run_kernels(const options *o, nb_gemm *gemm)
{
    step_buffers b = {.N = o->batch ? o->batch : 128};
    int64_t N = b.N;
    b.c1 = conv_shape(N, 1, 28, 32, 3, 1, 1), b.c2 = conv_shape(N, 32, 14, 64, 3, 1, 1);
    b.p1 = conv_shape(N, 32, 28, 32, 2, 2, 0), b.p2 = conv_shape(N, 64, 14, 64, 2, 2, 0);
    b.b1 = (nb_bn_shape){N, 32, 784}, b.b2 = (nb_bn_shape){N, 64, 196};
    size_t ws1 = nb_conv2d_workspace(gemm, &b.c1, NB_PRECISION_FP32);
    size_t ws2 = nb_conv2d_workspace(gemm, &b.c2, NB_PRECISION_FP32);
    b.ws = buffer(ws1 > ws2 ? ws1 : ws2);
    b.x = buffer((size_t)N * 784), b.y1 = buffer((size_t)N * 32 * 784);
    b.w1 = buffer(32 * 9), b.dw1 = buffer(32 * 9), b.w2 = buffer(64 * 32 * 9);
    b.dw2 = buffer(64 * 32 * 9), b.y2 = buffer((size_t)N * 64 * 196);
    b.q1 = buffer((size_t)N * 32 * 196), b.dq1 = buffer((size_t)N * 32 * 196);
    b.q2 = buffer((size_t)N * 3136), b.flat = buffer((size_t)N * 3136);
    b.gm = buffer(64), b.bt = buffer(64), b.mu = buffer(64), b.is = buffer(64), b.va = buffer(64);
    b.fw1 = buffer(128 * 3136), b.dfw1 = buffer(128 * 3136), b.h = buffer((size_t)N * 128);
    b.fw2 = buffer(10 * 128), b.dfw2 = buffer(10 * 128), b.o = buffer((size_t)N * 10);
    b.am1 = calloc((size_t)N * 32 * 196, sizeof *b.am1);
    b.am2 = calloc((size_t)N * 3136, sizeof *b.am2);
    int repeats = o->repeats ? o->repeats : 9;
    timed t[KERNELS];
    double sum = 0.0;
    for (int k = 0; k < KERNELS; k++) {
        t[k].ms = time_ms(gemm, &b, k, repeats, &t[k].name);
        sum += t[k].ms;
    }
    /* conv FLOPs of a training step: forward and weights of both, data of conv2 only (the
     * input needs no gradient) */
    double f1 = 2.0 * N * 32 * 9 * 784, f2 = 2.0 * N * 64 * 32 * 9 * 196;
    double conv2_gflops = f2 / (t[3].ms * 1e-3) * 1e-9;
    double reordered_ms = 0.0, alone_ms = onednn_alone_ms(&b.c2, repeats, &reordered_ms);
    double roofline = alone_ms > 0.0 ? f2 / (alone_ms * 1e-3) * 1e-9 : 0.0;
    printf("{\"mode\": \"kernels\", \"batch\": %lld, ", (long long)N);
    print_common(o, gemm);
    printf(", \"kernels_ms\": {");
    for (int k = 0; k < KERNELS; k++)
        printf("%s\"%s\": %.4f", k ? ", " : "", t[k].name, t[k].ms);
    printf("}, \"sum_ms\": %.4f, \"conv_flops_per_step\": %.0f, \"conv2_fwd_gflops\": %.2f, "
           "\"roofline_layer\": \"conv2 fwd\", \"roofline_gflops_per_thread\": %.2f, "
           "\"conv2_fwd_blocked_ms\": %.4f, \"conv2_fwd_blocked_with_reorders_ms\": %.4f, "
           "\"clock\": \"%s\", \"peak_rss_kb\": %ld}\n",
           sum, 2 * f1 + 3 * f2, conv2_gflops, roofline, alone_ms, reordered_ms, o->threads == 1 ? "thread cpu" : "wall",
           peak_rss_kb());
    float *all[] = {b.ws, b.x, b.y1, b.w1, b.dw1, b.w2, b.dw2, b.y2, b.q1, b.dq1, b.q2,
                    b.flat, b.gm, b.bt, b.mu, b.is, b.va, b.fw1, b.dfw1, b.h, b.fw2,
                    b.dfw2, b.o};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    free(b.am1), free(b.am2);
}

int main(int argc, char **argv)
{
    options o;
    parse(&o, argc, argv);
    nb_error err = {0};
    if (o.threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = cores > 0 ? (int)cores : 1;
    }
    int backend = o.gemm ? nb_gemm_backend_parse(o.gemm) : NB_GEMM_AUTO;
    if (backend < 0)
        die("unknown --gemm backend", NULL);
    nb_gemm *gemm = nb_gemm_new((nb_gemm_backend)backend, o.threads, &err);
    if (!gemm)
        die("gemm", &err);
    if (!strcmp(o.mode, "prepare"))
        run_prepare(&o, gemm);
    else if (!strcmp(o.mode, "train"))
        run_train(&o, gemm);
    else if (!strcmp(o.mode, "infer"))
        run_infer(&o, gemm);
    else if (!strcmp(o.mode, "kernels"))
        run_kernels(&o, gemm);
    else
        die("unknown mode (prepare, train, infer, kernels)", NULL);
    nb_gemm_free(gemm);
    return 0;
}
