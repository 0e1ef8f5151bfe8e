/* The hyper-parameters a checkpoint was written with, so that --resume can say which ones a
 * resumed run changed: a resume continues the optimiser's state, but not its settings, and a
 * changed batch size, rate or schedule gives a run that no single setting describes. The
 * number of epochs is not among them: extending a run is what resuming is for. */
#include "train/settings.h"

#include <stdio.h>
#include <string.h>

typedef struct setting {
    const char *name;
    double value;      /* numbers */
    const char *text;  /* or names (order, schedule) */
} setting;

enum { SETTINGS = 20 };

static void settings_of(const nb_train_config *c, int64_t batch, setting s[SETTINGS])
{
    static const char *const orders[] = {[NB_ORDER_SEQUENTIAL] = "sequential",
                                         [NB_ORDER_SHUFFLE] = "shuffle",
                                         [NB_ORDER_STRATIFIED] = "stratified"};
    static const char *const schedules[] = {[NB_SCHED_CONSTANT] = "constant",
                                            [NB_SCHED_STEP] = "step",
                                            [NB_SCHED_EXPONENTIAL] = "exp",
                                            [NB_SCHED_COSINE] = "cosine"};
    const nb_optim_config *o = &c->optim;
    setting all[SETTINGS] = {
        {"batch", (double)batch, NULL},
        {"lr", o->lr, NULL},
        {"momentum", o->momentum, NULL},
        {"dampening", o->dampening, NULL},
        {"nesterov", o->nesterov, NULL},
        {"beta1", o->beta1, NULL},
        {"beta2", o->beta2, NULL},
        {"adam-eps", o->eps, NULL},
        {"weight-decay", o->weight_decay, NULL},
        {"l1", o->l1, NULL},
        {"clip", o->clip_norm, NULL},
        {"schedule", 0, schedules[c->schedule.kind]},
        {"step-size", (double)c->schedule.step_size, NULL},
        {"gamma", c->schedule.gamma, NULL},
        {"warmup", (double)c->schedule.warmup, NULL},
        {"min-lr", c->schedule.min_lr, NULL},
        {"order", 0, orders[c->order]},
        /* --augment's crops and flips change what every later step sees */
        {"augment", c->augment_flip, NULL},
        {"augment-pad", c->augment_pad, NULL},
        /* the cross-entropy's target: every later step fits another distribution */
        {"label-smoothing", c->label_smoothing, NULL},
    };
    memcpy(s, all, sizeof all);
}

void nb_settings_to_json(const nb_train_config *cfg, int64_t batch, cJSON *state)
{
    setting s[SETTINGS];
    settings_of(cfg, batch, s);
    cJSON *o = cJSON_AddObjectToObject(state, "settings");
    for (int i = 0; o && i < SETTINGS; i++) {
        if (s[i].text)
            cJSON_AddStringToObject(o, s[i].name, s[i].text);
        else
            cJSON_AddNumberToObject(o, s[i].name, s[i].value);
    }
}

void nb_settings_changes(const nb_train_config *cfg, int64_t batch, const cJSON *state,
                         char *out, size_t size)
{
    out[0] = 0;
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(state, "settings");
    if (!cJSON_IsObject(o)) /* a checkpoint from before settings were recorded */
        return;
    setting s[SETTINGS];
    settings_of(cfg, batch, s);
    size_t used = 0;
    for (int i = 0; i < SETTINGS && used < size; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, s[i].name);
        char now[64], then[64];
        if (s[i].text && cJSON_IsString(v) && strcmp(v->valuestring, s[i].text) != 0) {
            snprintf(now, sizeof now, "%s", s[i].text);
            snprintf(then, sizeof then, "%s", v->valuestring);
        } else if (!s[i].text && cJSON_IsNumber(v) && (float)v->valuedouble != (float)s[i].value) {
            /* compared as the floats they are: cJSON writes 15 significant digits when they
             * read back within its tolerance, which need not be the double's exact value */
            snprintf(now, sizeof now, "%.7g", (double)(float)s[i].value);
            snprintf(then, sizeof then, "%.7g", (double)(float)v->valuedouble);
        } else
            continue;
        int n = snprintf(out + used, size - used, "%s%s %s (the checkpoint's: %s)",
                         used ? ", " : "", s[i].name, now, then);
        used += n > 0 ? (size_t)n : 0;
    }
}
