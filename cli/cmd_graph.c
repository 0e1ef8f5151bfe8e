/* nabla graph MODEL: the computation graph in Graphviz DOT, in the lecture's notation.
 *
 * Forward (§1): observed inputs are shaded ellipses, parameters boxes, deterministic
 * functions (modules) rounded boxes labelled with their op and formula, the scalar cost a
 * red rounded box; every edge carries the shape of the value on it ([N,784]: N samples of 784
 * features). Drawn bottom-up, inputs at the bottom and the cost on top, as in the lecture.
 *
 * Backward (§3, --backward): the gradient graph, the forward graph "reversed". One node per
 * module: its vector–Jacobian product, the formulas exactly as src/ops/op_*.c computes them;
 * edges carry gradients dC/dz downwards, from the cost (dC/dC = 1) to the parameters. Where
 * a value feeds several modules (fan-out, the lecture's Duplicate), an explicit Σ node sums
 * the incoming gradients: dC/dz = Σ_k dC/ds[k]·∂s[k]/∂z. nabla needs no such node — every
 * backward accumulates with += — but the picture shows what the += means. Gradients that
 * training does not compute (an observed input's) are dashed.
 *
 * Users see their own names and the lecture's symbols, never the model's internal ones: the
 * cost training appends is C, its labels or targets y. Formula subscripts are drawn as
 * subscripts (Σ_c → Σ<sub>c</sub>), so an underscore in a label is always part of a name. A
 * model file's stored input normalisation is the first module above the input. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void help(void)
{
    printf("Usage: nabla graph MODEL [--backward] [--png FILE | --svg FILE] [-o FILE.dot]\n\n"
           "Writes the model's computation graph in Graphviz DOT: inputs (shaded ellipses),\n"
           "parameters (boxes), modules (rounded boxes with their op), the cost, and the shape\n"
           "on every edge. MODEL is a description file, an MLP shorthand or a model file; the\n"
           "cost that training appends is shown as C, its labels or targets as y, and a model\n"
           "file's stored input normalisation as the first module.\n\n"
           "Options:\n"
           "  --backward         the gradient graph instead: each module's vector-Jacobian\n"
           "                     product, gradients dC/dz flowing from the cost to the\n"
           "                     parameters, and a Σ node where a value fans out\n"
           "  --png FILE         render with Graphviz (dot -Tpng) into FILE\n"
           "  --svg FILE         render with Graphviz (dot -Tsvg) into FILE\n"
           "  -o, --output FILE  write the DOT text to FILE (default: standard output, unless\n"
           "                     --png or --svg is given)\n"
           "  -h, --help         this help\n\n"
           "Example: nabla graph examples/residual.nb --backward --png residual-backward.png\n");
}

/* ---- DOT text ------------------------------------------------------------------------------ */

