/* bf16 mixed precision: Linear's three matrix products with bfloat16 operands (nabla.h,
 * "Mixed precision"; issue 8). Conversion and detection: bf16.c.
 *
 *   forward   Y  = Xb Wbᵀ (+ b, ReLU)      Xb = bf16(X)   (N,in)   rounded per call
 *   backward  dX = dYb Wb                  dYb = bf16(dY) (N,out)  rounded once, for both
 *             dW = dYbᵀ Xb                 Xb kept from the forward pass
 *
 * Wb is the bf16 shadow of the fp32 master weights W: made once per weights generation (the
 * caller moves it on when the values change: an optimiser step, a load), never per call. The
 * products run as oneDNN bf16 matmul primitives (bf16 × bf16, fp32 accumulation, fp32
 * output, beta through a sum post-op); bias, ReLU, losses, the optimiser and the master
 * weights stay fp32. The only error bf16 adds is the rounding of the operands, relative
 * u = 2^−8 each, so a K-term dot product errs by about 2u·Σ|a_k b_k| (see cmd_gradcheck.c
 * for what the gradient check allows).
 *
 * Weights layout. A primitive created with weights in format "any" tells which blocked
 * layout its kernel reads best (brgemm on AVX512-BF16 or AMX: VNNI pairs of rows in blocks of
 * 16 × 64); given plain weights it repacks the blocks it needs on every call instead. Measured
 * on an AVX512-BF16 machine (no AMX; oneDNN 2.6 brg:avx512_core_bf16, one thread): the
 * 64 × 784 · 784 × 256 product takes 55 µs with blocked weights and 63 µs with plain ones,
 * 1024 rows 901 vs 924 µs — while the reorder f32 → blocked bf16 of that W costs 56 µs and the
 * plain conversion 11 µs. A training step uses each shadow once, so it pays to keep training
 * on plain bf16 weights (one shadow serves both Y = X Wᵀ, read transposed, and dX = dY W);
 * evaluation runs many batches on one generation and gets the blocked layout, reordered once
 * per generation. NABLA_BF16_WEIGHTS=plain|blocked overrides the choice (on AMX, whose
 * kernels repack relatively more per call, blocked may pay in training too).
 *
 * Threads: as gemm.c, every product is cut into one block per thread of the context's pool
 * (rows of the output for Y and dX, the longer side for dW), and each thread runs its block
 * through its own stream and primitive cache with oneDNN's OpenMP capped to one thread. The
 * rounding of X or dY rows is done by the thread that then multiplies them, while they are in
 * its cache. A shape oneDNN declines (or an allocation that fails) is computed in fp32 by the
 * context's fp32 backend instead and counted (nb_linear_kernels says so).
 *
 * All of it lives in the context (nb_gemm): the shadows and each layer's Xb and dYb, keyed by
 * the caller's layer name (backend/linear.h), grown on first use.
 */
#include "backend/backend.h"
#include "backend/bf16.h"
#include "backend/gemm_pool.h"
#include "backend/openmp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef NB_HAVE_ONEDNN
#include <dnnl.h>

/* ---- the oneDNN side ---------------------------------------------------------------------- */

typedef struct nb_bf16_state nb_bf16_state;

/* rows × cols of src (row stride lds) into dst (row stride ldd). */
static void convert_rows(const float *src, size_t lds, nb_bf16 *dst, size_t ldd, int64_t rows,
                         int64_t cols)
{
    if (lds == (size_t)cols && ldd == (size_t)cols) {
        nb_bf16_convert(src, dst, (size_t)(rows * cols));
        return;
    }
    for (int64_t r = 0; r < rows; r++)
        nb_bf16_convert(src + (size_t)r * lds, dst + (size_t)r * ldd, (size_t)cols);
}

enum { KIND_FWD, KIND_DX, KIND_DW, KINDS };
static const char *const kind_names[KINDS] = {"fwd", "dX", "dW"};

enum {
    CACHE_MAX = 64,   /* primitives per thread; flushed whole when full */
    MAX_SHADOWS = 3,  /* per Linear: plain, blocked for Y = X Wᵀ, blocked for dX = dY W */
    ROW_ALIGN = 16,   /* blocks of rows handed to threads */
    COL_ALIGN = 64,
};
#define SPLIT_MIN_FLOPS 1.0e6 /* as gemm.c: below this a product stays on one thread */

/* A primitive's identity. The weights are the shadow of one Linear (`owner`, laid out as that
 * shadow is) for Y and dX, or plain rows of Xb (owner NULL) for dW. */
typedef struct prim_key {
    int kind, M, N, K, lda, ldb, ldc;
    float beta;
    const void *owner;
} prim_key;

typedef struct prim {
    prim_key key;
    dnnl_primitive_t p;  /* NULL: oneDNN declined the shape, run it in fp32 */
    dnnl_memory_t a, b, c;
    dnnl_exec_arg_t args[3];
} prim;

