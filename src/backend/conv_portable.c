/* The portable image kernels (conv.h), fp32: convolution as im2col + the backend's matrix
 * product (nb_gemm_run, itself oneDNN, OpenBLAS or portable C), and the table nb_conv_portable
 * (pooling in conv_portable_pool.c, batch norm in conv_portable_bn.c). Work is split across
 * the context's thread pool by samples; each thread runs its products single-threaded on its
 * own backend context and uses its own slice of the workspace. Results do not depend on which
 * thread runs which task: every sum has a fixed order for a given thread count.
 *
 * Convolution per sample n and group g (Cg = C/groups input channels, Kg = K/groups outputs),
 * with the unrolled input col = im2col(x[n], g)  [Cg·R·S, P·Q]:
 *   forward          Y[n,g]  (Kg×PQ)    = W[g] (Kg×CgRS) · col               + b
 *   backward data    dcol    (CgRS×PQ)  = W[g]ᵀ · dY[n,g],   dx[n] += col2im(dcol)
 *   backward weights dW[g]   (Kg×CgRS) += dY[n,g] · colᵀ,     db[k] += Σ_pq dY[n,k]
 * A 1×1 convolution with stride 1 and no padding needs no unrolling: col is x[n, g] itself. */
#include "backend/conv_portable.h"
#include "backend/gemm_pool.h"

#include <string.h>

/* ---- unrolling ---------------------------------------------------------------------------- */

/* The output columns q whose input column q·stride + off lies in [0, W): [*lo, *hi). */
static void valid_range(int64_t Q, int64_t W, int64_t stride, int64_t off, int64_t *lo,
                        int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = W - off <= 0 ? 0 : (W - off + stride - 1) / stride;
    *lo = a < Q ? a : Q;
    *hi = b < Q ? b : Q;
    if (*hi < *lo)
        *hi = *lo;
}

/* col[(c·R + r)·S + s, p·Q + q] = x[c, p·sh − ph + r·dh, q·sw − pw + s·dw] (0 outside), for the
 * Cg channels starting at x. */
static void im2col(const nb_conv_shape *s, int64_t Cg, const float *x, float *col)
{
    int64_t PQ = s->P * s->Q;
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t r = 0; r < s->R; r++)
            for (int64_t t = 0; t < s->S; t++) {
                float *row = col + ((c * s->R + r) * s->S + t) * PQ;
                int64_t off = t * s->dil_w - s->pad_w, lo, hi;
                valid_range(s->Q, s->W, s->stride_w, off, &lo, &hi);
                for (int64_t p = 0; p < s->P; p++) {
                    float *out = row + p * s->Q;
                    int64_t h = p * s->stride_h - s->pad_h + r * s->dil_h;
                    if (h < 0 || h >= s->H) {
                        memset(out, 0, (size_t)s->Q * sizeof *out);
                        continue;
                    }
                    const float *in = x + (c * s->H + h) * s->W + off;
                    for (int64_t q = 0; q < lo; q++)
                        out[q] = 0.0f;
                    if (s->stride_w == 1)
                        memcpy(out + lo, in + lo, (size_t)(hi - lo) * sizeof *out);
                    else
                        for (int64_t q = lo; q < hi; q++)
                            out[q] = in[q * s->stride_w];
                    for (int64_t q = hi; q < s->Q; q++)
                        out[q] = 0.0f;
                }
            }
}

/* The adjoint of im2col: dx[c, h, w] += dcol[...] for every entry that im2col read from
 * (c, h, w). */
static void col2im(const nb_conv_shape *s, int64_t Cg, const float *col, float *dx)
{
    int64_t PQ = s->P * s->Q;
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t r = 0; r < s->R; r++)
            for (int64_t t = 0; t < s->S; t++) {
                const float *row = col + ((c * s->R + r) * s->S + t) * PQ;
                int64_t off = t * s->dil_w - s->pad_w, lo, hi;
                valid_range(s->Q, s->W, s->stride_w, off, &lo, &hi);
                for (int64_t p = 0; p < s->P; p++) {
                    int64_t h = p * s->stride_h - s->pad_h + r * s->dil_h;
                    if (h < 0 || h >= s->H)
                        continue;
                    const float *in = row + p * s->Q;
                    float *out = dx + (c * s->H + h) * s->W + off;
                    for (int64_t q = lo; q < hi; q++)
                        out[q * s->stride_w] += in[q];
                }
            }
}

static int pointwise(const nb_conv_shape *s)
{
    return s->R == 1 && s->S == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0 &&
           s->pad_w == 0 && s->P == s->H && s->Q == s->W;
}

/* Workspace layout: `tasks` slices of one unrolled input (CgRS × PQ floats) each, then
 * `tasks` partial weight gradients (K × CgRS). */
