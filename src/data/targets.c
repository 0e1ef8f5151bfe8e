/* Regression targets (§1): their standardisation t' = (t − m)/σ per target column, fitted on
 * the training set as the inputs' is (§5.5), and their gathering into a minibatch. The
 * targets are seen as a data set of target_count features, so the features' statistics and
 * gathering serve them unchanged. */
#include "nabla.h"

#include <string.h>

/* The targets of ds seen as a data set of target_count features. */
static nb_dataset targets_view(const nb_dataset *ds)
{
    nb_dataset v = {.count = ds->count, .ndim = 1, .dims = {ds->target_count},
                    .features = ds->target_count, .dtype = NB_F32, .f32 = ds->targets};
    return v;
}

nb_status nb_norm_fit_targets(nb_norm *norm, const nb_dataset *train, nb_norm_mode mode,
                              nb_error *err)
{
    if (!norm || !train)
        return nb_error_set(err, NB_EINVAL, "target normalisation: statistics and training data are required");
    memset(norm, 0, sizeof *norm);
    if (!train->targets || train->target_count < 1)
        return nb_error_set(err, NB_EINVAL, "target normalisation: the data set has no "
                            "regression targets");
    if (mode != NB_NORM_NONE && mode != NB_NORM_FEATURE)
        return nb_error_set(err, NB_EINVAL, "target normalisation: targets are standardised per "
                            "column (feature) or not at all (none)");
    nb_dataset view = targets_view(train);
    nb_status st = nb_norm_fit(norm, &view, mode, 0.0f, err);
    /* A constant target keeps its scale: σ = 1 only shifts it by its mean. */
    for (int64_t i = 0; !st && i < norm->size; i++)
        if (!(norm->std[i] > 0))
            norm->std[i] = 1.0f;
    return st;
}

void nb_dataset_gather_targets(const nb_dataset *ds, const int64_t *idx, int64_t n,
                               const nb_norm *norm, float *t)
{
    nb_dataset view = targets_view(ds);
    nb_dataset_gather(&view, idx, n, norm, t, NULL);
}