typedef struct thread_ctx {
    dnnl_stream_t stream;
    prim cache[CACHE_MAX];
    int count;
    char impl[KINDS][96]; /* the implementations of each kind's primitives, '+'-joined */
    int64_t fallbacks;    /* blocks oneDNN declined */
    float *widened;       /* block_widened's scratch */
    size_t widened_cap;
} thread_ctx;

/* W in bf16, plain (row-major [out, in], like W) or in a primitive's blocked layout for one
 * of the two products that read it. */
typedef struct shadow {
    int used, blocked, kind;
    int failed; /* blocked: oneDNN could not make it; the plain shadow serves instead */
    dnnl_memory_desc_t md;
    void *data;
    uint64_t generation; /* of the parameters it was made from; 0: never */
    dnnl_primitive_t reorder; /* blocked: f32 W → md */
    dnnl_memory_t from, to;
} shadow;

/* One layer's bf16 copies: of its weights (the shadows, made from `source`) and of its
 * activations. Allocated one by one, so that the shadows' addresses, which name cached
 * primitives, never move. */
typedef struct lin {
    const void *layer;   /* the caller's name for the layer */
    nb_bf16 *x, *dy;     /* Xb (N,in) and dYb (N,out) */
    size_t x_cap, dy_cap;
    int x_valid;         /* Xb holds the rounded input of the last forward pass */
    const float *source; /* the fp32 weights the shadows were made from */
    shadow shadows[MAX_SHADOWS];
} lin;

struct nb_bf16_state {
    dnnl_engine_t engine;
    int threads;
    thread_ctx *ctx;     /* one per pool thread */
    lin **lins;
    int lin_count, lin_capacity;
    int layouts_used;    /* 1: plain, 2: blocked */
    int emulated;        /* no bf16 hardware: every block through block_widened */
    int policy;          /* NABLA_BF16_WEIGHTS: 0 auto, 1 plain, 2 blocked */
    nb_openmp omp;       /* oneDNN's OpenMP, capped to one thread per pool thread */
};

static void cap_threads(const nb_bf16_state *st)
{
    nb_openmp_cap(&st->omp, 1);
}

static void prim_clear(prim *e)
{
    if (e->a)
        dnnl_memory_destroy(e->a);
    if (e->b)
        dnnl_memory_destroy(e->b);
    if (e->c)
        dnnl_memory_destroy(e->c);
    if (e->p)
        dnnl_primitive_destroy(e->p);
    memset(e, 0, sizeof *e);
}

static void cache_flush(thread_ctx *c)
{
    for (int i = 0; i < c->count; i++)
        prim_clear(&c->cache[i]);
    c->count = 0;
}

static void shadow_clear(shadow *s)
{
    if (s->reorder)
        dnnl_primitive_destroy(s->reorder);
    if (s->from)
        dnnl_memory_destroy(s->from);
    if (s->to)
        dnnl_memory_destroy(s->to);
    free(s->data);
    memset(s, 0, sizeof *s);
}

/* Frees layer l's copies (its primitives, named by its shadows' addresses, go first). */
static void lin_free(nb_bf16_state *st, lin *l)
{
    for (int t = 0; t < st->threads; t++)
        cache_flush(&st->ctx[t]);
    for (int k = 0; k < MAX_SHADOWS; k++)
        shadow_clear(&l->shadows[k]);
    free(l->x);
    free(l->dy);
    free(l);
}

void nb_bf16_state_free(nb_bf16_state *st)
{
    if (!st)
        return;
    for (int t = 0; st->ctx && t < st->threads; t++) {
        cache_flush(&st->ctx[t]);
        free(st->ctx[t].widened);
        if (st->ctx[t].stream)
            dnnl_stream_destroy(st->ctx[t].stream);
    }
    for (int i = 0; i < st->lin_count; i++)
        lin_free(st, st->lins[i]);
    if (st->engine)
        dnnl_engine_destroy(st->engine);
    nb_openmp_close(&st->omp);
    free(st->ctx);
    free(st->lins);
    free(st);
}

static nb_bf16_state *state_new(nb_error *err)
{
    nb_bf16_state *st = calloc(1, sizeof *st);
    if (!st) {
        nb_error_set(err, NB_ENOMEM, "bf16: out of memory");
        return NULL;
    }
    if (dnnl_engine_create(&st->engine, dnnl_cpu, 0) != dnnl_success) {
        st->engine = NULL;
        nb_bf16_state_free(st);
        nb_error_set(err, NB_ENOTSUP, "bf16: oneDNN has no CPU engine");
        return NULL;
    }
    const char *policy = getenv("NABLA_BF16_WEIGHTS");
    st->policy = policy && !strcmp(policy, "plain") ? 1 : policy && !strcmp(policy, "blocked") ? 2 : 0;
    nb_openmp_find(&st->omp);
    return st;
}

