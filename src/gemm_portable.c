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
 * Micro-kernels: AVX-512F (14×32) and AVX2+FMA (6×16) written with intrinsics inside functions
 * compiled for those ISAs via __attribute__((target)) and chosen at run time by CPUID, so the
 * library itself is still built for baseline x86-64 at -O2; elsewhere a plain C kernel (4×16)
 * whose inner loops are fixed-length and which the compiler vectorises. Intrinsics rather than
 * `a * b + c` because -std=c11 implies -ffp-contract=off: the compiler would not fuse.
 *
 * Single-threaded: the threads argument of nb_gemm_new is accepted and ignored.
 */
#include "nabla.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_X86_KERNELS 1
#include <immintrin.h>
#else
#define HAVE_X86_KERNELS 0
#endif

/* The backend interface, also declared in gemm.c (and used by gemm_onednn.c as fallback).
 * nb_gemm_portable_new_isa forces one micro-kernel ("avx512", "avx2", "plain") so that the
 * tests can check every kernel the machine supports; NULL with NB_ENOTSUP otherwise. */
void *nb_gemm_portable_new(int threads, nb_error *err);
void *nb_gemm_portable_new_isa(const char *isa, nb_error *err);
void nb_gemm_portable_free(void *ctx);
void nb_gemm_portable_run(void *ctx, int transA, int transB, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc);

/* Cache blocking (floats). KC·NR·4 bytes of Bp (the micro-panel re-read for every MR rows)
 * fit L1; MC·KC·4 bytes of Ap fit L2; KC·NC·4 bytes of Bp fit L2/L3. MC is rounded down to a
 * multiple of the kernel's MR at run time. */
enum {
    BLOCK_KC = 256,
    BLOCK_MC = 168,
    BLOCK_NC = 1024,
    MR_MAX = 14,
    NR_MAX = 32,
    PACK_ALIGN = 64, /* bytes: one cache line, one AVX-512 register */
};

/* C[0:MR, 0:NR] (row stride ldc) = alpha · Ap·Bp + beta · C over kc steps, where Ap is kc × MR
 * (k-major) and Bp is kc × NR (k-major). beta == 0 writes C without reading it. */
typedef void kernel_fn(int kc, const float *Ap, const float *Bp, float *C, int ldc,
                       float alpha, float beta);

typedef struct kernel {
    const char *isa;
    int mr, nr;
    kernel_fn *run;
    int (*supported)(void);
} kernel;

typedef struct portable {
    const kernel *kern;
    float *pack; /* Ap (MC × KC) then Bp (KC × NC), sized once for the largest blocks */
} portable;

/* ---- micro-kernels ----------------------------------------------------------------------- */

#if HAVE_X86_KERNELS

enum { AVX512_MR = 14, AVX512_NV = 2, AVX512_NR = AVX512_NV * 16 };

__attribute__((target("avx512f"))) static void kernel_avx512(int kc, const float *Ap,
                                                             const float *Bp, float *C, int ldc,
                                                             float alpha, float beta)
{
    __m512 acc[AVX512_MR][AVX512_NV];
#pragma GCC unroll 16
    for (int i = 0; i < AVX512_MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            acc[i][v] = _mm512_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m512 b[AVX512_NV];
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++)
            b[v] = _mm512_load_ps(Bp + 16 * v);
#pragma GCC unroll 16
        for (int i = 0; i < AVX512_MR; i++) {
            __m512 a = _mm512_set1_ps(Ap[i]);
#pragma GCC unroll 4
            for (int v = 0; v < AVX512_NV; v++)
                acc[i][v] = _mm512_fmadd_ps(a, b[v], acc[i][v]);
        }
        Ap += AVX512_MR;
        Bp += AVX512_NR;
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < AVX512_MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < AVX512_NV; v++) {
            float *c = C + (size_t)i * ldc + 16 * v;
            __m512 r = _mm512_mul_ps(va, acc[i][v]);
            if (beta != 0.0f)
                r = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c), r);
            _mm512_storeu_ps(c, r);
        }
    }
}

enum { AVX2_MR = 6, AVX2_NV = 2, AVX2_NR = AVX2_NV * 8 };

__attribute__((target("avx2,fma"))) static void kernel_avx2(int kc, const float *Ap,
                                                            const float *Bp, float *C, int ldc,
                                                            float alpha, float beta)
{
    __m256 acc[AVX2_MR][AVX2_NV];
#pragma GCC unroll 8
    for (int i = 0; i < AVX2_MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < AVX2_NV; v++)
            acc[i][v] = _mm256_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m256 b[AVX2_NV];
#pragma GCC unroll 4
        for (int v = 0; v < AVX2_NV; v++)
            b[v] = _mm256_load_ps(Bp + 8 * v);
#pragma GCC unroll 8
        for (int i = 0; i < AVX2_MR; i++) {
            __m256 a = _mm256_broadcast_ss(Ap + i);
#pragma GCC unroll 4
            for (int v = 0; v < AVX2_NV; v++)
                acc[i][v] = _mm256_fmadd_ps(a, b[v], acc[i][v]);
        }
        Ap += AVX2_MR;
        Bp += AVX2_NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < AVX2_MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < AVX2_NV; v++) {
            float *c = C + (size_t)i * ldc + 8 * v;
            __m256 r = _mm256_mul_ps(va, acc[i][v]);
            if (beta != 0.0f)
                r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), r);
            _mm256_storeu_ps(c, r);
        }
    }
}

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

