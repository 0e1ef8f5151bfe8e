/* Once built for a batch size, training steps allocate nothing: this program counts every
 * allocation nabla makes while epochs 2 and 3 run (epoch 1 warms up every cache, e.g. oneDNN's
 * primitives), for each matrix-product backend built in, and asserts there are none — in
 * every build:
 *   - normally, malloc/calloc/realloc are wrapped here and forward to glibc's;
 *   - under AddressSanitizer, whose allocator cannot be wrapped so, through its allocation
 *     hook (__sanitizer_install_malloc_and_free_hooks).
 * Two models: an MLP on spirals, and a small CNN (convolutions wide enough for oneDNN's
 * blocked layouts, batch norm, max pooling — the image kernels and their primitive caches)
 * on random 1×16×16 images.
 * An allocation is nabla's when the first frame of its call stack outside the allocator, the
 * C library and the C++ runtime lies in this program, which nabla is linked into statically;
 * oneDNN's own (its primitives build an argument map per call, inside libdnnl) lies in libdnnl
 * and is reported, not asserted. */
#define _GNU_SOURCE /* dladdr */
#include "check.h"
#include "nabla.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#ifndef ASAN
#define ASAN 0
#endif

static long allocations, foreign; /* nabla's, and the libraries' */
static int counting;
#if ASAN
static int in_hook;
#endif

extern char __executable_start, etext; /* this program's code (the linker's symbols) */

static int in_program(const void *pc)
{
    return (const char *)pc >= &__executable_start && (const char *)pc < &etext;
}

static void tally(int nabla)
{
    if (nabla)
        allocations++;
    else
        foreign++;
}

#if ASAN
/* <sanitizer/allocator_interface.h>, which not every compiler installation ships */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

/* Called inside the sanitizer's allocator: the stack starts with this hook (in this program),
 * then the sanitizer's runtime; the first frame after those that lies in this program is
 * nabla's call, one in another library (libdnnl) is that library's. */
static void on_malloc(const volatile void *p, size_t size)
{
    (void)p;
    (void)size;
    if (!counting || in_hook)
        return;
    in_hook = 1; /* backtrace and dladdr may allocate themselves */
    void *frames[48];
    int n = backtrace(frames, 48), i = 0, nabla = 0;
    while (i < n && !in_program(frames[i])) /* the sanitizer's backtrace interceptor */
        i++;
    while (i < n && in_program(frames[i])) /* this hook */
        i++;
    for (; i < n; i++) {
        if (in_program(frames[i])) {
            nabla = 1;
            break;
        }
        Dl_info info;
        if (!dladdr(frames[i], &info) || !info.dli_fname)
            continue;
        const char *f = info.dli_fname;
        if (!strstr(f, "libc.so") && !strstr(f, "libstdc++") && !strstr(f, "libgcc") &&
            !strstr(f, "asan") && !strstr(f, "ubsan"))
            break; /* another library's own allocation */
    }
    tally(nabla);
    in_hook = 0;
}

static void on_free(const volatile void *p) { (void)p; }

static void install(void) { __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free); }
#else
/* glibc's own entry points, so these wrappers can count and forward. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

/* The wrappers' callers are judged: a direct call from nabla is in this program; operator new
 * and the libraries' calls are not. */
#define JUDGE_CALLER()                                                                   \
    do {                                                                                 \
        if (counting)                                                                    \
            tally(in_program(__builtin_return_address(0)));                              \
    } while (0)

void *malloc(size_t size)
{
    JUDGE_CALLER();
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    JUDGE_CALLER();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    JUDGE_CALLER();
    return __libc_realloc(p, size);
}

static void install(void) {}
#endif

static int on_epoch(void *user, const nb_epoch_stats *s)
{
    long *during = user;
    if (s->epoch == 1) {
        allocations = foreign = 0;
        counting = 1;
    } else if (s->epoch == 3) {
        counting = 0;
        *during = allocations;
    }
    return 0;
}

