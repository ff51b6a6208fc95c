/*
 * email_common: what email_draft and email_send share: the step input (the
 * reply text and the parts of the original it answers) and logging in
 * (a password reference, or an XOAUTH2 token from the account's oauth2).
 */
#ifndef PROMPTD_EMAIL_COMMON_H
#define PROMPTD_EMAIL_COMMON_H

#include <cjson/cJSON.h>

#include "actions/email_reply.h"
#include "core/connector.h"
#include "net/oauth2.h"
#include "triggers/mail_account.h"

/* {account, body, quote, run_id, [folder], original: {from, reply_to,
 * subject, date, message_id, references, text, full_text}} from the step's
 * cfg and the run's context; -1 when the event is not a mail message. */
int email_prepare_input(const cJSON *cfg, const cJSON *ctx, const render_env *env, cJSON **input,
                        perr *e);

/* The reply a step input describes, for account a: its Message-ID (stable
 * per run and step), To and Subject, and the RFC 5322 bytes. */
typedef struct email_built {
  char *message_id, *to, *subject, *raw;
  size_t raw_len;
} email_built;
int email_build(const action_call *c, const mail_account *a, int auto_reply, email_built *out,
                perr *e);
void email_built_release(email_built *b);

/* Credentials for one call: cb gets the password (no bearer) or the bearer
 * token, or an error; from the loop, never from inside email_login_start.
 * The login must be released with email_login_free (it may still own a
 * token refresh in flight). */
typedef struct email_login email_login;
typedef void (*email_login_fn)(void *ud, const char *password, const char *bearer,
                               const char *error, int permanent);
email_login *email_login_start(const action_call *c, const mail_account *a, email_login_fn cb,
                               void *ud, perr *e);
void email_login_free(email_login *l);

#endif
