/*
 * trigger `imap`: new mail in a mailbox becomes events.
 *
 *   trigger:
 *     imap:
 *       account: support          # the configuration's mail: section (mail_account.h)
 *       mailbox: INBOX            # default INBOX
 *       poll_s: 60                # default 60
 *       since: 2026-11-01         # first start only: also mail since this date
 *       from: "(?i)@customer\\.example$"    # optional patterns (mail_filter.h),
 *       skip_subject: "(?i)^out of office"  # also to, subject, skip_from, skip_to
 *       keep_automated: false     # true: do not skip robots and lists
 *       unhealthy_after_s: 900    # status says failing when no poll worked this long
 *
 * Source "imap:<account>/<mailbox>".  The event is mail/mime.h's, plus
 * account, mailbox, uid and uidvalidity.
 *
 * A poll (one state machine, one IMAP operation at a time):
 *   token (oauth2 only) -> EXAMINE -> SEARCH UID last+1:* -> FETCH each new
 *   uid in order -> parse, filter -> ingest + cursor -> ... -> wait poll_s
 * The cursor "<uidvalidity>:<last uid>" is written in the same loop
 * iteration as the message's event, so they commit together: a crash
 * repeats nothing and skips nothing.  Skipped messages (filters) move the
 * cursor too.  The event's dedupe key "<uidvalidity>:<uid>" makes a repeat
 * harmless even so.
 *
 * First start (no cursor): only mail arriving from now on (the cursor is
 * set to UIDNEXT - 1), unless `since` asks for older mail too.  A changed
 * UIDVALIDITY (the mailbox was rebuilt, UIDs renumbered) resets the cursor
 * the same way, without triggering old mail, and says so in the log.
 *
 * Failures (connect, login, a refused command) are reported to the engine
 * (status, and one log line per change) and the next poll waits with
 * exponential backoff (poll_s doubled up to 15 minutes).
 */
#include <ev.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/connector.h"
#include "core/engine.h"
#include "core/json_get.h"
#include "core/log.h"
#include "core/runtime.h"
#include "core/secrets.h"
#include "mail/mail_filter.h"
#include "mail/mime.h"
#include "net/imap_client.h"
#include "net/oauth2.h"
#include "triggers/mail_account.h"
#include "triggers/poll_timer.h"

#define BATCH 50           /* messages fetched per poll at most */

static const field_spec imap_fields[] = {
    {.name = "account", .type = FT_STRING, .flags = FIELD_REQUIRED,
     .help = "mail account name in the configuration's mail: section"},
    {.name = "mailbox", .type = FT_STRING, .help = "mailbox to watch (default INBOX)"},
    {.name = "poll_s", .type = FT_INT, .min = 1, .max = 86400,
     .help = "seconds between polls (default 60)"},
    {.name = "since", .type = FT_STRING,
     .help = "first start only: also trigger on mail since this date (YYYY-MM-DD)"},
    {.name = "from", .type = FT_STRING, .help = "only mail whose sender matches (regex)"},
    {.name = "to", .type = FT_STRING, .help = "only mail to a matching recipient (regex)"},
    {.name = "subject", .type = FT_STRING, .help = "only mail whose subject matches (regex)"},
    {.name = "skip_from", .type = FT_STRING, .help = "skip mail whose sender matches (regex)"},
    {.name = "skip_to", .type = FT_STRING, .help = "skip mail to a matching recipient (regex)"},
    {.name = "skip_subject", .type = FT_STRING, .help = "skip mail whose subject matches"},
    {.name = "keep_automated", .type = FT_BOOL,
     .help = "also trigger on auto-replies, lists and bounces (default false)"},
    {.name = "unhealthy_after_s", .type = FT_INT, .min = 60, .max = 604800,
     .help = "report failing when no poll has worked for this long (default 900)"},
    {.name = NULL},
};

