/*
 * webhook_verify: checking that a webhook request was signed by the sender
 * holding the shared secret (HMAC), before its event is stored.
 *
 * A recipe names the scheme under its webhook trigger, as a vendor preset
 * or as a generic HMAC block:
 *
 *   verify: github      X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
 *   verify: typeform    Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, body)>
 *   verify: slack       X-Slack-Signature: v0=<hex HMAC-SHA256(secret,
 *                         "v0:" + X-Slack-Request-Timestamp + ":" + body)>, 300 s window
 *   verify: stripe      Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]
 *                         over t + "." + body; any v1 may match; 300 s window
 *
 *   verify:
 *     hmac:
 *       header: X-Signature           required: the header carrying the signature
 *       encoding: hex                 hex (default, either case) or base64 (padding optional)
 *       prefix: "sha256="             optional: text before the encoded MAC, must be present
 *       algorithm: sha256             sha256 (default), sha512 or sha1
 *       timestamp_header: X-Timestamp optional: unix seconds, checked against tolerance_s
 *       tolerance_s: 300              allowed |now - timestamp|, 1-86400 (default 300);
 *                                     only with timestamp_header
 *       signed: "{timestamp}.{body}"  the signed base string (see below)
 *
 * The base string of the generic block is `signed` with `{body}` replaced by
 * the raw request body (bytes as received) and `{timestamp}` by the
 * timestamp header's value exactly as sent.  Every other character is
 * literal; a `{` that does not open one of those two placeholders is an
 * error.  `{body}` must appear exactly once.  Default: "{body}" without a
 * timestamp header, "{timestamp}.{body}" with one.  With a timestamp header
 * the base string must contain `{timestamp}`: a timestamp that is not signed
 * can be rewritten by whoever replays the request, so its window would
 * protect nothing.
 *
 * Invariants
 * - Comparison is constant time (CRYPTO_memcmp) over the decoded MAC, so
 *   neither hex case nor base64 padding matter and timing leaks nothing.
 * - The reason given for a refusal never holds the secret, the expected
 *   MAC, or any header value the sender chose: only header names from the
 *   recipe and numbers.  It is safe to log and to answer with.
 * - A timestamp window is symmetric (|now - t| <= tolerance): a clock that
 *   runs ahead of ours is treated like one that runs behind.
 * - The window is checked before the MAC, so replays cost no HMAC.
 */
#ifndef PROMPTD_WEBHOOK_VERIFY_H
#define PROMPTD_WEBHOOK_VERIFY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* The `verify` row for a trigger's field table; its value may be a string
 * or a mapping, so the table only keeps it as JSON and the kind's
 * validate() calls webhook_verify_validate on it:
 *   {.name = "verify", .type = FT_JSON, .help = WEBHOOK_VERIFY_HELP},
 */
#define WEBHOOK_VERIFY_HELP                                                         \
  "request signature check: github, stripe, slack, typeform, or { hmac: { header, " \
  "encoding: hex|base64, prefix, algorithm: sha256|sha512|sha1, timestamp_header, " \
  "tolerance_s (300), signed (\"{body}\" or \"{timestamp}.{body}\") } }"

/* 0 when `verify` (the JSON the field table built) is a valid scheme, else
 * -1 with a message starting with the field path, e.g.
 *   verify.hmac.encoding: expected hex or base64, got "hexa" (did you mean 'hex'?)
 * NULL (no `verify` key) is an error: the caller decides whether the key
 * is optional. */
int webhook_verify_validate(const cJSON *verify, perr *e);

typedef struct webhook_verifier webhook_verifier;

/* Builds a verifier from the same JSON (validating it first); NULL with e
 * set on a bad value or out of memory.  It holds no secret: the caller
 * resolves the recipe's secret reference and passes the bytes per call, so
 * a rotated secret takes effect without rebuilding. */
webhook_verifier *webhook_verifier_new(const cJSON *verify, perr *e);
void webhook_verifier_free(webhook_verifier *v);
/* "github", "stripe", "slack", "typeform" or "hmac", for logs. */
const char *webhook_verifier_name(const webhook_verifier *v);

/* Looks up a request header by name, case-insensitively; returns its value
 * (NUL-terminated, valid until webhook_verify returns) or NULL. */
typedef const char *(*webhook_header_fn)(void *ud, const char *name);

/* 0 when the request is signed with `secret`; -1 with a short reason in
 * `why` (when why_len > 0): missing header, malformed header, timestamp
 * outside tolerance, signature mismatch, empty secret.  now_s is the
 * current unix time in seconds (a parameter so tests and replays of stored
 * requests can fix it).  Thread-safe: v is only read. */
int webhook_verify(const webhook_verifier *v, const char *secret, size_t secret_len,
                   const char *(*header)(void *ud, const char *name), void *hud, const char *body,
                   size_t body_len, int64_t now_s, char *why, size_t why_len);

#endif
