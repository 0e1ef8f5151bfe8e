/* The gradient all-reduce alone: `mpirun -np N build/bench/bench_allreduce [FLOATS...]` times
 * nb_dist_allreduce_grads on buffers of the given sizes (default: the MLP 784-256-128-10,
 * 235,146 floats, and 784-2560-1280-10, 5,300,490 floats) and prints, per size, the time per
 * call and the bus bandwidth 2(N−1)/N · bytes / time — what a ring all-reduce moves through
 * each rank's link — for the README's cost model. Without MPI it says so and exits 0. */
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (!nb_dist_available() || !nb_dist_launched()) {
        printf("bench_allreduce: %s\n", nb_dist_available()
                   ? "run it under mpirun: mpirun -np 2 build/bench/bench_allreduce"
                   : "nabla was built without MPI");
        return 0;
    }
    nb_error err = {0};
    nb_dist *d = nb_dist_new(&err);
    if (!d) {
        fprintf(stderr, "bench_allreduce: %s\n", err.msg);
        return 1;
    }
    static const long defaults[] = {235146, 5300490};
    int count = argc > 1 ? argc - 1 : 2, N = nb_dist_size(d), status = 0;
    if (nb_dist_rank(d) == 0)
        printf("%d ranks (%d on this host)\n%12s %10s %12s %12s %14s\n", N,
               nb_dist_local_size(d), "floats", "MB", "calls", "ms/call", "bus GB/s");
    for (int i = 0; i < count && !status; i++) {
        long n = argc > 1 ? strtol(argv[i + 1], NULL, 10) : defaults[i];
        float *g = n > 0 ? malloc((size_t)n * sizeof *g) : NULL;
        if (!g) {
            fprintf(stderr, "bench_allreduce: cannot allocate %ld floats\n", n);
            status = 1;
            break;
        }
        for (long k = 0; k < n; k++)
            g[k] = 1e-3f * (float)(k % 1000);
        double loss = 1.0;
        nb_dist_stats start, before, after;
        /* warm-up (connections, buffers), then enough calls for about a second */
        nb_dist_get_stats(d, &start);
        for (int k = 0; k < 3 && !status; k++)
            status = nb_dist_allreduce_grads(d, g, (size_t)n, &loss, &err) != NB_OK;
        nb_dist_get_stats(d, &before);
        double per = (before.seconds - start.seconds) / 3.0;
        int calls = per > 0 ? (int)(1.0 / per) : 100;
        calls = calls < 5 ? 5 : calls > 2000 ? 2000 : calls;
        double v = calls; /* every rank runs rank 0's count */
        if (!status)
            status = nb_dist_sum(d, &v, 1, &err) != NB_OK;
        calls = (int)(v / N);
        for (int k = 0; k < calls && !status; k++)
            status = nb_dist_allreduce_grads(d, g, (size_t)n, &loss, &err) != NB_OK;
        nb_dist_get_stats(d, &after);
        double t = (after.seconds - before.seconds) / (double)calls, bytes = 4.0 * (double)n;
        if (!status && nb_dist_rank(d) == 0)
            printf("%12ld %10.2f %12d %12.3f %14.2f\n", n, bytes / 1e6, calls, 1e3 * t,
                   2.0 * (N - 1) / N * bytes / t / 1e9);
        free(g);
    }
    if (status) {
        fprintf(stderr, "bench_allreduce: %s\n", err.msg);
        nb_dist_abort(d, 1);
    }
    nb_dist_free(d);
    return 0;
}
