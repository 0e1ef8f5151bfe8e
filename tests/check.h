/* A tiny test harness: every CHECK that fails is reported with its line and counted, and
 * the program's exit status is the number of failures (capped), so a test cannot pass by
 * accident. */
#ifndef NB_CHECK_H
#define NB_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures;
static int check_count;

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

static int check_finish(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures > 100 ? 100 : check_failures;
}

#endif
