/* The memory plan for inference (nb_graph_prepare_inference, src/core/plan_inference.c):
 * its outputs bit for bit those of the training plan — a small CNN of every image module at
 * batches 1, 3 (not a multiple of the 2 threads), 7 and 16, in evaluation and in training
 * mode; hand-made DAGs where a value is still needed after a module that could have written
 * over it; 300 random DAGs of point-wise modules, Linear layers, fan-out and skip
 * connections — and that it does reuse memory, refuses backward, and leaves the graph free to
 * be planned for training again. A deliberately unsafe in-place module shows that the
 * comparison catches a plan that overwrites a value too early. */
#include "check.h"
#include "core/graph.h"
#include "nabla.h"

#include <stdlib.h>
#include <string.h>

static nb_gemm *gemm;

static void fill(float *v, int64_t n, nb_rng *rng)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = 2.0f * nb_rng_uniform(rng) - 1.0f;
}

/* The same parameters and buffers (batch norm's running statistics: variances > 0) in both. */
static void same_params(nb_graph *a, nb_graph *b, uint64_t seed)
{
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_graph_init_params(a, NB_INIT_TORCH, &rng);
    if (nb_graph_param_floats(a)) /* (NULL when there are none) */
        memcpy(nb_graph_params(b), nb_graph_params(a),
               nb_graph_param_floats(a) * sizeof(float));
    nb_graph_params_changed(b);
    for (size_t i = 0; i < nb_graph_buffer_floats(a); i++)
        nb_graph_buffers(a)[i] = 0.2f + nb_rng_uniform(&rng);
    if (nb_graph_buffer_floats(a)) /* (NULL when there are none) */
        memcpy(nb_graph_buffers(b), nb_graph_buffers(a),
               nb_graph_buffer_floats(a) * sizeof(float));
}

static int same_bits(nb_graph *a, nb_graph *b, int node, int64_t batch)
{
    const float *va = nb_value(a, node), *vb = nb_value(b, node);
    int64_t n = (nb_node_is_batched(a, node) ? batch : 1) * nb_node_size(a, node);
    return va && vb && memcmp(va, vb, (size_t)n * sizeof *va) == 0;
}

/* ---- a CNN ---------------------------------------------------------------------------------- */

typedef struct cnn {
    int x, y, relu1, out, loss;
} cnn;

/* conv 3×3 (1→8) → BN → ReLU → max-pool 2 → conv 3×3 (8→8, oneDNN's blocked path) → BN →
 * ReLU → max-pool 2 → flatten → linear 16 → ReLU → dropout → linear 5 → cross-entropy */
static cnn build_cnn(nb_graph *g)
{
    cnn c;
    int64_t dims[3] = {1, 12, 12};
    nb_conv2d_options co;
    nb_conv2d_options_default(&co, 3);
    co.pad_h = co.pad_w = 1;
    nb_pool2d_options po;
    nb_pool2d_options_default(&po, 2);
    c.x = nb_input(g, "x", 3, dims);
    c.y = nb_labels(g, "y");
    int h = nb_batch_norm(g, "bn1", nb_conv2d(g, "conv1", c.x, 8, &co), 0.1f, 1e-5f);
    c.relu1 = nb_relu(g, "relu1", h);
    h = nb_max_pool2d(g, "pool1", c.relu1, &po);
    h = nb_relu(g, "relu2", nb_batch_norm(g, "bn2", nb_conv2d(g, "conv2", h, 8, &co), 0.1f, 1e-5f));
    h = nb_flatten(g, "flat", nb_max_pool2d(g, "pool2", h, &po));
    h = nb_dropout(g, "drop", nb_relu(g, "relu3", nb_linear(g, "fc1", h, 16, 1)), 0.5f);
    c.out = nb_linear(g, "fc2", h, 5, 1);
    c.loss = nb_cross_entropy(g, "loss", c.out, c.y);
    return c;
}

static void fill_batch(nb_graph *a, nb_graph *b, const cnn *c, int64_t batch, nb_rng *rng)
{
    fill(nb_value(a, c->x), batch * 144, rng);
    memcpy(nb_value(b, c->x), nb_value(a, c->x), (size_t)(batch * 144) * sizeof(float));
    for (int64_t i = 0; i < batch; i++)
        nb_labels_data(a, c->y)[i] = nb_labels_data(b, c->y)[i] = (int32_t)nb_rng_below(rng, 5);
}

