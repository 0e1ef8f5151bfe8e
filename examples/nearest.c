/* nearest — the nearest-neighbour model of docs/lecture.md §1, a parametrised model without a
 * useful gradient.
 *
 *     ȳ = G(x, W) = argmin_k ‖x − w_k‖²       over the rows w_k of a matrix W [K, D]
 *
 * W is the model's parameter, "saved inside the function" (nb_nearest creates it as
 * "nn.weight"). Here it is not learnt by gradient descent but set directly: row k is the
 * mean of the training samples of class k (a nearest-centroid classifier), computed on
 * Fashion-MNIST's 60,000 training images — or, when that data set is not installed (or with
 * --spirals), on the practicum's three spirals. The test samples are then classified by one
 * forward pass and the accuracy is printed.
 *
 * Finally the program asks for a gradient: it appends a cost C = ‖t − ȳ‖² and calls
 * backward. ȳ is piecewise constant in x and W, so the library refuses with NB_ENOGRAD and
 * says why; the explanation is printed. Exit status 1 if that does not happen or anything
 * else fails.
 *
 *     build/examples/nearest [--spirals] */
#include "example.h"
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FASHION "/usr/share/datasets/fashion-mnist/"

static nb_status load(int spirals, nb_dataset *train, nb_dataset *test, nb_error *err)
{
    if (spirals || access(FASHION "train-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("data: 3 spirals, 100 points per class (train seed 1, test seed 2)\n");
        nb_status s = nb_spirals(train, 100, 3, 0.2f, 1, err);
        return s ? s : nb_spirals(test, 100, 3, 0.2f, 2, err);
    }
    printf("data: Fashion-MNIST (%s)\n", FASHION);
    nb_status s = nb_idx_load(train, FASHION "train-images-idx3-ubyte.gz",
                              FASHION "train-labels-idx1-ubyte.gz", err);
    return s ? s : nb_idx_load(test, FASHION "t10k-images-idx3-ubyte.gz",
                               FASHION "t10k-labels-idx1-ubyte.gz", err);
}

/* W[k, :] = mean of the training samples of class k. */
static nb_status class_means(const nb_dataset *ds, float *W, nb_error *err)
{
    int64_t K = ds->classes, D = ds->features;
    double *sum = calloc((size_t)(K * D), sizeof *sum);
    int64_t *count = calloc((size_t)K, sizeof *count);
    float *x = malloc((size_t)D * sizeof *x);
    nb_status s = sum && count && x ? NB_OK : nb_error_set(err, NB_ENOMEM, "out of memory");
    for (int64_t p = 0; !s && p < ds->count; p++) {
        int32_t y;
        nb_dataset_gather(ds, &p, 1, NULL, x, &y);
        count[y]++;
        for (int64_t i = 0; i < D; i++)
            sum[y * D + i] += x[i];
    }
    for (int64_t k = 0; !s && k < K; k++)
        for (int64_t i = 0; i < D; i++)
            W[k * D + i] = count[k] ? (float)(sum[k * D + i] / (double)count[k]) : 0.0f;
    free(sum);
    free(count);
    free(x);
    return s;
}

int main(int argc, char **argv)
{
    if (example_help(argc, argv, "nearest", "[--spirals]",
                     "The nearest-neighbour model y = argmin_k |x - w_k|^2: sets each row of W to a class mean\nof the training set (Fashion-MNIST when installed, else or with --spirals the three\nspirals), prints the test accuracy, then asks for a gradient and prints why the library\nrefuses (the output is piecewise constant). docs/lecture.md section 1.\n"))
        return 0;
    int spirals = argc == 2 && strcmp(argv[1], "--spirals") == 0;
    if (argc > 2 || (argc == 2 && !spirals)) {
        fprintf(stderr, "usage: %s [--spirals]\n", argv[0]);
        return 2;
    }
    nb_error err = {0};
    nb_dataset train = {0}, test = {0};
    nb_graph *g = NULL;
    int64_t *idx = NULL;
    int status = 1;
    if (load(spirals, &train, &test, &err))
        goto done;
    int64_t K = train.classes, D = train.features, N = test.count;

    /* The model ȳ = argmin_k ‖x − w_k‖², then a cost on it (used only to ask for a gradient). */
    int64_t dims[1] = {D};
    if (!(g = nb_graph_new(1, NULL))) {
        nb_error_set(&err, NB_ENOMEM, "out of memory");
        goto done;
    }
    int x = nb_input(g, "x", 1, dims);
    int nn = nb_nearest(g, "nn", x, K);
    int64_t one[1] = {1};
    int t = nb_input(g, "t", 1, one);
    int cost = nb_mse(g, "cost", nn, t, NB_REDUCE_MEAN);
    if (nb_graph_error(g, &err) || nb_graph_prepare(g, N, &err) ||
        !(idx = malloc((size_t)N * sizeof *idx)))
        goto done;
    if (class_means(&train, nb_value(g, nb_graph_find(g, "nn.weight")), &err))
        goto done;
    printf("W: %lld prototypes (class means of %lld training samples) of %lld features\n",
           (long long)K, (long long)train.count, (long long)D);

    for (int64_t i = 0; i < N; i++)
        idx[i] = i;
    nb_dataset_gather(&test, idx, N, NULL, nb_value(g, x), NULL);
    if (nb_graph_forward_to(g, nn, &err))
        goto done;
    int64_t correct = 0;
    for (int64_t i = 0; i < N; i++)
        correct += (int32_t)nb_value(g, nn)[i] == test.labels[i];
    printf("nearest-neighbour test accuracy: %.2f%% (%lld of %lld; chance %.2f%%)\n",
           100.0 * (double)correct / (double)N, (long long)correct, (long long)N, 100.0 / (double)K);

    /* Asking for ∂C/∂W: the library refuses rather than return zeros. */
    for (int64_t i = 0; i < N; i++)
        nb_value(g, t)[i] = (float)test.labels[i];
    nb_error why = {0};
    nb_status s = nb_graph_forward(g, &err) ? err.code : nb_graph_backward(g, cost, NULL, &why);
    printf("backward through nearest: %s\n  %s\n", nb_status_name(s), why.msg);
    if (s != NB_ENOGRAD) {
        nb_error_set(&err, NB_EINVAL, "expected NB_ENOGRAD from backward, got %s",
                     nb_status_name(s));
        goto done;
    }
    status = 0;
done:
    if (status)
        fprintf(stderr, "nearest: %s\n", err.msg[0] ? err.msg : nb_status_name(err.code));
    free(idx);
    nb_graph_free(g);
    nb_dataset_free(&train);
    nb_dataset_free(&test);
    return status;
}
