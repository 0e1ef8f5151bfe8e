/* Safetensors model files, following https://github.com/huggingface/safetensors:
 *
 *     bytes [0, 8)        N, the header size: unsigned 64-bit little-endian
 *     bytes [8, 8+N)      a UTF-8 JSON object, padded with spaces so that 8+N is a multiple
 *                         of 8 (the reference writer does this; readers must accept either)
 *                           {"__metadata__": {"format": "pt"},
 *                            "fc1.weight": {"dtype": "F32", "shape": [64, 784],
 *                                           "data_offsets": [0, 200704]}, ...}
 *     bytes [8+N, EOF)    the data buffer. Each tensor is row-major little-endian at
 *                         [begin, end) relative to the buffer's start; together the tensors
 *                         cover the buffer exactly, with no overlaps and no holes.
 *
 * Only F32 is supported. The reader treats the file as hostile: every size is checked against
 * the file's size (fstat) before anything is allocated, the header is checked byte by byte
 * (UTF-8, control bytes, \u0000, number syntax) before cJSON parses it, because cJSON lets
 * those through, and every message names the file and the field or byte at fault. */
#include "nabla.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_LIMIT 100000000u /* bytes; the reference implementation's MAX_HEADER_SIZE */
#define NAME_LIMIT 256          /* bytes in a tensor name; real checkpoints stay below 128 */
#define DATA_ALIGN 64           /* each tensor's floats start on a cache line */
#define EXACT_LIMIT 9007199254740992.0 /* 2^53: larger JSON numbers are inexact as doubles */
/* JSON values and keys in a header. cJSON spends about 80 bytes on each, so a 100 MB header of
 * "0,0,0,..." would cost 4 GB and many seconds; this caps it near 160 MB. A tensor entry
 * takes about 14 tokens, so the cap still allows some 140,000 tensors per file. */
#define TOKEN_LIMIT 2000000
#define META_KEY "__metadata__"

struct nb_safetensors {
    int count;
    nb_tensor_ref *tensors; /* in file order (ascending data offsets) */
    int *by_name;           /* indices into tensors, sorted by name, for find */
    int meta_count;
    const char **meta_keys; /* sorted by key */
    const char **meta_values;
    char *strings;          /* every name, key and value, NUL-terminated */
    float *data;            /* all tensors, each at a DATA_ALIGN boundary */
};

/* ---- small helpers --------------------------------------------------------------------- */

static int host_is_little(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static void swap_floats(void *p, size_t n)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        unsigned char t = b[0];
        b[0] = b[3], b[3] = t;
        t = b[1], b[1] = b[2], b[2] = t;
    }
}

static uint64_t load_le64(const unsigned char b[8])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static void store_le64(unsigned char b[8], uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        b[i] = (unsigned char)(v & 0xff);
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0. Rejects overlong
 * forms, surrogates (U+D800..U+DFFF) and code points above U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static int utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0, len; i < n; i += len)
        if (!(len = utf8_seq(u + i, n - i)))
            return 0;
    return 1;
}

/* A name made safe for a message: control bytes shown as '?', cut (at a UTF-8 boundary)
 * after 60 bytes. */
typedef struct shown {
    char s[72];
} shown;

static shown show(const char *name)
{
    shown out;
    size_t n = 0;
    for (; name[n] && n < 60; n++) {
        unsigned char c = (unsigned char)name[n];
        out.s[n] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
    }
    if (name[n]) {
        while (n > 0 && ((unsigned char)name[n] & 0xC0) == 0x80)
            n--; /* do not end inside a multi-byte character */
        memcpy(out.s + n, "...", 3);
        n += 3;
    }
    out.s[n] = '\0';
    return out;
}

static void dims_str(const int64_t *dims, int ndim, char *buf, size_t size)
{
    size_t at = 0;
    buf[at++] = '[';
    for (int i = 0; i < ndim && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (at < size - 1) {
        buf[at++] = ']';
        buf[at] = '\0';
    } else
        buf[size - 1] = '\0';
}

/* What a JSON value is, for "expected X, found Y" messages. */
static const char *json_kind(const cJSON *item, char *buf, size_t size)
{
    if (cJSON_IsNumber(item))
        snprintf(buf, size, "%.17g", item->valuedouble);
    else if (cJSON_IsString(item))
        snprintf(buf, size, "the string \"%s\"", show(item->valuestring).s);
    else if (cJSON_IsArray(item))
        snprintf(buf, size, "an array");
    else if (cJSON_IsObject(item))
        snprintf(buf, size, "an object");
    else if (cJSON_IsBool(item))
        snprintf(buf, size, "%s", cJSON_IsTrue(item) ? "true" : "false");
    else
        snprintf(buf, size, "null");
    return buf;
}

/* An exact integer in [0, 2^53) — the only numbers a safetensors header holds. */
static int json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double v = item->valuedouble;
    if (!(v >= 0) || signbit(v) || v >= EXACT_LIMIT || v != floor(v))
        return 0;
    *out = (uint64_t)v;
    return 1;
}

typedef struct name_ref {
    const char *name;
    int index;
} name_ref;

