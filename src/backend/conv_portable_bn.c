/* The portable batch-norm kernels (conv.h, conv_portable.h), fp32: plain loops over each
 * channel's N·HW values, the channels split across the context's thread pool. The loops over
 * one run of HW values are a table (nb_bn_runs) so that a faster implementation can supply
 * its own and keep the per-channel arithmetic here (image_avx2.c). */
#include "backend/conv_portable.h"
#include "backend/gemm_pool.h"

#include <math.h>

/* Σ x[i], Σ (x[i] − m)² and Σ (x[i] − m)·y[i] in float over eight interleaved partial sums:
 * independent chains the compiler vectorises, where one running sum would be a chain of
 * dependent additions. */
static float sum8(const float *restrict x, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += x[i + k];
    float s = 0.0f;
    for (; i < n; i++)
        s += x[i];
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s;
}

static float dot8_centred(const float *restrict x, float m, const float *restrict y, int64_t n)
{
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (x[i + k] - m) * (y ? y[i + k] : x[i + k] - m);
    float s = 0.0f;
    for (; i < n; i++)
        s += (x[i] - m) * (y ? y[i] : x[i] - m);
    for (int k = 0; k < 8; k++)
        s += acc[k];
    return s;
}

static float sq8_centred(const float *x, float m, int64_t n)
{
    return dot8_centred(x, m, NULL, n);
}

static void dy_sums8(const float *x, const float *dy, float m, int64_t n, float *sum_dy,
                     float *sum_dy_xc)
{
    *sum_dy = sum8(dy, n);
    *sum_dy_xc = dot8_centred(x, m, dy, n);
}

/* out may be u (batch norm's forward in place, an inference plan): not restrict */
static void affine_plain(const float *u, const float *v, float a, float c, float b, float *out,
                         int64_t n, int accumulate)
{
    if (!v)
        for (int64_t i = 0; i < n; i++)
            out[i] = a * u[i] + b;
    else if (!accumulate)
        for (int64_t i = 0; i < n; i++)
            out[i] = a * u[i] + c * v[i] + b;
    else
        for (int64_t i = 0; i < n; i++)
            out[i] += a * u[i] + c * v[i] + b;
}

static const nb_bn_runs plain_runs = {sum8, sq8_centred, dy_sums8, affine_plain};

typedef struct bn_job bn_job;
struct bn_job {
    const nb_bn_shape *s;
    const float *x, *dy, *gamma, *beta, *running_mean, *running_var;
    const float *mean_in, *invstd_in;
    float *y, *mean, *invstd, *var, *dx, *dgamma, *dbeta;
    float eps, dx_beta, param_beta;
    int batch_stats, tasks;
    const nb_bn_runs *runs;
    void (*channel)(const bn_job *j, int64_t c); /* the kernel on channel c */
};

/* Channels are independent: a task takes a block of them. */
static void channel_task(void *arg, int task, int thread)
{
    (void)thread;
    const bn_job *j = arg;
    int64_t first, last;
    nb_task_range(j->s->C, j->tasks, task, 1, &first, &last);
    for (int64_t c = first; c < last; c++)
        j->channel(j, c);
}

static void run_channels(nb_gemm *ctx, bn_job *j, void (*channel)(const bn_job *, int64_t))
{
    const nb_bn_shape *s = j->s;
    int64_t threads = nb_gemm_threads(ctx);
    j->channel = channel;
    /* tiny tensors ([N, C] behind a Linear) are not worth a hand-over */
    j->tasks = s->N * s->C * s->HW < 16384 ? 1 : (int)(s->C < threads ? s->C : threads);
    nb_gemm_parallel(ctx, j->tasks, channel_task, j);
}

/* Channel c's values: N runs of HW floats, stride C·HW. Sums in double, two passes (mean,
 * then Σ(x − μ)²), so that the variance does not cancel catastrophically. */
static void forward_channel(const bn_job *j, int64_t c)
{
    const nb_bn_shape *s = j->s;
    int64_t M = s->N * s->HW;
    double mu, istd;
    if (j->batch_stats) {
        /* each run of HW values summed in float (vectorised), the runs in double */
        double sum = 0.0, sq = 0.0;
        for (int64_t n = 0; n < s->N; n++)
            sum += j->runs->sum(j->x + (n * s->C + c) * s->HW, s->HW);
        mu = sum / (double)M;
        float muf = (float)mu;
        for (int64_t n = 0; n < s->N; n++)
            sq += j->runs->sq_centred(j->x + (n * s->C + c) * s->HW, muf, s->HW);
        double var = sq / (double)M;
        istd = 1.0 / sqrt(var + (double)j->eps);
        if (j->var)
            j->var[c] = (float)var;
    } else {
        mu = j->running_mean[c];
        istd = 1.0 / sqrt((double)j->running_var[c] + (double)j->eps);
    }
    j->mean[c] = (float)mu;
    j->invstd[c] = (float)istd;
    /* y = a·x + b with a = γσ⁻¹, b = β − μγσ⁻¹ */
    float a = (float)(j->gamma[c] * istd), b = (float)(j->beta[c] - mu * j->gamma[c] * istd);
    for (int64_t n = 0; n < s->N; n++)
        j->runs->affine(j->x + (n * s->C + c) * s->HW, NULL, a, 0.0f, b,
                        j->y + (n * s->C + c) * s->HW, s->HW, 0);
}

