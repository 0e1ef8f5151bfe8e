/* Once built for a batch size, training steps allocate nothing: this program counts every
 * malloc/calloc/realloc made while epochs 2 and 3 run (epoch 1 warms up every cache, e.g.
 * oneDNN's primitives), for each matrix-product backend built in. Under AddressSanitizer,
 * whose allocator cannot be interposed this way, the count is skipped. */
#include "check.h"
#include "nabla.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNTING 0
#endif
#endif
#ifndef COUNTING
#define COUNTING 1
#endif

static long allocations;
static int counting;

#if COUNTING
/* glibc's own entry points, so these wrappers can count and forward. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

void *malloc(size_t size)
{
    allocations += counting;
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    allocations += counting;
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    allocations += counting;
    return __libc_realloc(p, size);
}
#endif

static int on_epoch(void *user, const nb_epoch_stats *s)
{
    long *during = user;
    if (s->epoch == 1) {
        allocations = 0;
        counting = 1;
    } else if (s->epoch == 3) {
        counting = 0;
        *during = allocations;
    }
    return 0;
}

int main(void)
{
    for (int b = NB_GEMM_ONEDNN; b <= NB_GEMM_PORTABLE; b++) {
        if (!nb_gemm_available((nb_gemm_backend)b))
            continue;
        nb_error err = {0};
        nb_gemm *gemm = nb_gemm_new((nb_gemm_backend)b, 1, &err);
        nb_dataset ds = {0};
        CHECK_OK(nb_spirals(&ds, 300, 3, 0.1f, 1, &err), &err);
        nb_model *m = nb_model_new("x = input(2)\nh = linear(x, 32)\nr = relu(h)\nd = dropout(r, 0.2)\n"
                                   "o = linear(d, 3)", "alloc", 1, gemm, &err);
        CHECK(m != NULL);
        nb_rng rng;
        nb_rng_seed(&rng, 1);
        nb_graph_init_params(nb_model_graph(m), NB_INIT_KAIMING_UNIFORM, &rng);
        nb_train_config cfg;
        nb_train_config_default(&cfg);
        cfg.epochs = 3;
        cfg.batch = 64; /* 900 samples: a short last batch every epoch */
        cfg.order = NB_ORDER_STRATIFIED;
        cfg.optim.kind = NB_OPT_ADAM;
        cfg.optim.lr = 1e-3f;
        cfg.optim.momentum = 0;
        cfg.optim.clip_norm = 1.0f;
        nb_trainer *t = nb_trainer_new(m, &ds, NULL, &cfg, &err);
        CHECK(t != NULL);
        long during = -1;
        nb_train_callbacks cb = {.user = &during, .epoch_end = on_epoch};
        CHECK_OK(nb_trainer_run(t, &cb, &err), &err);
        /* oneDNN's primitive execution builds its argument map (a std::unordered_map inside
         * the library) on every call; that is oneDNN's allocation, not nabla's, and is
         * reported rather than asserted. */
        if (COUNTING && b != NB_GEMM_ONEDNN)
            CHECK_MSG(during == 0, "%s: %ld allocations during two epochs of training",
                      nb_gemm_name(gemm), during);
        printf("  %s: %ld allocations in epochs 2-3 (%d steps)%s\n", nb_gemm_name(gemm), during,
               2 * 15, COUNTING ? "" : " (not counted under ASan)");
        nb_trainer_free(t);
        nb_model_free(m);
        nb_dataset_free(&ds);
        nb_gemm_free(gemm);
    }
    return check_finish("test_alloc");
}
