/* classify — nabla embedded in a program: load a trained model, classify images.
 *
 * docs/lecture.md §6, "train, then infer": the model file holds the description, the weights and
 * the training set's normalisation, so inference is nb_model_load + nb_model_predict, which
 * runs the net in evaluation mode (dropout off) and returns the class scores as softmax
 * probabilities and the arg-max class.
 *
 *     build/nabla train 784-256-10 -o model.safetensors
 *     build/examples/classify model.safetensors [IDX-IMAGES-FILE [N]]
 *
 * The labels file is found by replacing "images-idx3" with "labels-idx1" in the file name
 * (Fashion-MNIST's convention); without one, no accuracy is reported. */
#include "example.h"
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

/* The name of class k in a comma-separated list, or its number. */
static const char *class_name(const char *list, int k, char *buf, size_t size)
{
    for (int i = 0; list && i < k; i++)
        list = (list = strchr(list, ',')) ? list + 1 : NULL;
    if (!list)
        snprintf(buf, size, "class %d", k);
    else
        snprintf(buf, size, "%.*s", (int)strcspn(list, ","), list);
    return buf;
}

int main(int argc, char **argv)
{
    if (example_help(argc, argv, "classify", "MODEL.safetensors [IDX-IMAGES-FILE [N]]",
                     "Loads a model file written by `nabla train` (description, weights and the training set's\nnormalisation) and classifies the first N images (default 10) of an IDX file (default\nFashion-MNIST's test images): one line per image with the class, its probability and, when a\nlabels file lies beside the images, the true class and the accuracy. nabla embedded in a\nsmall C program (docs/lecture.md section 6: train, then infer).\n"))
        return 0;
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL.safetensors [IDX-IMAGES-FILE [N]]\n", argv[0]);
        return 2;
    }
    const char *images = argc > 2 ? argv[2] : DEFAULT_IMAGES;
    char *end = "";
    long n = argc > 3 ? strtol(argv[3], &end, 10) : 10;
    if (n < 1 || *end) {
        fprintf(stderr, "classify: N must be a positive number, got '%s'\n", argv[3]);
        return 2;
    }
    char labels[4096];
    snprintf(labels, sizeof labels, "%s", images);
    char *at = strstr(labels, "images-idx3");
    if (at)
        memcpy(at, "labels-idx1", 11);
    int have_labels = at && access(labels, R_OK) == 0;

    nb_error err = {0};
    nb_dataset ds = {0};
    nb_model *m = NULL;
    float *probs = NULL;
    int32_t *pred = NULL;
    int status = 1;
    if (!(m = nb_model_load(argv[1], 1, NULL, &err)) ||
        nb_idx_load(&ds, images, have_labels ? labels : NULL, &err))
        goto done;
    if (n > ds.count)
        n = (long)ds.count;
    int64_t C = nb_model_classes(m);
    if (!(probs = malloc((size_t)(n * C) * sizeof *probs)) || !(pred = malloc((size_t)n * sizeof *pred))) {
        nb_error_set(&err, NB_ENOMEM, "out of memory for %ld predictions", n);
        goto done;
    }
    if (nb_model_predict(m, &ds, NULL, n, probs, pred, &err))
        goto done;

    const char *names = nb_model_classes_text(m);
    long correct = 0;
    char a[64], b[64];
    for (long i = 0; i < n; i++) {
        printf("%5ld  %-12s %6.2f%%", i, class_name(names, pred[i], a, sizeof a),
               100.0 * probs[i * C + pred[i]]);
        if (ds.labels) {
            correct += pred[i] == ds.labels[i];
            printf("   true: %s%s", class_name(names, ds.labels[i], b, sizeof b),
                   pred[i] == ds.labels[i] ? "" : "  (wrong)");
        }
        printf("\n");
    }
    if (ds.labels)
        printf("accuracy: %.2f%% (%ld of %ld)\n", 100.0 * (double)correct / (double)n, correct, n);
    status = 0;
done:
    if (status)
        fprintf(stderr, "classify: %s\n", err.msg[0] ? err.msg : nb_status_name(err.code));
    free(probs);
    free(pred);
    nb_dataset_free(&ds);
    nb_model_free(m);
    return status;
}
