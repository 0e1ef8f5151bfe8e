/* Distributed data-parallel training over MPI: the synchronous scheme of PyTorch's
 * DistributedDataParallel and Horovod (docs/lecture.md §2: a minibatch's gradient is an average
 * over its samples, so the samples can be spread over machines and the averages combined).
 *
 * With N ranks and a global batch of B rows, rank r computes on its own n_r rows
 *     g_r = (n_r/B) · ∂/∂w (1/n_r Σ_{p∈share r} C_p) = 1/B Σ_{p∈share r} ∂C_p/∂w
 * and one all-reduce (sum) gives every rank Σ_r g_r = ∂L(B)/∂w, the gradient of the whole
 * batch. Only the order of the floating-point additions differs from one process: a single
 * process sums all B rows inside one matrix product (dW += dYᵀX); here each rank sums its
 * rows and the all-reduce then adds the N partial sums. Float addition is not associative,
 * so the gradients differ by rounding (relative ~1e-7 per step), exactly as they do in one
 * process between thread counts or matrix-product backends. In a well-conditioned run (a
 * smooth net, a moderate step) the weights of N ranks stay within ~1e-6 of one process's
 * (tests/cli_mpi.sh); where the dynamics amplify perturbations — a ReLU pre-activation
 * within rounding of its kink, a learning rate near the edge of stability — any rounding
 * difference grows, and long runs end at different, equally good weights. Every rank
 * receives the same bits from the all-reduce (float addition is commutative, and Open MPI
 * forms each partial sum once or symmetrically), and nb_dist_check_replicas verifies it.
 *
 * Every MPI call of the library is in this file, behind NB_HAVE_MPI. */
#ifdef __linux__
#define _GNU_SOURCE /* sched_getaffinity */
#include <sched.h>
#endif
#include "nabla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The first of Open MPI's and PMI's variables (names[0], names[1]) that holds an integer
 * from lo to 2^30 − 1, or fallback. */
static int launcher_number(const char *const names[2], long lo, int fallback)
{
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        char *end;
        long n = v ? strtol(v, &end, 10) : 0;
        if (v && *v && !*end && n >= lo && n < (1L << 30))
            return (int)n;
    }
    return fallback;
}

int nb_dist_launched(void)
{
    static const char *const vars[2] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    return launcher_number(vars, 1, 0);
}

int nb_dist_launched_rank(void)
{
    static const char *const vars[2] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK"};
    return launcher_number(vars, 0, 0);
}

int nb_dist_threads(const nb_dist *d)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = online > 0 ? (int)(online / nb_dist_local_size(d)) : 1;
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < threads)
        threads = CPU_COUNT(&set);
#endif
    return threads > 0 ? threads : 1;
}

/* The first n mod N ranks take one row more: rank r starts at r·q + min(r, n mod N). */
static void share(int rank, int size, int64_t n, int64_t *first, int64_t *count)
{
    int64_t q = n / size, extra = n % size;
    *first = rank * q + (rank < extra ? rank : extra);
    *count = q + (rank < extra);
}

#ifdef NB_HAVE_MPI
#include <limits.h>
#include <mpi.h>

/* A 64-bit hash of the bits of w (FNV-1a over 32-bit words, then a final mix). */
static uint64_t hash_floats(const float *w, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &w[i], sizeof bits);
        h = (h ^ bits) * 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

struct nb_dist {
    MPI_Comm comm; /* a duplicate of MPI_COMM_WORLD whose errors return as codes */
    int rank, size, local_size;
    nb_dist_stats stats;
};

int nb_dist_available(void) { return 1; }

static nb_status mpi_error(nb_error *err, int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS)
        len = 0;
    text[len] = 0;
    return nb_error_set(err, NB_EIO, "%s failed: %s (another rank may have died)", what,
                        len ? text : "unknown MPI error");
}

