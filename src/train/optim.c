/* Optimisers — docs/lecture.md §2 (gradient descent), §5.3 (minibatch SGD), §5.6 (Adam),
 * §5.7 (L2 weight decay, L1 lasso), plus gradient-norm clipping.
 *
 * Every rule is torch.optim's single-tensor ("for-loop", foreach=False) implementation of
 * PyTorch 1.13, operation for operation, in float32, so that a run here and a run there give
 * the same bits (tests/torch_optim.py checks it; only clipping may differ by an ulp, see
 * clip_by_norm). Three details make that possible:
 *
 *  1. Fused multiply-adds. torch's `x.add(y, alpha=a)` is `vec::fmadd(y, a, x)` and
 *     `x.addcmul(y, z, value=a)` compiles to fma(a·y, z, x) in its AVX2/AVX-512 kernels, i.e.
 *     y·a + x rounded once. We call fmaf() at exactly those places (`addmul` below) and
 *     nowhere else. (torch's non-vectorised DEFAULT kernel rounds twice; against it we agree
 *     to about 1 ulp per operation.)
 *  2. Scalars in double. torch receives hyper-parameters as Python floats (doubles) and
 *     computes 1 − β₁, 1 − dampening, 1 − lr·wd, the bias corrections and lr/bc₁ in double
 *     before handing a float to the kernel. We do the same, widening each float setting
 *     and the step's learning rate through its shortest decimal form (widen_decimal), so
 *     that 0.9f becomes the double 0.9 — the number a Python user would have typed — and not
 *     0.89999997615814. This matters: 1 − 0.999f is 0.00099998713, 1.3·10⁻⁵ (relative)
 *     away from torch's 1 − β₂. (For a float from a schedule any faithful widening is as good.)
 *  3. Order. Clipping, then L1, then weight decay, then the rule itself — the order of a
 *     torch loop that calls clip_grad_norm_ and adds an L1 term to .grad before step().
 *
 * The step allocates nothing: all state lives in one block made by nb_optim_new.
 */
#include "train/decimal.h"
#include "backend/gemm_pool.h"
#include "core/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct nb_optim {
    nb_optim_config cfg;
    size_t n;
    int64_t steps;  /* completed steps; torch's state['step'] */
    int nstate;     /* SGD: 0 or 1 (momentum buffer); Adam/AdamW: 2 (m, v) */
    float *state;   /* nstate × n floats, one allocation */
    /* settings widened to double as Python would hold them (see widen_decimal) */
    double dampening, beta1, beta2, weight_decay;
};

/* x·y + z rounded once: torch's `z.add(x, alpha=y)` in its vectorised kernels. */
static inline float addmul(float x, float y, float z) { return fmaf(x, y, z); }

