/* The portable pooling kernels (conv.h, conv_portable.h), fp32: max and average pooling as
 * plain loops, the planes (n, c) split across the context's thread pool in blocks. */
#include "backend/conv_portable.h"
#include "backend/gemm_pool.h"

#include <string.h>

typedef nb_pool_job pool_job;

/* Planes (n, c) are independent: a task takes a block of them. */
static void plane_task(void *arg, int task, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    int64_t first, last;
    nb_task_range(j->s->N * j->s->C, j->tasks, task, 1, &first, &last);
    for (int64_t plane = first; plane < last; plane++)
        j->plane(j, plane);
}

void nb_pool_run_planes(nb_gemm *ctx, nb_pool_job *j,
                        void (*plane)(const nb_pool_job *, int64_t))
{
    int64_t planes = j->s->N * j->s->C, threads = nb_gemm_threads(ctx);
    j->plane = plane;
    j->tasks = (int)(planes < threads ? planes : threads);
    nb_gemm_parallel(ctx, j->tasks, plane_task, j);
}

/* ---- max pooling: y = max over the window, dx[argmax] += dy ------------------------------- */

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

static void max_forward_plane(const pool_job *j, int64_t plane)
{
    const nb_conv_shape *s = j->s;
    int64_t W = s->W, Q = s->Q;
    int fast = s->R == 2 && s->S == 2 && s->stride_h == 2 && s->stride_w == 2 && s->pad_h == 0 &&
               s->pad_w == 0 && s->dil_h == 1 && s->dil_w == 1;
    const float *x = j->x + plane * s->H * W;
    float *y = j->y + plane * s->P * Q;
    int32_t *am = j->argmax ? j->argmax + plane * s->P * Q : NULL, unused; /* NULL: not kept */
    for (int64_t p = 0; p < s->P; p++) {
        int64_t r0, r1;
        taps(p, s->stride_h, s->pad_h, s->dil_h, s->R, s->H, &r0, &r1);
        int64_t h0 = p * s->stride_h - s->pad_h;
        for (int64_t q = 0; q < Q; q++) {
            if (fast) { /* the common 2×2 window at stride 2: branch-free; ties keep the
                         * first in row-major order (a later one must be greater) */
                const float *a = x + 2 * p * W + 2 * q, *b = a + W;
                float a0 = a[0], a1 = a[1], b0 = b[0], b1 = b[1];
                int ka = a1 > a0, kb = b1 > b0;
                float ma = ka ? a1 : a0, mb = kb ? b1 : b0;
                int k = mb > ma;
                if (a0 + a1 + b0 + b1 == a0 + a1 + b0 + b1) { /* no NaN (nor ∞ − ∞) */
                    y[p * Q + q] = k ? mb : ma;
                    if (am)
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
                       am ? &am[p * Q + q] : &unused);
        }
    }
}

/* Writing (beta = 0) zeroes the plane first, while it is in cache: one pass over dx instead
 * of the graph zeroing all of it beforehand and the scatter reading it back. */
static void max_backward_plane(const pool_job *j, int64_t plane)
{
    const nb_conv_shape *s = j->s;
    float *dx = j->dx + plane * s->H * s->W;
    const float *dy = j->dy + plane * s->P * s->Q;
    const int32_t *am = j->argmax_in + plane * s->P * s->Q;
    if (j->write)
        memset(dx, 0, (size_t)(s->H * s->W) * sizeof *dx);
    for (int64_t i = 0; i < s->P * s->Q; i++)
        if (am[i] >= 0)
            dx[am[i]] += dy[i];
}

void nb_portable_max_pool2d_forward(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                                    float *y, int32_t *argmax)
{
    pool_job j = {.s = s, .x = x, .y = y, .argmax = argmax};
    nb_pool_run_planes(ctx, &j, max_forward_plane);
}

void nb_portable_max_pool2d_backward(nb_gemm *ctx, const nb_conv_shape *s, const float *dy,
                                     const int32_t *argmax, float beta, float *dx)
{
    pool_job j = {.s = s, .dy = dy, .dx = dx, .argmax_in = argmax, .write = beta == 0.0f};
    nb_pool_run_planes(ctx, &j, max_backward_plane);
}

/* ---- average pooling: y = Σ window / divisor, dx += dy / divisor over the window ---------- */

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

static void avg_forward_plane(const pool_job *j, int64_t plane)
{
    const nb_conv_shape *s = j->s;
    int64_t h0, h1, w0, w1;
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

static void avg_backward_plane(const pool_job *j, int64_t plane)
{
    const nb_conv_shape *s = j->s;
    int64_t h0, h1, w0, w1;
    float *dx = j->dx + plane * s->H * s->W;
    const float *dy = j->dy + plane * s->P * s->Q;
    if (j->write) /* as max_backward_plane */
        memset(dx, 0, (size_t)(s->H * s->W) * sizeof *dx);
    for (int64_t p = 0; p < s->P; p++)
        for (int64_t q = 0; q < s->Q; q++) {
            float g = dy[p * s->Q + q] / window(s, j->include_pad, p, q, &h0, &h1, &w0, &w1);
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++)
                    dx[h * s->W + w] += g;
        }
}

void nb_portable_avg_pool2d_forward(nb_gemm *ctx, const nb_conv_shape *s, int include_pad,
                                    const float *x, float *y)
{
    pool_job j = {.s = s, .x = x, .y = y, .include_pad = include_pad};
    nb_pool_run_planes(ctx, &j, avg_forward_plane);
}

void nb_portable_avg_pool2d_backward(nb_gemm *ctx, const nb_conv_shape *s, int include_pad,
                                     const float *dy, float beta, float *dx)
{
    pool_job j = {.s = s, .dy = dy, .dx = dx, .include_pad = include_pad, .write = beta == 0.0f};
    nb_pool_run_planes(ctx, &j, avg_backward_plane);
}
