/* The oneDNN image kernels (conv.h): 2-D convolution forward, backward-data and
 * backward-weights (+ bias) as oneDNN convolution primitives, fp32. The caller's tensors are
 * plain NCHW / OIHW (GOIHW when grouped). With ≥ 8 channels per group in and out, all three
 * run in the blocked layouts oneDNN prefers (nChw8c activations, OIhw8i8o-like weights on
 * AVX2): the inputs reordered in and the output out by cached reorder primitives into
 * buffers owned by the cache entry (prim_build has the measurements); with fewer, on the
 * plain arrays directly.
 * Pooling and batch norm are left NULL: the portable loops serve them (oneDNN's max pooling
 * keeps its arg-max in a private workspace format, not conv.h's flat h·W + w indices).
 *
 * Threads: as gemm.c, nabla's pool owns the threads and oneDNN's OpenMP runs one thread per
 * call. A convolution is cut into one block of samples per thread of the context's pool
 * (nb_task_range over N); the thread running a block executes a primitive made for that
 * block's sample count, on the engine and stream of its own oneDNN gemm context
 * (nb_gemm_onednn_enter, which also caps OpenMP to one thread), from its own cache:
 *   forward          y[n0:n1]  = x[n0:n1] ⋆ w + b
 *   backward data    dx[n0:n1] = dy[n0:n1] ⋆ᵀ w           (beta ≠ 0: into ws, then added)
 *   backward weights part_t    = Σ_{n∈[n0,n1)} dy[n] ⋆ x[n]   (and Σ dy for the bias)
 *                    dw = beta·dw + Σ_t part_t in task order, so the result depends only on
 *                    the task count (as conv_portable.c).
 *
 * A forward block larger than FWD_PIECE_BYTES of activations (x and y) runs in even pieces
 * of samples, one primitive execution each: the blocked copies then stay that small however
 * large the batch (inference at batch 1000: conv2 of fashion-cnn's copies 75 → 15 MB per
 * thread). Each output sample is computed by the same kernel in the same order whatever the
 * number of samples in the execution, so the values do not change (tests/test_conv_backends
 * checks: bit for bit).
 *
 * Primitives are created once per (kind, block shape) and cached per thread with their memory
 * objects; their blocked copies and scratchpads (user scratchpad mode) live in one buffer per
 * thread, sized for the largest primitive when one is created (thread_cache), so a training
 * step allocates nothing but oneDNN's per-execute argument map (gemm_onednn.c explains that
 * one). A cache that fills up is flushed whole. A shape oneDNN declines is
 * remembered as such, and the whole call then runs the portable kernel; so does a call in
 * which some thread could not make its primitive (out of memory), before anything was
 * accumulated into the caller's arrays.
 *
 * Workspace: the portable kernel's (the fallback), or N·C·H·W for backward data with beta ≠ 0,
 * or tasks · (K·C/groups·R·S + K) for the partial weight gradients, whichever is largest. */
#include "backend/backend.h"
#include "backend/conv.h"
#include "backend/gemm_pool.h"

#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_ONEDNN
#include <dnnl.h>

enum { KIND_FWD, KIND_FWD_BIAS, KIND_BWD_DATA, KIND_BWD_WEIGHTS, KIND_BWD_WEIGHTS_BIAS,
       KIND_BWD_BOTH /* a job, not a primitive: data then weights (backward_both) */ };
enum { CACHE_MAX = 32, MAX_MEMS = 4 };
/* 16 MB: training at batch 128 stays in one piece per block (conv2 of fashion-cnn: 9.6 MB) */
#define FWD_PIECE_BYTES ((int64_t)16 << 20)

typedef struct prim_key {
    int kind;
    nb_conv_shape s; /* N: the samples of one block */
} prim_key;

typedef struct prim {
    prim_key key;
    int used;
    dnnl_primitive_t p; /* NULL: oneDNN declined this shape */
    dnnl_memory_t mem[MAX_MEMS], scratch;
    dnnl_exec_arg_t args[MAX_MEMS + 1]; /* args[i] is mem[i] (then the scratchpad) */
    int nmem, nargs;
    /* where the primitive takes another layout than the plain one of mem[i] (the blocked
     * ones oneDNN prefers): a memory in that layout, the argument pointed at it, and the
     * reorder between it and mem[i] — run before the primitive for an input, after it for an
     * output (NULL where the plain layout is taken) */
    dnnl_primitive_t reorder[MAX_MEMS];
    dnnl_memory_t blocked[MAX_MEMS];
    dnnl_exec_arg_t reorder_args[MAX_MEMS][2];
    int output[MAX_MEMS];
    /* the blocked memories and the scratchpad have no storage of their own: they live in the
     * thread's shared buffer at these byte offsets, for the one execution that uses them */
    size_t offset[MAX_MEMS], scratch_offset, shared_need;
} prim;

