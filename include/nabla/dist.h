/*
 * nabla/dist.h — data-parallel training over MPI (src/dist/).
 * The trainer's side of the protocol (nb_trainer_set_dist) is in train.h.
 * Part of the public API; programs include <nabla.h>, which includes every layer in order.
 */
#ifndef NABLA_DIST_H
#define NABLA_DIST_H

#include "base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------
 * Distributed data-parallel training over MPI (src/dist/dist.c; built when Open MPI is found).
 *
 * `mpirun -np N nabla train …` starts N copies; each is a rank r of N. Every rank builds the
 * same model from the same seed, loads the whole data set and draws the same epoch order.
 * Each global minibatch of B rows (the batch size) is split into N contiguous shares of
 * ⌊B/N⌋ or ⌈B/N⌉ rows; rank r gathers and runs only its share of n_r rows. Its loss is the
 * mean over those rows, so its backward pass is seeded with n_r/B instead of 1:
 *     ∂L/∂w = 1/B Σ_{p∈B} ∂C_p/∂w = Σ_r (n_r/B) · (1/n_r Σ_{p∈share r} ∂C_p/∂w),
 * and one in-place all-reduce (sum) of the flat gradient buffer per step gives every rank
 * the gradient a single process would compute, up to floating-point summation order (each
 * rank sums its rows, then the all-reduce sums the N partial sums). Every rank then steps
 * the same optimiser on identical buffers, so the replicas stay equal without exchanging
 * weights. The library never initialises MPI by itself: the caller creates an nb_dist.
 * ---------------------------------------------------------------------------------------- */

typedef struct nb_dist nb_dist;

/* Whether MPI support is compiled in. */
int nb_dist_available(void);
/* World size named by an MPI launcher in the environment (Open MPI's mpirun:
 * OMPI_COMM_WORLD_SIZE; Hydra or srun --mpi=pmi2: PMI_SIZE), or 0 when the process was not
 * started by one. Needs no MPI: a plain run never initialises it (a singleton MPI_Init
 * starts Open MPI's runtime and costs far more than loading a small data set). */
int nb_dist_launched(void);
/* This process's rank as the launcher names it (OMPI_COMM_WORLD_RANK, PMI_RANK), or 0: lets a
 * command that does not join the job print its messages once. */
int nb_dist_launched_rank(void);

/* Joins the MPI job (MPI_Init_thread, MPI_THREAD_FUNNELED: only the calling thread talks
 * MPI; the matrix products' own threads never do). Errors come back as statuses
 * (MPI_ERRORS_RETURN on a private communicator); a failure after MPI_Init, when the other
 * ranks may already be waiting, aborts the job. NB_ENOTSUP when built without MPI. One per
 * process; caller owns it. */
nb_dist *nb_dist_new(nb_error *err);
/* Leaves the job (MPI_Finalize). Collective: every rank must call it, after the same
 * sequence of collective calls; a rank that cannot (an error only it saw) calls
 * nb_dist_abort instead. NULL is a no-op. */
void nb_dist_free(nb_dist *d);
/* Ends every rank of the job with `status` (MPI_Abort); does not return. NULL: returns. */
void nb_dist_abort(nb_dist *d, int status);
int nb_dist_rank(const nb_dist *d);       /* 0-based; rank 0 writes every file */
int nb_dist_size(const nb_dist *d);       /* N */
int nb_dist_local_size(const nb_dist *d); /* ranks on this host */
/* Threads for this rank's matrix products: its share of the host's cores — the cores it is
 * bound to (mpirun binds each rank to one core when N ≤ 2) and at most online cores / ranks
 * on the host; at least 1. */
int nb_dist_threads(const nb_dist *d);

/* This rank's contiguous share [*first, *first + *count) of n rows: the first n mod N ranks
 * take ⌈n/N⌉ rows, the others ⌊n/N⌋. */
void nb_dist_share(const nb_dist *d, int64_t n, int64_t *first, int64_t *count);

/* One training step's all-reduce: sums g[0..n) over all ranks, in place (one MPI_Allreduce
 * of the whole flat buffer, split only past 2^31 floats). *loss is this rank's loss; if it is
 * not finite, g[0] is replaced by NaN before the sum, so every rank sees a non-finite g[0]
 * afterwards and sets *loss to NaN: all ranks then stop at the same step, without a second
 * message. Time spent here is counted in nb_dist_stats. */
nb_status nb_dist_allreduce_grads(nb_dist *d, float *g, size_t n, double *loss, nb_error *err);
/* Sums v[0..n) over all ranks, in place (epoch statistics). */
nb_status nb_dist_sum(nb_dist *d, double *v, int n, nb_error *err);
/* Replaces v[0..n) by its mean over all ranks, in place. Batch norm under data parallelism:
 * each rank normalises its share of a batch by that share's own mean and variance (as
 * PyTorch's DistributedDataParallel without SyncBatchNorm; the gradient all-reduce then sums
 * the shares' gradients), and after every step the trainer averages the buffers (running
 * statistics) over the ranks with this. The averaged running mean is exactly the running
 * mean of the whole batch's mean when the shares are equal; the averaged running variance is
 * the mean of the shares' unbiased variances (the spread between shares' means is left
 * out). The replicas stay equal, so the model file and checkpoint rank 0 writes hold the
 * average. */
nb_status nb_dist_average(nb_dist *d, float *v, size_t n, nb_error *err);
/* 1 on every rank if flag is non-zero on any (an agreed decision, e.g. to stop). */
int nb_dist_any(nb_dist *d, int flag);
/* Agrees on an outcome (collective): returns the largest status of all ranks (0 when every
 * rank succeeded) and sets *first (may be NULL) to the lowest rank whose status is non-zero,
 * or -1 — the one rank that reports the failure, so that it is printed once. Lets ranks that
 * failed at the same point (before training, or at its end) leave the job normally
 * (nb_dist_free) instead of aborting it. */
int nb_dist_agree(nb_dist *d, int status, int *first);
/* Checks that w[0..n) is bitwise the same on every rank (a 64-bit hash compared across
 * ranks): NB_EDIST, on every rank, naming the first rank that differs from rank 0. The trainer
 * runs it after every epoch (nb_trainer_set_dist). */
nb_status nb_dist_check_replicas(nb_dist *d, const float *w, size_t n, nb_error *err);
/* Gives rank r > 0 a generator derived from rng's state and r (rank 0 keeps rng), so that
 * the ranks' Dropout masks are independent draws rather than copies. The trainer does this to
 * its model's generator (nb_trainer_set_dist, nb_trainer_resume). */
void nb_dist_fork_rng(const nb_dist *d, nb_rng *rng);

/* Communication counters since nb_dist_new: gradient all-reduces, bytes reduced per rank,
 * and the seconds spent in them (MPI_Wtime around the call: transfer plus waiting for the
 * slowest rank). */
typedef struct nb_dist_stats {
    int64_t allreduces;
    double bytes;
    double seconds;
} nb_dist_stats;
void nb_dist_get_stats(const nb_dist *d, nb_dist_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* NABLA_DIST_H */
