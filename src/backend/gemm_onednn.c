/* The oneDNN matrix-product backend: matmul primitives, created once per shape and cached.
 *
 * C = alpha · op(A) · op(B) + beta · C maps onto one matmul primitive:
 *   op(A), op(B), C    strided memory descriptors: op(A) is M × K with strides (lda, 1), or
 *                      (1, lda) when A is stored transposed; likewise op(B) with ldb. No copy.
 *   alpha ≠ 1          a common output scale given at run time (DNNL_RUNTIME_F32_VAL), so one
 *                      primitive serves every alpha;
 *   beta ≠ 0           a sum post-op dst ← beta · dst + alpha · op(A)·op(B) (beta is fixed at
 *                      creation, hence part of the key; training only uses 0 and 1).
 *
 * Creating a primitive JIT-compiles a kernel (~0.1–1 ms), far longer than a product of the
 * sizes we train with, so primitives live in a small open-addressing hash table keyed by
 * (transA, transB, M, N, K, lda, ldb, ldc, alpha ≠ 1, beta), together with their memory
 * objects and argument list. A call then only swaps data handles and executes. When the table
 * is three-quarters full it is flushed whole (a training loop uses a few dozen shapes, so this
 * only happens to programs that keep changing them). A shape oneDNN declines, or one that
 * could not be set up, is remembered as such and computed by the portable backend.
 *
 * Threads: Debian's libdnnl 2.6 is built on OpenMP (libgomp; dnnl_version()->cpu_runtime is
 * DNNL_RUNTIME_OMP) and has no thread-count call of its own, so the context finds
 * omp_set_num_threads / omp_get_max_threads in the already loaded OpenMP runtime (dlsym; the
 * build does not link -fopenmp) and sets the count before creating and before running each
 * primitive. That is the calling thread's OpenMP setting, shared with any other OpenMP code in
 * the program. If the runtime cannot be found (a TBB or threadpool build), the count is left
 * to the environment: OMP_NUM_THREADS. OpenBLAS, when linked, is capped to one thread so its
 * pool does not compete with oneDNN's.
 *
 * gemm.c creates one context per thread of nabla's pool, each with threads = 1: oneDNN then
 * never starts an OpenMP team (no OpenMP thread spins beside nabla's), and the pool runs the
 * blocks of a product on its threads, one context each.
 *
 * Allocations: dnnl_primitive_execute builds an argument map (a std::unordered_map inside its
 * execution context) on every call — 5 mallocs per product with three arguments, one more per
 * extra argument (measured with a counting malloc; a user-managed scratchpad is one more
 * argument, so it makes it 6, not 0). oneDNN 2.6's C API has no execution path without that
 * map. dnnl_sgemm allocates nothing per call but is slower than a cached matmul primitive
 * (issue 7: 290 vs 344 GFLOP/s on 128×256×784), and a malloc/free pair costs ~50 ns against
 * 10–500 µs per product here, so the primitives stay; tests/test_alloc.c reports, rather than
 * asserts, oneDNN's count.
 *
 * A context is not safe to use from two threads at once.
 */
#ifdef NB_HAVE_ONEDNN

#include "backend/backend.h"
#include "backend/onednn_matmul.h"
#include "backend/openmp.h"

#include <dlfcn.h>
#include <dnnl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef NB_HAVE_OPENBLAS
#include <cblas.h>
#endif


enum {
    CACHE_SLOTS = 128,      /* a power of two */
    CACHE_MAX_ENTRIES = 96, /* flush beyond this load, so probes stay short */
};

typedef struct shape_key {
    int transA, transB, M, N, K, lda, ldb, ldc;
    int scaled; /* alpha ≠ 1: the primitive takes a run-time output scale */
    float beta;
} shape_key;

typedef struct entry {
    shape_key key;
    int used;
    nb_matmul mm; /* mm.prim NULL: not available for this shape, run the fallback */
    float alpha; /* the buffer behind `scale`; entries never move while in use */
} entry;

typedef struct onednn {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int threads;
    nb_openmp omp;
    entry *slots;  /* CACHE_SLOTS */
    int count;
    void *fallback; /* portable context */
} onednn;

/* ---- threads ------------------------------------------------------------------------------ */

