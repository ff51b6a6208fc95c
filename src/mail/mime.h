/*
 * mime: one raw RFC 5322 message -> one promptd event (a cJSON object).
 *
 * Pure and synchronous: the IMAP trigger fetches the bytes, this turns them
 * into the event recipes see, and `promptd mail parse` shows the same event
 * for a file.  GMime does the MIME work (RFC 2047/2231 headers, transfer
 * encodings, multipart); this module decides what a prompt should read.
 *
 * The event (every key always present; "|null" marks the ones that may be
 * JSON null):
 *
 *   from          {name, address}      first mailbox of From (else Sender);
 *                                      "" for a part that is missing
 *   reply_to      {name, address}|null first mailbox of Reply-To
 *   to, cc        [{name, address}]    group members flattened
 *   subject       string               RFC 2047 decoded, "" when missing
 *   date          string|null          ISO 8601 UTC "2024-03-05T09:00:00Z"
 *   message_id    string|null          without the angle brackets
 *   in_reply_to   string|null          first id of In-Reply-To, no brackets
 *   references    [string]             ids of References, oldest first
 *   text          string               the body a prompt is given: quoted
 *                                      history and the signature trimmed
 *   full_text     string               the same body untrimmed
 *   text_truncated, full_text_truncated  bool: the cap cut that string
 *   body_type     "text/plain"|"text/html"|null  where the text came from
 *   snippet       string               start of text, whitespace collapsed
 *   attachments   [{filename|null, content_type, size, inline}]
 *   headers       {auto_submitted, precedence, list_id, return_path,
 *                  x_autoreply}        raw values (string|null), for filters
 *   size          number               bytes of the raw message
 *
 * Invariants, whatever the input: every string is valid UTF-8 without NUL
 * (core/utf8.h's rules), text and full_text are at most max_text bytes,
 * header-derived strings at most MAIL_MAX_FIELD bytes, lists bounded, and
 * time and memory in proportion to the size: a message nesting hundreds
 * of multiparts (quadratic time in GMime) or holding tens of thousands of
 * parts gives its headers and no body, with text_truncated set.
 *
 * Choosing the body: text/plain is preferred (in multipart/alternative the
 * plain alternative wins); HTML is converted to text only when no plain
 * body exists.  Several inline text parts of a multipart/mixed are joined
 * in order.  Parts with a filename or an attachment disposition, non-text
 * parts and attached messages are listed under attachments and never reach
 * the text.  Bodies are converted from their charset to UTF-8 (undeclared
 * or unknown charsets: UTF-8 when the bytes are valid UTF-8, else
 * Windows-1252; ISO-8859-1 is read as its superset Windows-1252, as
 * browsers do); bytes that do not convert become U+FFFD.
 *
 * GMime is initialised on first use (once per process) and shut down at
 * exit, so leak checkers see a clean process.
 */
#ifndef PROMPTD_MAIL_MIME_H
#define PROMPTD_MAIL_MIME_H

#include <stddef.h>

struct cJSON;
struct perr;

/* Big enough for Gmail's 25 MB limit after base64 growth. */
#define MAIL_MAX_MESSAGE ((size_t)40 << 20)
/* What a prompt gets at most; the rest of a long body is cut. */
#define MAIL_MAX_TEXT ((size_t)64 << 10)
/* Subject, names, addresses, ids, header values. */
#define MAIL_MAX_FIELD ((size_t)2048)
#define MAIL_SNIPPET_CHARS 200
/* Recipients per list, references, attachments: past this, dropped. */
#define MAIL_MAX_LIST 256

typedef struct mail_parse_opts {
  size_t max_message; /* raw bytes accepted; 0 = MAIL_MAX_MESSAGE */
  size_t max_text;    /* cap on text and full_text; 0 = MAIL_MAX_TEXT */
} mail_parse_opts;

/* Parses raw (len bytes, need not be NUL-terminated).  0 and *event (the
 * caller frees it) on success, which is every input within max_message:
 * a malformed message still gives an event with what could be read.  -1
 * with e set for a message over the limit or out of memory. o may be NULL. */
int mail_parse(const char *raw, size_t len, const mail_parse_opts *o, struct cJSON **event,
               struct perr *e);

#endif