static int name_ref_cmp(const void *pa, const void *pb)
{
    const name_ref *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);
    return c ? c : (a->index > b->index) - (a->index < b->index);
}

/* Sorts refs by name; returns the position of the first of two equal names, or -1. */
static int sort_find_duplicate(name_ref *refs, int n)
{
    if (n > 1)
        qsort(refs, (size_t)n, sizeof *refs, name_ref_cmp);
    for (int i = 1; i < n; i++)
        if (strcmp(refs[i - 1].name, refs[i].name) == 0)
            return i - 1;
    return -1;
}

/* ---- reading --------------------------------------------------------------------------- */

/* The parsed header entry of one tensor. The name points into the cJSON tree. */
typedef struct entry {
    const char *name;
    int key;       /* position among the header's keys (1-based), for messages */
    int ndim;
    int64_t dims[NB_MAX_DIMS];
    int64_t elems;
    uint64_t begin, end;
} entry;

static int entry_offset_cmp(const void *pa, const void *pb)
{
    const entry *a = pa, *b = pb;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return (a->key > b->key) - (a->key < b->key);
}

/* Checks what cJSON would let through: UTF-8 well-formedness, raw control bytes, \u0000
 * (cJSON would silently cut the string there, so "a\u0000b" and "a" would collide), and
 * number syntax (cJSON takes whatever strtod takes: "01", "1.", "1e3"). A safetensors header
 * holds only non-negative integers, so fractions and exponents are rejected here; a minus
 * sign is left to the field checks, which can name the field. Counts tokens against
 * TOKEN_LIMIT before cJSON allocates anything. */
static nb_status scan_header(const char *path, const unsigned char *h, size_t n, nb_error *err)
{
    int in_string = 0;
    size_t i = 0, tokens = 0;
    while (i < n) {
        unsigned char c = h[i], lower = c | 0x20;
        /* A token starts at a string's quote, a number, a bracket or a literal's first
         * letter (true, false, null). */
        if (!in_string &&
            (c == '"' || c == '-' || (c >= '0' && c <= '9') || c == '{' || c == '[' ||
             (lower >= 'a' && lower <= 'z' && (i == 0 || !((h[i - 1] | 0x20) >= 'a' &&
                                                          (h[i - 1] | 0x20) <= 'z')))) &&
            ++tokens > TOKEN_LIMIT)
            return nb_error_set(err, NB_EFORMAT,
                                "%s: header byte %zu (file offset %zu): more than %d JSON "
                                "tokens; nabla's limit (about 140000 tensors) keeps hostile "
                                "headers from exhausting memory",
                                path, i, i + 8, TOKEN_LIMIT);
        if (c >= 0x80) {
            size_t len = utf8_seq(h + i, n - i);
            if (!len)
                return nb_error_set(err, NB_EFORMAT,
                                    "%s: header byte %zu (file offset %zu): invalid UTF-8 "
                                    "(byte 0x%02x); the header must be UTF-8 JSON",
                                    path, i, i + 8, c);
            i += len;
        } else if (in_string) {
            if (c == '"')
                in_string = 0;
            else if (c == '\\') {
                if (i + 5 < n && h[i + 1] == 'u' && memcmp(h + i + 2, "0000", 4) == 0)
                    return nb_error_set(err, NB_EFORMAT,
                                        "%s: header byte %zu (file offset %zu): \\u0000 in a "
                                        "string; names and metadata cannot contain NUL",
                                        path, i, i + 8);
                i++; /* skip the escaped character */
            } else if (c < 0x20)
                return nb_error_set(err, NB_EFORMAT,
                                    "%s: header byte %zu (file offset %zu): raw control byte "
                                    "0x%02x in a string; JSON requires it escaped",
                                    path, i, i + 8, c);
            i++;
        } else if (c == '"') {
            in_string = 1;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i, p = i;
            while (i < n && h[i] && strchr("0123456789+-.eE", h[i]))
                i++;
            if (p < i && h[p] == '-')
                p++;
            const char *why = NULL;
            if (p == i || h[p] < '0' || h[p] > '9')
                why = "is not a JSON number";
            else if (h[p] == '0' && p + 1 < i && h[p + 1] >= '0' && h[p + 1] <= '9')
                why = "has a leading zero, which JSON forbids";
            else {
                while (p < i && h[p] >= '0' && h[p] <= '9')
                    p++;
                if (p < i)
                    why = "is not an integer; a safetensors header holds only integers "
                          "(shape, data_offsets)";
            }
            if (why) {
                int shown_len = (int)(i - start < 24 ? i - start : 24);
                return nb_error_set(err, NB_EFORMAT,
                                    "%s: header byte %zu (file offset %zu): number '%.*s' %s",
                                    path, start, start + 8, shown_len,
                                    (const char *)h + start, why);
            }
        } else if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return nb_error_set(err, NB_EFORMAT,
                                "%s: header byte %zu (file offset %zu): control byte 0x%02x "
                                "outside a string; expected JSON",
                                path, i, i + 8, c);
        } else
            i++;
    }
    return NB_OK;
}

