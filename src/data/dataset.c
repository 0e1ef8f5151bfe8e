/* Data sets in memory: freeing, train/validation splits, minibatch gathering (with the input
 * normalisation, §5.5, applied) and the order of samples in an epoch (§5.4). The
 * normalisation's statistics: src/data/normalize.c; regression targets' standardisation:
 * src/data/targets.c. */
#include "data/labels.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void nb_dataset_free(nb_dataset *ds)
{
    if (!ds)
        return;
    free(ds->u8);
    free(ds->f32);
    free(ds->labels);
    free(ds->targets);
    free(ds->class_names);
    free(ds->target_names);
    memset(ds, 0, sizeof *ds);
}

/* Uniform integer in [0, n). nb_rng_below covers n < 2^32; beyond, reject the top partial
 * copy of [0, n) in [0, 2^64) so that r % n stays unbiased. */
static uint64_t below(nb_rng *rng, uint64_t n)
{
    if (n <= UINT32_MAX)
        return nb_rng_below(rng, (uint32_t)n);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, r;
    do
        r = nb_rng_next(rng);
    while (r >= limit);
    return r % n;
}

/* Fisher–Yates: walking down, a[i] swaps with a uniformly chosen a[j], j ≤ i, which makes
 * every permutation equally likely. */
static void shuffle(int64_t *a, int64_t n, nb_rng *rng)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)below(rng, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

static size_t sample_bytes(const nb_dataset *ds)
{
    return (size_t)ds->features * (ds->dtype == NB_U8 ? sizeof(uint8_t) : sizeof(float));
}

/* ---------------------------------------------------------------------------------------
 * Splits
 * ------------------------------------------------------------------------------------- */

/* An empty data set shaped like src with room for `count` samples. */
static nb_status subset_alloc(nb_dataset *out, const nb_dataset *src, int64_t count,
                              nb_error *err)
{
    memset(out, 0, sizeof *out);
    out->ndim = src->ndim;
    memcpy(out->dims, src->dims, sizeof out->dims);
    out->features = src->features;
    out->dtype = src->dtype;
    out->classes = src->classes;
    out->target_count = src->target_count;
    nb_status st = NB_OK;
    if ((src->class_names && !(out->class_names = names_pack((const char *const *)src->class_names,
                                                             src->classes))) ||
        (src->target_names &&
         !(out->target_names = names_pack((const char *const *)src->target_names,
                                          src->target_count))))
        st = NB_ENOMEM;
    if (count == 0 || st) {
        if (st)
            nb_dataset_free(out);
        return st ? nb_error_set(err, st, "splitting the data: out of memory for names") : NB_OK;
    }
    void *data = malloc((size_t)count * sample_bytes(src));
    int32_t *labels = src->labels ? malloc((size_t)count * sizeof *labels) : NULL;
    float *targets = src->targets ? malloc((size_t)(count * src->target_count) * sizeof *targets)
                                  : NULL;
    if (!data || (src->labels && !labels) || (src->targets && !targets)) {
        free(data);
        free(labels);
        free(targets);
        nb_dataset_free(out);
        return nb_error_set(err, NB_ENOMEM, "splitting the data: out of memory for %lld samples",
                            (long long)count);
    }
    if (src->dtype == NB_U8)
        out->u8 = data;
    else
        out->f32 = data;
    out->labels = labels;
    out->targets = targets;
    out->count = count;
    return NB_OK;
}

int nb_dataset_valid(const nb_dataset *ds)
{
    return ds->count > 0 && ds->features > 0 &&
           (ds->dtype == NB_U8 ? ds->u8 != NULL : ds->dtype == NB_F32 && ds->f32 != NULL);
}

/* Stratified split: in each class c of n_c samples, k_c are drawn for validation, with
 * k_c = round(f·C_c) − round(f·C_{c−1}) where C_c counts the samples of classes ≤ c. These
 * differences sum to round(f·n) exactly and each is within 1 of f·n_c (and in [0, n_c]
 * because rounding is monotone and commutes with adding integers). Within a class the k_c
 * are the first k_c of a partial Fisher–Yates shuffle. Both parts keep the original order. */
nb_status nb_dataset_split(nb_dataset *src, double val_fraction, uint64_t seed,
                           nb_dataset *train, nb_dataset *val, nb_error *err)
{
    if (!src || !train || !val || train == val)
        return nb_error_set(err, NB_EINVAL,
                            "splitting the data: a source and two distinct results are required");
    if (!nb_dataset_valid(src))
        return nb_error_set(err, NB_EINVAL, "splitting the data: the data set is empty");
    if (!(val_fraction >= 0 && val_fraction <= 1))
        return nb_error_set(err, NB_EINVAL,
                            "splitting the data: validation fraction %g is outside [0, 1]",
                            val_fraction);
    const int64_t n = src->count;
    int classes = src->labels ? src->classes : 1;
    if (src->labels) {
        for (int64_t i = 0; i < n; i++)
            if (src->labels[i] < 0 || src->labels[i] >= classes)
                return nb_error_set(err, NB_EINVAL,
                                    "splitting the data: label %d of sample %lld is outside "
                                    "0..%d (classes = %d)",
                                    (int)src->labels[i], (long long)i, classes - 1, classes);
    }

    nb_dataset t, v;
    memset(&t, 0, sizeof t);
    memset(&v, 0, sizeof v);
    nb_status st = NB_OK;
    int64_t *start = calloc((size_t)classes + 1, sizeof *start);
    int64_t *grouped = malloc((size_t)n * sizeof *grouped);
    unsigned char *to_val = n > 0 ? calloc((size_t)n, 1) : NULL;
    if (!start || !grouped || !to_val) {
        st = nb_error_set(err, NB_ENOMEM, "splitting the data: out of memory for %lld samples",
                          (long long)n);
        goto done;
    }
    /* Counting sort by class: class c occupies grouped[start[c] .. start[c+1]). */
    for (int64_t i = 0; i < n; i++)
        start[(src->labels ? src->labels[i] : 0) + 1]++;
    for (int c = 0; c < classes; c++)
        start[c + 1] += start[c];
    for (int64_t i = 0; i < n; i++) {
        int c = src->labels ? src->labels[i] : 0;
        grouped[start[c]++] = i;
    }
    for (int c = classes; c > 0; c--) /* undo the shift the placement loop caused */
        start[c] = start[c - 1];
    start[0] = 0;

    nb_rng rng;
    nb_rng_seed(&rng, seed);
    int64_t n_val = 0;
    for (int c = 0; c < classes; c++) {
        int64_t lo = start[c], nc = start[c + 1] - lo;
        int64_t k = (int64_t)floor(val_fraction * (double)start[c + 1] + 0.5) -
                    (int64_t)floor(val_fraction * (double)lo + 0.5);
        for (int64_t i = 0; i < k; i++) {
            int64_t j = i + (int64_t)below(&rng, (uint64_t)(nc - i));
            int64_t tmp = grouped[lo + i];
            grouped[lo + i] = grouped[lo + j];
            grouped[lo + j] = tmp;
            to_val[grouped[lo + i]] = 1;
        }
        n_val += k;
    }

    if ((st = subset_alloc(&t, src, n - n_val, err)) || (st = subset_alloc(&v, src, n_val, err)))
        goto done;
    size_t bytes = sample_bytes(src);
    const unsigned char *data = src->dtype == NB_U8 ? (const void *)src->u8 : (const void *)src->f32;
    int64_t it = 0, iv = 0;
    for (int64_t i = 0; i < n; i++) {
        nb_dataset *d = to_val[i] ? &v : &t;
        int64_t *k = to_val[i] ? &iv : &it;
        unsigned char *dst = src->dtype == NB_U8 ? (void *)d->u8 : (void *)d->f32;
        memcpy(dst + (size_t)*k * bytes, data + (size_t)i * bytes, bytes);
        if (src->labels)
            d->labels[*k] = src->labels[i];
        if (src->targets)
            memcpy(d->targets + *k * src->target_count, src->targets + i * src->target_count,
                   (size_t)src->target_count * sizeof *d->targets);
        (*k)++;
    }
    /* Free src first: train or val may be src itself. */
    nb_dataset_free(src);
    *train = t;
    *val = v;
    memset(&t, 0, sizeof t);
    memset(&v, 0, sizeof v);
done:
    if (st) {
        if (train != src)
            memset(train, 0, sizeof *train);
        if (val != src)
            memset(val, 0, sizeof *val);
    }
    nb_dataset_free(&t);
    nb_dataset_free(&v);
    free(start);
    free(grouped);
    free(to_val);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Gathering a minibatch
 *
 * x[i, f] = (b[idx[i], f] − m_s) · (1 / max(σ_s, ε)) with s the slot of feature f. The
 * reciprocals are computed for a chunk of GATHER_CHUNK features at a time into arrays on the
 * stack and reused across all n samples, so the inner loop is a convert, a subtract and a
 * multiply that the compiler vectorises, with no division and no allocation. When
 * max(σ, ε) = 0 (a constant feature with ε = 0) the scale is 1: b − m is then 0 on the
 * training set.
 * ------------------------------------------------------------------------------------- */

#define GATHER_CHUNK 512
/* Inner loops run in blocks of a constant 16 elements plus a tail: GCC's -O2 vectoriser
 * (cost model "very cheap") only takes loops whose trip count needs no epilogue. */
#define GATHER_BLOCK 16

static void scale_u8(float *restrict out, const uint8_t *restrict b, const float *restrict m,
                     const float *restrict inv, int64_t w)
{
    int64_t k = 0;
    for (; k + GATHER_BLOCK <= w; k += GATHER_BLOCK)
        for (int j = 0; j < GATHER_BLOCK; j++)
            out[k + j] = ((float)b[k + j] - m[k + j]) * inv[k + j];
    for (; k < w; k++)
        out[k] = ((float)b[k] - m[k]) * inv[k];
}

static void scale_f32(float *restrict out, const float *restrict b, const float *restrict m,
                      const float *restrict inv, int64_t w)
{
    int64_t k = 0;
    for (; k + GATHER_BLOCK <= w; k += GATHER_BLOCK)
        for (int j = 0; j < GATHER_BLOCK; j++)
            out[k + j] = (b[k + j] - m[k + j]) * inv[k + j];
    for (; k < w; k++)
        out[k] = (b[k] - m[k]) * inv[k];
}

/* Samples are gathered in random order from a set larger than the caches, so each row starts
 * with a miss to memory; asking for the row PREFETCH_AHEAD samples ahead overlaps those
 * misses with the conversion of the current one. */
#define PREFETCH_AHEAD 4

static void prefetch(const void *p, size_t bytes)
{
#if defined(__GNUC__)
    for (size_t k = 0; k < bytes; k += 64)
        __builtin_prefetch((const char *)p + k);
#else
    (void)p;
    (void)bytes;
#endif
}

static void convert_u8(float *restrict out, const uint8_t *restrict b, int64_t w)
{
    int64_t k = 0;
    for (; k + GATHER_BLOCK <= w; k += GATHER_BLOCK)
        for (int j = 0; j < GATHER_BLOCK; j++)
            out[k + j] = (float)b[k + j];
    for (; k < w; k++)
        out[k] = (float)b[k];
}

void nb_dataset_gather(const nb_dataset *ds, const int64_t *idx, int64_t n,
                       const nb_norm *norm, float *x, int32_t *y)
{
    const int64_t F = ds->features;
    if (y && ds->labels)
        for (int64_t i = 0; i < n; i++) {
            assert(idx[i] >= 0 && idx[i] < ds->count);
            y[i] = ds->labels[idx[i]];
        }
    if (!x)
        return;
    if (!norm || norm->mode == NB_NORM_NONE || norm->size < 1) {
        for (int64_t i = 0; i < n; i++) {
            assert(idx[i] >= 0 && idx[i] < ds->count);
            if (i + PREFETCH_AHEAD < n)
                prefetch(ds->dtype == NB_U8 ? (const void *)(ds->u8 + (size_t)(idx[i + PREFETCH_AHEAD] * F))
                                            : (const void *)(ds->f32 + (size_t)(idx[i + PREFETCH_AHEAD] * F)),
                         sample_bytes(ds));
            if (ds->dtype == NB_U8)
                convert_u8(x + (size_t)(i * F), ds->u8 + (size_t)(idx[i] * F), F);
            else
                memcpy(x + (size_t)(i * F), ds->f32 + (size_t)(idx[i] * F), (size_t)F * sizeof *x);
        }
        return;
    }
    assert(norm->features == F && F % norm->size == 0);
    const int64_t B = F / norm->size;
    float m[GATHER_CHUNK], inv[GATHER_CHUNK];
    for (int64_t f0 = 0; f0 < F; f0 += GATHER_CHUNK) {
        const int64_t w = F - f0 < GATHER_CHUNK ? F - f0 : GATHER_CHUNK;
        for (int64_t k = 0; k < w;) { /* slot by slot: one division per slot, not per feature */
            int64_t s = (f0 + k) / B, end = (s + 1) * B - f0 < w ? (s + 1) * B - f0 : w;
            float d = norm->std[s] > norm->eps ? norm->std[s] : norm->eps;
            float mean = norm->mean[s], scale = d > 0 ? 1.0f / d : 1.0f;
            for (; k < end; k++) {
                m[k] = mean;
                inv[k] = scale;
            }
        }
        for (int64_t i = 0; i < n; i++) {
            assert(idx[i] >= 0 && idx[i] < ds->count);
            if (i + PREFETCH_AHEAD < n) {
                size_t ahead = (size_t)(idx[i + PREFETCH_AHEAD] * F + f0);
                if (ds->dtype == NB_U8)
                    prefetch(ds->u8 + ahead, (size_t)w);
                else
                    prefetch(ds->f32 + ahead, (size_t)w * sizeof(float));
            }
            if (ds->dtype == NB_U8)
                scale_u8(x + (size_t)(i * F + f0), ds->u8 + (size_t)(idx[i] * F + f0), m, inv, w);
            else
                scale_f32(x + (size_t)(i * F + f0), ds->f32 + (size_t)(idx[i] * F + f0), m, inv,
                          w);
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Epoch order (§5.4)
 *
 * Stratified order, so that every minibatch holds every class in proportion:
 *   1. shuffle all indices (Fisher–Yates), then sort them by class with a stable radix sort:
 *      each class becomes a run in random order;
 *   2. give the r-th sample of class c (n_c samples) the key (r + u_c)/n_c with one random
 *      phase u_c ∈ [0, 1) per class: each class's keys are spread evenly over [0, 1) at
 *      spacing 1/n_c;
 *   3. sort all samples by key (stable radix sort on 32 bits of key packed above the 31-bit
 *      index). This deals the classes round-robin in proportion to their sizes. A window of
 *      B consecutive positions spans a key interval of length Δ with B = Σ_c n_c·Δ ± K (K
 *      classes), and holds n_c·Δ ± 1 samples of class c, so at least n_c·(B − K)/n − 1 of
 *      them: every class is in every full minibatch once B > K + n/n_c. Balanced classes
 *      do better: the phases order each round the same way, so the deal is periodic with
 *      period K and any B ≥ K consecutive positions hold every class;
 *   4. shuffle inside each window [kB, (k+1)B) so that positions within a batch carry no
 *      pattern.
 * Cost per epoch: O(n) with five or so radix passes; scratch holds the second buffer.
 * ------------------------------------------------------------------------------------- */

#define INDEX_BITS 31
#define INDEX_MASK (((int64_t)1 << INDEX_BITS) - 1)

/* One stable counting-sort pass on bits [shift, shift+8) of each sample's label. */
static void radix_by_label(const int64_t *in, int64_t *out, int64_t n, const int32_t *labels,
                           int shift)
{
    int64_t count[257] = {0};
    for (int64_t i = 0; i < n; i++)
        count[((uint32_t)labels[in[i]] >> shift & 255u) + 1]++;
    for (int d = 0; d < 256; d++)
        count[d + 1] += count[d];
    for (int64_t i = 0; i < n; i++)
        out[count[(uint32_t)labels[in[i]] >> shift & 255u]++] = in[i];
}

/* One stable counting-sort pass on bits [shift, shift+8) of the packed values. */
static void radix_by_bits(const int64_t *in, int64_t *out, int64_t n, int shift)
{
    int64_t count[257] = {0};
    for (int64_t i = 0; i < n; i++)
        count[((uint64_t)in[i] >> shift & 255u) + 1]++;
    for (int d = 0; d < 256; d++)
        count[d + 1] += count[d];
    for (int64_t i = 0; i < n; i++)
        out[count[(uint64_t)in[i] >> shift & 255u]++] = in[i];
}

static void stratified(const nb_dataset *ds, int64_t batch, nb_rng *rng, int64_t *order,
                       int64_t *scratch)
{
    const int64_t n = ds->count;
    int64_t *a = order, *b = scratch, *t;
    shuffle(a, n, rng);

    uint32_t top = 0;
    for (int64_t i = 0; i < n; i++)
        if ((uint32_t)ds->labels[i] > top)
            top = (uint32_t)ds->labels[i];
    for (int shift = 0; shift < 32 && (top >> shift) != 0; shift += 8) {
        radix_by_label(a, b, n, ds->labels, shift);
        t = a, a = b, b = t;
    }

    for (int64_t lo = 0; lo < n;) {
        int32_t c = ds->labels[a[lo]];
        int64_t hi = lo + 1;
        while (hi < n && ds->labels[a[hi]] == c)
            hi++;
        double nc = (double)(hi - lo), u = nb_rng_uniform(rng);
        for (int64_t r = 0; r < hi - lo; r++) {
            /* key ∈ [0, 1) quantised to 32 bits; the clamp guards rounding up to 1. */
            double key = ((double)r + u) / nc * 4294967296.0;
            uint64_t q = key < 4294967295.0 ? (uint64_t)key : 4294967295u;
            a[lo + r] = (int64_t)(q << INDEX_BITS) | a[lo + r];
        }
        lo = hi;
    }
    for (int shift = INDEX_BITS; shift < INDEX_BITS + 32; shift += 8) {
        radix_by_bits(a, b, n, shift);
        t = a, a = b, b = t;
    }
    for (int64_t i = 0; i < n; i++)
        order[i] = a[i] & INDEX_MASK;

    for (int64_t w = 0; w < n; w += batch)
        shuffle(order + w, n - w < batch ? n - w : batch, rng);
}

void nb_dataset_order(const nb_dataset *ds, nb_order kind, int64_t batch, nb_rng *rng,
                      int64_t *order, int64_t *scratch)
{
    const int64_t n = ds->count;
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    if (kind == NB_ORDER_SEQUENTIAL || n < 2)
        return;
    if (batch < 1 || batch > n)
        batch = n;
    /* Without labels there is nothing to stratify; the index packing needs n ≤ 2^31. */
    assert(kind != NB_ORDER_STRATIFIED || !ds->labels || scratch);
    if (kind == NB_ORDER_STRATIFIED && ds->labels && scratch && n <= INDEX_MASK + 1)
        stratified(ds, batch, rng, order, scratch);
    else
        shuffle(order, n, rng);
}
