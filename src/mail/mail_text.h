/*
 * mail_text: the text side of turning mail into prompt input, free of
 * GMime so it can be tested alone.
 *
 * Everything written to a buf here is valid UTF-8 (core/utf8.h's strict
 * rules) without NUL: invalid input becomes U+FFFD, control characters are
 * dropped.  Functions return 0, or -1 when the buf failed (cap or memory;
 * buf has then released itself).
 */
#ifndef PROMPTD_MAIL_TEXT_H
#define PROMPTD_MAIL_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Length of the valid UTF-8 sequence at s (1-4) and its code point, or 0
 * when s does not start one. */
size_t mail_utf8_next(const char *s, size_t n, uint32_t *cp);
/* Appends cp as UTF-8 (U+FFFD for surrogates and values past U+10FFFF). */
int mail_utf8_put(buf *out, uint32_t cp);

/* Modes of mail_clean. */
enum {
  MAIL_CLEAN_BODY = 0, /* keeps \n and \t; CRLF and lone CR become \n */
  MAIL_CLEAN_LINE = 1  /* header values: any whitespace run becomes one space, trimmed */
};
/* Appends s (bytes meant as UTF-8) cleaned: invalid sequences -> U+FFFD,
 * NUL, other C0/C1 controls and a leading BOM dropped. */
int mail_clean(buf *out, const char *s, size_t n, int mode);

/* Appends n bytes in charset (NULL when undeclared) as clean UTF-8 body
 * text (see mime.h for the fallbacks). */
int mail_to_utf8(buf *out, const char *charset, const char *s, size_t n);

/* Undoes RFC 3676 format=flowed: soft line breaks joined, space-stuffing
 * removed; delsp drops the space before a soft break.  s is clean text. */
int mail_unflow(buf *out, const char *s, size_t n, int delsp);

/* Appends the part of clean text s a reply should answer: the "-- "
 * signature and everything after it, Outlook-style "Original Message"
 * blocks and what follows them, lines quoted with ">" and the attribution
 * line that introduces them ("On ... wrote:") are dropped; blank-line runs
 * collapse to one and the ends are trimmed.  When nothing would remain
 * (a message that is only a quote) s is appended whole, trimmed: the
 * prompt always has something to read. */
int mail_trim_quoted(buf *out, const char *s, size_t n);

/* Appends the first max_chars characters of s with every whitespace run
 * collapsed to one space, and "…" when s was longer. */
int mail_snippet(buf *out, const char *s, size_t n, size_t max_chars);

/* The largest length <= max that does not split a UTF-8 sequence of s. */
size_t mail_utf8_cut(const char *s, size_t n, size_t max);

#endif
