/*
 * engine_resource: exactly-once kinds name a resource (a file path); one
 * step per resource runs from before begin() until its outcome is
 * durable, the others wait in arrival order.
 */
#include <stdlib.h>
#include <string.h>

#include "core/engine_internal.h"

static resource *resource_find(engine *en, const char *name) {
  for (resource *r = en->resources; r; r = r->next)
    if (strcmp(r->name, name) == 0) return r;
  return NULL;
}

/* 1: ar holds it now; 0: ar waits its turn; -1: out of memory. */
int resource_acquire(engine *en, const char *name, active_run *ar) {
  resource *r = resource_find(en, name);
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) {
      free(r);
      return -1;
    }
    r->next = en->resources;
    en->resources = r;
  }
  if (!r->holder) {
    r->holder = ar;
    ar->held = r;
    return 1;
  }
  ar->wait_next = NULL;
  if (r->wait_tail)
    r->wait_tail->wait_next = ar;
  else
    r->wait_head = ar;
  r->wait_tail = ar;
  ar->phase = AR_WAIT_RESOURCE;
  return 0;
}

static void resource_unlink(engine *en, resource *r) {
  for (resource **pp = &en->resources; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  free(r->name);
  free(r);
}

void resource_release(active_run *ar) {
  resource *r = ar->held;
  if (!r) return;
  ar->held = NULL;
  r->holder = NULL;
  active_run *next = r->wait_head;
  if (!next) {
    resource_unlink(ar->en, r);
    return;
  }
  r->wait_head = next->wait_next;
  if (!r->wait_head) r->wait_tail = NULL;
  r->holder = next;
  next->held = r;
  begin_step(next);
}

void resource_forget_waiter(engine *en, active_run *ar) {
  for (resource *r = en->resources; r; r = r->next) {
    active_run *prev = NULL;
    for (active_run *w = r->wait_head; w; prev = w, w = w->wait_next) {
      if (w != ar) continue;
      if (prev)
        prev->wait_next = w->wait_next;
      else
        r->wait_head = w->wait_next;
      if (r->wait_tail == w) r->wait_tail = prev;
      return;
    }
  }
}

/* ---- active runs ---- */