/* fmaf is exact everywhere, but on an x86-64 build without -mfma it is a library call per
 * element, which makes a step 3–8× slower. The loops that use it are therefore compiled
 * twice, for plain x86-64 and for CPUs with FMA, and the loader picks one (GCC/clang
 * target_clones, an ifunc); both give the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__FMA__) && defined(__linux__) &&    \
    (!defined(__clang__) || __clang_major__ >= 14) && !defined(NB_NO_TARGET_CLONES)
#define FMA_KERNEL __attribute__((target_clones("fma", "default")))
#else
#define FMA_KERNEL
#endif


void nb_optim_config_default(nb_optim_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = NB_OPT_SGD;
    cfg->lr = 0.01f;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->eps = 1e-8f;
}

nb_optim *nb_optim_new(const nb_optim_config *cfg, size_t n, nb_error *err)
{
    if (!cfg) {
        nb_error_set(err, NB_EINVAL, "optimiser: no configuration");
        return NULL;
    }
    /* The domain checks torch.optim makes in its constructors, with the same messages. */
    const char *bad = NULL;
    if (cfg->kind != NB_OPT_SGD && cfg->kind != NB_OPT_ADAM && cfg->kind != NB_OPT_ADAMW)
        bad = "unknown optimiser kind";
    else if (!(cfg->lr >= 0.0f))
        bad = "invalid learning rate (must be >= 0)";
    else if (!(cfg->weight_decay >= 0.0f))
        bad = "invalid weight_decay (must be >= 0)";
    else if (!(cfg->l1 >= 0.0f))
        bad = "invalid l1 (must be >= 0)";
    else if (!(cfg->clip_norm >= 0.0f) || isinf(cfg->clip_norm))
        bad = "invalid clip_norm (must be finite and >= 0; 0 disables clipping)";
    else if (cfg->kind == NB_OPT_SGD) {
        if (!(cfg->momentum >= 0.0f))
            bad = "invalid momentum (must be >= 0)";
        else if (!isfinite(cfg->dampening))
            bad = "invalid dampening";
        else if (cfg->nesterov && (cfg->momentum <= 0.0f || cfg->dampening != 0.0f))
            bad = "Nesterov momentum requires a momentum and zero dampening";
    } else {
        if (!(cfg->eps >= 0.0f))
            bad = "invalid eps (must be >= 0)";
        else if (!(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f))
            bad = "invalid beta1 (must be in [0, 1))";
        else if (!(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f))
            bad = "invalid beta2 (must be in [0, 1))";
    }
    if (bad) {
        nb_error_set(err, NB_EINVAL, "optimiser: %s", bad);
        return NULL;
    }

    int nstate = cfg->kind == NB_OPT_SGD ? (cfg->momentum != 0.0f) : 2;
    if (nstate > 0 && n > SIZE_MAX / sizeof(float) / (size_t)nstate) {
        nb_error_set(err, NB_ENOMEM, "optimiser: %zu parameters is too many", n);
        return NULL;
    }
    nb_optim *opt = calloc(1, sizeof *opt);
    if (!opt) {
        nb_error_set(err, NB_ENOMEM, "optimiser: out of memory");
        return NULL;
    }
    if (nstate > 0 && n > 0) {
        opt->state = calloc((size_t)nstate * n, sizeof(float)); /* torch: zeros_like */
        if (!opt->state) {
            free(opt);
            nb_error_set(err, NB_ENOMEM, "optimiser: out of memory for %d × %zu floats of state",
                         nstate, n);
            return NULL;
        }
    }
    opt->cfg = *cfg;
    opt->n = n;
    opt->nstate = nstate;
    opt->dampening = nb_widen_decimal(cfg->dampening);
    opt->beta1 = nb_widen_decimal(cfg->beta1);
    opt->beta2 = nb_widen_decimal(cfg->beta2);
    opt->weight_decay = nb_widen_decimal(cfg->weight_decay);
    return opt;
}

void nb_optim_free(nb_optim *opt)
{
    if (!opt)
        return;
    free(opt->state);
    free(opt);
}

int nb_optim_state_count(const nb_optim *opt) { return opt ? opt->nstate : 0; }

float *nb_optim_state(nb_optim *opt, int i)
{
    if (!opt || i < 0 || i >= opt->nstate || !opt->state)
        return NULL;
    return opt->state + (size_t)i * opt->n;
}

int64_t nb_optim_steps(const nb_optim *opt) { return opt ? opt->steps : 0; }

void nb_optim_set_steps(nb_optim *opt, int64_t steps)
{
    if (opt)
        opt->steps = steps < 0 ? 0 : steps;
}

/* ---- gradient transforms, applied in this order ---------------------------------------- */

/* torch.nn.utils.clip_grad_norm_(params, max_norm): total = ‖g‖₂ over everything,
 * coef = max_norm / (total + 1e-6), g ← g · min(coef, 1).
 * torch takes the norm of each parameter tensor in float and then the norm of those norms;
 * with one flat buffer we take the 2-norm of the whole buffer, accumulated in double and
 * rounded to float, so `total` may differ from torch's by an ulp or so (and with it g).
 * The rest is torch's float arithmetic: (total + 1e-6f), max_norm / that, and one multiply.
 * A non-finite norm is not an error here, as in torch: coef becomes 0 or NaN and spreads. */
static void clip_by_norm(size_t n, float *restrict g, float max_norm)
{
    double sumsq = 0.0;
    for (size_t i = 0; i < n; i++)
        sumsq += (double)g[i] * (double)g[i];
    float total = (float)sqrt(sumsq);
    float coef = max_norm / (total + 1e-6f);
    if (!(coef >= 1.0f)) /* torch multiplies by clamp(coef, max=1); a factor 1 changes nothing */
        for (size_t i = 0; i < n; i++)
            g[i] *= coef;
}