_Static_assert(sizeof(void *) == sizeof(void (*)(int)), "dlsym results fit function pointers");

/* Looks the OpenMP entry points up in the global scope (where libdnnl's libgomp is when the
 * program links -ldnnl), else in libgomp itself (when nabla was loaded with RTLD_LOCAL). */
void nb_openmp_find(nb_openmp *omp)
{
    static const char *const places[] = {NULL, "libgomp.so.1"};
    memset(omp, 0, sizeof *omp);
    if (dnnl_version()->cpu_runtime != DNNL_RUNTIME_OMP)
        return;
    for (size_t i = 0; i < sizeof places / sizeof places[0]; i++) {
        void *lib = dlopen(places[i], RTLD_LAZY);
        if (!lib)
            continue;
        void *set = dlsym(lib, "omp_set_num_threads");
        void *get = dlsym(lib, "omp_get_max_threads");
        if (set && get) {
            /* ISO C has no object-to-function pointer conversion; POSIX guarantees that
             * dlsym's pointers are representable, so copy the bits. */
            memcpy(&omp->set_num_threads, &set, sizeof set);
            memcpy(&omp->get_max_threads, &get, sizeof get);
            omp->lib = lib;
            return;
        }
        dlclose(lib);
    }
}

void nb_openmp_cap(const nb_openmp *omp, int threads)
{
    if (omp->set_num_threads && omp->get_max_threads() != threads)
        omp->set_num_threads(threads);
}

void nb_openmp_close(nb_openmp *omp)
{
    if (omp->lib)
        dlclose(omp->lib);
    memset(omp, 0, sizeof *omp);
}

static void cap_threads(const onednn *o)
{
    nb_openmp_cap(&o->omp, o->threads);
#ifdef NB_HAVE_OPENBLAS
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
#endif
}

/* ---- the primitive cache ------------------------------------------------------------------ */

static int key_equal(const shape_key *x, const shape_key *y)
{
    return x->transA == y->transA && x->transB == y->transB && x->M == y->M && x->N == y->N &&
           x->K == y->K && x->lda == y->lda && x->ldb == y->ldb && x->ldc == y->ldc &&
           x->scaled == y->scaled && memcmp(&x->beta, &y->beta, sizeof x->beta) == 0;
}

/* FNV-1a over the key's fields. */
static uint32_t key_hash(const shape_key *k)
{
    uint32_t beta_bits;
    memcpy(&beta_bits, &k->beta, sizeof beta_bits);
    const uint32_t fields[] = {
        (uint32_t)k->transA, (uint32_t)k->transB, (uint32_t)k->M,      (uint32_t)k->N,
        (uint32_t)k->K,      (uint32_t)k->lda,    (uint32_t)k->ldb,    (uint32_t)k->ldc,
        (uint32_t)k->scaled, beta_bits,
    };
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        for (int byte = 0; byte < 4; byte++) {
            h ^= (fields[i] >> (8 * byte)) & 0xffu;
            h *= 16777619u;
        }
    }
    return h;
}

static void entry_clear(entry *e)
{
    nb_matmul_clear(&e->mm);
    memset(e, 0, sizeof *e);
}

static void cache_flush(onednn *o)
{
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (o->slots[i].used)
            entry_clear(&o->slots[i]);
    o->count = 0;
}

/* The matmul primitive for e->key, with its memory objects and arguments (onednn_matmul.c).
 * On any failure the entry is left without a primitive (and the fallback computes this
 * shape). */
static void entry_build(onednn *o, entry *e)
{
    const shape_key *k = &e->key;
    /* logical dims are op(A): M × K, op(B): K × N, C: M × N; strides say how they are stored */
    nb_matmul_shape shape = {
        .M = k->M, .N = k->N, .K = k->K,
        .a_strides = {k->transA ? 1 : k->lda, k->transA ? k->lda : 1},
        .b_strides = {k->transB ? 1 : k->ldb, k->transB ? k->ldb : 1},
        .ldc = k->ldc, .type = dnnl_f32, .beta = k->beta, .scaled = k->scaled,
    };
    if (nb_matmul_make(o->engine, &shape, &e->alpha, &e->mm, NULL) != dnnl_success) {
        shape_key kept = e->key;
        entry_clear(e);
        e->key = kept;
        e->used = 1;
    }
}

