/* Internal: the OpenMP runtime oneDNN runs on, found at run time. Debian's oneDNN 2.6 is built
 * on OpenMP (libgomp) and has no thread-count call of its own, so nabla caps each of its pool
 * threads' OpenMP team through omp_set_num_threads, looked up with dlsym so that nothing extra
 * is linked. Shared by the fp32 (gemm_onednn.c) and bf16 (bf16_linear.c) oneDNN paths. */
#ifndef NB_OPENMP_H
#define NB_OPENMP_H

typedef struct nb_openmp {
    void *lib; /* dlopen handle the functions came from, or NULL when not found */
    void (*set_num_threads)(int);
    int (*get_max_threads)(void);
} nb_openmp;

/* Finds the runtime (zeroes *omp when oneDNN does not run on OpenMP or it is not loaded). */
void nb_openmp_find(nb_openmp *omp);
/* Sets the calling thread's team size to `threads` if it differs (no-op when not found). */
void nb_openmp_cap(const nb_openmp *omp, int threads);
void nb_openmp_close(nb_openmp *omp);

#endif
