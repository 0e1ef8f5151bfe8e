/* Internal: what the safetensors reader and writer share (see safetensors_read.c for the
 * format). Not part of the public API. */
#ifndef NB_SAFETENSORS_H
#define NB_SAFETENSORS_H

#include "nabla.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define HEADER_LIMIT 100000000u /* bytes; the reference implementation's MAX_HEADER_SIZE */
#define NAME_LIMIT 256          /* bytes in a tensor name; real checkpoints stay below 128 */
#define DATA_ALIGN 64           /* each tensor's floats start on a cache line */
#define EXACT_LIMIT 9007199254740992.0 /* 2^53: larger JSON numbers are inexact as doubles */
/* JSON values and keys in a header. cJSON spends about 80 bytes on each, so a 100 MB header of
 * "0,0,0,..." would cost 4 GB and many seconds; this caps it near 160 MB. A tensor entry
 * takes about 14 tokens, so the cap still allows some 140,000 tensors per file. */
#define TOKEN_LIMIT 2000000
#define META_KEY "__metadata__"

/* A name made safe for a message: control bytes shown as '?', cut (at a UTF-8 boundary)
 * after 60 bytes. */
typedef struct shown {
    char s[72];
} shown;

typedef struct name_ref {
    const char *name;
    int index;
} name_ref;

/* A dtype nabla reads: its name in the header, bytes per element, and the conversion of n
 * little-endian elements at raw to float32 (safetensors_dtype.c). */
typedef struct st_dtype {
    const char *name;
    int size;
    void (*to_f32)(const unsigned char *raw, size_t n, float *out);
} st_dtype;

#define ST_DTYPE_NAMES "F32, F16, BF16, F64 or I64"

/* The dtype named `name`, or NULL. */
const st_dtype *st_dtype_find(const char *name);

/* The little-endian double, or int64, at raw. */
double st_f64_at(const unsigned char *raw);
int64_t st_i64_at(const unsigned char *raw);

int st_host_is_little(void);

void st_swap_floats(void *p, size_t n);

uint64_t st_load_le64(const unsigned char b[8]);

void st_store_le64(unsigned char b[8], uint64_t v);

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. Rejects overlong
 * forms, surrogates (U+D800..U+DFFF) and code points above U+10FFFF (RFC 3629). */
size_t st_utf8_seq(const unsigned char *s, size_t n);

int st_utf8_valid(const char *s);

shown st_show(const char *name);

void st_dims_str(const int64_t *dims, int ndim, char *buf, size_t size);

/* What a JSON value is, for "expected X, found Y" messages. */
const char *st_json_kind(const cJSON *item, char *buf, size_t size);

/* An exact integer in [0, 2^53) — the only numbers a safetensors header holds. */
int st_json_uint(const cJSON *item, uint64_t *out);

/* qsort order of name_refs: by name, then index. */
int st_name_ref_cmp(const void *pa, const void *pb);

/* Sorts refs by name; returns the position of the first of two equal names, or -1. */
int st_sort_find_duplicate(name_ref *refs, int n);

/* ---- headers (safetensors_header.c) ---- */

/* The parsed header entry of one tensor. The name points into the cJSON tree. */
typedef struct st_entry {
    const char *name;
    int key;       /* position among the header's keys (1-based), for messages */
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    int64_t elems;
    uint64_t begin, end;
    const st_dtype *dtype;
} st_entry;

/* Checks the raw header bytes h[0..n) for what cJSON would let through: malformed UTF-8, raw
 * control bytes, \u0000, numbers that are not non-negative integers, more than TOKEN_LIMIT
 * tokens. */
nb_status st_scan_header(const char *path, const unsigned char *h, size_t n, nb_error *err);
/* Validates one tensor entry (header key #key) against the data buffer's size into *e. */
nb_status st_parse_entry(const char *path, const cJSON *item, int key, uint64_t data_size,
                         st_entry *e, nb_error *err);
/* Sorts es by data offset and checks that they cover the data buffer exactly. */
nb_status st_check_layout(const char *path, st_entry *es, int n, uint64_t data_start,
                          uint64_t data_size, nb_error *err);

#endif
