/*
 * email_reply: the reply to a received message, as RFC 5322 bytes, for the
 * email_draft and email_send actions.
 *
 * From the original (a mail event, mail/mime.h):
 *   To           Reply-To's mailbox, else From's
 *   Subject      "Re: " + the subject without its reply prefixes ("Re:",
 *                "RE:", "Re[2]:", "Aw:", "SV:", "Antw:" ...), so replies
 *                never stack them
 *   In-Reply-To  the original's Message-ID
 *   References   the original's References, then its Message-ID (RFC 5322
 *                3.6.4), oldest first
 * And:
 *   Message-ID   given by the caller: derived from run and step, so every
 *                attempt of one step builds the same message and a search
 *                for the id finds an earlier attempt's copy
 *   Date         now; MIME-Version; text/plain, UTF-8, quoted-printable
 *   body         the given text, then (quote) "On DATE, NAME wrote:" and
 *                the original text with "> " before each line
 *   Auto-Submitted: auto-replied   when `auto_reply` (RFC 3834), for
 *                replies that leave without a person
 */
#ifndef PROMPTD_EMAIL_REPLY_H
#define PROMPTD_EMAIL_REPLY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct email_reply_opts {
  const cJSON *original;  /* the received message's event */
  const char *from_name;  /* may be NULL */
  const char *from_address;
  const char *body;       /* the reply text (UTF-8) */
  const char *message_id; /* without angle brackets */
  int quote;              /* append the quoted original */
  int auto_reply;         /* Auto-Submitted: auto-replied */
  int64_t now_ms;         /* the Date header */
} email_reply_opts;

/* The subject of a reply to `subject`: "Re: " + it, reply prefixes gone
 * (malloc'd). */
char *email_reply_subject(const char *subject);

/* "promptd.<run>.<step>.<8 hex of a hash>@<domain of from_address>"
 * (malloc'd): stable for a run and step, unique across databases in
 * practice because the hash covers the original's Message-ID. */
char *email_reply_message_id(int64_t run_id, const char *step_id, const char *original_id,
                             const char *from_address);

/* The whole message (malloc'd, CRLF line ends) and its length, or NULL with
 * e set (no recipient in the original, out of memory). */
char *email_reply_build(const email_reply_opts *o, size_t *len, perr *e);

#endif
