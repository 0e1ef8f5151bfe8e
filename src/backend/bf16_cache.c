/* The bf16 state of a gemm context (backend/linear.h's caching): the oneDNN engine and a
 * stream per pool thread, each layer's bf16 copies — the shadows of its weights, remade when
 * their generation moves on, in the plain or the blocked layout (see bf16_linear.c), and the
 * rounded X and dY kept between forward and backward — and the report of what ran. */
#include "backend/backend.h"
#include "backend/bf16_state.h"
#include "backend/gemm_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NB_HAVE_ONEDNN

void nb_bf16_prim_clear(prim *e)
{
    nb_matmul_clear(&e->mm);
    memset(e, 0, sizeof *e);
}

void nb_bf16_cache_flush(thread_ctx *c)
{
    for (int i = 0; i < c->count; i++)
        nb_bf16_prim_clear(&c->cache[i]);
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
        nb_bf16_cache_flush(&st->ctx[t]);
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
        nb_bf16_cache_flush(&st->ctx[t]);
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
nb_bf16_state *nb_bf16_state_get(nb_gemm *gemm, nb_error *err)
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
    return nb_bf16_state_get(gemm, err) ? NB_OK : (err && err->code ? err->code : NB_ENOTSUP);
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
lin *nb_bf16_lin_get(nb_bf16_state *st, const nb_linear_shape *s)
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

void nb_bf16_add_name(char *buf, size_t size, const char *name)
{
    size_t used = strlen(buf), n = strlen(name);
    for (const char *p = buf; (p = strstr(p, name)) != NULL; p += n)
        if ((p == buf || p[-1] == '+') && (p[n] == 0 || p[n] == '+'))
            return;
    if (used + n + 2 <= size)
        snprintf(buf + used, size - used, "%s%s", used ? "+" : "", name);
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
    nb_bf16_convert_rows(j->src + (size_t)first * j->lds, j->lds, j->dst + (size_t)first * j->ldd,
                 j->ldd, last - first, j->cols);
}

/* rows × cols converted on the pool (blocks of ≥ 32 k elements). */
void nb_bf16_convert_parallel(nb_gemm *gemm, const float *src, size_t lds, nb_bf16 *dst, size_t ldd,
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
    nb_matmul_shape shape;
    dnnl_primitive_desc_t pd = NULL;
    (void)kind;
    nb_bf16_matmul_shape(k, NULL, &shape);
    shape.b_any = 1;
    dnnl_status_t s = nb_matmul_pd(st->engine, &shape, &pd);
    if (s == dnnl_success)
        *md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return s == dnnl_success;
}

/* The bf16 weights of layer l for a product of `kind`, made from W's values if they changed
 * since (another generation, or other values altogether); *wmd receives the layout (NULL:
 * plain [out, in]). NULL when it cannot be made (the caller computes in fp32). */
const void *nb_bf16_shadow_get(nb_gemm *gemm, nb_bf16_state *st, lin *l, const nb_weights *W,
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
                return nb_bf16_shadow_get(gemm, st, l, W, out, in, kind, first_block, wmd); /* plain */
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
            nb_bf16_cap_threads(st);
            if (dnnl_memory_set_data_handle(sh->from, (void *)W->values) != dnnl_success ||
                dnnl_primitive_execute(sh->reorder, st->ctx[thread].stream, 2, args) !=
                    dnnl_success)
                return NULL;
            dnnl_stream_wait(st->ctx[thread].stream);
        } else {
            nb_bf16_convert_parallel(gemm, W->values, (size_t)in, sh->data, (size_t)in, out, in);
        }
        sh->generation = W->generation;
    }
    st->layouts_used |= sh->blocked ? 2 : 1;
    *wmd = sh->blocked ? &sh->md : NULL;
    return sh->data;
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
                nb_bf16_add_name(impl, sizeof impl, name);
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

char *nb_bf16_kernels(nb_gemm *gemm, char *buf, size_t size)
{
    (void)gemm;
    snprintf(buf, size, "fp32");
    return buf;
}
#endif
