/*
 * mail_probe: `promptd doctor --network` for the `mail:` section: each
 * account with an IMAP server logs in and asks for its INBOX's status.
 */
#ifndef PROMPTD_TRIGGERS_MAIL_PROBE_H
#define PROMPTD_TRIGGERS_MAIL_PROBE_H

#include <cjson/cJSON.h>

#include "core/err.h"

struct runtime;
struct probe_ctx;

int mail_accounts_probe(struct runtime *rt, const cJSON *section, struct probe_ctx *p, perr *e);

#endif