static void kernel_plain(int kc, const float *Ap, const float *Bp, float *C, int ldc,
                         float alpha, float beta)
{
    vec4 acc[PLAIN_MR][PLAIN_NV];
#pragma GCC unroll 8
    for (int i = 0; i < PLAIN_MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < PLAIN_NV; v++)
            acc[i][v] = (vec4){0.0f, 0.0f, 0.0f, 0.0f};
    }
    for (int k = 0; k < kc; k++) {
        vec4 b[PLAIN_NV];
#pragma GCC unroll 4
        for (int v = 0; v < PLAIN_NV; v++)
            memcpy(&b[v], Bp + 4 * v, sizeof b[v]);
#pragma GCC unroll 8
        for (int i = 0; i < PLAIN_MR; i++) {
            vec4 a = {Ap[i], Ap[i], Ap[i], Ap[i]};
#pragma GCC unroll 4
            for (int v = 0; v < PLAIN_NV; v++)
                acc[i][v] += a * b[v];
        }
        Ap += PLAIN_MR;
        Bp += PLAIN_NR;
    }
    for (int i = 0; i < PLAIN_MR; i++) {
        for (int v = 0; v < PLAIN_NV; v++) {
            float *c = C + (size_t)i * ldc + 4 * v;
            vec4 r = alpha * acc[i][v];
            if (beta != 0.0f) {
                vec4 old;
                memcpy(&old, c, sizeof old);
                r += beta * old;
            }
            memcpy(c, &r, sizeof r);
        }
    }
}
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

static int always(void)
{
    return 1;
}

/* In order of preference; the first one the CPU supports is used. */
static const kernel kernels[] = {
#if HAVE_X86_KERNELS
    {.isa = "avx512", .mr = AVX512_MR, .nr = AVX512_NR, .run = kernel_avx512,
     .supported = have_avx512},
    {.isa = "avx2", .mr = AVX2_MR, .nr = AVX2_NR, .run = kernel_avx2, .supported = have_avx2},
#endif
    {.isa = "plain", .mr = PLAIN_MR, .nr = PLAIN_NR, .run = kernel_plain, .supported = always},
};

/* ---- packing ------------------------------------------------------------------------------ */

/* Ap[panel][k][mr] = op(A)[i0 + panel·mr + i, k0 + k], zero past row m. op(A) is A (M × K,
 * row stride lda) or Aᵀ (A stored K × M). */
static void pack_A(float *Ap, const float *A, int lda, int transA, int i0, int k0, int m,
                   int kc, int mr)
{
    for (int ip = 0; ip < m; ip += mr) {
        int rows = m - ip < mr ? m - ip : mr;
        if (transA) {
            /* op(A)[i, k] = A[k, i]: each k gives `rows` contiguous floats */
            for (int k = 0; k < kc; k++) {
                const float *src = A + (size_t)(k0 + k) * lda + i0 + ip;
                float *dst = Ap + (size_t)k * mr;
                for (int i = 0; i < rows; i++)
                    dst[i] = src[i];
                for (int i = rows; i < mr; i++)
                    dst[i] = 0.0f;
            }
        } else {
            for (int i = 0; i < rows; i++) {
                const float *src = A + (size_t)(i0 + ip + i) * lda + k0;
                for (int k = 0; k < kc; k++)
                    Ap[(size_t)k * mr + i] = src[k];
            }
            for (int i = rows; i < mr; i++)
                for (int k = 0; k < kc; k++)
                    Ap[(size_t)k * mr + i] = 0.0f;
        }
        Ap += (size_t)kc * mr;
    }
}

/* Bp[panel][k][nr] = op(B)[k0 + k, j0 + panel·nr + j], zero past column n. op(B) is B (K × N,
 * row stride ldb) or Bᵀ (B stored N × K). */
static void pack_B(float *Bp, const float *B, int ldb, int transB, int k0, int j0, int kc,
                   int n, int nr)
{
    for (int jp = 0; jp < n; jp += nr) {
        int cols = n - jp < nr ? n - jp : nr;
        if (transB) {
            /* op(B)[k, j] = B[j, k]: each column j is a contiguous row of B */
            for (int j = 0; j < cols; j++) {
                const float *src = B + (size_t)(j0 + jp + j) * ldb + k0;
                for (int k = 0; k < kc; k++)
                    Bp[(size_t)k * nr + j] = src[k];
            }
            for (int j = cols; j < nr; j++)
                for (int k = 0; k < kc; k++)
                    Bp[(size_t)k * nr + j] = 0.0f;
        } else {
            for (int k = 0; k < kc; k++) {
                const float *src = B + (size_t)(k0 + k) * ldb + j0 + jp;
                float *dst = Bp + (size_t)k * nr;
                memcpy(dst, src, (size_t)cols * sizeof *dst);
                for (int j = cols; j < nr; j++)
                    dst[j] = 0.0f;
            }
        }
        Bp += (size_t)kc * nr;
    }
}

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
            pack_B(Bp, B, ldb, transB, pc, jc, kc, nc, nr);
            for (int ic = 0; ic < M; ic += mc_max) {
                int mc = M - ic < mc_max ? M - ic : mc_max;
                pack_A(Ap, A, lda, transA, ic, pc, mc, kc, mr);
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
