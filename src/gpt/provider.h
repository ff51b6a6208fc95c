/*
 * gpt/provider: where a `gpt` step's request goes and how it authenticates.
 *
 * Configuration, section `providers:` (any number, by name):
 *
 *   providers:
 *     openai:
 *       base_url: https://api.openai.com/v1    # the default
 *       api_key: env:OPENAI_API_KEY            # a secret reference
 *       organization: org-...                  # optional header
 *       project: proj_...                      # optional header
 *       timeout_s: 120
 *       rate_limits: { gpt-4o-mini: { rpm: 500, tpm: 200000 } }
 *     azure:
 *       base_url: https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT
 *       api_version: 2024-10-21                # Azure: ?api-version=, api-key header
 *       api_key: env:AZURE_OPENAI_API_KEY
 *
 * Without a configured `openai` provider, one is made from the environment
 * as the official SDKs do: OPENAI_API_KEY, and OPENAI_BASE_URL (default the
 * OpenAI API v1).  A step without `provider:` uses `openai`.  Ollama, vLLM,
 * llama.cpp's server and OpenRouter work through base_url.
 */
#ifndef PROMPTD_GPT_PROVIDER_H
#define PROMPTD_GPT_PROVIDER_H

#include <cjson/cJSON.h>

#include "core/err.h"
#include "core/fields.h"

#define GPT_DEFAULT_BASE_URL "https://api.openai.com/v1"

typedef struct gpt_provider {
  char *name;
  char *base_url;        /* no trailing slash */
  char *api_key;         /* resolved, or NULL (then key_error says why) */
  char *key_error;
  char *organization, *project;
  char *api_version;     /* set: Azure style (api-key header, api-version query) */
  long timeout_ms;
  cJSON *rate_limits;    /* model -> {rpm, tpm}, or NULL */
} gpt_provider;

typedef struct gpt_providers {
  gpt_provider *v;
  size_t n;
} gpt_providers;

extern const field_spec gpt_provider_fields[];

/* From the configuration section (may be NULL), plus the environment's
 * `openai` when the section does not name one.  Secret references are
 * resolved now; a key that cannot be resolved is reported when a step
 * uses the provider, not here, so other providers keep working. */
int gpt_providers_load(const cJSON *section, gpt_providers *out, perr *e);
void gpt_providers_release(gpt_providers *p);
const gpt_provider *gpt_provider_find(const gpt_providers *p, const char *name);

/* The chat.completions URL and the request headers (NULL-terminated array
 * of malloc'd "Name: value" strings; free with gpt_headers_free). */
int gpt_provider_endpoint(const gpt_provider *p, char **url, char ***headers, perr *e);
void gpt_headers_free(char **headers);

#endif
