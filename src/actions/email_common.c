/* email_common: the shared parts of the email actions (email_common.h). */
#include "actions/email_common.h"

#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/runtime.h"
#include "core/secrets.h"

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

int email_prepare_input(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON **input,
                        perr *e) {
  *input = NULL;
  const cJSON *event = cJSON_GetObjectItemCaseSensitive(ctx, "event");
  if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(event, "from")) || !str(event, "subject"))
    return perr_set(e, "the event is not a mail message (no from or subject): email steps "
                       "answer mail events (trigger imap)");
  tpl_opts o = {.escape = TPL_ESCAPE_NONE, .partial = env ? env->partial : NULL,
                .partial_ud = env ? env->partial_ud : NULL};
  char *body = tpl_render_str(str(cfg, "body"), ctx, &o, e);
  if (!body) return perr_prefix(e, "body");
  /* The parts of the original the reply needs, so the stored input says
   * exactly what the message is built from. */
  cJSON *in = cJSON_CreateObject(), *orig = cJSON_CreateObject();
  static const char *const keep[] = {"from", "reply_to", "subject", "date", "message_id",
                                     "references", "text", "full_text", NULL};
  for (size_t i = 0; orig && keep[i]; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(event, keep[i]);
    if (v) cJSON_AddItemToObject(orig, keep[i], cJSON_Duplicate(v, 1));
  }
  const cJSON *q = cJSON_GetObjectItemCaseSensitive(cfg, "quote");
  const cJSON *run_id = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ctx, "run"), "id");
  int ok = in && orig && cJSON_AddStringToObject(in, "account", str(cfg, "account")) &&
           cJSON_AddStringToObject(in, "body", body) &&
           cJSON_AddBoolToObject(in, "quote", q ? cJSON_IsTrue(q) : 1) &&
           cJSON_AddNumberToObject(in, "run_id", cJSON_IsNumber(run_id) ? run_id->valuedouble : 0) &&
           (!str(cfg, "folder") || cJSON_AddStringToObject(in, "folder", str(cfg, "folder")));
  free(body);
  if (!ok) {
    cJSON_Delete(in);
    cJSON_Delete(orig);
    return perr_set(e, "out of memory");
  }
  cJSON_AddItemToObject(in, "original", orig);
  *input = in;
  return 0;
}

int email_build(const action_call *c, const mail_account *a, int auto_reply, email_built *out,
                perr *e) {
  memset(out, 0, sizeof *out);
  const cJSON *in = c->input;
  const cJSON *orig = cJSON_GetObjectItemCaseSensitive(in, "original");
  int64_t run_id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(in, "run_id"));
  out->message_id = email_reply_message_id(run_id, c->step_id, str(orig, "message_id"), a->address);
  const cJSON *to = cJSON_GetObjectItemCaseSensitive(orig, "reply_to");
  if (!str(to, "address") || !*str(to, "address")) to = cJSON_GetObjectItemCaseSensitive(orig, "from");
  out->to = str(to, "address") ? strdup(str(to, "address")) : NULL;
  out->subject = email_reply_subject(str(orig, "subject"));
  email_reply_opts ro = {.original = orig,
                         .from_name = a->display_name,
                         .from_address = a->address,
                         .body = str(in, "body"),
                         .message_id = out->message_id,
                         .quote = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "quote")),
                         .auto_reply = auto_reply,
                         .now_ms = clock_now_ms()};
  if (!out->message_id || !out->subject) {
    email_built_release(out);
    return perr_set(e, "out of memory");
  }
  if (!(out->raw = email_reply_build(&ro, &out->raw_len, e))) {
    email_built_release(out);
    return -1;
  }
  return 0;
}

void email_built_release(email_built *b) {
  free(b->message_id);
  free(b->to);
  free(b->subject);
  free(b->raw);
  memset(b, 0, sizeof *b);
}

struct email_login {
  struct ev_loop *loop;
  oauth2_source *oauth;
  char *password;
  email_login_fn cb;
  void *ud;
  ev_timer deliver;
};

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  email_login *l = w->data;
  l->cb(l->ud, l->password, NULL, NULL, 0);
}

static void on_token(void *ud, const char *token, const char *error, int permanent) {
  email_login *l = ud;
  if (l->cb) l->cb(l->ud, NULL, token, error, permanent);
}

email_login *email_login_start(const action_call *c, const mail_account *a, email_login_fn cb,
                               void *ud, perr *e) {
  email_login *l = calloc(1, sizeof *l);
  if (!l) {
    perr_set(e, "out of memory");
    return NULL;
  }
  l->loop = c->loop;
  l->cb = cb;
  l->ud = ud;
  ev_timer_init(&l->deliver, on_deliver, 0., 0.);
  l->deliver.data = l;
  if (a->oauth2) {
    oauth2_opts o = {.token_url = str(a->oauth2, "token_url"),
                     .client_id = str(a->oauth2, "client_id"),
                     .client_secret_ref = str(a->oauth2, "client_secret"),
                     .refresh_token_ref = str(a->oauth2, "refresh_token")};
    if (!(l->oauth = oauth2_source_new(c->rt->http, c->loop, &o, e)) ||
        oauth2_get_token(l->oauth, on_token, l, e)) {
      email_login_free(l);
      return NULL;
    }
    return l;
  }
  if (!(l->password = secret_resolve(a->password_ref, e))) {
    email_login_free(l);
    return NULL;
  }
  ev_timer_start(l->loop, &l->deliver);
  return l;
}

void email_login_free(email_login *l) {
  if (!l) return;
  ev_timer_stop(l->loop, &l->deliver);
  /* oauth2_source_free tells a waiting callback "cancelled" inside
   * itself: the owner is tearing down and must not hear it. */
  l->cb = NULL;
  oauth2_source_free(l->oauth);
  if (l->password) memset(l->password, 0, strlen(l->password));
  free(l->password);
  free(l);
}
