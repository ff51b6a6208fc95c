/*
 * jwt: compact JWS (RFC 7515) signed with RS256 (RSASSA-PKCS1-v1_5 over
 * SHA-256, RFC 7518 section 3.3), for the OAuth 2.0 JWT bearer grant
 * (RFC 7523) that service accounts use.
 *
 * Only signing: promptd presents assertions, it never accepts them.  The
 * private key is parsed from PEM for each signature and never kept, so a
 * key rotated on disk is picked up and no long-lived copy sits in memory.
 * Messages name what was wrong with the key, never its bytes.
 */
#ifndef PROMPTD_NET_JWT_H
#define PROMPTD_NET_JWT_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

/* Appends base64url of data without padding (RFC 7515 section 2). */
int jwt_b64url(buf *out, const void *data, size_t len);

/* Decodes base64url (padding optional) into a new NUL-terminated
 * allocation; NULL on bad input.  For tests and diagnostics. */
char *jwt_b64url_decode(const char *s, size_t len, size_t *out_len);

/* header.claims.signature with header {"alg":"RS256","typ":"JWT"}.
 * claims_json is the claims set, serialised.  private_key_pem: PKCS#8 or
 * PKCS#1 RSA private key (Google's keys are PKCS#8).  malloc'd, or NULL
 * with e set. */
char *jwt_sign_rs256(const char *claims_json, const char *private_key_pem, perr *e);

#endif
