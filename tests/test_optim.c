/* Optimisers and schedules: hand-computed steps of every rule (docs/lecture.md §2, §5.6, §5.7),
 * first-step semantics of momentum, decay coupled and decoupled, L1, clipping, the order
 * in which they apply, checkpoint resumption, and the schedules at chosen steps.
 * (Bitwise agreement with torch.optim over many steps is tests/torch_optim.py's job.) */
#include "nabla.h"

#include <string.h>

#include "check.h"

static const double pi = 3.14159265358979323846;

static nb_optim *make(nb_optim_config *cfg, size_t n)
{
    nb_error err = {0};
    nb_optim *opt = nb_optim_new(cfg, n, &err);
    CHECK_MSG(opt != NULL, "%s", err.msg);
    return opt;
}

static nb_optim_config sgd(float momentum, float dampening, int nesterov)
{
    nb_optim_config c;
    nb_optim_config_default(&c);
    c.momentum = momentum;
    c.dampening = dampening;
    c.nesterov = nesterov;
    return c;
}

static nb_optim_config adam(nb_optim_kind kind, float wd)
{
    nb_optim_config c;
    nb_optim_config_default(&c);
    c.kind = kind;
    c.weight_decay = wd;
    return c;
}

static void test_config(void)
{
    nb_optim_config c;
    nb_optim_config_default(&c);
    CHECK(c.kind == NB_OPT_SGD);
    CHECK(c.lr == 0.01f && c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f);
    CHECK(c.momentum == 0 && c.dampening == 0 && !c.nesterov && c.weight_decay == 0);
    CHECK(c.l1 == 0 && c.clip_norm == 0);

    /* torch's constructor checks: each of these settings is refused with NB_EINVAL */
#define BAD_SETTINGS                                                                            \
    X(negative_lr, c.lr = -1.0f)                                                                \
    X(nan_lr, c.lr = NAN)                                                                       \
    X(negative_weight_decay, c.weight_decay = -0.1f)                                            \
    X(negative_l1, c.l1 = -0.1f)                                                                \
    X(negative_clip_norm, c.clip_norm = -1.0f)                                                  \
    X(negative_momentum, c.momentum = -0.5f)                                                    \
    X(nesterov_without_momentum, c.nesterov = 1)                                                \
    X(nesterov_with_dampening, (c.nesterov = 1, c.momentum = 0.9f, c.dampening = 0.1f))        \
    X(beta1_one, (c.kind = NB_OPT_ADAM, c.beta1 = 1.0f))                                       \
    X(beta2_negative, (c.kind = NB_OPT_ADAMW, c.beta2 = -0.1f))                                \
    X(eps_negative, (c.kind = NB_OPT_ADAM, c.eps = -1e-8f))                                    \
    X(unknown_kind, c.kind = (nb_optim_kind)7)
#define X(name, spoil)                                                                          \
    {                                                                                           \
        nb_optim_config_default(&c);                                                            \
        spoil;                                                                                  \
        nb_error err = {0};                                                                     \
        nb_optim *o = nb_optim_new(&c, 4, &err);                                                \
        CHECK_MSG(o == NULL && err.code == NB_EINVAL && err.msg[0], "%s accepted", #name);      \
        nb_optim_free(o);                                                                       \
    }
    BAD_SETTINGS
#undef X
#undef BAD_SETTINGS
    nb_error err = {0};
    CHECK(nb_optim_new(NULL, 4, &err) == NULL && err.code == NB_EINVAL);
    nb_optim_free(NULL);

    /* state buffers: none for plain SGD, the momentum buffer, Adam's m and v; zeroed */
    nb_optim_config s0 = sgd(0, 0, 0), s1 = sgd(0.9f, 0, 0);
    nb_optim_config a = adam(NB_OPT_ADAM, 0), aw = adam(NB_OPT_ADAMW, 0.01f);
    nb_optim *o0 = make(&s0, 3), *o1 = make(&s1, 3), *o2 = make(&a, 3), *o3 = make(&aw, 3);
    CHECK(nb_optim_state_count(o0) == 0 && nb_optim_state(o0, 0) == NULL);
    CHECK(nb_optim_state_count(o1) == 1 && nb_optim_state(o1, 0) && !nb_optim_state(o1, 1));
    CHECK(nb_optim_state_count(o2) == 2 && nb_optim_state_count(o3) == 2);
    CHECK(nb_optim_state(o2, -1) == NULL && nb_optim_state(o2, 2) == NULL);
    CHECK(nb_optim_state(o2, 1) == nb_optim_state(o2, 0) + 3);
    for (int i = 0; i < 3; i++)
        CHECK(nb_optim_state(o2, 0)[i] == 0.0f && nb_optim_state(o2, 1)[i] == 0.0f);
    CHECK(nb_optim_steps(o2) == 0);
    float w[3] = {1, 2, 3}, g[3] = {1, 1, 1};
    nb_optim_step(o2, w, g, 0.1f);
    nb_optim_step(o2, w, g, 0.1f);
    CHECK(nb_optim_steps(o2) == 2);
    nb_optim_set_steps(o2, 7);
    CHECK(nb_optim_steps(o2) == 7);
    CHECK(nb_optim_state_count(NULL) == 0 && nb_optim_steps(NULL) == 0);
    nb_optim_free(o0);
    nb_optim_free(o1);
    nb_optim_free(o2);
    nb_optim_free(o3);

    /* no parameters: a valid optimiser whose step does nothing */
    nb_optim *e = make(&a, 0);
    nb_optim_step(e, w, g, 0.1f);
    nb_optim_free(e);
}

/* §2: w ← w − η g; on ½‖w − c‖² (g = w − c) full-batch GD contracts w − c by (1 − η). */
static void test_sgd(void)
{
    nb_optim_config c = sgd(0, 0, 0);
    nb_optim *o = make(&c, 3);
    float w[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.5f, 0.25f, -1.0f};
    nb_optim_step(o, w, g, 0.1f);
    CHECK_NEAR(w[0], 0.95, 1e-7, 0);
    CHECK_NEAR(w[1], -2.025, 1e-7, 0);
    CHECK_NEAR(w[2], 0.6, 1e-7, 0);
    nb_optim_free(o);

    o = make(&c, 2);
    float target[2] = {3.0f, -1.0f}, v[2] = {0.0f, 0.0f};
    for (int k = 0; k < 10; k++) {
        float d[2] = {v[0] - target[0], v[1] - target[1]};
        nb_optim_step(o, v, d, 0.25f);
    }
    double shrink = pow(0.75, 10);
    CHECK_NEAR(v[0], 3.0 - 3.0 * shrink, 1e-6, 0);
    CHECK_NEAR(v[1], -1.0 + 1.0 * shrink, 1e-6, 0);
    nb_optim_free(o);
}

/* Momentum: the buffer starts as g itself (not (1 − dampening)·g), then
 * b ← μ b + (1 − dampening) g. */
static void test_momentum(void)
{
    nb_optim_config c = sgd(0.9f, 0.5f, 0);
    nb_optim *o = make(&c, 2);
    float w[2] = {0, 0}, g1[2] = {1, -1}, g2[2] = {2, 0};
    nb_optim_step(o, w, g1, 0.1f);
    float *b = nb_optim_state(o, 0);
    CHECK(b[0] == 1.0f && b[1] == -1.0f);
    CHECK_NEAR(w[0], -0.1, 1e-7, 0);
    CHECK_NEAR(w[1], 0.1, 1e-7, 0);
    nb_optim_step(o, w, g2, 0.1f); /* b = 0.9·[1, −1] + 0.5·[2, 0] = [1.9, −0.9] */
    CHECK_NEAR(b[0], 1.9, 1e-6, 0);
    CHECK_NEAR(b[1], -0.9, 1e-6, 0);
    CHECK_NEAR(w[0], -0.29, 1e-6, 0);
    CHECK_NEAR(w[1], 0.19, 1e-6, 0);
    nb_optim_free(o);

    /* Nesterov: d = g + μ b. Step 1: b = 1, d = 1.9; step 2: b = 0.9 + 1 = 1.9,
     * d = 1 + 0.9·1.9 = 2.71. */
    c = sgd(0.9f, 0, 1);
    o = make(&c, 1);
    float x[1] = {0}, one[1] = {1};
    nb_optim_step(o, x, one, 0.1f);
    CHECK_NEAR(x[0], -0.19, 1e-7, 0);
    one[0] = 1;
    nb_optim_step(o, x, one, 0.1f);
    CHECK_NEAR(x[0], -0.461, 1e-6, 0);
    CHECK_NEAR(nb_optim_state(o, 0)[0], 1.9, 1e-6, 0);
    nb_optim_free(o);
}

/* §5.7: with g = ∂C/∂w + wd·w, a zero-gradient step is w(1 − η·wd) = w(1 − 2ηα), α = wd/2. */
static void test_weight_decay(void)
{
    nb_optim_config c = sgd(0, 0, 0);
    c.weight_decay = 0.1f;
    nb_optim *o = make(&c, 2);
    float w[2] = {2.0f, -4.0f}, g[2] = {0, 1};
    nb_optim_step(o, w, g, 0.5f);
    CHECK_NEAR(w[0], 2.0 * (1 - 0.5 * 0.1), 1e-7, 0);
    CHECK_NEAR(w[1], -4.0 * (1 - 0.5 * 0.1) - 0.5, 1e-6, 0);
    nb_optim_free(o);

    /* Adam couples the decay into g (one lr-sized step toward 0 on the first step);
     * AdamW shrinks w by (1 − η·wd) and leaves g alone (g = 0: nothing else moves). */
    nb_optim_config a = adam(NB_OPT_ADAM, 0.1f), aw = adam(NB_OPT_ADAMW, 0.1f);
    nb_optim *oa = make(&a, 1), *ow = make(&aw, 1);
    float wa[1] = {2}, ww[1] = {2}, za[1] = {0}, zw[1] = {0};
    nb_optim_step(oa, wa, za, 0.1f);
    nb_optim_step(ow, ww, zw, 0.1f);
    CHECK_NEAR(wa[0], 1.9, 1e-6, 0);
    CHECK_NEAR(ww[0], 2.0 * (1 - 0.1 * 0.1), 1e-7, 0);
    CHECK(nb_optim_state(ow, 0)[0] == 0.0f);
    nb_optim_free(oa);
    nb_optim_free(ow);
}

/* Adam by hand, g = +1 then −1, β = (0.9, 0.999), η = 0.1, from w = 0:
 *   t=1: m = 0.1, v = 0.001, m̂ = 1, v̂ = 1: w = −0.1·1/(1 + 1e-8) ≈ −0.1
 *   t=2: m = 0.09 − 0.1 = −0.01, v = 0.000999 + 0.001 = 0.001999,
 *        m̂ = −0.01/0.19, v̂ = 0.001999/0.001999 = 1: w = −0.1 + 0.1·0.01/0.19 */
static void test_adam(void)
{
    nb_optim_config c = adam(NB_OPT_ADAM, 0);
    nb_optim *o = make(&c, 1);
    float w[1] = {0}, g[1] = {1};
    nb_optim_step(o, w, g, 0.1f);
    float *m = nb_optim_state(o, 0), *v = nb_optim_state(o, 1);
    /* torch computes 1 − β₁ in double from the Python 0.9: (float)(1 − 0.9) = 0.1f exactly,
     * where 1 − 0.9f would give 0.100000024f. */
    CHECK(m[0] == 0.1f);
    CHECK_NEAR(v[0], 0.001, 1e-10, 0);
    CHECK_NEAR(w[0], -0.1, 1e-7, 0);
    g[0] = -1;
    nb_optim_step(o, w, g, 0.1f);
    CHECK_NEAR(m[0], -0.01, 1e-8, 0);
    CHECK_NEAR(v[0], 0.001999, 1e-9, 0);
    CHECK_NEAR(w[0], -0.1 + 0.1 * 0.01 / 0.19, 1e-6, 0);
    nb_optim_free(o);

    /* A constant gradient makes Adam step by η per step whatever its size (m̂/√v̂ = sign g),
     * and a zero gradient does not move. */
    o = make(&c, 3);
    float x[3] = {1, 1, 1};
    for (int k = 0; k < 5; k++) {
        float d[3] = {1e-3f, -50.0f, 0.0f};
        nb_optim_step(o, x, d, 0.01f);
    }
    CHECK_NEAR(x[0], 0.95, 1e-5, 0);
    CHECK_NEAR(x[1], 1.05, 1e-5, 0);
    CHECK(x[2] == 1.0f);
    nb_optim_free(o);
}

/* L1: g += λ·sign(w), sign(0) = 0. The subgradient step moves a weight with no gradient
 * toward 0 by η·λ per step; once within η·λ it oscillates around 0 (it does not settle on
 * exactly 0), so what we check is that |w| falls to ≤ η·λ and stays there. */
static void test_l1(void)
{
    nb_optim_config c = sgd(0, 0, 0);
    c.l1 = 0.5f;
    nb_optim *o = make(&c, 3);
    float w[3] = {0.0f, 1.0f, -1.0f}, g[3] = {0, 0, 0};
    nb_optim_step(o, w, g, 0.1f);
    CHECK(w[0] == 0.0f);
    CHECK_NEAR(w[1], 0.95, 1e-7, 0);
    CHECK_NEAR(w[2], -0.95, 1e-7, 0);
    nb_optim_free(o);

    c.l1 = 1.0f;
    o = make(&c, 1);
    float x[1] = {0.3f}, prev = 0.3f;
    const float band = 0.07f * 1.0f;
    int reached = 0;
    for (int k = 0; k < 20; k++) {
        float z[1] = {0};
        nb_optim_step(o, x, z, 0.07f);
        if (!reached)
            CHECK(fabsf(x[0]) < prev); /* shrinks monotonically until inside the band */
        else
            CHECK(fabsf(x[0]) <= band + 1e-7f);
        prev = fabsf(x[0]);
        reached = reached || prev <= band;
    }
    CHECK(reached);
    nb_optim_free(o);

    /* L1 with Adam is applied to g before the moments (and before the coupled decay). */
    nb_optim_config a = adam(NB_OPT_ADAM, 0);
    a.l1 = 0.01f;
    o = make(&a, 2);
    float y[2] = {0.5f, 0.0f}, gy[2] = {0, 0};
    nb_optim_step(o, y, gy, 0.1f);
    CHECK_NEAR(y[0], 0.4, 1e-6, 0); /* first Adam step: η·sign(g), g = λ */
    CHECK(y[1] == 0.0f);
    nb_optim_free(o);
}

/* clip_grad_norm_: g ← g·max_norm/(‖g‖ + 1e-6) when that factor is < 1. */
static void test_clip(void)
{
    nb_optim_config c = sgd(0, 0, 0);
    c.clip_norm = 1.0f;
    nb_optim *o = make(&c, 2);
    float w[2] = {0, 0}, g[2] = {3, 4};
    nb_optim_step(o, w, g, 1.0f);
    CHECK_NEAR(g[0], 0.6, 1e-6, 0); /* g is clipped in place */
    CHECK_NEAR(g[1], 0.8, 1e-6, 0);
    CHECK_NEAR(w[0], -0.6, 1e-6, 0);
    CHECK_NEAR(w[1], -0.8, 1e-6, 0);
    float small[2] = {0.3f, 0.4f}, v[2] = {0, 0};
    nb_optim_step(o, v, small, 1.0f);
    CHECK(v[0] == -0.3f && v[1] == -0.4f); /* ‖g‖ = 0.5 < 1: untouched */
    nb_optim_free(o);

    /* Clipping comes before weight decay: ‖g‖ = 0 here, so nothing is clipped, and the decay
     * term wd·w = 10 is not (it would be cut to 1 if the order were reversed). */
    c.weight_decay = 1.0f;
    o = make(&c, 2);
    float x[2] = {10, 0}, z[2] = {0, 0};
    nb_optim_step(o, x, z, 1.0f);
    CHECK(x[0] == 0.0f && x[1] == 0.0f);
    nb_optim_free(o);
}

/* A checkpoint (state buffers + step count) resumes bit for bit; for momentum the step
 * count tells the first step (b = g) from the others. */
static void test_resume(void)
{
    nb_optim_config cfgs[2] = {adam(NB_OPT_ADAMW, 0.01f), sgd(0.9f, 0.1f, 0)};
    for (int k = 0; k < 2; k++) {
        enum { N = 5 };
        nb_optim *a = make(&cfgs[k], N), *b = make(&cfgs[k], N);
        float wa[N], wb[N], gs[3][N];
        for (int i = 0; i < N; i++) {
            wa[i] = wb[i] = 0.1f * (float)i - 0.2f;
            for (int s = 0; s < 3; s++)
                gs[s][i] = (float)((i * 7 + s * 3) % 5) - 2.0f;
        }
        for (int s = 0; s < 2; s++) {
            float g[N];
            memcpy(g, gs[s], sizeof g);
            nb_optim_step(a, wa, g, 0.05f);
            memcpy(g, gs[s], sizeof g);
            nb_optim_step(b, wb, g, 0.05f);
        }
        /* copy b's state into a fresh optimiser, as loading a checkpoint does */
        nb_optim *c = make(&cfgs[k], N);
        for (int i = 0; i < nb_optim_state_count(b); i++)
            memcpy(nb_optim_state(c, i), nb_optim_state(b, i), N * sizeof(float));
        nb_optim_set_steps(c, nb_optim_steps(b));
        float g[N];
        memcpy(g, gs[2], sizeof g);
        nb_optim_step(a, wa, g, 0.05f);
        memcpy(g, gs[2], sizeof g);
        nb_optim_step(c, wb, g, 0.05f);
        CHECK(memcmp(wa, wb, sizeof wa) == 0);
        for (int i = 0; i < nb_optim_state_count(a); i++)
            CHECK(memcmp(nb_optim_state(a, i), nb_optim_state(c, i), N * sizeof(float)) == 0);
        nb_optim_free(a);
        nb_optim_free(b);
        nb_optim_free(c);
    }
}

static void test_schedules(void)
{
    nb_schedule s = {.kind = NB_SCHED_CONSTANT};
    CHECK(nb_schedule_lr(&s, 0.1f, 0) == 0.1f && nb_schedule_lr(&s, 0.1f, 12345) == 0.1f);
    CHECK(nb_schedule_lr(NULL, 0.1f, 5) == 0.1f);

    s = (nb_schedule){.kind = NB_SCHED_STEP, .step_size = 3, .gamma = 0.5f};
    CHECK(nb_schedule_lr(&s, 0.1f, 0) == 0.1f && nb_schedule_lr(&s, 0.1f, 2) == 0.1f);
    CHECK(nb_schedule_lr(&s, 0.1f, 3) == 0.05f && nb_schedule_lr(&s, 0.1f, 5) == 0.05f);
    CHECK(nb_schedule_lr(&s, 0.1f, 7) == 0.025f);
    CHECK(nb_schedule_lr(&s, 0.1f, -4) == 0.1f);
    s.step_size = 0; /* ill-posed: constant */
    CHECK(nb_schedule_lr(&s, 0.1f, 9) == 0.1f);

    s = (nb_schedule){.kind = NB_SCHED_EXPONENTIAL, .gamma = 0.9f};
    CHECK(nb_schedule_lr(&s, 0.1f, 0) == 0.1f);
    CHECK(nb_schedule_lr(&s, 0.1f, 2) == 0.081f); /* 0.1·0.9², rounded once */
    CHECK_NEAR(nb_schedule_lr(&s, 0.1f, 30), 0.1 * pow(0.9, 30), 0, 1e-6);

    /* cosine, T = 10: lr at 0, the midpoint (lr + min)/2 at 5, min from 10 on */
    s = (nb_schedule){.kind = NB_SCHED_COSINE, .total = 10, .min_lr = 0.01f};
    CHECK(nb_schedule_lr(&s, 0.1f, 0) == 0.1f);
    CHECK_NEAR(nb_schedule_lr(&s, 0.1f, 5), 0.055, 0, 1e-6);
    CHECK_NEAR(nb_schedule_lr(&s, 0.1f, 2), 0.01 + 0.09 * (1 + cos(pi * 0.2)) / 2, 0, 1e-6);
    CHECK(nb_schedule_lr(&s, 0.1f, 10) == 0.01f && nb_schedule_lr(&s, 0.1f, 15) == 0.01f);
    for (int t = 1; t <= 10; t++)
        CHECK(nb_schedule_lr(&s, 0.1f, t) < nb_schedule_lr(&s, 0.1f, t - 1));
    s.total = 0; /* no T: constant */
    CHECK(nb_schedule_lr(&s, 0.1f, 3) == 0.1f);

    /* warm-up lr·(t+1)/warmup, then the schedule from its own t = 0 */
    s = (nb_schedule){.kind = NB_SCHED_CONSTANT, .warmup = 4};
    CHECK(nb_schedule_lr(&s, 0.1f, 0) == 0.025f && nb_schedule_lr(&s, 0.1f, 1) == 0.05f);
    CHECK(nb_schedule_lr(&s, 0.1f, 3) == 0.1f && nb_schedule_lr(&s, 0.1f, 4) == 0.1f);
    s = (nb_schedule){.kind = NB_SCHED_STEP, .warmup = 2, .step_size = 2, .gamma = 0.5f};
    CHECK(nb_schedule_lr(&s, 0.2f, 0) == 0.1f);
    CHECK(nb_schedule_lr(&s, 0.2f, 2) == 0.2f && nb_schedule_lr(&s, 0.2f, 3) == 0.2f);
    CHECK(nb_schedule_lr(&s, 0.2f, 4) == 0.1f);
    /* with cosine, `total` includes the warm-up: T = 12 − 2 = 10 */
    s = (nb_schedule){.kind = NB_SCHED_COSINE, .warmup = 2, .total = 12, .min_lr = 0.0f};
    CHECK(nb_schedule_lr(&s, 0.1f, 2) == 0.1f);
    CHECK_NEAR(nb_schedule_lr(&s, 0.1f, 7), 0.05, 0, 1e-6);
    CHECK(nb_schedule_lr(&s, 0.1f, 12) == 0.0f);
}

int main(void)
{
    test_config();
    test_sgd();
    test_momentum();
    test_weight_decay();
    test_adam();
    test_l1();
    test_clip();
    test_resume();
    test_schedules();
    return check_finish("test_optim");
}