/* shared: what the primitives' blocked copies and scratchpads need, the largest of them (one
 * primitive runs at a time on a thread, and nothing stays in them between calls), where each
 * entry owning its own measured 19 MB more for fashion-cnn at batch 128 (205 → 222 MB). */
typedef struct thread_cache {
    prim slots[CACHE_MAX];
    int count;
    void *shared;
    size_t shared_bytes;
} thread_cache;

struct nb_conv_state {
    int threads;
    thread_cache *caches; /* one per pool thread */
};

/* ---- descriptors -------------------------------------------------------------------------- */

/* The padding after the last output: the least that yields `out` outputs (conv.h: whatever
 * P and Q imply), never negative. */
static int64_t pad_end(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad,
                       int64_t dil)
{
    int64_t need = (out - 1) * stride + dil * (k - 1) + 1 - in - pad;
    return need > 0 ? need : 0;
}

typedef struct geometry {
    dnnl_memory_desc_t src, wei, bias, dst;
    dnnl_dims_t strides, dilates, pad_l, pad_r;
} geometry;

static dnnl_status_t geometry_init(const nb_conv_shape *s, geometry *g)
{
    dnnl_dims_t src = {s->N, s->C, s->H, s->W}, dst = {s->N, s->K, s->P, s->Q};
    dnnl_dims_t wei = {s->K, s->C, s->R, s->S}, bias = {s->K};
    dnnl_dims_t gwei = {s->groups, s->K / s->groups, s->C / s->groups, s->R, s->S};
    dnnl_status_t st = dnnl_memory_desc_init_by_tag(&g->src, 4, src, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&g->dst, 4, dst, dnnl_f32, dnnl_nchw);
    if (st == dnnl_success)
        st = s->groups > 1 ? dnnl_memory_desc_init_by_tag(&g->wei, 5, gwei, dnnl_f32, dnnl_goihw)
                           : dnnl_memory_desc_init_by_tag(&g->wei, 4, wei, dnnl_f32, dnnl_oihw);
    if (st == dnnl_success)
        st = dnnl_memory_desc_init_by_tag(&g->bias, 1, bias, dnnl_f32, dnnl_x);
    /* oneDNN counts dilation from 0 (0 = dense); nabla and PyTorch from 1 */
    g->strides[0] = s->stride_h, g->strides[1] = s->stride_w;
    g->dilates[0] = s->dil_h - 1, g->dilates[1] = s->dil_w - 1;
    g->pad_l[0] = s->pad_h, g->pad_l[1] = s->pad_w;
    g->pad_r[0] = pad_end(s->H, s->P, s->R, s->stride_h, s->pad_h, s->dil_h);
    g->pad_r[1] = pad_end(s->W, s->Q, s->S, s->stride_w, s->pad_w, s->dil_w);
    return st;
}

/* The convolution's descriptor of kind `kind` on the activation and weight layouts src, wei,
 * dst (plain, or "any": oneDNN's choice). */
static dnnl_status_t conv_desc(int kind, const geometry *g, const dnnl_memory_desc_t *src,
                               const dnnl_memory_desc_t *wei, const dnnl_memory_desc_t *dst,
                               dnnl_convolution_desc_t *d)
{
    int bias = kind == KIND_FWD_BIAS || kind == KIND_BWD_WEIGHTS_BIAS;
    if (kind <= KIND_FWD_BIAS)
        return dnnl_dilated_convolution_forward_desc_init(
            d, dnnl_forward_training, dnnl_convolution_direct, src, wei, bias ? &g->bias : NULL,
            dst, g->strides, g->dilates, g->pad_l, g->pad_r);
    if (kind == KIND_BWD_DATA)
        return dnnl_dilated_convolution_backward_data_desc_init(
            d, dnnl_convolution_direct, src, wei, dst, g->strides, g->dilates, g->pad_l,
            g->pad_r);
    return dnnl_dilated_convolution_backward_weights_desc_init(
        d, dnnl_convolution_direct, src, wei, bias ? &g->bias : NULL, dst, g->strides,
        g->dilates, g->pad_l, g->pad_r);
}