nb_dist *nb_dist_new(nb_error *err)
{
    int initialized = 0, provided = 0, rc;
    MPI_Initialized(&initialized);
    if (initialized) {
        nb_error_set(err, NB_EINVAL, "MPI is already initialised: one distributed context per process");
        return NULL;
    }
    if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS) {
        mpi_error(err, rc, "joining the MPI job");
        return NULL;
    }
    nb_dist *d = calloc(1, sizeof *d);
    MPI_Comm local = MPI_COMM_NULL;
    if (!d) {
        nb_error_set(err, NB_ENOMEM, "out of memory for the MPI context");
        MPI_Finalize();
        return NULL;
    }
    /* provided < FUNNELED (a library built without threads) still works: MPI is only ever
     * called from this thread. */
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm)) != MPI_SUCCESS ||
        (rc = MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN)) != MPI_SUCCESS ||
        (rc = MPI_Comm_rank(d->comm, &d->rank)) != MPI_SUCCESS ||
        (rc = MPI_Comm_size(d->comm, &d->size)) != MPI_SUCCESS ||
        (rc = MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL,
                                  &local)) != MPI_SUCCESS ||
        (rc = MPI_Comm_size(local, &d->local_size)) != MPI_SUCCESS) {
        mpi_error(err, rc, "setting up the MPI communicator");
        free(d);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return NULL;
    }
    MPI_Comm_free(&local);
    return d;
}

void nb_dist_free(nb_dist *d)
{
    if (!d)
        return;
    MPI_Comm_free(&d->comm);
    free(d);
    MPI_Finalize();
}

void nb_dist_abort(nb_dist *d, int status)
{
    if (d)
        MPI_Abort(d->comm, status);
}

int nb_dist_rank(const nb_dist *d) { return d ? d->rank : 0; }
int nb_dist_size(const nb_dist *d) { return d ? d->size : 1; }
int nb_dist_local_size(const nb_dist *d) { return d ? d->local_size : 1; }

void nb_dist_share(const nb_dist *d, int64_t n, int64_t *first, int64_t *count)
{
    share(nb_dist_rank(d), nb_dist_size(d), n, first, count);
}

nb_status nb_dist_allreduce_grads(nb_dist *d, float *g, size_t n, double *loss, nb_error *err)
{
    if (!d)
        return NB_OK;
    if (n && !isfinite(*loss))
        g[0] = NAN; /* the stop signal travels with the sum: NaN + anything is NaN */
    double start = MPI_Wtime();
    for (size_t at = 0; at < n;) {
        int count = n - at > (size_t)INT_MAX ? INT_MAX : (int)(n - at);
        int rc = MPI_Allreduce(MPI_IN_PLACE, g + at, count, MPI_FLOAT, MPI_SUM, d->comm);
        if (rc != MPI_SUCCESS)
            return mpi_error(err, rc, "the gradient all-reduce");
        at += (size_t)count;
    }
    d->stats.seconds += MPI_Wtime() - start;
    d->stats.allreduces++;
    d->stats.bytes += (double)n * sizeof(float);
    if (n && !isfinite(g[0]) && isfinite(*loss))
        *loss = NAN;
    return NB_OK;
}

nb_status nb_dist_average(nb_dist *d, float *v, size_t n, nb_error *err)
{
    if (!d || !n)
        return NB_OK;
    if (n > (size_t)INT_MAX)
        return nb_error_set(err, NB_EINVAL, "%zu buffer floats to average: more than 2^31", n);
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, d->comm);
    if (rc != MPI_SUCCESS)
        return mpi_error(err, rc, "the buffer all-reduce");
    for (size_t i = 0; i < n; i++)
        v[i] /= (float)d->size;
    return NB_OK;
}

nb_status nb_dist_sum(nb_dist *d, double *v, int n, nb_error *err)
{
    int rc;
    if (d && (rc = MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, d->comm)) != MPI_SUCCESS)
        return mpi_error(err, rc, "the statistics all-reduce");
    return NB_OK;
}

int nb_dist_any(nb_dist *d, int flag)
{
    int any = flag != 0;
    if (d && MPI_Allreduce(&flag, &any, 1, MPI_INT, MPI_LOR, d->comm) != MPI_SUCCESS)
        return 1; /* cannot agree: stopping is the safe answer */
    return any != 0;
}