/* An NB_EFORMAT error "path: tensor 'name': <fmt>". */
static nb_status bad_tensor(nb_error *err, const char *path, const char *name, const char *fmt,
                            ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static nb_status bad_tensor(nb_error *err, const char *path, const char *name, const char *fmt,
                            ...)
{
    char rest[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof rest, fmt, ap);
    va_end(ap);
    return nb_error_set(err, NB_EFORMAT, "%s: tensor '%s': %s", path, show(name).s, rest);
}

/* Validates one tensor entry: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}. */
static nb_status parse_entry(const char *path, const cJSON *item, int key, uint64_t data_size,
                             entry *e, nb_error *err)
{
    const char *name = item->string;
    char kind[96], dims[128];
    size_t len = strlen(name);
    if (len == 0)
        return nb_error_set(err, NB_EFORMAT, "%s: header key #%d: empty tensor name", path,
                            key);
    if (len > NAME_LIMIT)
        return bad_tensor(err, path, name, "name is %zu bytes, longer than the %d-byte limit",
                          len, NAME_LIMIT);
    if (!cJSON_IsObject(item))
        return bad_tensor(err, path, name,
                          "entry is %s; expected an object with dtype, shape and data_offsets",
                          json_kind(item, kind, sizeof kind));

    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *f = item->child; f; f = f->next) {
        const cJSON **slot = strcmp(f->string, "dtype") == 0          ? &dtype
                             : strcmp(f->string, "shape") == 0        ? &shape
                             : strcmp(f->string, "data_offsets") == 0 ? &offsets
                                                                       : NULL;
        if (!slot)
            return bad_tensor(err, path, name,
                              "unexpected field '%s'; expected only dtype, shape and "
                              "data_offsets",
                              show(f->string).s);
        if (*slot)
            return bad_tensor(err, path, name, "duplicate field '%s'", f->string);
        *slot = f;
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offsets ? "data_offsets" : NULL;
    if (missing)
        return bad_tensor(err, path, name, "missing field '%s'", missing);

    if (!cJSON_IsString(dtype))
        return bad_tensor(err, path, name, "dtype is %s; expected the string \"F32\"",
                          json_kind(dtype, kind, sizeof kind));
    if (strcmp(dtype->valuestring, "F32") != 0)
        return bad_tensor(err, path, name,
                          "dtype: expected F32, found %s (nabla reads only float32 tensors)",
                          show(dtype->valuestring).s);

    if (!cJSON_IsArray(shape))
        return bad_tensor(err, path, name,
                          "shape is %s; expected an array of non-negative integers",
                          json_kind(shape, kind, sizeof kind));
    e->ndim = 0;
    memset(e->dims, 0, sizeof e->dims); /* copied whole into nb_tensor_ref.dims */
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (e->ndim == NB_MAX_DIMS)
            return bad_tensor(err, path, name,
                              "shape has more than %d dims; nabla supports at most %d",
                              NB_MAX_DIMS, NB_MAX_DIMS);
        if (!json_uint(d, &v))
            return bad_tensor(err, path, name,
                              "shape[%d] is %s; expected a non-negative integer", e->ndim,
                              json_kind(d, kind, sizeof kind));
        e->dims[e->ndim++] = (int64_t)v;
    }
    dims_str(e->dims, e->ndim, dims, sizeof dims);
    /* Elements, kept below INT64_MAX / 4 so that the byte count fits too. A zero dim makes
     * the tensor empty whatever the others are. */
    e->elems = 1;
    for (int i = 0; i < e->ndim; i++)
        if (e->dims[i] == 0)
            e->elems = 0;
    for (int i = 0; i < e->ndim && e->elems; i++) {
        if (e->elems > INT64_MAX / 4 / e->dims[i])
            return bad_tensor(err, path, name, "shape %s: element count overflows 64 bits",
                              dims);
        e->elems *= e->dims[i];
    }

    const cJSON *b = cJSON_IsArray(offsets) ? offsets->child : NULL;
    const cJSON *end = b ? b->next : NULL;
    if (!b || !end || end->next || !json_uint(b, &e->begin) || !json_uint(end, &e->end))
        return bad_tensor(err, path, name,
                          "data_offsets is %s; expected two non-negative integers [begin, end]",
                          cJSON_IsArray(offsets) ? "not a pair of integers"
                                                 : json_kind(offsets, kind, sizeof kind));
    unsigned long long lo = e->begin, hi = e->end;
    if (lo > hi)
        return bad_tensor(err, path, name, "data_offsets [%llu, %llu]: begin is after end", lo,
                          hi);
    if (hi - lo != 4 * (uint64_t)e->elems)
        return bad_tensor(err, path, name,
                          "data_offsets [%llu, %llu] hold %llu bytes, shape %s needs %llu", lo,
                          hi, hi - lo, dims, 4 * (unsigned long long)e->elems);
    if (hi > data_size)
        return bad_tensor(err, path, name,
                          "data_offsets [%llu, %llu] extend past the end of the %llu-byte data "
                          "buffer",
                          lo, hi, (unsigned long long)data_size);
    e->name = name;
    e->key = key;
    return NB_OK;
}

/* The spec requires the tensors to cover the data buffer exactly: sorted by offset, each
 * begins where the previous one ended, and the last ends at the buffer's end. */