/* The primitive descriptor of kind `kind`, plain (NCHW / OIHW) or on the layouts oneDNN
 * prefers (`blocked`: format "any"). Backward ones get the forward one on the same layouts
 * as their hint (oneDNN requires one). */
static dnnl_status_t conv_pd(dnnl_engine_t engine, const geometry *g, int kind, int blocked,
                             const_dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd)
{
    dnnl_memory_desc_t any[3];
    const dnnl_memory_desc_t *plain[3] = {&g->src, &g->wei, &g->dst}, *md[3];
    dnnl_status_t st = dnnl_success;
    for (int i = 0; i < 3 && st == dnnl_success; i++) {
        md[i] = plain[i];
        if (blocked) {
            st = dnnl_memory_desc_init_by_tag(&any[i], plain[i]->ndims, plain[i]->dims,
                                              dnnl_f32, dnnl_format_tag_any);
            md[i] = &any[i];
        }
    }
    dnnl_primitive_desc_t hint = NULL;
    dnnl_convolution_desc_t d;
    *pd = NULL;
    if (st == dnnl_success && kind > KIND_FWD_BIAS) {
        int fwd = kind == KIND_BWD_WEIGHTS_BIAS ? KIND_FWD_BIAS : KIND_FWD;
        st = conv_desc(fwd, g, md[0], md[1], md[2], &d);
        if (st == dnnl_success)
            st = dnnl_primitive_desc_create(&hint, &d, NULL, engine, NULL);
    }
    if (st == dnnl_success)
        st = conv_desc(kind, g, md[0], md[1], md[2], &d);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(pd, &d, attr, engine, hint);
    if (hint)
        dnnl_primitive_desc_destroy(hint);
    if (st != dnnl_success && *pd) {
        dnnl_primitive_desc_destroy(*pd);
        *pd = NULL;
    }
    return st;
}

/* Byte sizes inside the shared buffer: whole cache lines. */
static size_t shared_round(size_t bytes)
{
    return (bytes + 63) / 64 * 64;
}

static int is_output(int arg)
{
    return arg == DNNL_ARG_DST || arg == DNNL_ARG_DIFF_SRC || arg == DNNL_ARG_DIFF_WEIGHTS ||
           arg == DNNL_ARG_DIFF_BIAS;
}

/* For the primitive of pd: where the layout it takes for mem[i] is not mem[i]'s plain one, a
 * memory in its layout, the reorder between the two (plain → blocked for an input, blocked →
 * plain for an output), and the primitive's argument pointed at the blocked memory. */
static dnnl_status_t add_reorders(prim *e, dnnl_engine_t engine, dnnl_primitive_desc_t pd)
{
    /* dy's blocked copy first, at offset 0 of the shared buffer, in both backward kinds: a
     * combined backward (backward_both) reorders it once for the two */
    for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < e->nmem; i++) {
        int arg = e->args[i].arg;
        if ((arg == DNNL_ARG_DIFF_DST) != (pass == 0))
            continue;
        const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md,
                                                                      arg);
        const dnnl_memory_desc_t *have;
        if (dnnl_memory_get_memory_desc(e->mem[i], &have) != dnnl_success || !want)
            return dnnl_runtime_error;
        if (dnnl_memory_desc_equal(want, have))
            continue;
        e->output[i] = is_output(arg);
        dnnl_primitive_desc_t rd = NULL;
        dnnl_status_t st = dnnl_memory_create(&e->blocked[i], want, engine, DNNL_MEMORY_NONE);
        if (st != dnnl_success) {
            e->blocked[i] = NULL;
            return st;
        }
        e->offset[i] = e->shared_need;
        e->shared_need += shared_round(dnnl_memory_desc_get_size(want));
        st = e->output[i]
                 ? dnnl_reorder_primitive_desc_create(&rd, want, engine, have, engine, NULL)
                 : dnnl_reorder_primitive_desc_create(&rd, have, engine, want, engine, NULL);
        if (st == dnnl_success)
            st = dnnl_primitive_create(&e->reorder[i], rd);
        if (rd)
            dnnl_primitive_desc_destroy(rd);
        if (st != dnnl_success) {
            e->reorder[i] = NULL;
            return st;
        }
        dnnl_memory_t plain = e->mem[i], blocked = e->blocked[i];
        e->reorder_args[i][0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, e->output[i] ? blocked : plain};
        e->reorder_args[i][1] = (dnnl_exec_arg_t){DNNL_ARG_TO, e->output[i] ? plain : blocked};
        e->args[i].memory = blocked;
    }
    return dnnl_success;
}

