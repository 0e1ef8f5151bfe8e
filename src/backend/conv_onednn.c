/* The oneDNN image kernels (conv.h): 2-D convolution forward, backward-data and
 * backward-weights (+ bias) as oneDNN convolution primitives, fp32. The caller's tensors are
 * plain NCHW / OIHW (GOIHW when grouped). With ≥ 8 channels per group in and out, all three
 * run in the blocked layouts oneDNN prefers (nChw8c activations, OIhw8i8o-like weights on
 * AVX2): the inputs reordered in and the output out by cached reorder primitives into
 * buffers owned by the cache entry (prim_build has the measurements); with fewer, on the
 * plain arrays directly.
 * Pooling and batch norm are left NULL: the portable loops serve them (oneDNN's max pooling
 * keeps its arg-max in a private workspace format, not conv.h's flat h·W + w indices).
 *
 * The table's entries: each fills a job (conv_onednn.h) and runs it across the context's
 * threads (conv_onednn_run.c), on primitives cached per thread (conv_onednn_cache.c); where the
 * job fails they run the portable kernel instead. What follows oneDNN's calls is here:
 *   backward data    dx = beta·dx + ws when beta ≠ 0 (oneDNN's backward data overwrites)
 *   backward weights dw = beta·dw + Σ_t part_t in task order, so the result depends only on
 *                    the task count (as conv_portable.c); the bias gradient likewise.
 *
 * Workspace: the portable kernel's (the fallback), or N·C·H·W for backward data with beta ≠ 0,
 * or tasks · (K·C/groups·R·S + K) for the partial weight gradients, whichever is largest. */
#include "backend/conv_onednn.h"
#include "backend/gemm_pool.h"

#ifdef NB_HAVE_ONEDNN

/* ---- the kernels -------------------------------------------------------------------------- */

static int supports(const nb_gemm *ctx, nb_precision p)
{
    (void)p; /* bf16 runs these in fp32 (conv.h) */
    return nb_gemm_backend_of(ctx) == NB_GEMM_ONEDNN;
}

static size_t workspace(const nb_gemm *ctx, const nb_conv_shape *s)
{
    size_t most = nb_conv_portable.conv2d_workspace(ctx, s);
    size_t dx = (size_t)(s->N * s->C * s->H * s->W);
    size_t parts = (size_t)nb_onednn_conv_tasks(ctx, s) *
                   (size_t)(s->K * (s->C / s->groups) * s->R * s->S + s->K);
    most = dx > most ? dx : most;
    return dx + parts > most ? dx + parts : most; /* backward_both: dx's, then the partials */
}

static void forward(nb_gemm *ctx, const nb_conv_shape *s, const float *x, const float *w,
                    const float *bias, float *y, float *ws)
{
    job j = {.ctx = ctx, .s = s, .kind = bias ? KIND_FWD_BIAS : KIND_FWD,
             .in = {x, w, bias}, .out = {y}};
    if (!nb_onednn_conv_run(&j))
        nb_conv_portable.conv2d_forward(ctx, s, x, w, bias, y, ws);
}

typedef struct add_job {
    float beta, *dst;
    const float *parts;
    int64_t stride; /* between partials */
    int count;      /* partials added */
} add_job;

/* dst = beta·dst + Σ_t parts[t·stride + i] over [first, last), t in order */
static void add_range(void *arg, int64_t first, int64_t last, int task)
{
    (void)task;
    const add_job *a = arg;
    for (int64_t i = first; i < last; i++) {
        float v = a->beta == 0.0f ? 0.0f : a->beta * a->dst[i];
        for (int t = 0; t < a->count; t++)
            v += a->parts[t * a->stride + i];
        a->dst[i] = v;
    }
}

