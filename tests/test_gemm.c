/* Matrix products: every backend compiled in (and every portable micro-kernel this CPU runs)
 * against a double-precision reference, over the four transpose combinations, odd sizes,
 * padded leading dimensions, alpha ≠ 1, beta = 0 on NaN-filled C, beta = 1 accumulation,
 * repeated calls through cached primitives and changing shapes; then the naming API.
 *
 * Tolerance: a float dot product of length K errs by at most about K·u·Σ|a||b| (u = eps/2,
 * Higham §3.1), whatever the summation order or blocking; we allow (K + 2)·eps·(|alpha|·Σ|a||b|
 * + |beta·C|), twice that plus the scaling and accumulation roundings.
 */
#include "check.h"
#include "nabla.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>
#if defined(NB_HAVE_ONEDNN) && defined(NB_HAVE_OPENBLAS)
#include <cblas.h>
#endif

/* Internal to gemm_portable.c: the portable backend with one chosen micro-kernel. */
void *nb_gemm_portable_new_isa(const char *isa, nb_error *err);
void nb_gemm_portable_free(void *ctx);
void nb_gemm_portable_run(void *ctx, int transA, int transB, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta,
                          float *C, int ldc);

/* What a check runs: a public context, or a bare portable one with a forced kernel (which
 * skips gemm.c's handling of degenerate sizes, so it only gets regular products). */
typedef struct runner {
    char name[64];
    nb_gemm *gemm;
    void *portable;
} runner;

static void run(const runner *r, int transA, int transB, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (r->gemm)
        nb_gemm_run(r->gemm, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
        nb_gemm_portable_run(r->portable, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta,
                             C, ldc);
}

static const float C_PAD = 12345.0f; /* in C's padding columns; must survive every product */

typedef struct product {
    int transA, transB, M, N, K;
    int pad;       /* extra elements on each leading dimension (lda + pad, ldb + 2·pad, …) */
    float alpha, beta;
} product;

static float *random_matrix(nb_rng *rng, size_t n)
{
    float *x = malloc(n * sizeof *x);
    if (x)
        for (size_t i = 0; i < n; i++)
            x[i] = 2.0f * nb_rng_uniform(rng) - 1.0f;
    return x;
}

/* Runs p once on fresh random data and compares with the double-precision product. beta = 0
 * gets a C full of NaN (which must not leak into the result). Returns the failures seen. */
static int check_product(const runner *r, const product *p, nb_rng *rng)
{
    const int M = p->M, N = p->N, K = p->K;
    /* stored shapes: A is M × K (K × M when transposed), B is K × N (N × K) */
    const int a_rows = p->transA ? K : M, a_cols = p->transA ? M : K;
    const int b_rows = p->transB ? N : K, b_cols = p->transB ? K : N;
    const int lda = a_cols + p->pad, ldb = b_cols + 2 * p->pad, ldc = N + 3 * p->pad;
    float *A = random_matrix(rng, (size_t)a_rows * lda);
    float *B = random_matrix(rng, (size_t)b_rows * ldb);
    float *C = random_matrix(rng, (size_t)M * ldc);
    float *C0 = malloc((size_t)M * ldc * sizeof *C0);
    int before = check_failures;
    CHECK(A && B && C && C0);
    if (!A || !B || !C || !C0)
        goto done;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++)
            if (j >= N)
                C[(size_t)i * ldc + j] = C_PAD;
            else if (p->beta == 0.0f)
                C[(size_t)i * ldc + j] = NAN;
    memcpy(C0, C, (size_t)M * ldc * sizeof *C0);

    run(r, p->transA, p->transB, M, N, K, p->alpha, A, lda, B, ldb, p->beta, C, ldc);

    /* every element of small products; an even spread of about 2048 of large ones (the
     * double-precision reference would otherwise dominate the run time) */
    const long step = (long)M * N > 2048 ? (long)M * N / 2048 : 1;
    int bad = 0;
    for (int i = 0; i < M && bad < 5; i++) {
        for (int j = 0; j < N && bad < 5; j++) {
            if (((long)i * 3 + j) % step != 0)
                continue;
            double dot = 0.0, absdot = 0.0;
            for (int k = 0; k < K; k++) {
                double a = p->transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = p->transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                dot += a * b;
                absdot += fabs(a * b);
            }
            double c0 = p->beta == 0.0f ? 0.0 : C0[(size_t)i * ldc + j];
            double want = p->alpha * dot + p->beta * c0;
            double tol = (K + 2) * (double)FLT_EPSILON *
                             (fabs(p->alpha) * absdot + fabs(p->beta * c0)) +
                         (double)FLT_MIN;
            double got = C[(size_t)i * ldc + j];
            if (!(fabs(got - want) <= tol)) {
                bad++;
                CHECK_MSG(0,
                          "%s: %s%s M=%d N=%d K=%d pad=%d alpha=%g beta=%g: C[%d,%d] = %.9g, "
                          "want %.9g ± %.3g",
                          r->name, p->transA ? "Aᵀ" : "A", p->transB ? "Bᵀ" : "B", M, N, K,
                          p->pad, p->alpha, p->beta, i, j, got, want, tol);
            }
        }
        for (int j = N; j < ldc && bad < 5; j++) {
            if (C[(size_t)i * ldc + j] != C_PAD) {
                bad++;
                CHECK_MSG(0, "%s: M=%d N=%d K=%d: padding C[%d,%d] overwritten", r->name, M, N,
                          K, i, j);
            }
        }
    }
    check_count++;
done:
    free(A);
    free(B);
    free(C);
    free(C0);
    return check_failures - before;
}

