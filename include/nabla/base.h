/*
 * nabla/base.h — version, limits, status codes and messages, random numbers.
 * The lowest layer: every other header includes it.
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_BASE_H
#define NABLA_BASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_VERSION "0.1.0"
#define NB_MAX_DIMS 4
#define NB_NAME_MAX 64

/* ------------------------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------------------------- */

typedef enum nb_status {
    NB_OK = 0,
    NB_ENOMEM,   /* an allocation failed */
    NB_EIO,      /* a file could not be opened, read or written */
    NB_EFORMAT,  /* a file or text is malformed */
    NB_ESHAPE,   /* tensor shapes do not fit together */
    NB_EINVAL,   /* an argument is out of its domain */
    NB_ENOGRAD,  /* a gradient was asked of a module that has none */
    NB_ENUMERIC, /* a value became NaN or infinite */
    NB_ENOTSUP,  /* the feature is not built in or not supported by this machine */
    NB_EINTR,    /* interrupted on request */
    NB_EDIST     /* the ranks of an MPI job disagree: their replicas of the weights differ */
} nb_status;

/* A status together with a human-readable message naming the file, line or node at fault. */
typedef struct nb_error {
    nb_status code;
    char msg[512];
} nb_error;

/* Static string such as "NB_ESHAPE". */
const char *nb_status_name(nb_status status);

/* Records a formatted message in err (may be NULL) and returns code. */
nb_status nb_error_set(nb_error *err, nb_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Library version and the matrix-product backends compiled in, e.g.
 * "nabla 0.1.0 (gemm: onednn, openblas, portable; default onednn)".
 * Static string. */
const char *nb_version_string(void);

/* ------------------------------------------------------------------------------------------
 * Random numbers: xoshiro256** seeded through splitmix64. The state is a plain value, so a
 * checkpoint can store it and a run can own several independent streams.
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_rng {
    uint64_t s[4];
} nb_rng;

void nb_rng_seed(nb_rng *rng, uint64_t seed);
uint64_t nb_rng_next(nb_rng *rng);
/* Uniform in [0, 1), 24 random bits. */
float nb_rng_uniform(nb_rng *rng);
/* Standard normal (Box–Muller in double precision). */
float nb_rng_normal(nb_rng *rng);
/* Uniform integer in [0, n), unbiased (Lemire's method). n > 0. */
uint32_t nb_rng_below(nb_rng *rng, uint32_t n);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_BASE_H */
