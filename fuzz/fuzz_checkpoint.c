/* libFuzzer harness for nb_trainer_resume (src/train/train.c): the input is a checkpoint — a model
 * file whose __metadata__ also holds "nabla.checkpoint" (epoch, step, optimiser kind and step
 * count, the two generators' states) and whose tensors include "optim.state.<i>".
 *
 * Built once per process: the model "2-8-3" (what `nabla train 2-8-3` trains, so checkpoints
 * from the CLI are valid seeds), 20 spiral points per class for 3 classes, and a trainer with
 * the default configuration (SGD with momentum: one state buffer) for 1 epoch in batches of
 * 16, validated on 10 points per class, keeping the best epoch with a patience of 1 (so the
 * best epoch's weights, "optim.best", and the patience counter are read too). Before each input the weights are reset to their initial values, so that every input
 * sees the same trainer whatever the previous one left behind.
 *
 * A checkpoint that resumes must be trainable: if its epoch is below the run's, the rest of
 * the run trains (4 steps), which must end, and end either well or with NB_ENUMERIC. */
#include "fuzz_file.h"
#include "nabla.h"

static nb_model *model;
static nb_dataset train, val;
static nb_trainer *trainer;
static float *initial;
static size_t n_params;

static void setup(void)
{
    nb_error err = {0};
    nb_gemm *gemm = NULL; /* the model's graph makes and owns the default backend */
    if (nb_spirals(&train, 20, 3, 0.1f, 1, &err) || nb_spirals(&val, 10, 3, 0.1f, 2, &err) ||
        !(model = nb_model_new("2-8-3", "fuzz", 1, gemm, &err)))
        fuzz_die(err.msg);
    nb_train_config cfg;
    nb_train_config_default(&cfg);
    cfg.epochs = 1;
    cfg.batch = 16;
    cfg.keep = NB_KEEP_BEST;
    cfg.patience = 1;
    if (!(trainer = nb_trainer_new(model, &train, &val, &cfg, &err)))
        fuzz_die(err.msg);
    nb_graph *g = nb_model_graph(model);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_graph_init_params(g, NB_INIT_KAIMING_UNIFORM, &rng);
    n_params = nb_graph_param_floats(g);
    if (!(initial = malloc(n_params * sizeof *initial)))
        fuzz_die("malloc");
    memcpy(initial, nb_graph_params(g), n_params * sizeof *initial);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_file file;
    if (!file.path[0]) {
        fuzz_file_open(&file, "checkpoint");
        setup();
    }
    fuzz_file_write(&file, data, size);
    memcpy(nb_graph_params(nb_model_graph(model)), initial, n_params * sizeof *initial);

    nb_error err = {0};
    nb_status s = nb_trainer_resume(trainer, file.path, &err);
    if (s != NB_OK) {
        FUZZ_ASSERT(err.code == s && err.msg[0], "status %d without a message", s);
        FUZZ_ASSERT(strstr(err.msg, file.path), "the message names no file: %s", err.msg);
        return 0;
    }
    FUZZ_ASSERT(nb_trainer_epoch(trainer) >= 0, "epoch %d", nb_trainer_epoch(trainer));
    if (nb_trainer_epoch(trainer) < 1) {
        s = nb_trainer_run(trainer, NULL, &err);
        FUZZ_ASSERT(s == NB_OK || s == NB_ENUMERIC, "training after resume: %s", err.msg);
    }
    return 0;
}