static const int SHAPES[][3] = {
    /* M, N, K */
    {1, 1, 1},     {7, 13, 5},    {33, 65, 129}, {128, 256, 784}, {1, 256, 784},
    {1, 10, 128},  {32, 10, 128}, {200, 300, 600}, /* several MC and KC blocks */
    {3, 1100, 17},                                 /* more than one NC block */
    {1000, 1, 3},
};

/* The configurations every shape goes through. */
static const struct {
    int pad;
    float alpha, beta;
} CONFIGS[] = {
    {.pad = 0, .alpha = 1.0f, .beta = 0.0f},    /* forward: C = A·B, C starts as NaN */
    {.pad = 3, .alpha = 1.0f, .beta = 1.0f},    /* backward: dW += dYᵀ X */
    {.pad = 1, .alpha = -0.75f, .beta = 0.0f},  /* alpha ≠ 1 over NaN */
    {.pad = 5, .alpha = 2.5f, .beta = -0.5f},   /* general alpha and beta */
};

static void check_all_products(const runner *r, nb_rng *rng)
{
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int t = 0; t < 4; t++)
            for (size_t c = 0; c < sizeof CONFIGS / sizeof CONFIGS[0]; c++) {
                product p = {.transA = t >> 1, .transB = t & 1, .M = SHAPES[s][0],
                             .N = SHAPES[s][1], .K = SHAPES[s][2], .pad = CONFIGS[c].pad,
                             .alpha = CONFIGS[c].alpha, .beta = CONFIGS[c].beta};
                check_product(r, &p, rng);
            }
}

/* The same shapes again and again with new data, alpha changing under a cached primitive, and
 * shapes interleaved: cached primitives must pick up every call's pointers and alpha. */
static void check_repeated(const runner *r, nb_rng *rng)
{
    static const product cycle[] = {
        /* one MLP 784-256-10 training step at batch 32, twice: forward, dX, dW */
        {.transB = 1, .M = 32, .N = 256, .K = 784, .alpha = 1.0f},
        {.M = 32, .N = 784, .K = 256, .alpha = 1.0f},
        {.transA = 1, .M = 256, .N = 784, .K = 32, .alpha = 1.0f, .beta = 1.0f},
        {.transB = 1, .M = 32, .N = 256, .K = 784, .alpha = 1.0f},
        {.transA = 1, .M = 256, .N = 784, .K = 32, .alpha = 1.0f, .beta = 1.0f},
        {.transB = 1, .M = 32, .N = 256, .K = 784, .alpha = 3.0f},
        {.transB = 1, .M = 32, .N = 256, .K = 784, .alpha = -0.5f},
        {.transB = 1, .M = 17, .N = 256, .K = 784, .alpha = 1.0f}, /* a smaller last batch */
        {.transB = 1, .M = 32, .N = 256, .K = 784, .alpha = 1.0f},
    };
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof cycle / sizeof cycle[0]; i++)
            check_product(r, &cycle[i], rng);
}

/* More distinct shapes than the oneDNN cache holds, then the first ones again. */
static void check_many_shapes(const runner *r, nb_rng *rng)
{
    for (int round = 0; round < 2; round++)
        for (int m = 1; m <= 130; m += round ? 13 : 1) {
            product p = {.transA = m & 1, .transB = (m >> 1) & 1, .M = m, .N = 9, .K = 11,
                         .alpha = 1.0f, .beta = (float)(m % 3 == 0)};
            check_product(r, &p, rng);
        }
}