static void filter_of(const cJSON *cfg, mail_filter *f) {
  memset(f, 0, sizeof *f);
  f->from = json_str(cfg, "from");
  f->to = json_str(cfg, "to");
  f->subject = json_str(cfg, "subject");
  f->skip_from = json_str(cfg, "skip_from");
  f->skip_to = json_str(cfg, "skip_to");
  f->skip_subject = json_str(cfg, "skip_subject");
  f->keep_automated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "keep_automated"));
}

static int parse_date(const char *s, int *y, int *m, int *d) {
  char tail;
  return s && sscanf(s, "%4d-%2d-%2d%c", y, m, d, &tail) == 3 && *m >= 1 && *m <= 12 &&
         *d >= 1 && *d <= 31 && *y >= 1970;
}

static int imap_validate(const cJSON *cfg, perr *e) {
  mail_filter f;
  filter_of(cfg, &f);
  if (mail_filter_check(&f, e)) return -1;
  int y, m, d;
  const char *since = json_str(cfg, "since");
  if (since && !parse_date(since, &y, &m, &d))
    return perr_set(e, "since: expected a date YYYY-MM-DD, got \"%.32s\"", since);
  const char *acct = json_str(cfg, "account");
  if (!acct || !*acct || strchr(acct, '/'))
    return perr_set(e, "account: expected the name of a mail account");
  return 0;
}

static char *imap_source(const cJSON *cfg) {
  const char *mb = json_str(cfg, "mailbox");
  char name[512];
  snprintf(name, sizeof name, "imap:%s/%s", json_str(cfg, "account"), mb ? mb : "INBOX");
  return strdup(name);
}

typedef enum { P_IDLE, P_TOKEN, P_EXAMINE, P_SEARCH, P_FETCH } phase;

struct trigger_inst {
  engine *en;
  const cJSON *cfg;
  const char *source;
  const char *mailbox;
  mail_account acct;
  mail_filter filter;
  const char **own;  /* account's own addresses */
  size_t n_own;
  imap_client *imap;
  oauth2_source *oauth;
  char *bearer, *password;
  phase ph;
  imap_op *op;
  uint32_t uidvalidity, last_uid;
  int have_cursor;
  uint32_t *pending; /* uids to fetch, ascending */
  size_t npending, next;
  long unhealthy_after_s;
  int more;          /* the last search found more than one batch */
  int64_t last_ok_ms;
  poll_timer poll;
};

/* A poll ended badly: report, back off. */
static void poll_failed(trigger_inst *t, const char *what, const char *why) {
  char msg[600];
  snprintf(msg, sizeof msg, "%s: %s", what, why);
  t->ph = P_IDLE;
  t->npending = t->next = 0;
  int64_t now = clock_now_ms();
  /* Quiet failures within the grace keep the state ok in status. */
  if (!t->last_ok_ms || now - t->last_ok_ms >= t->unhealthy_after_s * 1000 ||
      t->poll.backoff_s >= t->poll.poll_s * 4)
    engine_trigger_report(t->en, t->source, msg);
  else
    log_info("imap poll failed; will retry", "source=%s error=%s", t->source, log_q(msg));
  poll_timer_ended(&t->poll, 1, 0);
}

static void poll_ok(trigger_inst *t) {
  t->ph = P_IDLE;
  t->last_ok_ms = clock_now_ms();
  engine_trigger_report(t->en, t->source, NULL);
  /* A backlog is fetched batch after batch, not one batch a poll. */
  poll_timer_ended(&t->poll, 0, t->more);
}

static int set_cursor(trigger_inst *t, uint32_t uidvalidity, uint32_t uid, perr *e) {
  char c[48];
  snprintf(c, sizeof c, "%" PRIu32 ":%" PRIu32, uidvalidity, uid);
  if (engine_cursor_set(t->en, t->source, c, e)) return -1;
  t->uidvalidity = uidvalidity;
  t->last_uid = uid;
  t->have_cursor = 1;
  return 0;
}

static void fetch_next(trigger_inst *t);

/* One message: event (unless filtered) and cursor, in this iteration's
 * transaction.  -1 (why in e) when the event could not be stored: the
 * cursor stays, so the message is fetched again. */
