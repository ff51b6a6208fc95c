/*
 * imap_client: asynchronous IMAP operations for one account, on the libev
 * loop, through libcurl's IMAP support on the shared http_client multi
 * (http_client_start_easy).  No blocking call, no thread.
 *
 * Async contract (STYLE.md habit 3)
 *   Every operation either fails now (-1, perr set, done never called) or
 *   returns 0 and calls done exactly once, later, from the loop, never from
 *   inside the call that started it or from imap_op_cancel.  The exception,
 *   as for http_client_free, is imap_client_free: it completes what is
 *   still outstanding as IMAP_E_CANCELLED inside itself.  The result and
 *   everything it points to is valid only during the callback.
 *
 * One operation at a time per client
 *   Operations queue and run in submission order, one transfer at a time.
 *   An account therefore holds one connection, logged in once and reused
 *   by every later operation (libcurl keeps it in the multi's cache), which
 *   is also what servers limiting connections per account (Gmail: 15)
 *   expect.  Parallel work needs a second client.
 *
 * What libcurl 7.88 (Debian 12) does and does not, and how this copes
 *   - A command libcurl does not know is sent as CURLOPT_CUSTOMREQUEST
 *     after curl has SELECTed the mailbox named in the URL; the untagged
 *     lines it provokes arrive with every other server line on the header
 *     stream, which imap_parse reads (literals included).
 *   - curl remembers which mailbox it selected but not that a custom
 *     EXAMINE made it read-only.  imap_examine names the mailbox in the URL
 *     so curl's idea of the selection stays right, and imap_store sends its
 *     own SELECT first so a STORE never meets a read-only mailbox.
 *   - curl fetches with BODY[] (never BODY.PEEK[]): imap_fetch EXAMINEs the
 *     mailbox first, and a FETCH in a read-only mailbox leaves \Seen alone.
 *   - curl APPENDs with the \Seen flag and reports no APPENDUID: the server's
 *     tagged line is on the header stream, so imap_append returns APPENDUID
 *     when the server sends it (UIDPLUS: Dovecot, Gmail, Fastmail); flags
 *     are then fixed with imap_store.
 *   - Closing a connection sends LOGOUT and waits for the answer inside
 *     libcurl, blocking, up to response_timeout_ms.  That happens at
 *     shutdown and when the cache evicts a connection, not per operation.
 */
#ifndef PROMPTD_NET_IMAP_CLIENT_H
#define PROMPTD_NET_IMAP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "net/http_client.h"
#include "net/imap_parse.h"

struct ev_loop;

typedef struct imap_client imap_client;
typedef struct imap_op imap_op;

typedef struct imap_account {
  const char *url; /* "imap://host:port" or "imaps://host:port" (implicit TLS); no path */
  int starttls;    /* imap:// only: require STARTTLS, fail when the server lacks it */
  const char *user;
  const char *password;     /* LOGIN / SASL PLAIN; NULL when bearer is set */
  const char *bearer;       /* OAuth 2 access token: SASL XOAUTH2 */
  const char *ca_file;      /* PEM bundle to verify the server with; NULL: the system store */
  int insecure;             /* skip certificate and host name checks (tests only) */
  long timeout_ms;          /* per transfer; 0 = 60000 */
  long connect_timeout_ms;  /* 0 = 10000 */
  long response_timeout_ms; /* one server response, and LOGOUT at close; 0 = 30000 */
  size_t max_message;       /* imap_fetch cap; 0 = 25 MiB */
} imap_account;

/* The class of a result: what the caller (an action's classify, a poller's
 * backoff) decides on.  curl_code and error carry the detail. */
typedef enum imap_rc {
  IMAP_OK = 0,
  IMAP_E_TRANSPORT, /* DNS, connect, timeout, connection lost: worth a retry */
  IMAP_E_TLS,       /* certificate refused, STARTTLS unavailable: configuration */
  IMAP_E_LOGIN,     /* credentials refused */
  IMAP_E_NO,        /* the server refused the command (NO / BAD): no such mailbox, quota... */
  IMAP_E_GONE,      /* UIDVALIDITY changed, or no message with that UID */
  IMAP_E_TOO_BIG,   /* message larger than max_message */
  IMAP_E_PROTOCOL,  /* a reply this client cannot read */
  IMAP_E_CANCELLED, /* imap_op_cancel or imap_client_free */
} imap_rc;

