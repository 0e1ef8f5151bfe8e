/* mynet — the lecture's reference example (docs/lecture.md §7), from its description file.
 *
 * PyTorch's mynet(d0, 60, 40, 10): flatten a 3×10×20 image (d0 = 600), then
 * Linear(d0,60) → ReLU → Linear(60,40) → ReLU → Linear(40,10). examples/mynet.nb says the same
 * in nine lines; nb_model_new builds the graph and appends a cross-entropy loss (§5.2). Each
 * Linear holds its own weight and bias, ReLU holds none — the listing below shows it — and
 * backward computes every gradient from the forward definition alone (§3).
 *
 * Training on one fixed batch of random 3×10×20 inputs with random labels, plain SGD
 * (w ← w − η ∂L/∂w, §2) must make the loss go down at every step: a small net can memorise a
 * small batch. Exit status 1 if it does not.
 *
 *     build/examples/mynet [examples/mynet.nb [STEPS]]
 *
 * Without a file it reads examples/mynet.nb of the source tree it was built in, from any
 * directory. */
#include "example.h"
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>

#define BATCH 16
#define ETA 0.05f

/* The whole file as a string; caller frees. NULL with err set on failure. */
static char *read_text(const char *path, nb_error *err)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)size + 1)) && fread(text, 1, (size_t)size, f) == (size_t)size) {
        text[size] = 0;
        fclose(f);
        return text;
    }
    nb_error_set(err, NB_EIO, "%s: cannot read", path);
    free(text);
    if (f)
        fclose(f);
    return NULL;
}

int main(int argc, char **argv)
{
    if (example_help(argc, argv, "mynet", "[DESCRIPTION.nb [STEPS]]",
                     "Builds the lecture's reference network mynet from a description file (default\nexamples/mynet.nb, found beside this program's source tree): flatten a 3x10x20 image, then\nLinear(600,60), ReLU, Linear(60,40), ReLU, Linear(40,10). Lists its nodes and parameters\nand takes STEPS (default 10) plain SGD steps on one batch of random images: the loss must\nfall at every step (exit 1 otherwise). docs/lecture.md section 7.\n"))
        return 0;
    char found[4096];
    const char *path = argc > 1 ? argv[1] : example_file(argv[0], "mynet.nb", found, sizeof found);
    int steps = argc > 2 ? atoi(argv[2]) : 10;
    if (argc > 3 || steps < 1) {
        fprintf(stderr, "usage: %s [DESCRIPTION.nb [STEPS]]\n", argv[0]);
        return 2;
    }
    nb_error err = {0};
    nb_model *m = NULL;
    nb_optim *opt = NULL;
    nb_gemm *gemm = NULL;
    int status = 1;
    char *text = read_text(path, &err);
    /* Products with 16 rows are too small to share between threads: one is fastest. */
    if (!text || !(gemm = nb_gemm_new(NB_GEMM_AUTO, 1, &err)) ||
        !(m = nb_model_new(text, path, 1, gemm, &err)))
        goto done;
    nb_graph *g = nb_model_graph(m);
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_graph_init_params(g, NB_INIT_TORCH, &rng); /* as torch.nn.Linear */

    printf("%s: %zu parameters\n", path, nb_graph_param_floats(g));
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        char shape[64];
        printf("  %-12s %-14s %s\n", nb_node_name(g, i), nb_op_name(nb_node_op(g, i)),
               nb_node_shape_str(g, i, shape, sizeof shape));
    }

    /* one fixed batch: x ~ N(0, 1) of shape [16, 3, 10, 20], labels uniform in 0..9 */
    int x = nb_model_input(m), y = nb_model_labels(m), loss = nb_model_loss(m);
    int64_t classes = nb_model_classes(m);
    if (nb_graph_prepare(g, BATCH, &err))
        goto done;
    float *xv = nb_value(g, x);
    for (int64_t i = 0; i < BATCH * nb_node_size(g, x); i++)
        xv[i] = nb_rng_normal(&rng);
    for (int i = 0; i < BATCH; i++)
        nb_labels_data(g, y)[i] = (int32_t)nb_rng_below(&rng, (uint32_t)classes);

    nb_optim_config cfg;
    nb_optim_config_default(&cfg); /* plain SGD */
    if (!(opt = nb_optim_new(&cfg, nb_graph_param_floats(g), &err)))
        goto done;
    printf("SGD, eta %.2f, one fixed batch of %d random images with random labels:\n",
           (double)ETA, BATCH);
    int decreasing = 1;
    float first = 0, previous = 0;
    for (int k = 0; k <= steps; k++) {
        nb_graph_zero_grad(g);
        if (nb_graph_forward(g, &err))
            goto done;
        float l = nb_value(g, loss)[0];
        printf("  step %2d  loss %.6f\n", k, (double)l);
        if (k == 0)
            first = l;
        else if (!(l < previous))
            decreasing = 0;
        previous = l;
        if (k == steps)
            break; /* the last line reports the loss after the last step */
        if (nb_graph_backward(g, loss, NULL, &err))
            goto done;
        nb_optim_step(opt, nb_graph_params(g), nb_graph_param_grads(g), ETA);
        nb_graph_params_changed(g); /* the step wrote the weights */
    }
    printf("%s: the loss went from %.4f to %.4f%s\n", decreasing ? "ok" : "FAILED",
           (double)first, (double)previous, decreasing ? ", down at every step" : ", NOT down at every step");
    status = decreasing ? 0 : 1;
done:
    if (status && err.msg[0])
        fprintf(stderr, "mynet: %s\n", err.msg);
    nb_optim_free(opt);
    nb_model_free(m);
    nb_gemm_free(gemm);
    free(text);
    return status;
}
