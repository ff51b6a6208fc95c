/*
 * gpt/reply: the parts of a chat.completions response body promptd keeps.
 *
 * Only choices[0] is read (promptd never asks for n > 1).  Unknown fields
 * are ignored: the API adds fields often and compatible servers add their
 * own.  Every string is a malloc'd copy owned by the gpt_reply; NULL when
 * the response did not carry it (content is NULL for a refusal).
 */
#ifndef PROMPTD_GPT_REPLY_H
#define PROMPTD_GPT_REPLY_H

#include <stddef.h>

#include "core/err.h"

typedef struct gpt_reply {
  char *id, *model, *finish_reason, *content, *refusal, *system_fingerprint;
  long long prompt_tokens, completion_tokens, cached_tokens;
  int has_usage; /* 0 when the body had no usage object (the counts are then 0) */
} gpt_reply;

/* Parses body (len bytes, need not be NUL-terminated) into *out.
 * -1 with a message for malformed or truncated JSON, a non-object body, an
 * error body, or no choices[0].message; *out is then empty (released). */
int gpt_reply_parse(const char *body, size_t len, gpt_reply *out, perr *e);
/* Frees the strings and zeroes *r; harmless twice. */
void gpt_reply_release(gpt_reply *r);

#endif
