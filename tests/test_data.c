/* Data loading: IDX (Fashion-MNIST and plain files) and CSV, and the spirals generator.
 * Splits, normalisation, gathering and epoch order are in test_data_prep.c.
 * Runs from the repository root; uses Fashion-MNIST from /usr/share/datasets/fashion-mnist
 * when present (skipped with a message otherwise). */
#include "nabla.h"
#include "check.h"
#include "data_util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static char tmpdir[64];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int file_exists(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp)
        fclose(fp);
    return fp != NULL;
}

static void tmp_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
}

static int write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    size_t w = fwrite(data, 1, n, fp);
    return fclose(fp) == 0 && w == n ? 0 : -1;
}

/* ---- Fashion-MNIST ------------------------------------------------------------------- */

static void test_fashion_mnist(void)
{
    const char *train_img = FMNIST "train-images-idx3-ubyte.gz";
    const char *train_lab = FMNIST "train-labels-idx1-ubyte.gz";
    const char *test_img = FMNIST "t10k-images-idx3-ubyte.gz";
    const char *test_lab = FMNIST "t10k-labels-idx1-ubyte.gz";
    if (!file_exists(train_img) || !file_exists(train_lab) || !file_exists(test_img) ||
        !file_exists(test_lab)) {
        check_skip("Fashion-MNIST: files not found in " FMNIST
                   " (apt-get install dataset-fashion-mnist)");
        return;
    }
    nb_dataset train, test;
    nb_error err = {0};
    double t0 = now();
    CHECK_OK(nb_idx_load(&train, train_img, train_lab, &err), &err);
    double t1 = now();
    printf("Fashion-MNIST training set (60000 images + labels, gzipped): loaded in %.3f s\n",
           t1 - t0);
    /* idx3 images are stored as per-sample dims [rows, cols] = [28, 28], ndim 2. */
    CHECK(train.count == 60000 && train.ndim == 2 && train.dims[0] == 28 &&
          train.dims[1] == 28 && train.features == 784);
    CHECK(train.dtype == NB_U8 && train.u8 && !train.f32 && train.labels);
    CHECK(train.classes == 10);
    int64_t hist[10] = {0};
    for (int64_t i = 0; i < train.count; i++)
        if (train.labels[i] >= 0 && train.labels[i] < 10)
            hist[train.labels[i]]++;
    for (int c = 0; c < 10; c++)
        CHECK_MSG(hist[c] == 6000, "class %d: %lld training samples", c, (long long)hist[c]);
    /* First labels and pixel sums, from Python's gzip module. */
    CHECK(train.labels[0] == 9 && train.labels[1] == 0 && train.labels[3] == 3);
    uint64_t sum0 = 0, sum = 0;
    for (int f = 0; f < 784; f++)
        sum0 += train.u8[f];
    for (int64_t k = 0; k < train.count * 784; k++)
        sum += train.u8[k];
    CHECK(sum0 == 76247 && sum == 3431114169u);

    CHECK_OK(nb_idx_load(&test, test_img, test_lab, &err), &err);
    CHECK(test.count == 10000 && test.features == 784 && test.classes == 10);
    int64_t thist[10] = {0};
    for (int64_t i = 0; i < test.count; i++)
        thist[test.labels[i]]++;
    for (int c = 0; c < 10; c++)
        CHECK(thist[c] == 1000);
    CHECK(test.labels[0] == 9 && test.labels[1] == 2);

    /* Global statistics against a hand computation; per channel of a [28, 28] image is the
     * same single pair. */
    nb_norm norm, chan;
    CHECK_OK(nb_norm_fit(&norm, &train, NB_NORM_GLOBAL, 1e-6f, &err), &err);
    CHECK_OK(nb_norm_fit(&chan, &train, NB_NORM_CHANNEL, 1e-6f, &err), &err);
    double mean, std;
    int64_t *all = malloc(60000 * sizeof *all);
    for (int64_t i = 0; i < 60000; i++)
        all[i] = i;
    hand_stats(&train, all, 60000, 0, 784, &mean, &std);
    CHECK_NEAR(mean, 3431114169.0 / (60000.0 * 784.0), 1e-9, 0);
    CHECK(norm.size == 1 && chan.size == 1);
    CHECK_NEAR(norm.mean[0], mean, 0, 1e-6);
    CHECK_NEAR(norm.std[0], std, 0, 1e-6);
    CHECK_NEAR(chan.std[0], std, 0, 1e-6);
    nb_norm_free(&chan);

    /* Gathering one epoch in minibatches of 128, normalised. */
    float *x = malloc(128 * 784 * sizeof *x);
    int32_t *y = malloc(128 * sizeof *y);
    int64_t *order = malloc(60000 * sizeof *order), *scratch = malloc(60000 * sizeof *scratch);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    t0 = now();
    nb_dataset_order(&train, NB_ORDER_STRATIFIED, 128, &rng, order, scratch);
    t1 = now();
    double acc = 0;
    for (int64_t b = 0; b < 60000; b += 128) {
        int64_t n = 60000 - b < 128 ? 60000 - b : 128;
        nb_dataset_gather(&train, order + b, n, &norm, x, y);
        acc += x[0];
    }
    double t2 = now();
    printf("Fashion-MNIST: stratified order %.1f ms, gathering one normalised epoch %.1f ms "
           "(checksum %.3g)\n",
           1e3 * (t1 - t0), 1e3 * (t2 - t1), acc);
    CHECK(is_permutation(order, 60000));
    int min_count = 0;
    CHECK(batches_cover_classes(&train, order, 128, &min_count));
    CHECK_MSG(min_count >= 11, "a class appears only %d times in a batch of 128", min_count);
    /* The last gathered batch, element by element. */
    int64_t last = 60000 - 60000 % 128;
    for (int64_t i = 0; i < 60000 - last; i += 7)
        for (int f = 0; f < 784; f += 13) {
            double want = (train.u8[order[last + i] * 784 + f] - norm.mean[0]) / norm.std[0];
            CHECK_NEAR(x[i * 784 + f], want, 1e-5, 1e-5);
        }

    /* A stratified 1/6 validation split: exactly 1000 of every class. */
    nb_dataset tr, va;
    CHECK_OK(nb_dataset_split(&train, 1.0 / 6.0, 5, &tr, &va, &err), &err);
    CHECK(tr.count == 50000 && va.count == 10000 && train.count == 0 && !train.u8);
    int64_t vh[10] = {0};
    for (int64_t i = 0; i < va.count; i++)
        vh[va.labels[i]]++;
    for (int c = 0; c < 10; c++)
        CHECK(vh[c] == 1000);

    free(all);
    free(x);
    free(y);
    free(order);
    free(scratch);
    nb_norm_free(&norm);
    nb_dataset_free(&tr);
    nb_dataset_free(&va);
    nb_dataset_free(&train);
    nb_dataset_free(&test);
}

