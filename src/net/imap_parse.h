/*
 * imap_parse: the IMAP syntax imap_client needs, with no I/O.
 *
 * Input is the transcript libcurl hands to the header callback of one
 * transfer: every line the server sent, CRLF included, in order (greeting
 * and CAPABILITY on a new connection, the SELECT curl may send on its own,
 * then the responses to our command and its tagged completion).  Literals
 * ({n} CRLF followed by n bytes) are part of the response they appear in,
 * so a literal never ends a response early, whatever bytes it holds.
 *
 * imap_last_command cuts the transcript down to the responses of the last
 * command (after the previous tagged line, up to and including the last
 * one): the parsers below are given that slice, so untagged data from
 * curl's own SELECT or LOGIN never leaks into a result.
 *
 * Names (mailboxes, flags) are kept as the server sent them: quoted strings
 * are unescaped, literals copied, modified UTF-7 is not decoded.  That is
 * what the server accepts back.
 *
 * The writers build command text for CURLOPT_CUSTOMREQUEST and URL paths:
 * libcurl URL-decodes the custom request, so '%' is sent as %25, and takes
 * the mailbox from the URL path, so names are percent-encoded there.
 */
#ifndef PROMPTD_NET_IMAP_PARSE_H
#define PROMPTD_NET_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* System flags (RFC 3501 2.3.2) as bits. */
enum {
  IMAP_FLAG_SEEN = 1u << 0,
  IMAP_FLAG_ANSWERED = 1u << 1,
  IMAP_FLAG_FLAGGED = 1u << 2,
  IMAP_FLAG_DELETED = 1u << 3,
  IMAP_FLAG_DRAFT = 1u << 4,
  IMAP_FLAG_RECENT = 1u << 5, /* read only: never stored */
};

/* Mailbox attributes from LIST (RFC 3501, RFC 6154 SPECIAL-USE). */
enum {
  IMAP_ATTR_NOSELECT = 1u << 0, /* \Noselect or \NonExistent */
  IMAP_ATTR_HASCHILDREN = 1u << 1,
  IMAP_ATTR_DRAFTS = 1u << 2,
  IMAP_ATTR_SENT = 1u << 3,
  IMAP_ATTR_TRASH = 1u << 4,
  IMAP_ATTR_JUNK = 1u << 5,
  IMAP_ATTR_ARCHIVE = 1u << 6,
  IMAP_ATTR_ALL = 1u << 7,
  IMAP_ATTR_FLAGGED = 1u << 8,
};

typedef struct imap_mailbox_info {
  uint32_t uidvalidity; /* 0 when the server sent none (then has_uidvalidity = 0) */
  uint32_t uidnext;
  uint32_t exists; /* messages in the mailbox (EXISTS, or MESSAGES from STATUS) */
  int has_uidvalidity, has_uidnext, has_exists;
} imap_mailbox_info;

typedef struct imap_folder {
  char *name;     /* as sent: unescaped if quoted, copied if a literal, UTF-7 kept */
  char delim;     /* hierarchy delimiter, 0 for NIL */
  unsigned attrs; /* IMAP_ATTR_* */
} imap_folder;

/* Offset in s where the responses of the transcript's last command begin.
 * The slice [offset, n) ends with that command's tagged line. */
size_t imap_last_command(const char *s, size_t n);

/* The last tagged line's status and text ("NO [TRYCREATE] no such mailbox"),
 * without tag and CRLF: *len bytes at the returned pointer.  NULL when the
 * transcript holds no tagged line. */
const char *imap_last_tagged(const char *s, size_t n, size_t *len);

/* The last tagged NO or BAD line, like imap_last_tagged: what a failed
 * transfer's refusal said even when libcurl's LOGOUT (answered OK) came
 * after it.  NULL when no tagged line refused anything. */
const char *imap_last_refusal(const char *s, size_t n, size_t *len);

/* EXAMINE / SELECT: "* n EXISTS", "* OK [UIDVALIDITY n]", "* OK [UIDNEXT n]".
 * 0, or -1 when a value is malformed (fields absent from the text are just
 * left unset). */
int imap_parse_select(const char *s, size_t n, imap_mailbox_info *out, perr *e);

/* "* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n)"; MESSAGES fills
 * exists.  0, or -1 when malformed. */
int imap_parse_status(const char *s, size_t n, imap_mailbox_info *out, perr *e);

/* Every "* SEARCH" line, merged, sorted ascending, without duplicates.
 * *uids is malloc'd (NULL when *count is 0); the caller frees.  0 or -1. */
int imap_parse_search(const char *s, size_t n, uint32_t **uids, size_t *count, perr *e);

/* Every "* LIST" line (other untagged lines are skipped).  *out is
 * malloc'd, free with imap_folders_free.  0 or -1. */
int imap_parse_list(const char *s, size_t n, imap_folder **out, size_t *count, perr *e);
void imap_folders_free(imap_folder *f, size_t count);

/* The first selectable folder carrying attr (e.g. IMAP_ATTR_DRAFTS), or NULL. */
const imap_folder *imap_folder_find(const imap_folder *f, size_t count, unsigned attr);

/* FLAGS of the "* n FETCH (...)" response about uid (a FETCH without a UID
 * item counts when it is the only one).  1 found, 0 none, -1 malformed. */
int imap_parse_fetch_flags(const char *s, size_t n, uint32_t uid, unsigned *flags, perr *e);

/* "OK [APPENDUID uidvalidity uid]" (RFC 4315) in the last tagged line:
 * 1 found, 0 not there. */
int imap_parse_appenduid(const char *s, size_t n, uint32_t *uidvalidity, uint32_t *uid);

/* ---- writers ------------------------------------------------------------ */

/* Appends s as an IMAP quoted string.  -1 when s holds CR or LF (it cannot
 * be quoted; libcurl sends no literals in custom commands) or on overflow. */
int imap_put_quoted(buf *b, const char *s);

/* Appends the flag list "(\Seen \Draft)" for IMAP_FLAG_* bits. */
int imap_put_flags(buf *b, unsigned flags);

/* Appends "SINCE d-Mon-yyyy".  -1 for an impossible date. */
int imap_put_since(buf *b, int year, int month, int day);

/* Appends a mailbox name to a URL path, percent-encoded. */
int imap_put_url_mailbox(buf *b, const char *name);

/* Copies cmd into b with '%' written as %25 (CURLOPT_CUSTOMREQUEST is
 * URL-decoded by libcurl). */
int imap_put_custom(buf *b, const char *cmd);

#endif
