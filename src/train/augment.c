/* Data augmentation for images, as torchvision's RandomCrop(size, padding=pad) followed by
 * RandomHorizontalFlip(): each training image is padded by `pad` pixels of raw value 0 on
 * every side, an H × W window is cut at a uniformly random offset (dy, dx) ∈ [0, 2·pad]², and
 * with probability ½ it is mirrored left–right:
 *     out[c, h, w] = in[c, h + dy − pad, w' + dx − pad]   (raw 0 outside),
 *     w' = W − 1 − w when flipped, else w.
 * Applied after normalisation, so the padding is the normalised value of a raw 0.
 *
 * The draw of each sample depends only on the run's seed, the epoch and the sample's row in
 * that epoch's order (a generator seeded from those three): a run resumed in mid-epoch, or
 * the same batch split over MPI ranks, augments every sample exactly as one uninterrupted
 * process would, with no generator state to save. */
#include "train/augment.h"
#include "core/graph.h"

#include <stdlib.h>
#include <string.h>

nb_status nb_augment_init(nb_augment *a, const nb_model *m, const nb_norm *norm, int pad,
                          int flip, uint64_t seed, nb_error *err)
{
    memset(a, 0, sizeof *a);
    int64_t dims[NB_MAX_DIMS];
    nb_model *mm = (nb_model *)m;
    int ndim = nb_node_shape(nb_model_graph(mm), nb_model_input(m), dims);
    if (ndim != 2 && ndim != 3)
        return nb_error_set(err, NB_EINVAL, "augmentation needs images: the model's input '%s' "
                            "has %d dimension%s per sample, expected [C, H, W] or [H, W]",
                            nb_node_name(nb_model_graph(mm), nb_model_input(m)), ndim,
                            ndim == 1 ? "" : "s");
    a->C = ndim == 3 ? dims[0] : 1;
    a->H = dims[ndim - 2];
    a->W = dims[ndim - 1];
    if (pad < 0 || pad > a->H || pad > a->W)
        return nb_error_set(err, NB_EINVAL, "augmentation: padding %d, expected 0 to the image's "
                            "side (%lld x %lld)", pad, (long long)a->H, (long long)a->W);
    a->pad = pad;
    a->flip = flip != 0;
    a->seed = seed;
    int64_t F = a->C * a->H * a->W;
    a->blank = calloc((size_t)F, sizeof *a->blank);
    a->scratch = malloc((size_t)F * sizeof *a->scratch);
    if (!a->blank || !a->scratch) {
        nb_augment_free(a);
        return nb_error_set(err, NB_ENOMEM, "augmentation: out of memory");
    }
    if (norm && norm->mode != NB_NORM_NONE && norm->size > 0 && F % norm->size == 0) {
        int64_t per = F / norm->size; /* as nb_dataset_gather: (b − m)/max(σ, eps) at b = 0 */
        for (int64_t f = 0; f < F; f++) {
            int64_t s = f / per;
            float d = norm->std[s] > norm->eps ? norm->std[s] : norm->eps;
            a->blank[f] = (0.0f - norm->mean[s]) * (d > 0 ? 1.0f / d : 1.0f);
        }
    }
    return NB_OK;
}

void nb_augment_free(nb_augment *a)
{
    if (!a)
        return;
    free(a->blank);
    free(a->scratch);
    a->blank = a->scratch = NULL;
}

void nb_augment_batch(nb_augment *a, float *x, int64_t n, int epoch, int64_t position)
{
    int64_t C = a->C, H = a->H, W = a->W, F = C * H * W;
    for (int64_t k = 0; k < n; k++) {
        nb_rng r;
        nb_rng_seed(&r, a->seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(epoch + 1)) ^
                            (0xd1b54a32d192ed03ull * (uint64_t)(position + k + 1)));
        int64_t dy = (int64_t)nb_rng_below(&r, (uint32_t)(2 * a->pad + 1)) - a->pad;
        int64_t dx = (int64_t)nb_rng_below(&r, (uint32_t)(2 * a->pad + 1)) - a->pad;
        int flip = a->flip && nb_rng_below(&r, 2);
        if (!dy && !dx && !flip)
            continue;
        float *in = x + k * F, *out = a->scratch;
        for (int64_t c = 0; c < C; c++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    int64_t sh = h + dy, sw = (flip ? W - 1 - w : w) + dx;
                    int64_t at = (c * H + h) * W + w;
                    out[at] = sh >= 0 && sh < H && sw >= 0 && sw < W ? in[(c * H + sh) * W + sw]
                                                                     : a->blank[at];
                }
        memcpy(in, out, (size_t)F * sizeof *in);
    }
}
