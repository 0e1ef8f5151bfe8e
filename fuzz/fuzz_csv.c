/* libFuzzer harness for nb_csv_load_with (src/data/data_csv.c).
 *
 * Byte 0 picks the target column(s) (its value mod 7): none, "label", "0", "1", "y", "y,z" or
 * "1,0" — names or 0-based indices, which the loader resolves against the header — and (its
 * value / 7 mod 3) what they hold: class labels (numbers or names, the names then sorted),
 * regression targets, or class labels mapped through the names "cat", "dog", "0". The
 * remaining bytes are the file. On success the data set must be self-consistent and hold only
 * finite floats, class names sorted and distinct; on failure it must be empty and the message
 * must name the file. */
#include "fuzz_file.h"
#include "nabla.h"

#include <math.h>

static int dataset_is_empty(const nb_dataset *ds)
{
    return ds->count == 0 && !ds->u8 && !ds->f32 && !ds->labels && ds->classes == 0 &&
           !ds->targets && ds->target_count == 0 && !ds->class_names && !ds->target_names;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file file;
    if (!file.path[0])
        fuzz_file_open(&file, "csv");
    static const char *const columns[] = {NULL, "label", "0", "1", "y", "y,z", "1,0"};
    static const char *const model_names[] = {"cat", "dog", "0"};
    const char *label = NULL;
    nb_csv_options opt = {0};
    if (size > 0) {
        label = columns[data[0] % 7];
        int mode = data[0] / 7 % 3;
        opt.kind = mode == 1 ? NB_TARGET_VALUES : NB_TARGET_CLASSES;
        if (mode == 2) {
            opt.class_names = model_names;
            opt.class_count = 3;
        }
        data++, size--;
    }
    opt.targets = label;
    fuzz_file_write(&file, data, size);

    nb_dataset ds;
    nb_error err = {0};
    nb_status st = nb_csv_load_with(&ds, file.path, &opt, &err);
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
    int values = label && opt.kind == NB_TARGET_VALUES;
    FUZZ_ASSERT((label && !values) == !!ds.labels, "labels %p with label column %s",
                (void *)ds.labels, label ? label : "(none)");
    FUZZ_ASSERT(values == !!ds.targets && values == (ds.target_count > 0) &&
                values == !!ds.target_names, "targets %p (%lld) with target columns %s",
                (void *)ds.targets, (long long)ds.target_count, label ? label : "(none)");
    for (int64_t i = 0; i < ds.count * ds.features; i++)
        FUZZ_ASSERT(isfinite(ds.f32[i]), "value %lld is %g", (long long)i, ds.f32[i]);
    for (int64_t i = 0; ds.targets && i < ds.count * ds.target_count; i++)
        FUZZ_ASSERT(isfinite(ds.targets[i]), "target %lld is %g", (long long)i, ds.targets[i]);
    if (opt.class_count && ds.labels) {
        FUZZ_ASSERT(ds.classes == 3 && !ds.class_names, "classes %d through 3 names", ds.classes);
        for (int64_t i = 0; i < ds.count; i++)
            FUZZ_ASSERT(ds.labels[i] >= 0 && ds.labels[i] < 3, "label %d", ds.labels[i]);
    } else {
        fuzz_check_labels(&ds);
    }
    for (int k = 1; ds.class_names && k < ds.classes; k++)
        FUZZ_ASSERT(strcmp(ds.class_names[k - 1], ds.class_names[k]) < 0,
                    "class names %d and %d out of order or repeated", k - 1, k);

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
