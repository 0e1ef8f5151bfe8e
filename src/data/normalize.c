/* Input normalisation's statistics (§5.5), fitted on the training set only; applied while a
 * minibatch is gathered (dataset.c). */
#include "data/labels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Normalisation b' = (b − m) / max(σ, ε) (§5.5)
 *
 * Statistics are the mean and the population standard deviation σ = √(Σ(b − m)²/N) over the
 * samples given (the training set only, so no validation or test information leaks into
 * the model). Slot s of `size` covers the B = features/size consecutive features
 * [s·B, (s+1)·B): B = 1 per feature, B = H·W per channel of a [C, H, W] sample, B =
 * features for one global pair.
 *
 * Bytes are summed exactly in 64-bit integers (Σb² ≤ 255²·2^31 < 2^47), and the variance
 * Σb²/N − m² is formed in double: for values below 256 its cancellation error is ~1e-11.
 * Floats use two passes in double: the mean, then Σ(b − m)², which does not cancel.
 * ------------------------------------------------------------------------------------- */

nb_status nb_norm_fit(nb_norm *norm, const nb_dataset *train, nb_norm_mode mode, float eps,
                      nb_error *err)
{
    if (!norm || !train)
        return nb_error_set(err, NB_EINVAL, "normalisation: statistics and training data are required");
    memset(norm, 0, sizeof *norm);
    if (mode < NB_NORM_NONE || mode > NB_NORM_GLOBAL)
        return nb_error_set(err, NB_EINVAL, "normalisation: unknown mode %d",
                            (int)mode);
    if (!(eps >= 0 && isfinite(eps)))
        return nb_error_set(err, NB_EINVAL, "normalisation: epsilon %g must be finite and >= 0",
                            (double)eps);
    if (!nb_dataset_valid(train))
        return nb_error_set(err, NB_EINVAL, "normalisation: the training set is empty; no statistics to compute");
    norm->mode = mode;
    norm->features = train->features;
    norm->eps = eps;
    if (mode == NB_NORM_NONE)
        return NB_OK;

    int64_t F = train->features, n = train->count, size;
    if (mode == NB_NORM_FEATURE)
        size = F;
    else if (mode == NB_NORM_CHANNEL)
        /* A [C, H, W] sample has C channels; a flat vector or a single [H, W] image has one
         * (its rows are not channels). */
        size = train->ndim >= 3 ? train->dims[0] : 1;
    else
        size = 1;
    if (size < 1 || F % size != 0)
        return nb_error_set(err, NB_EINVAL,
                            "normalisation: %lld channels do not divide %lld features",
                            (long long)size, (long long)F);
    int64_t B = F / size;
    double N = (double)n * (double)B; /* values per slot */

    float *mean = malloc((size_t)size * sizeof *mean);
    float *std = malloc((size_t)size * sizeof *std);
    double *s1 = calloc((size_t)size, sizeof *s1);
    double *s2 = calloc((size_t)size, sizeof *s2);
    uint64_t *q1 = NULL, *q2 = NULL;
    if (train->dtype == NB_U8 && mode == NB_NORM_FEATURE) {
        q1 = calloc((size_t)size, sizeof *q1);
        q2 = calloc((size_t)size, sizeof *q2);
    }
    if (!mean || !std || !s1 || !s2 || (train->dtype == NB_U8 && mode == NB_NORM_FEATURE &&
                                        (!q1 || !q2))) {
        free(mean);
        free(std);
        free(s1);
        free(s2);
        free(q1);
        free(q2);
        memset(norm, 0, sizeof *norm);
        return nb_error_set(err, NB_ENOMEM, "normalisation: out of memory for %lld statistics",
                            (long long)size);
    }

    if (train->dtype == NB_U8) {
        if (mode == NB_NORM_FEATURE) {
            for (int64_t i = 0; i < n; i++) {
                const uint8_t *row = train->u8 + (size_t)(i * F);
                for (int64_t f = 0; f < F; f++) {
                    uint32_t b = row[f];
                    q1[f] += b;
                    q2[f] += b * b;
                }
            }
            for (int64_t f = 0; f < F; f++) {
                s1[f] = (double)q1[f];
                s2[f] = (double)q2[f];
            }
        } else {
            for (int64_t i = 0; i < n; i++) {
                const uint8_t *row = train->u8 + (size_t)(i * F);
                for (int64_t s = 0; s < size; s++) {
                    uint64_t a = 0, a2 = 0;
                    for (int64_t k = 0; k < B; k++) {
                        uint32_t b = row[s * B + k];
                        a += b;
                        a2 += b * b;
                    }
                    s1[s] += (double)a; /* exact: integers below 2^53 */
                    s2[s] += (double)a2;
                }
            }
        }
        for (int64_t s = 0; s < size; s++) {
            double m = s1[s] / N, var = s2[s] / N - m * m;
            mean[s] = (float)m;
            std[s] = (float)sqrt(var > 0 ? var : 0);
        }
    } else {
        /* Pass 1: Σb per slot. */
        for (int64_t i = 0; i < n; i++) {
            const float *row = train->f32 + (size_t)(i * F);
            if (mode == NB_NORM_FEATURE) {
                for (int64_t f = 0; f < F; f++)
                    s1[f] += row[f];
            } else {
                for (int64_t s = 0; s < size; s++) {
                    double a = 0;
                    for (int64_t k = 0; k < B; k++)
                        a += row[s * B + k];
                    s1[s] += a;
                }
            }
        }
        for (int64_t s = 0; s < size; s++)
            s1[s] /= N;
        /* Pass 2: Σ(b − m)² per slot. */
        for (int64_t i = 0; i < n; i++) {
            const float *row = train->f32 + (size_t)(i * F);
            if (mode == NB_NORM_FEATURE) {
                for (int64_t f = 0; f < F; f++) {
                    double d = row[f] - s1[f];
                    s2[f] += d * d;
                }
            } else {
                for (int64_t s = 0; s < size; s++) {
                    double a = 0, m = s1[s];
                    for (int64_t k = 0; k < B; k++) {
                        double d = row[s * B + k] - m;
                        a += d * d;
                    }
                    s2[s] += a;
                }
            }
        }
        for (int64_t s = 0; s < size; s++) {
            mean[s] = (float)s1[s];
            std[s] = (float)sqrt(s2[s] / N);
        }
    }
    free(s1);
    free(s2);
    free(q1);
    free(q2);
    norm->size = size;
    norm->mean = mean;
    norm->std = std;
    return NB_OK;
}

void nb_norm_free(nb_norm *norm)
{
    if (!norm)
        return;
    free(norm->mean);
    free(norm->std);
    memset(norm, 0, sizeof *norm);
}
