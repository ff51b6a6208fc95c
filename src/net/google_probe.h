/*
 * google_probe: `promptd doctor --network` for the `google:` section: the
 * default credentials are exchanged for an access token.
 */
#ifndef PROMPTD_NET_GOOGLE_PROBE_H
#define PROMPTD_NET_GOOGLE_PROBE_H

#include <cjson/cJSON.h>

#include "core/err.h"

struct runtime;
struct probe_ctx;

int google_probe(struct runtime *rt, const cJSON *section, struct probe_ctx *p, perr *e);

#endif
