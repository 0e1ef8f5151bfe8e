/* gd_paths — full-batch gradient descent vs SGD vs minibatch SGD (docs/lecture.md §2), on the
 * practicum's spirals (§6), the x-axis counting the work done: samples processed.
 *
 *   full batch   w ← w − η ∂L(S, w)/∂w            one step per pass over all P samples
 *   SGD          pick p, w ← w − η ∂L(x[p], y[p], w)/∂w      P steps per pass
 *   minibatch    average the gradient over B samples, then step   P/B steps per pass
 *
 * The data are deliberately redundant: 1000 points per arm where 100 already define the
 * spirals (examples/spirals.c). A full-batch step averages 3000 gradients that say nearly the
 * same thing, so it costs 3000 times the work of an SGD step for little more information —
 * "on redundant data SGD is much faster than full batch". SGD's path is noisy (each step
 * follows one sample); minibatches average the noise down at the same work.
 *
 * Every method starts from the same weights (Kaiming initialisation, §5.8, same seed) and
 * uses the same η, plain SGD without momentum, the same net (2-100-3, ReLU, cross-entropy)
 * and the library's trainer; after each pass the loss L(S, w) and the accuracy on all P
 * points are measured (the trainer's evaluation with S as the validation set).
 *
 *     build/examples/gd_paths [--png FILE.png]
 *
 * prints CSV, one row per pass (and the start), columns
 *     samples, gd, sgd, minibatch, gd_accuracy, sgd_accuracy, minibatch_accuracy
 * (losses, then accuracies in %), and with --png also writes FILE.csv and draws FILE.png
 * through the tool:
 *
 *     nabla plot-csv FILE.csv -o FILE.png --x samples --log-y=1 \
 *         --y "gd=full-batch GD,sgd=SGD (B = 1),minibatch=minibatch SGD (B = 30)" \
 *         --y "gd_accuracy=full-batch GD,sgd_accuracy=SGD (B = 1),minibatch_accuracy=…"
 *
 * (the tool is $NABLA, else ../nabla next to this program's directory, else nabla on PATH).
 * Exit status 1 unless, after the first pass, SGD's loss is below half of full-batch GD's. */
#include "nabla.h"
#include "plot_tool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define PER_CLASS 1000
#define CLASSES 3
#define NOISE 0.2f
#define NET "2-100-3"
#define LR 0.1f
#define MINIBATCH 30
#define PASSES 30

static const struct {
    const char *name;
    int64_t batch; /* 0: the whole set */
} methods[3] = {{"gd", 0}, {"sgd", 1}, {"minibatch", MINIBATCH}};

typedef struct record {
    double loss[PASSES + 1], accuracy[PASSES + 1];
} record;

static int epoch_end(void *user, const nb_epoch_stats *s)
{
    record *r = user;
    r->loss[s->epoch] = s->val_loss; /* L(S, w) after this pass, evaluation mode */
    r->accuracy[s->epoch] = s->val_accuracy;
    return 0;
}

/* Trains one method from the common start and records its path. */
static nb_status run(const nb_dataset *ds, int64_t batch, nb_gemm *gemm, record *r, nb_error *err)
{
    nb_trainer *t = NULL;
    nb_norm norm = {0};
    nb_model *m = nb_model_new(NET, NET, 1, gemm, err);
    nb_status s = m ? NB_OK : err->code;
    if (!s) {
        nb_rng rng;
        nb_rng_seed(&rng, 42);
        nb_graph_init_params(nb_model_graph(m), NB_INIT_KAIMING_UNIFORM, &rng);
        s = nb_norm_fit(&norm, ds, NB_NORM_FEATURE, 1e-5f, err); /* §5.5 */
    }
    if (!s) {
        nb_model_set_norm(m, &norm);
        s = nb_evaluate(m, ds, &r->loss[0], &r->accuracy[0], NULL, err);
    }
    if (!s) {
        nb_train_config cfg;
        nb_train_config_default(&cfg);
        cfg.optim.kind = NB_OPT_SGD;
        cfg.optim.lr = LR;
        cfg.optim.momentum = 0; /* the lecture's plain rule */
        cfg.batch = batch;
        cfg.epochs = PASSES;
        cfg.order = NB_ORDER_SHUFFLE; /* §5.4 */
        cfg.seed = 7;
        nb_train_callbacks cb = {.user = r, .epoch_end = epoch_end};
        if (!(t = nb_trainer_new(m, ds, ds, &cfg, err)))
            s = err->code;
        else
            s = nb_trainer_run(t, &cb, err);
    }
    nb_trainer_free(t);
    nb_norm_free(&norm);
    nb_model_free(m);
    return s;
}


