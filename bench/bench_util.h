/* Shared by the benchmark programs: a monotonic clock and the median's comparison. */
#ifndef NB_BENCH_UTIL_H
#define NB_BENCH_UTIL_H

#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
