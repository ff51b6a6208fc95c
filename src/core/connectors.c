/*
 * connectors: the one file that names every trigger kind and action kind.
 * Adding a connector is one file plus one line in each table below.
 */
#include <string.h>

#include "core/config.h"
#include "core/connector.h"
#include "gpt/provider_probe.h"
#include "net/google_probe.h"
#include "triggers/mail_probe.h"

extern const trigger_kind trigger_event;
extern const trigger_kind trigger_webhook;
extern const trigger_kind trigger_schedule;
extern const trigger_kind trigger_imap;
extern const trigger_kind trigger_csv_export;
extern const trigger_kind trigger_google_forms;
extern const trigger_kind trigger_sheet_rows;
extern const action_kind action_log;
extern const action_kind action_csvfile;
extern const action_kind action_gpt;
extern const action_kind action_http;
extern const action_kind action_slack;
extern const action_kind action_email_draft;
extern const action_kind action_email_send;
extern const action_kind action_sheets_append;
extern const field_spec gpt_provider_fields[];
extern const field_spec gpt_price_fields[];
extern const field_spec gpt_budget_fields[];
extern const field_spec gpt_settings_fields[];
extern const field_spec webhook_http_fields[];
extern const field_spec mail_account_fields[];
extern const field_spec google_config_fields[];
extern const field_spec admin_config_fields[];

const trigger_kind *const connectors_triggers[] = {
    &trigger_event,
    &trigger_webhook,
    &trigger_schedule,
    &trigger_imap,
    &trigger_csv_export,
    &trigger_google_forms,
    &trigger_sheet_rows,
    NULL,
};

const action_kind *const connectors_actions[] = {
    &action_log,
    &action_csvfile,
    &action_gpt,
    &action_http,
    &action_slack,
    &action_email_draft,
    &action_email_send,
    &action_sheets_append,
    NULL,
};

/* Configuration sections that belong to connectors (config.h). */
const config_section connectors_config_sections[] = {
    {"providers", FT_OBJECT_MAP, gpt_provider_fields,
     "OpenAI-compatible endpoints by name: base_url, api_key, organization, project, timeout_s, "
     "rate_limits",
     gpt_providers_probe},
    {"prices", FT_OBJECT_MAP, gpt_price_fields,
     "USD per million tokens by model: input, cached_input, output (overrides the defaults)", NULL},
    {"budgets", FT_OBJECT, gpt_budget_fields,
     "daily caps in tokens and USD, all recipes and per recipe", NULL},
    {"gpt", FT_OBJECT, gpt_settings_fields, "GPT client settings: max_in_flight", NULL},
    {"http", FT_OBJECT, webhook_http_fields,
     "the webhook server: listen, max_body_bytes, max_header_bytes, max_connections, "
     "idle_timeout_s, max_queue, queue_retry_after_s", NULL},
    {"mail", FT_OBJECT_MAP, mail_account_fields,
     "mail accounts by name: imap, smtp, starttls, user, password or oauth2, address, name, "
     "also, drafts, ca_file",
     mail_accounts_probe},
    {"google", FT_OBJECT, google_config_fields,
     "endpoint defaults for the Google connectors: forms_url, sheets_url, token_uri",
     google_probe},
    {.name = "admin", .type = FT_OBJECT, .fields = admin_config_fields,
     .help = "the admin listener (/healthz, /readyz, /metrics): listen (ADDR:PORT or PORT on "
             "127.0.0.1; off when not set)"},
    {NULL, FT_OBJECT, NULL, NULL, NULL},
};

size_t connectors_action_count(void) {
  size_t n = 0;
  while (connectors_actions[n]) n++;
  return n;
}

const trigger_kind *connectors_trigger(const char *name) {
  for (size_t i = 0; connectors_triggers[i]; i++)
    if (strcmp(connectors_triggers[i]->name, name) == 0) return connectors_triggers[i];
  return NULL;
}

const action_kind *connectors_action(const char *name) {
  for (size_t i = 0; connectors_actions[i]; i++)
    if (strcmp(connectors_actions[i]->name, name) == 0) return connectors_actions[i];
  return NULL;
}

const char *outcome_class_name(outcome_class c) {
  switch (c) {
    case OUTCOME_OK: return "ok";
    case OUTCOME_RETRY: return "retry";
    case OUTCOME_FAIL: return "fail";
    case OUTCOME_CANCELLED: return "cancelled";
    case OUTCOME_BUDGET: return "budget";
  }
  return "unknown";
}
