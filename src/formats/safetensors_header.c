/* Safetensors headers (format: safetensors_read.c): the checks that make a hostile header
 * safe to hand to cJSON, and the validation of each tensor's entry and of the data buffer's
 * layout against the file's size, before anything is allocated for the data. Every message
 * names the file and the field or byte at fault. */
#include "formats/safetensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int entry_offset_cmp(const void *pa, const void *pb)
{
    const st_entry *a = pa, *b = pb;
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
nb_status st_scan_header(const char *path, const unsigned char *h, size_t n, nb_error *err)
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
            size_t len = st_utf8_seq(h + i, n - i);
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
    return nb_error_set(err, NB_EFORMAT, "%s: tensor '%s': %s", path, st_show(name).s, rest);
}

/* Validates one tensor entry: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}. */
nb_status st_parse_entry(const char *path, const cJSON *item, int key, uint64_t data_size,
                         st_entry *e, nb_error *err)
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
                          st_json_kind(item, kind, sizeof kind));

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
                              st_show(f->string).s);
        if (*slot)
            return bad_tensor(err, path, name, "duplicate field '%s'", f->string);
        *slot = f;
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offsets ? "data_offsets" : NULL;
    if (missing)
        return bad_tensor(err, path, name, "missing field '%s'", missing);

    if (!cJSON_IsString(dtype))
        return bad_tensor(err, path, name,
                          "dtype is %s; expected a string such as \"F32\"",
                          st_json_kind(dtype, kind, sizeof kind));
    if (!(e->dtype = st_dtype_find(dtype->valuestring)))
        return bad_tensor(err, path, name,
                          "dtype: expected " ST_DTYPE_NAMES ", found %s (nabla reads "
                          "floating-point tensors and int64 counts, as float32)",
                          st_show(dtype->valuestring).s);

    if (!cJSON_IsArray(shape))
        return bad_tensor(err, path, name,
                          "shape is %s; expected an array of non-negative integers",
                          st_json_kind(shape, kind, sizeof kind));
    e->ndim = 0;
    memset(e->dims, 0, sizeof e->dims); /* copied whole into nb_tensor_ref.dims */
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (e->ndim == NB_MAX_DIMS)
            return bad_tensor(err, path, name,
                              "shape has more than %d dims; nabla supports at most %d",
                              NB_MAX_DIMS, NB_MAX_DIMS);
        if (!st_json_uint(d, &v))
            return bad_tensor(err, path, name,
                              "shape[%d] is %s; expected a non-negative integer", e->ndim,
                              st_json_kind(d, kind, sizeof kind));
        e->dims[e->ndim++] = (int64_t)v;
    }
    st_dims_str(e->dims, e->ndim, dims, sizeof dims);
    /* Elements, kept below INT64_MAX / 8 so that the byte count fits too (F64: 8 bytes each). A zero dim makes
     * the tensor empty whatever the others are. */
    e->elems = 1;
    for (int i = 0; i < e->ndim; i++)
        if (e->dims[i] == 0)
            e->elems = 0;
    for (int i = 0; i < e->ndim && e->elems; i++) {
        if (e->elems > INT64_MAX / 8 / e->dims[i])
            return bad_tensor(err, path, name, "shape %s: element count overflows 64 bits",
                              dims);
        e->elems *= e->dims[i];
    }

    const cJSON *b = cJSON_IsArray(offsets) ? offsets->child : NULL;
    const cJSON *end = b ? b->next : NULL;
    if (!b || !end || end->next || !st_json_uint(b, &e->begin) || !st_json_uint(end, &e->end))
        return bad_tensor(err, path, name,
                          "data_offsets is %s; expected two non-negative integers [begin, end]",
                          cJSON_IsArray(offsets) ? "not a pair of integers"
                                                 : st_json_kind(offsets, kind, sizeof kind));
    unsigned long long lo = e->begin, hi = e->end;
    if (lo > hi)
        return bad_tensor(err, path, name, "data_offsets [%llu, %llu]: begin is after end", lo,
                          hi);
    unsigned long long need = (unsigned long long)e->dtype->size * (unsigned long long)e->elems;
    if (hi - lo != need)
        return bad_tensor(err, path, name,
                          "data_offsets [%llu, %llu] hold %llu bytes, shape %s needs %llu "
                          "(%d-byte %s elements)",
                          lo, hi, hi - lo, dims, need, e->dtype->size, e->dtype->name);
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
nb_status st_check_layout(const char *path, st_entry *es, int n, uint64_t data_start,
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
                              hi, st_show(es[i - 1].name).s, (unsigned long long)es[i - 1].begin,
                              (unsigned long long)es[i - 1].end);
        if (lo > pos)
            return nb_error_set(err, NB_EFORMAT,
                                "%s: data bytes [%llu, %llu) (file offsets [%llu, %llu)) "
                                "belong to no tensor (a hole before tensor '%s'); the "
                                "tensors must cover the data buffer",
                                path, pos, lo, at + pos, at + lo, st_show(es[i].name).s);
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

