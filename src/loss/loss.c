/* Losses: scalar costs C(y, ȳ) averaged over the batch, L(S, w) = 1/P Σ_p C(y[p], G(x[p], w))
 * (docs/lecture.md §1). Each is a node with a single-element, unbatched output; its upstream
 * gradient dL (normally 1) is read from n->grad[0].
 *
 *   MSE            per-sample cost ‖y_p − ȳ_p‖² (the lecture's linear-regression cost)
 *                  mean: L = 1/N Σ_p ‖y_p − ȳ_p‖²   sum: L = Σ_p ‖y_p − ȳ_p‖²
 *                  dȳ += 2(ȳ − y)·dL/N (mean),  dy −= the same
 *                  (PyTorch's MSELoss(reduction='mean') divides by N·D, not N: it equals
 *                  this mean divided by the feature count D.)
 *   NLL            L = −1/N Σ_n logp[n, y_n]          dlogp[n, y_n] += −dL/N
 *   Cross-entropy  fused log-softmax + NLL (§5.2), with optional label smoothing ε ∈ [0, 1)
 *                  (PyTorch's F.cross_entropy(z, y, label_smoothing=ε)): the target is
 *                  q = (1 − ε)·onehot(y) + ε/K over the K classes instead of onehot(y), so
 *                  C_n = −Σ_j q_j log softmax(z_n)_j
 *                      = (1 − ε)(lse(z_n) − z_n[y_n]) + ε(lse(z_n) − 1/K Σ_j z_n,j)
 *                  L = 1/N Σ_n C_n,  lse(z) = m + log Σ_j exp(z_j − m)
 *                  dz_n,j += (softmax(z_n)_j − (1 − ε)[j = y_n] − ε/K)·dL/N
 *                  Smoothing is a training-time regulariser, like Dropout: it applies only
 *                  while the graph is in training mode, and in evaluation the node computes
 *                  the plain cross-entropy (ε = 0), which is what validation and test report.
 *                  With ε = 0 (or in evaluation) forward and backward run the very same
 *                  float operations as without smoothing: results are bit for bit the same.
 *                  Fused because the gradient then needs no exp of a log-probability and no
 *                  pass over a separate log-softmax output; max-subtraction keeps it exact for
 *                  logits of any magnitude. One exp per logit: e_j = exp(z_j − m) ≤ 1 is kept
 *                  and divided by Σ_j e_j (summed in double) to give the softmax.
 *
 * A label outside [0, C) makes the loss NaN, which the trainer reports; loaders check labels
 * against the model's class count before training starts. */
#include "backend/gemm_pool.h"
#include "core/graph.h"

#include <math.h>

static nb_status scalar_shape(nb_node *n)
{
    n->batched = 0;
    n->ndim = 1;
    n->dims[0] = 1;
    return NB_OK;
}

static nb_status mse_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *p = nb_in(g, n, 0), *t = nb_in(g, n, 1);
    int same = p->batched && t->batched && p->size == t->size;
    if (!same)
        return nb_shape_mismatch(err, n, p, t, "prediction and target must have the same shape");
    return scalar_shape(n);
}

static void mse_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const nb_node *p = nb_in(g, n, 0), *t = nb_in(g, n, 1);
    double s = 0.0;
    for (int64_t i = 0, e = N * p->size; i < e; i++) {
        double d = (double)p->value[i] - t->value[i];
        s += d * d;
    }
    n->value[0] = (float)(n->iparam == NB_REDUCE_MEAN ? s / (double)N : s);
}

static void mse_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *p = nb_in(g, n, 0), *t = nb_in(g, n, 1);
    float scale = 2.0f * n->grad[0] / (n->iparam == NB_REDUCE_MEAN ? (float)N : 1.0f);
    for (int64_t i = 0, e = N * p->size; i < e; i++) {
        float d = scale * (p->value[i] - t->value[i]);
        if (p->requires_grad)
            p->grad[i] += d;
        if (t->requires_grad)
            t->grad[i] -= d;
    }
}