int main(int argc, char **argv)
{
    if (example_help(argc, argv, "gd_paths", "[--png FILE.png]",
                     "Trains a small ReLU net on the spirals three ways from the same start — full-batch gradient\ndescent, SGD and minibatch SGD — and prints the loss and accuracy on all points after every\npass as CSV (x-axis: samples processed). With --png the CSV goes to FILE.csv instead of\nstandard output and the nabla tool draws it to FILE.png. docs/lecture.md section 2.\n"))
        return 0;
    const char *png = NULL;
    if (argc == 3 && strcmp(argv[1], "--png") == 0) {
        png = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: %s [--png FILE.png]\n", argv[0]);
        return 2;
    }
    nb_error err = {0};
    nb_dataset ds = {0};
    static record paths[3];
    /* one thread: products of a few samples by 100 units are too small to share */
    nb_gemm *gemm = nb_gemm_new(NB_GEMM_AUTO, 1, &err);
    int status = 1;
    if (!gemm || nb_spirals(&ds, PER_CLASS, CLASSES, NOISE, 1, &err))
        goto fail;
    for (int k = 0; k < 3; k++)
        if (run(&ds, methods[k].batch, gemm, &paths[k], &err))
            goto fail;

    FILE *table = stdout;
    char csv[4096];
    if (png && !(table = open_csv_beside(png, csv, sizeof csv)))
        goto done;
    fprintf(table, "samples,gd,sgd,minibatch,gd_accuracy,sgd_accuracy,minibatch_accuracy\n");
    for (int e = 0; e <= PASSES; e++)
        fprintf(table, "%lld,%.6g,%.6g,%.6g,%.2f,%.2f,%.2f\n", (long long)e * ds.count,
                paths[0].loss[e], paths[1].loss[e], paths[2].loss[e],
                100 * paths[0].accuracy[e], 100 * paths[1].accuracy[e],
                100 * paths[2].accuracy[e]);
    if (png && fclose(table) != 0) {
        perror(csv);
        goto done;
    }
    fprintf(stderr, "%lld spirals points, η = %g, %d passes; loss L(S, w) (accuracy):\n",
            (long long)ds.count, (double)LR, PASSES);
    for (int k = 0; k < 3; k++) {
        int64_t steps = methods[k].batch ? (ds.count + methods[k].batch - 1) / methods[k].batch : 1;
        fprintf(stderr, "  %-10s %5lld steps per pass   after 1 pass %.4f (%5.1f %%)   after %d "
                "passes %.4f (%5.1f %%)\n", methods[k].name, (long long)steps, paths[k].loss[1],
                100 * paths[k].accuracy[1], PASSES, paths[k].loss[PASSES],
                100 * paths[k].accuracy[PASSES]);
    }
    if (!(paths[1].loss[1] < 0.5 * paths[0].loss[1])) {
        fprintf(stderr, "gd_paths: after one pass SGD's loss %.4f is not below half of full-batch "
                "GD's %.4f\n", paths[1].loss[1], paths[0].loss[1]);
        goto done;
    }
    if (png) {
        char title[256], sgd[64], mini[64], y1[256], y2[256];
        snprintf(title, sizeof title, "full-batch GD vs SGD vs minibatch SGD on %lld spirals "
                 "points (same start, η = %g)", (long long)ds.count, (double)LR);
        snprintf(sgd, sizeof sgd, "SGD (B = 1)");
        snprintf(mini, sizeof mini, "minibatch SGD (B = %d)", MINIBATCH);
        snprintf(y1, sizeof y1, "gd=full-batch GD,sgd=%s,minibatch=%s", sgd, mini);
        snprintf(y2, sizeof y2, "gd_accuracy=full-batch GD,sgd_accuracy=%s,minibatch_accuracy=%s",
                 sgd, mini);
        char *args[] = {NULL, "plot-csv", csv, "-o", (char *)png, "--x", "samples",
                        "--xlabel", "samples processed", "--title", title,
                        "--panel-title", "loss L(S, w) on all points (log scale)",
                        "--panel-title", "accuracy on all points",
                        "--ylabel", "cross-entropy", "--ylabel", "accuracy (%)",
                        "--y", y1, "--y", y2, "--log-y=1", "--size", "1200x460", NULL};
        if (run_tool(argv[0], args) != 0)
            goto done;
        fprintf(stderr, "wrote %s and %s\n", csv, png);
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "gd_paths: %s\n", err.msg);
done:
    nb_dataset_free(&ds);
    nb_gemm_free(gemm);
    return status;
}
