/* Writing safetensors files (format: safetensors_read.c), atomically (atomic_file.c). */
#include "formats/safetensors.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writing --------------------------------------------------------------------------- */

/* Checks the tensors and metadata so that the file written is one the reader accepts. */
static nb_status check_for_write(const char *path, const nb_tensor_ref *ts, int count,
                                 const char *const *keys, const char *const *values,
                                 int meta_count, nb_error *err)
{
    uint64_t total = 0;
    for (int i = 0; i < count; i++) {
        const nb_tensor_ref *t = &ts[i];
        if (!t->name || !t->name[0] || !st_utf8_valid(t->name))
            return nb_error_set(err, NB_EINVAL,
                                "%s: tensor #%d: name is %s; expected non-empty UTF-8", path, i,
                                !t->name ? "NULL" : !t->name[0] ? "empty" : "not UTF-8");
        shown name = st_show(t->name);
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
        if (!keys[i] || !values[i] || !st_utf8_valid(keys[i]) || !st_utf8_valid(values[i]))
            return nb_error_set(err, NB_EINVAL,
                                "%s: metadata #%d: key and value must be non-NULL UTF-8", path,
                                i);

    int most = count > meta_count ? count : meta_count;
    name_ref *refs = malloc(((size_t)most + 1) * sizeof *refs);
    if (!refs)
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < count; i++)
        refs[i] = (name_ref){ts[i].name, i};
    int dup = st_sort_find_duplicate(refs, count);
    nb_status status = NB_OK;
    if (dup >= 0)
        status = nb_error_set(err, NB_EINVAL, "%s: duplicate tensor name '%s' (#%d and #%d)",
                              path, st_show(refs[dup].name).s, refs[dup].index,
                              refs[dup + 1].index);
    else {
        for (int i = 0; i < meta_count; i++)
            refs[i] = (name_ref){keys[i], i};
        dup = st_sort_find_duplicate(refs, meta_count);
        if (dup >= 0)
            status = nb_error_set(err, NB_EINVAL, "%s: duplicate metadata key '%s'", path,
                                  st_show(refs[dup].name).s);
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

/* The data as little-endian float32, in pieces of at most 1024 floats on a big-endian host. */
static nb_status write_floats(nb_atomic_file *af, const float *x, size_t n, nb_error *err)
{
    if (st_host_is_little())
        return nb_atomic_write(af, x, n * sizeof *x, err);
    float buf[1024];
    nb_status s = NB_OK;
    for (size_t i = 0; i < n && !s; i += 1024) {
        size_t m = n - i < 1024 ? n - i : 1024;
        memcpy(buf, x + i, m * sizeof *x);
        st_swap_floats(buf, m);
        s = nb_atomic_write(af, buf, m * sizeof *buf, err);
    }
    return s;
}

nb_status nb_safetensors_write(const char *path, const nb_tensor_ref *tensors, int count,
                               const char *const *meta_keys, const char *const *meta_values,
                               int meta_count, nb_error *err)
{
    if (!path || !path[0])
        return nb_error_set(err, NB_EINVAL, "no file name given to write the tensors to");
    if (count < 0 || (count > 0 && !tensors) || meta_count < 0 ||
        (meta_count > 0 && (!meta_keys || !meta_values)))
        return nb_error_set(err, NB_EINVAL, "%s: invalid tensor or metadata arrays", path);
    nb_status status =
        check_for_write(path, tensors, count, meta_keys, meta_values, meta_count, err);
    if (status)
        return status;

    char *header = NULL;
    size_t header_len = 0;
    if ((status = build_header(path, tensors, count, meta_keys, meta_values, meta_count,
                               &header, &header_len, err)))
        return status;
    nb_atomic_file *af = nb_atomic_open(path, err);
    if (!af) {
        free(header);
        return err ? err->code : NB_EIO;
    }
    unsigned char size_field[8];
    st_store_le64(size_field, header_len);
    status = nb_atomic_write(af, size_field, 8, err);
    if (!status)
        status = nb_atomic_write(af, header, header_len, err);
    for (int i = 0; !status && i < count; i++) {
        size_t elems = 1;
        for (int d = 0; d < tensors[i].ndim; d++)
            elems *= (size_t)tensors[i].dims[d];
        status = write_floats(af, tensors[i].data, elems, err);
    }
    if (status)
        nb_atomic_abort(af);
    else
        status = nb_atomic_commit(af, err);
    free(header);
    return status;
}