static nb_status classification_shape(nb_graph *g, nb_node *n, nb_error *err)
{
    const nb_node *x = nb_in(g, n, 0), *y = nb_in(g, n, 1);
    char sx[64];
    if (y->op != NB_OP_LABELS)
        return nb_error_set(err, NB_ESHAPE, "%s '%s': '%s' must be a labels node",
                            nb_op_table[n->op]->name, n->name, y->name);
    if (!x->batched || x->ndim != 1)
        return nb_error_set(err, NB_ESHAPE, "%s '%s': '%s' is %s, expected [N,classes]",
                            nb_op_table[n->op]->name, n->name, x->name,
                            nb_shape_format(x, sx, sizeof sx));
    if (n->op == NB_OP_CROSS_ENTROPY && !(n->fparam >= 0.0f && n->fparam < 1.0f))
        return nb_error_set(err, NB_EINVAL, "cross_entropy '%s': label smoothing %g, expected "
                            "0 ≤ ε < 1", n->name, (double)n->fparam);
    if (n->op == NB_OP_CROSS_ENTROPY)
        n->aux_size = x->size; /* softmax(z) per sample, for backward */
    return scalar_shape(n);
}

static void nll_forward(nb_graph *g, nb_node *n, int64_t N)
{
    const nb_node *x = nb_in(g, n, 0);
    const int32_t *y = nb_in(g, n, 1)->labels;
    int64_t C = x->size;
    double s = 0.0;
    for (int64_t r = 0; r < N; r++)
        s -= (y[r] >= 0 && y[r] < C) ? x->value[r * C + y[r]] : NAN;
    n->value[0] = (float)(s / (double)N);
}

static void nll_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0);
    const int32_t *y = nb_in(g, n, 1)->labels;
    int64_t C = x->size;
    float d = -n->grad[0] / (float)N;
    for (int64_t r = 0; r < N; r++)
        if (y[r] >= 0 && y[r] < C)
            x->grad[r * C + y[r]] += d;
}

/* Rows are dealt to the gemm context's threads in blocks of CE_ROWS; each block's loss is
 * summed in double on its own, and the blocks' sums are then added in block order, so the
 * result does not depend on the thread count. */
enum { CE_ROWS = 64, CE_MAX_BLOCKS = 1024 };

typedef struct ce_job {
    nb_node *n;
    const nb_node *x;
    const int32_t *y;
    int64_t N, C;
    double eps;      /* label smoothing in effect */
    double *partial; /* per block */
} ce_job;

static void ce_forward_rows(void *arg, int64_t first, int64_t last, int task)
{
    const ce_job *job = arg;
    int64_t C = job->C;
    double s = 0.0;
    for (int64_t r = first; r < last; r++) {
        const float *z = job->x->value + r * C;
        /* softmax(z_n), kept for backward; NULL in an inference plan (the loss alone) */
        float *p = job->n->aux ? job->n->aux + r * C : NULL;
        float m = z[0];
        for (int64_t j = 1; j < C; j++)
            m = z[j] > m ? z[j] : m;
        double e = 0.0;
        for (int64_t j = 0; j < C; j++) {
            float t = expf(z[j] - m); /* ≤ 1: no overflow whatever the logits */
            if (p)
                p[j] = t;
            e += t;
        }
        float inv = (float)(1.0 / e);
        for (int64_t j = 0; p && j < C; j++)
            p[j] *= inv;
        int32_t label = job->y[r];
        if (label < 0 || label >= C) {
            s += NAN;
            continue;
        }
        /* C_n = lse − Σ_j q_j z_j with the target q = (1 − ε)·onehot + ε/K: for ε = 0 just
         * z[label], in the same double arithmetic as ever */
        double target = z[label];
        if (job->eps > 0.0) {
            double sum = 0.0;
            for (int64_t j = 0; j < C; j++)
                sum += z[j];
            target = (1.0 - job->eps) * z[label] + job->eps * (sum / (double)C);
        }
        s += (double)m + log(e) - target;
    }
    job->partial[task] = s;
}

static void cross_entropy_forward(nb_graph *g, nb_node *n, int64_t N)
{
    double partial[CE_MAX_BLOCKS] = {0};
    /* smoothing in training only; what backward must differentiate is kept beside it */
    n->fparam2 = g->training ? n->fparam : 0.0f;
    ce_job job = {.n = n, .x = nb_in(g, n, 0), .y = nb_in(g, n, 1)->labels, .N = N,
                  .C = nb_in(g, n, 0)->size, .eps = n->fparam2, .partial = partial};
    int blocks = nb_parallel_for(g->gemm, N, CE_ROWS, CE_ROWS, CE_MAX_BLOCKS, ce_forward_rows,
                                 &job);
    double s = 0.0;
    for (int b = 0; b < blocks; b++)
        s += partial[b];
    n->value[0] = (float)(s / (double)N);
}

