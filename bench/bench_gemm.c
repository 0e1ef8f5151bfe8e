/* GFLOP/s of every matrix-product backend compiled in, with 1 and 2 threads, on the shapes
 * that matter for nabla: a few plain products and the products of one training step of the
 * MLP 784-256-128-10 (per layer: forward Y = X·Wᵀ, backward dX += dY·W and dW += dYᵀ·X; the
 * first layer's dX is not needed). Each cell is the median of REPEATS timings, each timing
 * as many calls as fill SAMPLE_SECONDS, after a warm-up that creates cached primitives.
 *
 *   build/bench/bench_gemm [sample_seconds [backend...]]
 *
 * (backends by name, e.g. "portable onednn"; default all that are built in).
 * Not part of `make test`. With 2 threads every backend runs on nabla's pool (gemm.c splits
 * each product into one block per thread, each thread with its own backend context).
 */
#include "bench_util.h"
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { REPEATS = 7, MAX_PRODUCTS = 9 };

typedef struct product {
    int transA, transB, M, N, K;
    float beta;
} product;

/* A row of the table: one product, or the sum of several (a kind of product over the layers). */
typedef struct row {
    char label[48];
    int count;
    product p[MAX_PRODUCTS];
} row;


/* Operands for one product, stored as the product reads them. */
typedef struct operands {
    float *A, *B, *C;
    int lda, ldb, ldc;
} operands;

static int operands_new(operands *o, const product *p)
{
    size_t a = (size_t)p->M * p->K, b = (size_t)p->K * p->N, c = (size_t)p->M * p->N;
    o->A = malloc(a * sizeof *o->A);
    o->B = malloc(b * sizeof *o->B);
    o->C = malloc(c * sizeof *o->C);
    if (!o->A || !o->B || !o->C)
        return -1;
    for (size_t i = 0; i < a; i++)
        o->A[i] = (float)(i % 13) * 0.01f - 0.06f;
    for (size_t i = 0; i < b; i++)
        o->B[i] = (float)(i % 7) * 0.01f - 0.03f;
    memset(o->C, 0, c * sizeof *o->C);
    o->lda = p->transA ? p->M : p->K;
    o->ldb = p->transB ? p->K : p->N;
    o->ldc = p->N;
    return 0;
}

static void operands_free(operands *o)
{
    free(o->A);
    free(o->B);
    free(o->C);
}

static void run_row(nb_gemm *gemm, const row *r, operands *ops)
{
    for (int i = 0; i < r->count; i++) {
        const product *p = &r->p[i];
        const operands *o = &ops[i];
        nb_gemm_run(gemm, p->transA, p->transB, p->M, p->N, p->K, 1.0f, o->A, o->lda, o->B,
                    o->ldb, p->beta, o->C, o->ldc);
    }
}

/* GFLOP/s of the row's products together (median over repeats), or -1. */
static double measure(nb_gemm *gemm, const row *r, double sample_seconds)
{
    operands ops[MAX_PRODUCTS] = {{0}};
    double flops = 0.0, times[REPEATS], result = -1.0;
    int ok = 1;
    for (int i = 0; i < r->count; i++) {
        ok &= operands_new(&ops[i], &r->p[i]) == 0;
        flops += 2.0 * r->p[i].M * r->p[i].N * r->p[i].K;
    }
    if (ok) {
        /* warm-up: primitive creation, page faults, thread start-up; and the call count */
        long calls = 0;
        double t0 = now();
        do {
            run_row(gemm, r, ops);
            calls++;
        } while (now() - t0 < sample_seconds / 4);
        calls = (long)(calls * sample_seconds / (now() - t0)) + 1;
        for (int rep = 0; rep < REPEATS; rep++) {
            t0 = now();
            for (long c = 0; c < calls; c++)
                run_row(gemm, r, ops);
            times[rep] = (now() - t0) / (double)calls;
        }
        qsort(times, REPEATS, sizeof times[0], cmp_double);
        result = flops / times[REPEATS / 2] * 1e-9;
    }
    for (int i = 0; i < r->count; i++)
        operands_free(&ops[i]);
    return result;
}

static void add(row *r, int transA, int transB, int M, int N, int K, float beta)
{
    r->p[r->count++] = (product){.transA = transA, .transB = transB, .M = M, .N = N, .K = K,
                                 .beta = beta};
}

