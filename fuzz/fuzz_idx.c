/* libFuzzer harness for nb_idx_load (src/data/data_idx.c): an images file and a labels file.
 *
 * One input makes both files:
 *     bytes 0-1   little-endian split point s: the images file gets the next s bytes (or
 *                 all that remain), the labels file the rest
 *     byte  2     flags: bit 0 gzip the images file, bit 1 gzip the labels file, bit 2 load
 *                 without a labels file
 *     bytes 3…    the two files' contents
 * Gzipping is done here with zlib's gz writer, so the fuzzer reaches the inflate path with
 * valid streams (it would almost never produce a correct CRC itself); the payload can also be
 * a gzip stream already (the seeds hold some), which reaches the corrupt-stream paths.
 * Inputs shorter than 3 bytes are a plain images file alone.
 *
 * On success the data set must be self-consistent; on failure it must be empty and the
 * message must name a file. scripts/make-fuzz-seeds.py writes seeds in this format. */
#include "fuzz_file.h"
#include "nabla.h"

#include <math.h>

static int dataset_is_empty(const nb_dataset *ds)
{
    return ds->count == 0 && !ds->u8 && !ds->f32 && !ds->labels && ds->classes == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file images, labels;
    if (!images.path[0]) {
        fuzz_file_open(&images, "images");
        fuzz_file_open(&labels, "labels");
    }
    size_t split = size, start = 0;
    unsigned flags = 4;
    if (size >= 3) {
        split = (size_t)data[0] | (size_t)data[1] << 8;
        flags = data[2];
        start = 3;
        if (split > size - 3)
            split = size - 3;
    }
    const uint8_t *img = data + start, *lab = img + split;
    size_t lab_size = size - start - split;
    if (flags & 1)
        fuzz_file_write_gz(&images, img, split);
    else
        fuzz_file_write(&images, img, split);
    int with_labels = !(flags & 4);
    if (with_labels) {
        if (flags & 2)
            fuzz_file_write_gz(&labels, lab, lab_size);
        else
            fuzz_file_write(&labels, lab, lab_size);
    }

    nb_dataset ds;
    nb_error err = {0};
    nb_status st = nb_idx_load(&ds, images.path, with_labels ? labels.path : NULL, &err);
    if (st != NB_OK) {
        FUZZ_ASSERT(err.code == st && err.msg[0], "status %d without a message", st);
        FUZZ_ASSERT(strstr(err.msg, images.path) || strstr(err.msg, labels.path),
                    "the message names no file: %s", err.msg);
        FUZZ_ASSERT(dataset_is_empty(&ds), "failed load left data behind: %s", err.msg);
        return 0;
    }

    /* A loaded set is consistent: shape, features, and every label below `classes`. */
    FUZZ_ASSERT(ds.count >= 1 && ds.dtype == NB_U8 && ds.u8 && !ds.f32, "count %lld",
                (long long)ds.count);
    FUZZ_ASSERT(ds.ndim == 1 || ds.ndim == 2, "ndim %d", ds.ndim);
    int64_t features = 1;
    for (int i = 0; i < ds.ndim; i++) {
        FUZZ_ASSERT(ds.dims[i] >= 1, "dims[%d] = %lld", i, (long long)ds.dims[i]);
        features *= ds.dims[i];
    }
    FUZZ_ASSERT(features == ds.features, "features %lld, dims give %lld",
                (long long)ds.features, (long long)features);
    FUZZ_ASSERT(!with_labels == !ds.labels, "labels %p", (void *)ds.labels);
    fuzz_check_labels(&ds);

    /* What a training run does next: statistics, then a normalised sample. Every element is
     * read, so a buffer shorter than count × features would show. */
    nb_norm norm;
    if (nb_norm_fit(&norm, &ds, NB_NORM_GLOBAL, 1e-5f, &err) == NB_OK) {
        float *x = malloc((size_t)ds.features * sizeof *x);
        int32_t y = -1;
        int64_t last = ds.count - 1;
        if (x) {
            nb_dataset_gather(&ds, &last, 1, &norm, x, ds.labels ? &y : NULL);
            for (int64_t i = 0; i < ds.features; i++)
                FUZZ_ASSERT(isfinite(x[i]), "normalised feature %lld is %g", (long long)i, x[i]);
        }
        free(x);
        nb_norm_free(&norm);
    }
    nb_dataset_free(&ds);
    FUZZ_ASSERT(dataset_is_empty(&ds), "nb_dataset_free left data behind");
    return 0;
}