/* Aligned storage for n bf16 values (oneDNN's kernels like 64-byte rows). */
static void *alloc_bf16(size_t n)
{
    size_t bytes = (n * sizeof(nb_bf16) + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

/* The context's bf16 state, made on first use: the engine, and a stream per pool thread. */
static nb_bf16_state *state_get(nb_gemm *gemm, nb_error *err)
{
    nb_bf16_state **slot = nb_gemm_bf16_state(gemm);
    if (*slot)
        return *slot;
    if (nb_bf16_supported(err))
        return NULL;
    nb_bf16_state *st = state_new(err);
    if (!st)
        return NULL;
    int threads = nb_gemm_threads(gemm);
    st->ctx = calloc((size_t)threads, sizeof *st->ctx);
    if (!st->ctx) {
        nb_bf16_state_free(st);
        nb_error_set(err, NB_ENOMEM, "bf16: out of memory");
        return NULL;
    }
    st->threads = threads;
    st->emulated = nb_bf16_emulated();
    for (int t = 0; t < threads; t++)
        if (dnnl_stream_create(&st->ctx[t].stream, st->engine, dnnl_stream_default_flags) !=
            dnnl_success) {
            st->ctx[t].stream = NULL;
            nb_bf16_state_free(st);
            nb_error_set(err, NB_ENOTSUP, "bf16: oneDNN cannot create a stream");
            return NULL;
        }
    return *slot = st;
}

nb_status nb_bf16_start(nb_gemm *gemm, nb_error *err)
{
    return state_get(gemm, err) ? NB_OK : (err && err->code ? err->code : NB_ENOTSUP);
}

void nb_bf16_release(nb_gemm *gemm, const void *layer)
{
    nb_bf16_state *st = gemm ? *nb_gemm_bf16_state(gemm) : NULL;
    for (int i = 0; st && i < st->lin_count; i++)
        if (st->lins[i]->layer == layer) {
            lin_free(st, st->lins[i]);
            st->lins[i] = st->lins[--st->lin_count];
            return;
        }
}

void nb_bf16_forget(nb_gemm *gemm)
{
    nb_bf16_state *st = *nb_gemm_bf16_state(gemm);
    for (int i = 0; st && i < st->lin_count; i++)
        st->lins[i]->x_valid = 0;
}

/* Grows *buf to hold n values (its old contents are dropped); 0 when out of memory. */
static int reserve(nb_bf16 **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 1;
    nb_bf16 *b = alloc_bf16(n);
    if (!b)
        return 0;
    free(*buf);
    *buf = b;
    *cap = n;
    return 1;
}

/* The state of `layer`, with room for N samples' Xb and dYb; NULL when out of memory. */
static lin *lin_get(nb_bf16_state *st, const nb_linear_shape *s)
{
    lin *l = NULL;
    for (int i = 0; i < st->lin_count && !l; i++)
        if (st->lins[i]->layer == s->layer)
            l = st->lins[i];
    if (!l) {
        if (st->lin_count == st->lin_capacity) {
            int cap = st->lin_capacity ? 2 * st->lin_capacity : 8;
            lin **more = realloc(st->lins, (size_t)cap * sizeof *more);
            if (!more)
                return NULL;
            st->lins = more;
            st->lin_capacity = cap;
        }
        if (!(l = calloc(1, sizeof *l)))
            return NULL;
        l->layer = s->layer;
        st->lins[st->lin_count++] = l;
    }
    size_t x_need = (size_t)s->N * (size_t)s->in, dy_need = (size_t)s->N * (size_t)s->out;
    if (x_need > l->x_cap)
        l->x_valid = 0;
    if (!reserve(&l->x, &l->x_cap, x_need) || !reserve(&l->dy, &l->dy_cap, dy_need))
        return NULL;
    return l;
}

/* ---- primitives --------------------------------------------------------------------------- */

static int key_equal(const prim_key *x, const prim_key *y)
{
    return x->kind == y->kind && x->M == y->M && x->N == y->N && x->K == y->K &&
           x->lda == y->lda && x->ldb == y->ldb && x->ldc == y->ldc && x->owner == y->owner &&
           memcmp(&x->beta, &y->beta, sizeof x->beta) == 0;
}

/* The memory descriptors of a product: src op(A) M × K (dW reads dYb transposed), weights
 * K × N (`wmd` when given: a shadow's layout), dst M × N with row stride ldc. */
static dnnl_status_t product_mds(const prim_key *k, const dnnl_memory_desc_t *wmd,
                                 dnnl_memory_desc_t *a, dnnl_memory_desc_t *b,
                                 dnnl_memory_desc_t *c)
{
    dnnl_dims_t a_dims = {k->M, k->K}, b_dims = {k->K, k->N}, c_dims = {k->M, k->N};
    dnnl_dims_t a_strides = {k->kind == KIND_DW ? 1 : k->lda, k->kind == KIND_DW ? k->lda : 1};
    /* Y = X Wᵀ reads W [out, in] as in × out: strides (1, in) */
    dnnl_dims_t b_strides = {k->kind == KIND_FWD ? 1 : k->ldb, k->kind == KIND_FWD ? k->ldb : 1};
    dnnl_dims_t c_strides = {k->ldc, 1};
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(a, 2, a_dims, dnnl_bf16, a_strides);
    if (s == dnnl_success && wmd)
        *b = *wmd;
    else if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_strides(b, 2, b_dims, dnnl_bf16, b_strides);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_strides(c, 2, c_dims, dnnl_f32, c_strides);
    return s;
}

static dnnl_status_t matmul_pd(nb_bf16_state *st, const prim_key *k,
                               const dnnl_memory_desc_t *wmd, dnnl_primitive_desc_t *pd)
{
    dnnl_memory_desc_t a, b, c;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t post_ops = NULL;
    *pd = NULL;
    dnnl_status_t s = product_mds(k, wmd, &a, &b, &c);
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c);
    if (s == dnnl_success)
        s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success && k->beta != 0.0f) { /* C ← beta·C + op(A)·op(B) */
        s = dnnl_post_ops_create(&post_ops);
        if (s == dnnl_success)
            s = dnnl_post_ops_append_sum(post_ops, k->beta);
        if (s == dnnl_success)
            s = dnnl_primitive_attr_set_post_ops(attr, post_ops);
    }
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(pd, &desc, attr, st->engine, NULL);
    if (post_ops)
        dnnl_post_ops_destroy(post_ops);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return s;
}

