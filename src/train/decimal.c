/* Reading a float setting as the decimal its user typed (shared by the optimisers and the
 * schedules, which must match torch.optim, whose settings are Python doubles). */
#include "train/decimal.h"

#include <math.h>

/* The double nearest to the shortest decimal (≤ 9 significant digits) that reads back as x:
 * 0.9f → 0.9, 1e-8f → 1e-8, i.e. the number a Python user would have typed. Each candidate
 * D·10^-k is one correctly rounded operation on exact operands (D < 10^9, 10^k exact for
 * k ≤ 22), so it equals strtod's reading of the decimal — without printf, locale or
 * allocation. Outside that range, or if no candidate fits, x itself. */
double nb_widen_decimal(float x)
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