/* ---- the per-thread cache ----------------------------------------------------------------- */

static void prim_clear(prim *e)
{
    for (int i = 0; i < MAX_MEMS; i++) {
        if (e->reorder[i])
            dnnl_primitive_destroy(e->reorder[i]);
        if (e->blocked[i])
            dnnl_memory_destroy(e->blocked[i]);
    }
    for (int i = 0; i < e->nmem; i++)
        dnnl_memory_destroy(e->mem[i]);
    if (e->scratch)
        dnnl_memory_destroy(e->scratch);
    if (e->p)
        dnnl_primitive_destroy(e->p);
    memset(e, 0, sizeof *e);
}

static dnnl_status_t add_mem(prim *e, dnnl_engine_t engine, int arg, const dnnl_memory_desc_t *md)
{
    dnnl_status_t st = dnnl_memory_create(&e->mem[e->nmem], md, engine, DNNL_MEMORY_NONE);
    if (st != dnnl_success)
        return st;
    e->args[e->nargs++] = (dnnl_exec_arg_t){.arg = arg, .memory = e->mem[e->nmem]};
    e->nmem++;
    return st;
}

/* The primitive of e->key with its memory objects (data handles set per call, in the order
 * of conv.h's arguments: inputs then outputs) and its own scratchpad. On failure e keeps its
 * key and no primitive. */
static void prim_build(dnnl_engine_t engine, prim *e)
{
    const prim_key *k = &e->key;
    geometry g;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = geometry_init(&k->s, &g);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    /* Blocked layouts take oneDNN's direct JIT kernels instead of im2col + GEMM (plain
     * NCHW). Measured (bench_cnn kernels, conv2 of fashion-cnn at batch 128, one thread, the
     * reorders included): forward 17.3 → 14.0 ms, backward data 18.6–33 → 13.3–15 ms,
     * backward weights 17.2–26 → 16.7–17 ms (a loaded machine: ranges over runs). Few
     * channels per group (a first layer on grey images): the reorder of y costs more than the
     * blocked kernel saves (conv1 of fashion-cnn: 3.9 ms plain, 5.3–5.6 blocked). */
    int blocked = k->s.C / k->s.groups >= 8 && k->s.K / k->s.groups >= 8;
    if (st == dnnl_success && blocked)
        conv_pd(engine, &g, k->kind, 1, attr, &pd);
    if (st == dnnl_success && !pd)
        st = conv_pd(engine, &g, k->kind, 0, attr, &pd);
    if (st == dnnl_success)
        st = dnnl_primitive_create(&e->p, pd);
    if (st == dnnl_success) {
        switch (k->kind) {
        case KIND_FWD:
        case KIND_FWD_BIAS:
            st = add_mem(e, engine, DNNL_ARG_SRC, &g.src);
            if (st == dnnl_success)
                st = add_mem(e, engine, DNNL_ARG_WEIGHTS, &g.wei);
            if (st == dnnl_success && k->kind == KIND_FWD_BIAS)
                st = add_mem(e, engine, DNNL_ARG_BIAS, &g.bias);
            if (st == dnnl_success)
                st = add_mem(e, engine, DNNL_ARG_DST, &g.dst);
            break;
        case KIND_BWD_DATA:
            st = add_mem(e, engine, DNNL_ARG_DIFF_DST, &g.dst);
            if (st == dnnl_success)
                st = add_mem(e, engine, DNNL_ARG_WEIGHTS, &g.wei);
            if (st == dnnl_success)
                st = add_mem(e, engine, DNNL_ARG_DIFF_SRC, &g.src);
            break;
        default:
            st = add_mem(e, engine, DNNL_ARG_SRC, &g.src);
            if (st == dnnl_success)
                st = add_mem(e, engine, DNNL_ARG_DIFF_DST, &g.dst);
            if (st == dnnl_success)
                st = add_mem(e, engine, DNNL_ARG_DIFF_WEIGHTS, &g.wei);
            if (st == dnnl_success && k->kind == KIND_BWD_WEIGHTS_BIAS)
                st = add_mem(e, engine, DNNL_ARG_DIFF_BIAS, &g.bias);
        }
        if (st == dnnl_success)
            st = add_reorders(e, engine, pd);
    }
    const dnnl_memory_desc_t *scratch_md =
        st == dnnl_success ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    if (scratch_md && dnnl_memory_desc_get_size(scratch_md) > 0) {
        st = dnnl_memory_create(&e->scratch, scratch_md, engine, DNNL_MEMORY_NONE);
        if (st == dnnl_success) {
            e->args[e->nargs++] =
                (dnnl_exec_arg_t){.arg = DNNL_ARG_SCRATCHPAD, .memory = e->scratch};
            e->scratch_offset = e->shared_need;
            e->shared_need += shared_round(dnnl_memory_desc_get_size(scratch_md));
        } else {
            e->scratch = NULL;
        }
    }
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) {
        prim_key kept = e->key;
        prim_clear(e);
        e->key = kept;
        e->used = 1;
    }
}