static void cnn_matches(int training)
{
    nb_error err = {0};
    nb_graph *ref = nb_graph_new(7, gemm), *inf = nb_graph_new(7, gemm);
    cnn c = build_cnn(ref);
    build_cnn(inf);
    CHECK_OK(nb_graph_error(ref, &err), &err);
    CHECK_OK(nb_graph_error(inf, &err), &err);
    same_params(ref, inf, 3);
    nb_graph_set_training(ref, training);
    nb_graph_set_training(inf, training);
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    const int64_t batches[] = {16, 1, 3, 7};
    const int keep[2] = {c.out, c.loss};
    for (int b = 0; b < 4; b++) {
        int64_t N = batches[b];
        CHECK_OK(nb_graph_prepare(ref, N, &err), &err);
        CHECK_OK(nb_graph_prepare_inference(inf, N, keep, 2, &err), &err);
        CHECK(nb_graph_inference(inf) && !nb_graph_inference(ref));
        for (int pass = 0; pass < 2; pass++) { /* a second pass on the same plan and inputs */
            if (pass == 0)
                fill_batch(ref, inf, &c, N, &rng);
            CHECK_OK(nb_graph_forward(ref, &err), &err);
            CHECK_OK(nb_graph_forward(inf, &err), &err);
            CHECK_MSG(same_bits(ref, inf, c.out, N) && same_bits(ref, inf, c.loss, N),
                      "%s mode, batch %lld, pass %d: the outputs differ",
                      training ? "training" : "evaluation", (long long)N, pass);
            CHECK(memcmp(nb_graph_buffers(ref), nb_graph_buffers(inf),
                         nb_graph_buffer_floats(ref) * sizeof(float)) == 0);
        }
        /* the memory is reused: at most a third of the training plan's */
        if (b == 0) {
            CHECK_MSG(3 * inf->arena_floats <= ref->arena_floats,
                      "inference plan %zu floats, training plan %zu", inf->arena_floats,
                      ref->arena_floats);
            CHECK(inf->grad_arena_floats == 0);
        }
        /* the output alone, on its own plan (in evaluation mode: in training mode the
         * draws and the statistics would move on in one graph only) */
        if (!training) {
            CHECK_OK(nb_graph_prepare_inference(inf, N, &c.out, 1, &err), &err);
            CHECK_OK(nb_graph_forward_to(inf, c.out, &err), &err);
            CHECK(same_bits(ref, inf, c.out, N));
            CHECK(nb_value(inf, c.loss) == NULL);
        }
    }
    nb_graph_free(ref);
    nb_graph_free(inf);
}

/* What an inference plan refuses, and the way back to training. */
static void cnn_plan_switch(void)
{
    nb_error err = {0};
    nb_graph *ref = nb_graph_new(7, gemm), *g = nb_graph_new(7, gemm);
    cnn c = build_cnn(ref);
    build_cnn(g);
    same_params(ref, g, 5);
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    CHECK_OK(nb_graph_prepare_inference(g, 5, &c.out, 1, &err), &err);
    CHECK_OK(nb_graph_prepare(ref, 5, &err), &err);
    fill_batch(ref, g, &c, 5, &rng);
    CHECK_OK(nb_graph_forward(g, &err), &err);
    CHECK(nb_value(g, c.relu1) == NULL && nb_grad(g, c.out) == NULL);
    CHECK(nb_value(g, c.x) != NULL && nb_value(g, c.out) != NULL);
    CHECK(nb_graph_forward_to(g, c.loss, &err) == NB_EINVAL && strstr(err.msg, "'loss'"));
    CHECK(nb_graph_backward(g, c.out, NULL, &err) == NB_EINVAL && strstr(err.msg, "inference"));
    CHECK(nb_graph_prepare_inference(g, 5, NULL, 0, &err) == NB_EINVAL);
    int bad = 999;
    CHECK(nb_graph_prepare_inference(g, 5, &bad, 1, &err) == NB_EINVAL);
    /* planned for training again: the same gradients as a graph that never was */
    CHECK_OK(nb_graph_prepare(g, 5, &err), &err);
    CHECK(!nb_graph_inference(g));
    fill_batch(ref, g, &c, 5, &rng);
    nb_graph_set_training(ref, 1);
    nb_graph_set_training(g, 1);
    for (int k = 0; k < 2; k++) {
        nb_graph *h = k ? g : ref;
        nb_graph_zero_grad(h);
        CHECK_OK(nb_graph_forward(h, &err), &err);
        CHECK_OK(nb_graph_backward(h, c.loss, NULL, &err), &err);
    }
    CHECK(memcmp(nb_graph_param_grads(ref), nb_graph_param_grads(g),
                 nb_graph_param_floats(g) * sizeof(float)) == 0);
    CHECK(same_bits(ref, g, c.relu1, 5));
    nb_graph_free(ref);
    nb_graph_free(g);
}

