/* A program that embeds nabla's trainer under MPI, using only the public API (nabla.h), and
 * checks that it gets the same distributed protocol as `mpirun nabla train` without writing
 * any of it itself (tests/cli_dist_embed.sh runs it: mpirun -np 2 tool_dist_embed DIR):
 *   - the model's generator is forked per rank by nb_trainer_set_dist (Dropout masks differ),
 *     and again after nb_trainer_resume;
 *   - a stop requested on rank 1 alone (interrupted) stops both ranks, NB_EINTR on each, in
 *     the same epoch;
 *   - a stop returned by epoch_end on rank 0 alone ends both ranks after the same epoch;
 *   - the replicas hold bitwise equal weights at the end;
 *   - only rank 0 writes a checkpoint, though both call nb_trainer_save_checkpoint.
 * Exits 0 when all hold, 1 on a failure (each rank says what it saw), 77 when nabla was built
 * without MPI. */
#include "nabla.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const description = "x = input(2)\n"
                                       "h = linear(x, 16)\n"
                                       "a = tanh(h)\n"
                                       "d = dropout(a, 0.3)\n"
                                       "out = linear(d, 3)\n";

static int rank = -1, failures = 0;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAIL (rank %d): %s\n", rank, what);
        failures++;
    }
}

/* Every rank's value of v, gathered into all[0..ranks) on every rank (a sum of one-hot rows). */
static void gather_all(nb_dist *d, double v, double *all, int ranks)
{
    nb_error err = {0};
    for (int r = 0; r < ranks; r++)
        all[r] = r == nb_dist_rank(d) ? v : 0.0;
    if (nb_dist_sum(d, all, ranks, &err))
        check(0, err.msg);
}

/* The next draw of the model's Dropout generator (a copy: the model's is left as it is). */
static double dropout_draw(nb_model *m)
{
    nb_rng copy = *nb_graph_rng(nb_model_graph(m));
    return (double)(nb_rng_next(&copy) >> 11);
}

/* A checksum of the weights that any differing bit changes (weighted by position). */
static double weights_sum(nb_model *m)
{
    nb_graph *g = nb_model_graph(m);
    const float *w = nb_graph_params(g);
    double s = 0;
    for (size_t i = 0; i < nb_graph_param_floats(g); i++)
        s += (double)w[i] * (double)(i % 97 + 1);
    return s;
}

typedef struct hooks {
    int polls;           /* interrupted() calls so far */
    int stop_poll;       /* rank 1 asks to stop at this poll (0: never) */
    int stop_epoch;      /* rank 0's epoch_end asks to stop after this epoch (0: never) */
} hooks;

static int interrupted(void *user)
{
    hooks *h = user;
    return ++h->polls == h->stop_poll && rank == 1;
}

static int epoch_end(void *user, const nb_epoch_stats *s)
{
    hooks *h = user;
    return rank == 0 && s->epoch == h->stop_epoch;
}

/* A model and a trainer on ds with this run's settings, on d. */
static nb_trainer *trainer_on(nb_dist *d, nb_gemm *gemm, const nb_dataset *ds, nb_model **m,
                              nb_error *err)
{
    if (!(*m = nb_model_new(description, "embed", 7, gemm, err)))
        return NULL;
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_graph_init_params(nb_model_graph(*m), NB_INIT_KAIMING_UNIFORM, &rng);
    nb_train_config cfg;
    nb_train_config_default(&cfg);
    cfg.batch = 30;
    cfg.epochs = 6;
    nb_trainer *t = nb_trainer_new(*m, ds, NULL, &cfg, err);
    if (t && nb_trainer_set_dist(t, d, err)) {
        nb_trainer_free(t);
        t = NULL;
    }
    return t;
}

