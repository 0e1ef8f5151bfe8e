/* Internal: the oneDNN matmul set-up that the fp32 backend (gemm_onednn.c) and the bf16
 * products (bf16_linear.c, bf16_cache.c) share: the memory descriptors of a row-major
 * product, its primitive descriptor with beta as a sum post-op and alpha as a run-time output
 * scale, and the primitive with its memory objects and arguments. */
#ifndef NB_ONEDNN_MATMUL_H
#define NB_ONEDNN_MATMUL_H

#ifdef NB_HAVE_ONEDNN
#include <dnnl.h>

/* C (M × N, f32, row stride ldc) = op(A) · op(B) [· alpha] [+ beta · C]: op(A) is M × K with
 * strides a_strides, op(B) K × N with strides b_strides (a transposed operand is a stride
 * swap), both of `type` (dnnl_f32 or dnnl_bf16). b_md, when given, is B's layout instead (a
 * blocked one); b_any asks oneDNN to choose it (format "any"). */
typedef struct nb_matmul_shape {
    int M, N, K;
    dnnl_dim_t a_strides[2], b_strides[2], ldc;
    dnnl_data_type_t type;
    const dnnl_memory_desc_t *b_md;
    int b_any;
    float beta;
    int scaled; /* alpha through DNNL_ARG_ATTR_OUTPUT_SCALES at run time */
} nb_matmul_shape;

typedef struct nb_matmul {
    dnnl_primitive_t prim; /* NULL: oneDNN declined the shape */
    dnnl_memory_t a, b, c, scale;
    dnnl_exec_arg_t args[4];
    int nargs;
} nb_matmul;

/* The primitive descriptor; the caller destroys it. */
dnnl_status_t nb_matmul_pd(dnnl_engine_t engine, const nb_matmul_shape *s,
                           dnnl_primitive_desc_t *pd);
/* The primitive and memory objects (data handles set per call; `alpha` is the buffer behind
 * the output scale when scaled, and must not move). *impl, when asked, receives the
 * implementation's name (oneDNN's static string). On failure m is left cleared. */
dnnl_status_t nb_matmul_make(dnnl_engine_t engine, const nb_matmul_shape *s, float *alpha,
                             nb_matmul *m, const char **impl);
void nb_matmul_clear(nb_matmul *m);
#endif

#endif
