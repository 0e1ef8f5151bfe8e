/* The portable matrix-product backend: C = alpha · op(A) · op(B) + beta · C in plain C11,
 * organised like GotoBLAS/BLIS so that it runs near the core's peak without any library.
 *
 *   for jc in N by NC:                      op(B) block  KC × NC  → packed, stays in L2/L3
 *     for pc in K by KC:
 *       pack Bp = op(B)[pc:pc+KC, jc:jc+NC] as NR-wide column panels, Bp[panel][k][NR]
 *       for ic in M by MC:                  op(A) block  MC × KC  → packed, stays in L2
 *         pack Ap = op(A)[ic:ic+MC, pc:pc+KC] as MR-tall row panels, Ap[panel][k][MR]
 *         for jr, ir: micro-kernel          C tile MR × NR in registers:
 *                                           acc[i][:] += Ap[k][i] · Bp[k][:] for k < KC
 *
 * Packing makes every operand of the micro-kernel a unit-stride stream whatever the transposes
 * and leading dimensions were, so one micro-kernel serves all four combinations, and the edge
 * panels are zero-padded so that it never needs a remainder loop. Tiles that overhang C are
 * computed into a local tile and copied. beta is applied by the first KC slice only (later
 * slices accumulate with beta = 1); beta = 0 never reads C, which may hold NaN garbage.
 *
 * Micro-kernels: AVX-512F (12×32: 24 of the 32 registers accumulate; 12 rows waste little on
 * the batch sizes 32, 128, 1024 of training) and AVX2+FMA (6×16), written with intrinsics in
 * functions compiled for those ISAs via __attribute__((target)) and chosen at run time by
 * CPUID, so the library itself is still built for baseline x86-64 at -O2. Elsewhere, GCC vector
 * extensions (6×8, SSE2 or NEON), or without GNU C plain fixed-length loops (4×16) that the
 * compiler vectorises. Intrinsics rather than `a * b + c` because -std=c11 implies
 * -ffp-contract=off: the compiler would not fuse the multiply-add.
 *
 * A context is single-threaded (its threads argument is accepted and ignored): gemm.c runs one
 * context per thread of nabla's pool, each on its own block of C. nb_gemm_dots, the few-rows
 * product, keeps no state and is called by gemm.c for every backend.
 */
#include "backend/backend.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_X86_KERNELS 1
#include <immintrin.h>
#else
#define HAVE_X86_KERNELS 0
#endif

/* Cache blocking (floats). KC·NR·4 bytes of Bp (the micro-panel re-read for every MR rows)
 * fit L1; MC·KC·4 bytes of Ap fit L2; KC·NC·4 bytes of Bp fit L2/L3. MC is rounded down to a
 * multiple of the kernel's MR at run time. */
enum {
    BLOCK_KC = 256,
    BLOCK_MC = 168,
    BLOCK_NC = 1024,
    MR_MAX = 12,
    NR_MAX = 32,
    PACK_ALIGN = 64, /* bytes: one cache line, one AVX-512 register */
};

/* C[0:MR, 0:NR] (row stride ldc) = alpha · Ap·Bp + beta · C over kc steps, where Ap is kc × MR
 * (k-major) and Bp is kc × NR (k-major). beta == 0 writes C without reading it. */
typedef void kernel_fn(int kc, const float *Ap, const float *Bp, float *C, int ldc,
                       float alpha, float beta);

/* Packs one panel: dst[k·w + r] (k < kc, r < w) is the r-th of n ≤ w source vectors at depth
 * k, zero for r ≥ n. "copy" when the n values of one depth are contiguous, src[k·ld + r];
 * "transpose" when each vector is contiguous along k, src[r·ld + k] (rows of A as stored,
 * rows of B when it is used transposed). The transpose is the expensive one — done a float
 * at a time it costs as much as the multiplication when M or N is small — so each kernel
 * comes with its own. */
typedef void pack_fn(float *dst, int w, const float *src, int ld, int n, int kc);

typedef struct kernel {
    const char *isa;
    int mr, nr;
    kernel_fn *run;
    pack_fn *transpose;
    int (*supported)(void);
} kernel;

typedef struct portable {
    const kernel *kern;
    float *pack; /* Ap (MC × KC) then Bp (KC × NC), sized once for the largest blocks */
} portable;

/* ---- micro-kernels ----------------------------------------------------------------------- */

#if HAVE_X86_KERNELS