static void cache_flush(thread_cache *c)
{
    for (int i = 0; i < c->count; i++)
        prim_clear(&c->slots[i]);
    c->count = 0;
}

static prim *cache_get(thread_cache *c, dnnl_engine_t engine, const prim_key *key)
{
    for (int i = 0; i < c->count; i++)
        if (c->slots[i].key.kind == key->kind &&
            memcmp(&c->slots[i].key.s, &key->s, sizeof key->s) == 0)
            return &c->slots[i];
    if (c->count == CACHE_MAX)
        cache_flush(c);
    prim *e = &c->slots[c->count++];
    e->key = *key;
    e->used = 1;
    prim_build(engine, e);
    if (e->p && e->shared_need > c->shared_bytes) {
        void *grown = aligned_alloc(64, e->shared_need);
        if (!grown) { /* out of memory: this shape runs the portable kernel */
            prim_clear(e);
            e->key = *key;
            e->used = 1;
            return e;
        }
        free(c->shared);
        c->shared = grown;
        c->shared_bytes = e->shared_need;
    }
    return e;
}

void nb_conv_state_free(struct nb_conv_state *st)
{
    if (!st)
        return;
    for (int t = 0; t < st->threads; t++) {
        for (int i = 0; i < st->caches[t].count; i++)
            prim_clear(&st->caches[t].slots[i]);
        free(st->caches[t].shared);
    }
    free(st->caches);
    free(st);
}

static struct nb_conv_state *state_get(nb_gemm *ctx)
{
    struct nb_conv_state **slot = nb_gemm_conv_state(ctx);
    if (!*slot) {
        struct nb_conv_state *st = calloc(1, sizeof *st);
        int threads = nb_gemm_threads(ctx);
        if (!st || !(st->caches = calloc((size_t)threads, sizeof *st->caches))) {
            free(st);
            return NULL;
        }
        st->threads = threads;
        *slot = st;
    }
    return *slot;
}

/* ---- running ------------------------------------------------------------------------------ */

typedef struct job {
    nb_gemm *ctx;
    struct nb_conv_state *st;
    const nb_conv_shape *s;
    int kind, tasks;
    const float *in[3]; /* per kind: the arrays of prim_build's memory order, sample-major ones
                         * offset per block, the rest shared */
    float *out[3]; /* KIND_BWD_BOTH: in = {x, dy, w}, out = {dx or its ws, partials, db or
                    * NULL: whether the bias gradient is asked} */
    int failed;         /* some block had no primitive: the caller falls back */
} job;

static int kind_mems(int kind)
{
    return kind == KIND_FWD_BIAS || kind == KIND_BWD_WEIGHTS_BIAS ? 4 : 3;
}

/* Pieces a block of n samples runs in: one, but for a forward whose activations exceed
 * FWD_PIECE_BYTES. */
static int64_t block_pieces(const job *j, int64_t n)
{
    const nb_conv_shape *s = j->s;
    int64_t sample = (s->C * s->H * s->W + s->K * s->P * s->Q) * (int64_t)sizeof(float);
    if (j->kind != KIND_FWD && j->kind != KIND_FWD_BIAS)
        return 1;
    int64_t fit = FWD_PIECE_BYTES / (sample > 0 ? sample : 1);
    fit = fit > 1 ? fit : 1;
    return (n + fit - 1) / fit;
}

/* Executes e on the arrays ptr (prim_build's memory order) with its blocked copies in
 * `shared`; skip_in: an input whose blocked copy is already there (-1: none). */
