/* The precision the graph asks its kernels for (nabla.h, "Mixed precision"). Precision is the
 * backend's business (backend/linear.h): the graph only names the one it wants and tells the
 * backend, through the parameters' generation, when the weights changed. */
#include "backend/linear.h"
#include "core/graph.h"

#include <stdio.h>

nb_status nb_graph_set_precision(nb_graph *g, nb_precision p, nb_error *err)
{
    if (p != NB_PRECISION_FP32 && p != NB_PRECISION_BF16)
        return nb_error_set(err, NB_EINVAL, "unknown precision %d", (int)p);
    if (p == NB_PRECISION_BF16) {
        /* refused now, with the reason, rather than falling back at every product */
        nb_status s = nb_bf16_supported(err);
        if (s)
            return s;
        if (g->gemm && (s = nb_linear_bf16_start(g->gemm, err)))
            return s;
    }
    g->precision = p; /* the backend's bf16 state stays for a switch back */
    return NB_OK;
}

nb_precision nb_graph_precision(const nb_graph *g) { return g->precision; }

/* 0: changed since the backend last numbered the weights (see nb_graph_weights_generation). */
void nb_graph_params_changed(nb_graph *g) { g->param_generation = 0; }

uint64_t nb_graph_weights_generation(nb_graph *g)
{
    if (!g->param_generation)
        g->param_generation = nb_linear_new_generation(g->gemm);
    return g->param_generation;
}

char *nb_graph_kernels(const nb_graph *g, char *buf, size_t size)
{
    if (!g->gemm) {
        snprintf(buf, size, "%s", g->precision == NB_PRECISION_BF16 ? "bf16 (nothing run yet)"
                                                                     : "fp32");
        return buf;
    }
    return nb_linear_kernels(g->gemm, g->precision, buf, size);
}