static int64_t col_floats(const nb_conv_shape *s)
{
    return pointwise(s) ? 0 : (s->C / s->groups) * s->R * s->S * s->P * s->Q;
}

static int conv_tasks(const nb_gemm *ctx, const nb_conv_shape *s)
{
    int threads = nb_gemm_threads(ctx);
    return s->N < threads ? (int)s->N : threads;
}

static size_t conv_workspace(const nb_gemm *ctx, const nb_conv_shape *s)
{
    int64_t threads = nb_gemm_threads(ctx);
    int64_t dw = s->K * (s->C / s->groups) * s->R * s->S;
    return (size_t)(threads * (col_floats(s) + dw));
}

typedef struct conv_job {
    nb_gemm *ctx;
    const nb_conv_shape *s;
    const float *x, *w, *bias, *dy;
    float *y, *dx, *dw, *ws;
    float beta;
    int tasks;
} conv_job;

/* The unrolled input of sample n, group g: in the thread's slice, or x itself (1×1). */
static const float *unrolled(const conv_job *j, int thread, int64_t n, int64_t g)
{
    const nb_conv_shape *s = j->s;
    int64_t Cg = s->C / s->groups;
    const float *xg = j->x + (n * s->C + g * Cg) * s->H * s->W;
    if (pointwise(s))
        return xg;
    float *col = j->ws + (int64_t)thread * col_floats(s);
    im2col(s, Cg, xg, col);
    return col;
}

/* One (sample, group) of a task: its unrolled input col; first: n is the task's first sample. */
typedef void unrolled_step(const conv_job *j, int task, const float *col, int64_t n, int64_t g,
                           int first);

/* Runs step on every sample of the task and every group, each unrolled on this thread. */
static void each_unrolled(const conv_job *j, int task, int thread, unrolled_step *step)
{
    int64_t first, last;
    nb_task_range(j->s->N, j->tasks, task, 1, &first, &last);
    for (int64_t n = first; n < last; n++)
        for (int64_t g = 0; g < j->s->groups; g++)
            step(j, task, unrolled(j, thread, n, g), n, g, n == first);
}

/* Y[n,g] = W[g] · col + b */
static void forward_step(const conv_job *j, int task, const float *col, int64_t n, int64_t g,
                         int first)
{
    (void)task, (void)first;
    const nb_conv_shape *s = j->s;
    int64_t Kg = s->K / s->groups, CgRS = s->C / s->groups * s->R * s->S, PQ = s->P * s->Q;
    float *Y = j->y + (n * s->K + g * Kg) * PQ;                             /* Kg × PQ */
    nb_gemm_run(j->ctx, 0, 0, (int)Kg, (int)PQ, (int)CgRS, 1.0f, j->w + g * Kg * CgRS,
                (int)CgRS, col, (int)PQ, 0.0f, Y, (int)PQ);
    for (int64_t k = 0; j->bias && k < Kg; k++) {
        float b = j->bias[g * Kg + k], *restrict yk = Y + k * PQ;
        for (int64_t i = 0; i < PQ; i++)
            yk[i] += b;
    }
}

static void forward_task(void *arg, int task, int thread)
{
    each_unrolled(arg, task, thread, forward_step);
}