static nb_status check_layout(const char *path, entry *es, int n, uint64_t data_start,
                              uint64_t data_size, nb_error *err)
{
    if (n > 1)
        qsort(es, (size_t)n, sizeof *es, entry_offset_cmp);
    unsigned long long pos = 0, at = data_start;
    for (int i = 0; i < n; i++) {
        unsigned long long lo = es[i].begin, hi = es[i].end;
        if (lo < pos)
            return bad_tensor(err, path, es[i].name,
                              "data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]", lo,
                              hi, show(es[i - 1].name).s, (unsigned long long)es[i - 1].begin,
                              (unsigned long long)es[i - 1].end);
        if (lo > pos)
            return nb_error_set(err, NB_EFORMAT,
                                "%s: data bytes [%llu, %llu) (file offsets [%llu, %llu)) "
                                "belong to no tensor (a hole before tensor '%s'); the "
                                "tensors must cover the data buffer",
                                path, pos, lo, at + pos, at + lo, show(es[i].name).s);
        pos = hi;
    }
    if (pos != data_size)
        return nb_error_set(err, NB_EFORMAT,
                            "%s: the data buffer has %llu bytes but the tensors cover only "
                            "%llu (%llu unused bytes at the end)",
                            path, (unsigned long long)data_size, pos,
                            (unsigned long long)data_size - pos);
    return NB_OK;
}

/* Builds *out from the validated entries (in file order) and metadata, then reads and checks
 * the data, which starts at the stream's current position. */
static nb_status load(const char *path, FILE *f, uint64_t data_start, const entry *es, int n,
                      const name_ref *meta, const cJSON *const *meta_items, int meta_n,
                      nb_safetensors **out, nb_error *err)
{
    nb_safetensors *st = calloc(1, sizeof *st);
    if (!st)
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    size_t text = 0, data = 0;
    for (int i = 0; i < n; i++) {
        text += strlen(es[i].name) + 1;
        data += ((size_t)es[i].elems * 4 + DATA_ALIGN - 1) / DATA_ALIGN * DATA_ALIGN;
    }
    for (int i = 0; i < meta_n; i++)
        text += strlen(meta[i].name) + strlen(meta_items[meta[i].index]->valuestring) + 2;
    st->count = n;
    st->meta_count = meta_n;
    st->tensors = calloc((size_t)n + 1, sizeof *st->tensors);
    st->by_name = calloc((size_t)n + 1, sizeof *st->by_name);
    st->meta_keys = calloc((size_t)meta_n + 1, sizeof *st->meta_keys);
    st->meta_values = calloc((size_t)meta_n + 1, sizeof *st->meta_values);
    st->strings = malloc(text + 1);
    st->data = aligned_alloc(DATA_ALIGN, data ? data : DATA_ALIGN);
    if (!st->tensors || !st->by_name || !st->meta_keys || !st->meta_values || !st->strings ||
        !st->data) {
        nb_safetensors_free(st);
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory for %zu bytes of tensors", path,
                            data);
    }

    char *s = st->strings;
    for (int i = 0; i < meta_n; i++) { /* meta is sorted by key */
        const char *v = meta_items[meta[i].index]->valuestring;
        size_t kl = strlen(meta[i].name) + 1, vl = strlen(v) + 1;
        st->meta_keys[i] = memcpy(s, meta[i].name, kl);
        st->meta_values[i] = memcpy(s + kl, v, vl);
        s += kl + vl;
    }
    float *p = st->data;
    name_ref *refs = malloc(((size_t)n + 1) * sizeof *refs);
    if (!refs) {
        nb_safetensors_free(st);
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++) {
        nb_tensor_ref *t = &st->tensors[i];
        size_t len = strlen(es[i].name) + 1;
        t->name = memcpy(s, es[i].name, len);
        s += len;
        t->ndim = es[i].ndim;
        memcpy(t->dims, es[i].dims, sizeof t->dims);
        t->data = p;
        p += ((size_t)es[i].elems * 4 + DATA_ALIGN - 1) / DATA_ALIGN * DATA_ALIGN / 4;
        refs[i] = (name_ref){t->name, i};
    }
    qsort(refs, (size_t)n, sizeof *refs, name_ref_cmp);
    for (int i = 0; i < n; i++)
        st->by_name[i] = refs[i].index;
    free(refs);

    /* The tensors cover the buffer contiguously in this order, so one sequential pass reads
     * them all. */
    for (int i = 0; i < n; i++) {
        nb_tensor_ref *t = &st->tensors[i];
        size_t count = (size_t)es[i].elems;
        if (fread(t->data, 4, count, f) != count) {
            int e = errno, eof = feof(f);
            nb_safetensors_free(st);
            return nb_error_set(err, NB_EIO,
                                "%s: tensor '%s': reading %zu bytes at file offset %llu "
                                "failed: %s",
                                path, show(es[i].name).s, count * 4,
                                (unsigned long long)(data_start + es[i].begin),
                                eof ? "the file ended early (truncated while reading?)"
                                    : strerror(e));
        }
        if (!host_is_little())
            swap_floats(t->data, count);
        for (size_t k = 0; k < count; k++) {
            if (isfinite(t->data[k]))
                continue;
            /* Name the element by its flat and its multi-dimensional index. */
            int64_t idx[NB_MAX_DIMS], rest = (int64_t)k;
            char where[128];
            for (int d = t->ndim - 1; d >= 0; d--) {
                idx[d] = rest % t->dims[d];
                rest /= t->dims[d];
            }
            dims_str(idx, t->ndim, where, sizeof where);
            float v = t->data[k];
            nb_status code = nb_error_set(
                err, NB_ENUMERIC,
                "%s: tensor '%s': element %zu %s (file offset %llu) is %s; expected finite "
                "values",
                path, show(es[i].name).s, k, where,
                (unsigned long long)(data_start + es[i].begin + 4 * k),
                isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
            nb_safetensors_free(st);
            return code;
        }
    }
    *out = st;
    return NB_OK;
}

