/* Batch norm and 2×2 max pooling (conv.h) in AVX2 + FMA, fp32, for the contexts of the fast
 * backends (onednn, openblas) on CPUs that have both; the portable backend keeps the plain
 * loops of conv_portable.c, which the tests use as the reference (test_conv_backends).
 *
 * Why not oneDNN's primitives: on nabla's plain NCHW arrays oneDNN 2.6 runs batch norm with
 * its generic ncsp kernel, measured 18–24 ms for bn1 of fashion-cnn at batch 128 (one
 * thread) where the portable loops take 4.5–6 ms; its fast JIT batch norm wants blocked
 * nChw8c activations, and the reorders to and from them cost more than the whole kernel here.
 * Its max pooling keeps the arg-max in a private workspace format, not conv.h's h·W + w.
 *
 * Why these loops are faster than the portable ones: the same arithmetic — conv_portable_bn.c's
 * per-channel code runs with these loops over each run of HW values (nb_bn_runs) — but in
 * 8-wide vectors with two accumulators, and the backward's Σ dy and Σ dy·(x − μ) in one pass
 * over x and dy. The portable helpers compile to scalar code at -O2
 * (the y-may-be-NULL branch inside dot8_centred's loop blocks vectorisation). A channel's
 * N·HW values (400 KB for bn1) stay in L2 between the passes, so the passes are compute-bound
 * and vectors pay. FMA rounds once where the portable loops round twice: results agree within
 * float tolerance, not bit for bit.
 *
 * Max pooling: the 2×2 window at stride 2 without padding or dilation (the common one) eight
 * outputs at a time — both rows' pairs
 * deinterleaved into even and odd columns, the first
 * maximum in row-major order kept by strict comparisons (ties: the earlier one), as the
 * portable kernel; a group with a NaN or an ∞ − ∞ redone in scalar with the portable rule (a
 * NaN wins). Every other window shape, and the backward, run the portable kernels. */
#include "backend/backend.h"
#include "backend/conv.h"
#include "backend/conv_avx2_direct.h"
#include "backend/conv_portable.h"
#include "backend/gemm_pool.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* Σ x[i] */
AVX2 static float sum(const float *x, int64_t n)
{
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
        b = _mm256_add_ps(b, _mm256_loadu_ps(x + i + 8));
    }
    float s = hsum(_mm256_add_ps(a, b));
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* Σ (x[i] − m)² */
AVX2 static float sq_centred(const float *x, float m, int64_t n)
{
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), mv = _mm256_set1_ps(m);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv);
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), mv);
        a = _mm256_fmadd_ps(d0, d0, a);
        b = _mm256_fmadd_ps(d1, d1, b);
    }
    float s = hsum(_mm256_add_ps(a, b));
    for (; i < n; i++)
        s += (x[i] - m) * (x[i] - m);
    return s;
}

/* *sum_dy = Σ dy[i], *sum_dy_xc = Σ dy[i]·(x[i] − m), in one pass */
AVX2 static void dy_sums(const float *x, const float *dy, float m, int64_t n, float *sum_dy,
                         float *sum_dy_xc)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), mv = _mm256_set1_ps(m);
    __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 g0 = _mm256_loadu_ps(dy + i), g1 = _mm256_loadu_ps(dy + i + 8);
        s0 = _mm256_add_ps(s0, g0);
        s1 = _mm256_add_ps(s1, g1);
        d0 = _mm256_fmadd_ps(g0, _mm256_sub_ps(_mm256_loadu_ps(x + i), mv), d0);
        d1 = _mm256_fmadd_ps(g1, _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), mv), d1);
    }
    float s = hsum(_mm256_add_ps(s0, s1)), d = hsum(_mm256_add_ps(d0, d1));
    for (; i < n; i++) {
        s += dy[i];
        d += dy[i] * (x[i] - m);
    }
    *sum_dy = s;
    *sum_dy_xc = d;
}

