/* Learning-rate schedules (docs/lecture.md §5.6: "a schedule that lowers the learning rate as
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
#include "train/decimal.h"
#include "nabla.h"

#include <math.h>

static const double pi = 3.14159265358979323846;


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
    double base = nb_widen_decimal(lr);
    if (s->warmup > 0) {
        if (t < s->warmup)
            return (float)(base * (double)(t + 1) / (double)s->warmup);
        t -= s->warmup;
    }
    switch (s->kind) {
    case NB_SCHED_STEP: /* StepLR: lr·γ^⌊t/step_size⌋ */
        if (s->step_size <= 0)
            return lr;
        return (float)(base * pow(nb_widen_decimal(s->gamma), (double)(t / s->step_size)));
    case NB_SCHED_EXPONENTIAL: /* ExponentialLR: lr·γ^t */
        return (float)(base * pow(nb_widen_decimal(s->gamma), (double)t));
    case NB_SCHED_COSINE: { /* CosineAnnealingLR, closed form */
        int64_t T = s->total - (s->warmup > 0 ? s->warmup : 0);
        if (T <= 0)
            return lr;
        if (t >= T)
            return s->min_lr;
        double lo = nb_widen_decimal(s->min_lr);
        return (float)(lo + (base - lo) * (1.0 + cos(pi * (double)t / (double)T)) / 2.0);
    }
    case NB_SCHED_CONSTANT:
    default:
        return lr;
    }
}
