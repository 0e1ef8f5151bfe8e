/* Data preparation: splits, normalisation and gathering, epoch order (lecture §5.4, §5.5, §6).
 * Loading is in test_data.c. */
#include "nabla.h"
#include "check.h"
#include "data_util.h"

#include <stdlib.h>
#include <string.h>

/* ---- splits -------------------------------------------------------------------------- */

/* 103 samples whose first feature is their index; classes of 60, 30 and 13 samples. */
static void make_indexed(nb_dataset *ds, nb_dtype dtype)
{
    memset(ds, 0, sizeof *ds);
    ds->count = 103;
    ds->ndim = 1;
    ds->dims[0] = ds->features = 2;
    ds->dtype = dtype;
    ds->labels = malloc(103 * sizeof *ds->labels);
    if (dtype == NB_F32)
        ds->f32 = malloc(206 * sizeof *ds->f32);
    else
        ds->u8 = malloc(206);
    for (int i = 0; i < 103; i++) {
        ds->labels[i] = i < 60 ? 0 : i < 90 ? 1 : 2;
        if (dtype == NB_F32)
            ds->f32[2 * i] = (float)i, ds->f32[2 * i + 1] = (float)-i;
        else
            ds->u8[2 * i] = (unsigned char)i, ds->u8[2 * i + 1] = (unsigned char)(200 - i);
    }
    ds->classes = 3;
}

static int64_t sample_id(const nb_dataset *ds, int64_t i)
{
    return ds->dtype == NB_F32 ? (int64_t)ds->f32[2 * i] : ds->u8[2 * i];
}

static void test_split(void)
{
    nb_error err = {0};
    for (int dt = 0; dt < 2; dt++) {
        nb_dataset src, tr, va;
        make_indexed(&src, dt ? NB_F32 : NB_U8);
        CHECK_OK(nb_dataset_split(&src, 0.2, 7, &tr, &va, &err), &err);
        /* round(0.2 · 103) = 21 for validation, per class within 1 of 0.2·n_c. */
        CHECK(tr.count == 82 && va.count == 21);
        CHECK(src.count == 0 && !src.u8 && !src.f32 && !src.labels);
        CHECK(tr.classes == 3 && va.classes == 3 && tr.features == 2 && va.dtype == tr.dtype);
        int per[3] = {0}, seen[103] = {0};
        for (int64_t i = 0; i < va.count; i++) {
            per[va.labels[i]]++;
            seen[sample_id(&va, i)]++;
        }
        CHECK(per[0] == 12 && per[1] == 6 && per[2] == 3);
        for (int64_t i = 0; i < tr.count; i++)
            seen[sample_id(&tr, i)]++;
        int once = 1;
        for (int i = 0; i < 103; i++)
            once &= seen[i] == 1;
        CHECK(once);
        /* Labels travel with their samples, second features too, and order is kept. */
        int consistent = 1;
        for (int k = 0; k < 2; k++) {
            const nb_dataset *d = k ? &va : &tr;
            for (int64_t i = 0; i < d->count; i++) {
                int64_t id = sample_id(d, i);
                consistent &= d->labels[i] == (id < 60 ? 0 : id < 90 ? 1 : 2);
                consistent &= dt ? d->f32[2 * i + 1] == -(float)id : d->u8[2 * i + 1] == 200 - id;
                if (i)
                    consistent &= sample_id(d, i - 1) < id;
            }
        }
        CHECK(consistent);

        /* Same seed, same split; another seed, another split. */
        nb_dataset src2, tr2, va2, src3, tr3, va3;
        make_indexed(&src2, dt ? NB_F32 : NB_U8);
        make_indexed(&src3, dt ? NB_F32 : NB_U8);
        CHECK_OK(nb_dataset_split(&src2, 0.2, 7, &tr2, &va2, &err), &err);
        CHECK_OK(nb_dataset_split(&src3, 0.2, 8, &tr3, &va3, &err), &err);
        int same = 1, differ = 0;
        for (int64_t i = 0; i < 21; i++) {
            same &= sample_id(&va, i) == sample_id(&va2, i);
            differ |= sample_id(&va, i) != sample_id(&va3, i);
        }
        CHECK(same && differ);
        nb_dataset_free(&tr);
        nb_dataset_free(&va);
        nb_dataset_free(&tr2);
        nb_dataset_free(&va2);
        nb_dataset_free(&tr3);
        nb_dataset_free(&va3);
    }

    /* train may be src itself; unlabelled sets split by plain sampling. */
    nb_dataset ds, va;
    make_indexed(&ds, NB_F32);
    CHECK_OK(nb_dataset_split(&ds, 0.5, 3, &ds, &va, &err), &err);
    CHECK(ds.count == 51 && va.count == 52); /* round(51.5) = 52 */
    nb_dataset_free(&va);
    free(ds.labels);
    ds.labels = NULL;
    ds.classes = 0;
    CHECK_OK(nb_dataset_split(&ds, 0.1, 3, &ds, &va, &err), &err);
    CHECK(ds.count == 46 && va.count == 5 && !ds.labels && !va.labels);
    nb_dataset_free(&va);
    /* Fractions 0 and 1 leave one side empty. */
    CHECK_OK(nb_dataset_split(&ds, 0, 3, &ds, &va, &err), &err);
    CHECK(ds.count == 46 && va.count == 0 && !va.f32);
    nb_dataset_free(&va);
    /* A bad fraction is refused and src kept. */
    nb_dataset tr;
    CHECK(nb_dataset_split(&ds, 1.5, 3, &tr, &va, &err) == NB_EINVAL && ds.count == 46 &&
          ds.f32 != NULL);
    nb_dataset_free(&ds);
}

