/*
 * runtime: the services an action kind may use besides its input, owned by
 * the engine and alive from engine_start until engine_free.  Kinds reach
 * their configuration section by name (config_get_section), so the core never
 * names a connector.
 */
#ifndef PROMPTD_RUNTIME_H
#define PROMPTD_RUNTIME_H

#include "core/store.h"

struct ev_loop;
struct http_client;
struct config;

struct runtime {
  struct ev_loop *loop;
  struct http_client *http;  /* all outbound HTTP, on the loop */
  store *st;                 /* through the store API only: no SQL outside it */
  const struct config *cfg;  /* never NULL: defaults when no file was given */
};

#endif
