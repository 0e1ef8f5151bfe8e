/* Internal to the bf16 path (bf16_linear.c: the products; bf16_cache.c: the state a gemm
 * context carries — oneDNN engine and streams, the layers' bf16 copies of weights and
 * activations — and the report of what ran). Not for other files. */
#ifndef NB_BF16_STATE_H
#define NB_BF16_STATE_H

#include "backend/bf16.h"

#ifdef NB_HAVE_ONEDNN
#include "backend/onednn_matmul.h"
#include "backend/openmp.h"

#include <dnnl.h>

typedef struct nb_bf16_state nb_bf16_state;

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
    nb_matmul mm; /* mm.prim NULL: oneDNN declined the shape, run it in fp32 */
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

/* rows × cols of src (row stride lds) into dst (row stride ldd). */
static inline void nb_bf16_convert_rows(const float *src, size_t lds, nb_bf16 *dst, size_t ldd,
                                        int64_t rows, int64_t cols)
{
    if (lds == (size_t)cols && ldd == (size_t)cols) {
        nb_bf16_convert(src, dst, (size_t)(rows * cols));
        return;
    }
    for (int64_t r = 0; r < rows; r++)
        nb_bf16_convert(src + (size_t)r * lds, dst + (size_t)r * ldd, (size_t)cols);
}

/* oneDNN's OpenMP capped to one thread: nabla's pool owns the threads. */
static inline void nb_bf16_cap_threads(const nb_bf16_state *st)
{
    nb_openmp_cap(&st->omp, 1);
}

/* bf16_cache.c */
/* The context's state, made on first use; NULL (err set) where bf16 cannot run. */
nb_bf16_state *nb_bf16_state_get(nb_gemm *gemm, nb_error *err);
/* The state of layer s->layer with room for s->N samples; NULL when out of memory. */
lin *nb_bf16_lin_get(nb_bf16_state *st, const nb_linear_shape *s);
/* The bf16 weights of layer l for a product of `kind` (see bf16_cache.c); NULL: use fp32. */
const void *nb_bf16_shadow_get(nb_gemm *gemm, nb_bf16_state *st, lin *l, const nb_weights *W,
                               int64_t out, int64_t in, int kind, const prim_key *first_block,
                               const dnnl_memory_desc_t **wmd);
/* rows × cols converted on the pool. */
void nb_bf16_convert_parallel(nb_gemm *gemm, const float *src, size_t lds, nb_bf16 *dst,
                              size_t ldd, int64_t rows, int64_t cols);
/* Appends name to the '+'-joined list in buf unless it is there. */
void nb_bf16_add_name(char *buf, size_t size, const char *name);

/* A cached primitive released; a thread's whole cache released. */
void nb_bf16_prim_clear(prim *e);
void nb_bf16_cache_flush(thread_ctx *c);

/* bf16_linear.c */
/* The matmul of a product of key k's kind and shape (weights laid out as wmd when given). */
void nb_bf16_matmul_shape(const prim_key *k, const dnnl_memory_desc_t *wmd, nb_matmul_shape *s);
#endif

#endif
