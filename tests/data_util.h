/* Shared by the data tests (test_data.c: loaders; test_data_prep.c: splits, normalisation,
 * order): the hand computations and properties the library's results must match. */
#ifndef NB_DATA_UTIL_H
#define NB_DATA_UTIL_H

#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_permutation(const int64_t *order, int64_t n)
{
    unsigned char *seen = calloc((size_t)n, 1);
    int ok = seen != NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        if (order[i] < 0 || order[i] >= n || seen[order[i]])
            ok = 0;
        else
            seen[order[i]] = 1;
    }
    free(seen);
    return ok;
}

/* Population mean and standard deviation of the values v(i, f) for samples `rows`, over
 * the feature range [f0, f1): the hand computation the library must match. */
static void hand_stats(const nb_dataset *ds, const int64_t *rows, int64_t nrows, int64_t f0,
                       int64_t f1, double *mean, double *std)
{
    double s = 0, n = 0, q = 0;
    for (int64_t r = 0; r < nrows; r++)
        for (int64_t f = f0; f < f1; f++) {
            int64_t k = rows[r] * ds->features + f;
            s += ds->dtype == NB_U8 ? ds->u8[k] : ds->f32[k];
            n += 1;
        }
    *mean = s / n;
    for (int64_t r = 0; r < nrows; r++)
        for (int64_t f = f0; f < f1; f++) {
            int64_t k = rows[r] * ds->features + f;
            double d = (ds->dtype == NB_U8 ? ds->u8[k] : ds->f32[k]) - *mean;
            q += d * d;
        }
    *std = sqrt(q / n);
}

/* Every full window of `batch` in `order` contains every class; returns the smallest count
 * of any class in any full window through *min_count. */
static int batches_cover_classes(const nb_dataset *ds, const int64_t *order, int64_t batch,
                                 int *min_count)
{
    int ok = 1, counts[64];
    *min_count = 1 << 30;
    for (int64_t w = 0; w + batch <= ds->count; w += batch) {
        memset(counts, 0, sizeof counts);
        for (int64_t i = w; i < w + batch; i++)
            counts[ds->labels[order[i]]]++;
        for (int c = 0; c < ds->classes; c++) {
            if (counts[c] == 0)
                ok = 0;
            if (counts[c] < *min_count)
                *min_count = counts[c];
        }
    }
    return ok;
}

#endif /* NB_DATA_UTIL_H */