/* Sizes the backends never see: gemm.c settles them. */
static void check_degenerate(nb_gemm *gemm)
{
    const char *name = nb_gemm_name(gemm);
    float A[4] = {NAN, NAN, NAN, NAN}, B[4] = {NAN, NAN, NAN, NAN};
    float C[4];

    /* K = 0: the empty sum; beta = 0 must clear NaN */
    for (int i = 0; i < 4; i++)
        C[i] = NAN;
    nb_gemm_run(gemm, 0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 0.0f, C, 2);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(C[i] == 0.0f, "%s: K = 0, beta = 0: C[%d] = %g", name, i, C[i]);
    /* K = 0 with beta: C scaled */
    for (int i = 0; i < 4; i++)
        C[i] = (float)i;
    nb_gemm_run(gemm, 0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 2.0f, C, 2);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(C[i] == 2.0f * (float)i, "%s: K = 0, beta = 2: C[%d] = %g", name, i, C[i]);
    /* alpha = 0: A and B are not read (they are NaN here) */
    nb_gemm_run(gemm, 1, 1, 2, 2, 2, 0.0f, A, 2, B, 2, 1.0f, C, 2);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(C[i] == 2.0f * (float)i, "%s: alpha = 0, beta = 1: C[%d] = %g", name, i,
                  C[i]);
    /* M = 0, N = 0, and invalid arguments leave C alone */
    nb_gemm_run(gemm, 0, 0, 0, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
    nb_gemm_run(gemm, 0, 0, 2, 0, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
    nb_gemm_run(gemm, 0, 0, -1, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
    nb_gemm_run(gemm, 0, 0, 2, 2, 2, 1.0f, A, 1, B, 2, 0.0f, C, 2); /* lda < K */
    nb_gemm_run(gemm, 0, 0, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 1); /* ldc < N */
    nb_gemm_run(gemm, 0, 0, 2, 2, 2, 1.0f, NULL, 2, B, 2, 0.0f, C, 2);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(C[i] == 2.0f * (float)i, "%s: no-op call changed C[%d] = %g", name, i, C[i]);
    nb_gemm_run(NULL, 0, 0, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
}

static void check_backend(nb_gemm_backend b, int threads, nb_rng *rng)
{
    nb_error err = {0};
    runner r = {.gemm = nb_gemm_new(b, threads, &err)};
    CHECK_MSG(r.gemm != NULL, "%s: %s", nb_gemm_backend_name(b), err.msg);
    if (!r.gemm)
        return;
    CHECK(strcmp(nb_gemm_name(r.gemm), nb_gemm_backend_name(b)) == 0);
    snprintf(r.name, sizeof r.name, "%s/%d threads", nb_gemm_name(r.gemm), threads);
    int before = check_failures;
    check_all_products(&r, rng);
    check_repeated(&r, rng);
    check_many_shapes(&r, rng);
    check_degenerate(r.gemm);
#if defined(NB_HAVE_ONEDNN) && defined(NB_HAVE_OPENBLAS)
    /* the thread budget: while oneDNN computes, OpenBLAS keeps to one thread */
    if (b == NB_GEMM_ONEDNN)
        CHECK(openblas_get_num_threads() == 1);
#endif
    printf("  %-24s %s\n", r.name, check_failures == before ? "ok" : "FAILED");
    nb_gemm_free(r.gemm);
}

static void check_portable_kernels(nb_rng *rng)
{
    static const char *const isas[] = {"avx512", "avx2", "plain"};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        nb_error err = {0};
        runner r = {.portable = nb_gemm_portable_new_isa(isas[i], &err)};
        if (!r.portable) {
            CHECK(err.code == NB_ENOTSUP);
            printf("  portable/%-15s not supported here\n", isas[i]);
            continue;
        }
        snprintf(r.name, sizeof r.name, "portable/%s", isas[i]);
        int before = check_failures;
        check_all_products(&r, rng);
        check_repeated(&r, rng);
        printf("  %-24s %s\n", r.name, check_failures == before ? "ok" : "FAILED");
        nb_gemm_portable_free(r.portable);
    }
}

static void check_names(void)
{
    static const nb_gemm_backend all[] = {NB_GEMM_AUTO, NB_GEMM_ONEDNN, NB_GEMM_OPENBLAS,
                                          NB_GEMM_PORTABLE};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        CHECK(nb_gemm_backend_parse(nb_gemm_backend_name(all[i])) == (int)all[i]);
    CHECK(strcmp(nb_gemm_backend_name(NB_GEMM_ONEDNN), "onednn") == 0);
    CHECK(strcmp(nb_gemm_backend_name(NB_GEMM_OPENBLAS), "openblas") == 0);
    CHECK(strcmp(nb_gemm_backend_name(NB_GEMM_PORTABLE), "portable") == 0);
    CHECK(nb_gemm_backend_parse("auto") == NB_GEMM_AUTO);
    CHECK(nb_gemm_backend_parse("cuda") == -1);
    CHECK(nb_gemm_backend_parse("") == -1);
    CHECK(nb_gemm_backend_parse("Portable") == -1);
    CHECK(nb_gemm_backend_parse(NULL) == -1);
    CHECK(strcmp(nb_gemm_backend_name((nb_gemm_backend)42), "unknown") == 0);
    CHECK(nb_gemm_available(NB_GEMM_AUTO));
    CHECK(nb_gemm_available(NB_GEMM_PORTABLE));
    CHECK(!nb_gemm_available((nb_gemm_backend)42));
#ifdef NB_HAVE_ONEDNN
    CHECK(nb_gemm_available(NB_GEMM_ONEDNN));
#else
    CHECK(!nb_gemm_available(NB_GEMM_ONEDNN));
#endif
#ifdef NB_HAVE_OPENBLAS
    CHECK(nb_gemm_available(NB_GEMM_OPENBLAS));
#else
    CHECK(!nb_gemm_available(NB_GEMM_OPENBLAS));
#endif

    const char *v = nb_version_string();
    CHECK(strncmp(v, "nabla " NB_VERSION " (gemm: ", strlen("nabla " NB_VERSION " (gemm: ")) == 0);
    for (size_t i = 1; i < sizeof all / sizeof all[0]; i++)
        CHECK_MSG((strstr(v, nb_gemm_backend_name(all[i])) != NULL) ==
                      nb_gemm_available(all[i]),
                  "%s vs %s", v, nb_gemm_backend_name(all[i]));

    /* AUTO takes the fastest built in: oneDNN, then OpenBLAS, then portable */
    nb_error err = {0};
    nb_gemm *gemm = nb_gemm_new(NB_GEMM_AUTO, 0, &err);
    CHECK_MSG(gemm != NULL, "%s", err.msg);
    if (gemm) {
        const char *want = nb_gemm_available(NB_GEMM_ONEDNN)     ? "onednn"
                           : nb_gemm_available(NB_GEMM_OPENBLAS) ? "openblas"
                                                                 : "portable";
        CHECK_MSG(strcmp(nb_gemm_name(gemm), want) == 0, "auto chose %s", nb_gemm_name(gemm));
        CHECK(strstr(v, want) != NULL);
        nb_gemm_free(gemm);
    }

    /* backends not built in, unknown backends and bad thread counts are refused */
    for (size_t i = 1; i < sizeof all / sizeof all[0]; i++) {
        if (nb_gemm_available(all[i]))
            continue;
        err = (nb_error){0};
        CHECK(nb_gemm_new(all[i], 1, &err) == NULL);
        CHECK(err.code == NB_ENOTSUP);
        CHECK(strstr(err.msg, nb_gemm_backend_name(all[i])) != NULL);
    }
    err = (nb_error){0};
    CHECK(nb_gemm_new((nb_gemm_backend)42, 1, &err) == NULL && err.code == NB_EINVAL);
    err = (nb_error){0};
    CHECK(nb_gemm_new(NB_GEMM_PORTABLE, -1, &err) == NULL && err.code == NB_EINVAL);
    CHECK(nb_gemm_new((nb_gemm_backend)-1, 1, NULL) == NULL);
    CHECK(strcmp(nb_gemm_name(NULL), "none") == 0);
    nb_gemm_free(NULL);
}

int main(void)
{
    nb_rng rng;
    nb_rng_seed(&rng, 20240601);
    printf("%s\n", nb_version_string());
    check_names();
    static const nb_gemm_backend built[] = {NB_GEMM_ONEDNN, NB_GEMM_OPENBLAS, NB_GEMM_PORTABLE};
    for (size_t i = 0; i < sizeof built / sizeof built[0]; i++) {
        if (!nb_gemm_available(built[i]))
            continue;
        check_backend(built[i], 0, &rng);
        if (built[i] != NB_GEMM_PORTABLE)
            check_backend(built[i], 1, &rng);
    }
    check_portable_kernels(&rng);
    return check_finish("test_gemm");
}
