/*
 * mail_filter: whether a parsed message (mime.h's event) should be left
 * alone, decided before any GPT call, so promptd never answers a robot,
 * a mailing list or itself.
 *
 * Rules, in the order they are checked (the first that applies is the
 * reason given):
 *
 *   own        from.address is one of the account's own addresses
 *              (case-insensitive): mail the account sent itself.
 *   no sender  neither from.address nor reply_to.address is set.
 *   automated  unless keep_automated:
 *              Auto-Submitted present and not "no" (RFC 3834);
 *              X-Autoreply / X-Autorespond present;
 *              Precedence bulk, list, junk or auto_reply;
 *              List-Id present (RFC 2919);
 *              Return-Path "<>" (a bounce or other null-sender mail);
 *              a system sender: mailer-daemon, postmaster, listserv,
 *              majordomo, owner-*, *-request, *-bounce(s);
 *              a no-reply sender: local part noreply, no-reply, no_reply,
 *              donotreply, do-not-reply... (separators ignored, prefix
 *              match, so "noreply-billing" counts).
 *   patterns   from / to / subject: POSIX extended regexes, "(?i)" prefix
 *              for case-insensitive (as in recipe conditions).  from
 *              matches the sender's address or name, to any to/cc
 *              address or name, subject the decoded subject.  A message
 *              is kept only when every set pattern matches; skip_from,
 *              skip_to and skip_subject skip it when they match.
 */
#ifndef PROMPTD_MAIL_FILTER_H
#define PROMPTD_MAIL_FILTER_H

#include <stddef.h>

struct cJSON;
struct perr;

typedef struct mail_filter {
  const char *const *own; /* the account's addresses (n_own of them) */
  size_t n_own;
  int keep_automated;                             /* 1: do not skip auto-generated or list mail */
  const char *from, *to, *subject;                /* must match; NULL = any */
  const char *skip_from, *skip_to, *skip_subject; /* skip on match; NULL = none */
} mail_filter;

/* Checks that f's patterns compile; 0, or -1 with e naming the bad one.
 * f may be NULL. */
int mail_filter_check(const mail_filter *f, struct perr *e);

/* 1 when the message should be skipped (why = the reason), 0 when it
 * passes (why = ""), -1 when a pattern does not compile (why says which).
 * f may be NULL: the default rules only. why may be NULL when len is 0. */
int mail_skip_reason(const struct cJSON *event, const mail_filter *f, char *why, size_t len);

#endif