/* The entry for key, built on first use. */
static entry *cache_get(onednn *o, const shape_key *key)
{
    const uint32_t mask = CACHE_SLOTS - 1;
    uint32_t h = key_hash(key) & mask;
    while (o->slots[h].used) {
        if (key_equal(&o->slots[h].key, key))
            return &o->slots[h];
        h = (h + 1) & mask;
    }
    if (o->count >= CACHE_MAX_ENTRIES) {
        cache_flush(o);
        h = key_hash(key) & mask;
    }
    entry *e = &o->slots[h];
    e->key = *key;
    e->used = 1;
    o->count++;
    entry_build(o, e);
    return e;
}

/* ---- the backend -------------------------------------------------------------------------- */

void *nb_gemm_onednn_new(int threads, nb_error *err)
{
    onednn *o = calloc(1, sizeof *o);
    if (!o) {
        nb_error_set(err, NB_ENOMEM, "gemm (onednn): out of memory");
        return NULL;
    }
    o->threads = threads;
    o->slots = calloc(CACHE_SLOTS, sizeof *o->slots);
    if (!o->slots) {
        nb_error_set(err, NB_ENOMEM, "gemm (onednn): out of memory");
        goto fail;
    }
    o->fallback = nb_gemm_portable_new(1, err);
    if (!o->fallback)
        goto fail;
    dnnl_status_t s = dnnl_engine_create(&o->engine, dnnl_cpu, 0);
    if (s != dnnl_success) {
        o->engine = NULL;
        nb_error_set(err, NB_ENOTSUP, "gemm (onednn): no CPU engine (dnnl status %d)", (int)s);
        goto fail;
    }
    s = dnnl_stream_create(&o->stream, o->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        o->stream = NULL;
        nb_error_set(err, NB_ENOTSUP, "gemm (onednn): no stream (dnnl status %d)", (int)s);
        goto fail;
    }
    nb_openmp_find(&o->omp);
    cap_threads(o);
    return o;
fail:
    nb_gemm_onednn_free(o);
    return NULL;
}

void nb_gemm_onednn_free(void *ctx)
{
    onednn *o = ctx;
    if (!o)
        return;
    if (o->slots) {
        cache_flush(o);
        free(o->slots);
    }
    if (o->stream)
        dnnl_stream_destroy(o->stream);
    if (o->engine)
        dnnl_engine_destroy(o->engine);
    nb_openmp_close(&o->omp);
    nb_gemm_portable_free(o->fallback);
    free(o);
}

void nb_gemm_onednn_enter(void *ctx, void **engine, void **stream)
{
    onednn *o = ctx;
    cap_threads(o);
    *engine = o->engine;
    *stream = o->stream;
}

void nb_gemm_onednn_run(void *ctx, int transA, int transB, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C,
                        int ldc)
{
    onednn *o = ctx;
    /* before a primitive is created too: oneDNN sizes its work split by the thread count */
    cap_threads(o);
    shape_key key = {
        .transA = transA, .transB = transB, .M = M, .N = N, .K = K,
        .lda = lda, .ldb = ldb, .ldc = ldc, .scaled = alpha != 1.0f, .beta = beta,
    };
    entry *e = cache_get(o, &key);
    if (e->mm.prim) {
        e->alpha = alpha;
        /* oneDNN takes non-const handles; it only reads A and B */
        dnnl_status_t s = dnnl_memory_set_data_handle(e->mm.a, (void *)A);
        if (s == dnnl_success)
            s = dnnl_memory_set_data_handle(e->mm.b, (void *)B);
        if (s == dnnl_success)
            s = dnnl_memory_set_data_handle(e->mm.c, C);
        /* a refused execution (checked before any output is written) leaves C intact */
        if (s == dnnl_success)
            s = dnnl_primitive_execute(e->mm.prim, o->stream, e->mm.nargs, e->mm.args);
        if (s == dnnl_success) {
            dnnl_stream_wait(o->stream); /* CPU streams execute synchronously; kept for form */
            return;
        }
    }
    nb_gemm_portable_run(o->fallback, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C,
                         ldc);
}

#else
/* ISO C forbids an empty translation unit. */
typedef int nb_gemm_onednn_not_built;
#endif