/* Appends name to the '+'-joined list in buf unless it is there. */
static void add_name(char *buf, size_t size, const char *name)
{
    size_t used = strlen(buf), n = strlen(name);
    for (const char *p = buf; (p = strstr(p, name)) != NULL; p += n)
        if ((p == buf || p[-1] == '+') && (p[n] == 0 || p[n] == '+'))
            return;
    if (used + n + 2 <= size)
        snprintf(buf + used, size - used, "%s%s", used ? "+" : "", name);
}

/* Thread `thread`'s primitive for key (reading weights laid out as wmd), made on first use. */
static prim *prim_get(nb_bf16_state *st, int thread, const prim_key *key,
                      const dnnl_memory_desc_t *wmd)
{
    thread_ctx *c = &st->ctx[thread];
    for (int i = 0; i < c->count; i++)
        if (key_equal(&c->cache[i].key, key))
            return &c->cache[i];
    if (c->count == CACHE_MAX)
        cache_flush(c);
    prim *e = &c->cache[c->count++];
    memset(e, 0, sizeof *e);
    e->key = *key;
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL;
    dnnl_status_t s = matmul_pd(st, key, wmd, &pd);
    if (s == dnnl_success)
        s = dnnl_primitive_create(&e->p, pd);
    if (s == dnnl_success && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) ==
                                 dnnl_success && impl)
        add_name(c->impl[key->kind], sizeof c->impl[key->kind], impl);
    const dnnl_memory_desc_t *mds[3] = {
        pd ? dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0) : NULL,
        pd ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) : NULL,
        pd ? dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0) : NULL,
    };
    dnnl_memory_t *mems[3] = {&e->a, &e->b, &e->c};
    for (int i = 0; i < 3 && s == dnnl_success; i++)
        s = mds[i] ? dnnl_memory_create(mems[i], mds[i], st->engine, DNNL_MEMORY_NONE)
                   : dnnl_invalid_arguments;
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) {
        prim_clear(e);
        e->key = *key; /* remembered as declined */
        return e;
    }
    e->args[0] = (dnnl_exec_arg_t){.arg = DNNL_ARG_SRC, .memory = e->a};
    e->args[1] = (dnnl_exec_arg_t){.arg = DNNL_ARG_WEIGHTS, .memory = e->b};
    e->args[2] = (dnnl_exec_arg_t){.arg = DNNL_ARG_DST, .memory = e->c};
    return e;
}

/* C (M × N f32) ← op(A)·op(B) (+ beta·C) with bf16 operands; 0 if oneDNN could not. */
static int prim_run(nb_bf16_state *st, int thread, const prim_key *key,
                    const dnnl_memory_desc_t *wmd, const nb_bf16 *A, const void *B, float *C)
{
    prim *e = prim_get(st, thread, key, wmd);
    if (!e->p)
        return 0;
    cap_threads(st);
    /* oneDNN takes non-const handles; it only reads A and B */
    dnnl_status_t s = dnnl_memory_set_data_handle(e->a, (void *)A);
    if (s == dnnl_success)
        s = dnnl_memory_set_data_handle(e->b, (void *)B);
    if (s == dnnl_success)
        s = dnnl_memory_set_data_handle(e->c, C);
    if (s == dnnl_success)
        s = dnnl_primitive_execute(e->p, st->ctx[thread].stream, 3, e->args);
    if (s == dnnl_success)
        dnnl_stream_wait(st->ctx[thread].stream);
    return s == dnnl_success;
}

/* ---- shadows ------------------------------------------------------------------------------ */

typedef struct convert_job {
    const float *src;
    nb_bf16 *dst;
    int64_t cols;
    size_t lds, ldd;
} convert_job;

static void convert_task(void *arg, int64_t first, int64_t last, int task)
{
    (void)task;
    const convert_job *j = arg;
    convert_rows(j->src + (size_t)first * j->lds, j->lds, j->dst + (size_t)first * j->ldd,
                 j->ldd, last - first, j->cols);
}

