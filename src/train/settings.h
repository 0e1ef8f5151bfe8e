/* Internal: the hyper-parameters recorded in a checkpoint (src/train/settings.c). */
#ifndef NB_TRAIN_SETTINGS_H
#define NB_TRAIN_SETTINGS_H

#include "nabla.h"

#include <cjson/cJSON.h>

/* Adds "settings": {name: value} for cfg and the batch size in use to a checkpoint's state. */
void nb_settings_to_json(const nb_train_config *cfg, int64_t batch, cJSON *state);
/* Lists in out (empty when none) the settings of cfg that differ from those state records:
 * "lr 0.05 (the checkpoint's: 0.1), batch 64 (the checkpoint's: 128)". */
void nb_settings_changes(const nb_train_config *cfg, int64_t batch, const cJSON *state,
                         char *out, size_t size);

#endif
