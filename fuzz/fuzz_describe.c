/* libFuzzer harness for the text model description (src/model/describe.c): the input as text (an
 * MLP shorthand or statements) through the parser, then nb_model_new on the same text, which
 * appends the labels and loss nodes a classifier trains with.
 *
 * The parser runs with the budget nb_model_load gives a file without tensors
 * (nb_describe_budget: 2^24 parameter floats; nb_describe is the same with no budget):
 * "70000-70000" is a legitimate 19 GB model for whoever writes it, but allocating it is not
 * what this harness is after, and libFuzzer would stop at its malloc limit. nb_model_new,
 * which has no budget, runs only on text that fitted.
 *
 * A description that builds is then run: when its activations are small (at most 2^18 floats
 * per sample), the graph is prepared for a batch of 2, forward runs from zero inputs and
 * labels, and backward from the output — so every module's shape rule is held to what its
 * forward and backward actually touch. The text needs no file: nb_describe takes a string,
 * and the model files that carry descriptions are fuzzed by fuzz_model. */
#include "fuzz_file.h"
#include "model/describe.h"
#include "nabla.h"

#define RUN_LIMIT ((int64_t)1 << 18)

static nb_gemm *gemm;

/* Forward and backward on a batch of 2, if the activations are small. */
static void run(nb_graph *g, int output)
{
    int64_t floats = 0;
    for (int i = 0; i < nb_graph_node_count(g); i++) {
        int64_t size = nb_node_size(g, i);
        FUZZ_ASSERT(size >= 0, "node '%s' has size %lld", nb_node_name(g, i), (long long)size);
        if (size > RUN_LIMIT || (floats += size) > RUN_LIMIT)
            return;
    }
    nb_error err = {0};
    if (nb_graph_prepare(g, 2, &err) != NB_OK)
        return;
    if (nb_graph_forward(g, &err) != NB_OK)
        return;
    nb_graph_zero_grad(g);
    nb_status s = nb_graph_backward(g, output, NULL, &err);
    FUZZ_ASSERT(s == NB_OK || s == NB_ENOGRAD, "backward: %s", err.msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_error err = {0};
    if (!gemm && !(gemm = nb_gemm_new(NB_GEMM_PORTABLE, 1, &err)))
        fuzz_die(err.msg);
    char *text = fuzz_strndup(data, size);

    nb_graph *g = nb_graph_new(7, gemm);
    if (!g)
        fuzz_die("nb_graph_new");
    int input = -1, output = -1;
    nb_status s = nb_describe_budget(g, text, "fuzz.nb", 0, &input, &output, &err);
    if (s != NB_OK) {
        FUZZ_ASSERT(err.code == s && err.msg[0], "status %d without a message", s);
    } else {
        int n = nb_graph_node_count(g);
        FUZZ_ASSERT(input >= 0 && input < n && nb_node_op(g, input) == NB_OP_INPUT,
                    "input %d of %d nodes", input, n);
        FUZZ_ASSERT(output >= 0 && output < n, "output %d of %d nodes", output, n);
        FUZZ_ASSERT(nb_graph_error(g, &err) == NB_OK, "described graph has an error: %s",
                    err.msg);
        run(g, output);
    }
    nb_graph_free(g);

    nb_model *m = s == NB_OK ? nb_model_new(text, "fuzz.nb", 7, gemm, &err) : NULL;
    if (m) {
        int out = nb_model_output(m), loss = nb_model_loss(m);
        nb_graph *mg = nb_model_graph(m);
        FUZZ_ASSERT(out >= 0 && loss >= 0 && loss < nb_graph_node_count(mg), "output %d loss %d",
                    out, loss);
        FUZZ_ASSERT(nb_model_features(m) >= 1, "features %lld",
                    (long long)nb_model_features(m));
        run(mg, loss);
        nb_model_free(m);
    }
    free(text);
    return 0;
}
