#include "gpt/budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

static const field_spec cap_fields[] = {
    {"daily_tokens", FT_INT, 0, "prompt plus completion tokens per UTC day", 0, 1e15, NULL, NULL},
    {"daily_usd", FT_NUMBER, 0, "USD per UTC day", 0, 1e9, NULL, NULL},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

const field_spec gpt_budget_fields[] = {
    {"daily_tokens", FT_INT, 0, "all recipes together: tokens per UTC day", 0, 1e15, NULL, NULL},
    {"daily_usd", FT_NUMBER, 0, "all recipes together: USD per UTC day", 0, 1e9, NULL, NULL},
    {"recipes", FT_OBJECT_MAP, 0, "per recipe name: { daily_tokens, daily_usd }", 0, 0, NULL, cap_fields},
    {NULL, FT_STRING, 0, NULL, 0, 0, NULL, NULL},
};

typedef struct spend {
  char *recipe; /* NULL: all recipes */
  int64_t tokens;
  double usd;
  struct spend *next;
} spend;

struct gpt_budget {
  cJSON *cfg;
  char day[11];
  spend *spends; /* today's, loaded from the store on first use */
};

gpt_budget *gpt_budget_new(const cJSON *section) {
  gpt_budget *b = calloc(1, sizeof *b);
  if (b && section && !(b->cfg = cJSON_Duplicate(section, 1))) {
    free(b);
    return NULL;
  }
  return b;
}

static void clear_spends(gpt_budget *b) {
  while (b->spends) {
    spend *s = b->spends;
    b->spends = s->next;
    free(s->recipe);
    free(s);
  }
}

void gpt_budget_free(gpt_budget *b) {
  if (!b) return;
  clear_spends(b);
  cJSON_Delete(b->cfg);
  free(b);
}

static void roll(gpt_budget *b, int64_t now_ms) {
  char day[32];
  clock_format_ms(now_ms, day, sizeof day);
  day[10] = '\0';
  if (strcmp(day, b->day) != 0) {
    clear_spends(b);
    memcpy(b->day, day, sizeof b->day);
  }
}

static spend *ledger(gpt_budget *b, store *st, const char *recipe) {
  for (spend *s = b->spends; s; s = s->next)
    if ((!s->recipe && !recipe) || (s->recipe && recipe && strcmp(s->recipe, recipe) == 0))
      return s;
  spend *s = calloc(1, sizeof *s);
  if (!s || (recipe && !(s->recipe = strdup(recipe)))) {
    free(s);
    return NULL;
  }
  perr e;
  if (st && store_usage_day(st, b->day, recipe, &s->tokens, &s->usd, &e))
    log_warn("budget: cannot read today's usage; counting from zero", "error=%s", log_q(e.msg));
  s->next = b->spends;
  b->spends = s;
  return s;
}

static long until_midnight(int64_t now_ms) {
  int64_t day_ms = 86400000;
  return (long)(day_ms - now_ms % day_ms);
}

/* 1 when spend has reached one of cap's limits; why says which. */
static int over(const cJSON *cap, const spend *s, const char *who, char *why, size_t n) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(cap, "daily_tokens");
  const cJSON *u = cJSON_GetObjectItemCaseSensitive(cap, "daily_usd");
  if (cJSON_IsNumber(t) && (double)s->tokens >= t->valuedouble) {
    snprintf(why, n, "%s daily token budget reached (%lld of %.0f tokens)", who,
             (long long)s->tokens, t->valuedouble);
    return 1;
  }
  if (cJSON_IsNumber(u) && s->usd >= u->valuedouble) {
    snprintf(why, n, "%s daily budget reached (%.4f of %.2f USD)", who, s->usd, u->valuedouble);
    return 1;
  }
  return 0;
}

long gpt_budget_gate(gpt_budget *b, store *st, const char *recipe, int64_t now_ms, char *why,
                     size_t why_len) {
  if (!b || !b->cfg) return 0;
  roll(b, now_ms);
  spend *all = ledger(b, st, NULL);
  if (all && over(b->cfg, all, "the", why, why_len)) return until_midnight(now_ms);
  const cJSON *per = cJSON_GetObjectItemCaseSensitive(b->cfg, "recipes");
  const cJSON *cap = recipe ? cJSON_GetObjectItemCaseSensitive(per, recipe) : NULL;
  if (cap) {
    spend *mine = ledger(b, st, recipe);
    char who[200];
    snprintf(who, sizeof who, "recipe %s:", recipe);
    if (mine && over(cap, mine, who, why, why_len)) return until_midnight(now_ms);
  }
  return 0;
}

void gpt_budget_spend(gpt_budget *b, const char *recipe, int64_t tokens, double usd,
                      int64_t now_ms) {
  if (!b || !b->cfg) return;
  roll(b, now_ms);
  /* Ledgers not loaded yet are read from the store (which will include this
   * spend once committed), so only loaded ones are bumped. */
  for (spend *s = b->spends; s; s = s->next) {
    if (s->recipe && (!recipe || strcmp(s->recipe, recipe) != 0)) continue;
    s->tokens += tokens;
    s->usd += usd;
  }
}

static double left(const cJSON *cap, const char *key, double spent) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(cap, key);
  if (!cJSON_IsNumber(v)) return -1;
  return v->valuedouble > spent ? v->valuedouble - spent : 0;
}

static void report_cap(gpt_budget *b, store *st, const cJSON *cap, const char *recipe,
                       void (*fn)(void *, const char *, double, double), void *ud) {
  if (!cJSON_GetObjectItemCaseSensitive(cap, "daily_tokens") &&
      !cJSON_GetObjectItemCaseSensitive(cap, "daily_usd"))
    return;
  spend *s = ledger(b, st, recipe);
  if (s) fn(ud, recipe, left(cap, "daily_tokens", (double)s->tokens), left(cap, "daily_usd", s->usd));
}

void gpt_budget_remaining(gpt_budget *b, store *st, int64_t now_ms,
                          void (*fn)(void *ud, const char *recipe, double tokens, double usd),
                          void *ud) {
  if (!b || !b->cfg) return;
  roll(b, now_ms);
  report_cap(b, st, b->cfg, NULL, fn, ud);
  const cJSON *cap;
  cJSON_ArrayForEach(cap, cJSON_GetObjectItemCaseSensitive(b->cfg, "recipes"))
      report_cap(b, st, cap, cap->string, fn, ud);
}
