/* Internal: the C text of the generated file's kernels (c_kernels.c), one per module family,
 * emitted only when the model uses them. Not part of the public API. */
#ifndef NB_EXPORT_C_KERNELS_H
#define NB_EXPORT_C_KERNELS_H

#include "nabla.h"

#include <stdio.h>

/* Kernels a generated file may need; a model sets the bits of those it uses. */
enum {
    K_NORMALIZE = 1 << 0,
    K_COPY = 1 << 1,
    K_LINEAR = 1 << 2,
    K_LINEAR_Q8 = 1 << 3,
    K_RELU = 1 << 4,
    K_TANH = 1 << 5,
    K_SIGMOID = 1 << 6,
    K_ADD = 1 << 7,
    K_MAX = 1 << 8,
    K_MUL = 1 << 9,
    K_SCALE = 1 << 10,
    K_REDUCE = 1 << 11,
    K_SOFTMAX = 1 << 12,
    K_LOG_SOFTMAX = 1 << 13,
    K_NEAREST = 1 << 14,
    K_CONV2D = 1 << 15,
    K_MAX_POOL = 1 << 16,
    K_AVG_POOL = 1 << 17,
    K_GLOBAL_AVG = 1 << 18,
    K_CHANNEL_AFFINE = 1 << 19,
    K_LINEAR_I8 = 1 << 20,
    K_LEAKY_RELU = 1 << 21,
    K_GELU = 1 << 22,
    K_LAYER_NORM = 1 << 23,
    K_WINDOW = K_CONV2D | K_MAX_POOL | K_AVG_POOL
};

/* Writes the types the kernels named by `kernels` take (before the data that uses them). */
void nb_c_kernels_write_types(FILE *f, unsigned kernels);
/* Writes the static functions named by `kernels` to f. P is the upper-case symbol prefix of
 * the math-function macros (P_EXPF, P_LOGF, P_TANHF, P_ERFF, P_SQRTF). */
void nb_c_kernels_write(FILE *f, unsigned kernels, const char *P);

#endif