/* dw = beta·dw + Σ_t parts_t (and dbias likewise), t in task order */
static void add_partials(nb_gemm *ctx, const nb_conv_shape *s, int tasks, const float *parts,
                         float beta, float *dw, float bias_beta, float *dbias)
{
    int64_t dw_n = s->K * (s->C / s->groups) * s->R * s->S;
    add_job a = {.beta = beta, .dst = dw, .parts = parts, .stride = dw_n + s->K, .count = tasks};
    nb_parallel_for(ctx, dw_n, 4096, 64, 0, add_range, &a);
    if (dbias) {
        add_job b = {.beta = bias_beta, .dst = dbias, .parts = parts + dw_n,
                     .stride = dw_n + s->K, .count = tasks};
        add_range(&b, 0, s->K, 0);
    }
}

static void backward_data(nb_gemm *ctx, const nb_conv_shape *s, const float *dy,
                          const float *w, float beta, float *dx, float *ws)
{
    /* oneDNN's backward data overwrites: with beta ≠ 0 it writes ws, added afterwards */
    job j = {.ctx = ctx, .s = s, .kind = KIND_BWD_DATA, .in = {dy, w},
             .out = {beta == 0.0f ? dx : ws}};
    if (!nb_onednn_conv_run(&j)) {
        nb_conv_portable.conv2d_backward_data(ctx, s, dy, w, beta, dx, ws);
        return;
    }
    if (beta != 0.0f) {
        add_job a = {.beta = beta, .dst = dx, .parts = ws, .stride = 0, .count = 1};
        nb_parallel_for(ctx, s->N * s->C * s->H * s->W, 4096, 64, 0, add_range, &a);
    }
}

static void backward_weights(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                             const float *dy, float beta, float *dw, float bias_beta,
                             float *dbias, float *ws)
{
    job j = {.ctx = ctx, .s = s, .kind = dbias ? KIND_BWD_WEIGHTS_BIAS : KIND_BWD_WEIGHTS,
             .in = {x, dy}, .out = {ws}};
    if (!dw || !nb_onednn_conv_run(&j)) {
        nb_conv_portable.conv2d_backward_weights(ctx, s, x, dy, beta, dw, bias_beta, dbias, ws);
        return;
    }
    add_partials(ctx, s, j.tasks, ws, beta, dw, bias_beta, dbias);
}

/* conv.h's backward data and weights of one call: as the two above, with dy reordered into
 * the blocked layout once for both primitives (each block of samples runs both on one
 * thread). Measured: README's "The CNN benchmark". */
static void backward_both(nb_gemm *ctx, const nb_conv_shape *s, const float *x, const float *dy,
                          const float *w, float dx_beta, float *dx, float beta, float *dw,
                          float bias_beta, float *dbias, float *ws)
{
    float *parts = ws + (dx_beta == 0.0f ? 0 : s->N * s->C * s->H * s->W);
    job j = {.ctx = ctx, .s = s, .kind = KIND_BWD_BOTH, .in = {x, dy, w},
             .out = {dx_beta == 0.0f ? dx : ws, parts, dbias}};
    if (!dw || !nb_onednn_conv_run(&j)) {
        backward_data(ctx, s, dy, w, dx_beta, dx, ws);
        backward_weights(ctx, s, x, dy, beta, dw, bias_beta, dbias, ws);
        return;
    }
    if (dx_beta != 0.0f) {
        add_job a = {.beta = dx_beta, .dst = dx, .parts = ws, .stride = 0, .count = 1};
        nb_parallel_for(ctx, s->N * s->C * s->H * s->W, 4096, 64, 0, add_range, &a);
    }
    add_partials(ctx, s, j.tasks, parts, beta, dw, bias_beta, dbias);
}

const nb_conv_kernels nb_conv_onednn = {
    .name = "onednn",
    .supports = supports,
    .conv2d_workspace = workspace,
    .conv2d_forward = forward,
    .conv2d_backward_data = backward_data,
    .conv2d_backward_weights = backward_weights,
    .conv2d_backward = backward_both,
};

#endif