/* ---- DAGs where a value is needed after a module that could overwrite it ------------------ */

/* x → p = linear(x) → q = relu(p) → r = q + p: the ReLU may not write over p, which the Add
 * still reads; and with p an output, nothing may. */
static void still_needed(void)
{
    nb_error err = {0};
    int64_t F = 6;
    int keeps[2][2], nkeep[2] = {1, 2}, x = -1, p = -1, r = -1;
    nb_graph *gs[2];
    for (int k = 0; k < 2; k++) {
        nb_graph *g = gs[k] = nb_graph_new(1, gemm);
        x = nb_input(g, "x", 1, &F);
        p = nb_linear(g, "p", x, F, 1);
        r = nb_add(g, "r", nb_relu(g, "q", p), p);
        r = nb_tanh(g, "s", nb_mul(g, "m", r, p)); /* p read once more, later */
    }
    keeps[0][0] = r, keeps[1][0] = r, keeps[1][1] = p;
    same_params(gs[0], gs[1], 9);
    nb_rng rng;
    nb_rng_seed(&rng, 4);
    for (int v = 0; v < 2; v++) {
        CHECK_OK(nb_graph_prepare(gs[0], 4, &err), &err);
        CHECK_OK(nb_graph_prepare_inference(gs[1], 4, keeps[v], nkeep[v], &err), &err);
        fill(nb_value(gs[0], x), 4 * F, &rng);
        memcpy(nb_value(gs[1], x), nb_value(gs[0], x), (size_t)(4 * F) * sizeof(float));
        CHECK_OK(nb_graph_forward(gs[0], &err), &err);
        CHECK_OK(nb_graph_forward(gs[1], &err), &err);
        CHECK(same_bits(gs[0], gs[1], r, 4));
        if (v)
            CHECK(same_bits(gs[0], gs[1], p, 4));
    }
    nb_graph_free(gs[0]);
    nb_graph_free(gs[1]);
}

/* y[i] = x[i − 1] (y[0] = x[0]), upwards: each output reads its neighbour, which an
 * in-place run has just overwritten — declared in place all the same, so a plan that takes
 * it at its word must come out wrong. */
static void shift_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const float *x = nb_in(g, n, 0)->value;
    for (int64_t i = 0, e = nb_node_elems(n, N); i < e; i++)
        n->value[i] = x[i > 0 ? i - 1 : 0];
}

static void unsafe_in_place_is_caught(void)
{
    static nb_op_def shift;
    shift = nb_op_scale_def;
    shift.name = "shift";
    shift.forward = shift_forward;
    shift.in_place = 1;
    nb_error err = {0};
    int64_t F = 8;
    nb_graph *gs[2];
    int x = -1, y = -1;
    for (int k = 0; k < 2; k++) {
        nb_graph *g = gs[k] = nb_graph_new(1, gemm);
        x = nb_input(g, "x", 1, &F);
        int s = nb_scale(g, "shift", nb_tanh(g, "t", x), 1.0f);
        g->nodes[s].def = &shift;
        y = nb_sigmoid(g, "y", s);
    }
    CHECK_OK(nb_graph_prepare(gs[0], 3, &err), &err);
    CHECK_OK(nb_graph_prepare_inference(gs[1], 3, &y, 1, &err), &err);
    nb_rng rng;
    nb_rng_seed(&rng, 8);
    fill(nb_value(gs[0], x), 3 * F, &rng);
    memcpy(nb_value(gs[1], x), nb_value(gs[0], x), (size_t)(3 * F) * sizeof(float));
    CHECK_OK(nb_graph_forward(gs[0], &err), &err);
    CHECK_OK(nb_graph_forward(gs[1], &err), &err);
    CHECK_MSG(!same_bits(gs[0], gs[1], y, 3), "an unsafe in-place module went unnoticed");
    nb_graph_free(gs[0]);
    nb_graph_free(gs[1]);
}

/* ---- random DAGs ------------------------------------------------------------------------------ */

enum { MAX_NODES = 24 };

/* Builds the same random DAG from `seed` into g: point-wise modules, Linear layers (with ReLU
 * after them, fused or not), softmax, dropout, reshape, binary modules on any two earlier
 * values (fan-out, skip connections). Outputs: the last node and some others. */
