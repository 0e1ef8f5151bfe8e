/* The trainer's checkpoints: weights, optimiser state, the best epoch, the settings and the
 * generators, in one safetensors file whose "nabla.checkpoint" metadata holds the trainer's
 * state as JSON, so that a resumed run continues bit for bit as if it had never stopped. */
#include "core/graph.h"
#include "model/model.h"
#include "train/settings.h"
#include "train/trainer.h"

#include <cjson/cJSON.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The trainer's state as JSON: {"epoch", "step", "position", "loss_sum", "correct",
 * "optimizer", "optimizer_steps", "rng": [4 hex words], "dropout_rng": [4 hex words]}. In
 * mid-epoch "rng" is the state the epoch's order was drawn from. Generator words are hex
 * strings because JSON numbers (doubles) cannot hold 64 bits. */
static char *checkpoint_state(const nb_trainer *t)
{
    const nb_rng *order = t->position ? &t->epoch_rng : &t->rng;
    const nb_rng *dropout = nb_graph_rng(nb_model_graph(t->model));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "epoch", t->epoch);
    cJSON_AddNumberToObject(o, "step", (double)t->step);
    cJSON_AddNumberToObject(o, "position", (double)t->position);
    cJSON_AddNumberToObject(o, "loss_sum", t->epoch_loss_sum);
    cJSON_AddNumberToObject(o, "correct", (double)t->epoch_correct);
    cJSON_AddNumberToObject(o, "optimizer", (int)t->cfg.optim.kind);
    cJSON_AddNumberToObject(o, "optimizer_steps", (double)nb_optim_steps(t->optim));
    nb_best_to_json(&t->best, o);
    nb_settings_to_json(&t->cfg, t->batch, o);
    const nb_rng *gens[2] = {order, dropout};
    const char *names[2] = {"rng", "dropout_rng"};
    for (int k = 0; k < 2; k++) {
        cJSON *a = cJSON_AddArrayToObject(o, names[k]);
        for (int i = 0; a && i < 4; i++) {
            char hex[17];
            snprintf(hex, sizeof hex, "%016" PRIx64, gens[k]->s[i]);
            cJSON_AddItemToArray(a, cJSON_CreateString(hex));
        }
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static const char *optimizer_name(int64_t kind)
{
    static const char *const names[] = {[NB_OPT_SGD] = "sgd", [NB_OPT_ADAM] = "adam",
                                        [NB_OPT_ADAMW] = "adamw"};
    return kind >= 0 && kind < (int64_t)(sizeof names / sizeof names[0]) ? names[kind] : "unknown";
}

/* A non-negative integer field below 2^53, or -1. */
static int64_t state_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble >= 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    return (int64_t)v->valuedouble;
}

static int state_rng(const cJSON *o, const char *key, nb_rng *out)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 4)
        return 0;
    for (int i = 0; i < 4; i++) {
        const cJSON *h = cJSON_GetArrayItem(a, i);
        char *end;
        if (!cJSON_IsString(h) || strlen(h->valuestring) != 16)
            return 0;
        out->s[i] = (uint64_t)strtoull(h->valuestring, &end, 16);
        if (*end)
            return 0;
    }
    /* xoshiro256** never leaves the all-zero state: every draw would be 0, and the shuffle's
     * rejection loop (nb_rng_below) would never end. */
    return (out->s[0] | out->s[1] | out->s[2] | out->s[3]) != 0;
}

nb_status nb_trainer_save_checkpoint(const nb_trainer *t, const char *path, nb_error *err)
{
    /* Under MPI the replicas are equal: rank 0 writes for all, and ranks that share a file
     * system never write one file at once */
    if (t->dist && nb_dist_rank(t->dist) != 0)
        return NB_OK;
    nb_graph *g = nb_model_graph(t->model);
    int n_state = nb_optim_state_count(t->optim);
    nb_tensor_ref extra[9];
    char names[8][32];
    n_state = n_state < 8 ? n_state : 8;
    for (int i = 0; i < n_state; i++) {
        snprintf(names[i], sizeof names[i], "optim.state.%d", i);
        extra[i] = (nb_tensor_ref){.name = names[i], .ndim = 1,
                                   .dims = {(int64_t)nb_graph_param_floats(g)},
                                   .data = nb_optim_state(t->optim, i)};
    }
    char *state = checkpoint_state(t);
    if (!state)
        return nb_error_set(err, NB_ENOMEM, "%s: out of memory", path);
    const char *keys[] = {"nabla.checkpoint"};
    const char *values[] = {state};
    int n_extra = n_state + nb_best_tensor(&t->best, &extra[n_state]);
    nb_status s = nb_model_save_extra(t->model, path, extra, n_extra, keys, values, 1, err);
    free(state);
    return s;
}