enum { AVX512_MR = 12, AVX512_NV = 2, AVX512_NR = AVX512_NV * 16 };

#define KERNEL_NAME kernel_avx512
#define KERNEL_ATTR __attribute__((target("avx512f")))
#define VEC __m512
#define LANES 16
#define KERNEL_MR AVX512_MR
#define KERNEL_NV AVX512_NV
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_load_ps(p)
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#include "backend/gemm_portable_kernel.h"

/* 16 × 16 transpose in registers: r[i] holds row i, afterwards r[k] holds column k.
 *   1. unpack{lo,hi}_ps of row pairs, 2. unpack{lo,hi}_pd of those: in each 128-bit lane L,
 *      c[4g + e] holds rows 4g..4g+3 at column 4L + e;
 *   3. a 4 × 4 transpose of 128-bit lanes across c[e], c[4 + e], c[8 + e], c[12 + e] gives
 *      column 4L + e in lane order g = 0..3. */
__attribute__((target("avx512f"))) static void transpose16(__m512 r[16])
{
    __m512 a[16], c[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        __m512d a0 = _mm512_castps_pd(a[4 * g]), a1 = _mm512_castps_pd(a[4 * g + 1]);
        __m512d a2 = _mm512_castps_pd(a[4 * g + 2]), a3 = _mm512_castps_pd(a[4 * g + 3]);
        c[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
        c[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
        c[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
        c[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
#pragma GCC unroll 4
    for (int e = 0; e < 4; e++) {
        __m512 s0 = _mm512_shuffle_f32x4(c[e], c[4 + e], 0x44);     /* c[e].L0 L1, c[4+e].L0 L1 */
        __m512 s1 = _mm512_shuffle_f32x4(c[e], c[4 + e], 0xee);     /* … L2 L3 */
        __m512 s2 = _mm512_shuffle_f32x4(c[8 + e], c[12 + e], 0x44);
        __m512 s3 = _mm512_shuffle_f32x4(c[8 + e], c[12 + e], 0xee);
        r[0 + e] = _mm512_shuffle_f32x4(s0, s2, 0x88);  /* lane 0 of all four */
        r[4 + e] = _mm512_shuffle_f32x4(s0, s2, 0xdd);  /* lane 1 */
        r[8 + e] = _mm512_shuffle_f32x4(s1, s3, 0x88);  /* lane 2 */
        r[12 + e] = _mm512_shuffle_f32x4(s1, s3, 0xdd); /* lane 3 */
    }
}

/* pack_fn "transpose" in 16 × 16 blocks; masked loads and stores cover the edges without
 * touching memory outside the operands or the panel. */
__attribute__((target("avx512f"))) static void transpose_avx512(float *dst, int w,
                                                                const float *src, int ld,
                                                                int n, int kc)
{
    for (int r0 = 0; r0 < w; r0 += 16) {
        int lanes = w - r0 < 16 ? w - r0 : 16;
        __mmask16 store_mask = (__mmask16)((1u << lanes) - 1);
        for (int k0 = 0; k0 < kc; k0 += 16) {
            int depth = kc - k0 < 16 ? kc - k0 : 16;
            __mmask16 load_mask = (__mmask16)((1u << depth) - 1);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = r0 + i < n ? _mm512_maskz_loadu_ps(load_mask,
                                                          src + (size_t)(r0 + i) * ld + k0)
                                  : _mm512_setzero_ps();
            transpose16(r);
            for (int k = 0; k < depth; k++)
                _mm512_mask_storeu_ps(dst + (size_t)(k0 + k) * w + r0, store_mask, r[k]);
        }
    }
}

enum { AVX2_MR = 6, AVX2_NV = 2, AVX2_NR = AVX2_NV * 8 };

#define KERNEL_NAME kernel_avx2
#define KERNEL_ATTR __attribute__((target("avx2,fma")))
#define VEC __m256
#define LANES 8
#define KERNEL_MR AVX2_MR
#define KERNEL_NV AVX2_NV
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_load_ps(p)
#define VBCAST(p) _mm256_broadcast_ss(p)
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VMUL(a, b) _mm256_mul_ps(a, b)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#include "backend/gemm_portable_kernel.h"

static int have_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

static int have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#endif /* HAVE_X86_KERNELS */

#if defined(__GNUC__)
/* GCC vector extensions (also understood by clang): 4-float registers, SSE2 on any x86-64 or
 * NEON on AArch64. 6 × 2 accumulators, 2 of B and a broadcast of A fit 16 registers. */
typedef float vec4 __attribute__((vector_size(16)));

enum { PLAIN_MR = 6, PLAIN_NV = 2, PLAIN_NR = PLAIN_NV * 4 };

static inline vec4 load4(const float *p)
{
    vec4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store4(float *p, vec4 v)
{
    memcpy(p, &v, sizeof v);
}

/* -std=c11 keeps a·b + c unfused here (-ffp-contract=off): a multiply, then an add. */
#define KERNEL_NAME kernel_plain
#define KERNEL_ATTR
#define VEC vec4
#define LANES 4
#define KERNEL_MR PLAIN_MR
#define KERNEL_NV PLAIN_NV
#define VZERO() ((vec4){0.0f, 0.0f, 0.0f, 0.0f})
#define VLOAD(p) load4(p)
#define VBCAST(p) ((vec4){*(p), *(p), *(p), *(p)})
#define VSET1(x) ((vec4){x, x, x, x})
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VMUL(a, b) ((a) * (b))
#define VLOADU(p) load4(p)
#define VSTOREU(p, v) store4(p, v)
#include "backend/gemm_portable_kernel.h"
#else
/* Fixed-length inner loops over NR that a vectorising compiler turns into SIMD code. */
enum { PLAIN_MR = 4, PLAIN_NR = 16 };

static void kernel_plain(int kc, const float *Ap, const float *Bp, float *C, int ldc,
                         float alpha, float beta)
{
    float acc[PLAIN_MR][PLAIN_NR] = {{0}};
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < PLAIN_MR; i++) {
            float a = Ap[i];
            for (int j = 0; j < PLAIN_NR; j++)
                acc[i][j] += a * Bp[j];
        }
        Ap += PLAIN_MR;
        Bp += PLAIN_NR;
    }
    for (int i = 0; i < PLAIN_MR; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) {
            for (int j = 0; j < PLAIN_NR; j++)
                c[j] = alpha * acc[i][j];
        } else {
            for (int j = 0; j < PLAIN_NR; j++)
                c[j] = alpha * acc[i][j] + beta * c[j];
        }
    }
}
#endif

/* ---- few rows: dot products ---------------------------------------------------------------- */

/* C[i, j] = Σ_k A[i, k]·B[j, k] + beta·C[i, j] for a few rows i (op(A) = A, op(B) = Bᵀ, both
 * stored with k contiguous: Linear's forward Y = X Wᵀ on a few samples). One sample at a time
 * is a matrix–vector product: each weight is used once, so packing W (what the blocked product
 * and the libraries do) would cost more than the product itself. Instead each output is a dot
 * product of two contiguous rows, eight outputs at a time so that one load of A serves eight
 * multiply-adds. */
#if HAVE_X86_KERNELS
__attribute__((target("avx512f"))) static void dots_avx512(int M, int N, int K, const float *A,
                                                           int lda, const float *B, int ldb,
                                                           float beta, float *C, int ldc)
{
    const __mmask16 tail = (__mmask16)((1u << (K % 16)) - 1);
    const int k16 = K / 16 * 16;
    for (int i = 0; i < M; i++) {
        const float *a = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc;
        int j = 0;
        for (; j + 8 <= N; j += 8) {
            __m512 s[8];
            const float *b = B + (size_t)j * ldb;
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++)
                s[q] = _mm512_setzero_ps();
            for (int k = 0; k < k16; k += 16) {
                __m512 x = _mm512_loadu_ps(a + k);
#pragma GCC unroll 8
                for (int q = 0; q < 8; q++)
                    s[q] = _mm512_fmadd_ps(_mm512_loadu_ps(b + (size_t)q * ldb + k), x, s[q]);
            }
            if (tail) {
                __m512 x = _mm512_maskz_loadu_ps(tail, a + k16);
#pragma GCC unroll 8
                for (int q = 0; q < 8; q++)
                    s[q] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, b + (size_t)q * ldb + k16),
                                           x, s[q]);
            }
            for (int q = 0; q < 8; q++) {
                float r = _mm512_reduce_add_ps(s[q]);
                c[j + q] = beta != 0.0f ? r + beta * c[j + q] : r;
            }
        }
        for (; j < N; j++) {
            const float *b = B + (size_t)j * ldb;
            __m512 s0 = _mm512_setzero_ps();
            for (int k = 0; k < k16; k += 16)
                s0 = _mm512_fmadd_ps(_mm512_loadu_ps(b + k), _mm512_loadu_ps(a + k), s0);
            if (tail)
                s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, b + k16),
                                     _mm512_maskz_loadu_ps(tail, a + k16), s0);
            float r = _mm512_reduce_add_ps(s0);
            c[j] = beta != 0.0f ? r + beta * c[j] : r;
        }
    }
}
#endif