/* x̂ = (x − μ)σ⁻¹; dγ = Σ dy·x̂, dβ = Σ dy over the channel's N·HW values. */
static void backward_channel(const bn_job *j, int64_t c)
{
    const nb_bn_shape *s = j->s;
    int64_t M = s->N * s->HW;
    double mu = j->mean_in[c], istd = j->invstd_in[c], sum_dy = 0.0, sum_dy_xc = 0.0;
    float muf = (float)mu;
    for (int64_t n = 0; n < s->N; n++) {
        float run_dy, run_dy_xc;
        j->runs->dy_sums(j->x + (n * s->C + c) * s->HW, j->dy + (n * s->C + c) * s->HW, muf,
                         s->HW, &run_dy, &run_dy_xc);
        sum_dy += run_dy;
        sum_dy_xc += run_dy_xc;
    }
    double sum_dy_xhat = sum_dy_xc * istd;
    if (j->dgamma)
        j->dgamma[c] = (j->param_beta == 0.0f ? 0.0f : j->param_beta * j->dgamma[c]) +
                       (float)sum_dy_xhat;
    if (j->dbeta)
        j->dbeta[c] = (j->param_beta == 0.0f ? 0.0f : j->param_beta * j->dbeta[c]) +
                      (float)sum_dy;
    if (!j->dx)
        return;
    /* dx = γσ⁻¹ (dy − dβ/M − x̂·dγ/M), or γσ⁻¹·dy with running statistics */
    double g = j->gamma[c] * istd;
    double mdb = j->batch_stats ? sum_dy / (double)M : 0.0;
    double mdg = j->batch_stats ? sum_dy_xhat / (double)M : 0.0;
    float a = (float)g, b = (float)(-g * (mdb - mu * istd * mdg)), cx = (float)(-g * istd * mdg);
    /* γσ⁻¹(dy − mdb − (x − μ)σ⁻¹·mdg) = a·dy + cx·x + b */
    for (int64_t n = 0; n < s->N; n++) {
        int64_t at = (n * s->C + c) * s->HW;
        j->runs->affine(j->dy + at, j->x + at, a, cx, b, j->dx + at, s->HW, j->dx_beta != 0.0f);
    }
}

void nb_bn_forward_with(const nb_bn_runs *runs, nb_gemm *ctx, const nb_bn_shape *s,
                        const float *x, const float *gamma, const float *beta, float eps,
                        int batch_stats, const float *running_mean, const float *running_var,
                        float *y, float *mean, float *invstd, float *var)
{
    bn_job j = {.s = s, .x = x, .gamma = gamma, .beta = beta, .eps = eps,
                .batch_stats = batch_stats, .running_mean = running_mean,
                .running_var = running_var, .y = y, .mean = mean, .invstd = invstd, .var = var,
                .runs = runs};
    run_channels(ctx, &j, forward_channel);
}

void nb_bn_backward_with(const nb_bn_runs *runs, nb_gemm *ctx, const nb_bn_shape *s,
                         const float *x, const float *dy, const float *gamma, const float *mean,
                         const float *invstd, int batch_stats, float dx_beta, float *dx,
                         float param_beta, float *dgamma, float *dbeta)
{
    bn_job j = {.s = s, .x = x, .dy = dy, .gamma = gamma, .mean_in = mean, .invstd_in = invstd,
                .batch_stats = batch_stats, .dx_beta = dx_beta, .dx = dx,
                .param_beta = param_beta, .dgamma = dgamma, .dbeta = dbeta, .runs = runs};
    run_channels(ctx, &j, backward_channel);
}

void nb_portable_batch_norm_forward(nb_gemm *ctx, const nb_bn_shape *s, const float *x,
                                    const float *gamma, const float *beta, float eps,
                                    int batch_stats, const float *running_mean,
                                    const float *running_var, float *y, float *mean,
                                    float *invstd, float *var)
{
    nb_bn_forward_with(&plain_runs, ctx, s, x, gamma, beta, eps, batch_stats, running_mean,
                       running_var, y, mean, invstd, var);
}

void nb_portable_batch_norm_backward(nb_gemm *ctx, const nb_bn_shape *s, const float *x,
                                     const float *dy, const float *gamma, const float *mean,
                                     const float *invstd, int batch_stats, float dx_beta,
                                     float *dx, float param_beta, float *dgamma, float *dbeta)
{
    nb_bn_backward_with(&plain_runs, ctx, s, x, dy, gamma, mean, invstd, batch_stats, dx_beta,
                        dx, param_beta, dgamma, dbeta);
}