/* The rows of the table; returns their number. */
static int make_rows(row *rows)
{
    static const int plain[][3] = {{128, 256, 784}, {128, 128, 256}, {1024, 256, 784},
                                   {1024, 1024, 1024}};
    static const int layers[] = {784, 256, 128, 10};
    static const int batches[] = {32, 128, 1024};
    const int nlayers = (int)(sizeof layers / sizeof layers[0]) - 1;
    int n = 0;
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++, n++) {
        snprintf(rows[n].label, sizeof rows[n].label, "%dx%dx%d", plain[i][0], plain[i][1],
                 plain[i][2]);
        add(&rows[n], 0, 0, plain[i][0], plain[i][1], plain[i][2], 0.0f);
    }
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        int N = batches[b];
        row *fwd = &rows[n++], *dx = &rows[n++], *dw = &rows[n++], *step = &rows[n++];
        snprintf(fwd->label, sizeof fwd->label, "mlp b%d fwd  Y = X Wt", N);
        snprintf(dx->label, sizeof dx->label, "mlp b%d bwd dX += dY W", N);
        snprintf(dw->label, sizeof dw->label, "mlp b%d bwd dW += dYt X", N);
        snprintf(step->label, sizeof step->label, "mlp b%d whole step", N);
        for (int l = 0; l < nlayers; l++) {
            int in = layers[l], out = layers[l + 1];
            add(fwd, 0, 1, N, out, in, 0.0f);
            add(step, 0, 1, N, out, in, 0.0f);
            if (l > 0) {
                add(dx, 0, 0, N, in, out, 1.0f);
                add(step, 0, 0, N, in, out, 1.0f);
            }
            add(dw, 1, 0, out, in, N, 1.0f);
            add(step, 1, 0, out, in, N, 1.0f);
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    double sample_seconds = argc > 1 ? atof(argv[1]) : 0.05;
    if (!(sample_seconds > 0.0)) {
        fprintf(stderr, "usage: %s [sample_seconds > 0 [backend...]]\n", argv[0]);
        return 2;
    }
    static const nb_gemm_backend order[] = {NB_GEMM_PORTABLE, NB_GEMM_ONEDNN, NB_GEMM_OPENBLAS};
    int wanted[NB_GEMM_PORTABLE + 1] = {0};
    for (int i = 2; i < argc; i++) {
        int b = nb_gemm_backend_parse(argv[i]);
        if (b <= NB_GEMM_AUTO) {
            fprintf(stderr, "%s: unknown backend %s\n", argv[0], argv[i]);
            return 2;
        }
        wanted[b] = 1;
    }
    static const int thread_counts[] = {1, 2};
    enum { MAX_COLS = 6, MAX_ROWS = 32 };
    nb_gemm *cols[MAX_COLS];
    char names[MAX_COLS][24];
    int ncols = 0;
    for (size_t b = 0; b < sizeof order / sizeof order[0]; b++) {
        if (!nb_gemm_available(order[b]) || (argc > 2 && !wanted[order[b]]))
            continue;
        for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
            nb_error err = {0};
            nb_gemm *g = nb_gemm_new(order[b], thread_counts[t], &err);
            if (!g) {
                fprintf(stderr, "%s/%d: %s\n", nb_gemm_backend_name(order[b]),
                        thread_counts[t], err.msg);
                continue;
            }
            cols[ncols] = g;
            snprintf(names[ncols], sizeof names[ncols], "%s/%dt", nb_gemm_name(g),
                     thread_counts[t]);
            ncols++;
        }
    }

    static row rows[MAX_ROWS];
    static double gflops[MAX_ROWS][MAX_COLS];
    int nrows = make_rows(rows);
    /* One backend at a time, with a pause before each: a library's idle workers keep spinning
     * for a while after its last call (OpenBLAS for ~0.1 s), and a pool that spins while
     * another one needs the same cores slows the latter down a thousandfold. */
    for (int c = 0; c < ncols; c++) {
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 300000000}, NULL);
        for (int r = 0; r < nrows; r++)
            gflops[r][c] = measure(cols[c], &rows[r], sample_seconds);
    }
    printf("%s\nGFLOP/s, median of %d samples of %.3g s (M x N x K; mlp rows sum the three "
           "layers of 784-256-128-10)\n\n",
           nb_version_string(), REPEATS, sample_seconds);
    printf("%-28s", "product");
    for (int c = 0; c < ncols; c++)
        printf(" %12s", names[c]);
    printf("\n");
    for (int r = 0; r < nrows; r++) {
        printf("%-28s", rows[r].label);
        for (int c = 0; c < ncols; c++)
            printf(" %12.1f", gflops[r][c]);
        printf("\n");
    }
    for (int c = 0; c < ncols; c++)
        nb_gemm_free(cols[c]);
    return 0;
}
