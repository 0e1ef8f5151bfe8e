/* libFuzzer harness for nb_safetensors_read (src/formats/safetensors_read.c). The input is the file.
 *
 * A file that loads must be consistent (every tensor found by its name, shapes matching the
 * element counts, finite data), and must survive a round trip: nb_safetensors_write of its
 * tensors, read back, gives the same names, shapes and bits. The round trip writes under
 * /dev/shm (or /tmp), in a directory made and removed around it (fuzz_out_begin). */
#include "fuzz_file.h"
#include "nabla.h"

#include <math.h>

static int64_t elements(const nb_tensor_ref *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->dims[d];
    return n;
}

static void round_trip(const nb_safetensors *st)
{
    const char *out_path = fuzz_out_begin("t.safetensors");
    int n = nb_safetensors_count(st);
    nb_tensor_ref *ts = calloc((size_t)n + 1, sizeof *ts);
    if (!ts)
        fuzz_die("calloc");
    for (int i = 0; i < n; i++)
        ts[i] = *nb_safetensors_at(st, i);
    nb_error err = {0};
    nb_status s = nb_safetensors_write(out_path, ts, n, NULL, NULL, 0, &err);
    free(ts);
    FUZZ_ASSERT(s == NB_OK, "a file the reader accepts cannot be written back: %s", err.msg);
    nb_safetensors *back = NULL;
    s = nb_safetensors_read(out_path, &back, &err);
    FUZZ_ASSERT(s == NB_OK, "the file written back cannot be read: %s", err.msg);
    FUZZ_ASSERT(nb_safetensors_count(back) == n, "%d tensors back of %d",
                nb_safetensors_count(back), n);
    for (int i = 0; i < n; i++) {
        const nb_tensor_ref *a = nb_safetensors_at(st, i);
        const nb_tensor_ref *b = nb_safetensors_find(back, a->name);
        FUZZ_ASSERT(b && b->ndim == a->ndim, "tensor '%s' lost or reshaped", a->name);
        FUZZ_ASSERT(memcmp(a->dims, b->dims, (size_t)a->ndim * sizeof *a->dims) == 0,
                    "tensor '%s' reshaped", a->name);
        FUZZ_ASSERT(memcmp(a->data, b->data, (size_t)elements(a) * sizeof(float)) == 0,
                    "tensor '%s' changed its values", a->name);
    }
    nb_safetensors_free(back);
    fuzz_out_end();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file file;
    if (!file.path[0])
        fuzz_file_open(&file, "safetensors");
    fuzz_file_write(&file, data, size);

    nb_safetensors *st = NULL;
    nb_error err = {0};
    nb_status s = nb_safetensors_read(file.path, &st, &err);
    if (s != NB_OK) {
        FUZZ_ASSERT(err.code == s && err.msg[0], "status %d without a message", s);
        FUZZ_ASSERT(strstr(err.msg, file.path), "the message names no file: %s", err.msg);
        FUZZ_ASSERT(!st, "failed read returned an object");
        return 0;
    }

    int n = nb_safetensors_count(st);
    int64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        const nb_tensor_ref *t = nb_safetensors_at(st, i);
        FUZZ_ASSERT(t && t->name && t->name[0], "tensor %d has no name", i);
        FUZZ_ASSERT(nb_safetensors_find(st, t->name) == t, "'%s' is not found by name", t->name);
        FUZZ_ASSERT(t->ndim >= 0 && t->ndim <= NB_MAX_DIMS, "'%s': ndim %d", t->name, t->ndim);
        for (int d = 0; d < t->ndim; d++)
            FUZZ_ASSERT(t->dims[d] >= 0, "'%s': dims[%d] = %lld", t->name, d,
                        (long long)t->dims[d]);
        /* Unused dims are zero, not whatever the allocator left (ASan fills with 0xbe). */
        for (int d = t->ndim; d < NB_MAX_DIMS; d++)
            FUZZ_ASSERT(t->dims[d] == 0, "'%s': unused dims[%d] = %lld", t->name, d,
                        (long long)t->dims[d]);
        int64_t count = elements(t);
        bytes += 2 * count; /* at least 2 bytes per element in the file (F16, BF16) */
        FUZZ_ASSERT(bytes <= (int64_t)size, "tensors hold at least %lld bytes, the file has %zu",
                    (long long)bytes, size);
        FUZZ_ASSERT(count == 0 || t->data, "'%s': no data", t->name);
        for (int64_t k = 0; k < count; k++)
            FUZZ_ASSERT(isfinite(t->data[k]), "'%s'[%lld] = %g", t->name, (long long)k,
                        t->data[k]);
    }
    FUZZ_ASSERT(!nb_safetensors_at(st, n) && !nb_safetensors_at(st, -1), "index out of range");
    /* Lookups of absent or odd names must simply miss. */
    const char *probe[] = {"", "__metadata__", "format", "nabla.description", "\xff"};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        const nb_tensor_ref *t = nb_safetensors_find(st, probe[i]);
        FUZZ_ASSERT(!t || strcmp(t->name, probe[i]) == 0, "find('%s') gave '%s'", probe[i],
                    t->name);
        const char *v = nb_safetensors_meta(st, probe[i]);
        if (v)
            (void)strlen(v);
    }
    round_trip(st);
    nb_safetensors_free(st);
    return 0;
}
