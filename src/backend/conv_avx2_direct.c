/* Direct convolution for few input channels (a first layer on grey or RGB images) in AVX2 +
 * FMA, fp32: forward and backward weights (+ bias) of conv.h, for the contexts of the fast
 * backends on CPUs with both (image_avx2.c's nb_conv_avx2 table takes these entries).
 *
 * Why: with C = 1 the convolution is a 9-tap stencil per output channel, far from the
 * matrix-product shape oneDNN's kernels are built for. oneDNN 2.6 runs it as im2col + GEMM
 * on plain NCHW (its blocked kernel needs a reorder of the 32-channel output that costs more
 * than it saves). Measured on fashion-cnn's conv1 (1 → 32 channels, 3×3, padding 1, 28×28, batch
 * 128, one thread): forward 3.5–4.2 ms on oneDNN, backward weights 3.4–3.8 ms; the numbers
 * of this file are in README's "The CNN benchmark".
 *
 * How: each sample's C planes are copied once into a zero-padded block on the stack (at most
 * PAD_FLOATS floats), so that every tap is an unaligned vector load with no bounds check.
 *   forward           y[n,k,p,q0:q0+8] = b[k] + Σ_t w[k,t] · xpad[n, c_t, p + r_t, q0 + s_t : +8]
 *                     four output channels at a time share each loaded x vector (4 FMAs per
 *                     load); a row of Q ≥ 8 outputs ends with a vector overlapping the one
 *                     before (the same values written twice), so every store is whole.
 *   backward weights  dw[k,t] = Σ_{n,p,q} dy[n,k,p,q] · xpad[n, c_t, p + r_t, q + s_t],
 *                     db[k] = Σ dy: up to nine taps at a time, each dy vector loaded once;
 *                     the overlapping last vector of a row has the lanes already counted
 *                     masked off. Sums over one plane in float vectors, over samples in
 *                     double, one partial per task (blocks of samples) added in task order:
 *                     the result depends on the thread count only, as conv_onednn.c.
 * Shapes outside (stride or dilation ≠ 1, groups, C > MAX_C, rows of fewer than 8 outputs,
 * larger padded planes or weights) are not served: the next implementation runs them. FMA
 * rounds once where the portable im2col + GEMM rounds twice, and sums run in another order:
 * results agree within float tolerance (test_conv_backends). */
#include "backend/conv.h"
#include "backend/conv_avx2_direct.h"
#include "backend/gemm_pool.h"

#include <string.h>

enum { MAX_C = 4, MAX_TAPS = 64, PAD_FLOATS = 8192, MAX_WEIGHTS = 4096, TAP_BLOCK = 9 };

/* The padded geometry of one sample: Hp × Wp per channel, P + R − 1 by Q + S − 1 (stride 1,
 * dilation 1). */
static int64_t padded_h(const nb_conv_shape *s)
{
    return s->P + s->R - 1;
}

static int64_t padded_w(const nb_conv_shape *s)
{
    return s->Q + s->S - 1;
}

int nb_conv_avx2_direct_serves(const nb_conv_shape *s)
{
    int64_t taps = s->C * s->R * s->S;
    return s->groups == 1 && s->stride_h == 1 && s->stride_w == 1 && s->dil_h == 1 &&
           s->dil_w == 1 && s->C >= 1 && s->C <= MAX_C && taps <= MAX_TAPS && s->Q >= 8 &&
           s->pad_h >= 0 && s->pad_w >= 0 && s->pad_h < s->R && s->pad_w < s->S &&
           s->C * padded_h(s) * padded_w(s) <= PAD_FLOATS && s->K * (taps + 1) <= MAX_WEIGHTS;
}

