#include "gpt/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secrets.h"

const field_spec gpt_provider_fields[] = {
    {"base_url", FT_STRING, 0, "API base URL (default " GPT_DEFAULT_BASE_URL ")", 0, 0, NULL, NULL},
    {"api_key", FT_SECRET, 0, "API key: env:NAME, file:/path or cred:NAME", 0, 0, NULL, NULL},
    {"organization", FT_STRING, 0, "OpenAI-Organization header", 0, 0, NULL, NULL},
    {"project", FT_STRING, 0, "OpenAI-Project header", 0, 0, NULL, NULL},
    {"api_version", FT_STRING, 0, "Azure OpenAI api-version; switches to the api-key header", 0, 0, NULL, NULL},
    {"timeout_s", FT_NUMBER, 0, "seconds one call may take (default 120)", 1, 3600, NULL, NULL},
    {"rate_limits", FT_JSON, 0, "per model: { rpm: N, tpm: N } requests and tokens per minute", 0, 0, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

static char *dup_or_null(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

static void provider_release(gpt_provider *p) {
  free(p->name);
  free(p->base_url);
  if (p->api_key) memset(p->api_key, 0, strlen(p->api_key));
  free(p->api_key);
  free(p->key_error);
  free(p->organization);
  free(p->project);
  free(p->api_version);
  cJSON_Delete(p->rate_limits);
}

void gpt_providers_release(gpt_providers *ps) {
  for (size_t i = 0; i < ps->n; i++) provider_release(&ps->v[i]);
  free(ps->v);
  ps->v = NULL;
  ps->n = 0;
}

static int fill(gpt_provider *p, const char *name, const cJSON *cfg, perr *e) {
  memset(p, 0, sizeof *p);
  p->name = strdup(name);
  const char *env_url = getenv("OPENAI_BASE_URL");
  char *url = dup_or_null(cfg, "base_url");
  if (!url) url = strdup(!cfg && env_url && *env_url ? env_url : GPT_DEFAULT_BASE_URL);
  p->base_url = url;
  if (url) {
    size_t n = strlen(url);
    while (n && url[n - 1] == '/') url[--n] = '\0';
  }
  p->organization = dup_or_null(cfg, "organization");
  p->project = dup_or_null(cfg, "project");
  p->api_version = dup_or_null(cfg, "api_version");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "timeout_s");
  p->timeout_ms = cJSON_IsNumber(t) ? (long)(t->valuedouble * 1000) : 120000;
  const cJSON *rl = cJSON_GetObjectItemCaseSensitive(cfg, "rate_limits");
  if (rl && !(p->rate_limits = cJSON_Duplicate(rl, 1))) return perr_set(e, "out of memory");
  if (!p->name || !p->base_url) return perr_set(e, "out of memory");
  const cJSON *key = cJSON_GetObjectItemCaseSensitive(cfg, "api_key");
  /* `openai` without a key falls back to the environment, as the SDKs do;
   * other providers without one send none (a local Ollama needs none). */
  const char *ref = cJSON_IsString(key)             ? key->valuestring
                    : strcmp(name, "openai") == 0 ? "env:OPENAI_API_KEY"
                                                  : NULL;
  if (ref) {
    perr ke;
    p->api_key = secret_resolve(ref, &ke);
    if (!p->api_key) {
      char msg[1200];
      snprintf(msg, sizeof msg, "provider %s: API key %s: %s", name, ref, ke.msg);
      p->key_error = strdup(msg);
    }
  }
  return 0;
}

int gpt_providers_load(const cJSON *section, gpt_providers *out, perr *e) {
  out->v = NULL;
  out->n = 0;
  size_t n = (size_t)cJSON_GetArraySize(section);
  int has_openai = cJSON_GetObjectItemCaseSensitive(section, "openai") != NULL;
  out->v = calloc(n + 1, sizeof *out->v);
  if (!out->v) return perr_set(e, "out of memory");
  const cJSON *it;
  cJSON_ArrayForEach(it, section) {
    if (fill(&out->v[out->n++], it->string, it, e)) goto fail;
  }
  if (!has_openai && fill(&out->v[out->n++], "openai", NULL, e)) goto fail;
  return 0;
fail:
  gpt_providers_release(out);
  return -1;
}

const gpt_provider *gpt_provider_find(const gpt_providers *ps, const char *name) {
  for (size_t i = 0; i < ps->n; i++)
    if (strcmp(ps->v[i].name, name) == 0) return &ps->v[i];
  return NULL;
}

void gpt_headers_free(char **headers) {
  if (!headers) return;
  for (size_t i = 0; headers[i]; i++) {
    memset(headers[i], 0, strlen(headers[i]));
    free(headers[i]);
  }
  free(headers);
}

static char *header(const char *name, const char *value) {
  size_t n = strlen(name) + strlen(value) + 3;
  char *h = malloc(n);
  if (h) snprintf(h, n, "%s: %s", name, value);
  return h;
}

int gpt_provider_endpoint(const gpt_provider *p, char **url, char ***headers, perr *e) {
  *url = NULL;
  *headers = NULL;
  if (!p->api_key && p->key_error) return perr_set(e, "%s", p->key_error);
  size_t n = strlen(p->base_url) + sizeof "/chat/completions?api-version=" +
             (p->api_version ? strlen(p->api_version) : 0);
  char *u = malloc(n);
  char **h = calloc(6, sizeof *h);
  if (!u || !h) {
    free(u);
    free(h);
    return perr_set(e, "out of memory");
  }
  if (p->api_version)
    snprintf(u, n, "%s/chat/completions?api-version=%s", p->base_url, p->api_version);
  else
    snprintf(u, n, "%s/chat/completions", p->base_url);
  size_t k = 0;
  int oom = !(h[k++] = strdup("Content-Type: application/json"));
  if (p->api_key) {
    if (p->api_version) {
      oom |= !(h[k++] = header("api-key", p->api_key));
    } else {
      char bearer[4200];
      snprintf(bearer, sizeof bearer, "Bearer %s", p->api_key);
      oom |= !(h[k++] = header("Authorization", bearer));
      memset(bearer, 0, sizeof bearer);
    }
  }
  if (p->organization) oom |= !(h[k++] = header("OpenAI-Organization", p->organization));
  if (p->project) oom |= !(h[k++] = header("OpenAI-Project", p->project));
  if (oom) {
    free(u);
    gpt_headers_free(h);
    return perr_set(e, "out of memory");
  }
  *url = u;
  *headers = h;
  return 0;
}