/* A quoted DOT string: " and \ escaped. */
static void q(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Text inside an HTML-like label: &, <, > and " escaped. */
static void h(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* What a node is called in the picture: its own name, or for the nodes a model adds for
 * training ("__loss__", "__labels__", "__targets__") the lecture's C and y. */
static const char *shown(nb_graph *g, int i)
{
    const char *name = nb_node_name(g, i);
    if (strncmp(name, "__", 2) != 0)
        return name;
    return nb_op_is_cost(nb_node_op(g, i)) ? "C" : "y";
}

/* A node's id: prefix + its name; the added nodes get ids no description can name (':' is
 * not a name character). */
static void node_id(FILE *f, const char *prefix, nb_graph *g, int i)
{
    const char *name = nb_node_name(g, i);
    char buf[NB_NAME_MAX + 32];
    if (strncmp(name, "__", 2) == 0)
        snprintf(buf, sizeof buf, "%s%s:", prefix, nb_op_is_cost(nb_node_op(g, i)) ? "cost" : "y");
    else
        snprintf(buf, sizeof buf, "%s%s", prefix, name);
    q(f, buf);
}

/* A formula in an HTML-like label: escaped as h() does, with "_x" and "_{…}" drawn as
 * subscripts. */
static void formula(FILE *f, const char *s)
{
    char plain[2] = {0};
    for (; *s; s++) {
        if (*s == '_' && s[1] == '{' && strchr(s, '}')) {
            const char *end = strchr(s, '}');
            fputs("<sub>", f);
            for (const char *c = s + 2; c < end; c++)
                plain[0] = *c, h(f, plain);
            fputs("</sub>", f);
            s = end;
        } else if (*s == '_' && s[1] && s[1] != ' ') {
            fputs("<sub>", f);
            plain[0] = *++s, h(f, plain);
            fputs("</sub>", f);
        } else {
            plain[0] = *s, h(f, plain);
        }
    }
}

/* The formulas and roles come from the op table (nb_op_formula, nb_op_vjp, nb_op_is_leaf,
 * nb_op_is_cost): the text that sits beside each op's code in src/ops/op_*.c and
 * src/loss/loss.c. A module backward cannot pass through (nearest's argmin). */
static int no_grad(nb_op op) { return nb_op_no_grad_reason(op) != NULL; }

static void graph_header(FILE *f, const char *model, const char *what, const char *rankdir,
                         const char *legend)
{
    fprintf(f, "digraph ");
    q(f, model);
    fprintf(f, " {\n  graph [rankdir=%s, fontname=\"Helvetica\", fontsize=12, labelloc=t, "
               "nodesep=0.3, ranksep=0.45, label=",
            rankdir);
    char label[1024];
    snprintf(label, sizeof label, "%s of %s\n%s", what, model, legend);
    q(f, label);
    fprintf(f, "];\n  node [fontname=\"Helvetica\", fontsize=11];\n"
               "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\", "
               "fontcolor=\"#333333\"];\n");
}

static void forward_dot(FILE *f, nb_model *m, const char *model)
{
    nb_graph *g = nb_model_graph(m);
    int count = nb_graph_node_count(g), out = nb_model_output(m);
    char shape[64];
    graph_header(f, model, "forward graph", "BT",
                 "shaded ellipse: observed input · box: parameter · rounded box: module · red: "
                 "cost · edges: shapes, N = samples");
    /* a model file's input normalisation, stored with its weights: the first module */
    const nb_norm *norm = nb_model_norm(m);
    int x = nb_model_input(m), normalised = norm && norm->mode != NB_NORM_NONE && x >= 0;
    if (normalised) {
        static const char *const per[] = {"", "per feature", "per channel", "over all inputs"};
        fprintf(f, "  \"normalise:\" [shape=box, style=\"rounded,filled\", fillcolor=\"#e8e0f4\", "
                   "label=<<b>normalise</b> · stored in the model, %s<br/><font point-size=\"9\">"
                   "x' = (x − m) / max(σ, ε), m and σ of the training set</font>>];\n  ",
                per[norm->mode]);
        node_id(f, "", g, x);
        fputs(" -> \"normalise:\" [label=", f);
        q(f, nb_node_shape_str(g, x, shape, sizeof shape));
        fputs("];\n", f);
    }
    for (int i = 0; i < count; i++) {
        nb_op op = nb_node_op(g, i);
        const char *name = shown(g, i);
        fputs("  ", f);
        node_id(f, "", g, i);
        if (op == NB_OP_INPUT || op == NB_OP_LABELS) {
            fprintf(f, " [shape=ellipse, style=filled, fillcolor=\"#d0d0d0\", label=<<b>");
            h(f, name);
            fprintf(f, "</b><br/><font point-size=\"9\">");
            formula(f, nb_op_formula(op));
            fprintf(f, "</font>>];\n");
        } else if (op == NB_OP_PARAM) {
            fprintf(f, " [shape=box, style=filled, fillcolor=\"#fff6d5\", label=<");
            h(f, name);
            fprintf(f, "<br/><font point-size=\"9\">%s</font>>];\n",
                    nb_node_shape_str(g, i, shape, sizeof shape));
        } else {
            int loss = nb_op_is_cost(op);
            fprintf(f, " [shape=box, style=\"rounded,filled%s\", fillcolor=\"%s\", label=<<b>",
                    loss ? ",bold" : "", loss ? "#f4c7c3" : "#dbe8f6");
            h(f, name);
            fprintf(f, "</b>%s · ", loss ? (strcmp(name, "C") ? " = C (cost)" : " (cost)")
                                         : i == out ? " = ȳ (output)" : "");
            h(f, nb_op_name(op));
            fprintf(f, "<br/><font point-size=\"9\">");
            formula(f, nb_op_formula(op));
            fprintf(f, "</font>>];\n");
        }
    }
    for (int i = 0; i < count; i++)
        for (int k = 0; k < nb_node_input_count(g, i); k++) {
            int in = nb_node_input(g, i, k);
            fputs("  ", f);
            if (normalised && in == x)
                fputs("\"normalise:\"", f);
            else
                node_id(f, "", g, in);
            fputs(" -> ", f);
            node_id(f, "", g, i);
            fputs(" [label=", f);
            q(f, nb_node_shape_str(g, in, shape, sizeof shape));
            fputs("];\n", f);
        }
    fputs("}\n", f);
}

/* Whether input k of node i carries a gradient back (labels never do). */
static int carries_grad(nb_graph *g, int i, int k)
{
    return nb_node_op(g, nb_node_input(g, i, k)) != NB_OP_LABELS;
}

static nb_status backward_dot(FILE *f, nb_model *m, const char *model, nb_error *err)
{
    nb_graph *g = nb_model_graph(m);
    int count = nb_graph_node_count(g), root = nb_model_loss(m);
    if (root < 0)
        root = nb_model_output(m);
    /* reached: the nodes whose gradient backprop from root computes (or, for observed inputs,
     * could compute); consumers: how many gradient contributions each receives */
    int *reached = calloc((size_t)count, sizeof *reached);
    int *consumers = calloc((size_t)count, sizeof *consumers);
    if (!reached || !consumers) {
        free(reached);
        free(consumers);
        return nb_error_set(err, NB_ENOMEM, "out of memory");
    }
    reached[root] = 1;
    for (int i = root; i >= 0; i--) {
        nb_op op = nb_node_op(g, i);
        if (!reached[i] || nb_op_is_leaf(op) || no_grad(op))
            continue;
        for (int k = 0; k < nb_node_input_count(g, i); k++)
            if (carries_grad(g, i, k)) {
                reached[nb_node_input(g, i, k)] = 1;
                consumers[nb_node_input(g, i, k)]++;
            }
    }
    char shape[64], label[256];
    int root_is_cost = nb_op_is_cost(nb_node_op(g, root));
    graph_header(f, model, "gradient graph (backward)", "TB",
                 "each module's vector–Jacobian product, in reverse topological order · "
                 "Σ: fan-out, gradients summed (nabla's backward accumulates with +=) · "
                 "dashed: not computed in training");
    fprintf(f, "  \"seed:\" [shape=plaintext, label=");
    q(f, root_is_cost ? "dC/dC = 1" : "dC/dȳ (given)");
    fprintf(f, "];\n  \"seed:\" -> ");
    node_id(f, "vjp:", g, root);
    snprintf(label, sizeof label, "dC/d%s %s", shown(g, root),
             nb_node_shape_str(g, root, shape, sizeof shape));
    fprintf(f, " [label=");
    q(f, label);
    fprintf(f, "];\n");
    for (int i = count - 1; i >= 0; i--) {
        if (!reached[i])
            continue;
        nb_op op = nb_node_op(g, i);
        const char *name = shown(g, i);
        int computed = nb_node_requires_grad(g, i) || i == root;
        const char *dashed = computed ? "" : ", style=dashed, color=\"#999999\", fontcolor=\"#777777\"";
        if (nb_op_is_leaf(op)) {
            /* a gradient's destination: a parameter's (for the optimiser) or an input's */
            fputs("  ", f);
            node_id(f, "grad:", g, i);
            if (op == NB_OP_PARAM)
                fprintf(f, " [shape=box, style=filled, fillcolor=\"#fff6d5\", label=<dC/d");
            else
                fprintf(f, " [shape=ellipse%s, label=<dC/d", computed ? "" : ", style=dashed, "
                        "color=\"#999999\", fontcolor=\"#777777\"");
            h(f, name);
            fprintf(f, "<br/><font point-size=\"9\">%s%s</font>>];\n",
                    nb_node_shape_str(g, i, shape, sizeof shape),
                    op == NB_OP_PARAM ? " → optimiser" : computed ? "" : " (not needed)");
        } else {
            /* the module's VJP, one line per input that receives a gradient */
            fputs("  ", f);
            node_id(f, "vjp:", g, i);
            fprintf(f, " [shape=box, style=\"rounded,filled\", fillcolor=\"%s\", label=<<b>",
                    nb_op_is_cost(op) ? "#f4c7c3" : "#e3f0da");
            h(f, name);
            fprintf(f, "</b> · ");
            h(f, nb_op_name(op));
            fprintf(f, " VJP");
            if (no_grad(op)) {
                fprintf(f, "<br/><font point-size=\"9\">no gradient: ");
                h(f, nb_op_no_grad_reason(op));
                fprintf(f, "</font>");
            } else {
                for (int k = 0; k < nb_node_input_count(g, i); k++) {
                    if (!carries_grad(g, i, k))
                        continue;
                    int in = nb_node_input(g, i, k);
                    int used = nb_node_requires_grad(g, in);
                    fprintf(f, "<br/><font point-size=\"9\"%s>", used ? "" : " color=\"#999999\"");
                    formula(f, nb_op_vjp(op, k));
                    if (!used) {
                        fprintf(f, " (skipped: ");
                        h(f, shown(g, in));
                        fprintf(f, " needs no gradient)");
                    }
                    fprintf(f, "</font>");
                }
            }
            fprintf(f, ">%s];\n", computed ? "" : ", style=\"rounded,dashed\"");
        }
        if (consumers[i] > 1) {
            /* fan-out: the contributions meet in Σ, which passes dC/dz on */
            fputs("  ", f);
            node_id(f, "sum:", g, i);
            fprintf(f, " [shape=circle, fixedsize=true, width=0.45, fontsize=16, label=\"Σ\", "
                       "style=\"%s\", fillcolor=\"%s\"];\n  ",
                    computed ? "filled" : "filled,dashed", computed ? "#ffe9a8" : "#f2f2f2");
            node_id(f, "sum:", g, i);
            fputs(" -> ", f);
            node_id(f, nb_op_is_leaf(op) ? "grad:" : "vjp:", g, i);
            snprintf(label, sizeof label, "dC/d%s %s", name,
                     nb_node_shape_str(g, i, shape, sizeof shape));
            fputs(" [label=", f);
            q(f, label);
            fprintf(f, "%s];\n", dashed);
        }
    }
    /* gradient edges: from each VJP to its inputs' destinations (or their Σ) */
    for (int i = count - 1; i >= 0; i--) {
        nb_op op = nb_node_op(g, i);
        if (!reached[i] || nb_op_is_leaf(op) || no_grad(op))
            continue;
        for (int k = 0; k < nb_node_input_count(g, i); k++) {
            if (!carries_grad(g, i, k))
                continue;
            int in = nb_node_input(g, i, k);
            const char *in_name = shown(g, in);
            int computed = nb_node_requires_grad(g, in);
            fputs("  ", f);
            node_id(f, "vjp:", g, i);
            fputs(" -> ", f);
            if (consumers[in] > 1) {
                node_id(f, "sum:", g, in);
                snprintf(label, sizeof label, "dC/d%s via %s %s", in_name, shown(g, i),
                         nb_node_shape_str(g, in, shape, sizeof shape));
            } else {
                node_id(f, nb_op_is_leaf(nb_node_op(g, in)) ? "grad:" : "vjp:", g, in);
                snprintf(label, sizeof label, "dC/d%s %s", in_name,
                         nb_node_shape_str(g, in, shape, sizeof shape));
            }
            fputs(" [label=", f);
            q(f, label);
            fprintf(f, "%s];\n", computed ? "" : ", style=dashed, color=\"#999999\", "
                    "fontcolor=\"#777777\"");
        }
    }
    fputs("}\n", f);
    free(reached);
    free(consumers);
    return NB_OK;
}

/* ---- rendering with Graphviz --------------------------------------------------------------- */

/* Runs `dot -T<format>` with the DOT text on its standard input and its standard output
 * written to OUT atomically (nb_atomic_*): the picture replaces OUT only once dot has
 * finished successfully, so a failure of dot (or of the write) leaves the previous file.
 * dot's input and output go through poll, so neither pipe can fill while the other waits. */
static nb_status render(const char *text, size_t size, const char *format, const char *out,
                        nb_error *err)
{
    if (!cli_find_on_path("dot", NULL, 0))
        return nb_error_set(err, NB_ENOTSUP, "Graphviz is not installed ('dot' is not on PATH): "
                            "install it (apt-get install graphviz) to render --%s, or write the "
                            "DOT text with -o FILE.dot and render it elsewhere", format);
    nb_atomic_file *af = nb_atomic_open(out, err);
    if (!af)
        return err->code;
    int in[2], from[2];
    if (pipe(in) != 0) {
        nb_atomic_abort(af);
        return nb_error_set(err, NB_EIO, "cannot start dot: %s", strerror(errno));
    }
    if (pipe(from) != 0) {
        int e = errno;
        close(in[0]);
        close(in[1]);
        nb_atomic_abort(af);
        return nb_error_set(err, NB_EIO, "cannot start dot: %s", strerror(e));
    }
    char type[16];
    snprintf(type, sizeof type, "-T%s", format);
    char *argv[] = {"dot", type, NULL};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from[1], 1);
    posix_spawn_file_actions_addclose(&actions, in[0]);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    posix_spawn_file_actions_addclose(&actions, from[0]);
    posix_spawn_file_actions_addclose(&actions, from[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, "dot", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(from[1]);
    if (rc != 0) {
        close(in[1]);
        close(from[0]);
        nb_atomic_abort(af);
        return nb_error_set(err, NB_EIO, "cannot run dot: %s", strerror(rc));
    }
    /* dot may exit early on an error of its own: a closed pipe is then no reason to die */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    size_t done = 0, got = 0;
    nb_status s = NB_OK;
    int to_dot = in[1], from_dot = from[0];
    if (size == 0) {
        close(to_dot);
        to_dot = -1;
    }
    while (from_dot >= 0) {
        struct pollfd p[2] = {{.fd = from_dot, .events = POLLIN}, {.fd = to_dot, .events = POLLOUT}};
        if (poll(p, to_dot >= 0 ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            s = nb_error_set(err, NB_EIO, "%s: waiting for dot: %s", out, strerror(errno));
            break;
        }
        if (to_dot >= 0 && p[1].revents) {
            ssize_t n = write(to_dot, text + done, size - done);
            if (n > 0)
                done += (size_t)n;
            if ((n < 0 && errno != EINTR && errno != EAGAIN) || done == size) {
                close(to_dot); /* written, or dot stopped reading (its status says why) */
                to_dot = -1;
            }
        }
        if (p[0].revents) {
            char buf[65536];
            ssize_t n = read(from_dot, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(from_dot);
                from_dot = -1;
            } else if ((s = nb_atomic_write(af, buf, (size_t)n, err)) != NB_OK) {
                break;
            } else {
                got += (size_t)n;
            }
        }
    }
    if (to_dot >= 0)
        close(to_dot);
    if (from_dot >= 0)
        close(from_dot);
    int status = 0;
    pid_t reaped;
    while ((reaped = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    signal(SIGPIPE, old);
    if (s == NB_OK && reaped != pid)
        s = nb_error_set(err, NB_EIO, "%s: waiting for dot: %s", out, strerror(errno));
    else if (s == NB_OK && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        s = nb_error_set(err, NB_EIO, "%s: dot -T%s failed (%s %d; its message above); the "
                         "previous file, if any, is unchanged", out, format,
                         WIFEXITED(status) ? "exit status" : "signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    if (s == NB_OK && (done < size || got == 0))
        s = nb_error_set(err, NB_EIO, "%s: dot %s; the previous file, if any, is unchanged",
                         out, done < size ? "stopped reading its input" : "wrote nothing");
    if (s != NB_OK) {
        nb_atomic_abort(af);
        return s;
    }
    return nb_atomic_commit(af, err);
}

int cmd_graph(int argc, char **argv)
{
    enum { O_BACKWARD = 256, O_PNG, O_SVG };
    static const struct option options[] = {
        {"backward", no_argument, 0, O_BACKWARD}, {"png", required_argument, 0, O_PNG},
        {"svg", required_argument, 0, O_SVG}, {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *picture = NULL, *format = NULL, *output = NULL;
    int backward = 0, c;
    while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
        switch (c) {
        case O_BACKWARD: backward = 1; break;
        case O_PNG:
        case O_SVG:
            if (picture)
                return cli_usage_error("graph", "give one of --png and --svg");
            picture = optarg;
            format = c == O_PNG ? "png" : "svg";
            break;
        case 'o': output = optarg; break;
        case 'h': help(); return 0;
        default: return cli_usage_error("graph", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("graph", "expected one MODEL argument");
    const char *model = argv[optind];
    nb_error err = {0};
    char *text = NULL;
    size_t size = 0;
    FILE *mem = NULL;
    int status = 1;
    nb_gemm *gemm = nb_gemm_new(NB_GEMM_PORTABLE, 1, &err);
    nb_model *m = gemm ? cli_open_model(model, 1, gemm, &err) : NULL;
    if (!m)
        goto done;
    if (!(mem = open_memstream(&text, &size))) {
        nb_error_set(&err, NB_ENOMEM, "out of memory");
        goto done;
    }
    if (backward) {
        if (backward_dot(mem, m, model, &err))
            goto done;
    } else {
        forward_dot(mem, m, model);
    }
    if (fclose(mem) != 0) {
        mem = NULL;
        nb_error_set(&err, NB_ENOMEM, "out of memory");
        goto done;
    }
    mem = NULL;
    if (output) { /* atomically: a failed write leaves the previous file */
        nb_atomic_file *f = nb_atomic_open(output, &err);
        if (!f)
            goto done;
        if (nb_atomic_write(f, text, size, &err)) {
            nb_atomic_abort(f);
            goto done;
        }
        if (nb_atomic_commit(f, &err))
            goto done;
    } else if (!picture) {
        if (fwrite(text, 1, size, stdout) != size || fflush(stdout) != 0) {
            nb_error_set(&err, NB_EIO, "standard output: write error");
            goto done;
        }
    }
    if (picture && render(text, size, format, picture, &err))
        goto done;
    status = 0;
done:
    if (status)
        cli_fail("graph", &err);
    if (mem)
        fclose(mem);
    free(text);
    nb_model_free(m);
    nb_gemm_free(gemm);
    return status;
}
