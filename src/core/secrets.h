/*
 * secrets: references to secret values, resolved only when needed.
 *
 *   env:NAME    the environment variable NAME
 *   file:/path  the file's contents, one trailing newline removed
 *   cred:NAME   a systemd credential: $CREDENTIALS_DIRECTORY/NAME
 *
 * Recipes and the database hold only the reference.  Every resolved value
 * is registered with log_redact() so it can never be logged.
 */
#ifndef PROMPTD_SECRETS_H
#define PROMPTD_SECRETS_H

#include "core/err.h"

/* 1 when s has one of the three forms (syntax only). */
int secret_is_ref(const char *s);
/* The value (malloc'd) or NULL with e naming the reference (never the value). */
char *secret_resolve(const char *ref, perr *e);

#endif
