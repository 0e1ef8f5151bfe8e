/* Training steps of a described CNN on data from files, for tests/torch_conv.py, which runs the
 * same steps through torch.nn.
 *
 *     tool_conv train MODEL DATA_DIR OUT_DIR BATCH STEPS sgd|adam LR MOMENTUM WEIGHT_DECAY
 *     tool_conv eval FILE.safetensors DATA_DIR OUT_DIR BATCH
 *
 * DATA_DIR holds raw little-endian arrays (numpy's tofile): x.bin float32 [STEPS·BATCH, C, H,
 * W], y.i32 int32 [STEPS·BATCH], and <param>.bin for every parameter of the model. Buffers
 * (batch norm's running statistics) start at PyTorch's values.
 *
 * train, in training mode (batch statistics), writes to OUT_DIR:
 *   output.bin, loss.bin          the logits and the loss of batch 0
 *   <param>.grad.bin, x.grad.bin  dC/d(param), dC/dx of batch 0 (from the initial weights)
 *   <buffer>.step0.bin            the buffers after batch 0's forward
 *   then, from the initial state again, STEPS optimiser steps on batches 0, 1, …:
 *   <param>.final.bin, <buffer>.final.bin, model.safetensors (nb_model_save), and
 *   eval.bin: the logits of batch 0 in evaluation mode (running statistics) after the steps.
 * eval loads a model file and writes eval.bin for batch 0.
 * SGD is torch.optim.SGD(momentum, weight_decay); Adam is torch.optim.Adam(weight_decay). */
#include "nabla.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int die(const char *what, const char *why)
{
    fprintf(stderr, "tool_conv: %s: %s\n", what, why);
    exit(1);
}

/* Reads the first `bytes` bytes of dir/name; the file must be exactly that long unless
 * `prefix` (eval reads batch 0 of the training batches). */
static void read_part(const char *dir, const char *name, void *dst, size_t bytes, int prefix)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, strerror(errno));
    if (fread(dst, 1, bytes, f) != bytes || (!prefix && fgetc(f) != EOF))
        die(path, "not the expected size");
    fclose(f);
}

static void read_file(const char *dir, const char *name, void *dst, size_t bytes)
{
    read_part(dir, name, dst, bytes, 0);
}

static void write_file(const char *dir, const char *name, const char *suffix, const void *src,
                       size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(src, 1, bytes, f) != bytes || fclose(f))
        die(path, "cannot write");
}

static void check(nb_status s, const nb_error *err)
{
    if (s)
        die("nabla", err->msg);
}

/* Loads batch b of x and y into the graph. */
static void load_batch(nb_model *m, const float *x, const int32_t *y, int64_t N, int64_t b)
{
    nb_graph *g = nb_model_graph(m);
    int64_t F = nb_model_features(m);
    memcpy(nb_value(g, nb_model_input(m)), x + b * N * F, (size_t)(N * F) * sizeof *x);
    memcpy(nb_labels_data(g, nb_model_labels(m)), y + b * N, (size_t)N * sizeof *y);
}

static nb_model *fresh(const char *desc, const char *data, int64_t N, nb_error *err)
{
    nb_model *m = nb_model_new(desc, "tool_conv", 1, NULL, err);
    if (!m)
        die("model", err->msg);
    nb_graph *g = nb_model_graph(m);
    nb_node_set_requires_grad(g, nb_model_input(m), 1);
    check(nb_graph_prepare(g, N, err), err);
    for (int i = 0; i < nb_graph_param_count(g); i++) {
        int p = nb_graph_param_node(g, i);
        char name[128];
        snprintf(name, sizeof name, "%s.bin", nb_node_name(g, p));
        read_file(data, name, nb_value(g, p), (size_t)nb_node_size(g, p) * sizeof(float));
    }
    nb_graph_set_training(g, 1);
    return m;
}

static void write_buffers(nb_graph *g, const char *out, const char *suffix)
{
    for (int i = 0; i < nb_graph_buffer_count(g); i++) {
        int b = nb_graph_buffer_node(g, i);
        write_file(out, nb_node_name(g, b), suffix, nb_value(g, b),
                   (size_t)nb_node_size(g, b) * sizeof(float));
    }
}

static void eval_batch0(nb_model *m, const float *x, const int32_t *y, int64_t N, const char *out)
{
    nb_graph *g = nb_model_graph(m);
    nb_error err = {0};
    nb_graph_set_training(g, 0);
    if (nb_graph_batch(g) != N)
        check(nb_graph_prepare(g, N, &err), &err);
    load_batch(m, x, y, N, 0);
    check(nb_graph_forward_to(g, nb_model_output(m), &err), &err);
    write_file(out, "eval", ".bin", nb_value(g, nb_model_output(m)),
               (size_t)(N * nb_model_classes(m)) * sizeof(float));
}

