/* The oneDNN image kernels' primitives (conv_onednn.h), fp32: the convolution descriptors on
 * the caller's plain NCHW / OIHW (GOIHW when grouped) arrays, the blocked layouts oneDNN
 * prefers with the reorders into and out of them (prim_build has the measurements), and the
 * per-thread cache they live in.
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
 * The cache is the state a gemm context carries for these kernels (nb_conv_state, one
 * thread_cache per pool thread; gemm.c frees it with the context). */
#include "backend/conv_onednn.h"
#include "backend/gemm_pool.h"

#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_ONEDNN

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

void nb_onednn_conv_cache_flush(thread_cache *c)
{
    for (int i = 0; i < c->count; i++)
        prim_clear(&c->slots[i]);
    c->count = 0;
}

prim *nb_onednn_conv_cache_get(thread_cache *c, dnnl_engine_t engine, const prim_key *key)
{
    for (int i = 0; i < c->count; i++)
        if (c->slots[i].key.kind == key->kind &&
            memcmp(&c->slots[i].key.s, &key->s, sizeof key->s) == 0)
            return &c->slots[i];
    if (c->count == CACHE_MAX)
        nb_onednn_conv_cache_flush(c);
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

struct nb_conv_state *nb_onednn_conv_state_get(nb_gemm *ctx)
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
#else
void nb_conv_state_free(struct nb_conv_state *st)
{
    (void)st; /* never made without oneDNN */
}
#endif