static void conv_forward(nb_gemm *ctx, const nb_conv_shape *s, const float *x, const float *w,
                         const float *bias, float *y, float *ws)
{
    conv_job j = {.ctx = ctx, .s = s, .x = x, .w = w, .bias = bias, .y = y, .ws = ws,
                  .tasks = conv_tasks(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, forward_task, &j);
}

static void backward_data_task(void *arg, int task, int thread)
{
    const conv_job *j = arg;
    const nb_conv_shape *s = j->s;
    int64_t first, last, Cg = s->C / s->groups, Kg = s->K / s->groups, CgRS = Cg * s->R * s->S;
    int64_t PQ = s->P * s->Q, HW = s->H * s->W;
    nb_task_range(s->N, j->tasks, task, 1, &first, &last);
    float *dcol = j->ws + (int64_t)thread * col_floats(s);
    for (int64_t n = first; n < last; n++) {
        float *dxn = j->dx + n * s->C * HW;
        if (j->beta == 0.0f)
            memset(dxn, 0, (size_t)(s->C * HW) * sizeof *dxn);
        for (int64_t g = 0; g < s->groups; g++) {
            const float *dY = j->dy + (n * s->K + g * Kg) * PQ;            /* Kg × PQ */
            const float *Wg = j->w + g * Kg * CgRS;                        /* Kg × CgRS */
            if (pointwise(s)) { /* dx[n,g] += Wgᵀ · dY directly */
                nb_gemm_run(j->ctx, 1, 0, (int)CgRS, (int)PQ, (int)Kg, 1.0f, Wg, (int)CgRS, dY,
                            (int)PQ, 1.0f, dxn + g * Cg * HW, (int)PQ);
                continue;
            }
            nb_gemm_run(j->ctx, 1, 0, (int)CgRS, (int)PQ, (int)Kg, 1.0f, Wg, (int)CgRS, dY,
                        (int)PQ, 0.0f, dcol, (int)PQ);
            col2im(s, Cg, dcol, dxn + g * Cg * HW);
        }
    }
}

static void conv_backward_data(nb_gemm *ctx, const nb_conv_shape *s, const float *dy,
                               const float *w, float beta, float *dx, float *ws)
{
    conv_job j = {.ctx = ctx, .s = s, .w = w, .dy = dy, .dx = dx, .beta = beta, .ws = ws,
                  .tasks = conv_tasks(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, backward_data_task, &j);
}

/* Task t sums its samples' dW into its own partial (after the unrolled slices); the partials
 * are added in task order afterwards, so the sum's order depends only on the task count.
 *   part_t[g] (=, then +=) dY[n,g] · colᵀ */
static void weights_step(const conv_job *j, int task, const float *col, int64_t n, int64_t g,
                         int first)
{
    const nb_conv_shape *s = j->s;
    int64_t Kg = s->K / s->groups, CgRS = s->C / s->groups * s->R * s->S, PQ = s->P * s->Q;
    float *part = j->ws + (int64_t)nb_gemm_threads(j->ctx) * col_floats(s) + task * s->K * CgRS;
    const float *dY = j->dy + (n * s->K + g * Kg) * PQ;                    /* Kg × PQ */
    nb_gemm_run(j->ctx, 0, 1, (int)Kg, (int)CgRS, (int)PQ, 1.0f, dY, (int)PQ, col, (int)PQ,
                first ? 0.0f : 1.0f, part + g * Kg * CgRS, (int)CgRS);
}

static void backward_weights_task(void *arg, int task, int thread)
{
    each_unrolled(arg, task, thread, weights_step);
}

typedef struct reduce_job {
    const conv_job *conv;
    float bias_beta;
    float *dbias;
    int tasks;
} reduce_job;

/* dw = beta·dw + Σ_t part_t over a block of dw, and db for a block of channels. */
static void reduce_task(void *arg, int task, int thread)
{
    (void)thread;
    const reduce_job *r = arg;
    const conv_job *j = r->conv;
    const nb_conv_shape *s = j->s;
    int64_t size = s->K * (s->C / s->groups) * s->R * s->S, first, last;
    const float *parts = j->ws + (int64_t)nb_gemm_threads(j->ctx) * col_floats(s);
    nb_task_range(size, r->tasks, task, 64, &first, &last);
    if (j->dw)
        for (int64_t i = first; i < last; i++) {
            float v = j->beta == 0.0f ? 0.0f : j->beta * j->dw[i];
            for (int t = 0; t < j->tasks; t++)
                v += parts[t * size + i];
            j->dw[i] = v;
        }
    nb_task_range(s->K, r->tasks, task, 1, &first, &last);
    int64_t PQ = s->P * s->Q;
    for (int64_t k = first; r->dbias && k < last; k++) {
        double sum = 0.0;
        for (int64_t n = 0; n < s->N; n++) {
            const float *d = j->dy + (n * s->K + k) * PQ;
            float acc = 0.0f;
            for (int64_t i = 0; i < PQ; i++)
                acc += d[i];
            sum += acc;
        }
        r->dbias[k] = (r->bias_beta == 0.0f ? 0.0f : r->bias_beta * r->dbias[k]) + (float)sum;
    }
}

static void conv_backward_weights(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                                  const float *dy, float beta, float *dw, float bias_beta,
                                  float *dbias, float *ws)
{
    conv_job j = {.ctx = ctx, .s = s, .x = x, .dy = dy, .dw = dw, .beta = beta, .ws = ws,
                  .tasks = conv_tasks(ctx, s)};
    if (dw)
        nb_gemm_parallel(ctx, j.tasks, backward_weights_task, &j);
    reduce_job r = {.conv = &j, .bias_beta = bias_beta, .dbias = dbias,
                    .tasks = nb_gemm_threads(ctx)};
    nb_gemm_parallel(ctx, r.tasks, reduce_task, &r);
}

const nb_conv_kernels nb_conv_portable = {
    .name = "portable",
    .conv2d_workspace = conv_workspace,
    .conv2d_forward = conv_forward,
    .conv2d_backward_data = conv_backward_data,
    .conv2d_backward_weights = conv_backward_weights,
    .max_pool2d_forward = nb_portable_max_pool2d_forward,
    .max_pool2d_backward = nb_portable_max_pool2d_backward,
    .avg_pool2d_forward = nb_portable_avg_pool2d_forward,
    .avg_pool2d_backward = nb_portable_avg_pool2d_backward,
    .batch_norm_forward = nb_portable_batch_norm_forward,
    .batch_norm_backward = nb_portable_batch_norm_backward,
};
