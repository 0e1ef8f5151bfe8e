/* Internal: bfloat16 numbers and the bf16 path of Linear's matrix products (src/backend/bf16.c).
 *
 * bf16 is float32 with the low 16 bits of the significand dropped: 1 sign bit, the same 8
 * exponent bits (so the same range, 1e−38 … 3e38), 7 stored significand bits + the implicit
 * one. Rounding to nearest even gives a relative error of at most u = 2^−8 ≈ 3.9e−3. */
#ifndef NB_BF16_H
#define NB_BF16_H

#include "backend/linear.h"

#include <stdint.h>
#include <string.h>

typedef uint16_t nb_bf16;

/* float32 → bf16, round to nearest, ties to even, in the bits: adding 0x7fff plus the lowest
 * kept bit carries into the kept half exactly when the dropped half is above one half ulp, or
 * equal to it and the kept half is odd. Subnormals round the same way (no flush to zero);
 * ±inf stay inf; a value that rounds past the largest finite bf16 becomes inf, as IEEE
 * rounding does; NaN stays NaN (quieted, sign kept), since rounding could carry a NaN whose
 * payload lies in the dropped bits into inf. */
static inline nb_bf16 nb_bf16_from_float(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (nb_bf16)((u >> 16) | 0x0040u);
    return (nb_bf16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* bf16 → float32 is exact: the bits move to the top half. */
static inline float nb_bf16_to_float(nb_bf16 h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* dst[i] = nb_bf16_from_float(src[i]) for i < n, bit for bit, vectorised where the CPU can. */
void nb_bf16_convert(const float *src, nb_bf16 *dst, size_t n);

/* Whether a CPU feature this path needs is present: a statement of what is missing, or NULL.
 * Honours NABLA_DISABLE_BF16. Static string. */
const char *nb_bf16_missing(void);
/* The bf16 hardware found, e.g. "AVX512-BF16" (after nb_bf16_missing). Static string. */
const char *nb_bf16_hardware(void);
/* Whether the bf16 path runs emulated: the CPU has no bf16 instructions and
 * NABLA_BF16_EMULATE=1 asked for fp32 products of the bf16-rounded operands (for tests). */
int nb_bf16_emulated(void);

/* The rest is bf16_linear.c: Linear's products with bf16 operands, which nb_linear_forward
 * and nb_linear_backward (backend/linear.h) call in NB_PRECISION_BF16, with the same
 * arguments. They return 0 when they did not run, having written nothing, and the fp32
 * products must run instead. */
int nb_bf16_linear_forward(nb_gemm *ctx, const nb_linear_shape *s, const float *X,
                           const nb_weights *W, const float *bias, float *Y, float *R);
int nb_bf16_linear_backward(nb_gemm *ctx, const nb_linear_shape *s, const float *X,
                            const nb_weights *W, const float *dY, float beta_x, float *dX,
                            float beta_w, float *dW);
void nb_bf16_release(nb_gemm *ctx, const void *layer);
/* As nb_linear_forget, nb_linear_bf16_start and nb_linear_kernels for bf16. */
void nb_bf16_forget(nb_gemm *ctx);
nb_status nb_bf16_start(nb_gemm *ctx, nb_error *err);
char *nb_bf16_kernels(nb_gemm *ctx, char *buf, size_t size);

#endif
