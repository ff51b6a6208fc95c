/*
 * slack_render: the `slack` step's cross-field checks and its rendering
 * into the step input (the recipe shape and the input's form are in
 * slack.c; the escaping rules there too).  Pure: no I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/slack.h"

/* ---- validate ---- */

int slack_is_http_url(const char *s) {
  return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

static int check_strings(const cJSON *v, const char *path, perr *e) {
  char sub[256];
  if (cJSON_IsString(v)) {
    if (tpl_check(v->valuestring, strlen(v->valuestring), NULL, NULL, e))
      return perr_prefix(e, "%s", path);
    return 0;
  }
  int i = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, v) {
    if (cJSON_IsArray(v))
      snprintf(sub, sizeof sub, "%s[%d]", path, i++);
    else
      snprintf(sub, sizeof sub, "%s.%s", path, it->string);
    if (check_strings(it, sub, e)) return -1;
  }
  return 0;
}

int slack_validate(const cJSON *cfg, perr *e) {
  int hook = cJSON_HasObjectItem(cfg, "webhook_url"), tok = cJSON_HasObjectItem(cfg, "token");
  if (hook == tok)
    return perr_set(e,
                    "give either webhook_url (an incoming webhook) or token (a bot token, "
                    "with channel), not %s",
                    hook ? "both" : "neither");
  if (tok && !cJSON_HasObjectItem(cfg, "channel"))
    return perr_set(e, "token needs channel: the conversation to post to (#name or an ID)");
  if (hook) {
    static const char *const token_only[] = {"channel", "thread_ts", "api_url", NULL};
    for (size_t i = 0; token_only[i]; i++)
      if (cJSON_HasObjectItem(cfg, token_only[i]))
        return perr_set(e, "%s goes with token; an incoming webhook posts where it was created",
                        token_only[i]);
  }
  const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(cfg, "blocks");
  if (!cJSON_HasObjectItem(cfg, "text") && !blocks) return perr_set(e, "give text, blocks or both");
  if (blocks) {
    if (!cJSON_IsArray(blocks)) return perr_set(e, "blocks: expected a list of blocks");
    int n = cJSON_GetArraySize(blocks);
    if (n > SLACK_MAX_BLOCKS)
      return perr_set(e, "blocks: at most %d blocks in a message (Slack's limit), got %d",
                      SLACK_MAX_BLOCKS, n);
    const cJSON *b;
    int i = 0;
    cJSON_ArrayForEach(b, blocks) {
      if (!cJSON_IsObject(b) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(b, "type")))
        return perr_set(e, "blocks[%d]: expected a mapping with a type", i);
      i++;
    }
    if (check_strings(blocks, "blocks", e)) return -1;
  }
  const cJSON *api = cJSON_GetObjectItemCaseSensitive(cfg, "api_url");
  if (cJSON_IsString(api) && !slack_is_http_url(api->valuestring))
    return perr_set(e, "api_url: expected an http:// or https:// URL");
  return 0;
}

/* ---- prepare ---- */

/* Slack's escaping is &amp; &lt; &gt; and nothing else; the template
 * engine's HTML mode adds &quot;, which Slack would show verbatim, so it is
 * turned back into '"'. */
static void unquote(char *s) {
  char *w = s;
  for (const char *r = s; *r;) {
    if (strncmp(r, "&quot;", 6) == 0) {
      *w++ = '"';
      r += 6;
    } else {
      *w++ = *r++;
    }
  }
  *w = '\0';
}

static char *render(const char *tpl, int mrkdwn, const cJSON *ctx, const render_env *env, perr *e) {
  tpl_opts o = {.escape = mrkdwn ? TPL_ESCAPE_HTML : TPL_ESCAPE_NONE,
                .partial = env ? env->partial : NULL,
                .partial_ud = env ? env->partial_ud : NULL};
  char *text = tpl_render_str(tpl, ctx, &o, e);
  if (text && mrkdwn) unquote(text);
  return text;
}

/* A copy of v with every string rendered; "text" inside a {type: mrkdwn}
 * object is message text, everything else is rendered as is. */
