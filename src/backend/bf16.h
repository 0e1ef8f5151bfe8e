/* Internal: bfloat16 numbers and the bf16 path of Linear's matrix products (src/backend/bf16.c).
 *
 * bf16 is float32 with the low 16 bits of the significand dropped: 1 sign bit, the same 8
 * exponent bits (so the same range, 1e−38 … 3e38), 7 stored significand bits + the implicit
 * one. Rounding to nearest even gives a relative error of at most u = 2^−8 ≈ 3.9e−3. */
#ifndef NB_BF16_H
#define NB_BF16_H

#include "core/graph.h"

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

/* The rest is bf16_linear.c. */

/* The graph's bf16 state: oneDNN engine, per-thread streams and primitive caches, the bf16
 * shadows of the weights and bf16 copies of Linear inputs and output gradients. */
typedef struct nb_bf16_state nb_bf16_state;
void nb_bf16_state_free(nb_bf16_state *st);

/* Called by nb_graph_prepare in bf16 mode: sizes the bf16 buffers for `batch` samples. */
nb_status nb_bf16_prepare(nb_graph *g, int64_t batch, nb_error *err);

/* Linear's forward and its two backward products with bf16 operands (op_linear.c calls them
 * in bf16 mode). Return 0 when they did not run and the fp32 path must (never after writing
 * anything). */
int nb_bf16_linear_forward(nb_graph *g, nb_node *n, int64_t N);
int nb_bf16_linear_backward(nb_graph *g, nb_node *n, int64_t N);

#endif
