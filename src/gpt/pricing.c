#include "gpt/pricing.h"

#include <string.h>

const field_spec gpt_price_fields[] = {
    {"input", FT_NUMBER, FIELD_REQUIRED, "USD per million input tokens", 0, 1000, NULL, NULL},
    {"cached_input", FT_NUMBER, 0, "USD per million cached input tokens (default: input)", 0, 1000, NULL, NULL},
    {"output", FT_NUMBER, FIELD_REQUIRED, "USD per million output tokens", 0, 1000, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

typedef struct price {
  const char *model;
  double input, cached_input, output;
} price;

/* OpenAI list prices, standard tier, USD per 1M tokens. */
static const price defaults[] = {
    {"gpt-5-nano", 0.05, 0.005, 0.40},     {"gpt-5-mini", 0.25, 0.025, 2.00},
    {"gpt-5", 1.25, 0.125, 10.00},         {"gpt-4.1-nano", 0.10, 0.025, 0.40},
    {"gpt-4.1-mini", 0.40, 0.10, 1.60},    {"gpt-4.1", 2.00, 0.50, 8.00},
    {"gpt-4o-mini", 0.15, 0.075, 0.60},    {"gpt-4o", 2.50, 1.25, 10.00},
    {"o4-mini", 1.10, 0.275, 4.40},        {"o3-mini", 1.10, 0.55, 4.40},
    {"o3", 2.00, 0.50, 8.00},              {"o1-mini", 1.10, 0.55, 4.40},
    {"o1", 15.00, 7.50, 60.00},            {"gpt-4-turbo", 10.00, 10.00, 30.00},
    {"gpt-3.5-turbo", 0.50, 0.50, 1.50},
};

static int prefixes(const char *name, const char *model) {
  return strncmp(model, name, strlen(name)) == 0;
}

static int lookup(const cJSON *prices, const char *model, price *out) {
  size_t best = 0;
  int found = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, prices) {
    if (!it->string || !prefixes(it->string, model) || strlen(it->string) <= best) continue;
    best = strlen(it->string);
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(it, "input");
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(it, "cached_input");
    const cJSON *ou = cJSON_GetObjectItemCaseSensitive(it, "output");
    out->input = cJSON_IsNumber(in) ? in->valuedouble : 0;
    out->cached_input = cJSON_IsNumber(ci) ? ci->valuedouble : out->input;
    out->output = cJSON_IsNumber(ou) ? ou->valuedouble : 0;
    found = 1;
  }
  if (found) return 1;
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
    if (!prefixes(defaults[i].model, model) || strlen(defaults[i].model) <= best) continue;
    best = strlen(defaults[i].model);
    *out = defaults[i];
    found = 1;
  }
  return found;
}

int gpt_has_price(const cJSON *prices, const char *model) {
  price p;
  return model && lookup(prices, model, &p);
}

double gpt_cost_usd(const cJSON *prices, const char *model, long long prompt_tokens,
                    long long cached_tokens, long long completion_tokens) {
  price p;
  if (!model || !lookup(prices, model, &p)) return 0;
  if (cached_tokens > prompt_tokens) cached_tokens = prompt_tokens;
  double uncached = (double)(prompt_tokens - cached_tokens);
  return (uncached * p.input + (double)cached_tokens * p.cached_input +
          (double)completion_tokens * p.output) /
         1e6;
}
