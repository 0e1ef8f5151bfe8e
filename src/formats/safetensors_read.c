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
 * Tensors may be F32, F16, BF16, F64 or I64; each is converted to float32 as it is read
 * (safetensors_dtype.c). The reader treats the file as hostile: every size is checked against
 * the file's size (fstat) before anything is allocated, the header is checked byte by byte
 * (UTF-8, control bytes, \u0000, number syntax) before cJSON parses it, because cJSON lets
 * those through, and every message names the file and the field or byte at fault. */
#include "formats/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* NB_ENUMERIC naming element k of tensor t by its flat and its multi-dimensional index:
 * "... element 4 [1,1] (file offset 124) is NaN; expected finite values". */
static nb_status bad_element(nb_error *err, const char *path, uint64_t data_start,
                             const st_entry *e, const nb_tensor_ref *t, size_t k, const char *what)
{
    int64_t idx[NB_MAX_DIMS], rest = (int64_t)k;
    char where[128];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = rest % t->dims[d];
        rest /= t->dims[d];
    }
    st_dims_str(idx, t->ndim, where, sizeof where);
    return nb_error_set(err, NB_ENUMERIC,
                        "%s: tensor '%s': element %zu %s (file offset %llu) is %s; expected "
                        "finite values",
                        path, st_show(e->name).s, k, where,
                        (unsigned long long)(data_start + e->begin +
                                             (uint64_t)e->dtype->size * k),
                        what);
}

/* The index of the first non-finite of n floats, or n. */
static size_t first_non_finite(const float *v, size_t n)
{
    size_t k = 0;
    while (k < n && isfinite(v[k]))
        k++;
    return k;
}

static const char *non_finite_name(float v) { return isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf"; }

/* Reads tensor e's data (the stream is at its first byte) into t->data as float32, converting
 * from its dtype, and checks that every value is finite. */
static nb_status read_tensor(const char *path, FILE *f, uint64_t data_start, const st_entry *e,
                             nb_tensor_ref *t, nb_error *err)
{
    size_t count = (size_t)e->elems, size = (size_t)e->dtype->size, done = 0;
    unsigned char raw[8192];
    while (done < count) {
        /* F32 on a little-endian host is read straight into place; other dtypes through raw */
        int direct = size == 4 && st_host_is_little();
        size_t chunk = direct ? count - done : sizeof raw / size;
        chunk = chunk < count - done ? chunk : count - done;
        void *dst = direct ? (void *)(t->data + done) : (void *)raw;
        if (fread(dst, size, chunk, f) != chunk) {
            int errnum = errno, eof = feof(f);
            return nb_error_set(err, NB_EIO,
                                "%s: tensor '%s': reading %zu bytes at file offset %llu "
                                "failed: %s",
                                path, st_show(e->name).s, count * size,
                                (unsigned long long)(data_start + e->begin),
                                eof ? "the file ended early (truncated while reading?)"
                                    : strerror(errnum));
        }
        if (!direct)
            e->dtype->to_f32(raw, chunk, t->data + done);
        size_t k = first_non_finite(t->data + done, chunk);
        if (k < chunk) {
            char what[112];
            double d = size == 8 ? st_f64_at(raw + 8 * k) : 0.0;
            if (strcmp(e->dtype->name, "I64") == 0)
                snprintf(what, sizeof what, "%lld in I64, beyond the integers float32 holds "
                         "exactly (|n| <= 16777216)", (long long)st_i64_at(raw + 8 * k));
            else if (size == 8 && isfinite(d)) /* a finite double beyond float32's range */
                snprintf(what, sizeof what, "%.17g in F64, beyond float32's range (|x| <= "
                         "3.4028235e+38)", d);
            else
                snprintf(what, sizeof what, "%s", non_finite_name(t->data[done + k]));
            return bad_element(err, path, data_start, e, t, done + k, what);
        }
        done += chunk;
    }
    return NB_OK;
}

/* Builds *out from the validated entries (in file order) and metadata, then reads and checks
 * the data, which starts at the stream's current position. */
static nb_status load(const char *path, FILE *f, uint64_t data_start, const st_entry *es, int n,
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
    qsort(refs, (size_t)n, sizeof *refs, st_name_ref_cmp);
    for (int i = 0; i < n; i++)
        st->by_name[i] = refs[i].index;
    free(refs);

    /* The tensors cover the buffer contiguously in this order, so one sequential pass reads
     * them all. */
    for (int i = 0; i < n; i++) {
        nb_status code = read_tensor(path, f, data_start, &es[i], &st->tensors[i], err);
        if (code) {
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
                                st_json_kind(meta_obj, kind, sizeof kind));
        for (const cJSON *m = meta_obj->child; m; m = m->next, meta_n++)
            if (!cJSON_IsString(m))
                return nb_error_set(err, NB_EFORMAT,
                                    "%s: " META_KEY " '%s' is %s; expected a string", path,
                                    st_show(m->string).s, st_json_kind(m, kind, sizeof kind));
    }

    st_entry *es = malloc(((size_t)n + 1) * sizeof *es);
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
        if ((status = st_parse_entry(path, it, key, data_size, &es[i], err)))
            goto done;
        refs[i] = (name_ref){es[i].name, key};
        i++;
    }
    int dup = st_sort_find_duplicate(refs, n);
    if (dup >= 0) {
        status = nb_error_set(err, NB_EFORMAT,
                              "%s: duplicate tensor name '%s' (header keys #%d and #%d); "
                              "names must be unique",
                              path, st_show(refs[dup].name).s, refs[dup].index,
                              refs[dup + 1].index);
        goto done;
    }
    i = 0;
    if (meta_obj)
        for (const cJSON *m = meta_obj->child; m; m = m->next, i++) {
            meta[i] = (name_ref){m->string, i};
            meta_items[i] = m;
        }
    dup = st_sort_find_duplicate(meta, meta_n);
    if (dup >= 0) {
        status = nb_error_set(err, NB_EFORMAT, "%s: " META_KEY ": duplicate key '%s'", path,
                              st_show(meta[dup].name).s);
        goto done;
    }
    if ((status = st_check_layout(path, es, n, data_start, data_size, err)))
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
        return nb_error_set(err, NB_EINVAL, "no file to read: a path and a result are required");
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
    uint64_t n = st_load_le64(size_field);
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
    if ((status = st_scan_header(path, header, (size_t)n, err)))
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
                              st_json_kind(root, kind, sizeof kind));
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