/* rows × cols converted on the pool (blocks of ≥ 32 k elements). */
static void convert_parallel(nb_gemm *gemm, const float *src, size_t lds, nb_bf16 *dst, size_t ldd,
                             int64_t rows, int64_t cols)
{
    convert_job j = {.src = src, .dst = dst, .cols = cols, .lds = lds, .ldd = ldd};
    nb_parallel_for(gemm, rows, 32768 / (cols > 0 ? cols : 1), 8, 0, convert_task, &j);
}

/* Whether Linear n's products read the blocked layout now: evaluation runs many batches per
 * weight generation, a training step one (see the top of this file). */
static int use_blocked(const nb_bf16_state *st, const nb_weights *W)
{
    return !st->emulated && (st->policy ? st->policy == 2 : W->reused);
}

/* The layout primitives of this kind prefer for W of Linear n, asked with weights "any" at
 * the shape of the first block. */
static int preferred_layout(nb_bf16_state *st, int kind, const prim_key *k,
                            dnnl_memory_desc_t *md)
{
    dnnl_memory_desc_t a, b, c;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_dims_t b_dims = {k->K, k->N};
    (void)kind;
    dnnl_status_t s = product_mds(k, NULL, &a, &b, &c);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&b, 2, b_dims, dnnl_bf16, dnnl_format_tag_any);
    if (s == dnnl_success)
        s = dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c);
    if (s == dnnl_success)
        s = dnnl_primitive_desc_create(&pd, &desc, NULL, st->engine, NULL);
    if (s == dnnl_success)
        *md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return s == dnnl_success;
}

/* The bf16 weights of layer l for a product of `kind`, made from W's values if they changed
 * since (another generation, or other values altogether); *wmd receives the layout (NULL:
 * plain [out, in]). NULL when it cannot be made (the caller computes in fp32). */
static const void *shadow_get(nb_gemm *gemm, nb_bf16_state *st, lin *l, const nb_weights *W,
                              int64_t out, int64_t in, int kind, const prim_key *first_block,
                              const dnnl_memory_desc_t **wmd)
{
    int blocked = use_blocked(st, W);
    shadow *sh = blocked ? &l->shadows[kind == KIND_FWD ? 1 : 2] : &l->shadows[0];
    if (l->source != W->values) { /* other weights under this layer's name: start again */
        for (int k = 0; k < MAX_SHADOWS; k++)
            l->shadows[k].generation = 0;
        l->source = W->values;
    }
    if (sh->failed) {
        blocked = 0;
        sh = &l->shadows[0];
    }
    if (!sh->used) {
        sh->used = 1;
        sh->blocked = blocked;
        sh->kind = kind;
        if (blocked) {
            dnnl_memory_desc_t from_md;
            /* W [out, in] as this product's K × N: in × out with strides (1, in) for Y = X Wᵀ,
             * out × in with strides (in, 1) for dX = dY W */
            dnnl_dims_t dims = {kind == KIND_FWD ? in : out, kind == KIND_FWD ? out : in};
            dnnl_dims_t strides = {kind == KIND_FWD ? 1 : in, kind == KIND_FWD ? in : 1};
            dnnl_primitive_desc_t rpd = NULL;
            int ok = preferred_layout(st, kind, first_block, &sh->md) &&
                     dnnl_memory_desc_init_by_strides(&from_md, 2, dims, dnnl_f32, strides) ==
                         dnnl_success &&
                     (sh->data = aligned_alloc(64, (dnnl_memory_desc_get_size(&sh->md) + 63) /
                                                       64 * 64)) != NULL &&
                     dnnl_reorder_primitive_desc_create(&rpd, &from_md, st->engine, &sh->md,
                                                        st->engine, NULL) == dnnl_success &&
                     dnnl_primitive_create(&sh->reorder, rpd) == dnnl_success &&
                     dnnl_memory_create(&sh->from, &from_md, st->engine, DNNL_MEMORY_NONE) ==
                         dnnl_success &&
                     dnnl_memory_create(&sh->to, &sh->md, st->engine, sh->data) == dnnl_success;
            if (rpd)
                dnnl_primitive_desc_destroy(rpd);
            if (!ok) {
                shadow_clear(sh);
                sh->used = sh->failed = 1;
                return shadow_get(gemm, st, l, W, out, in, kind, first_block, wmd); /* plain */
            }
        } else if (!(sh->data = alloc_bf16((size_t)(out * in)))) {
            shadow_clear(sh);
            return NULL;
        }
    }
    if (sh->generation != W->generation || !W->generation) {
        if (sh->blocked) {
            int thread = nb_pool_current_thread();
            dnnl_exec_arg_t args[2] = {{.arg = DNNL_ARG_FROM, .memory = sh->from},
                                       {.arg = DNNL_ARG_TO, .memory = sh->to}};
            cap_threads(st);
            if (dnnl_memory_set_data_handle(sh->from, (void *)W->values) != dnnl_success ||
                dnnl_primitive_execute(sh->reorder, st->ctx[thread].stream, 2, args) !=
                    dnnl_success)
                return NULL;
            dnnl_stream_wait(st->ctx[thread].stream);
        } else {
            convert_parallel(gemm, W->values, (size_t)in, sh->data, (size_t)in, out, in);
        }
        sh->generation = W->generation;
    }
    st->layouts_used |= sh->blocked ? 2 : 1;
    *wmd = sh->blocked ? &sh->md : NULL;
    return sh->data;
}