static void cross_entropy_backward(nb_graph *g, nb_node *n, int64_t N)
{
    nb_node *x = nb_in(g, n, 0);
    const int32_t *y = nb_in(g, n, 1)->labels;
    int64_t C = x->size;
    float d = n->grad[0] / (float)N;
    /* q_j = on·[j = y] + off; with ε = 0, on = 1 and off = 0 exactly, so p − q is computed
     * as it was before smoothing existed */
    float eps = n->fparam2, on = 1.0f - eps, off = eps / (float)C;
    int write = nb_grad_beta(&x->grad_fresh) == 0.0f;
    for (int64_t r = 0; r < N; r++) {
        const float *restrict p = n->aux + r * C;
        float *restrict dz = x->grad + r * C;
        if (write)
            for (int64_t j = 0; j < C; j++)
                dz[j] = d * (p[j] - (j == y[r] ? on : 0.0f) - off);
        else
            for (int64_t j = 0; j < C; j++)
                dz[j] += d * (p[j] - (j == y[r] ? on : 0.0f) - off);
    }
}

const nb_op_def nb_op_mse_def = {.name = "mse", .n_inputs = 2, .role = NB_ROLE_COST,
                                 .shape = mse_shape, .forward = mse_forward,
                                 .backward = mse_backward, .formula = "C = 1/N Σₙ ‖yₙ − ȳₙ‖²",
                                 .vjp = {"dȳ += 2(ȳ − y)·dC/N", "dy −= 2(ȳ − y)·dC/N"}};
const nb_op_def nb_op_nll_def = {.name = "nll", .n_inputs = 2, .role = NB_ROLE_COST,
                                 .shape = classification_shape, .forward = nll_forward,
                                 .backward = nll_backward, .formula = "C = −1/N Σₙ logp[n, yₙ]",
                                 .vjp = {"dlogp[n, yₙ] −= dC/N"}};
const nb_op_def nb_op_cross_entropy_def = {.name = "cross_entropy", .n_inputs = 2,
                                           .role = NB_ROLE_COST,
                                           .shape = classification_shape,
                                           .forward = cross_entropy_forward,
                                           .backward = cross_entropy_backward,
                                           .writes_fresh = 1,
                                           .aux_for_backward = 1,
                                           .formula = "C = 1/N Σₙ (lse(zₙ) − qₙ·zₙ), "
                                                      "q = (1−ε)·onehot(y) + ε/K",
                                           .vjp = {"dz += (softmax(z) − q)·dC/N"}};

int nb_mse(nb_graph *g, const char *name, int prediction, int target, nb_reduction reduction)
{
    int in[2] = {prediction, target};
    return nb_graph_add(g, name, NB_OP_MSE, in, 2, 0, NULL, 0, (int)reduction);
}

int nb_nll(nb_graph *g, const char *name, int log_probs, int labels)
{
    int in[2] = {log_probs, labels};
    return nb_graph_add(g, name, NB_OP_NLL, in, 2, 0, NULL, 0, 0);
}

int nb_cross_entropy(nb_graph *g, const char *name, int logits, int labels)
{
    return nb_cross_entropy_smoothed(g, name, logits, labels, 0.0f);
}

int nb_cross_entropy_smoothed(nb_graph *g, const char *name, int logits, int labels,
                              float label_smoothing)
{
    int in[2] = {logits, labels};
    return nb_graph_add(g, name, NB_OP_CROSS_ENTROPY, in, 2, 0, NULL, label_smoothing, 0);
}

nb_status nb_cross_entropy_set_smoothing(nb_graph *g, int node, float label_smoothing,
                                         nb_error *err)
{
    if (node < 0 || node >= g->count)
        return nb_error_set(err, NB_EINVAL, "label smoothing: node %d does not exist", node);
    nb_node *n = &g->nodes[node];
    if (n->op != NB_OP_CROSS_ENTROPY)
        return nb_error_set(err, NB_EINVAL, "label smoothing applies to a cross-entropy loss; "
                            "'%s' is %s", n->name, nb_op_table[n->op]->name);
    if (!(label_smoothing >= 0.0f && label_smoothing < 1.0f))
        return nb_error_set(err, NB_EINVAL, "label smoothing %g, expected 0 ≤ ε < 1",
                            (double)label_smoothing);
    n->fparam = label_smoothing;
    return NB_OK;
}

float nb_cross_entropy_smoothing(const nb_graph *g, int node)
{
    return g->nodes[node].op == NB_OP_CROSS_ENTROPY ? g->nodes[node].fparam : 0.0f;
}