/* Validates the parsed header and loads the tensors. */
static nb_status read_header(const char *path, FILE *f, const cJSON *root, uint64_t data_start,
                             uint64_t data_size, nb_safetensors **out, nb_error *err)
{
    int n = 0, meta_n = 0, keys = 0;
    const cJSON *meta_obj = NULL;
    for (const cJSON *it = root->child; it; it = it->next, keys++) {
        if (strcmp(it->string, META_KEY) != 0)
            n++;
        else if (meta_obj)
            return nb_error_set(err, NB_EFORMAT,
                                "%s: header key #%d: duplicate '" META_KEY "'", path, keys + 1);
        else
            meta_obj = it;
    }

    char kind[96];
    if (meta_obj) {
        if (!cJSON_IsObject(meta_obj))
            return nb_error_set(err, NB_EFORMAT,
                                "%s: " META_KEY " is %s; expected an object of strings", path,
                                json_kind(meta_obj, kind, sizeof kind));
        for (const cJSON *m = meta_obj->child; m; m = m->next, meta_n++)
            if (!cJSON_IsString(m))
                return nb_error_set(err, NB_EFORMAT,
                                    "%s: " META_KEY " '%s' is %s; expected a string", path,
                                    show(m->string).s, json_kind(m, kind, sizeof kind));
    }

    entry *es = malloc(((size_t)n + 1) * sizeof *es);
    name_ref *refs = malloc(((size_t)n + 1) * sizeof *refs);
    name_ref *meta = malloc(((size_t)meta_n + 1) * sizeof *meta);
    const cJSON **meta_items = malloc(((size_t)meta_n + 1) * sizeof *meta_items);
    nb_status status = NB_OK;
    if (!es || !refs || !meta || !meta_items) {
        status = nb_error_set(err, NB_ENOMEM, "%s: out of memory for %d header entries", path,
                              n + meta_n);
        goto done;
    }

    int i = 0, key = 1;
    for (const cJSON *it = root->child; it; it = it->next, key++) {
        if (it == meta_obj)
            continue;
        if ((status = parse_entry(path, it, key, data_size, &es[i], err)))
            goto done;
        refs[i] = (name_ref){es[i].name, key};
        i++;
    }
    int dup = sort_find_duplicate(refs, n);
    if (dup >= 0) {
        status = nb_error_set(err, NB_EFORMAT,
                              "%s: duplicate tensor name '%s' (header keys #%d and #%d); "
                              "names must be unique",
                              path, show(refs[dup].name).s, refs[dup].index,
                              refs[dup + 1].index);
        goto done;
    }
    i = 0;
    if (meta_obj)
        for (const cJSON *m = meta_obj->child; m; m = m->next, i++) {
            meta[i] = (name_ref){m->string, i};
            meta_items[i] = m;
        }
    dup = sort_find_duplicate(meta, meta_n);
    if (dup >= 0) {
        status = nb_error_set(err, NB_EFORMAT, "%s: " META_KEY ": duplicate key '%s'", path,
                              show(meta[dup].name).s);
        goto done;
    }
    if ((status = check_layout(path, es, n, data_start, data_size, err)))
        goto done;
    status = load(path, f, data_start, es, n, meta, meta_items, meta_n, out, err);
done:
    free(es);
    free(refs);
    free(meta);
    free(meta_items);
    return status;
}