/* ---- plain IDX files ----------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void test_plain_idx(void)
{
    /* 3 images of 2 × 4 and their labels, uncompressed. */
    unsigned char img[16 + 24], lab[8 + 3];
    memcpy(img, "\0\0\x08\x03", 4);
    put_be32(img + 4, 3);
    put_be32(img + 8, 2);
    put_be32(img + 12, 4);
    for (int i = 0; i < 24; i++)
        img[16 + i] = (unsigned char)(10 * i + 1);
    memcpy(lab, "\0\0\x08\x01", 4);
    put_be32(lab + 4, 3);
    lab[8] = 4, lab[9] = 0, lab[10] = 2;
    char ip[256], lp[256], mp[256];
    tmp_path(ip, sizeof ip, "plain-images.idx3");
    tmp_path(lp, sizeof lp, "plain-labels.idx1");
    tmp_path(mp, sizeof mp, "plain-matrix.idx2");
    CHECK(write_file(ip, img, sizeof img) == 0 && write_file(lp, lab, sizeof lab) == 0);

    nb_dataset ds;
    nb_error err = {0};
    CHECK_OK(nb_idx_load(&ds, ip, lp, &err), &err);
    CHECK(ds.count == 3 && ds.ndim == 2 && ds.dims[0] == 2 && ds.dims[1] == 4 &&
          ds.features == 8 && ds.dtype == NB_U8);
    CHECK(ds.u8 && memcmp(ds.u8, img + 16, 24) == 0);
    CHECK(ds.labels && ds.labels[0] == 4 && ds.labels[1] == 0 && ds.labels[2] == 2);
    CHECK(ds.classes == 5);
    nb_dataset_free(&ds);
    CHECK(ds.count == 0 && !ds.u8 && !ds.labels);
    nb_dataset_free(&ds); /* twice is harmless */
    nb_dataset_free(NULL);

    /* Images without labels. */
    CHECK_OK(nb_idx_load(&ds, ip, NULL, &err), &err);
    CHECK(ds.count == 3 && !ds.labels && ds.classes == 0);
    nb_dataset_free(&ds);

    /* idx2: [count, features] becomes dims = [features]. */
    unsigned char mat[12 + 6];
    memcpy(mat, "\0\0\x08\x02", 4);
    put_be32(mat + 4, 2);
    put_be32(mat + 8, 3);
    for (int i = 0; i < 6; i++)
        mat[12 + i] = (unsigned char)(255 - i);
    CHECK(write_file(mp, mat, sizeof mat) == 0);
    CHECK_OK(nb_idx_load(&ds, mp, NULL, &err), &err);
    CHECK(ds.count == 2 && ds.ndim == 1 && ds.dims[0] == 3 && ds.features == 3 &&
          ds.u8[5] == 250);
    nb_dataset_free(&ds);
    unlink(ip);
    unlink(lp);
    unlink(mp);
}