int main(int argc, char **argv)
{
    int train = argc == 11 && strcmp(argv[1], "train") == 0;
    if (!train && !(argc == 6 && strcmp(argv[1], "eval") == 0)) {
        fprintf(stderr, "usage: tool_conv train MODEL DATA OUT BATCH STEPS sgd|adam LR MOMENTUM "
                        "WD\n       tool_conv eval FILE DATA OUT BATCH\n");
        return 2;
    }
    const char *data = argv[3], *out = argv[4];
    int64_t N = atoll(argv[5]), steps = train ? atoll(argv[6]) : 1;
    mkdir(out, 0755);
    nb_error err = {0};
    if (!train) {
        nb_model *m = nb_model_load(argv[2], 1, NULL, &err);
        if (!m)
            die(argv[2], err.msg);
        int64_t F = nb_model_features(m);
        float *x = malloc((size_t)(N * F) * sizeof *x);
        int32_t *y = malloc((size_t)N * sizeof *y);
        read_part(data, "x.bin", x, (size_t)(N * F) * sizeof *x, 1);
        read_part(data, "y.i32", y, (size_t)N * sizeof *y, 1);
        eval_batch0(m, x, y, N, out);
        nb_model_free(m);
        free(x);
        free(y);
        return 0;
    }
    static char desc[1 << 16];
    FILE *f = fopen(argv[2], "rb");
    size_t len = f ? fread(desc, 1, sizeof desc - 1, f) : 0;
    if (!f || len == 0)
        die(argv[2], "cannot read");
    fclose(f);
    nb_model *m = fresh(desc, data, N, &err);
    nb_graph *g = nb_model_graph(m);
    int64_t F = nb_model_features(m), C = nb_model_classes(m);
    float *x = malloc((size_t)(steps * N * F) * sizeof *x);
    int32_t *y = malloc((size_t)(steps * N) * sizeof *y);
    read_file(data, "x.bin", x, (size_t)(steps * N * F) * sizeof *x);
    read_file(data, "y.i32", y, (size_t)(steps * N) * sizeof *y);

    /* batch 0: forward and backward from the initial weights */
    load_batch(m, x, y, N, 0);
    nb_graph_zero_grad(g);
    check(nb_graph_forward(g, &err), &err);
    check(nb_graph_backward(g, nb_model_loss(m), NULL, &err), &err);
    write_file(out, "output", ".bin", nb_value(g, nb_model_output(m)), (size_t)(N * C) * sizeof(float));
    write_file(out, "loss", ".bin", nb_value(g, nb_model_loss(m)), sizeof(float));
    write_file(out, "x", ".grad.bin", nb_grad(g, nb_model_input(m)), (size_t)(N * F) * sizeof(float));
    for (int i = 0; i < nb_graph_param_count(g); i++) {
        int p = nb_graph_param_node(g, i);
        write_file(out, nb_node_name(g, p), ".grad.bin", nb_grad(g, p),
                   (size_t)nb_node_size(g, p) * sizeof(float));
    }
    write_buffers(g, out, ".step0.bin");
    nb_model_free(m);

    /* the optimiser's steps, from the initial state again */
    m = fresh(desc, data, N, &err);
    g = nb_model_graph(m);
    nb_optim_config cfg;
    nb_optim_config_default(&cfg);
    cfg.kind = strcmp(argv[7], "adam") == 0 ? NB_OPT_ADAM : NB_OPT_SGD;
    float lr = strtof(argv[8], NULL);
    cfg.lr = lr;
    cfg.momentum = strtof(argv[9], NULL);
    cfg.weight_decay = strtof(argv[10], NULL);
    nb_optim *opt = nb_optim_new(&cfg, nb_graph_param_floats(g), &err);
    if (!opt)
        die("optimiser", err.msg);
    for (int64_t b = 0; b < steps; b++) {
        load_batch(m, x, y, N, b);
        nb_graph_zero_grad(g);
        check(nb_graph_forward(g, &err), &err);
        check(nb_graph_backward(g, nb_model_loss(m), NULL, &err), &err);
        nb_optim_step(opt, nb_graph_params(g), nb_graph_param_grads(g), lr);
    }
    for (int i = 0; i < nb_graph_param_count(g); i++) {
        int p = nb_graph_param_node(g, i);
        write_file(out, nb_node_name(g, p), ".final.bin", nb_value(g, p),
                   (size_t)nb_node_size(g, p) * sizeof(float));
    }
    write_buffers(g, out, ".final.bin");
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    check(nb_model_save(m, path, &err), &err);
    eval_batch0(m, x, y, N, out);
    nb_optim_free(opt);
    nb_model_free(m);
    free(x);
    free(y);
    return 0;
}
