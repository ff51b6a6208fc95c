/*
 * mail_account: the named mail accounts of the configuration, shared by
 * the imap trigger and the email actions, so a recipe names an account and
 * never holds credentials.
 *
 *   mail:
 *     support:
 *       imap: imaps://imap.example.com          # or imap://host:143 + starttls: true
 *       smtp: smtps://smtp.example.com:465      # for email_send (or smtp://...:587 + starttls)
 *       starttls: false
 *       user: support@shop.example
 *       password: env:MAIL_PASSWORD             # or:
 *       oauth2: { token_url: https://oauth2.googleapis.com/token, client_id: ...,
 *                 client_secret: env:GOOGLE_CLIENT_SECRET, refresh_token: env:GMAIL_REFRESH }
 *       address: support@shop.example           # our From and "own" address (default: user)
 *       name: Shop Support                      # display name for From
 *       also: [info@shop.example]               # more own addresses (never answered)
 *       drafts: Drafts                          # else found by SPECIAL-USE \Drafts
 *       ca_file: /etc/ssl/private-ca.pem        # optional
 *
 * Secrets stay references until an operation needs them.
 */
#ifndef PROMPTD_MAIL_ACCOUNT_H
#define PROMPTD_MAIL_ACCOUNT_H

#include <cjson/cJSON.h>

#include "core/config.h"
#include "core/err.h"
#include "core/fields.h"

extern const field_spec mail_account_fields[];

typedef struct mail_account {
  const char *name;
  const char *imap_url, *smtp_url; /* NULL when not configured */
  int starttls, insecure;
  const char *user, *password_ref;
  const cJSON *oauth2;             /* {token_url, client_id, client_secret, refresh_token} or NULL */
  const char *address, *display_name;
  const cJSON *also;               /* list of strings, or NULL */
  const char *drafts, *ca_file;
} mail_account;

/* Fills a from the configuration's `mail:` section (pointers into cfg).
 * -1 with e naming the account and the problem (no such account, neither
 * password nor oauth2, both). */
int mail_account_get(const config *cfg, const char *name, mail_account *a, perr *e);

#endif