/* ---- CSV ----------------------------------------------------------------------------- */

static void test_csv(void)
{
    char path[256];
    nb_dataset ds;
    nb_error err = {0};
    tmp_path(path, sizeof path, "good.csv");
    /* A byte-order mark, quoted names (one with a doubled quote), spaces, CRLF and LF line
     * ends, a blank line, and no newline at the end. */
    const char *text = "\xEF\xBB\xBF\"x 1\", \"lab\"\"el\" ,y\r\n"
                       "1.5,2,-3\r\n"
                       "\r\n"
                       "4,0,5e-1\n"
                       "  -0.25 , 1 , 7";
    CHECK(write_file(path, text, strlen(text)) == 0);

    const char *by[] = {"lab\"el", "1"};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(nb_csv_load(&ds, path, by[k], &err), &err);
        CHECK(ds.count == 3 && ds.ndim == 1 && ds.dims[0] == 2 && ds.features == 2 &&
              ds.dtype == NB_F32 && ds.f32 && !ds.u8);
        CHECK(ds.labels && ds.labels[0] == 2 && ds.labels[1] == 0 && ds.labels[2] == 1);
        CHECK(ds.classes == 3);
        const float want[] = {1.5f, -3, 4, 0.5f, -0.25f, 7};
        for (int i = 0; i < 6; i++)
            CHECK(ds.f32 && ds.f32[i] == want[i]);
        nb_dataset_free(&ds);
    }
    /* No label column: every column is a feature. */
    CHECK_OK(nb_csv_load(&ds, path, NULL, &err), &err);
    CHECK(ds.count == 3 && ds.features == 3 && !ds.labels && ds.classes == 0 &&
          ds.f32[1] == 2 && ds.f32[8] == 7);
    nb_dataset_free(&ds);
    /* A label column that holds no integers. */
    CHECK(nb_csv_load(&ds, path, "2", &err) == NB_EFORMAT && strstr(err.msg, "line 2") &&
          strstr(err.msg, "class label") && strstr(err.msg, "\"-3\""));
    /* Errors name the file, line and field. */
    CHECK(nb_csv_load(&ds, path, "3", &err) == NB_EFORMAT && strstr(err.msg, "good.csv") &&
          strstr(err.msg, "out of range"));
    CHECK(nb_csv_load(&ds, path, "z", &err) == NB_EFORMAT &&
          strstr(err.msg, "no column named \"z\"") && strstr(err.msg, "\"x 1\""));
    CHECK(nb_csv_load(&ds, path, "", &err) == NB_EINVAL);
    nb_dataset_free(&ds);

    /* Label column first, by index, and a header with an empty name. */
    tmp_path(path, sizeof path, "first.csv");
    const char *first = "lab,,a\n1,2,3\n4,-3,0\n";
    CHECK(write_file(path, first, strlen(first)) == 0);
    CHECK_OK(nb_csv_load(&ds, path, "0", &err), &err);
    CHECK(ds.count == 2 && ds.features == 2 && ds.labels && ds.labels[0] == 1 &&
          ds.labels[1] == 4 && ds.classes == 5 && ds.f32[0] == 2 && ds.f32[3] == 0);
    nb_dataset_free(&ds);
    unlink(path);

    tmp_path(path, sizeof path, "bad.csv");
    const char *bad = "a,b\n1,2\n\n3,x\n";
    CHECK(write_file(path, bad, strlen(bad)) == 0);
    CHECK(nb_csv_load(&ds, path, NULL, &err) == NB_EFORMAT && strstr(err.msg, "bad.csv") &&
          strstr(err.msg, "line 4, field 2 (\"b\")") && strstr(err.msg, "\"x\""));
    CHECK(ds.count == 0 && !ds.f32);
    unlink(path);

    /* A 3,000-column file: lines of ~15 KB, so no fixed line buffer can be hiding. */
    size_t cap = 1 << 18, len = 0;
    char *big = malloc(cap);
    for (int c = 0; c < 3000; c++)
        len += (size_t)snprintf(big + len, cap - len, "column%d,", c);
    len += (size_t)snprintf(big + len, cap - len, "label\n");
    for (int r = 0; r < 2; r++) {
        for (int c = 0; c < 3000; c++)
            len += (size_t)snprintf(big + len, cap - len, "%d.25,", r * 3000 + c);
        len += (size_t)snprintf(big + len, cap - len, "%d\n", r + 1);
    }
    tmp_path(path, sizeof path, "wide.csv");
    CHECK(write_file(path, big, len) == 0);
    CHECK_OK(nb_csv_load(&ds, path, "label", &err), &err);
    CHECK(ds.count == 2 && ds.features == 3000 && ds.classes == 3);
    CHECK(ds.f32 && ds.f32[2999] == 2999.25f && ds.f32[3000] == 3000.25f &&
          ds.f32[5999] == 5999.25f);
    nb_dataset_free(&ds);
    free(big);
    unlink(path);
    tmp_path(path, sizeof path, "good.csv");
    unlink(path);
}

