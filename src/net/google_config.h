/*
 * google_config: the configuration's `google:` section, endpoint defaults
 * shared by every Google connector (a recipe's own base_url / token_uri
 * win), so tests run against a fake and private deployments go through a
 * proxy without editing recipes:
 *
 *   google:
 *     forms_url: https://forms.googleapis.com
 *     sheets_url: https://sheets.googleapis.com
 *     token_uri: https://oauth2.googleapis.com/token   # else the credentials' own
 *     credentials: file:/etc/promptd/google-sa.json   # for recipes that name none
 */
#ifndef PROMPTD_NET_GOOGLE_CONFIG_H
#define PROMPTD_NET_GOOGLE_CONFIG_H

#include <cjson/cJSON.h>

#include "core/config.h"
#include "core/err.h"
#include "core/fields.h"

extern const field_spec google_config_fields[];

/* The step's or trigger's own `key` (e.g. base_url), else the section's
 * `section_key`, else dflt (may be NULL). */
const char *google_endpoint(const config *cfg, const cJSON *own, const char *key,
                            const char *section_key, const char *dflt);

/* The credentials reference to use: own `credentials`, else the
 * section's; NULL with e set when neither is there. */
const char *google_credentials(const config *cfg, const cJSON *own, perr *e);

#endif
