/* Learning-rate schedules (LECTURE §5.6: "a schedule that lowers the learning rate as
 * training goes on"). Closed forms of torch.optim.lr_scheduler's StepLR, ExponentialLR and
 * CosineAnnealingLR, with an optional linear warm-up in front.
 *
 * t is the 0-based index of the optimiser step about to be taken (torch's last_epoch when
 * scheduler.step() is called once per optimiser step). Arithmetic is in double, on the
 * settings widened to the decimals they print as (0.9f → 0.9, as torch gets them from
 * Python), rounded to float once at the end. torch's schedulers update the rate recursively
 * in double, which agrees with the closed form to within a few double ulps, so the floats
 * usually agree exactly (tests/torch_optim.py compares them).
 */
#include "nabla.h"

#include <math.h>

static const double pi = 3.14159265358979323846;

/* (A copy of optim.c's.) The double nearest to the shortest decimal (≤ 9 significant
 * digits) that reads back as x: 0.9f → 0.9, 1e-8f → 1e-8, i.e. the number a Python user
 * would have typed. Each candidate D·10^-k is one correctly rounded operation on exact
 * operands (D < 10^9, 10^k exact for k ≤ 22), so it equals strtod's reading of the
 * decimal — without printf, locale or allocation. Outside that range, or if no candidate
 * fits, x itself. */
static double widen_decimal(float x)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (!isfinite(x) || x == 0.0f)
        return (double)x;
    double a = fabs((double)x);
    int e = (int)floor(log10(a)); /* a = d.ddd × 10^e */
    for (int digits = 1; digits <= 9; digits++) {
        int k = digits - 1 - e; /* a·10^k has `digits` digits before the point */
        if (k > 22 || k < -22)
            break;
        double d = k >= 0 ? nearbyint(a * p10[k]) / p10[k] : nearbyint(a / p10[-k]) * p10[-k];
        if ((float)d == (float)a)
            return copysign(d, (double)x);
    }
    return (double)x;
}

/* Warm-up: for t < warmup the rate is lr·(t+1)/warmup, rising linearly to lr at the last
 * warm-up step. (t+1) rather than t so that the first step is not wasted at rate 0 — this is
 * torch's LinearLR(start_factor=1/warmup, total_iters=warmup−1).
 * After warm-up the schedule runs on its own clock t' = t − warmup, so it starts from lr.
 *
 * Cosine: `total` counts all steps including the warm-up, and the cosine spans the rest,
 * T = total − warmup: lr(t') = min_lr + (lr − min_lr)(1 + cos(π t'/T))/2, which reaches
 * min_lr at t' = T, one past the last step. From T on the rate stays at min_lr (torch's
 * CosineAnnealingLR would rise again).
 * A cosine schedule without a positive T is constant.
 *
 * Ill-posed settings do not fail (this returns a number, not a status): a step schedule
 * with step_size ≤ 0 is constant, and t < 0 counts as 0. */
float nb_schedule_lr(const nb_schedule *s, float lr, int64_t t)
{
    if (!s)
        return lr;
    if (t < 0)
        t = 0;
    double base = widen_decimal(lr);
    if (s->warmup > 0) {
        if (t < s->warmup)
            return (float)(base * (double)(t + 1) / (double)s->warmup);
        t -= s->warmup;
    }
    switch (s->kind) {
    case NB_SCHED_STEP: /* StepLR: lr·γ^⌊t/step_size⌋ */
        if (s->step_size <= 0)
            return lr;
        return (float)(base * pow(widen_decimal(s->gamma), (double)(t / s->step_size)));
    case NB_SCHED_EXPONENTIAL: /* ExponentialLR: lr·γ^t */
        return (float)(base * pow(widen_decimal(s->gamma), (double)t));
    case NB_SCHED_COSINE: { /* CosineAnnealingLR, closed form */
        int64_t T = s->total - (s->warmup > 0 ? s->warmup : 0);
        if (T <= 0)
            return lr;
        if (t >= T)
            return s->min_lr;
        double lo = widen_decimal(s->min_lr);
        return (float)(lo + (base - lo) * (1.0 + cos(pi * (double)t / (double)T)) / 2.0);
    }
    case NB_SCHED_CONSTANT:
    default:
        return lr;
    }
}