/* ---- normalisation and gathering ----------------------------------------------------- */

static void test_norm_gather(void)
{
    nb_error err = {0};
    /* 3 samples of [C=2, H=1, W=2]: channel 0 is features 0–1, channel 1 features 2–3. */
    static const float vals[12] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 1, 9};
    for (int dt = 0; dt < 2; dt++) {
        nb_dataset ds;
        memset(&ds, 0, sizeof ds);
        ds.count = 3;
        ds.ndim = 3;
        ds.dims[0] = 2, ds.dims[1] = 1, ds.dims[2] = 2;
        ds.features = 4;
        ds.dtype = dt ? NB_F32 : NB_U8;
        ds.labels = malloc(3 * sizeof *ds.labels);
        ds.labels[0] = 1, ds.labels[1] = 0, ds.labels[2] = 1;
        ds.classes = 2;
        if (dt) {
            ds.f32 = malloc(sizeof vals);
            memcpy(ds.f32, vals, sizeof vals);
        } else {
            ds.u8 = malloc(12);
            for (int i = 0; i < 12; i++)
                ds.u8[i] = (uint8_t)vals[i];
        }
        nb_norm nf, nc, ng, nn;
        CHECK_OK(nb_norm_fit(&nf, &ds, NB_NORM_FEATURE, 1e-5f, &err), &err);
        CHECK_OK(nb_norm_fit(&nc, &ds, NB_NORM_CHANNEL, 1e-5f, &err), &err);
        CHECK_OK(nb_norm_fit(&ng, &ds, NB_NORM_GLOBAL, 1e-5f, &err), &err);
        CHECK_OK(nb_norm_fit(&nn, &ds, NB_NORM_NONE, 1e-5f, &err), &err);
        CHECK(nf.size == 4 && nc.size == 2 && ng.size == 1 && nn.size == 0);
        CHECK(nf.features == 4 && nc.features == 4);
        /* Feature 0 holds 1, 5, 0: m = 2, σ² = (1 + 9 + 4)/3. */
        CHECK_NEAR(nf.mean[0], 2.0, 1e-6, 0);
        CHECK_NEAR(nf.std[0], sqrt(14.0 / 3.0), 1e-6, 0);
        /* Channel 0 holds 1, 2, 5, 6, 0, 0: m = 14/6, σ² = 66/6 − m². */
        CHECK_NEAR(nc.mean[0], 14.0 / 6.0, 1e-6, 0);
        CHECK_NEAR(nc.std[0], sqrt(11.0 - 196.0 / 36.0), 1e-6, 0);
        int64_t rows[3] = {0, 1, 2};
        double m, s;
        for (int f = 0; f < 4; f++) {
            hand_stats(&ds, rows, 3, f, f + 1, &m, &s);
            CHECK_NEAR(nf.mean[f], m, 1e-6, 1e-6);
            CHECK_NEAR(nf.std[f], s, 1e-6, 1e-6);
        }
        for (int c = 0; c < 2; c++) {
            hand_stats(&ds, rows, 3, 2 * c, 2 * c + 2, &m, &s);
            CHECK_NEAR(nc.mean[c], m, 1e-6, 1e-6);
            CHECK_NEAR(nc.std[c], s, 1e-6, 1e-6);
        }
        hand_stats(&ds, rows, 3, 0, 4, &m, &s);
        CHECK_NEAR(ng.mean[0], m, 1e-6, 1e-6);
        CHECK_NEAR(ng.std[0], s, 1e-6, 1e-6);

        /* Gather: x = (b − m)·(1/max(σ, ε)), labels alongside; repeated indices allowed. */
        int64_t idx[3] = {2, 0, 2};
        float x[12];
        int32_t y[3];
        const nb_norm *norms[3] = {&nf, &nc, &ng};
        for (int k = 0; k < 3; k++) {
            nb_dataset_gather(&ds, idx, 3, norms[k], x, y);
            CHECK(y[0] == 1 && y[1] == 1 && y[2] == 1);
            int64_t B = 4 / norms[k]->size;
            for (int i = 0; i < 3; i++)
                for (int f = 0; f < 4; f++) {
                    double b = vals[idx[i] * 4 + f], mu = norms[k]->mean[f / B];
                    double sd = norms[k]->std[f / B];
                    CHECK_NEAR(x[i * 4 + f], (b - mu) / (sd > 1e-5 ? sd : 1e-5), 1e-5, 1e-5);
                }
        }
        nb_dataset_gather(&ds, idx + 1, 2, NULL, x, NULL);
        CHECK(x[0] == 1 && x[3] == 4 && x[4] == 0 && x[7] == 9);
        nb_dataset_gather(&ds, idx + 1, 2, &nn, x, y);
        CHECK(x[0] == 1 && x[7] == 9 && y[0] == 1 && y[1] == 1);
        /* A constant feature: σ = 0, so the divisor is ε. */
        ds.dtype == NB_U8 ? (void)(ds.u8[1] = ds.u8[5] = ds.u8[9] = 3)
                          : (void)(ds.f32[1] = ds.f32[5] = ds.f32[9] = 3);
        nb_norm_free(&nf);
        CHECK_OK(nb_norm_fit(&nf, &ds, NB_NORM_FEATURE, 0.5f, &err), &err);
        CHECK(nf.std[1] == 0 && nf.mean[1] == 3);
        nb_dataset_gather(&ds, idx, 1, &nf, x, NULL);
        CHECK_NEAR(x[1], 0, 0, 0);
        nb_norm_free(&nf);
        CHECK(nb_norm_fit(&nf, &ds, NB_NORM_FEATURE, -1, &err) == NB_EINVAL && !nf.mean);

        nb_norm_free(&nf);
        nb_norm_free(&nc);
        nb_norm_free(&ng);
        nb_norm_free(&nn);
        nb_norm_free(NULL);
        nb_dataset_free(&ds);
    }

    /* Per channel of a flat vector or a single [H, W] image: one pair. */
    nb_dataset sp;
    nb_norm n1;
    CHECK_OK(nb_spirals(&sp, 20, 2, 0.1f, 3, &err), &err);
    CHECK_OK(nb_norm_fit(&n1, &sp, NB_NORM_CHANNEL, 1e-5f, &err), &err);
    CHECK(n1.size == 1);
    nb_norm_free(&n1);

    /* Statistics come from the training set only. */
    nb_dataset tr, va;
    CHECK_OK(nb_dataset_split(&sp, 0.25, 9, &tr, &va, &err), &err);
    CHECK_OK(nb_norm_fit(&n1, &tr, NB_NORM_FEATURE, 1e-5f, &err), &err);
    int64_t *rows = malloc((size_t)tr.count * sizeof *rows);
    for (int64_t i = 0; i < tr.count; i++)
        rows[i] = i;
    double m0, s0, mv, sv;
    hand_stats(&tr, rows, tr.count, 0, 1, &m0, &s0);
    CHECK_NEAR(n1.mean[0], m0, 1e-6, 1e-5);
    CHECK_NEAR(n1.std[0], s0, 1e-6, 1e-5);
    hand_stats(&va, rows, va.count, 0, 1, &mv, &sv); /* rows[i] = i covers va too */
    double mall = (m0 * (double)tr.count + mv * (double)va.count) / (double)(tr.count + va.count);
    CHECK(fabs(mall - m0) > 1e-4); /* the full-set mean would differ */
    free(rows);
    nb_norm_free(&n1);
    nb_dataset_free(&tr);
    nb_dataset_free(&va);

    /* Many features and channels: chunk boundaries of the gather (1,100 features). */
    nb_dataset big;
    memset(&big, 0, sizeof big);
    big.count = 5;
    big.ndim = 3;
    big.dims[0] = 4, big.dims[1] = 5, big.dims[2] = 55;
    big.features = 1100;
    big.dtype = NB_U8;
    big.u8 = malloc(5 * 1100);
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    for (int i = 0; i < 5500; i++)
        big.u8[i] = (uint8_t)nb_rng_below(&rng, 256);
    nb_norm nc, nf;
    CHECK_OK(nb_norm_fit(&nc, &big, NB_NORM_CHANNEL, 1e-5f, &err), &err);
    CHECK_OK(nb_norm_fit(&nf, &big, NB_NORM_FEATURE, 1e-5f, &err), &err);
    CHECK(nc.size == 4 && nf.size == 1100);
    float *x = malloc(3 * 1100 * sizeof *x);
    int64_t idx[3] = {4, 1, 4};
    int ok_c = 1, ok_f = 1;
    nb_dataset_gather(&big, idx, 3, &nc, x, NULL);
    for (int i = 0; i < 3; i++)
        for (int f = 0; f < 1100; f++) {
            int c = f / 275;
            double want = (big.u8[idx[i] * 1100 + f] - nc.mean[c]) / nc.std[c];
            ok_c &= fabs(x[i * 1100 + f] - want) < 1e-5 * (1 + fabs(want));
        }
    nb_dataset_gather(&big, idx, 3, &nf, x, NULL);
    for (int i = 0; i < 3; i++)
        for (int f = 0; f < 1100; f++) {
            double sd = nf.std[f] > 1e-5f ? nf.std[f] : 1e-5f;
            double want = (big.u8[idx[i] * 1100 + f] - nf.mean[f]) / sd;
            ok_f &= fabs(x[i * 1100 + f] - want) < 1e-5 * (1 + fabs(want));
        }
    CHECK(ok_c && ok_f);
    free(x);
    nb_norm_free(&nc);
    nb_norm_free(&nf);
    nb_dataset_free(&big);
}

