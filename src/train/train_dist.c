/* The trainer's side of data-parallel training over MPI (the protocol: nabla.h, at
 * nb_trainer_set_dist; the messages: src/dist/dist.c). What every rank must do the same way
 * lives here, in the library, so that the nabla command and a program that embeds the trainer
 * behave alike: the generator forked per rank, the stop agreed, the replicas compared after
 * every epoch, rank 0 alone writing checkpoints (checkpoint.c). */
#include "core/graph.h"
#include "model/model.h"
#include "train/trainer.h"

nb_status nb_trainer_set_dist(nb_trainer *t, nb_dist *d, nb_error *err)
{
    int64_t N = nb_dist_size(d), last = t->train->count % t->batch;
    if (d && (t->batch < N || (last > 0 && last < N)))
        return nb_error_set(err, NB_EINVAL, "every rank needs rows in every batch: %lld samples "
                            "in batches of %lld leave %lld rows for %lld ranks; choose another "
                            "--batch", (long long)t->train->count, (long long)t->batch,
                            (long long)(t->batch < N ? t->batch : last), (long long)N);
    /* Dropout draws its masks from the model's generator: each rank its own (rank 0 keeps
     * the state a checkpoint records; nb_trainer_resume forks again after loading it) */
    if (d && !t->dist)
        nb_dist_fork_rng(d, nb_graph_rng(nb_model_graph(t->model)));
    t->dist = d;
    return NB_OK;
}

int nb_trainer_dist_shared(nb_status s)
{
    /* NB_EINTR: the ranks agree before every step; NB_ENUMERIC: the all-reduce carries a
     * non-finite loss to every rank; NB_EDIST: every rank compared the same hashes */
    return s == NB_OK || s == NB_EINTR || s == NB_ENUMERIC || s == NB_EDIST;
}

/* With ranks, each counted the loss and correct answers of its own rows, starting from the
 * sums a resumed epoch carried: the totals over all rows count that earlier part once (rank 0
 * keeps it, the others drop it). */
nb_status nb_trainer_sum_over_ranks(const nb_trainer *t, double *loss_sum, int64_t *correct,
                                    nb_error *err)
{
    if (!t->dist)
        return NB_OK;
    int carried = nb_dist_rank(t->dist) != 0;
    double sums[2] = {*loss_sum - carried * t->epoch_loss_sum,
                      (double)(*correct - carried * t->epoch_correct)};
    nb_status s = nb_dist_sum(t->dist, sums, 2, err);
    *loss_sum = sums[0];
    *correct = (int64_t)sums[1];
    return s;
}

nb_status nb_trainer_dist_epoch_end(nb_trainer *t, int *stop, nb_error *err)
{
    nb_graph *g = nb_model_graph(t->model);
    nb_status s = nb_dist_check_replicas(t->dist, nb_graph_params(g), nb_graph_param_floats(g),
                                         err);
    if (s)
        return s;
    /* rank 0 alone writes files at an epoch's end: when it cannot, every rank stops there */
    *stop = nb_dist_any(t->dist, *stop);
    return NB_OK;
}
