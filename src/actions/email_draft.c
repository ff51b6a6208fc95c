/*
 * action `email_draft`: a reply to the triggering message, saved in the
 * account's Drafts folder for a person to send.
 *
 *   - id: draft
 *     email_draft:
 *       account: support            # the configuration's mail: section
 *       body: "{{steps.write.text}}"  # the reply text (template)
 *       quote: true                 # append the quoted original (default true)
 *       folder: Drafts              # default: account's drafts, else SPECIAL-USE \Drafts
 *
 * The event must be a mail event (trigger imap, or `promptd emit` of what
 * `promptd mail parse --json` prints): it is what the reply answers
 * (email_reply.h builds the message).
 *
 * Exactly once.  The reply's Message-ID is derived from the run and the step
 * (email_reply_message_id), so every attempt builds the same message.  An
 * attempt first searches the folder for that Message-ID: found, it only
 * makes sure the flags are right; not found, it APPENDs.  A crash between
 * APPEND and the step's commit therefore leaves one draft: the next attempt
 * finds it.  Debian 12's libcurl APPENDs with \Seen and cannot pass flags,
 * so the draft is then found (APPENDUID, else the search again) and set
 * \Draft, unseen, with UID STORE.
 *
 *   start -> [token] -> [LIST: drafts folder] -> SEARCH id -> found? -> STORE
 *                                                          \-> APPEND -> [SEARCH] -> STORE -> done
 *
 * One IMAP client per account, shared by every draft step (the kind's
 * state): its operations queue, so an account holds one connection however
 * many drafts are written at once (servers cap connections per user:
 * Dovecot 10, Gmail 15).  A new credential (a refreshed token, a rotated
 * password) replaces the client.
 *
 * Classification: connection trouble and timeouts retry; refused logins,
 * TLS problems and refused commands (quota, no such folder) fail the run
 * with the server's words.  Output: {folder, uid, message_id, to, subject}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/email_common.h"
#include "core/log.h"
#include "core/runtime.h"
#include "net/imap_client.h"

static const field_spec draft_fields[] = {
    {.name = "account", .type = FT_STRING, .flags = FIELD_REQUIRED,
     .help = "mail account name in the configuration's mail: section"},
    {.name = "body", .type = FT_TEMPLATE, .flags = FIELD_REQUIRED,
     .help = "the reply text, a template rendered without escaping"},
    {.name = "quote", .type = FT_BOOL, .help = "append the quoted original (default true)"},
    {.name = "folder", .type = FT_STRING,
     .help = "folder for the draft (default: the account's drafts, else the server's \\Drafts)"},
    {.name = NULL},
};

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

typedef struct shared_client {
  char *account, *credential;
  imap_client *imap;
  struct shared_client *next;
} shared_client;

typedef struct draft_state {
  runtime *rt;
  shared_client *clients;
} draft_state;

static void shared_free(shared_client *sc) {
  imap_client_free(sc->imap);
  if (sc->credential) memset(sc->credential, 0, strlen(sc->credential));
  free(sc->credential);
  free(sc->account);
  free(sc);
}

/* The account's client for this credential, made or replaced as needed. */
static imap_client *shared_get(draft_state *st, struct ev_loop *loop, const mail_account *acct,
                               const char *password, const char *bearer, perr *e) {
  const char *cred = bearer ? bearer : password;
  shared_client **p = &st->clients;
  for (; *p; p = &(*p)->next)
    if (strcmp((*p)->account, acct->name) == 0) break;
  if (*p && strcmp((*p)->credential, cred) == 0) return (*p)->imap;
  if (*p) { /* credential changed: calls queued on the old one are cancelled and retried */
    shared_client *old = *p;
    *p = old->next;
    shared_free(old);
  }
  imap_account a = {.url = acct->imap_url,
                    .starttls = acct->starttls && strncmp(acct->imap_url, "imap://", 7) == 0,
                    .user = acct->user,
                    .password = bearer ? NULL : password,
                    .bearer = bearer,
                    .ca_file = acct->ca_file,
                    .insecure = acct->insecure};
  shared_client *sc = calloc(1, sizeof *sc);
  if (!sc || !(sc->account = strdup(acct->name)) || !(sc->credential = strdup(cred)) ||
      !(sc->imap = imap_client_new(loop, st->rt->http, &a, e))) {
    if (sc && !sc->imap && sc->credential) perr_prefix(e, "imap");
    else perr_set(e, "out of memory");
    if (sc) {
      free(sc->credential);
      free(sc->account);
      free(sc);
    }
    return NULL;
  }
  sc->next = st->clients;
  st->clients = sc;
  return sc->imap;
}