static int run_prim(prim *e, char *shared, float *const *ptr, void *stream, int skip_in)
{
    dnnl_status_t st = dnnl_success;
    for (int i = 0; i < e->nmem && st == dnnl_success; i++) {
        st = dnnl_memory_set_data_handle(e->mem[i], ptr[i]);
        if (st == dnnl_success && e->blocked[i])
            st = dnnl_memory_set_data_handle(e->blocked[i], shared + e->offset[i]);
    }
    if (st == dnnl_success && e->scratch)
        st = dnnl_memory_set_data_handle(e->scratch, shared + e->scratch_offset);
    for (int i = 0; i < e->nmem && st == dnnl_success; i++)
        if (e->reorder[i] && !e->output[i] && i != skip_in)
            st = dnnl_primitive_execute(e->reorder[i], (dnnl_stream_t)stream, 2,
                                        e->reorder_args[i]);
    if (st == dnnl_success)
        st = dnnl_primitive_execute(e->p, (dnnl_stream_t)stream, e->nargs, e->args);
    for (int i = 0; i < e->nmem && st == dnnl_success; i++)
        if (e->reorder[i] && e->output[i])
            st = dnnl_primitive_execute(e->reorder[i], (dnnl_stream_t)stream, 2,
                                        e->reorder_args[i]);
    if (st == dnnl_success)
        st = dnnl_stream_wait((dnnl_stream_t)stream);
    return st == dnnl_success;
}

/* Whether backward weights (w, dy its memory 1) can take the blocked dy that backward data
 * (d, dy its memory 0) left at the same place of the shared buffer: both blocked alike. */
static int dy_shared(prim *d, prim *w)
{
    const dnnl_memory_desc_t *a, *b;
    return d->blocked[0] && w->blocked[1] && d->offset[0] == w->offset[1] &&
           dnnl_memory_get_memory_desc(d->blocked[0], &a) == dnnl_success &&
           dnnl_memory_get_memory_desc(w->blocked[1], &b) == dnnl_success &&
           dnnl_memory_desc_equal(a, b);
}

static int weights_kind(const job *j)
{
    return j->out[2] ? KIND_BWD_WEIGHTS_BIAS : KIND_BWD_WEIGHTS;
}

/* Samples [n0, n1) of the job on thread `thread`'s engine, stream and cache. */
static int run_piece(job *j, int thread, int64_t n0, int64_t n1, int task)
{
    const nb_conv_shape *s = j->s;
    void *engine, *stream;
    nb_gemm_onednn_enter(nb_gemm_thread_context(j->ctx, thread), &engine, &stream);
    prim_key key = {.kind = j->kind == KIND_BWD_BOTH ? KIND_BWD_DATA : j->kind, .s = *s};
    key.s.N = n1 - n0;
    thread_cache *c = &j->st->caches[thread];
    if (j->kind == KIND_BWD_BOTH && c->count + 2 > CACHE_MAX)
        cache_flush(c); /* so that getting the second cannot clear the first */
    prim *e = cache_get(c, engine, &key);
    if (!e->p)
        return 0;
    int64_t x_n = s->C * s->H * s->W, y_n = s->K * s->P * s->Q;
    int64_t dw_n = s->K * (s->C / s->groups) * s->R * s->S;
    float *ptr[MAX_MEMS];
    if (j->kind == KIND_BWD_BOTH) {
        /* backward data then weights, dy reordered into the blocked layout once */
        key.kind = weights_kind(j);
        prim *e_w = cache_get(c, engine, &key);
        if (!e_w->p)
            return 0;
        float *dx_ptr[3] = {(float *)j->in[1] + n0 * y_n, (float *)j->in[2], j->out[0] + n0 * x_n};
        float *part = j->out[1] + task * (dw_n + s->K);
        float *w_ptr[4] = {(float *)j->in[0] + n0 * x_n, (float *)j->in[1] + n0 * y_n, part,
                           part + dw_n};
        return run_prim(e, c->shared, dx_ptr, stream, -1) &&
               run_prim(e_w, c->shared, w_ptr, stream, dy_shared(e, e_w) ? 1 : -1);
    }
    switch (j->kind) {
    case KIND_FWD:
    case KIND_FWD_BIAS: /* x, w, (b), y */
        ptr[0] = (float *)j->in[0] + n0 * x_n, ptr[1] = (float *)j->in[1];
        ptr[2] = (float *)j->in[2], ptr[kind_mems(j->kind) - 1] = j->out[0] + n0 * y_n;
        break;
    case KIND_BWD_DATA: /* dy, w, dx */
        ptr[0] = (float *)j->in[0] + n0 * y_n, ptr[1] = (float *)j->in[1];
        ptr[2] = j->out[0] + n0 * x_n;
        break;
    default: /* x, dy, this task's partial dw, (db) */
        ptr[0] = (float *)j->in[0] + n0 * x_n, ptr[1] = (float *)j->in[1] + n0 * y_n;
        ptr[2] = j->out[0] + task * (dw_n + s->K), ptr[3] = ptr[2] + dw_n;
    }
    return run_prim(e, c->shared, ptr, stream, -1);
}