static int build_random(nb_graph *g, uint64_t seed, int *x, int *outputs)
{
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    int64_t F = 1 + nb_rng_below(&rng, 9);
    int pool[MAX_NODES], count = 0, n_out = 0;
    pool[count++] = *x = nb_input(g, "x", 1, &F);
    int steps = 2 + (int)nb_rng_below(&rng, 14);
    for (int s = 0; s < steps; s++) {
        char name[16];
        snprintf(name, sizeof name, "n%d", s);
        /* mostly a recent value, sometimes any earlier one */
        int a = pool[nb_rng_below(&rng, 3) ? count - 1 - (int)nb_rng_below(&rng, count < 3 ? count : 3)
                                           : (int)nb_rng_below(&rng, count)];
        int b = pool[nb_rng_below(&rng, count)], id;
        switch (nb_rng_below(&rng, 13)) {
        case 0: id = nb_relu(g, name, a); break;
        case 1: id = nb_tanh(g, name, a); break;
        case 2: id = nb_sigmoid(g, name, a); break;
        case 3: id = nb_gelu(g, name, a); break;
        case 4: id = nb_leaky_relu(g, name, a, 0.1f); break;
        case 5: id = nb_scale(g, name, a, -1.5f); break;
        case 6: id = nb_dropout(g, name, a, 0.3f); break;
        case 7: id = nb_flatten(g, name, a); break;
        case 8: id = nb_add(g, name, a, b); break;
        case 9: id = nb_mul(g, name, a, b); break;
        case 10: id = nb_max(g, name, a, b); break;
        case 11: id = nb_softmax(g, name, a); break;
        default: id = nb_linear(g, name, a, F, 1); break;
        }
        pool[count++] = id;
        if (nb_rng_below(&rng, 5) == 0 && count > 2)
            outputs[n_out++] = id;
    }
    outputs[n_out++] = pool[count - 1];
    return n_out;
}

static void random_dags(void)
{
    int mismatches = 0;
    for (uint64_t trial = 0; trial < 300; trial++) {
        nb_error err = {0};
        nb_graph *ref = nb_graph_new(trial, gemm), *inf = nb_graph_new(trial, gemm);
        int x, outputs[2 * MAX_NODES], unused[2 * MAX_NODES];
        int n_out = build_random(ref, trial, &x, outputs);
        build_random(inf, trial, &x, unused);
        CHECK_OK(nb_graph_error(ref, &err), &err);
        CHECK_OK(nb_graph_error(inf, &err), &err);
        same_params(ref, inf, trial);
        /* in training mode dropout draws masks: the same in both graphs when both compute
         * the same nodes (a forward pass after nb_graph_prepare computes every node), so
         * there every node that nothing reads is an output too */
        int training = trial % 3 == 0;
        for (int i = 0; training && i < nb_graph_node_count(ref); i++) {
            int read = nb_op_is_leaf(nb_node_op(ref, i)), listed = 0;
            for (int j = i + 1; !read && j < nb_graph_node_count(ref); j++)
                for (int k = 0; k < nb_node_input_count(ref, j); k++)
                    read |= nb_node_input(ref, j, k) == i;
            for (int o = 0; o < n_out; o++)
                listed |= outputs[o] == i;
            if (!read && !listed)
                outputs[n_out++] = i;
        }
        nb_graph_set_training(ref, training);
        nb_graph_set_training(inf, training);
        int64_t N = 1 + (int64_t)(trial % 5);
        CHECK_OK(nb_graph_prepare(ref, N, &err), &err);
        CHECK_OK(nb_graph_prepare_inference(inf, N, outputs, n_out, &err), &err);
        nb_rng rng;
        nb_rng_seed(&rng, 1000 + trial);
        int64_t F = nb_node_size(ref, x);
        fill(nb_value(ref, x), N * F, &rng);
        memcpy(nb_value(inf, x), nb_value(ref, x), (size_t)(N * F) * sizeof(float));
        CHECK_OK(nb_graph_forward(ref, &err), &err);
        CHECK_OK(nb_graph_forward(inf, &err), &err);
        for (int o = 0; o < n_out; o++)
            if (!same_bits(ref, inf, outputs[o], N)) {
                mismatches++;
                CHECK_MSG(0, "random DAG %llu: output '%s' differs", (unsigned long long)trial,
                          nb_node_name(ref, outputs[o]));
            }
        nb_graph_free(ref);
        nb_graph_free(inf);
    }
    printf("300 random DAGs: %d outputs differ\n", mismatches);
}

int main(void)
{
    nb_error err = {0};
    gemm = nb_gemm_new(NB_GEMM_AUTO, 2, &err);
    CHECK_OK(gemm ? NB_OK : err.code, &err);
    if (!gemm)
        return check_finish("test_infer_plan");
    cnn_matches(0);
    cnn_matches(1);
    cnn_plan_switch();
    still_needed();
    unsafe_in_place_is_caught();
    random_dags();
    nb_gemm_free(gemm);
    return check_finish("test_infer_plan");
}