static int draft_init(runtime *rt, void **state, perr *e) {
  draft_state *st = calloc(1, sizeof *st);
  if (!st) return perr_set(e, "out of memory");
  st->rt = rt;
  *state = st;
  return 0;
}

static void draft_shutdown(void *state) {
  draft_state *st = state;
  while (st->clients) {
    shared_client *sc = st->clients;
    st->clients = sc->next;
    shared_free(sc);
  }
  free(st);
}

typedef struct draft_call {
  action_call *c;
  mail_account acct;
  email_login *login;
  imap_client *imap; /* the account's shared client (not ours to free) */
  imap_op *op;
  email_built msg;
  char *folder;
  int appended;
  int cancelled;
} draft_call;

static void call_free(draft_call *d) {
  d->c->priv = NULL;
  email_login_free(d->login);
  email_built_release(&d->msg);
  free(d->folder);
  free(d);
}

static void finish(draft_call *d, outcome_class cls, cJSON *out, const char *detail) {
  action_call *c = d->c;
  call_free(d);
  action_done(c, cls, out, detail, 0);
}

static void fail_imap(draft_call *d, const char *what, const imap_result *r) {
  char msg[700];
  snprintf(msg, sizeof msg, "%s: %s (%s)", what, r->error, imap_rc_name(r->rc));
  outcome_class cls = r->rc == IMAP_E_CANCELLED                              ? OUTCOME_CANCELLED
                      : (r->rc == IMAP_E_TRANSPORT || r->rc == IMAP_E_PROTOCOL) ? OUTCOME_RETRY
                                                                             : OUTCOME_FAIL;
  finish(d, cls, NULL, msg);
}

static void done_ok(draft_call *d, uint32_t uid) {
  cJSON *out = cJSON_CreateObject();
  cJSON_AddStringToObject(out, "folder", d->folder);
  cJSON_AddNumberToObject(out, "uid", uid);
  cJSON_AddStringToObject(out, "message_id", d->msg.message_id);
  cJSON_AddStringToObject(out, "to", d->msg.to ? d->msg.to : "");
  cJSON_AddStringToObject(out, "subject", d->msg.subject);
  cJSON_AddBoolToObject(out, "already_there", !d->appended);
  log_info("draft saved", "run=%lld folder=%s uid=%u existed=%d", (long long)d->c->run_id,
           d->folder, uid, !d->appended);
  finish(d, OUTCOME_OK, out, NULL);
}

static void on_stored(void *ud, const imap_result *r) {
  draft_call *d = ud;
  d->op = NULL;
  if (r->rc != IMAP_OK) return fail_imap(d, "store flags", r);
  done_ok(d, r->uid);
}

static void set_flags(draft_call *d, uint32_t uid, char change, unsigned flags,
                      imap_done_fn next);

static void on_unseen(void *ud, const imap_result *r) {
  draft_call *d = ud;
  d->op = NULL;
  if (r->rc != IMAP_OK) return fail_imap(d, "store flags", r);
  set_flags(d, r->uid, '+', IMAP_FLAG_DRAFT, on_stored);
}

static void set_flags(draft_call *d, uint32_t uid, char change, unsigned flags,
                      imap_done_fn next) {
  perr e;
  if (imap_store(d->imap, d->folder, uid, change, flags, next, d, &d->op, &e))
    finish(d, OUTCOME_FAIL, NULL, e.msg);
}

static void search_id(draft_call *d);

static void on_appended(void *ud, const imap_result *r) {
  draft_call *d = ud;
  d->op = NULL;
  if (r->rc != IMAP_OK) return fail_imap(d, "append", r);
  d->appended = 1;
  if (r->has_uid) return set_flags(d, r->uid, '-', IMAP_FLAG_SEEN, on_unseen);
  search_id(d); /* no APPENDUID: find it by its Message-ID */
}