nb_status nb_safetensors_read(const char *path, nb_safetensors **out, nb_error *err)
{
    if (!path || !out)
        return nb_error_set(err, NB_EINVAL, "nb_safetensors_read: path and out are required");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nb_error_set(err, NB_EIO, "%s: cannot open: %s", path, strerror(errno));

    nb_status status = NB_OK;
    unsigned char *header = NULL;
    cJSON *root = NULL;
    struct stat sb;
    unsigned char size_field[8];
    if (fstat(fileno(f), &sb) != 0) {
        status = nb_error_set(err, NB_EIO, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        status = nb_error_set(err, NB_EIO, "%s: not a regular file", path);
        goto done;
    }
    uint64_t file_size = (uint64_t)sb.st_size;
    if (file_size < 8) {
        status = nb_error_set(err, NB_EFORMAT,
                              "%s: file is %llu bytes, shorter than the 8-byte header size "
                              "field",
                              path, (unsigned long long)file_size);
        goto done;
    }
    if (fread(size_field, 1, 8, f) != 8) {
        status = nb_error_set(err, NB_EIO, "%s: cannot read the header size (bytes 0-7): %s",
                              path, ferror(f) ? strerror(errno) : "the file ended early");
        goto done;
    }
    uint64_t n = load_le64(size_field);
    if (n == 0) {
        status = nb_error_set(err, NB_EFORMAT,
                              "%s: header size (bytes 0-7) is 0; expected a JSON object of at "
                              "least 2 bytes",
                              path);
        goto done;
    }
    if (n > HEADER_LIMIT) {
        /* a text file read as safetensors lands here: say what it probably is not */
        status = nb_error_set(err, NB_EFORMAT,
                              "%s: header size (bytes 0-7) is %llu, more than the %u-byte "
                              "limit: not a safetensors file (they start with a small "
                              "little-endian header length, then '{')",
                              path, (unsigned long long)n, HEADER_LIMIT);
        goto done;
    }
    if (n > file_size - 8) {
        status = nb_error_set(err, NB_EFORMAT,
                              "%s: header size (bytes 0-7) is %llu but only %llu bytes follow "
                              "in the file; expected the header to fit",
                              path, (unsigned long long)n, (unsigned long long)(file_size - 8));
        goto done;
    }
    header = malloc((size_t)n + 1);
    if (!header) {
        status = nb_error_set(err, NB_ENOMEM, "%s: out of memory for a %llu-byte header", path,
                              (unsigned long long)n);
        goto done;
    }
    if (fread(header, 1, (size_t)n, f) != (size_t)n) {
        status = nb_error_set(err, NB_EIO, "%s: cannot read the %llu-byte header: %s", path,
                              (unsigned long long)n,
                              ferror(f) ? strerror(errno) : "the file ended early");
        goto done;
    }
    header[n] = '\0';
    if ((status = scan_header(path, header, (size_t)n, err)))
        goto done;

    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts((const char *)header, (size_t)n, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - (const char *)header) : 0;
        status = nb_error_set(err, NB_EFORMAT,
                              "%s: header is not valid JSON (error at header byte %zu, file "
                              "offset %zu)",
                              path, at, at + 8);
        goto done;
    }
    /* After the object, only padding (the reference writes spaces; JSON allows any
     * whitespace). */
    for (const char *p = end; p < (const char *)header + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            size_t at = (size_t)(p - (const char *)header);
            status = nb_error_set(err, NB_EFORMAT,
                                  "%s: header byte %zu (file offset %zu): trailing data after "
                                  "the JSON object; expected only space padding",
                                  path, at, at + 8);
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        char kind[96];
        status = nb_error_set(err, NB_EFORMAT,
                              "%s: header is %s; expected a JSON object of tensors", path,
                              json_kind(root, kind, sizeof kind));
        goto done;
    }
    status = read_header(path, f, root, 8 + n, file_size - 8 - n, out, err);
done:
    cJSON_Delete(root);
    free(header);
    fclose(f); /* read-only: nothing to lose if closing fails */
    return status;
}

void nb_safetensors_free(nb_safetensors *st)
{
    if (!st)
        return;
    free(st->tensors);
    free(st->by_name);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->strings);
    free(st->data);
    free(st);
}

int nb_safetensors_count(const nb_safetensors *st) { return st ? st->count : 0; }

const nb_tensor_ref *nb_safetensors_at(const nb_safetensors *st, int i)
{
    return st && i >= 0 && i < st->count ? &st->tensors[i] : NULL;
}

