/* The portable image kernels (conv.h), fp32: convolution as im2col + the backend's matrix
 * product (nb_gemm_run, itself oneDNN, OpenBLAS or portable C), pooling and batch norm as
 * plain loops. Work is split across the context's thread pool by samples (convolution,
 * pooling) or channels (batch norm); each thread runs its products single-threaded on its
 * own backend context and uses its own slice of the workspace. Results do not depend on which
 * thread runs which task: every sum has a fixed order for a given thread count.
 *
 * Convolution per sample n and group g (Cg = C/groups input channels, Kg = K/groups outputs),
 * with the unrolled input col = im2col(x[n], g)  [Cg·R·S, P·Q]:
 *   forward          Y[n,g]  (Kg×PQ)    = W[g] (Kg×CgRS) · col               + b
 *   backward data    dcol    (CgRS×PQ)  = W[g]ᵀ · dY[n,g],   dx[n] += col2im(dcol)
 *   backward weights dW[g]   (Kg×CgRS) += dY[n,g] · colᵀ,     db[k] += Σ_pq dY[n,k]
 * A 1×1 convolution with stride 1 and no padding needs no unrolling: col is x[n, g] itself. */
#include "backend/conv.h"
#include "backend/gemm_pool.h"

#include <math.h>
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

static void forward_task(void *arg, int task, int thread)
{
    const conv_job *j = arg;
    const nb_conv_shape *s = j->s;
    int64_t first, last, Kg = s->K / s->groups, CgRS = s->C / s->groups * s->R * s->S;
    int64_t PQ = s->P * s->Q;
    nb_task_range(s->N, j->tasks, task, 1, &first, &last);
    for (int64_t n = first; n < last; n++)
        for (int64_t g = 0; g < s->groups; g++) {
            const float *col = unrolled(j, thread, n, g);
            float *Y = j->y + (n * s->K + g * Kg) * PQ;                 /* Kg × PQ */
            nb_gemm_run(j->ctx, 0, 0, (int)Kg, (int)PQ, (int)CgRS, 1.0f, j->w + g * Kg * CgRS,
                        (int)CgRS, col, (int)PQ, 0.0f, Y, (int)PQ);
            for (int64_t k = 0; j->bias && k < Kg; k++) {
                float b = j->bias[g * Kg + k], *restrict yk = Y + k * PQ;
                for (int64_t i = 0; i < PQ; i++)
                    yk[i] += b;
            }
        }
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
 * are added in task order afterwards, so the sum's order depends only on the task count. */
static void backward_weights_task(void *arg, int task, int thread)
{
    const conv_job *j = arg;
    const nb_conv_shape *s = j->s;
    int64_t first, last, Kg = s->K / s->groups, CgRS = s->C / s->groups * s->R * s->S;
    int64_t PQ = s->P * s->Q;
    float *part = j->ws + (int64_t)nb_gemm_threads(j->ctx) * col_floats(s) + task * s->K * CgRS;
    nb_task_range(s->N, j->tasks, task, 1, &first, &last);
    for (int64_t n = first; n < last; n++)
        for (int64_t g = 0; g < s->groups; g++) {
            const float *col = unrolled(j, thread, n, g);
            const float *dY = j->dy + (n * s->K + g * Kg) * PQ;            /* Kg × PQ */
            nb_gemm_run(j->ctx, 0, 1, (int)Kg, (int)CgRS, (int)PQ, 1.0f, dY, (int)PQ, col,
                        (int)PQ, n == first ? 0.0f : 1.0f, part + g * Kg * CgRS, (int)CgRS);
        }
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

/* ---- pooling ------------------------------------------------------------------------------ */

typedef struct pool_job {
    const nb_conv_shape *s;
    const float *x, *dy;
    float *y, *dx;
    const int32_t *argmax_in;
    int32_t *argmax;
    int include_pad, tasks;
} pool_job;

/* y and the arg-max of one window of plane x: rows [h0, h1), columns [w0, w1) step dil. The
 * first maximum in row-major order wins (v > best), and a NaN ends the search (it wins, as
 * in PyTorch's CPU kernel). */
static inline void max_window(const float *x, int64_t W, int64_t h0, int64_t h1, int64_t dh,
                              int64_t w0, int64_t w1, int64_t dw, float *y, int32_t *at)
{
    int64_t best_at = h0 * W + w0;
    float best = x[best_at];
    for (int64_t h = h0; h < h1; h += dh)
        for (int64_t w = w0; w < w1; w += dw) {
            float v = x[h * W + w];
            if (v > best || v != v) {
                best = v;
                best_at = h * W + w;
                if (v != v)
                    goto done;
            }
        }
done:
    *y = best;
    *at = (int32_t)best_at;
}

/* The first tap index k in [0, taps) with o·stride − pad + k·dil ≥ 0, and one past the last
 * with it < extent: the window's valid taps, so the inner loops check no bounds. */
static void taps(int64_t o, int64_t stride, int64_t pad, int64_t dil, int64_t taps_n,
                 int64_t extent, int64_t *lo, int64_t *hi)
{
    int64_t start = o * stride - pad;
    int64_t a = start >= 0 ? 0 : (-start + dil - 1) / dil;
    int64_t b = start >= extent ? 0 : (extent - start + dil - 1) / dil;
    *lo = a;
    *hi = b < taps_n ? b : taps_n;
}

/* Planes (n, c) are independent: a task takes a block of them. */
static void max_forward_task(void *arg, int task, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    const nb_conv_shape *s = j->s;
    int64_t first, last, W = s->W, Q = s->Q;
    int fast = s->R == 2 && s->S == 2 && s->stride_h == 2 && s->stride_w == 2 && s->pad_h == 0 &&
               s->pad_w == 0 && s->dil_h == 1 && s->dil_w == 1;
    nb_task_range(s->N * s->C, j->tasks, task, 1, &first, &last);
    for (int64_t plane = first; plane < last; plane++) {
        const float *x = j->x + plane * s->H * W;
        float *y = j->y + plane * s->P * Q;
        int32_t *am = j->argmax + plane * s->P * Q;
        for (int64_t p = 0; p < s->P; p++) {
            int64_t r0, r1;
            taps(p, s->stride_h, s->pad_h, s->dil_h, s->R, s->H, &r0, &r1);
            int64_t h0 = p * s->stride_h - s->pad_h;
            for (int64_t q = 0; q < Q; q++) {
                if (fast) { /* the common 2×2 window at stride 2: branch-free; ties keep
                             * the first in row-major order (a later one must be greater) */
                    const float *a = x + 2 * p * W + 2 * q, *b = a + W;
                    float a0 = a[0], a1 = a[1], b0 = b[0], b1 = b[1];
                    int ka = a1 > a0, kb = b1 > b0;
                    float ma = ka ? a1 : a0, mb = kb ? b1 : b0;
                    int k = mb > ma;
                    if (a0 + a1 + b0 + b1 == a0 + a1 + b0 + b1) { /* no NaN (nor ∞ − ∞) */
                        y[p * Q + q] = k ? mb : ma;
                        am[p * Q + q] = (int32_t)(2 * p * W + 2 * q + (k ? W + kb : ka));
                        continue;
                    }
                }
                int64_t t0, t1;
                taps(q, s->stride_w, s->pad_w, s->dil_w, s->S, W, &t0, &t1);
                int64_t w0 = q * s->stride_w - s->pad_w;
                /* the shape rule keeps a real element in every window (padding ≤ kernel/2) */
                max_window(x, W, h0 + r0 * s->dil_h, h0 + r1 * s->dil_h, s->dil_h,
                           w0 + t0 * s->dil_w, w0 + t1 * s->dil_w, s->dil_w, &y[p * Q + q],
                           &am[p * Q + q]);
            }
        }
    }
}

static void max_backward_task(void *arg, int task, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    const nb_conv_shape *s = j->s;
    int64_t first, last;
    nb_task_range(s->N * s->C, j->tasks, task, 1, &first, &last);
    for (int64_t plane = first; plane < last; plane++) {
        float *dx = j->dx + plane * s->H * s->W;
        const float *dy = j->dy + plane * s->P * s->Q;
        const int32_t *am = j->argmax_in + plane * s->P * s->Q;
        for (int64_t i = 0; i < s->P * s->Q; i++)
            if (am[i] >= 0)
                dx[am[i]] += dy[i];
    }
}

static int pool_tasks(const nb_gemm *ctx, const nb_conv_shape *s)
{
    int64_t planes = s->N * s->C, threads = nb_gemm_threads(ctx);
    return (int)(planes < threads ? planes : threads);
}

static void max_forward(nb_gemm *ctx, const nb_conv_shape *s, const float *x, float *y,
                        int32_t *argmax)
{
    pool_job j = {.s = s, .x = x, .y = y, .argmax = argmax, .tasks = pool_tasks(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, max_forward_task, &j);
}

static void max_backward(nb_gemm *ctx, const nb_conv_shape *s, const float *dy,
                         const int32_t *argmax, float *dx)
{
    pool_job j = {.s = s, .dy = dy, .dx = dx, .argmax_in = argmax, .tasks = pool_tasks(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, max_backward_task, &j);
}

/* The window of output (p, q) clipped to x: rows [*h0, *h1), columns [*w0, *w1); returns the
 * divisor (R·S with count_include_pad, else the clipped area). */
static float window(const nb_conv_shape *s, int include_pad, int64_t p, int64_t q, int64_t *h0,
                    int64_t *h1, int64_t *w0, int64_t *w1)
{
    int64_t hs = p * s->stride_h - s->pad_h, ws = q * s->stride_w - s->pad_w;
    *h0 = hs < 0 ? 0 : hs;
    *h1 = hs + s->R < s->H ? hs + s->R : s->H;
    *w0 = ws < 0 ? 0 : ws;
    *w1 = ws + s->S < s->W ? ws + s->S : s->W;
    return include_pad ? (float)(s->R * s->S) : (float)((*h1 - *h0) * (*w1 - *w0));
}

static void avg_forward_task(void *arg, int task, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    const nb_conv_shape *s = j->s;
    int64_t first, last, h0, h1, w0, w1;
    nb_task_range(s->N * s->C, j->tasks, task, 1, &first, &last);
    for (int64_t plane = first; plane < last; plane++) {
        const float *x = j->x + plane * s->H * s->W;
        float *y = j->y + plane * s->P * s->Q;
        for (int64_t p = 0; p < s->P; p++)
            for (int64_t q = 0; q < s->Q; q++) {
                float div = window(s, j->include_pad, p, q, &h0, &h1, &w0, &w1), sum = 0.0f;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++)
                        sum += x[h * s->W + w];
                y[p * s->Q + q] = sum / div;
            }
    }
}

static void avg_backward_task(void *arg, int task, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    const nb_conv_shape *s = j->s;
    int64_t first, last, h0, h1, w0, w1;
    nb_task_range(s->N * s->C, j->tasks, task, 1, &first, &last);
    for (int64_t plane = first; plane < last; plane++) {
        float *dx = j->dx + plane * s->H * s->W;
        const float *dy = j->dy + plane * s->P * s->Q;
        for (int64_t p = 0; p < s->P; p++)
            for (int64_t q = 0; q < s->Q; q++) {
                float g = dy[p * s->Q + q] / window(s, j->include_pad, p, q, &h0, &h1, &w0, &w1);
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++)
                        dx[h * s->W + w] += g;
            }
    }
}

static void avg_forward(nb_gemm *ctx, const nb_conv_shape *s, int include_pad, const float *x,
                        float *y)
{
    pool_job j = {.s = s, .x = x, .y = y, .include_pad = include_pad, .tasks = pool_tasks(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, avg_forward_task, &j);
}

static void avg_backward(nb_gemm *ctx, const nb_conv_shape *s, int include_pad,
                         const float *dy, float *dx)
{
    pool_job j = {.s = s, .dy = dy, .dx = dx, .include_pad = include_pad,
                  .tasks = pool_tasks(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, avg_backward_task, &j);
}

/* ---- batch normalisation ------------------------------------------------------------------- */

/* Σ x[i] and Σ (x[i] − m)·y[i] (y may be NULL: Σ (x[i] − m)²) in float over eight interleaved
 * partial sums: independent chains the compiler vectorises, where one running sum would be
 * a chain of dependent additions. */
static float sum8(const float *restrict x, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += x[i + k];
    float s = 0.0f;
    for (; i < n; i++)
        s += x[i];
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s;
}

static float dot8_centred(const float *restrict x, float m, const float *restrict y, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (x[i + k] - m) * (y ? y[i + k] : x[i + k] - m);
    float s = 0.0f;
    for (; i < n; i++)
        s += (x[i] - m) * (y ? y[i] : x[i] - m);
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s;
}

typedef struct bn_job {
    const nb_bn_shape *s;
    const float *x, *dy, *gamma, *beta, *running_mean, *running_var;
    const float *mean_in, *invstd_in;
    float *y, *mean, *invstd, *var, *dx, *dgamma, *dbeta;
    float eps, dx_beta, param_beta;
    int batch_stats, tasks;
} bn_job;

/* Channel c's values: N runs of HW floats, stride C·HW. Sums in double, two passes (mean,
 * then Σ(x − μ)²), so that the variance does not cancel catastrophically. */
static void bn_forward_task(void *arg, int task, int thread)
{
    (void)thread;
    const bn_job *j = arg;
    const nb_bn_shape *s = j->s;
    int64_t first, last, M = s->N * s->HW;
    nb_task_range(s->C, j->tasks, task, 1, &first, &last);
    for (int64_t c = first; c < last; c++) {
        double mu, istd;
        if (j->batch_stats) {
            /* each run of HW values summed in float (vectorised), the runs in double */
            double sum = 0.0, sq = 0.0;
            for (int64_t n = 0; n < s->N; n++) {
                sum += sum8(j->x + (n * s->C + c) * s->HW, s->HW);
            }
            mu = sum / (double)M;
            float muf = (float)mu;
            for (int64_t n = 0; n < s->N; n++) {
                sq += dot8_centred(j->x + (n * s->C + c) * s->HW, muf, NULL, s->HW);
            }
            double var = sq / (double)M;
            istd = 1.0 / sqrt(var + (double)j->eps);
            if (j->var)
                j->var[c] = (float)var;
        } else {
            mu = j->running_mean[c];
            istd = 1.0 / sqrt((double)j->running_var[c] + (double)j->eps);
        }
        j->mean[c] = (float)mu;
        j->invstd[c] = (float)istd;
        /* y = a·x + b with a = γσ⁻¹, b = β − μγσ⁻¹ */
        float a = (float)(j->gamma[c] * istd), b = (float)(j->beta[c] - mu * j->gamma[c] * istd);
        for (int64_t n = 0; n < s->N; n++) {
            const float *restrict x = j->x + (n * s->C + c) * s->HW;
            float *restrict y = j->y + (n * s->C + c) * s->HW;
            for (int64_t i = 0; i < s->HW; i++)
                y[i] = a * x[i] + b;
        }
    }
}

static void bn_backward_task(void *arg, int task, int thread)
{
    (void)thread;
    const bn_job *j = arg;
    const nb_bn_shape *s = j->s;
    int64_t first, last, M = s->N * s->HW;
    nb_task_range(s->C, j->tasks, task, 1, &first, &last);
    for (int64_t c = first; c < last; c++) {
        double mu = j->mean_in[c], istd = j->invstd_in[c], sum_dy = 0.0, sum_dy_xc = 0.0;
        float muf = (float)mu;
        for (int64_t n = 0; n < s->N; n++) {
            const float *x = j->x + (n * s->C + c) * s->HW, *dy = j->dy + (n * s->C + c) * s->HW;
            sum_dy += sum8(dy, s->HW);
            sum_dy_xc += dot8_centred(x, muf, dy, s->HW);
        }
        double sum_dy_xhat = sum_dy_xc * istd;
        if (j->dgamma)
            j->dgamma[c] = (j->param_beta == 0.0f ? 0.0f : j->param_beta * j->dgamma[c]) +
                           (float)sum_dy_xhat;
        if (j->dbeta)
            j->dbeta[c] = (j->param_beta == 0.0f ? 0.0f : j->param_beta * j->dbeta[c]) +
                          (float)sum_dy;
        if (!j->dx)
            continue;
        /* dx = γσ⁻¹ (dy − dβ/M − x̂·dγ/M), or γσ⁻¹·dy with running statistics */
        double g = j->gamma[c] * istd;
        double mdb = j->batch_stats ? sum_dy / (double)M : 0.0;
        double mdg = j->batch_stats ? sum_dy_xhat / (double)M : 0.0;
        float a = (float)g, b = (float)(-g * (mdb - mu * istd * mdg)), cx = (float)(-g * istd * mdg);
        /* γσ⁻¹(dy − mdb − (x − μ)σ⁻¹·mdg) = a·dy + cx·x + b */
        for (int64_t n = 0; n < s->N; n++) {
            const float *restrict x = j->x + (n * s->C + c) * s->HW;
            const float *restrict dy = j->dy + (n * s->C + c) * s->HW;
            float *restrict dx = j->dx + (n * s->C + c) * s->HW;
            if (j->dx_beta == 0.0f)
                for (int64_t i = 0; i < s->HW; i++)
                    dx[i] = a * dy[i] + cx * x[i] + b;
            else
                for (int64_t i = 0; i < s->HW; i++)
                    dx[i] += a * dy[i] + cx * x[i] + b;
        }
    }
}

static int bn_tasks(const nb_gemm *ctx, const nb_bn_shape *s)
{
    int64_t threads = nb_gemm_threads(ctx);
    /* tiny tensors ([N, C] behind a Linear) are not worth a hand-over */
    if (s->N * s->C * s->HW < 16384)
        return 1;
    return (int)(s->C < threads ? s->C : threads);
}

static void bn_forward(nb_gemm *ctx, const nb_bn_shape *s, const float *x, const float *gamma,
                       const float *beta, float eps, int batch_stats, const float *running_mean,
                       const float *running_var, float *y, float *mean, float *invstd,
                       float *var)
{
    bn_job j = {.s = s, .x = x, .gamma = gamma, .beta = beta, .eps = eps,
                .batch_stats = batch_stats, .running_mean = running_mean,
                .running_var = running_var, .y = y, .mean = mean, .invstd = invstd, .var = var,
                .tasks = bn_tasks(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, bn_forward_task, &j);
}

static void bn_backward(nb_gemm *ctx, const nb_bn_shape *s, const float *x, const float *dy,
                        const float *gamma, const float *mean, const float *invstd,
                        int batch_stats, float dx_beta, float *dx, float param_beta,
                        float *dgamma, float *dbeta)
{
    bn_job j = {.s = s, .x = x, .dy = dy, .gamma = gamma, .mean_in = mean, .invstd_in = invstd,
                .batch_stats = batch_stats, .dx_beta = dx_beta, .dx = dx,
                .param_beta = param_beta, .dgamma = dgamma, .dbeta = dbeta,
                .tasks = bn_tasks(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, bn_backward_task, &j);
}

const nb_conv_kernels nb_conv_portable = {
    .name = "portable",
    .conv2d_workspace = conv_workspace,
    .conv2d_forward = conv_forward,
    .conv2d_backward_data = conv_backward_data,
    .conv2d_backward_weights = conv_backward_weights,
    .max_pool2d_forward = max_forward,
    .max_pool2d_backward = max_backward,
    .avg_pool2d_forward = avg_forward,
    .avg_pool2d_backward = avg_backward,
    .batch_norm_forward = bn_forward,
    .batch_norm_backward = bn_backward,
};
