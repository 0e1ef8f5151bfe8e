/* A tiny test harness: every CHECK that fails is reported with its line and counted; the
 * program exits 1 if any failed, else 77 (SKIP, scripts/run-tests.sh) if a part could not
 * run for want of a dependency (check_skip), else 0. So a test cannot pass by accident, nor
 * by skipping. */
#ifndef NB_CHECK_H
#define NB_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static int check_failures;
static int check_count;
static int check_skips;

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        check_count++;                                                                   \
        if (!(cond)) {                                                                   \
            check_failures++;                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
        }                                                                                \
    } while (0)

#define CHECK_MSG(cond, ...)                                                             \
    do {                                                                                 \
        check_count++;                                                                   \
        if (!(cond)) {                                                                   \
            check_failures++;                                                            \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
        }                                                                                \
    } while (0)

/* |a − b| ≤ atol + rtol·|b| */
#define CHECK_NEAR(a, b, atol, rtol)                                                     \
    do {                                                                                 \
        double check_a_ = (a), check_b_ = (b);                                           \
        CHECK_MSG(fabs(check_a_ - check_b_) <= (atol) + (rtol)*fabs(check_b_),           \
                  "%s = %.9g, %s = %.9g", #a, check_a_, #b, check_b_);                   \
    } while (0)

#define CHECK_OK(expr, errp)                                                             \
    do {                                                                                 \
        int check_s_ = (expr);                                                           \
        CHECK_MSG(check_s_ == 0, "status %d: %s", check_s_, (errp)->msg);               \
    } while (0)

/* A part of the test that cannot run here: prints "SKIP " and the reason (say what to
 * install), and makes the program exit 77 unless a check failed. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static inline void check_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("SKIP ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    check_skips++;
}

static int check_finish(const char *name)
{
    printf("%s: %d checks, %d failed%s\n", name, check_count, check_failures,
           check_skips ? ", some skipped (see SKIP above)" : "");
    return check_failures ? 1 : check_skips ? 77 : 0;
}

#endif