/* 200 random 1×16×16 "images" in 3 classes (the label is the brightest third of the
 * image: learnable, not that it matters here). */
static nb_status random_images(nb_dataset *ds)
{
    *ds = (nb_dataset){.count = 200, .ndim = 3, .dims = {1, 16, 16}, .features = 256,
                       .dtype = NB_F32, .classes = 3};
    ds->f32 = malloc((size_t)(ds->count * ds->features) * sizeof *ds->f32);
    ds->labels = malloc((size_t)ds->count * sizeof *ds->labels);
    if (!ds->f32 || !ds->labels)
        return NB_ENOMEM;
    unsigned state = 12345u;
    for (int64_t i = 0; i < ds->count; i++) {
        float third[3] = {0};
        for (int64_t f = 0; f < ds->features; f++) {
            state = state * 1664525u + 1013904223u;
            float v = (float)(state >> 8) / 16777216.0f;
            ds->f32[i * ds->features + f] = v;
            third[f * 3 / ds->features] += v;
        }
        ds->labels[i] = third[1] > third[0] ? (third[2] > third[1] ? 2 : 1)
                                            : (third[2] > third[0] ? 2 : 0);
    }
    return NB_OK;
}

static const char *const mlp = "x = input(2)\nh = linear(x, 32)\nr = relu(h)\n"
                               "d = dropout(r, 0.2)\no = linear(d, 3)";
static const char *const cnn = "x = input(1, 16, 16)\n"
                               "c1 = conv2d(x, 8, 3, padding=1, bias=false)\n"
                               "b1 = batch_norm(c1)\nr1 = relu(b1)\np1 = max_pool2d(r1, 2)\n"
                               "c2 = conv2d(p1, 16, 3, padding=1)\nb2 = batch_norm(c2)\n"
                               "r2 = relu(b2)\np2 = avg_pool2d(r2, 2)\nf = flatten(p2)\n"
                               "o = linear(f, 3)";

int main(void)
{
    void *warm[1];
    backtrace(warm, 1); /* loads what backtrace needs before any counting */
    install();
    for (int b = NB_GEMM_ONEDNN; b <= NB_GEMM_PORTABLE; b++) {
        for (int image = 0; image < 2; image++) {
            if (!nb_gemm_available((nb_gemm_backend)b))
                continue;
            nb_error err = {0};
            nb_gemm *gemm = nb_gemm_new((nb_gemm_backend)b, 1, &err);
            nb_dataset ds = {0};
            if (image)
                CHECK(random_images(&ds) == NB_OK);
            else
                CHECK_OK(nb_spirals(&ds, 300, 3, 0.1f, 1, &err), &err);
            nb_model *m = nb_model_new(image ? cnn : mlp, "alloc", 1, gemm, &err);
            CHECK(m != NULL);
            nb_rng rng;
            nb_rng_seed(&rng, 1);
            nb_graph_init_params(nb_model_graph(m), NB_INIT_KAIMING_UNIFORM, &rng);
            nb_train_config cfg;
            nb_train_config_default(&cfg);
            cfg.epochs = 3;
            cfg.batch = image ? 48 : 64; /* a short last batch every epoch */
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
            CHECK_MSG(during == 0, "%s, %s: %ld allocations by nabla during two epochs of "
                      "training", nb_gemm_name(gemm), image ? "CNN" : "MLP", during);
            int64_t steps = 2 * ((ds.count + cfg.batch - 1) / cfg.batch);
            printf("  %s, %s: %ld allocations by nabla in epochs 2-3 (%lld steps); %ld "
                   "inside the libraries%s\n", nb_gemm_name(gemm), image ? "CNN" : "MLP",
                   during, (long long)steps, foreign,
                   ASAN ? " (counted through AddressSanitizer's hook)" : "");
            nb_trainer_free(t);
            nb_model_free(m);
            nb_dataset_free(&ds);
            nb_gemm_free(gemm);
        }
    }
    return check_finish("test_alloc");
}