/* out = a·u + (v ? c·v : 0) + b, or out += that (accumulate) */
AVX2 static void affine(const float *u, const float *v, float a, float c, float b, float *out,
                        int64_t n, int accumulate)
{
    __m256 av = _mm256_set1_ps(a), cv = _mm256_set1_ps(c), bv = _mm256_set1_ps(b);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 r = _mm256_fmadd_ps(av, _mm256_loadu_ps(u + i), bv);
        if (v)
            r = _mm256_fmadd_ps(cv, _mm256_loadu_ps(v + i), r);
        if (accumulate)
            r = _mm256_add_ps(r, _mm256_loadu_ps(out + i));
        _mm256_storeu_ps(out + i, r);
    }
    for (; i < n; i++) {
        float r = a * u[i] + b + (v ? c * v[i] : 0.0f);
        out[i] = accumulate ? out[i] + r : r;
    }
}

/* ---- batch normalisation (formulas: conv.h, op_batchnorm.c) --------------------------------- */

/* conv_portable_bn.c's per-channel arithmetic with these loops over each run */
static const nb_bn_runs avx2_runs = {sum, sq_centred, dy_sums, affine};

static void bn_forward(nb_gemm *ctx, const nb_bn_shape *s, const float *x, const float *gamma,
                       const float *beta, float eps, int batch_stats, const float *running_mean,
                       const float *running_var, float *y, float *mean, float *invstd,
                       float *var)
{
    nb_bn_forward_with(&avx2_runs, ctx, s, x, gamma, beta, eps, batch_stats, running_mean,
                       running_var, y, mean, invstd, var);
}

static void bn_backward(nb_gemm *ctx, const nb_bn_shape *s, const float *x, const float *dy,
                        const float *gamma, const float *mean, const float *invstd,
                        int batch_stats, float dx_beta, float *dx, float param_beta,
                        float *dgamma, float *dbeta)
{
    nb_bn_backward_with(&avx2_runs, ctx, s, x, dy, gamma, mean, invstd, batch_stats, dx_beta, dx,
                        param_beta, dgamma, dbeta);
}

/* ---- max pooling, 2×2 at stride 2 ------------------------------------------------------------ */

typedef nb_pool_job pool_job; /* conv_portable.h: planes dealt to the threads */

/* the window these kernels serve: 2×2 at stride 2, no padding or dilation */
static int window_2x2(const nb_conv_shape *s)
{
    return s->R == 2 && s->S == 2 && s->stride_h == 2 && s->stride_w == 2 && s->pad_h == 0 &&
           s->pad_w == 0 && s->dil_h == 1 && s->dil_w == 1 && 2 * s->P <= s->H &&
           2 * s->Q <= s->W && s->H * s->W <= INT32_MAX;
}

/* The portable rule on one window a0 a1 / b0 b1 (row-major order): the first maximum
 * (v > best), a NaN winning and ending the search. */
static void max4(const float v[4], const int32_t at[4], float *y, int32_t *am)
{
    float best = v[0];
    int32_t best_at = at[0];
    for (int i = 1; i < 4 && best == best; i++)
        if (v[i] > best || v[i] != v[i])
            best = v[i], best_at = at[i];
    *y = best;
    *am = best_at;
}

/* Columns 0 … 15 of row (valid < 16: only the first `valid`, the rest read as 0 and never
 * touched — a masked load does not fault past the array) as the even (0, 2, …) and odd
 * (1, 3, …) ones. */
AVX2 static inline void deinterleave(const float *row, int valid, __m256 *even, __m256 *odd)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 v0, v1;
    if (valid >= 16) {
        v0 = _mm256_loadu_ps(row), v1 = _mm256_loadu_ps(row + 8);
    } else {
        v0 = _mm256_maskload_ps(row, _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), lane));
        v1 = _mm256_maskload_ps(row + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(valid - 8), lane));
    }
    __m256 e = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0)); /* 0 2 8 10 4 6 12 14 */
    __m256 o = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* One plane: eight outputs of a row at a time. A row of 8 or more outputs ends with a group
 * overlapping the one before (the same outputs written twice, the same values), so that every
 * load and store is a whole vector (AVX2's masked stores are slow on AMD's cores); a row of
 * fewer loads masked and stores through a small array. */
