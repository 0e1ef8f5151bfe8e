/* Shared by the benchmark programs: a monotonic clock, the median, the peak resident memory,
 * and the set-up of the runs against PyTorch (Fashion-MNIST's IDX files, parameters drawn as
 * PyTorch draws them, one global normalisation). */
#ifndef NB_BENCH_UTIL_H
#define NB_BENCH_UTIL_H

#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
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

static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Peak resident memory of this program: Linux's VmHWM (the high-water mark of this address
 * space). ru_maxrss is the fallback; on Linux it also counts the parent's memory at fork when
 * that was larger (exec carries it over), which would charge the driver's to us. */
static inline long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    if (kb >= 0)
        return kb;
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* The next option of the command line from argv[*i] on, its value (the word after it, NULL
 * when there is none) in *value; a word without a leading '-' on the way is the mode (*mode).
 * NULL at the end. */
static inline const char *bench_next_option(int argc, char **argv, int *i, const char **mode,
                                            const char **value)
{
    while (*i < argc && argv[*i][0] != '-')
        *mode = argv[(*i)++];
    if (*i >= argc)
        return NULL;
    const char *option = argv[(*i)++];
    *value = *i < argc ? argv[(*i)++] : NULL;
    return option;
}

/* Prints "program: what: message" and exits 1. */
static inline void bench_fail(const char *program, const char *what, const nb_error *err)
{
    fprintf(stderr, "%s: %s: %s\n", program, what, err ? err->msg : "failed");
    exit(1);
}

/* The graph's parameters as raw float32, in its order, to path (PyTorch's starting point). */
static inline void bench_write_params(const char *program, const char *path, nb_graph *g)
{
    FILE *f = fopen(path, "wb");
    size_t n = nb_graph_param_floats(g);
    if (!f || fwrite(nb_graph_params(g), sizeof(float), n, f) != n || fclose(f))
        bench_fail(program, path, NULL);
}

/* Split "train" or "t10k" of the Fashion-MNIST IDX files in dir. */
static inline void bench_load_split(const char *program, const char *dir, const char *split,
                                    nb_dataset *ds)
{
    char images[1024], labels[1024];
    nb_error err = {0};
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    if (nb_idx_load(ds, images, labels, &err))
        bench_fail(program, images, &err);
}

/* m's parameters drawn as PyTorch's modules draw theirs, from seed, and the normalisation by
 * the training set's global mean and standard deviation: what the PyTorch side is given. */
static inline void bench_init_like_torch(const char *program, nb_model *m, uint64_t seed,
                                         const nb_dataset *train)
{
    nb_error err = {0};
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_graph_init_params(nb_model_graph(m), NB_INIT_TORCH, &rng);
    nb_norm norm;
    if (nb_norm_fit(&norm, train, NB_NORM_GLOBAL, 1e-5f, &err))
        bench_fail(program, "normalisation", &err);
    nb_model_set_norm(m, &norm);
}

#endif