int nb_dist_agree(nb_dist *d, int status, int *first)
{
    if (!d) {
        if (first)
            *first = status ? 0 : -1;
        return status;
    }
    /* one all-reduce (max) of {status, N − rank if failed}: the largest status, and the
     * lowest failing rank as the largest N − rank */
    int mine[2] = {status, status ? d->size - d->rank : 0}, all[2] = {status, mine[1]};
    if (MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MAX, d->comm) != MPI_SUCCESS) {
        all[0] = status ? status : 1; /* cannot agree: failing is the safe answer */
        all[1] = d->size - d->rank;
    }
    if (first)
        *first = all[1] ? d->size - all[1] : -1;
    return all[0];
}

nb_status nb_dist_check_replicas(nb_dist *d, const float *w, size_t n, nb_error *err)
{
    if (!d)
        return NB_OK;
    uint64_t mine = hash_floats(w, n), *all = malloc((size_t)d->size * sizeof *all);
    if (!all)
        return nb_error_set(err, NB_ENOMEM, "out of memory for the replica check");
    int rc = MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, d->comm);
    nb_status s = NB_OK;
    if (rc != MPI_SUCCESS)
        s = mpi_error(err, rc, "the replica check");
    for (int r = 1; !s && r < d->size; r++)
        if (all[r] != all[0])
            s = nb_error_set(err, NB_EDIST, "the weights of rank %d differ from rank 0's "
                             "(the all-reduce did not give every rank the same bits)", r);
    free(all);
    return s;
}

void nb_dist_get_stats(const nb_dist *d, nb_dist_stats *stats)
{
    static const nb_dist_stats none;
    *stats = d ? d->stats : none;
}

#else /* built without MPI: one process, and nb_dist_new says why there is no more */

struct nb_dist {
    int unused;
};

int nb_dist_available(void) { return 0; }

nb_dist *nb_dist_new(nb_error *err)
{
    nb_error_set(err, NB_ENOTSUP, "distributed training is unavailable: nabla was built without "
                 "MPI (install libopenmpi-dev and rebuild)");
    return NULL;
}

void nb_dist_free(nb_dist *d) { (void)d; }
void nb_dist_abort(nb_dist *d, int status) { (void)d; (void)status; }
int nb_dist_rank(const nb_dist *d) { (void)d; return 0; }
int nb_dist_size(const nb_dist *d) { (void)d; return 1; }
int nb_dist_local_size(const nb_dist *d) { (void)d; return 1; }

void nb_dist_share(const nb_dist *d, int64_t n, int64_t *first, int64_t *count)
{
    (void)d;
    share(0, 1, n, first, count);
}

nb_status nb_dist_allreduce_grads(nb_dist *d, float *g, size_t n, double *loss, nb_error *err)
{
    (void)d; (void)g; (void)n; (void)loss; (void)err;
    return NB_OK;
}

nb_status nb_dist_sum(nb_dist *d, double *v, int n, nb_error *err)
{
    (void)d; (void)v; (void)n; (void)err;
    return NB_OK;
}

nb_status nb_dist_average(nb_dist *d, float *v, size_t n, nb_error *err)
{
    (void)d; (void)v; (void)n; (void)err;
    return NB_OK;
}

int nb_dist_any(nb_dist *d, int flag) { (void)d; return flag != 0; }

int nb_dist_agree(nb_dist *d, int status, int *first)
{
    (void)d;
    if (first)
        *first = status ? 0 : -1;
    return status;
}

nb_status nb_dist_check_replicas(nb_dist *d, const float *w, size_t n, nb_error *err)
{
    (void)d; (void)w; (void)n; (void)err;
    return NB_OK;
}

void nb_dist_get_stats(const nb_dist *d, nb_dist_stats *stats)
{
    (void)d;
    memset(stats, 0, sizeof *stats);
}
#endif

void nb_dist_fork_rng(const nb_dist *d, nb_rng *rng)
{
    int rank = nb_dist_rank(d);
    if (rank > 0) {
        nb_rng copy = *rng;
        nb_rng_seed(rng, nb_rng_next(&copy) ^ (0x9e3779b97f4a7c15ull * (uint64_t)rank));
    }
}