/* ---- spirals ------------------------------------------------------------------------- */

static void test_spirals(void)
{
    nb_dataset a, b, c;
    nb_error err = {0};
    CHECK_OK(nb_spirals(&a, 100, 3, 0.2f, 42, &err), &err);
    CHECK(a.count == 300 && a.ndim == 1 && a.dims[0] == 2 && a.features == 2 &&
          a.dtype == NB_F32 && a.f32 && a.labels && a.classes == 3);
    for (int64_t i = 0; i < 300; i++)
        CHECK(a.labels[i] == i / 100);
    CHECK_OK(nb_spirals(&b, 100, 3, 0.2f, 42, &err), &err);
    CHECK(memcmp(a.f32, b.f32, 600 * sizeof(float)) == 0);
    nb_dataset_free(&b);
    CHECK_OK(nb_spirals(&b, 100, 3, 0.2f, 43, &err), &err);
    CHECK(memcmp(a.f32, b.f32, 600 * sizeof(float)) != 0);

    /* Without noise: r = i/(N−1), t = 4j + 4i/(N−1), x = (r sin t, r cos t). */
    CHECK_OK(nb_spirals(&c, 50, 4, 0, 1, &err), &err);
    for (int j = 0; j < 4; j++)
        for (int i = 0; i < 50; i++) {
            double r = i / 49.0, t = 4.0 * j + 4.0 * i / 49.0;
            CHECK_NEAR(c.f32[2 * (j * 50 + i)], r * sin(t), 1e-6, 0);
            CHECK_NEAR(c.f32[2 * (j * 50 + i) + 1], r * cos(t), 1e-6, 0);
        }
    nb_dataset_free(&b);
    CHECK(nb_spirals(&b, 0, 3, 0.1f, 1, &err) == NB_EINVAL);
    CHECK(nb_spirals(&b, 10, 0, 0.1f, 1, &err) == NB_EINVAL);
    CHECK(nb_spirals(&b, 10, 3, -1, 1, &err) == NB_EINVAL);
    CHECK(b.count == 0 && !b.f32);
    nb_dataset_free(&a);
    nb_dataset_free(&c);
}

int main(void)
{
    strcpy(tmpdir, "/tmp/nabla-test-data-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_plain_idx();
    test_csv();
    test_spirals();
    test_fashion_mnist();
    rmdir(tmpdir);
    return check_finish("test_data");
}