/* ---- products ----------------------------------------------------------------------------- */

/* One product split across the pool. The bf16 operand A (Ab) is made from its fp32 original
 * (A32) block by block when A32 is given; B is bf16 (a shadow, or Xb). fA, fB are the fp32
 * operands, for the fallback. */
typedef struct product {
    nb_gemm *gemm;
    nb_bf16_state *st;
    int kind, M, N, K;
    const float *A32;
    nb_bf16 *Ab;
    int lda;
    const void *B;
    int ldb;
    const dnnl_memory_desc_t *wmd;
    const void *owner;
    const float *fA, *fB;
    int fldb;
    float beta;
    float *C;
    int ldc;
    const float *bias; /* forward's output pass */
    float *relu;
    int split_rows, tasks;
} product;

/* The block rows [i0, i1) × columns [j0, j1) of the product on the fp32 originals (oneDNN
 * declined, and block_widened could not run). */
static void block_fp32(const product *p, int i0, int i1, int j0, int j1)
{
    nb_gemm *gemm = p->gemm;
    int rows = i1 - i0, cols = j1 - j0;
    if (p->kind == KIND_FWD)      /* Y = X Wᵀ */
        nb_gemm_run(gemm, 0, 1, rows, cols, p->K, 1.0f, p->fA + (size_t)i0 * p->lda, p->lda,
                    p->fB + (size_t)j0 * p->fldb, p->fldb, p->beta,
                    p->C + (size_t)i0 * p->ldc + j0, p->ldc);
    else if (p->kind == KIND_DX)  /* dX = dY W */
        nb_gemm_run(gemm, 0, 0, rows, cols, p->K, 1.0f, p->fA + (size_t)i0 * p->lda, p->lda,
                    p->fB + j0, p->fldb, p->beta, p->C + (size_t)i0 * p->ldc + j0, p->ldc);
    else                          /* dW = dYᵀ X */
        nb_gemm_run(gemm, 1, 0, rows, cols, p->K, 1.0f, p->fA + i0, p->lda, p->fB + j0, p->fldb,
                    p->beta, p->C + (size_t)i0 * p->ldc + j0, p->ldc);
}

/* src (rows × cols bf16, row stride lds) widened to fp32 into dst (row stride ldd): exact. */
static void widen(const nb_bf16 *src, size_t lds, float *dst, size_t ldd, int rows, int cols)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++)
            dst[(size_t)r * ldd + j] = nb_bf16_to_float(src[(size_t)r * lds + j]);
}

/* The block rows [i0, i1) × columns [j0, j1) in fp32 arithmetic on the bf16-rounded operands:
 * both widened (exactly) to fp32 and multiplied by the context's fp32 product, which
 * accumulates in fp32 as the bf16 kernels do. A product of two bf16 values is exact in fp32
 * (8 + 8 significand bits), so this differs from a bf16 kernel only in the order of the
 * additions. Serves where oneDNN declines a shape, and the whole emulated path. 0 when the
 * weights are in a blocked layout (not readable here) or the scratch cannot be had. */
static int block_widened(const product *p, thread_ctx *c, int i0, int i1, int j0, int j1)
{
    int rows = i1 - i0, cols = j1 - j0, K = p->K;
    size_t need = (size_t)rows * K + (size_t)K * cols;
    if (p->wmd)
        return 0;
    if (need > c->widened_cap) {
        float *w = malloc(need * sizeof *w);
        if (!w)
            return 0;
        free(c->widened);
        c->widened = w;
        c->widened_cap = need;
    }
    float *A = c->widened, *B = A + (size_t)rows * K;
    const nb_bf16 *Ab = p->Ab, *Bb = p->B;
    float *C = p->C + (size_t)i0 * p->ldc + j0;
    if (p->kind == KIND_FWD) {      /* Y = Xb Wbᵀ: rows of Xb, rows j0.. of Wb [out, in] */
        widen(Ab + (size_t)i0 * p->lda, (size_t)p->lda, A, (size_t)K, rows, K);
        widen(Bb + (size_t)j0 * p->ldb, (size_t)p->ldb, B, (size_t)K, cols, K);
        nb_gemm_run(p->gemm, 0, 1, rows, cols, K, 1.0f, A, K, B, K, p->beta, C, p->ldc);
    } else if (p->kind == KIND_DX) { /* dX = dYb Wb: rows of dYb, columns j0.. of Wb */
        widen(Ab + (size_t)i0 * p->lda, (size_t)p->lda, A, (size_t)K, rows, K);
        widen(Bb + j0, (size_t)p->ldb, B, (size_t)cols, K, cols);
        nb_gemm_run(p->gemm, 0, 0, rows, cols, K, 1.0f, A, K, B, cols, p->beta, C, p->ldc);
    } else {                         /* dW = dYbᵀ Xb: columns i0.. of dYb, j0.. of Xb */
        widen(Ab + i0, (size_t)p->lda, A, (size_t)rows, K, rows);
        widen(Bb + j0, (size_t)p->ldb, B, (size_t)cols, K, cols);
        nb_gemm_run(p->gemm, 1, 0, rows, cols, K, 1.0f, A, rows, B, cols, p->beta, C, p->ldc);
    }
    return 1;
}

