/* Parameter initialisation scaled to the fan-in (docs/lecture.md §5.8), drawn from the caller's
 * generator so that a seed fixes the run. For a weight [out, in], fan_in = in and
 * fan_out = out; biases of modules with a weight are initialised with that weight's fan-in.
 *
 *   torch            W, b ~ U(−1/√fan_in, 1/√fan_in)   (nn.Linear's reset_parameters:
 *                    kaiming_uniform_ with a = √5 gives exactly this bound)
 *   kaiming-normal   W ~ N(0, 2/fan_in)                 He et al.: keeps the variance of
 *   kaiming-uniform  W ~ U(−√(6/fan_in), √(6/fan_in))   ReLU activations constant
 *   xavier-normal    W ~ N(0, 2/(fan_in + fan_out))     Glorot & Bengio, for tanh/sigmoid
 *   xavier-uniform   W ~ U(−√(6/(fan_in+fan_out)), …)
 * Non-torch schemes set biases to 0. A weight of more than two dimensions (a convolution's
 * [out, in/groups, kh, kw]) has, as in PyTorch, fan_in = in/groups·kh·kw and
 * fan_out = out·kh·kw; a 1-D free parameter has fan_in = its length. Batch norm's γ and β are
 * not drawn: they start at 1 and 0 (PyTorch's reset_parameters), whatever the scheme. */
#include "core/graph.h"

#include <math.h>
#include <string.h>

static void fill_uniform(float *w, int64_t n, float bound, nb_rng *rng)
{
    for (int64_t i = 0; i < n; i++)
        w[i] = (2.0f * nb_rng_uniform(rng) - 1.0f) * bound;
}

static void fill_normal(float *w, int64_t n, float std, nb_rng *rng)
{
    for (int64_t i = 0; i < n; i++)
        w[i] = std * nb_rng_normal(rng);
}

/* fan_in / fan_out of the weight that parameter p belongs to. */
static void fans(nb_graph *g, const nb_node *p, double *fan_in, double *fan_out)
{
    const nb_node *w = p;
    size_t len = strlen(p->name);
    if (p->ndim == 1 && len > 5 && strcmp(p->name + len - 5, ".bias") == 0) {
        char wname[NB_NAME_MAX + 8];
        memcpy(wname, p->name, len - 5);
        strcpy(wname + len - 5, ".weight");
        int id = nb_graph_find(g, wname);
        if (id >= 0)
            w = &g->nodes[id];
    }
    double receptive = 1.0;
    for (int i = 2; i < w->ndim; i++)
        receptive *= (double)w->dims[i];
    *fan_in = w->ndim >= 2 ? (double)w->dims[1] * receptive : (double)w->dims[0];
    *fan_out = w->ndim >= 2 ? (double)w->dims[0] * receptive : 1.0;
}

void nb_graph_init_params(nb_graph *g, nb_init_kind kind, nb_rng *rng)
{
    for (int i = 0; i < g->param_count; i++) {
        nb_node *p = &g->nodes[g->param_nodes[i]];
        float *w = g->params + p->param_offset;
        int is_bias = p->ndim == 1 && strstr(p->name, ".bias") != NULL;
        double in, out;
        fans(g, p, &in, &out);
        if (kind == NB_INIT_TORCH) {
            fill_uniform(w, p->size, (float)(1.0 / sqrt(in)), rng);
        } else if (is_bias) {
            memset(w, 0, (size_t)p->size * sizeof *w);
        } else if (kind == NB_INIT_KAIMING_NORMAL) {
            fill_normal(w, p->size, (float)sqrt(2.0 / in), rng);
        } else if (kind == NB_INIT_KAIMING_UNIFORM) {
            fill_uniform(w, p->size, (float)sqrt(6.0 / in), rng);
        } else if (kind == NB_INIT_XAVIER_NORMAL) {
            fill_normal(w, p->size, (float)sqrt(2.0 / (in + out)), rng);
        } else {
            fill_uniform(w, p->size, (float)sqrt(6.0 / (in + out)), rng);
        }
    }
    for (int i = 0; i < g->count; i++) {
        const nb_node *n = &g->nodes[i];
        if (n->op != NB_OP_BATCH_NORM && n->op != NB_OP_LAYER_NORM)
            continue;
        nb_node *gamma = nb_in(g, n, 1), *beta = nb_in(g, n, 2); /* both: x, γ, β, … */
        for (int64_t c = 0; c < gamma->size; c++) {
            g->params[gamma->param_offset + (size_t)c] = 1.0f;
            g->params[beta->param_offset + (size_t)c] = 0.0f;
        }
    }
    nb_graph_params_changed(g);
}

int nb_init_parse(const char *name)
{
    static const char *const names[] = {
        [NB_INIT_TORCH] = "torch",
        [NB_INIT_KAIMING_NORMAL] = "kaiming-normal",
        [NB_INIT_KAIMING_UNIFORM] = "kaiming-uniform",
        [NB_INIT_XAVIER_NORMAL] = "xavier-normal",
        [NB_INIT_XAVIER_UNIFORM] = "xavier-uniform",
    };
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}
