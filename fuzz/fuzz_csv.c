/* libFuzzer harness for nb_csv_load (src/data/data_csv.c).
 *
 * Byte 0 picks the label column (its value mod 5): none, "label", "0", "1" or "y" — a name or
 * a 0-based index, both of which the loader resolves against the header. The remaining bytes
 * are the file. On success the data set must be self-consistent and hold only finite floats;
 * on failure it must be empty and the message must name the file. */
#include "fuzz_file.h"
#include "nabla.h"

#include <math.h>

static int dataset_is_empty(const nb_dataset *ds)
{
    return ds->count == 0 && !ds->u8 && !ds->f32 && !ds->labels && ds->classes == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file file;
    if (!file.path[0])
        fuzz_file_open(&file, "csv");
    static const char *const columns[] = {NULL, "label", "0", "1", "y"};
    const char *label = NULL;
    if (size > 0) {
        label = columns[data[0] % 5];
        data++, size--;
    }
    fuzz_file_write(&file, data, size);

    nb_dataset ds;
    nb_error err = {0};
    nb_status st = nb_csv_load(&ds, file.path, label, &err);
    if (st != NB_OK) {
        FUZZ_ASSERT(err.code == st && err.msg[0], "status %d without a message", st);
        FUZZ_ASSERT(strstr(err.msg, file.path), "the message names no file: %s", err.msg);
        FUZZ_ASSERT(dataset_is_empty(&ds), "failed load left data behind: %s", err.msg);
        return 0;
    }

    FUZZ_ASSERT(ds.count >= 1 && ds.dtype == NB_F32 && ds.f32 && !ds.u8, "count %lld",
                (long long)ds.count);
    FUZZ_ASSERT(ds.ndim == 1 && ds.dims[0] == ds.features && ds.features >= 1,
                "ndim %d, dims[0] %lld, features %lld", ds.ndim, (long long)ds.dims[0],
                (long long)ds.features);
    /* Every row is a line of the file with at least one byte per field. */
    FUZZ_ASSERT(ds.count * ds.features <= (int64_t)size, "%lld x %lld values from %zu bytes",
                (long long)ds.count, (long long)ds.features, size);
    FUZZ_ASSERT(!label == !ds.labels, "labels %p with label column %s", (void *)ds.labels,
                label ? label : "(none)");
    for (int64_t i = 0; i < ds.count * ds.features; i++)
        FUZZ_ASSERT(isfinite(ds.f32[i]), "value %lld is %g", (long long)i, ds.f32[i]);
    fuzz_check_labels(&ds);

    /* Per-feature statistics and one normalised sample, as training would compute them. */
    nb_norm norm;
    if (nb_norm_fit(&norm, &ds, NB_NORM_FEATURE, 1e-5f, &err) == NB_OK) {
        float *x = malloc((size_t)ds.features * sizeof *x);
        int64_t first = 0;
        if (x)
            nb_dataset_gather(&ds, &first, 1, &norm, x, NULL);
        free(x);
        nb_norm_free(&norm);
    }
    nb_dataset_free(&ds);
    FUZZ_ASSERT(dataset_is_empty(&ds), "nb_dataset_free left data behind");
    return 0;
}
