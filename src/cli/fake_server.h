/*
 * fake_server: starts and stops promptd's fake OpenAI and Slack servers
 * (python3 scripts shipped with promptd) for `promptd demo` without an API
 * key or a Slack workspace, and for the benchmarks.  They answer like the
 * real APIs, deterministically and at no cost.
 */
#ifndef PROMPTD_FAKE_SERVER_H
#define PROMPTD_FAKE_SERVER_H

#include <sys/types.h>

#include "core/err.h"

/* The script: beside the sources when built from them, else installed. */
const char *fake_server_script(void);
/* Runs `python3 SCRIPT --port 0 --latency-ms N` and waits for its
 * "listening HOST:PORT" line. Returns the pid, or -1 with e set. */
pid_t fake_server_start(const char *script, int latency_ms, int *port, perr *e);
/* Runs `python3 SCRIPT --port 0 ARGS...` (args NULL-terminated, may be
 * NULL) the same way.  The script's later output goes nowhere. */
pid_t fake_server_start_args(const char *script, const char *const *args, int *port, perr *e);
const char *fake_slack_script(void);
const char *fake_google_script(void);
void fake_server_stop(pid_t pid);

#endif