const nb_tensor_ref *nb_safetensors_find(const nb_safetensors *st, const char *name)
{
    if (!st || !name)
        return NULL;
    int lo = 0, hi = st->count; /* binary search over the name-sorted index */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(st->tensors[st->by_name[mid]].name, name);
        if (c == 0)
            return &st->tensors[st->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *nb_safetensors_meta(const nb_safetensors *st, const char *key)
{
    if (!st || !key)
        return NULL;
    int lo = 0, hi = st->meta_count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(st->meta_keys[mid], key);
        if (c == 0)
            return st->meta_values[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- writing --------------------------------------------------------------------------- */

/* Checks the tensors and metadata so that the file written is one the reader accepts. */
static nb_status check_for_write(const char *path, const nb_tensor_ref *ts, int count,
                                 const char *const *keys, const char *const *values,
                                 int meta_count, nb_error *err)
{
    uint64_t total = 0;
    for (int i = 0; i < count; i++) {
        const nb_tensor_ref *t = &ts[i];
        if (!t->name || !t->name[0] || !utf8_valid(t->name))
            return nb_error_set(err, NB_EINVAL,
                                "%s: tensor #%d: name is %s; expected non-empty UTF-8", path, i,
                                !t->name ? "NULL" : !t->name[0] ? "empty" : "not UTF-8");
        shown name = show(t->name);
        if (strlen(t->name) > NAME_LIMIT || strcmp(t->name, META_KEY) == 0)
            return nb_error_set(err, NB_EINVAL,
                                "%s: tensor '%s': name is %s", path, name.s,
                                strlen(t->name) > NAME_LIMIT ? "longer than the byte limit"
                                                             : "reserved for metadata");
        if (t->ndim < 0 || t->ndim > NB_MAX_DIMS)
            return nb_error_set(err, NB_EINVAL, "%s: tensor '%s': ndim %d; expected 0..%d",
                                path, name.s, t->ndim, NB_MAX_DIMS);
        int64_t elems = 1;
        for (int d = 0; d < t->ndim; d++)
            if (t->dims[d] < 0 || (double)t->dims[d] >= EXACT_LIMIT)
                return nb_error_set(err, NB_EINVAL,
                                    "%s: tensor '%s': dims[%d] = %lld; expected 0..2^53", path,
                                    name.s, d, (long long)t->dims[d]);
            else if (t->dims[d] == 0)
                elems = 0;
        for (int d = 0; d < t->ndim && elems; d++) {
            if (elems > INT64_MAX / 4 / t->dims[d])
                return nb_error_set(err, NB_EINVAL,
                                    "%s: tensor '%s': element count overflows", path, name.s);
            elems *= t->dims[d];
        }
        total += 4 * (uint64_t)elems;
        if ((double)total >= EXACT_LIMIT)
            return nb_error_set(err, NB_EINVAL, "%s: tensors exceed 2^53 bytes", path);
        if (elems && !t->data)
            return nb_error_set(err, NB_EINVAL, "%s: tensor '%s': data is NULL", path, name.s);
        for (int64_t k = 0; k < elems; k++)
            if (!isfinite(t->data[k]))
                return nb_error_set(err, NB_ENUMERIC,
                                    "%s: tensor '%s': element %lld is %s; only finite values "
                                    "are written",
                                    path, name.s, (long long)k,
                                    isnan(t->data[k]) ? "NaN" : "infinite");
    }
    /* The header's JSON tokens, as scan_header counts them: {, and per tensor its name,
     * {, "dtype", "F32", "shape", [, dims, "data_offsets", [, two offsets. */
    uint64_t tokens = 1 + (meta_count ? 2 + 2 * (uint64_t)meta_count : 0);
    for (int i = 0; i < count; i++)
        tokens += 10 + (uint64_t)ts[i].ndim;
    if (tokens > TOKEN_LIMIT)
        return nb_error_set(err, NB_EINVAL,
                            "%s: %d tensors and %d metadata entries make more than %d header "
                            "tokens, which nabla's reader refuses",
                            path, count, meta_count, TOKEN_LIMIT);
    for (int i = 0; i < meta_count; i++)
        if (!keys[i] || !values[i] || !utf8_valid(keys[i]) || !utf8_valid(values[i]))
            return nb_error_set(err, NB_EINVAL,
                                "%s: metadata #%d: key and value must be non-NULL UTF-8", path,
                                i);

    int most = count > meta_count ? count : meta_count;
    name_ref *refs = malloc(((size_t)most + 1) * sizeof *refs);
    if (!refs)
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < count; i++)
        refs[i] = (name_ref){ts[i].name, i};
    int dup = sort_find_duplicate(refs, count);
    nb_status status = NB_OK;
    if (dup >= 0)
        status = nb_error_set(err, NB_EINVAL, "%s: duplicate tensor name '%s' (#%d and #%d)",
                              path, show(refs[dup].name).s, refs[dup].index,
                              refs[dup + 1].index);
    else {
        for (int i = 0; i < meta_count; i++)
            refs[i] = (name_ref){keys[i], i};
        dup = sort_find_duplicate(refs, meta_count);
        if (dup >= 0)
            status = nb_error_set(err, NB_EINVAL, "%s: duplicate metadata key '%s'", path,
                                  show(refs[dup].name).s);
    }
    free(refs);
    return status;
}

static int add_item(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return 0;
    if (!(key ? cJSON_AddItemToObject(obj, key, item) : cJSON_AddItemToArray(obj, item))) {
        cJSON_Delete(item);
        return 0;
    }
    return 1;
}

/* Integers go in as raw text: cJSON prints numbers through a double, in exponent form past
 * 15 digits, which strict readers reject. */
static int add_uint(cJSON *arr, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return add_item(arr, NULL, cJSON_CreateRaw(buf));
}

/* The header JSON, padded with spaces to a multiple of 8 bytes. Caller frees *out. */
static nb_status build_header(const char *path, const nb_tensor_ref *ts, int count,
                              const char *const *keys, const char *const *values,
                              int meta_count, char **out, size_t *out_len, nb_error *err)
{
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && meta_count > 0) {
        cJSON *meta = cJSON_CreateObject();
        ok = add_item(root, META_KEY, meta);
        for (int i = 0; ok && i < meta_count; i++)
            ok = add_item(meta, keys[i], cJSON_CreateString(values[i]));
    }
    uint64_t offset = 0;
    for (int i = 0; ok && i < count; i++) {
        const nb_tensor_ref *t = &ts[i];
        cJSON *entry = cJSON_CreateObject(), *shape = NULL, *offsets = NULL;
        /* Each item is attached as soon as it exists, so the tree owns it on any failure. */
        ok = add_item(root, t->name, entry) &&
             add_item(entry, "dtype", cJSON_CreateString("F32")) &&
             add_item(entry, "shape", shape = cJSON_CreateArray()) &&
             add_item(entry, "data_offsets", offsets = cJSON_CreateArray());
        uint64_t elems = 1;
        for (int d = 0; ok && d < t->ndim; d++) {
            elems *= (uint64_t)t->dims[d];
            ok = add_uint(shape, (uint64_t)t->dims[d]);
        }
        ok = ok && add_uint(offsets, offset) && add_uint(offsets, offset + 4 * elems);
        offset += 4 * elems;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json)
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory building the header", path);
    size_t len = strlen(json), padded = (len + 7) / 8 * 8;
    if (padded > HEADER_LIMIT) {
        cJSON_free(json);
        return nb_error_set(err, NB_EINVAL,
                            "%s: the header would be %zu bytes, more than the 100000000-byte "
                            "limit readers accept",
                            path, padded);
    }
    *out = malloc(padded);
    if (!*out) {
        cJSON_free(json);
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    }
    memcpy(*out, json, len);
    memset(*out + len, ' ', padded - len);
    *out_len = padded;
    cJSON_free(json);
    return NB_OK;
}

static int write_floats(FILE *f, const float *x, size_t n)
{
    if (host_is_little())
        return fwrite(x, sizeof *x, n, f) == n;
    float buf[1024];
    for (size_t i = 0; i < n; i += 1024) {
        size_t m = n - i < 1024 ? n - i : 1024;
        memcpy(buf, x + i, m * sizeof *x);
        swap_floats(buf, m);
        if (fwrite(buf, sizeof *buf, m, f) != m)
            return 0;
    }
    return 1;
}

/* After rename, the new directory entry is durable only once the directory is synced. */
static nb_status sync_dir(const char *path, nb_error *err)
{
    const char *slash = strrchr(path, '/');
    size_t len = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (!dir)
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    if (!slash)
        dir[0] = '.';
    else
        memcpy(dir, path, len);
    dir[len] = '\0';
    nb_status status = NB_OK;
    int fd = open(dir, O_RDONLY);
    /* EINVAL: the file system cannot sync directories, so there is nothing more to do. */
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL))
        status = nb_error_set(err, NB_EIO,
                              "%s: written, but syncing its directory %s failed: %s", path, dir,
                              strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return status;
}

nb_status nb_safetensors_write(const char *path, const nb_tensor_ref *tensors, int count,
                               const char *const *meta_keys, const char *const *meta_values,
                               int meta_count, nb_error *err)
{
    if (!path || !path[0])
        return nb_error_set(err, NB_EINVAL, "nb_safetensors_write: no path");
    if (count < 0 || (count > 0 && !tensors) || meta_count < 0 ||
        (meta_count > 0 && (!meta_keys || !meta_values)))
        return nb_error_set(err, NB_EINVAL, "%s: invalid tensor or metadata arrays", path);
    nb_status status =
        check_for_write(path, tensors, count, meta_keys, meta_values, meta_count, err);
    if (status)
        return status;

    mode_t mode = 0644;
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return nb_error_set(err, NB_EIO, "%s: is a directory; expected a file path", path);
        if (S_ISREG(sb.st_mode))
            mode = sb.st_mode & 0777; /* replacing a file keeps its permissions */
    }

    char *header = NULL;
    size_t header_len = 0;
    if ((status = build_header(path, tensors, count, meta_keys, meta_values, meta_count,
                               &header, &header_len, err)))
        return status;

    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp) {
        free(header);
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        status = nb_error_set(err, NB_EIO, "%s: cannot create a temporary file beside it: %s",
                              path, strerror(errno));
        free(header);
        free(tmp);
        return status;
    }

    /* Each step records errno at the point of failure: a full disk (ENOSPC) may only show
     * at fflush, fsync or fclose, when buffered data reaches the device. */
    const char *step = NULL;
    int e = 0;
    FILE *f = NULL;
    unsigned char size_field[8];
    store_le64(size_field, header_len);
    if (fchmod(fd, mode) != 0)
        step = "setting permissions on", e = errno;
    else if (!(f = fdopen(fd, "wb")))
        step = "opening", e = errno;
    else if (fwrite(size_field, 1, 8, f) != 8 || fwrite(header, 1, header_len, f) != header_len)
        step = "writing the header to", e = errno;
    for (int i = 0; !step && i < count; i++) {
        size_t elems = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            elems *= (size_t)tensors[i].dims[d];
        if (elems && !write_floats(f, tensors[i].data, elems))
            step = "writing tensor data to", e = errno;
    }
    if (!step && fflush(f) != 0)
        step = "flushing", e = errno;
    if (!step && fsync(fileno(f)) != 0)
        step = "syncing", e = errno;
    if (f) {
        if (fclose(f) != 0 && !step)
            step = "closing", e = errno;
    } else
        close(fd);
    if (!step && rename(tmp, path) != 0)
        step = "renaming", e = errno;
    if (step) {
        unlink(tmp);
        status = nb_error_set(err, NB_EIO,
                              "%s: %s the temporary file %s failed: %s; the previous file, if "
                              "any, is unchanged",
                              path, step, tmp, e ? strerror(e) : "short write");
    } else
        status = sync_dir(path, err);
    free(header);
    free(tmp);
    return status;
}