size_t nb_conv_avx2_direct_workspace(const nb_gemm *ctx, const nb_conv_shape *s)
{
    int64_t threads = nb_gemm_threads(ctx), tasks = s->N < threads ? s->N : threads;
    return (size_t)(tasks * (s->K * s->C * s->R * s->S + s->K));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

/* Sample x (C planes H × W) into xp (C planes Hp × Wp), zero around it. */
static void pad_sample(const nb_conv_shape *s, const float *x, float *xp)
{
    int64_t Hp = padded_h(s), Wp = padded_w(s);
    int64_t rows = s->H < Hp - s->pad_h ? s->H : Hp - s->pad_h;
    int64_t cols = s->W < Wp - s->pad_w ? s->W : Wp - s->pad_w;
    memset(xp, 0, (size_t)(s->C * Hp * Wp) * sizeof *xp);
    for (int64_t c = 0; c < s->C; c++)
        for (int64_t h = 0; h < rows; h++)
            memcpy(xp + (c * Hp + h + s->pad_h) * Wp + s->pad_w, x + (c * s->H + h) * s->W,
                   (size_t)cols * sizeof *xp);
}

/* off[t]: where tap t = (c, r, s) starts in the padded sample */
static int tap_offsets(const nb_conv_shape *s, int64_t off[MAX_TAPS])
{
    int64_t Hp = padded_h(s), Wp = padded_w(s);
    int t = 0;
    for (int64_t c = 0; c < s->C; c++)
        for (int64_t r = 0; r < s->R; r++)
            for (int64_t q = 0; q < s->S; q++)
                off[t++] = (c * Hp + r) * Wp + q;
    return t;
}

typedef struct direct_job {
    const nb_conv_shape *s;
    const float *x, *w, *bias, *dy;
    float *y, *parts;
    int tasks;
} direct_job;

/* Output channels [k, k + kb) (kb ≤ 4) of one padded sample. */
AVX2 static void forward_channels(const nb_conv_shape *s, const float *xp, const int64_t *off,
                                  int taps, const float *w, const float *bias, int64_t k,
                                  int kb, float *y)
{
    int64_t P = s->P, Q = s->Q, Wp = padded_w(s);
    __m256 b[4];
    for (int i = 0; i < 4; i++)
        b[i] = _mm256_set1_ps(bias && i < kb ? bias[k + i] : 0.0f);
    const float *w0 = w + k * taps, *w1 = w0 + (kb > 1) * taps, *w2 = w0 + 2 * (kb > 2) * taps;
    const float *w3 = w0 + 3 * (kb > 3) * taps; /* kb < 4: the spare rows repeat row 0 */
    for (int64_t p = 0; p < P; p++)
        for (int64_t next = 0; next < Q; next += 8) {
            int64_t q = next + 8 <= Q ? next : Q - 8;
            const float *at = xp + p * Wp + q;
            __m256 a0 = b[0], a1 = b[1], a2 = b[2], a3 = b[3];
            for (int t = 0; t < taps; t++) {
                __m256 v = _mm256_loadu_ps(at + off[t]);
                a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w0 + t), v, a0);
                a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(w1 + t), v, a1);
                a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(w2 + t), v, a2);
                a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(w3 + t), v, a3);
            }
            const __m256 out[4] = {a0, a1, a2, a3};
            for (int i = 0; i < kb; i++)
                _mm256_storeu_ps(y + ((k + i) * P + p) * Q + q, out[i]);
        }
}

static void forward_task(void *arg, int task, int thread)
{
    (void)thread;
    const direct_job *j = arg;
    const nb_conv_shape *s = j->s;
    float xp[PAD_FLOATS];
    int64_t off[MAX_TAPS], n0, n1;
    int taps = tap_offsets(s, off);
    nb_task_range(s->N, j->tasks, task, 1, &n0, &n1);
    for (int64_t n = n0; n < n1; n++) {
        pad_sample(s, j->x + n * s->C * s->H * s->W, xp);
        float *y = j->y + n * s->K * s->P * s->Q;
        for (int64_t k = 0; k < s->K; k += 4)
            forward_channels(s, xp, off, taps, j->w, j->bias, k,
                             s->K - k < 4 ? (int)(s->K - k) : 4, y);
    }
}

AVX2 static inline float hsum(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

/* Taps [t0, t0 + nt) (nt ≤ TAP_BLOCK) of output channel k's plane dy against padded sample
 * xp, added to part[t0 …]; the bias sum too when with_bias. Inlined into callers with a
 * constant nt, so that the accumulators stay in registers. */
AVX2 static inline __attribute__((always_inline)) void weights_taps(const nb_conv_shape *s, const float *xp, const int64_t *off,
                              int t0, int nt, const float *dy, double *part, double *bias_part)
{
    int64_t P = s->P, Q = s->Q, Wp = padded_w(s), full = Q / 8 * 8;
    /* the overlapping last vector of a row starts at Q − 8: its first 8 − Q % 8 lanes were
     * counted by the vector before */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 tail = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(lane, _mm256_set1_epi32((int32_t)(full - (Q - 8)) - 1)));
    __m256 acc[TAP_BLOCK], db = _mm256_setzero_ps();
#pragma GCC unroll 9
    for (int i = 0; i < TAP_BLOCK; i++)
        acc[i] = _mm256_setzero_ps();
    for (int64_t p = 0; p < P; p++)
        for (int64_t next = 0; next < Q; next += 8) {
            int64_t q = next + 8 <= Q ? next : Q - 8;
            __m256 g = _mm256_loadu_ps(dy + p * Q + q);
            if (q != next)
                g = _mm256_and_ps(g, tail);
            const float *at = xp + p * Wp + q;
#pragma GCC unroll 9
            for (int i = 0; i < TAP_BLOCK; i++)
                if (i < nt)
                    acc[i] = _mm256_fmadd_ps(g, _mm256_loadu_ps(at + off[t0 + i]), acc[i]);
            db = _mm256_add_ps(db, g);
        }
#pragma GCC unroll 9
    for (int i = 0; i < TAP_BLOCK; i++)
        if (i < nt)
            part[t0 + i] += hsum(acc[i]);
    if (bias_part)
        *bias_part += hsum(db);
}

