/* Running the oneDNN image kernels' calls (conv_onednn.h) on nabla's thread pool.
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
 * A block's primitive comes from its thread's cache (conv_onednn_cache.c), which made it for
 * that block's sample count; a shape oneDNN declines, or a thread that could not make its
 * primitive, fails the job, and the caller (conv_onednn.c) runs the portable kernel. */
#include "backend/conv_onednn.h"
#include "backend/gemm_pool.h"

#ifdef NB_HAVE_ONEDNN

/* 16 MB: training at batch 128 stays in one piece per block (conv2 of fashion-cnn: 9.6 MB) */
#define FWD_PIECE_BYTES ((int64_t)16 << 20)

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
        nb_onednn_conv_cache_flush(c); /* so that getting the second cannot clear the first */
    prim *e = nb_onednn_conv_cache_get(c, engine, &key);
    if (!e->p)
        return 0;
    int64_t x_n = s->C * s->H * s->W, y_n = s->K * s->P * s->Q;
    int64_t dw_n = s->K * (s->C / s->groups) * s->R * s->S;
    float *ptr[MAX_MEMS];
    if (j->kind == KIND_BWD_BOTH) {
        /* backward data then weights, dy reordered into the blocked layout once */
        key.kind = weights_kind(j);
        prim *e_w = nb_onednn_conv_cache_get(c, engine, &key);
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

int nb_onednn_conv_tasks(const nb_gemm *ctx, const nb_conv_shape *s)
{
    int threads = nb_gemm_threads(ctx);
    return s->N < threads ? (int)s->N : threads;
}

/* Runs the job's blocks: 1 when every block ran on oneDNN, 0 when the caller must fall back.
 * The calling thread makes its primitive for the first block first, so that a shape oneDNN
 * declines costs one look-up and no thread hand-over. */
int nb_onednn_conv_run(job *j)
{
    j->st = nb_onednn_conv_state_get(j->ctx);
    j->tasks = nb_onednn_conv_tasks(j->ctx, j->s);
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
        nb_onednn_conv_cache_flush(c);
    if (!nb_onednn_conv_cache_get(c, engine, &key)->p)
        return 0;
    key.kind = j->kind == KIND_BWD_BOTH ? weights_kind(j) : key.kind;
    if (!nb_onednn_conv_cache_get(c, engine, &key)->p)
        return 0;
    j->failed = 0;
    nb_gemm_parallel(j->ctx, j->tasks, run_task, j);
    return !j->failed;
}

#endif