static int take_message(trigger_inst *t, uint32_t uid, const char *data, size_t len, perr *e) {
  cJSON *ev = NULL;
  if (mail_parse(data, len, NULL, &ev, e)) {
    /* Unreadable even leniently (too big): skipped, said once. */
    log_warn("imap message skipped", "source=%s uid=%" PRIu32 " error=%s", t->source, uid,
             log_q(e->msg));
  } else {
    char why[300];
    int skip = mail_skip_reason(ev, &t->filter, why, sizeof why);
    if (skip) {
      log_info("imap message skipped", "source=%s uid=%" PRIu32 " reason=%s", t->source, uid,
               log_q(why));
    } else {
      char key[48];
      snprintf(key, sizeof key, "%" PRIu32 ":%" PRIu32, t->uidvalidity, uid);
      cJSON_AddStringToObject(ev, "account", t->acct.name);
      cJSON_AddStringToObject(ev, "mailbox", t->mailbox);
      cJSON_AddNumberToObject(ev, "uid", uid);
      cJSON_AddNumberToObject(ev, "uidvalidity", t->uidvalidity);
      char *payload = cJSON_PrintUnformatted(ev);
      int rc = payload ? engine_ingest(t->en, t->source, key, payload, strlen(payload), NULL, NULL,
                                       e)
                       : perr_set(e, "out of memory");
      free(payload);
      if (rc) {
        cJSON_Delete(ev);
        return -1;
      }
    }
    cJSON_Delete(ev);
  }
  return set_cursor(t, t->uidvalidity, uid, e);
}

