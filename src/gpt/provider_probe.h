/*
 * provider_probe: reaching each configured GPT provider for
 * `promptd doctor --network` (config_section.probe of `providers:`).
 */
#ifndef PROMPTD_GPT_PROVIDER_PROBE_H
#define PROMPTD_GPT_PROVIDER_PROBE_H

#include <cjson/cJSON.h>

#include "core/err.h"

struct runtime;
struct probe_ctx;

int gpt_providers_probe(struct runtime *rt, const cJSON *section, struct probe_ctx *p, perr *e);

#endif
