/*
 * action `log`: writes one line to the daemon's log.
 *
 *   - id: note
 *     log: { message: "event {{event.n}}", level: warn }
 *
 * prepare renders the message as plain text (no escaping: it goes to a
 * log line, where log_q quotes it); start logs it and reports OK at once
 * (connector.h allows action_done from inside start: the engine defers
 * it).  A log line is not a durable effect, so a repeated step after a
 * crash may log twice: the guarantee is at-least-once.
 */
#include <stdlib.h>
#include <string.h>

#include "core/connector.h"
#include "core/log.h"

static const char *const level_choices[] = {"info", "warn", "error", NULL};

static const field_spec log_fields[] = {
    {.name = "message",
     .type = FT_TEMPLATE,
     .flags = FIELD_REQUIRED,
     .help = "text to log, a template rendered without escaping"},
    {.name = "level",
     .type = FT_STRING,
     .choices = level_choices,
     .help = "log level: info, warn or error (default info)"},
    {.name = NULL},
};

static const char *cfg_level(const cJSON *obj) {
  const cJSON *l = cJSON_GetObjectItemCaseSensitive(obj, "level");
  return cJSON_IsString(l) ? l->valuestring : "info";
}

static int log_validate(const cJSON *cfg, perr *e) {
  const char *lvl = cfg_level(cfg);
  for (size_t i = 0; level_choices[i]; i++)
    if (strcmp(lvl, level_choices[i]) == 0) return 0;
  return perr_set(e, "level: expected one of info, warn, error, got \"%.64s\"", lvl);
}

static int log_prepare(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON **input,
                       perr *e) {
  *input = NULL;
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(cfg, "message");
  if (!cJSON_IsString(m)) return perr_set(e, "message: expected a template string");
  tpl_opts o = {.escape = TPL_ESCAPE_NONE,
                .partial = env ? env->partial : NULL,
                .partial_ud = env ? env->partial_ud : NULL};
  char *text = tpl_render_str(m->valuestring, ctx, &o, e);
  if (!text) return perr_prefix(e, "message");
  cJSON *in = cJSON_CreateObject();
  if (!in || !cJSON_AddStringToObject(in, "message", text) ||
      !cJSON_AddStringToObject(in, "level", cfg_level(cfg))) {
    free(text);
    cJSON_Delete(in);
    return perr_set(e, "out of memory");
  }
  free(text);
  *input = in;
  return 0;
}

static int log_start(action_call *c, perr *e) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(c->input, "message");
  if (!cJSON_IsString(m)) return perr_set(e, "log: input has no message");
  log_level lvl = LOG_INFO;
  if (log_level_parse(cfg_level(c->input), &lvl)) lvl = LOG_INFO;
  cJSON *out = cJSON_CreateObject();
  if (!out || !cJSON_AddStringToObject(out, "message", m->valuestring)) {
    cJSON_Delete(out);
    return perr_set(e, "out of memory");
  }
  log_msg(lvl, "recipe log", "recipe=%s run=%lld step=%s message=%s",
          log_q(c->recipe), (long long)c->run_id, log_q(c->step_id), log_q(m->valuestring));
  action_done(c, OUTCOME_OK, out, NULL, 0);
  return 0;
}

const action_kind action_log = {
    .name = "log",
    .summary = "writes a message to the daemon's log",
    .guarantee = "at-least-once (a step repeated after a crash logs again)",
    .fields = log_fields,
    .validate = log_validate,
    .prepare = log_prepare,
    .start = log_start,
};