static void product_block(void *arg, int task, int thread)
{
    const product *p = arg;
    nb_bf16_state *st = p->st;
    int64_t first, last;
    nb_task_range(p->split_rows ? p->M : p->N, p->tasks, task,
                  p->split_rows ? ROW_ALIGN : COL_ALIGN, &first, &last);
    if (first >= last)
        return;
    int i0 = p->split_rows ? (int)first : 0, i1 = p->split_rows ? (int)last : p->M;
    int j0 = p->split_rows ? 0 : (int)first, j1 = p->split_rows ? p->N : (int)last;
    /* rows i0.. of A (Y, dX: rows of X or dY, rounded here, in this thread's cache) */
    const nb_bf16 *A = p->Ab;
    if (p->kind != KIND_DW) {
        if (p->A32)
            convert_rows(p->A32 + (size_t)i0 * p->lda, (size_t)p->lda,
                         p->Ab + (size_t)i0 * p->lda, (size_t)p->lda, i1 - i0, p->K);
        A += (size_t)i0 * p->lda;
    } else {
        A += i0; /* dW reads dYb transposed: row i of op(A) is column i of dYb */
    }
    const void *B = p->B;
    if (p->kind == KIND_DW) /* columns j0.. of Xb */
        B = (const nb_bf16 *)B + j0;
    prim_key key = {.kind = p->kind, .M = i1 - i0, .N = j1 - j0, .K = p->K, .lda = p->lda,
                    .ldb = p->wmd ? 0 : p->ldb, .ldc = p->ldc, .beta = p->beta,
                    .owner = p->owner};
    float *C = p->C + (size_t)i0 * p->ldc + j0;
    thread_ctx *c = &st->ctx[thread];
    if (st->emulated) {
        add_name(c->impl[p->kind], sizeof c->impl[p->kind], "emulated");
        if (!block_widened(p, c, i0, i1, j0, j1))
            block_fp32(p, i0, i1, j0, j1);
    } else if (!prim_run(st, thread, &key, p->wmd, A, B, C)) {
        c->fallbacks++;
        if (!block_widened(p, c, i0, i1, j0, j1))
            block_fp32(p, i0, i1, j0, j1);
    }
    nb_linear_epilogue(p->C, p->ldc, p->bias, p->relu, i0, i1, j0, j1);
}

/* Splits as gemm.c does: one block per thread along rows (Y, dX) or the longer side (dW),
 * when the product is large enough. */
static void product_run(product *p)
{
    double flops = 2.0 * p->M * (double)p->N * p->K;
    int threads = nb_gemm_threads(p->gemm);
    p->split_rows = p->kind != KIND_DW || p->M >= p->N;
    int64_t extent = p->split_rows ? p->M : p->N, align = p->split_rows ? ROW_ALIGN : COL_ALIGN;
    int64_t tasks = (extent + align - 1) / align;
    p->tasks = (int)(tasks < threads ? tasks : threads);
    if (flops < SPLIT_MIN_FLOPS || nb_pool_current_thread() != 0)
        p->tasks = 1;
    if (p->tasks == 1)
        product_block(p, 0, nb_pool_current_thread());
    else
        nb_gemm_parallel(p->gemm, p->tasks, product_block, p);
}

int nb_bf16_linear_forward(nb_gemm *gemm, const nb_linear_shape *s, const float *X,
                           const nb_weights *W, const float *bias, float *Y, float *R)
{
    nb_bf16_state *st = state_get(gemm, NULL);
    lin *l = st ? lin_get(st, s) : NULL;
    if (!l)
        return 0;
    int N = s->N, in = s->in, out = s->out;
    product p = {.gemm = gemm, .st = st, .kind = KIND_FWD, .M = N, .N = out, .K = in, .A32 = X,
                 .Ab = l->x, .lda = in, .ldb = in, .fA = X, .fB = W->values, .fldb = in,
                 .beta = 0.0f, .C = Y, .ldc = out, .bias = bias, .relu = R};
    int threads = nb_gemm_threads(gemm);
    prim_key first = {.kind = KIND_FWD, .M = N > threads * ROW_ALIGN ? N / threads : N,
                      .N = out, .K = in, .lda = in, .ldb = in, .ldc = out};
    if (!(p.B = shadow_get(gemm, st, l, W, out, in, KIND_FWD, &first, &p.wmd)))
        return 0;
    p.owner = p.wmd ? (const void *)p.wmd : NULL;
    product_run(&p);
    l->x_valid = 1; /* every block rounded its rows of X, whichever way it multiplied */
    return 1;
}