/* ---- epoch order --------------------------------------------------------------------- */

static void test_order(void)
{
    /* 1,000 samples in classes of 500, 300 and 200, stored class by class. */
    nb_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.count = 1000;
    ds.ndim = 1;
    ds.dims[0] = ds.features = 1;
    ds.dtype = NB_F32;
    ds.f32 = calloc(1000, sizeof *ds.f32);
    ds.labels = malloc(1000 * sizeof *ds.labels);
    for (int i = 0; i < 1000; i++)
        ds.labels[i] = i < 500 ? 0 : i < 800 ? 1 : 2;
    ds.classes = 3;
    int64_t a[1000], b[1000], c[1000], scratch[1000];
    nb_rng r1, r2, r3;

    nb_rng_seed(&r1, 1);
    nb_dataset_order(&ds, NB_ORDER_SEQUENTIAL, 10, &r1, a, NULL);
    int ident = 1;
    for (int i = 0; i < 1000; i++)
        ident &= a[i] == i;
    CHECK(ident);

    const nb_order kinds[2] = {NB_ORDER_SHUFFLE, NB_ORDER_STRATIFIED};
    for (int k = 0; k < 2; k++) {
        nb_rng_seed(&r1, 77);
        nb_rng_seed(&r2, 77);
        nb_rng_seed(&r3, 78);
        nb_dataset_order(&ds, kinds[k], 10, &r1, a, scratch);
        nb_dataset_order(&ds, kinds[k], 10, &r2, b, scratch);
        nb_dataset_order(&ds, kinds[k], 10, &r3, c, scratch);
        CHECK(is_permutation(a, 1000) && is_permutation(c, 1000));
        CHECK(memcmp(a, b, sizeof a) == 0); /* deterministic per seed */
        CHECK(memcmp(a, c, sizeof a) != 0); /* differs across seeds */
        nb_dataset_order(&ds, kinds[k], 10, &r1, b, scratch);
        CHECK(is_permutation(b, 1000));
        CHECK(memcmp(a, b, sizeof a) != 0); /* and across epochs */
        int moved = 0;
        for (int i = 0; i < 1000; i++)
            moved += a[i] != i;
        CHECK(moved > 900);
    }

    /* Stratified: batches of 10 hold 5, 3 and 2 of the classes, give or take one. */
    nb_rng_seed(&r1, 5);
    for (int epoch = 0; epoch < 3; epoch++) {
        nb_dataset_order(&ds, NB_ORDER_STRATIFIED, 10, &r1, a, scratch);
        int ok = 1;
        for (int w = 0; w < 1000; w += 10) {
            int n[3] = {0};
            for (int i = w; i < w + 10; i++)
                n[ds.labels[a[i]]]++;
            ok &= abs(n[0] - 5) <= 1 && abs(n[1] - 3) <= 1 && abs(n[2] - 2) <= 1 && n[2] > 0;
        }
        CHECK_MSG(ok, "epoch %d: a batch of 10 is out of proportion", epoch);
    }
    /* A batch that does not divide the set: still a permutation, and every full batch
     * still covers the classes. */
    int min_count = 0;
    nb_dataset_order(&ds, NB_ORDER_STRATIFIED, 64, &r1, a, scratch);
    CHECK(is_permutation(a, 1000) && batches_cover_classes(&ds, a, 64, &min_count));
    CHECK(min_count >= 11); /* 64 · 0.2 = 12.8 of class 2 per batch */
    /* A plain shuffle is not stratified: some batch of 5 misses a class. */
    nb_dataset_order(&ds, NB_ORDER_SHUFFLE, 5, &r1, a, NULL);
    CHECK(!batches_cover_classes(&ds, a, 5, &min_count));
    /* Balanced classes are dealt in rounds: batches as small as the number of classes
     * hold every class, and so does any batch size above it. */
    nb_dataset bal = ds;
    bal.count = 900;
    int32_t balanced[900];
    for (int i = 0; i < 900; i++)
        balanced[i] = i % 3;
    bal.labels = balanced;
    for (int64_t batch = 3; batch <= 8; batch++) {
        nb_dataset_order(&bal, NB_ORDER_STRATIFIED, batch, &r1, a, scratch);
        CHECK_MSG(is_permutation(a, 900) && batches_cover_classes(&bal, a, batch, &min_count),
                  "batch %lld", (long long)batch);
    }
    /* batch 0 means the whole epoch is one window. */
    nb_dataset_order(&ds, NB_ORDER_STRATIFIED, 0, &r1, a, scratch);
    CHECK(is_permutation(a, 1000));

    /* Unlabelled: stratified falls back to a shuffle. */
    int32_t *labels = ds.labels;
    ds.labels = NULL;
    nb_dataset_order(&ds, NB_ORDER_STRATIFIED, 10, &r1, a, scratch);
    CHECK(is_permutation(a, 1000));
    ds.labels = labels;
    /* One sample. */
    ds.count = 1;
    nb_dataset_order(&ds, NB_ORDER_STRATIFIED, 10, &r1, a, scratch);
    CHECK(a[0] == 0);
    ds.count = 1000;
    nb_dataset_free(&ds);
}

int main(void)
{
    test_split();
    test_norm_gather();
    test_order();
    return check_finish("test_data_prep");
}