/* L1 (lasso, docs/lecture.md §5.7): the cost C + λ Σ|w_i| has the subgradient
 * ∂C/∂w + λ·sign(w),
 * sign(0) = 0, so g ← g + λ·sign(w). Not in torch (the usual recipe adds λ·sign(w) to .grad
 * before step(), which is what this is). A plain subgradient step makes a useless weight
 * oscillate within about η·λ of 0 rather than land on exactly 0. */
static void add_l1(size_t n, float *restrict g, const float *restrict w, float l1)
{
    for (size_t i = 0; i < n; i++)
        g[i] += w[i] > 0.0f ? l1 : (w[i] < 0.0f ? -l1 : 0.0f);
}

/* Coupled weight decay, torch's `grad = grad.add(param, alpha=weight_decay)`: g ← g + wd·w.
 * It is the gradient of (wd/2)‖w‖², so the lecture's L2 term α‖w‖² (§5.7) is wd = 2α, and
 * plain SGD then reads w ← w(1 − 2ηα) − η ∂C/∂w. */
FMA_KERNEL
static void add_weight_decay(size_t n, float *restrict g, const float *restrict w, float wd)
{
    for (size_t i = 0; i < n; i++)
        g[i] = addmul(w[i], wd, g[i]);
}

/* ---- the rules ------------------------------------------------------------------------- */

/* SGD (torch.optim.SGD, §2): with momentum μ the buffer is b ← g on the first step, then
 * b ← μ·b + (1 − dampening)·g; the step direction is d = g + μ·b (Nesterov) or d = b;
 * then w ← w − η·d. Without momentum d = g: w ← w − η g, the lecture's gradient descent
 * (full batch when g is the gradient of the whole set, minibatch SGD otherwise). */
FMA_KERNEL
static void sgd_step(size_t n, float *restrict w, float *restrict g, float *restrict buf,
                     int first, float mu, float one_minus_damp, int nesterov, float neg_lr)
{
    if (!buf) {
        for (size_t i = 0; i < n; i++)
            w[i] = addmul(g[i], neg_lr, w[i]);
        return;
    }
    /* One loop per case, with no test inside, so that each vectorises (-O2 does not unswitch
     * loops) and reads every array once; the arithmetic per element is that of torch in each. */
    if (first && !nesterov) {
        for (size_t i = 0; i < n; i++) {
            buf[i] = g[i]; /* b ← g */
            w[i] = addmul(g[i], neg_lr, w[i]);
        }
    } else if (first) {
        for (size_t i = 0; i < n; i++) {
            buf[i] = g[i];
            w[i] = addmul(addmul(g[i], mu, g[i]), neg_lr, w[i]);
        }
    } else if (!nesterov) {
        for (size_t i = 0; i < n; i++) {
            float b = addmul(g[i], one_minus_damp, buf[i] * mu); /* buf.mul_(μ).add_ */
            buf[i] = b;
            w[i] = addmul(b, neg_lr, w[i]);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float b = addmul(g[i], one_minus_damp, buf[i] * mu);
            buf[i] = b;
            w[i] = addmul(addmul(b, mu, g[i]), neg_lr, w[i]);
        }
    }
}

/* Adam (Kingma & Ba; torch.optim.Adam, §5.6), t = step number from 1:
 *   m ← β₁ m + (1 − β₁) g                 exp_avg.mul_(β₁).add_(g, alpha=1 − β₁)
 *   v ← β₂ v + (1 − β₂) g²                exp_avg_sq.mul_(β₂).addcmul_(g, g, value=1 − β₂)
 *   denom = √v / √(1 − β₂ᵗ) + ε           (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ε)
 *   w ← w − (η / (1 − β₁ᵗ)) · m / denom    param.addcdiv_(m, denom, value=−step_size)
 * A per-parameter preconditioner, in the lecture's words (§2). addcmul computes
 * (value·g)·g + v with one rounding for the add; addcdiv computes w + (value·m)/denom. */
