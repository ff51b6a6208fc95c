/* google_config: the `google:` configuration section (google_config.h). */
#include "net/google_config.h"

const field_spec google_config_fields[] = {
    {.name = "forms_url", .type = FT_STRING,
     .help = "Forms API base URL (default https://forms.googleapis.com)"},
    {.name = "sheets_url", .type = FT_STRING,
     .help = "Sheets API base URL (default https://sheets.googleapis.com)"},
    {.name = "credentials", .type = FT_SECRET,
     .help = "default service-account or authorized_user JSON for steps and triggers that "
             "name none (a secret reference)"},
    {.name = "token_uri", .type = FT_STRING,
     .help = "token endpoint for every Google credential (default: the credentials' own)"},
    {.name = NULL},
};

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
  return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

const char *google_endpoint(const config *cfg, const cJSON *own, const char *key,
                            const char *section_key, const char *dflt) {
  const char *v = str(own, key);
  if (!v && cfg) v = str(config_get_section(cfg, "google"), section_key);
  return v ? v : dflt;
}

const char *google_credentials(const config *cfg, const cJSON *own, perr *e) {
  const char *c = google_endpoint(cfg, own, "credentials", "credentials", NULL);
  if (!c)
    perr_set(e, "no Google credentials: set credentials: here or google.credentials in the "
                "configuration");
  return c;
}
