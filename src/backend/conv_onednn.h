/* Internal to the oneDNN image kernels (conv.h's nb_conv_onednn), one file per concern:
 *   conv_onednn.c        the table: which kernel runs what, the workspace, and the sums that
 *                        follow oneDNN's calls (partial weight gradients, beta ≠ 0)
 *   conv_onednn_run.c    a call as a job: cut into one block of samples per pool thread (a
 *                        large forward block in pieces), each run on its thread's primitives
 *   conv_onednn_cache.c  the primitives: descriptors, blocked layouts and their reorders, and
 *                        the per-thread cache with its one shared buffer (nb_conv_state)
 * What they share: the kinds of primitive, the cache entry and the per-thread cache (read by
 * the runner, built by the cache), and the job (made by the table, run by the runner). */
#ifndef NB_CONV_ONEDNN_H
#define NB_CONV_ONEDNN_H

#include "backend/backend.h"
#include "backend/conv.h"

#ifdef NB_HAVE_ONEDNN
#include <dnnl.h>

enum { KIND_FWD, KIND_FWD_BIAS, KIND_BWD_DATA, KIND_BWD_WEIGHTS, KIND_BWD_WEIGHTS_BIAS,
       KIND_BWD_BOTH /* a job, not a primitive: data then weights (backward_both) */ };
enum { CACHE_MAX = 32, MAX_MEMS = 4 };

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

/* The per-thread cache's entry of *key, made on first use on `engine` (the calling thread's):
 * e->p NULL when oneDNN declined the shape or memory ran out — the caller then falls back.
 * The entry stays owned by the cache, valid until it is flushed. */
prim *nb_onednn_conv_cache_get(thread_cache *c, dnnl_engine_t engine, const prim_key *key);
void nb_onednn_conv_cache_flush(thread_cache *c);
/* ctx's state, made on first use (NULL: out of memory); owned by ctx (nb_conv_state_free). */
struct nb_conv_state *nb_onednn_conv_state_get(nb_gemm *ctx);

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

/* Tasks (blocks of samples) a call on s is cut into: one per pool thread, at most N. */
int nb_onednn_conv_tasks(const nb_gemm *ctx, const nb_conv_shape *s);
/* Runs j (ctx, s, kind, in, out set): 1 when every block ran on oneDNN, 0 when the caller must
 * fall back, before anything was accumulated into the caller's arrays. Sets j->tasks. */
int nb_onednn_conv_run(job *j);

#endif /* NB_HAVE_ONEDNN */
#endif