AVX2 static void max_plane(const float *x, int64_t W, int64_t P, int64_t Q, float *y,
                           int32_t *am)
{
    const __m256i lanes2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14), one = _mm256_set1_epi32(1);
    const __m256i row_below = _mm256_set1_epi32((int32_t)W);
    for (int64_t p = 0; p < P; p++) {
        const float *ra = x + 2 * p * W, *rb = ra + W;
        for (int64_t next = 0; next < Q; next += 8) {
            int64_t q = next + 8 <= Q || Q < 8 ? next : Q - 8; /* the overlapping last group */
            int r = Q - q < 8 ? (int)(Q - q) : 8; /* outputs in this group */
            __m256 a0, a1, b0, b1;
            deinterleave(ra + 2 * q, 2 * r, &a0, &a1);
            deinterleave(rb + 2 * q, 2 * r, &b0, &b1);
            __m256 total = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(b0, b1));
            if (_mm256_movemask_ps(_mm256_cmp_ps(total, total, _CMP_UNORD_Q))) {
                /* a NaN (or ∞ − ∞): this group in scalar with the portable rule */
                for (int64_t t = q; t < q + r; t++) {
                    int32_t at0 = (int32_t)(2 * p * W + 2 * t), unused;
                    const int32_t at[4] = {at0, at0 + 1, at0 + (int32_t)W, at0 + (int32_t)W + 1};
                    const float v[4] = {x[at[0]], x[at[1]], x[at[2]], x[at[3]]};
                    max4(v, at, &y[p * Q + t], am ? &am[p * Q + t] : &unused);
                }
                continue;
            }
            __m256 ka = _mm256_cmp_ps(a1, a0, _CMP_GT_OQ), kb = _mm256_cmp_ps(b1, b0, _CMP_GT_OQ);
            __m256 ma = _mm256_blendv_ps(a0, a1, ka), mb = _mm256_blendv_ps(b0, b1, kb);
            __m256 k = _mm256_cmp_ps(mb, ma, _CMP_GT_OQ);
            __m256i off_a = _mm256_and_si256(_mm256_castps_si256(ka), one);
            __m256i off_b = _mm256_add_epi32(_mm256_and_si256(_mm256_castps_si256(kb), one),
                                             row_below);
            __m256i off = _mm256_castps_si256(_mm256_blendv_ps(
                _mm256_castsi256_ps(off_a), _mm256_castsi256_ps(off_b), k));
            __m256i base = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(2 * p * W + 2 * q)),
                                            lanes2);
            __m256 best = _mm256_blendv_ps(ma, mb, k);
            __m256i at = _mm256_add_epi32(base, off);
            if (r == 8) {
                _mm256_storeu_ps(y + p * Q + q, best);
                if (am)
                    _mm256_storeu_si256((__m256i *)(am + p * Q + q), at);
            } else {
                float yv[8];
                int32_t av[8];
                _mm256_storeu_ps(yv, best);
                _mm256_storeu_si256((__m256i *)av, at);
                memcpy(y + p * Q + q, yv, (size_t)r * sizeof *yv);
                if (am)
                    memcpy(am + p * Q + q, av, (size_t)r * sizeof *av);
            }
        }
    }
}

static void max_forward_plane(const pool_job *j, int64_t plane)
{
    const nb_conv_shape *s = j->s;
    max_plane(j->x + plane * s->H * s->W, s->W, s->P, s->Q, j->y + plane * s->P * s->Q,
              j->argmax ? j->argmax + plane * s->P * s->Q : NULL);
}

static void max_forward(nb_gemm *ctx, const nb_conv_shape *s, const float *x, float *y,
                        int32_t *argmax)
{
    if (!window_2x2(s)) {
        nb_conv_portable.max_pool2d_forward(ctx, s, x, y, argmax);
        return;
    }
    pool_job j = {.s = s, .x = x, .y = y, .argmax = argmax};
    nb_pool_run_planes(ctx, &j, max_forward_plane);
}

/* ---- max pooling backward, 2×2 at stride 2, writing ------------------------------------------ */

/* dx of one plane written whole (beta = 0): each window's four values are dy at its arg-max
 * and 0 elsewhere (windows do not overlap), eight windows a time — two rows of 16 values
 * stored as whole vectors — so dx is written once, with no zeroing pass before the scatter;
 * rows and columns no window covers (odd H, W) are zeroed. Rows of at least 8 windows (Q ≥ 8).
 * The arg-max comes from the forward: inside its window. */
