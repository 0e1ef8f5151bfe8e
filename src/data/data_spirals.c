/* The practicum's interleaved spirals (§6), as in the CS231n example:
 *
 *     for class j:  r = linspace(0, 1, N)
 *                   t = linspace(4j, 4(j+1), N) + noise · randn(N)
 *                   x = (r sin t, r cos t),  y = j
 *
 * Each arm turns through 4 radians, so K arms interleave and no linear model separates
 * them; a ReLU net with one hidden layer of ~100 units does. Samples are stored class by
 * class (use an order other than sequential for training).
 */
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPIRALS_MAX_SAMPLES ((int64_t)1 << 30)

nb_status nb_spirals(nb_dataset *ds, int64_t per_class, int classes, float noise,
                     uint64_t seed, nb_error *err)
{
    if (!ds)
        return nb_error_set(err, NB_EINVAL, "spirals: no data set to fill");
    memset(ds, 0, sizeof *ds);
    if (per_class < 1 || classes < 1 || per_class > SPIRALS_MAX_SAMPLES / classes)
        return nb_error_set(err, NB_EINVAL,
                            "spirals: expected per_class >= 1 and classes >= 1 with at most "
                            "2^30 points, got per_class %lld, classes %d",
                            (long long)per_class, classes);
    if (!(noise >= 0 && isfinite(noise)))
        return nb_error_set(err, NB_EINVAL,
                            "spirals: expected a finite noise >= 0, got %g", (double)noise);

    int64_t n = per_class * classes;
    float *x = malloc((size_t)n * 2 * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return nb_error_set(err, NB_ENOMEM, "spirals: out of memory for %lld points",
                            (long long)n);
    }
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    /* linspace(a, b, N)[i] = a + (b − a)·i/(N − 1), and just a when N = 1. */
    double step = per_class > 1 ? 1.0 / (double)(per_class - 1) : 0.0;
    for (int j = 0; j < classes; j++) {
        for (int64_t i = 0; i < per_class; i++) {
            int64_t k = j * per_class + i;
            double r = (double)i * step;
            double t = 4.0 * j + 4.0 * (double)i * step + (double)noise * nb_rng_normal(&rng);
            x[2 * k] = (float)(r * sin(t));
            x[2 * k + 1] = (float)(r * cos(t));
            y[k] = j;
        }
    }
    ds->count = n;
    ds->ndim = 1;
    ds->dims[0] = 2;
    ds->features = 2;
    ds->dtype = NB_F32;
    ds->f32 = x;
    ds->labels = y;
    ds->classes = classes;
    return NB_OK;
}
