/*
 * nabla/formats.h — safetensors reading and writing (src/formats/).
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_FORMATS_H
#define NABLA_FORMATS_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Safetensors files: an 8-byte little-endian header length, a JSON header, then the data.
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_tensor_ref {
    const char *name;
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    float *data;  /* F32, row-major */
} nb_tensor_ref;

/* Writing any file atomically (src/formats/atomic_file.c): the bytes go to a temporary file
 * PATH.tmp.XXXXXX beside PATH, which replaces PATH only when complete (fsync, rename, fsync of
 * the directory). On any failure the temporary file is removed and PATH left as it was; the
 * message names PATH, the step and the cause (e.g. "No space left on device").
 * nb_atomic_open: NULL with err set on failure; caller owns the handle, which
 * nb_atomic_commit or nb_atomic_abort (NULL: a no-op) frees. After a failed nb_atomic_write
 * the caller still calls nb_atomic_abort. */
typedef struct nb_atomic_file nb_atomic_file;
nb_atomic_file *nb_atomic_open(const char *path, nb_error *err);
nb_status nb_atomic_write(nb_atomic_file *af, const void *data, size_t n, nb_error *err);
nb_status nb_atomic_commit(nb_atomic_file *af, nb_error *err);
void nb_atomic_abort(nb_atomic_file *af);

/* Writes tensors and string metadata (meta_keys[i] → meta_values[i]) atomically (as above). */
nb_status nb_safetensors_write(const char *path, const nb_tensor_ref *tensors, int count,
                               const char *const *meta_keys, const char *const *meta_values,
                               int meta_count, nb_error *err);

typedef struct nb_safetensors nb_safetensors;
/* Reads and validates a whole file. Caller owns *out. Tensors stored as F16, BF16, F64 or I64
 * are converted to float32 (I64 only within ±2^24, where the conversion is exact; F64 beyond
 * float32's range is refused). */
nb_status nb_safetensors_read(const char *path, nb_safetensors **out, nb_error *err);
void nb_safetensors_free(nb_safetensors *st);
int nb_safetensors_count(const nb_safetensors *st);
/* The i-th tensor, or the one named `name` (NULL if absent). Owned by st. */
const nb_tensor_ref *nb_safetensors_at(const nb_safetensors *st, int i);
const nb_tensor_ref *nb_safetensors_find(const nb_safetensors *st, const char *name);
/* Metadata value or NULL. Owned by st. */
const char *nb_safetensors_meta(const nb_safetensors *st, const char *key);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_FORMATS_H */
