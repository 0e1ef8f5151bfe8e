/* Times a model exported with `nabla export --format c` (bench/bench_export.sh builds it with
 * the generated model.c): single-sample latency (median and fastest of one model_predict
 * call, cycling through the images; on a shared machine the fastest is the closest to an
 * idle one's) and throughput (model_predict_batch over all of them, median pass), on
 * the raw pixels of an uncompressed IDX file. Prints one JSON object.
 *
 *   latency IMAGES.idx [REPEATS] */
#define _POSIX_C_SOURCE 200809L
#include "../bench_util.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    unsigned char head[16];
    FILE *f = argc >= 2 ? fopen(argv[1], "rb") : NULL;
    long repeats = argc >= 3 ? atol(argv[2]) : 20000, n, i, r;
    if (!f || fread(head, 1, 16, f) != 16 || head[2] != 8 || head[3] != 3) {
        fprintf(stderr, "usage: latency IMAGES.idx [REPEATS] (an uncompressed IDX of images)\n");
        return 2;
    }
    n = (long)head[4] << 24 | (long)head[5] << 16 | (long)head[6] << 8 | head[7];
    unsigned char *bytes = malloc((size_t)n * MODEL_INPUT_FEATURES);
    float *x = malloc((size_t)n * MODEL_INPUT_FEATURES * sizeof *x);
    float *probs = malloc((size_t)n * MODEL_OUTPUTS * sizeof *probs);
    int *classes = malloc((size_t)n * sizeof *classes);
    double *times = malloc((size_t)(repeats > 7 ? repeats : 7) * sizeof *times);
    if (!bytes || !x || !probs || !classes || !times ||
        fread(bytes, MODEL_INPUT_FEATURES, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read %ld images\n", argv[1], n);
        return 1;
    }
    for (i = 0; i < n * MODEL_INPUT_FEATURES; i++)
        x[i] = (float)bytes[i];
    volatile int sink = 0;
    for (r = -repeats / 10; r < repeats; r++) { /* the first tenth warms up */
        const float *in = x + ((r + repeats) % n) * MODEL_INPUT_FEATURES;
        double t0 = now();
        sink += model_predict(in, probs);
        double t1 = now();
        if (r >= 0)
            times[r] = t1 - t0;
    }
    qsort(times, (size_t)repeats, sizeof *times, cmp_double);
    double latency = times[repeats / 2], fastest = times[0];
    for (r = -1; r < 7; r++) {
        double t0 = now();
        model_predict_batch(x, (int)n, probs, classes);
        if (r >= 0)
            times[r] = now() - t0;
    }
    qsort(times, 7, sizeof *times, cmp_double);
    printf("{\"latency_us\": %.3f, \"latency_min_us\": %.3f, \"samples_per_second\": %.1f, "
           "\"samples\": %ld}\n", latency * 1e6, fastest * 1e6, (double)n / times[3], n);
    (void)sink;
    return 0;
}