int main(int argc, char **argv)
{
    if (!nb_dist_available())
        return 77;
    if (argc != 2) {
        fprintf(stderr, "usage: mpirun -np 2 tool_dist_embed DIR\n");
        return 2;
    }
    nb_error err = {0};
    nb_dist *d = nb_dist_new(&err);
    if (!d) {
        fprintf(stderr, "tool_dist_embed: %s\n", err.msg);
        return 1;
    }
    rank = nb_dist_rank(d);
    int ranks = nb_dist_size(d);
    double all[64];
    if (ranks != 2) {
        fprintf(stderr, "tool_dist_embed: run it on 2 ranks (mpirun -np 2), not %d\n", ranks);
        nb_dist_free(d);
        return 2;
    }
    nb_dataset ds = {0};
    nb_gemm *gemm = nb_gemm_new(NB_GEMM_PORTABLE, 1, &err);
    nb_model *m = NULL;
    nb_trainer *t = NULL;
    if (!gemm || nb_spirals(&ds, 60, 3, 0.2f, 1, &err) ||
        !(t = trainer_on(d, gemm, &ds, &m, &err))) {
        check(0, err.msg);
        goto done;
    }

    /* the generator fork: the ranks' next Dropout draws differ */
    gather_all(d, dropout_draw(m), all, ranks);
    check(all[0] != all[1], "after nb_trainer_set_dist the ranks' Dropout generators differ");

    /* a stop asked on rank 1 alone, at its 14th poll (180 samples in batches of 30: 6 steps
     * an epoch, so before epoch 3's second step) */
    hooks h = {.stop_poll = 14};
    nb_train_callbacks cb = {.user = &h, .interrupted = interrupted, .epoch_end = epoch_end};
    nb_status s = nb_trainer_run(t, &cb, &err);
    gather_all(d, (double)s, all, ranks);
    check(all[0] == NB_EINTR && all[1] == NB_EINTR,
          "a stop asked on rank 1 alone: nb_trainer_run returns NB_EINTR on both ranks");
    gather_all(d, nb_trainer_epoch(t), all, ranks);
    check(all[0] == 2 && all[1] == 2, "both ranks stopped in epoch 3, after 2 complete epochs");

    /* both ranks ask for the checkpoint; only rank 0 writes it */
    char path[4096];
    snprintf(path, sizeof path, "%s/embed.rank%d.ckpt", argv[1], rank);
    if (nb_trainer_save_checkpoint(t, path, &err))
        check(0, err.msg);
    gather_all(d, access(path, F_OK) == 0, all, ranks);
    check(all[0] == 1 && all[1] == 0, "only rank 0 writes the checkpoint");

    /* resumed from rank 0's checkpoint on both: the generators are forked again */
    snprintf(path, sizeof path, "%s/embed.rank0.ckpt", argv[1]);
    nb_trainer_free(t);
    nb_model_free(m);
    m = NULL;
    if (!(t = trainer_on(d, gemm, &ds, &m, &err)) || nb_trainer_resume(t, path, &err)) {
        check(0, err.msg);
        goto done;
    }
    gather_all(d, dropout_draw(m), all, ranks);
    check(all[0] != all[1], "after nb_trainer_resume the ranks' Dropout generators differ");

    /* rank 0 alone ends the run after epoch 4 through epoch_end: so does rank 1 */
    h = (hooks){.stop_epoch = 4};
    s = nb_trainer_run(t, &cb, &err);
    gather_all(d, (double)s, all, ranks);
    check(all[0] == NB_OK && all[1] == NB_OK, "the resumed run ends with NB_OK on both ranks");
    gather_all(d, nb_trainer_epoch(t), all, ranks);
    check(all[0] == 4 && all[1] == 4, "epoch_end's stop on rank 0 alone ends both after epoch 4");

    /* the replicas are equal (the trainer checked it after every epoch; checked here again) */
    gather_all(d, weights_sum(m), all, ranks);
    check(all[0] == all[1], "the replicas' weights are equal at the end");

done:;
    int first, worst = nb_dist_agree(d, failures != 0, &first);
    if (rank == 0 && !worst)
        printf("ok: an embedding program gets the protocol: generators forked per rank (also "
               "after resume), a stop on one rank stops both (NB_EINTR), epoch_end's stop on "
               "rank 0 ends both after the same epoch, equal replicas, rank 0 alone writes "
               "the checkpoint\n");
    nb_trainer_free(t);
    nb_model_free(m);
    nb_gemm_free(gemm);
    nb_dataset_free(&ds);
    nb_dist_free(d);
    return worst ? 1 : 0;
}