static void on_search(void *ud, const imap_result *r) {
  draft_call *d = ud;
  d->op = NULL;
  if (r->rc != IMAP_OK) return fail_imap(d, "search drafts", r);
  if (r->n_uids > 0) {
    /* Already there (an earlier attempt, or the APPEND just made): make
     * sure it is a draft and unseen. */
    return set_flags(d, r->uids[r->n_uids - 1], '-', IMAP_FLAG_SEEN, on_unseen);
  }
  if (d->appended) {
    finish(d, OUTCOME_RETRY, NULL, "append succeeded but the draft is not found by its Message-ID");
    return;
  }
  perr e;
  if (imap_append(d->imap, d->folder, d->msg.raw, d->msg.raw_len, on_appended, d, &d->op, &e))
    finish(d, OUTCOME_FAIL, NULL, e.msg);
}

static void search_id(draft_call *d) {
  char id[600];
  snprintf(id, sizeof id, "<%s>", d->msg.message_id);
  imap_search_key k = {.header_name = "Message-ID", .header_value = id};
  perr e;
  if (imap_search(d->imap, d->folder, &k, on_search, d, &d->op, &e))
    finish(d, OUTCOME_FAIL, NULL, e.msg);
}

static void on_list(void *ud, const imap_result *r) {
  draft_call *d = ud;
  d->op = NULL;
  if (r->rc != IMAP_OK) return fail_imap(d, "list folders", r);
  const imap_folder *f = imap_folder_find(r->folders, r->n_folders, IMAP_ATTR_DRAFTS);
  if (!f) {
    finish(d, OUTCOME_FAIL, NULL,
           "the server marks no folder \\Drafts; set drafts: in the mail account or folder: "
           "in the step");
    return;
  }
  d->folder = strdup(f->name);
  if (!d->folder) return finish(d, OUTCOME_FAIL, NULL, "out of memory");
  search_id(d);
}

static void on_login(void *ud, const char *password, const char *bearer, const char *error,
                     int permanent) {
  draft_call *d = ud;
  if (d->cancelled) return finish(d, OUTCOME_CANCELLED, NULL, "cancelled");
  if (error) return finish(d, permanent ? OUTCOME_FAIL : OUTCOME_RETRY, NULL, error);
  perr e;
  d->imap = shared_get(d->c->kind_state, d->c->loop, &d->acct, password, bearer, &e);
  if (!d->imap) return finish(d, OUTCOME_FAIL, NULL, e.msg);
  if (d->folder) return search_id(d);
  if (imap_list(d->imap, on_list, d, &d->op, &e)) finish(d, OUTCOME_FAIL, NULL, e.msg);
}

static int draft_start(action_call *c, perr *e) {
  draft_call *d = calloc(1, sizeof *d);
  if (!d) return perr_set(e, "out of memory");
  d->c = c;
  c->priv = d;
  const char *folder;
  if (mail_account_get(c->rt->cfg, str(c->input, "account"), &d->acct, e) ||
      (!d->acct.imap_url &&
       perr_set(e, "mail account \"%s\" has no imap: server", d->acct.name)) ||
      email_build(c, &d->acct, 0, &d->msg, e))
    goto fail;
  folder = str(c->input, "folder") ? str(c->input, "folder") : d->acct.drafts;
  if (folder && !(d->folder = strdup(folder))) {
    perr_set(e, "out of memory");
    goto fail;
  }
  if (!(d->login = email_login_start(c, &d->acct, on_login, d, e))) goto fail;
  return 0;
fail:
  call_free(d);
  return -1;
}

static void draft_cancel(action_call *c) {
  draft_call *d = c->priv;
  if (!d) return;
  d->cancelled = 1;
  if (d->op) imap_op_cancel(d->op); /* its callback reports CANCELLED */
}

const action_kind action_email_draft = {
    .name = "email_draft",
    .summary = "saves a threaded reply to the triggering mail in the account's Drafts folder "
               "(\\Draft, unseen) for a person to send",
    .guarantee = "exactly-once: the draft's Message-ID is fixed per run and step and searched "
                 "for before every APPEND",
    .fields = draft_fields,
    .flags = ACTION_ACCOUNT,
    .prepare = email_prepare_input,
    .start = draft_start,
    .cancel = draft_cancel,
    .init = draft_init,
    .shutdown = draft_shutdown,
};