typedef struct imap_result {
  imap_rc rc;
  int curl_code;     /* the CURLcode of the failing transfer, 0 otherwise */
  const char *error; /* "" on success; else curl's message and, when the
                        server said why, its tagged line ("... (server: NO ...)") */
  /* imap_examine, imap_status */
  imap_mailbox_info info;
  /* imap_search: matching UIDs, ascending, no duplicates */
  const uint32_t *uids;
  size_t n_uids;
  /* imap_fetch: the message exactly as stored (RFC 5322 bytes, CRLF) */
  const char *data;
  size_t data_len;
  /* imap_list: every folder, in server order */
  const imap_folder *folders;
  size_t n_folders;
  /* imap_append: from APPENDUID when has_uid; imap_store: the uid */
  uint32_t uidvalidity, uid;
  int has_uid;
  /* imap_store: the message's flags after the change (IMAP_FLAG_*), when
   * the server reported them (has_flags) */
  unsigned flags;
  int has_flags;
} imap_result;

typedef void (*imap_done_fn)(void *ud, const imap_result *r);

/* Search criteria, ANDed; a zero field is left out, all zero is ALL. */
typedef struct imap_search_key {
  uint32_t uid_from;                      /* UID uid_from:* (UIDs below uid_from are dropped) */
  int since_year, since_month, since_day; /* SINCE (date only, server's time zone) */
  const char *header_name;                /* HEADER name value ... */
  const char *header_value;               /* ... (substring match, RFC 3501) */
} imap_search_key;

/* Copies the account.  http (and loop) must outlive the client. */
imap_client *imap_client_new(struct ev_loop *loop, http_client *http, const imap_account *acct,
                             perr *e);

/* Completes every queued or running operation as IMAP_E_CANCELLED inside
 * this call, then frees.  May be called from a done callback.  NULL is
 * ignored. */
void imap_client_free(imap_client *c);

/* EXAMINE mailbox: info.uidvalidity, info.uidnext, info.exists (each with
 * its has_ flag; a server may omit UIDNEXT).  Leaves the mailbox selected
 * read-only on the connection. */
int imap_examine(imap_client *c, const char *mailbox, imap_done_fn done, void *ud, imap_op **out,
                 perr *e);

/* STATUS mailbox (MESSAGES UIDNEXT UIDVALIDITY): the same info without
 * touching the selection, one round trip on an open connection. */
int imap_status(imap_client *c, const char *mailbox, imap_done_fn done, void *ud, imap_op **out,
                perr *e);

/* UID SEARCH in mailbox: uids / n_uids. */
int imap_search(imap_client *c, const char *mailbox, const imap_search_key *key, imap_done_fn done,
                void *ud, imap_op **out, perr *e);

/* The message with uid in mailbox, whole, as data / data_len, without
 * setting \Seen.  uidvalidity != 0 is checked first: a different one is
 * IMAP_E_GONE, as is a uid that does not exist. */
int imap_fetch(imap_client *c, const char *mailbox, uint32_t uidvalidity, uint32_t uid,
               imap_done_fn done, void *ud, imap_op **out, perr *e);

/* LIST "" "*" RETURN (SPECIAL-USE), or plain LIST "" "*" when the server
 * refuses the extended form: folders / n_folders.  imap_folder_find(...,
 * IMAP_ATTR_DRAFTS) then names the drafts folder. */
int imap_list(imap_client *c, imap_done_fn done, void *ud, imap_op **out, perr *e);

/* APPEND msg (copied) to mailbox.  libcurl stores it \Seen; uidvalidity and
 * uid with has_uid = 1 when the server answered APPENDUID. */
int imap_append(imap_client *c, const char *mailbox, const char *msg, size_t len, imap_done_fn done,
                void *ud, imap_op **out, perr *e);

/* UID STORE uid <change> (flags): change is '+' (add), '-' (remove) or '='
 * (replace); flags are IMAP_FLAG_* bits (\Recent is ignored).  Reports the
 * resulting flags when the server sends them (has_flags).  A uid that no
 * longer exists is not an error for IMAP: has_flags stays 0. */
int imap_store(imap_client *c, const char *mailbox, uint32_t uid, char change, unsigned flags,
               imap_done_fn done, void *ud, imap_op **out, perr *e);

/* Stops an operation; done is called later with IMAP_E_CANCELLED.  Only
 * valid before done has run; harmless twice.  A command the server has
 * already received may still take effect (an APPEND in particular). */
void imap_op_cancel(imap_op *op);

/* Name of an imap_rc ("ok", "transport", "tls", "login", ...). */
const char *imap_rc_name(imap_rc rc);

#endif