/* Samples [n0, n1), in block_pieces pieces. */
static int run_block(job *j, int thread, int64_t n0, int64_t n1, int task)
{
    int64_t pieces = block_pieces(j, n1 - n0);
    for (int64_t p = 0; p < pieces; p++) {
        int64_t a, b;
        nb_task_range(n1 - n0, (int)pieces, (int)p, 1, &a, &b);
        if (a < b && !run_piece(j, thread, n0 + a, n0 + b, task))
            return 0;
    }
    return 1;
}

static void run_task(void *arg, int task, int thread)
{
    job *j = arg;
    int64_t n0, n1;
    nb_task_range(j->s->N, j->tasks, task, 1, &n0, &n1);
    if (n0 < n1 && !run_block(j, thread, n0, n1, task))
        j->failed = 1; /* every writer stores 1: a benign flag */
}

static int conv_tasks(const nb_gemm *ctx, const nb_conv_shape *s)
{
    int threads = nb_gemm_threads(ctx);
    return s->N < threads ? (int)s->N : threads;
}

/* Runs the job's blocks: 1 when every block ran on oneDNN, 0 when the caller must fall back.
 * The calling thread makes its primitive for the first block first, so that a shape oneDNN
 * declines costs one look-up and no thread hand-over. */
static int run(job *j)
{
    j->st = state_get(j->ctx);
    j->tasks = conv_tasks(j->ctx, j->s);
    if (!j->st || j->s->N < 1 || j->s->groups < 1)
        return 0;
    void *engine, *stream;
    int thread = nb_pool_current_thread();
    nb_gemm_onednn_enter(nb_gemm_thread_context(j->ctx, thread), &engine, &stream);
    int64_t n0, n1, a, b;
    nb_task_range(j->s->N, j->tasks, 0, 1, &n0, &n1);
    nb_task_range(n1 - n0, (int)block_pieces(j, n1 - n0), 0, 1, &a, &b);
    prim_key key = {.kind = j->kind == KIND_BWD_BOTH ? KIND_BWD_DATA : j->kind, .s = *j->s};
    key.s.N = b - a;
    thread_cache *c = &j->st->caches[thread];
    if (j->kind == KIND_BWD_BOTH && c->count + 2 > CACHE_MAX)
        cache_flush(c);
    if (!cache_get(c, engine, &key)->p)
        return 0;
    key.kind = j->kind == KIND_BWD_BOTH ? weights_kind(j) : key.kind;
    if (!cache_get(c, engine, &key)->p)
        return 0;
    j->failed = 0;
    nb_gemm_parallel(j->ctx, j->tasks, run_task, j);
    return !j->failed;
}

/* ---- the kernels -------------------------------------------------------------------------- */

static int supports(const nb_gemm *ctx, nb_precision p)
{
    (void)p; /* bf16 runs these in fp32 (conv.h) */
    return nb_gemm_backend_of(ctx) == NB_GEMM_ONEDNN;
}

static size_t workspace(const nb_gemm *ctx, const nb_conv_shape *s)
{
    size_t most = nb_conv_portable.conv2d_workspace(ctx, s);
    size_t dx = (size_t)(s->N * s->C * s->H * s->W);
    size_t parts = (size_t)conv_tasks(ctx, s) *
                   (size_t)(s->K * (s->C / s->groups) * s->R * s->S + s->K);
    most = dx > most ? dx : most;
    return dx + parts > most ? dx + parts : most; /* backward_both: dx's, then the partials */
}

static void forward(nb_gemm *ctx, const nb_conv_shape *s, const float *x, const float *w,
                    const float *bias, float *y, float *ws)
{
    job j = {.ctx = ctx, .s = s, .kind = bias ? KIND_FWD_BIAS : KIND_FWD,
             .in = {x, w, bias}, .out = {y}};
    if (!run(&j))
        nb_conv_portable.conv2d_forward(ctx, s, x, w, bias, y, ws);
}

typedef struct add_job {
    float beta, *dst;
    const float *parts;
    int64_t stride; /* between partials */
    int count;      /* partials added */
} add_job;