static void on_fetch(void *ud, const imap_result *r) {
  trigger_inst *t = ud;
  t->op = NULL;
  if (t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  uint32_t uid = t->pending[t->next];
  perr e;
  int rc = 0;
  if (r->rc == IMAP_E_GONE) {
    /* Expunged between SEARCH and FETCH: nothing to do for it. */
    rc = set_cursor(t, t->uidvalidity, uid, &e);
  } else if (r->rc == IMAP_E_TOO_BIG) {
    log_warn("imap message too large; skipped", "source=%s uid=%" PRIu32, t->source, uid);
    rc = set_cursor(t, t->uidvalidity, uid, &e);
  } else if (r->rc != IMAP_OK) {
    return poll_failed(t, "fetch", r->error);
  } else {
    rc = take_message(t, uid, r->data, r->data_len, &e);
  }
  if (rc) return poll_failed(t, "store", e.msg);
  t->next++;
  fetch_next(t);
}

static void fetch_next(trigger_inst *t) {
  if (t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  if (t->next >= t->npending) return poll_ok(t);
  t->ph = P_FETCH;
  perr e;
  if (imap_fetch(t->imap, t->mailbox, t->uidvalidity, t->pending[t->next], on_fetch, t, &t->op,
                 &e))
    poll_failed(t, "fetch", e.msg);
}

static void on_search(void *ud, const imap_result *r) {
  trigger_inst *t = ud;
  t->op = NULL;
  if (t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  if (r->rc != IMAP_OK) return poll_failed(t, "search", r->error);
  size_t n = 0, newer = 0;
  for (size_t i = 0; i < r->n_uids; i++)
    if (r->uids[i] > t->last_uid) newer++;
  n = newer < BATCH ? newer : BATCH;
  t->more = newer > BATCH;
  uint32_t *p = n ? realloc(t->pending, n * sizeof *p) : t->pending;
  if (n && !p) return poll_failed(t, "search", "out of memory");
  t->pending = p;
  t->npending = 0;
  for (size_t i = 0; i < r->n_uids && t->npending < n; i++)
    if (r->uids[i] > t->last_uid) t->pending[t->npending++] = r->uids[i];
  t->next = 0;
  fetch_next(t);
}

static void search_new(trigger_inst *t, int since_first) {
  imap_search_key k = {.uid_from = t->last_uid + 1};
  if (since_first) {
    k.uid_from = 0;
    parse_date(json_str(t->cfg, "since"), &k.since_year, &k.since_month, &k.since_day);
  }
  t->ph = P_SEARCH;
  perr e;
  if (imap_search(t->imap, t->mailbox, &k, on_search, t, &t->op, &e))
    poll_failed(t, "search", e.msg);
}

static void on_examine(void *ud, const imap_result *r) {
  trigger_inst *t = ud;
  t->op = NULL;
  if (t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  if (r->rc == IMAP_E_LOGIN && t->oauth) {
    /* The server refused the token: the next poll asks for a fresh one. */
    oauth2_invalidate(t->oauth);
    free(t->bearer);
    t->bearer = NULL;
  }
  if (r->rc != IMAP_OK) return poll_failed(t, "examine", r->error);
  if (!r->info.has_uidvalidity) return poll_failed(t, "examine", "the server sent no UIDVALIDITY");
  uint32_t uidv = r->info.uidvalidity;
  uint32_t top = r->info.has_uidnext && r->info.uidnext > 0 ? r->info.uidnext - 1 : 0;
  perr e;
  if (!t->have_cursor || t->uidvalidity != uidv) {
    int first = !t->have_cursor;
    if (!first)
      log_warn("imap UIDVALIDITY changed: old mail will not trigger", "source=%s old=%" PRIu32
               " new=%" PRIu32, t->source, t->uidvalidity, uidv);
    /* From now on; with `since` on a first start, older mail too. */
    if (set_cursor(t, uidv, first && json_str(t->cfg, "since") ? 0 : top, &e))
      return poll_failed(t, "cursor", e.msg);
    if (first && json_str(t->cfg, "since")) return search_new(t, 1);
  }
  search_new(t, 0);
}

static void examine(trigger_inst *t) {
  t->ph = P_EXAMINE;
  perr e;
  if (imap_examine(t->imap, t->mailbox, on_examine, t, &t->op, &e))
    poll_failed(t, "examine", e.msg);
}

/* The client is built per poll once the credential is known (a token
 * refreshes; a password reference may be rotated). */
static int open_client(trigger_inst *t, const char *bearer, perr *e) {
  imap_client_free(t->imap);
  t->imap = NULL;
  imap_account a = {.url = t->acct.imap_url,
                    .starttls = t->acct.starttls && strncmp(t->acct.imap_url, "imap://", 7) == 0,
                    .user = t->acct.user,
                    .password = bearer ? NULL : t->password,
                    .bearer = bearer,
                    .ca_file = t->acct.ca_file,
                    .insecure = t->acct.insecure};
  t->imap = imap_client_new(engine_loop(t->en), engine_runtime(t->en)->http, &a, e);
  return t->imap ? 0 : -1;
}

static void on_token(void *ud, const char *token, const char *error, int permanent) {
  trigger_inst *t = ud;
  (void)permanent;
  if (t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  if (!token) return poll_failed(t, "oauth2", error);
  perr e;
  if (!t->bearer || strcmp(t->bearer, token) != 0) {
    free(t->bearer);
    t->bearer = strdup(token);
    if (!t->bearer || open_client(t, t->bearer, &e)) return poll_failed(t, "imap", "out of memory");
  }
  examine(t);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  trigger_inst *t = w->data;
  if (t->poll.stopping) return poll_timer_finish_stop(&t->poll);
  perr e;
  if (t->oauth) {
    t->ph = P_TOKEN;
    if (oauth2_get_token(t->oauth, on_token, t, &e)) poll_failed(t, "oauth2", e.msg);
    return;
  }
  if (!t->imap) {
    free(t->password);
    t->password = secret_resolve(t->acct.password_ref, &e);
    if (!t->password || open_client(t, NULL, &e)) return poll_failed(t, "login", e.msg);
  }
  examine(t);
}

static int imap_create(trigger_inst **out, const cJSON *cfg, const char *source, engine *en,
                       perr *e) {
  trigger_inst *t = calloc(1, sizeof *t);
  if (!t) return perr_set(e, "out of memory");
  t->en = en;
  t->cfg = cfg;
  t->source = source;
  t->mailbox = json_str(cfg, "mailbox") ? json_str(cfg, "mailbox") : "INBOX";
  poll_timer_init(&t->poll, engine_loop(en), json_long(cfg, "poll_s", 60), on_timer, t);
  t->unhealthy_after_s = json_long(cfg, "unhealthy_after_s", 900);
  filter_of(cfg, &t->filter);
  *out = t;
  return 0;
}

static int imap_start(trigger_inst *t, perr *e) {
  const runtime *rt = engine_runtime(t->en);
  if (mail_account_get(rt->cfg, json_str(t->cfg, "account"), &t->acct, e)) return -1;
  if (!t->acct.imap_url) return perr_set(e, "mail account \"%s\" has no imap: server", t->acct.name);
  size_t n = 1 + (size_t)cJSON_GetArraySize(t->acct.also);
  t->own = calloc(n, sizeof *t->own);
  if (!t->own) return perr_set(e, "out of memory");
  t->own[t->n_own++] = t->acct.address;
  const cJSON *a;
  cJSON_ArrayForEach(a, t->acct.also) if (cJSON_IsString(a)) t->own[t->n_own++] = a->valuestring;
  t->filter.own = t->own;
  t->filter.n_own = t->n_own;
  if (t->acct.oauth2) {
    oauth2_opts o = {.token_url = json_str(t->acct.oauth2, "token_url"),
                     .client_id = json_str(t->acct.oauth2, "client_id"),
                     .client_secret_ref = json_str(t->acct.oauth2, "client_secret"),
                     .refresh_token_ref = json_str(t->acct.oauth2, "refresh_token")};
    if (!(t->oauth = oauth2_source_new(rt->http, engine_loop(t->en), &o, e))) return -1;
  }
  char *cursor = NULL;
  int rc = engine_cursor_get(t->en, t->source, &cursor, e);
  if (rc < 0) return -1;
  if (rc == 0) {
    unsigned long long v = 0, u = 0;
    if (sscanf(cursor, "%llu:%llu", &v, &u) == 2 && v <= UINT32_MAX && u <= UINT32_MAX) {
      t->uidvalidity = (uint32_t)v;
      t->last_uid = (uint32_t)u;
      t->have_cursor = 1;
    }
    free(cursor);
  }
  poll_timer_at(&t->poll, 0.);
  return 0;
}

static void imap_stop(trigger_inst *t, void (*done)(void *ud), void *ud) {
  /* An operation in flight or a token asked for ends the stop from its
   * callback; else the timer does, from the loop. */
  poll_timer_stop(&t->poll, done, ud, t->op || t->ph == P_TOKEN);
  if (t->op) imap_op_cancel(t->op);
}

static void imap_destroy(trigger_inst *t) {
  if (!t) return;
  poll_timer_release(&t->poll);
  imap_client_free(t->imap);
  oauth2_source_free(t->oauth);
  free(t->pending);
  free(t->own);
  if (t->password) memset(t->password, 0, strlen(t->password));
  free(t->password);
  free(t->bearer);
  free(t);
}

static long imap_stale_after_s(const cJSON *cfg) {
  /* A few polls' worth of silence is not yet a dead mailbox. */
  long poll = json_long(cfg, "poll_s", 60), limit = json_long(cfg, "unhealthy_after_s", 900);
  return limit > 3 * poll ? limit : 3 * poll;
}

const trigger_kind trigger_imap = {
    .name = "imap",
    .summary = "new mail in an IMAP mailbox (password or XOAUTH2), parsed and filtered; the "
               "UID cursor commits with each event",
    .fields = imap_fields,
    .flags = TRIGGER_ACCOUNT,
    .validate = imap_validate,
    .source = imap_source,
    .create = imap_create,
    .start = imap_start,
    .stop = imap_stop,
    .destroy = imap_destroy,
    .stale_after_s = imap_stale_after_s,
};