AVX2 static void max_backward_plane_2x2(const float *dy, const int32_t *am, int64_t H, int64_t W,
                                        int64_t P, int64_t Q, float *dx)
{
    const __m256i lanes2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i one = _mm256_set1_epi32(1), below = _mm256_set1_epi32((int32_t)W);
    const __m256i below1 = _mm256_set1_epi32((int32_t)W + 1);
    for (int64_t p = 0; p < P; p++) {
        float *ra = dx + 2 * p * W, *rb = ra + W;
        for (int64_t next = 0; next < Q; next += 8) {
            int64_t q = next + 8 <= Q ? next : Q - 8; /* the overlapping last group */
            __m256 g = _mm256_loadu_ps(dy + p * Q + q);
            __m256i base = _mm256_add_epi32(_mm256_set1_epi32((int32_t)(2 * p * W + 2 * q)),
                                            lanes2);
            __m256i off = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(am + p * Q + q)),
                                           base);
            __m256 e0 = _mm256_and_ps(g, _mm256_castsi256_ps(
                                             _mm256_cmpeq_epi32(off, _mm256_setzero_si256())));
            __m256 o0 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, one)));
            __m256 e1 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, below)));
            __m256 o1 = _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, below1)));
            /* even/odd columns interleaved: unpack within 128-bit lanes, then reassemble */
            __m256 lo0 = _mm256_unpacklo_ps(e0, o0), hi0 = _mm256_unpackhi_ps(e0, o0);
            __m256 lo1 = _mm256_unpacklo_ps(e1, o1), hi1 = _mm256_unpackhi_ps(e1, o1);
            _mm256_storeu_ps(ra + 2 * q, _mm256_permute2f128_ps(lo0, hi0, 0x20));
            _mm256_storeu_ps(ra + 2 * q + 8, _mm256_permute2f128_ps(lo0, hi0, 0x31));
            _mm256_storeu_ps(rb + 2 * q, _mm256_permute2f128_ps(lo1, hi1, 0x20));
            _mm256_storeu_ps(rb + 2 * q + 8, _mm256_permute2f128_ps(lo1, hi1, 0x31));
        }
        for (int64_t w = 2 * Q; w < W; w++) /* an odd last column */
            ra[w] = rb[w] = 0.0f;
    }
    if (2 * P < H) /* an odd last row */
        memset(dx + 2 * P * W, 0, (size_t)((H - 2 * P) * W) * sizeof *dx);
}

static void max_backward_plane(const pool_job *j, int64_t plane)
{
    const nb_conv_shape *s = j->s;
    max_backward_plane_2x2(j->dy + plane * s->P * s->Q, j->argmax_in + plane * s->P * s->Q,
                           s->H, s->W, s->P, s->Q, j->dx + plane * s->H * s->W);
}

static void max_backward(nb_gemm *ctx, const nb_conv_shape *s, const float *dy,
                         const int32_t *argmax, float beta, float *dx)
{
    /* accumulating, or rows of fewer than 8 windows (a plane small enough that zeroing it in
     * cache and scattering costs less): the portable kernel */
    if (!window_2x2(s) || beta != 0.0f || s->Q < 8) {
        nb_conv_portable.max_pool2d_backward(ctx, s, dy, argmax, beta, dx);
        return;
    }
    pool_job j = {.s = s, .dy = dy, .argmax_in = argmax, .dx = dx};
    nb_pool_run_planes(ctx, &j, max_backward_plane);
}

static int supports(const nb_gemm *ctx, nb_precision p)
{
    (void)p; /* fp32 only; bf16 runs these in fp32 (conv.h) */
    return nb_gemm_backend_of(ctx) != NB_GEMM_PORTABLE && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
}

const nb_conv_kernels nb_conv_avx2 = {
    .name = "avx2",
    .supports = supports,
    .conv2d_serves = nb_conv_avx2_direct_serves,
    .conv2d_workspace = nb_conv_avx2_direct_workspace,
    .conv2d_forward = nb_conv_avx2_direct_forward,
    .conv2d_backward_weights = nb_conv_avx2_direct_backward_weights,
    .max_pool2d_forward = max_forward,
    .max_pool2d_backward = max_backward,
    .batch_norm_forward = bn_forward,
    .batch_norm_backward = bn_backward,
};

#else
static int never(const nb_gemm *ctx, nb_precision p)
{
    (void)ctx, (void)p;
    return 0;
}

const nb_conv_kernels nb_conv_avx2 = {.name = "avx2", .supports = never,
                                      .conv2d_serves = nb_conv_avx2_direct_serves};
#endif