/* dst = beta·dst + Σ_t parts[t·stride + i] over [first, last), t in order */
static void add_range(void *arg, int64_t first, int64_t last, int task)
{
    (void)task;
    const add_job *a = arg;
    for (int64_t i = first; i < last; i++) {
        float v = a->beta == 0.0f ? 0.0f : a->beta * a->dst[i];
        for (int t = 0; t < a->count; t++)
            v += a->parts[t * a->stride + i];
        a->dst[i] = v;
    }
}

/* dw = beta·dw + Σ_t parts_t (and dbias likewise), t in task order */
static void add_partials(nb_gemm *ctx, const nb_conv_shape *s, int tasks, const float *parts,
                         float beta, float *dw, float bias_beta, float *dbias)
{
    int64_t dw_n = s->K * (s->C / s->groups) * s->R * s->S;
    add_job a = {.beta = beta, .dst = dw, .parts = parts, .stride = dw_n + s->K, .count = tasks};
    nb_parallel_for(ctx, dw_n, 4096, 64, 0, add_range, &a);
    if (dbias) {
        add_job b = {.beta = bias_beta, .dst = dbias, .parts = parts + dw_n,
                     .stride = dw_n + s->K, .count = tasks};
        add_range(&b, 0, s->K, 0);
    }
}

static void backward_data(nb_gemm *ctx, const nb_conv_shape *s, const float *dy,
                          const float *w, float beta, float *dx, float *ws)
{
    /* oneDNN's backward data overwrites: with beta ≠ 0 it writes ws, added afterwards */
    job j = {.ctx = ctx, .s = s, .kind = KIND_BWD_DATA, .in = {dy, w},
             .out = {beta == 0.0f ? dx : ws}};
    if (!run(&j)) {
        nb_conv_portable.conv2d_backward_data(ctx, s, dy, w, beta, dx, ws);
        return;
    }
    if (beta != 0.0f) {
        add_job a = {.beta = beta, .dst = dx, .parts = ws, .stride = 0, .count = 1};
        nb_parallel_for(ctx, s->N * s->C * s->H * s->W, 4096, 64, 0, add_range, &a);
    }
}

static void backward_weights(nb_gemm *ctx, const nb_conv_shape *s, const float *x,
                             const float *dy, float beta, float *dw, float bias_beta,
                             float *dbias, float *ws)
{
    job j = {.ctx = ctx, .s = s, .kind = dbias ? KIND_BWD_WEIGHTS_BIAS : KIND_BWD_WEIGHTS,
             .in = {x, dy}, .out = {ws}};
    if (!dw || !run(&j)) {
        nb_conv_portable.conv2d_backward_weights(ctx, s, x, dy, beta, dw, bias_beta, dbias, ws);
        return;
    }
    add_partials(ctx, s, j.tasks, ws, beta, dw, bias_beta, dbias);
}

/* conv.h's backward data and weights of one call: as the two above, with dy reordered into
 * the blocked layout once for both primitives (each block of samples runs both on one
 * thread). Measured: README's "The CNN benchmark". */
static void backward_both(nb_gemm *ctx, const nb_conv_shape *s, const float *x, const float *dy,
                          const float *w, float dx_beta, float *dx, float beta, float *dw,
                          float bias_beta, float *dbias, float *ws)
{
    float *parts = ws + (dx_beta == 0.0f ? 0 : s->N * s->C * s->H * s->W);
    job j = {.ctx = ctx, .s = s, .kind = KIND_BWD_BOTH, .in = {x, dy, w},
             .out = {dx_beta == 0.0f ? dx : ws, parts, dbias}};
    if (!dw || !run(&j)) {
        backward_data(ctx, s, dy, w, dx_beta, dx, ws);
        backward_weights(ctx, s, x, dy, beta, dw, bias_beta, dbias, ws);
        return;
    }
    if (dx_beta != 0.0f) {
        add_job a = {.beta = dx_beta, .dst = dx, .parts = ws, .stride = 0, .count = 1};
        nb_parallel_for(ctx, s->N * s->C * s->H * s->W, 4096, 64, 0, add_range, &a);
    }
    add_partials(ctx, s, j.tasks, parts, beta, dw, bias_beta, dbias);
}

const nb_conv_kernels nb_conv_onednn = {
    .name = "onednn",
    .supports = supports,
    .conv2d_workspace = workspace,
    .conv2d_forward = forward,
    .conv2d_backward_data = backward_data,
    .conv2d_backward_weights = backward_weights,
    .conv2d_backward = backward_both,
};

#else
void nb_conv_state_free(struct nb_conv_state *st)
{
    (void)st; /* never made without oneDNN */
}
#endif
