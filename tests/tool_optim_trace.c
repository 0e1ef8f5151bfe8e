/* Drives nb_optim_step / nb_schedule_lr from a text script on stdin, for
 * tests/torch_optim.py. Whitespace-separated tokens; numbers are read with strtof, so a
 * float printed with 9 significant digits (or numpy's shortest repr) comes back exactly.
 *
 * Optimiser mode:
 *     optim
 *     kind sgd|adam|adamw   n 300   trace 0|1        (settings, any order; unset keys keep
 *     lr 0.01 momentum 0.9 dampening 0 nesterov 0     nb_optim_config_default's values)
 *     beta1 0.9 beta2 0.999 eps 1e-8 weight_decay 0 l1 0 clip_norm 0
 *     w <n floats>                                   initial parameters
 *     step <lr> <n floats>                           one nb_optim_step with this rate and
 *     ...                                            gradient, as many as wanted
 *     end
 *   prints, with trace 1, "w <n floats>" after every step; then "final <n floats>" and
 *   "state <i> <n floats>" for each state buffer (momentum; Adam's m then v).
 *
 * Schedule mode:
 *     schedule
 *     kind constant|step|exponential|cosine  lr 0.1  warmup 0  step_size 3  gamma 0.5
 *     total 20  min_lr 0  steps 25
 *     end
 *   prints nb_schedule_lr(s, lr, t) for t = 0 .. steps−1, one per line.
 *
 * Every number is printed with %.9g. Exit status 2 on a malformed script. */
#include "nabla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, const char *tok)
{
    fprintf(stderr, "tool_optim_trace: %s%s%s\n", what, tok ? ": " : "", tok ? tok : "");
    exit(2);
}

static int next(char *tok, size_t cap)
{
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%%%zus", cap - 1);
    return scanf(fmt, tok) == 1;
}

static float num(void)
{
    char tok[64], *end;
    if (!next(tok, sizeof tok))
        die("unexpected end of input", NULL);
    float x = strtof(tok, &end);
    if (end == tok || *end)
        die("not a number", tok);
    return x;
}

static void print_vec(const char *tag, const float *x, size_t n)
{
    fputs(tag, stdout);
    for (size_t i = 0; i < n; i++)
        printf(" %.9g", x[i]);
    putchar('\n');
}

static int run_optim(void)
{
    nb_optim_config cfg;
    nb_optim_config_default(&cfg);
    size_t n = 0;
    int trace = 0;
    float *w = NULL, *g = NULL;
    nb_optim *opt = NULL;
    char tok[64];
    while (next(tok, sizeof tok)) {
        if (!strcmp(tok, "kind")) {
            if (!next(tok, sizeof tok))
                die("kind needs a value", NULL);
            if (!strcmp(tok, "sgd"))
                cfg.kind = NB_OPT_SGD;
            else if (!strcmp(tok, "adam"))
                cfg.kind = NB_OPT_ADAM;
            else if (!strcmp(tok, "adamw"))
                cfg.kind = NB_OPT_ADAMW;
            else
                die("unknown optimiser", tok);
        } else if (!strcmp(tok, "n")) {
            float x = num();
            if (!(x >= 1 && x <= 1e8))
                die("bad n", NULL);
            n = (size_t)x;
        } else if (!strcmp(tok, "trace")) {
            trace = num() != 0.0f;
        } else if (!strcmp(tok, "lr")) {
            cfg.lr = num();
        } else if (!strcmp(tok, "momentum")) {
            cfg.momentum = num();
        } else if (!strcmp(tok, "dampening")) {
            cfg.dampening = num();
        } else if (!strcmp(tok, "nesterov")) {
            cfg.nesterov = num() != 0.0f;
        } else if (!strcmp(tok, "beta1")) {
            cfg.beta1 = num();
        } else if (!strcmp(tok, "beta2")) {
            cfg.beta2 = num();
        } else if (!strcmp(tok, "eps")) {
            cfg.eps = num();
        } else if (!strcmp(tok, "weight_decay")) {
            cfg.weight_decay = num();
        } else if (!strcmp(tok, "l1")) {
            cfg.l1 = num();
        } else if (!strcmp(tok, "clip_norm")) {
            cfg.clip_norm = num();
        } else if (!strcmp(tok, "w")) {
            if (!n || w)
                die("'w' needs n first, and comes once", NULL);
            nb_error err = {0};
            opt = nb_optim_new(&cfg, n, &err);
            if (!opt)
                die(nb_status_name(err.code), err.msg);
            w = malloc(n * sizeof *w);
            g = malloc(n * sizeof *g);
            if (!w || !g)
                die("out of memory", NULL);
            for (size_t i = 0; i < n; i++)
                w[i] = num();
        } else if (!strcmp(tok, "step")) {
            if (!w)
                die("'step' before 'w'", NULL);
            float lr = num();
            for (size_t i = 0; i < n; i++)
                g[i] = num();
            nb_optim_step(opt, w, g, lr);
            if (trace)
                print_vec("w", w, n);
        } else if (!strcmp(tok, "end")) {
            break;
        } else {
            die("unknown key", tok);
        }
    }
    if (!w)
        die("no 'w'", NULL);
    print_vec("final", w, n);
    for (int i = 0; i < nb_optim_state_count(opt); i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "state %d", i);
        print_vec(tag, nb_optim_state(opt, i), n);
    }
    nb_optim_free(opt);
    free(w);
    free(g);
    return 0;
}

static int run_schedule(void)
{
    nb_schedule s = {.kind = NB_SCHED_CONSTANT, .gamma = 1.0f};
    float lr = 0.1f;
    long steps = 0;
    char tok[64];
    while (next(tok, sizeof tok)) {
        if (!strcmp(tok, "kind")) {
            if (!next(tok, sizeof tok))
                die("kind needs a value", NULL);
            if (!strcmp(tok, "constant"))
                s.kind = NB_SCHED_CONSTANT;
            else if (!strcmp(tok, "step"))
                s.kind = NB_SCHED_STEP;
            else if (!strcmp(tok, "exponential"))
                s.kind = NB_SCHED_EXPONENTIAL;
            else if (!strcmp(tok, "cosine"))
                s.kind = NB_SCHED_COSINE;
            else
                die("unknown schedule", tok);
        } else if (!strcmp(tok, "lr")) {
            lr = num();
        } else if (!strcmp(tok, "warmup")) {
            s.warmup = (int64_t)num();
        } else if (!strcmp(tok, "step_size")) {
            s.step_size = (int64_t)num();
        } else if (!strcmp(tok, "gamma")) {
            s.gamma = num();
        } else if (!strcmp(tok, "total")) {
            s.total = (int64_t)num();
        } else if (!strcmp(tok, "min_lr")) {
            s.min_lr = num();
        } else if (!strcmp(tok, "steps")) {
            steps = (long)num();
        } else if (!strcmp(tok, "end")) {
            break;
        } else {
            die("unknown key", tok);
        }
    }
    for (long t = 0; t < steps; t++)
        printf("%.9g\n", nb_schedule_lr(&s, lr, t));
    return 0;
}

int main(void)
{
    char tok[64];
    if (!next(tok, sizeof tok))
        die("empty input", NULL);
    if (!strcmp(tok, "optim"))
        return run_optim();
    if (!strcmp(tok, "schedule"))
        return run_schedule();
    die("first word must be 'optim' or 'schedule'", tok);
    return 2;
}