nb_status nb_trainer_resume(nb_trainer *t, const char *path, nb_error *err)
{
    nb_safetensors *st;
    nb_status s = nb_safetensors_read(path, &st, err);
    if (s)
        return s;
    nb_graph *g = nb_model_graph(t->model);
    const char *text = nb_safetensors_meta(st, "nabla.checkpoint");
    cJSON *state = text ? cJSON_Parse(text) : NULL;
    const cJSON *loss_sum = cJSON_GetObjectItemCaseSensitive(state, "loss_sum");
    int64_t epoch = state_int(state, "epoch"), step = state_int(state, "step");
    int64_t position = state_int(state, "position"), correct = state_int(state, "correct");
    int64_t kind = state_int(state, "optimizer"), optim_steps = state_int(state, "optimizer_steps");
    nb_rng order, dropout;
    if (!state || epoch < 0 || epoch > INT32_MAX || step < 0 || position < 0 ||
        correct < 0 || kind < 0 || optim_steps < 0 || !cJSON_IsNumber(loss_sum) ||
        !isfinite(loss_sum->valuedouble) || !state_rng(state, "rng", &order) ||
        !state_rng(state, "dropout_rng", &dropout))
        s = nb_error_set(err, NB_EFORMAT, "%s: not a nabla checkpoint (__metadata__ "
                         "'nabla.checkpoint' missing or malformed)", path);
    else if (position >= t->train->count || correct > position)
        s = nb_error_set(err, NB_EINVAL, "%s: the checkpoint stopped after %lld samples of an "
                         "epoch; this data set has %lld", path, (long long)position,
                         (long long)t->train->count);
    else if (kind != (int)t->cfg.optim.kind)
        s = nb_error_set(err, NB_EINVAL, "%s: the checkpoint was written with another optimiser "
                         "(%s; this run uses %s)", path, optimizer_name(kind),
                         optimizer_name(t->cfg.optim.kind));
    nb_best_saved best;
    if (!s)
        s = nb_best_from_json(&t->best, state, st, path, &best, err);
    if (!s)
        s = nb_model_take_weights(t->model, st, path, "optim.", err);
    for (int i = 0; !s && i < nb_optim_state_count(t->optim); i++) {
        char name[32];
        snprintf(name, sizeof name, "optim.state.%d", i);
        const nb_tensor_ref *ref = nb_safetensors_find(st, name);
        if (!ref || ref->ndim != 1 || ref->dims[0] != (int64_t)nb_graph_param_floats(g))
            s = nb_error_set(err, NB_EFORMAT, "%s: tensor '%s' missing or of the wrong size",
                             path, name);
        else
            memcpy(nb_optim_state(t->optim, i), ref->data, nb_graph_param_floats(g) * sizeof(float));
    }
    if (!s) {
        nb_settings_changes(&t->cfg, t->batch, state, t->resume_changes,
                            sizeof t->resume_changes);
        t->epoch = (int)epoch;
        nb_best_apply(&t->best, &best);
        t->step = step;
        t->position = position;
        t->epoch_loss_sum = loss_sum->valuedouble;
        t->epoch_correct = correct;
        nb_optim_set_steps(t->optim, optim_steps);
        t->rng = order;
        *nb_graph_rng(g) = dropout; /* rank 0's */
        if (t->dist) /* each rank its own Dropout masks again (nb_trainer_set_dist) */
            nb_dist_fork_rng(t->dist, nb_graph_rng(g));
    }
    cJSON_Delete(state);
    nb_safetensors_free(st);
    return s;
}
