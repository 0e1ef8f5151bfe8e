/* Embedding a model exported with `nabla export MODEL --format c`: this program links no part
 * of nabla, only the generated model.c (and libm for expf). It classifies the images of an
 * uncompressed IDX file and prints, per image, what `nabla predict` prints: index, class,
 * class name and the probabilities.
 *
 *   nabla export out/fashion-mnist.safetensors --format c -o examples/embed/model.c
 *   cc -std=c99 -O2 examples/embed/main.c examples/embed/model.c -lm -o classify-embedded
 *   gunzip -c /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz > t10k-images.idx
 *   ./classify-embedded t10k-images.idx 5
 *
 * model_predict takes the raw pixel values as floats (0 to 255): the normalisation fitted
 * on the training set is inside the generated code. */
#include "model.h"

#ifdef MODEL_REGRESSION
#error "model.c is a regression model: call model_regress(input, values) instead (README, Deploying a model)"
#endif

#include <stdio.h>
#include <stdlib.h>

/* A big-endian 32-bit field of the IDX header. */
static unsigned long be32(const unsigned char *b)
{
    return (unsigned long)b[0] << 24 | (unsigned long)b[1] << 16 | (unsigned long)b[2] << 8 | b[3];
}

int main(int argc, char **argv)
{
    unsigned char head[4 + 4 * 4], pixels[MODEL_INPUT_FEATURES];
    float input[MODEL_INPUT_FEATURES], probabilities[MODEL_OUTPUTS];
    unsigned long count, features = 1, limit, n, d;
    int ndim, j;
    FILE *f;
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s IMAGES.idx [LIMIT]\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (!f || fread(head, 1, 4, f) != 4 || head[0] || head[1] || head[2] != 0x08 ||
        head[3] < 1 || head[3] > 4 || fread(head + 4, 4, head[3], f) != head[3]) {
        fprintf(stderr, "%s: expected an uncompressed IDX file of unsigned bytes\n", argv[1]);
        return 1;
    }
    ndim = head[3];
    count = be32(head + 4);
    for (d = 1; d < (unsigned long)ndim; d++)
        features *= be32(head + 4 + 4 * d);
    if (features != MODEL_INPUT_FEATURES) {
        fprintf(stderr, "%s: %lu values per sample; the model takes %d\n", argv[1], features,
                MODEL_INPUT_FEATURES);
        return 1;
    }
    limit = argc == 3 ? strtoul(argv[2], NULL, 10) : count;
    printf("index,class,name");
    for (j = 0; j < MODEL_OUTPUTS; j++)
        printf(",p%d", j);
    printf("\n");
    for (n = 0; n < count && n < limit; n++) {
        int k;
        if (fread(pixels, 1, MODEL_INPUT_FEATURES, f) != MODEL_INPUT_FEATURES) {
            fprintf(stderr, "%s: truncated at sample %lu\n", argv[1], n);
            return 1;
        }
        for (j = 0; j < MODEL_INPUT_FEATURES; j++)
            input[j] = (float)pixels[j];
        k = model_predict(input, probabilities);
        printf("%lu,%d,\"%s\"", n, k, model_class_name(k) ? model_class_name(k) : "");
        for (j = 0; j < MODEL_OUTPUTS; j++)
            printf(",%.9g", probabilities[j]);
        printf("\n");
    }
    fclose(f);
    return 0;
}