FMA_KERNEL
static void adam_step(size_t n, float *restrict w, const float *restrict g, float *restrict m,
                      float *restrict v, float beta1, float one_minus_beta1, float beta2,
                      float one_minus_beta2, float bc2_sqrt, float eps, float neg_step_size)
{
    for (size_t i = 0; i < n; i++) {
        float mi = addmul(g[i], one_minus_beta1, m[i] * beta1);
        float vi = addmul(one_minus_beta2 * g[i], g[i], v[i] * beta2);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        w[i] = w[i] + neg_step_size * mi / denom;
    }
}

/* The element-wise part of a step on parameters [i0, i1): L1, weight decay and the rule —
 * everything but clipping, which needs the whole gradient. opt->steps already counts this
 * step; first says whether it is the first. */
static void step_range(nb_optim *opt, float *w, float *g, float lr, int first, size_t i0,
                       size_t i1)
{
    const nb_optim_config *c = &opt->cfg;
    size_t n = i1 - i0;
    w += i0;
    g += i0;
    if (c->l1 != 0.0f)
        add_l1(n, g, w, c->l1);

    if (c->kind == NB_OPT_SGD) {
        if (c->weight_decay != 0.0f)
            add_weight_decay(n, g, w, c->weight_decay);
        sgd_step(n, w, g, opt->nstate ? opt->state + i0 : NULL, first, c->momentum,
                 (float)(1.0 - opt->dampening), c->nesterov, -lr);
        return;
    }

    if (c->kind == NB_OPT_ADAMW) {
        /* Decoupled weight decay (Loshchilov & Hutter): w ← w·(1 − η·wd) before the Adam
         * step, and no wd term in g. torch: param.mul_(1 - lr * weight_decay). */
        if (c->weight_decay != 0.0f) {
            float shrink = (float)(1.0 - nb_widen_decimal(lr) * opt->weight_decay);
            for (size_t i = 0; i < n; i++)
                w[i] *= shrink;
        }
    } else if (c->weight_decay != 0.0f) {
        add_weight_decay(n, g, w, c->weight_decay);
    }
    /* The scalars as torch computes them, in double: bias_correction = 1 − β^t,
     * step_size = lr / bias_correction1, bias_correction2_sqrt = √bias_correction2. */
    double t = (double)opt->steps;
    double bc1 = 1.0 - pow(opt->beta1, t);
    double bc2 = 1.0 - pow(opt->beta2, t);
    double step_size = nb_widen_decimal(lr) / bc1;
    adam_step(n, w, g, opt->state + i0, opt->state + opt->n + i0, c->beta1,
              (float)(1.0 - opt->beta1), c->beta2, (float)(1.0 - opt->beta2), (float)sqrt(bc2),
              c->eps, (float)-step_size);
}

/* Counts the step and clips; returns whether it is the first step. */
static int step_begin(nb_optim *opt, float *g)
{
    int first = opt->steps == 0;
    opt->steps++;
    if (opt->cfg.clip_norm > 0.0f)
        clip_by_norm(opt->n, g, opt->cfg.clip_norm);
    return first;
}

void nb_optim_step(nb_optim *opt, float *w, float *g, float lr)
{
    if (!opt || opt->n == 0 || !w || !g)
        return;
    int first = step_begin(opt, g);
    step_range(opt, w, g, lr, first, 0, opt->n);
}

/* ---- the step on several threads --------------------------------------------------------- */

/* Blocks of at least this many parameters per task (a multiple of 16: whole cache lines). */
enum { STEP_BLOCK = 16384 };

typedef struct step_job {
    nb_optim *opt;
    float *w, *g;
    float lr;
    int first;
} step_job;

static void step_task(void *arg, int64_t i0, int64_t i1, int task)
{
    (void)task;
    const step_job *job = arg;
    step_range(job->opt, job->w, job->g, job->lr, job->first, (size_t)i0, (size_t)i1);
}

void nb_optim_step_parallel(nb_optim *opt, float *w, float *g, float lr, nb_gemm *gemm)
{
    if (!opt || opt->n == 0 || !w || !g)
        return;
    step_job job = {.opt = opt, .w = w, .g = g, .lr = lr, .first = step_begin(opt, g)};
    nb_parallel_for(gemm, (int64_t)opt->n, STEP_BLOCK, 16, 0, step_task, &job);
}