static cJSON *render_json(const cJSON *v, int mrkdwn, const char *path, const cJSON *ctx,
                          const render_env *env, perr *e) {
  if (cJSON_IsString(v)) {
    char *text = render(v->valuestring, mrkdwn, ctx, env, e);
    if (!text) {
      perr_prefix(e, "%s", path);
      return NULL;
    }
    cJSON *s = cJSON_CreateString(text);
    free(text);
    if (!s) perr_set(e, "out of memory");
    return s;
  }
  if (!cJSON_IsArray(v) && !cJSON_IsObject(v)) {
    cJSON *c = cJSON_Duplicate(v, 0);
    if (!c) perr_set(e, "out of memory");
    return c;
  }
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
  int is_mrkdwn =
      cJSON_IsObject(v) && cJSON_IsString(type) && strcmp(type->valuestring, "mrkdwn") == 0;
  cJSON *out = cJSON_IsArray(v) ? cJSON_CreateArray() : cJSON_CreateObject();
  if (!out) {
    perr_set(e, "out of memory");
    return NULL;
  }
  const cJSON *it;
  int i = 0;
  cJSON_ArrayForEach(it, v) {
    char sub[256];
    if (cJSON_IsArray(v))
      snprintf(sub, sizeof sub, "%s[%d]", path, i++);
    else
      snprintf(sub, sizeof sub, "%s.%s", path, it->string);
    int child_mrkdwn = is_mrkdwn && strcmp(it->string, "text") == 0;
    cJSON *c = render_json(it, child_mrkdwn, sub, ctx, env, e);
    if (!c) {
      cJSON_Delete(out);
      return NULL;
    }
    if (cJSON_IsArray(v))
      cJSON_AddItemToArray(out, c);
    else
      cJSON_AddItemToObject(out, it->string, c);
  }
  return out;
}

/* Renders cfg[key] into body[key]; skipped when absent, or when the result
 * is empty and skip_empty is set (an optional thread_ts or username). */
static int put_text(cJSON *body, const cJSON *cfg, const char *key, int mrkdwn, int skip_empty,
                    const cJSON *ctx, const render_env *env, perr *e) {
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, key);
  if (!cJSON_IsString(t)) return 0;
  char *text = render(t->valuestring, mrkdwn, ctx, env, e);
  if (!text) return perr_prefix(e, "%s", key);
  int rc = 0;
  if (!(skip_empty && !*text) && !cJSON_AddStringToObject(body, key, text))
    rc = perr_set(e, "out of memory");
  free(text);
  return rc;
}

int slack_prepare(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON **input,
                  perr *e) {
  *input = NULL;
  if (slack_validate(cfg, e)) return -1;
  cJSON *in = cJSON_CreateObject(), *body = cJSON_CreateObject();
  if (!in || !body) goto oom;
  const cJSON *hook = cJSON_GetObjectItemCaseSensitive(cfg, "webhook_url");
  if (hook) {
    if (!cJSON_AddStringToObject(in, "webhook_url", hook->valuestring)) goto oom;
  } else {
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(cfg, "api_url");
    const char *base = cJSON_IsString(api) ? api->valuestring : SLACK_DEFAULT_API_URL;
    size_t n = strlen(base);
    while (n && base[n - 1] == '/') n--;
    char url[2048];
    if (n > sizeof url - 32) {
      perr_set(e, "api_url: longer than %zu bytes", sizeof url - 32);
      goto fail;
    }
    snprintf(url, sizeof url, "%.*s/chat.postMessage", (int)n, base);
    if (!cJSON_AddStringToObject(in, "url", url) ||
        !cJSON_AddStringToObject(in, "token",
                                 cJSON_GetObjectItemCaseSensitive(cfg, "token")->valuestring))
      goto oom;
    if (put_text(body, cfg, "channel", 0, 0, ctx, env, e)) goto fail;
  }
  if (put_text(body, cfg, "text", 1, 0, ctx, env, e)) goto fail;
  const cJSON *blocks = cJSON_GetObjectItemCaseSensitive(cfg, "blocks");
  if (blocks) {
    cJSON *b = render_json(blocks, 0, "blocks", ctx, env, e);
    if (!b) goto fail;
    cJSON_AddItemToObject(body, "blocks", b);
  }
  if (put_text(body, cfg, "thread_ts", 0, 1, ctx, env, e) ||
      put_text(body, cfg, "username", 0, 1, ctx, env, e))
    goto fail;
  const cJSON *icon = cJSON_GetObjectItemCaseSensitive(cfg, "icon_emoji");
  if (cJSON_IsString(icon) && !cJSON_AddStringToObject(body, "icon_emoji", icon->valuestring))
    goto oom;
  cJSON_AddItemToObject(in, "body", body);
  *input = in;
  return 0;
oom:
  perr_set(e, "out of memory");
fail:
  cJSON_Delete(body);
  cJSON_Delete(in);
  return -1;
}