int nb_bf16_linear_backward(nb_gemm *gemm, const nb_linear_shape *s, const float *X,
                            const nb_weights *W, const float *dY, float beta_x, float *dX,
                            float beta_w, float *dW)
{
    nb_bf16_state *st = state_get(gemm, NULL);
    lin *l = st ? lin_get(st, s) : NULL;
    if (!l)
        return 0;
    int N = s->N, in = s->in, out = s->out;
    nb_bf16 *Xb = l->x, *dYb = l->dy;
    const void *Wb = NULL;
    const dnnl_memory_desc_t *wmd = NULL;
    int threads = nb_gemm_threads(gemm);
    if (dX) {
        prim_key first = {.kind = KIND_DX, .M = N > threads * ROW_ALIGN ? N / threads : N,
                          .N = in, .K = out, .lda = out, .ldb = in, .ldc = in};
        if (!(Wb = shadow_get(gemm, st, l, W, out, in, KIND_DX, &first, &wmd)))
            return 0;
    }
    /* committed from here */
    if (dX) { /* dX = dYb Wb, rounding dY on the way (dYb serves dW too) */
        product p = {.gemm = gemm, .st = st, .kind = KIND_DX, .M = N, .N = in, .K = out,
                     .A32 = dY, .Ab = dYb, .lda = out, .B = Wb, .ldb = in, .wmd = wmd,
                     .owner = wmd ? (const void *)wmd : NULL, .fA = dY, .fB = W->values,
                     .fldb = in, .beta = beta_x, .C = dX, .ldc = in};
        product_run(&p);
    } else {
        convert_parallel(gemm, dY, (size_t)out, dYb, (size_t)out, N, out);
    }
    if (dW) { /* dW = dYbᵀ Xb */
        if (!l->x_valid) /* backward without a bf16 forward before it */
            convert_parallel(gemm, X, (size_t)in, Xb, (size_t)in, N, in);
        product p = {.gemm = gemm, .st = st, .kind = KIND_DW, .M = out, .N = in, .K = N,
                     .Ab = dYb, .lda = out, .B = Xb, .ldb = in, .fA = dY, .fB = X, .fldb = in,
                     .beta = beta_w, .C = dW, .ldc = in};
        product_run(&p);
    }
    return 1;
}

char *nb_bf16_kernels(nb_gemm *gemm, char *buf, size_t size)
{
    const nb_bf16_state *st = *nb_gemm_bf16_state(gemm);
    if (!st || !st->ctx) {
        snprintf(buf, size, "bf16 (nothing run yet)");
        return buf;
    }
    size_t used = 0;
    int64_t fallbacks = 0;
    for (int k = 0; k < KINDS; k++) {
        char impl[3 * sizeof st->ctx[0].impl[0]] = "";
        for (int t = 0; t < st->threads; t++) {
            char list[sizeof st->ctx[0].impl[0]];
            snprintf(list, sizeof list, "%s", st->ctx[t].impl[k]);
            for (char *save = NULL, *name = strtok_r(list, "+", &save); name;
                 name = strtok_r(NULL, "+", &save))
                add_name(impl, sizeof impl, name);
        }
        used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s %s",
                                 k ? ", " : "", kind_names[k], impl[0] ? impl : "-");
    }
    for (int t = 0; t < st->threads; t++)
        fallbacks += st->ctx[t].fallbacks;
    static const char *const layouts[] = {"-", "plain", "blocked", "plain+blocked"};
    used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "; weights %s bf16; "
                             "CPU %s", layouts[st->layouts_used & 3], nb_bf16_hardware());
    if (fallbacks)
        snprintf(buf + used, used < size ? size - used : 0, "; %lld blocks fell back to fp32",
                 (long long)fallbacks);
    return buf;
}

#else /* no oneDNN: fp32 only */

void nb_bf16_state_free(struct nb_bf16_state *st) { (void)st; }

nb_status nb_bf16_start(nb_gemm *gemm, nb_error *err)
{
    (void)gemm;
    return nb_bf16_supported(err);
}

void nb_bf16_forget(nb_gemm *gemm) { (void)gemm; }

void nb_bf16_release(nb_gemm *gemm, const void *layer)
{
    (void)gemm;
    (void)layer;
}

int nb_bf16_linear_forward(nb_gemm *gemm, const nb_linear_shape *s, const float *X,
                           const nb_weights *W, const float *bias, float *Y, float *R)
{
    (void)gemm, (void)s, (void)X, (void)W, (void)bias, (void)Y, (void)R;
    return 0;
}

int nb_bf16_linear_backward(nb_gemm *gemm, const nb_linear_shape *s, const float *X,
                            const nb_weights *W, const float *dY, float beta_x, float *dX,
                            float beta_w, float *dW)
{
    (void)gemm, (void)s, (void)X, (void)W, (void)dY, (void)beta_x, (void)dX, (void)beta_w;
    (void)dW;
    return 0;
}

char *nb_bf16_kernels(nb_gemm *gemm, char *buf, size_t size)
{
    (void)gemm;
    snprintf(buf, size, "fp32");
    return buf;
}
#endif
