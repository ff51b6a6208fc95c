/*
 * probe: reaching an outside system with the configured credentials, for
 * `promptd doctor --network`.  A configuration section that names an
 * outside system (config_section.probe) starts its checks on the loop,
 * reports one finding per thing reached, holding each until it ends.
 */
#ifndef PROMPTD_PROBE_H
#define PROMPTD_PROBE_H

typedef struct probe_ctx probe_ctx;

/* what: the configuration path ("providers.openai"); detail: what was
 * found, never a secret's value. */
void probe_report(probe_ctx *p, const char *what, int ok, const char *detail);
/* How long each request may take (seconds): probes end by themselves,
 * so their requests carry this timeout. */
double probe_timeout(const probe_ctx *p);
/* Each thing a probe reaches asynchronously is held from just before it
 * starts until after its last report; the section is done when nothing is
 * held once the probe function has returned. */
void probe_hold(probe_ctx *p);
void probe_release(probe_ctx *p);

#endif