AVX2 static void weights_full_block(const nb_conv_shape *s, const float *xp, const int64_t *off,
                                    int t0, const float *dy, double *part, double *bias_part)
{
    weights_taps(s, xp, off, t0, TAP_BLOCK, dy, part, bias_part);
}

AVX2 static void weights_short_block(const nb_conv_shape *s, const float *xp, const int64_t *off,
                                     int t0, int nt, const float *dy, double *part,
                                     double *bias_part)
{
    weights_taps(s, xp, off, t0, nt, dy, part, bias_part);
}

static void weights_task(void *arg, int task, int thread)
{
    (void)thread;
    const direct_job *j = arg;
    const nb_conv_shape *s = j->s;
    float xp[PAD_FLOATS];
    double part[MAX_WEIGHTS];
    int64_t off[MAX_TAPS], n0, n1;
    int taps = tap_offsets(s, off);
    int64_t per_task = s->K * taps + s->K;
    memset(part, 0, (size_t)per_task * sizeof *part);
    nb_task_range(s->N, j->tasks, task, 1, &n0, &n1);
    for (int64_t n = n0; n < n1; n++) {
        pad_sample(s, j->x + n * s->C * s->H * s->W, xp);
        for (int64_t k = 0; k < s->K; k++) {
            const float *dy = j->dy + (n * s->K + k) * s->P * s->Q;
            for (int t0 = 0; t0 < taps; t0 += TAP_BLOCK) {
                double *bias_part = t0 == 0 ? part + s->K * taps + k : NULL;
                if (taps - t0 >= TAP_BLOCK)
                    weights_full_block(s, xp, off, t0, dy, part + k * taps, bias_part);
                else
                    weights_short_block(s, xp, off, t0, taps - t0, dy, part + k * taps,
                                        bias_part);
            }
        }
    }
    float *out = j->parts + task * per_task;
    for (int64_t i = 0; i < per_task; i++)
        out[i] = (float)part[i];
}

static int tasks_for(const nb_gemm *ctx, const nb_conv_shape *s)
{
    int threads = nb_gemm_threads(ctx);
    return s->N < threads ? (int)s->N : threads;
}

void nb_conv_avx2_direct_forward(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                                 const float *w, const float *bias, float *y, float *ws)
{
    (void)ws;
    direct_job j = {.s = s, .x = x, .w = w, .bias = bias, .y = y, .tasks = tasks_for(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, forward_task, &j);
}

void nb_conv_avx2_direct_backward_weights(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                                          const float *dy, float beta, float *dw,
                                          float bias_beta, float *dbias, float *ws)
{
    /* dw may be NULL (the bias alone): its sums are made and dropped */
    direct_job j = {.s = s, .x = x, .dy = dy, .parts = ws, .tasks = tasks_for(ctx, s)};
    nb_gemm_parallel(ctx, j.tasks, weights_task, &j);
    int64_t wn = s->K * s->C * s->R * s->S, per_task = wn + s->K;
    /* dw = beta·dw + Σ_t part_t, t in order (beta 0 writes) */
    for (int64_t i = 0; dw && i < wn; i++) {
        float v = beta == 0.0f ? 0.0f : beta * dw[i];
        for (int t = 0; t < j.tasks; t++)
            v += ws[t * per_task + i];
        dw[i] = v;
    }
    for (int64_t k = 0; dbias && k < s->K; k++) {
        float v = bias_beta == 0.0f ? 0.0f : bias_beta * dbias[k];
        for (int t = 0; t < j.tasks; t++)
            v += ws[t * per_task + wn + k];
        dbias[k] = v;
    }
}
#endif