static void dots_plain(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        const float *a = A + (size_t)i * lda;
        for (int j = 0; j < N; j++) {
            const float *b = B + (size_t)j * ldb;
            float acc[8] = {0};
            int k = 0;
            for (; k + 8 <= K; k += 8)
                for (int v = 0; v < 8; v++)
                    acc[v] += a[k + v] * b[k + v];
            float r = 0.0f;
            for (; k < K; k++)
                r += a[k] * b[k];
            for (int v = 0; v < 8; v++)
                r += acc[v];
            float *c = C + (size_t)i * ldc + j;
            *c = beta != 0.0f ? r + beta * *c : r;
        }
    }
}

void nb_gemm_dots(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc)
{
#if HAVE_X86_KERNELS
    if (have_avx512()) {
        dots_avx512(M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    dots_plain(M, N, K, A, lda, B, ldb, beta, C, ldc);
}

/* ---- packing ------------------------------------------------------------------------------ */

static void pack_copy(float *dst, int w, const float *src, int ld, int n, int kc)
{
    for (int k = 0; k < kc; k++) {
        float *d = dst + (size_t)k * w;
        memcpy(d, src + (size_t)k * ld, (size_t)n * sizeof *d);
        for (int r = n; r < w; r++)
            d[r] = 0.0f;
    }
}

/* Depth outermost: the stores run along a panel row and the strided loads of the n source
 * rows hit the same cache lines for 16 consecutive k. */
static void transpose_plain(float *dst, int w, const float *src, int ld, int n, int kc)
{
    for (int k = 0; k < kc; k++) {
        float *d = dst + (size_t)k * w;
        for (int r = 0; r < n; r++)
            d[r] = src[(size_t)r * ld + k];
        for (int r = n; r < w; r++)
            d[r] = 0.0f;
    }
}

/* Ap[panel][k][mr] = op(A)[i0 + panel·mr + i, k0 + k] for the m × kc block; op(A) is A
 * (M × K, row stride lda) or Aᵀ (A stored K × M). */
static void pack_A(const kernel *kern, float *Ap, const float *A, int lda, int transA, int i0,
                   int k0, int m, int kc)
{
    const int mr = kern->mr;
    for (int ip = 0; ip < m; ip += mr) {
        int rows = m - ip < mr ? m - ip : mr;
        if (transA)
            pack_copy(Ap, mr, A + (size_t)k0 * lda + i0 + ip, lda, rows, kc);
        else
            kern->transpose(Ap, mr, A + (size_t)(i0 + ip) * lda + k0, lda, rows, kc);
        Ap += (size_t)kc * mr;
    }
}

/* Bp[panel][k][nr] = op(B)[k0 + k, j0 + panel·nr + j] for the kc × n block; op(B) is B
 * (K × N, row stride ldb) or Bᵀ (B stored N × K). */
static void pack_B(const kernel *kern, float *Bp, const float *B, int ldb, int transB, int k0,
                   int j0, int kc, int n)
{
    const int nr = kern->nr;
    for (int jp = 0; jp < n; jp += nr) {
        int cols = n - jp < nr ? n - jp : nr;
        if (transB)
            kern->transpose(Bp, nr, B + (size_t)(j0 + jp) * ldb + k0, ldb, cols, kc);
        else
            pack_copy(Bp, nr, B + (size_t)k0 * ldb + j0 + jp, ldb, cols, kc);
        Bp += (size_t)kc * nr;
    }
}

static int always(void)
{
    return 1;
}

/* In order of preference; the first one the CPU supports is used. */
static const kernel kernels[] = {
#if HAVE_X86_KERNELS
    {.isa = "avx512", .mr = AVX512_MR, .nr = AVX512_NR, .run = kernel_avx512,
     .transpose = transpose_avx512, .supported = have_avx512},
    {.isa = "avx2", .mr = AVX2_MR, .nr = AVX2_NR, .run = kernel_avx2,
     .transpose = transpose_plain, .supported = have_avx2},
#endif
    {.isa = "plain", .mr = PLAIN_MR, .nr = PLAIN_NR, .run = kernel_plain,
     .transpose = transpose_plain, .supported = always},
};

/* ---- the blocked product ------------------------------------------------------------------ */

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* Floats of Ap, rounded so that Bp starts on a PACK_ALIGN boundary. */
static size_t pack_A_floats(void)
{
    return round_up((size_t)round_up(BLOCK_MC, MR_MAX) * BLOCK_KC, PACK_ALIGN / sizeof(float));
}

static size_t pack_B_floats(void)
{
    return (size_t)BLOCK_KC * round_up(BLOCK_NC, NR_MAX);
}

static portable *portable_new(const kernel *kern, nb_error *err)
{
    portable *p = calloc(1, sizeof *p);
    if (!p) {
        nb_error_set(err, NB_ENOMEM, "gemm (portable): out of memory");
        return NULL;
    }
    p->kern = kern;
    /* Both blocks at their largest, allocated once: a run never allocates or fails. The pages
     * are only touched (committed) as far as the shapes actually used need. */
    size_t bytes = round_up((pack_A_floats() + pack_B_floats()) * sizeof(float), PACK_ALIGN);
    p->pack = aligned_alloc(PACK_ALIGN, bytes);
    if (!p->pack) {
        free(p);
        nb_error_set(err, NB_ENOMEM,
                     "gemm (portable): out of memory for %zu bytes of packing buffers", bytes);
        return NULL;
    }
    return p;
}

void *nb_gemm_portable_new(int threads, nb_error *err)
{
    (void)threads;
    size_t i = 0;
    while (!kernels[i].supported()) /* the last kernel is always supported */
        i++;
    return portable_new(&kernels[i], err);
}

void *nb_gemm_portable_new_isa(const char *isa, nb_error *err)
{
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++)
        if (strcmp(kernels[i].isa, isa) == 0 && kernels[i].supported())
            return portable_new(&kernels[i], err);
    nb_error_set(err, NB_ENOTSUP, "gemm (portable): no %s kernel on this build or CPU", isa);
    return NULL;
}

void nb_gemm_portable_free(void *ctx)
{
    portable *p = ctx;
    if (!p)
        return;
    free(p->pack);
    free(p);
}

void nb_gemm_portable_run(void *ctx, int transA, int transB, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc)
{
    portable *p = ctx;
    const kernel *kern = p->kern;
    const int mr = kern->mr, nr = kern->nr;
    const int mc_max = BLOCK_MC / mr * mr;
    float *Ap = p->pack, *Bp = p->pack + pack_A_floats();
    float tile[MR_MAX * NR_MAX];

    for (int jc = 0; jc < N; jc += BLOCK_NC) {
        int nc = N - jc < BLOCK_NC ? N - jc : BLOCK_NC;
        for (int pc = 0; pc < K; pc += BLOCK_KC) {
            int kc = K - pc < BLOCK_KC ? K - pc : BLOCK_KC;
            float beta_slice = pc == 0 ? beta : 1.0f;
            pack_B(kern, Bp, B, ldb, transB, pc, jc, kc, nc);
            for (int ic = 0; ic < M; ic += mc_max) {
                int mc = M - ic < mc_max ? M - ic : mc_max;
                pack_A(kern, Ap, A, lda, transA, ic, pc, mc, kc);
                for (int jr = 0; jr < nc; jr += nr) {
                    int n = nc - jr < nr ? nc - jr : nr;
                    const float *bp = Bp + (size_t)(jr / nr) * kc * nr;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int m = mc - ir < mr ? mc - ir : mr;
                        const float *ap = Ap + (size_t)(ir / mr) * kc * mr;
                        float *c = C + (size_t)(ic + ir) * ldc + jc + jr;
                        if (m == mr && n == nr) {
                            kern->run(kc, ap, bp, c, ldc, alpha, beta_slice);
                            continue;
                        }
                        /* an edge tile: compute it whole, then merge the part inside C */
                        kern->run(kc, ap, bp, tile, nr, 1.0f, 0.0f);
                        for (int i = 0; i < m; i++) {
                            float *ci = c + (size_t)i * ldc;
                            const float *ti = tile + (size_t)i * nr;
                            if (beta_slice == 0.0f) {
                                for (int j = 0; j < n; j++)
                                    ci[j] = alpha * ti[j];
                            } else {
                                for (int j = 0; j < n; j++)
                                    ci[j] = alpha * ti[j] + beta_slice * ci[j];
                            }
                        }
                    }
                }
            }
        }
    }
}
