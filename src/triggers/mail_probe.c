/*
 * mail_probe: one login per account, the same way the imap trigger and
 * the draft action log in (password reference or an OAuth2 token), then
 * STATUS INBOX: read-only, marks nothing seen.  SMTP servers are not
 * reached: a probe there would have to start a mail transaction.
 */
#include "triggers/mail_probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/email_common.h"
#include "core/probe.h"
#include "core/runtime.h"
#include "net/imap_client.h"
#include "triggers/mail_account.h"

typedef struct account_check {
  probe_ctx *p;
  struct runtime *rt;
  mail_account acct;
  action_call call; /* what email_login needs: the loop and the runtime */
  email_login *login;
  imap_client *imap;
  char what[160];
} account_check;

static void check_end(account_check *c, int ok, const char *detail) {
  probe_ctx *p = c->p;
  if (detail) probe_report(p, c->what, ok, detail);
  email_login_free(c->login);
  imap_client_free(c->imap);
  free(c);
  probe_release(p);
}

static void on_status(void *ud, const imap_result *r) {
  account_check *c = ud;
  char detail[700];
  if (r->rc == IMAP_E_CANCELLED) { /* the doctor gave up waiting: no finding */
    check_end(c, 0, NULL);
    return;
  }
  if (r->rc == IMAP_OK)
    snprintf(detail, sizeof detail, "logged in to %s as %s; INBOX holds %u messages",
             c->acct.imap_url, c->acct.user ? c->acct.user : "?", r->info.exists);
  else
    snprintf(detail, sizeof detail, "%s (%s): %s", c->acct.imap_url, imap_rc_name(r->rc), r->error);
  check_end(c, r->rc == IMAP_OK, detail);
}

static void on_login(void *ud, const char *password, const char *bearer, const char *error,
                     int permanent) {
  account_check *c = ud;
  (void)permanent;
  if (error) {
    check_end(c, 0, error);
    return;
  }
  const mail_account *a = &c->acct;
  imap_account ia = {.url = a->imap_url,
                     .starttls = a->starttls && strncmp(a->imap_url, "imap://", 7) == 0,
                     .user = a->user,
                     .password = bearer ? NULL : password,
                     .bearer = bearer,
                     .ca_file = a->ca_file,
                     .insecure = a->insecure,
                     .timeout_ms = (long)(probe_timeout(c->p) * 1000)};
  perr e;
  if (!(c->imap = imap_client_new(c->rt->loop, c->rt->http, &ia, &e)) ||
      imap_status(c->imap, "INBOX", on_status, c, NULL, &e))
    check_end(c, 0, e.msg);
}

/* One account: a finding now (not configured right, no credentials) or a
 * login held until it ends. */
static void start_account(struct runtime *rt, probe_ctx *p, const char *name) {
  char what[160];
  snprintf(what, sizeof what, "mail.%s", name);
  perr e;
  account_check *c = calloc(1, sizeof *c);
  if (!c) {
    probe_report(p, what, 0, "out of memory");
    return;
  }
  c->p = p;
  c->rt = rt;
  memcpy(c->what, what, sizeof what);
  if (mail_account_get(rt->cfg, name, &c->acct, &e)) {
    probe_report(p, what, 0, e.msg);
    free(c);
    return;
  }
  if (!c->acct.imap_url) { /* an SMTP-only account: nothing this probe can reach */
    free(c);
    return;
  }
  c->call = (action_call){.loop = rt->loop, .rt = rt};
  probe_hold(p);
  if (!(c->login = email_login_start(&c->call, &c->acct, on_login, c, &e))) {
    probe_release(p);
    probe_report(p, what, 0, e.msg);
    free(c);
  }
}

int mail_accounts_probe(struct runtime *rt, const cJSON *section, probe_ctx *p, perr *e) {
  (void)e;
  for (const cJSON *it = section ? section->child : NULL; it; it = it->next)
    start_account(rt, p, it->string);
  return 0;
}
