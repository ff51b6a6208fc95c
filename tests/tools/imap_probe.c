/*
 * imap_probe: runs imap_client operations against a server, one after the
 * other on one libev loop, and prints one JSON object per operation, so
 * tests/integration/test_imap_client.py can check each against what the
 * server holds.
 *
 *   imap_probe --url imap://127.0.0.1:PORT --user U (--password P | --bearer T)
 *              [--starttls] [--ca FILE] [--insecure] [--max-message N]
 *              CMD ARGS... [+ CMD ARGS...]...
 *
 *   examine MBOX | status MBOX | list
 *   search MBOX [uid_from=N] [since=YYYY-MM-DD] [header=NAME:VALUE]
 *   fetch MBOX UIDVALIDITY UID OUTFILE      (the message bytes go to OUTFILE)
 *   append MBOX FILE
 *   store MBOX UID add|remove|replace FLAG[,FLAG...]  (Seen Answered Flagged Deleted Draft)
 *   burst N MBOX     N status calls queued at once, the second one cancelled
 *   free-midway MBOX an examine, then the client freed before it completes
 *
 * Ends by freeing the clients and checking that the loop has no active
 * watcher left; exit status 0 when every operation ran (whatever its
 * result), 2 on usage errors, 3 when something was left behind or timed out.
 */
#include <cjson/cJSON.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/http_client.h"
#include "net/imap_client.h"

typedef struct probe {
  struct ev_loop *loop;
  http_client *http;
  imap_client *imap;
  char **argv;
  int argc;
  int pos;          /* next argument to read */
  int burst_left;   /* burst: results still to come */
  cJSON *burst_out; /* burst: rc names in callback order */
  int failed;
  int finished; /* no command left (ev_break before ev_run would be lost) */
} probe;

static void run_next(probe *p);

static void emit(cJSON *o) {
  char *s = cJSON_PrintUnformatted(o);
  if (s) {
    printf("%s\n", s);
    fflush(stdout);
  }
  free(s);
  cJSON_Delete(o);
}

static cJSON *result_json(const char *op, const imap_result *r) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "op", op);
  cJSON_AddStringToObject(o, "rc", imap_rc_name(r->rc));
  cJSON_AddNumberToObject(o, "curl_code", r->curl_code);
  cJSON_AddStringToObject(o, "error", r->error);
  return o;
}

static void add_info(cJSON *o, const imap_result *r) {
  if (r->info.has_uidvalidity) cJSON_AddNumberToObject(o, "uidvalidity", r->info.uidvalidity);
  if (r->info.has_uidnext) cJSON_AddNumberToObject(o, "uidnext", r->info.uidnext);
  if (r->info.has_exists) cJSON_AddNumberToObject(o, "exists", r->info.exists);
}

static cJSON *flags_json(unsigned f) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{IMAP_FLAG_SEEN, "\\Seen"},       {IMAP_FLAG_ANSWERED, "\\Answered"},
               {IMAP_FLAG_FLAGGED, "\\Flagged"}, {IMAP_FLAG_DELETED, "\\Deleted"},
               {IMAP_FLAG_DRAFT, "\\Draft"},     {IMAP_FLAG_RECENT, "\\Recent"}};
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (f & names[i].bit) cJSON_AddItemToArray(a, cJSON_CreateString(names[i].name));
  return a;
}

/* ---- callbacks ------------------------------------------------------------ */

static void on_info(void *ud, const imap_result *r) {
  probe *p = ud;
  cJSON *o = result_json("info", r);
  add_info(o, r);
  emit(o);
  run_next(p);
}

static void on_search(void *ud, const imap_result *r) {
  probe *p = ud;
  cJSON *o = result_json("search", r);
  cJSON *a = cJSON_AddArrayToObject(o, "uids");
  for (size_t i = 0; i < r->n_uids; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(r->uids[i]));
  emit(o);
  run_next(p);
}

typedef struct fetch_ctx {
  probe *p;
  char *path;
} fetch_ctx;

static void on_fetch(void *ud, const imap_result *r) {
  fetch_ctx *f = ud;
  cJSON *o = result_json("fetch", r);
  if (r->rc == IMAP_OK) {
    FILE *fp = fopen(f->path, "wb");
    if (!fp || fwrite(r->data, 1, r->data_len, fp) != r->data_len) f->p->failed = 1;
    if (fp) fclose(fp);
    cJSON_AddNumberToObject(o, "bytes", (double)r->data_len);
  }
  emit(o);
  probe *p = f->p;
  free(f->path);
  free(f);
  run_next(p);
}

static void on_list(void *ud, const imap_result *r) {
  probe *p = ud;
  cJSON *o = result_json("list", r);
  cJSON *a = cJSON_AddArrayToObject(o, "folders");
  for (size_t i = 0; i < r->n_folders; i++) {
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "name", r->folders[i].name);
    char d[2] = {r->folders[i].delim, 0};
    cJSON_AddStringToObject(f, "delim", d);
    cJSON_AddNumberToObject(f, "attrs", r->folders[i].attrs);
    cJSON_AddItemToArray(a, f);
  }
  const imap_folder *drafts = imap_folder_find(r->folders, r->n_folders, IMAP_ATTR_DRAFTS);
  if (drafts)
    cJSON_AddStringToObject(o, "drafts", drafts->name);
  else
    cJSON_AddNullToObject(o, "drafts");
  emit(o);
  run_next(p);
}

static void on_append(void *ud, const imap_result *r) {
  probe *p = ud;
  cJSON *o = result_json("append", r);
  if (r->has_uid) {
    cJSON_AddNumberToObject(o, "uidvalidity", r->uidvalidity);
    cJSON_AddNumberToObject(o, "uid", r->uid);
  }
  emit(o);
  run_next(p);
}

static void on_store(void *ud, const imap_result *r) {
  probe *p = ud;
  cJSON *o = result_json("store", r);
  if (r->has_flags) cJSON_AddItemToObject(o, "flags", flags_json(r->flags));
  emit(o);
  run_next(p);
}

static void on_burst(void *ud, const imap_result *r) {
  probe *p = ud;
  cJSON_AddItemToArray(p->burst_out, cJSON_CreateString(imap_rc_name(r->rc)));
  if (--p->burst_left > 0) return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "op", "burst");
  cJSON_AddItemToObject(o, "results", p->burst_out);
  p->burst_out = NULL;
  emit(o);
  run_next(p);
}

static int midway_calls;
static void on_midway(void *ud, const imap_result *r) {
  (void)ud;
  midway_calls++;
  cJSON *o = result_json("free-midway", r);
  emit(o);
}

/* ---- commands ------------------------------------------------------------- */

static const char *arg(probe *p) {
  if (p->pos >= p->argc || strcmp(p->argv[p->pos], "+") == 0) return NULL;
  return p->argv[p->pos++];
}

static int parse_flags(const char *s, unsigned *out) {
  static const struct {
    const char *name;
    unsigned bit;
  } names[] = {{"Seen", IMAP_FLAG_SEEN},
               {"Answered", IMAP_FLAG_ANSWERED},
               {"Flagged", IMAP_FLAG_FLAGGED},
               {"Deleted", IMAP_FLAG_DELETED},
               {"Draft", IMAP_FLAG_DRAFT}};
  *out = 0;
  while (*s) {
    size_t n = strcspn(s, ",");
    size_t i = 0;
    for (; i < sizeof names / sizeof names[0]; i++)
      if (strlen(names[i].name) == n && strncmp(names[i].name, s, n) == 0) break;
    if (i == sizeof names / sizeof names[0]) return -1;
    *out |= names[i].bit;
    s += n;
    if (*s == ',') s++;
  }
  return 0;
}

static char *read_all(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return NULL;
  buf b;
  buf_init(&b, (size_t)64 << 20);
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
    if (buf_add(&b, chunk, n)) break;
  fclose(fp);
  return buf_detach(&b, len);
}

static void finish_run(probe *p) {
  p->finished = 1;
  ev_break(p->loop, EVBREAK_ALL);
}

static void usage_fail(probe *p, const char *why) {
  fprintf(stderr, "imap_probe: %s\n", why);
  p->failed = 2;
  finish_run(p);
}

static void start_failed(const char *op, const perr *e) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "op", op);
  cJSON_AddStringToObject(o, "rc", "start_failed");
  cJSON_AddStringToObject(o, "error", e->msg);
  emit(o);
}

/* Starts the next command; when one fails to start, reports it and goes
 * on, so one run can check refusals too.  Called from done callbacks. */
static void run_next(probe *p) {
  for (;;) {
    if (p->pos < p->argc && strcmp(p->argv[p->pos], "+") == 0) p->pos++;
    const char *cmd = arg(p);
    if (!cmd) {
      finish_run(p);
      return;
    }
    perr e = {{0}};
    int rc = 0;
    if (strcmp(cmd, "examine") == 0 || strcmp(cmd, "status") == 0) {
      const char *mbox = arg(p);
      if (!mbox) {
        usage_fail(p, "examine/status MBOX");
        return;
      }
      rc = cmd[0] == 'e' ? imap_examine(p->imap, mbox, on_info, p, NULL, &e)
                         : imap_status(p->imap, mbox, on_info, p, NULL, &e);
    } else if (strcmp(cmd, "search") == 0) {
      const char *mbox = arg(p);
      if (!mbox) {
        usage_fail(p, "search MBOX [key=value]...");
        return;
      }
      imap_search_key k = {0};
      char hname[256] = "";
      const char *a;
      while ((a = arg(p))) {
        if (strncmp(a, "uid_from=", 9) == 0) {
          k.uid_from = (uint32_t)strtoul(a + 9, NULL, 10);
        } else if (strncmp(a, "since=", 6) == 0) {
          if (sscanf(a + 6, "%d-%d-%d", &k.since_year, &k.since_month, &k.since_day) != 3) {
            usage_fail(p, "since=YYYY-MM-DD");
            return;
          }
        } else if (strncmp(a, "header=", 7) == 0) {
          const char *colon = strchr(a + 7, ':');
          if (!colon || (size_t)(colon - (a + 7)) >= sizeof hname) {
            usage_fail(p, "header=NAME:VALUE");
            return;
          }
          memcpy(hname, a + 7, (size_t)(colon - (a + 7)));
          hname[colon - (a + 7)] = '\0';
          k.header_name = hname;
          k.header_value = colon + 1;
        } else {
          {
            usage_fail(p, "unknown search key");
            return;
          }
        }
      }
      rc = imap_search(p->imap, mbox, &k, on_search, p, NULL, &e);
    } else if (strcmp(cmd, "fetch") == 0) {
      const char *mbox = arg(p), *v = arg(p), *u = arg(p), *out = arg(p);
      if (!out) {
        usage_fail(p, "fetch MBOX UIDVALIDITY UID OUTFILE");
        return;
      }
      fetch_ctx *f = calloc(1, sizeof *f);
      if (!f || !(f->path = strdup(out))) {
        free(f);
        {
          usage_fail(p, "out of memory");
          return;
        }
      }
      f->p = p;
      rc = imap_fetch(p->imap, mbox, (uint32_t)strtoul(v, NULL, 10), (uint32_t)strtoul(u, NULL, 10),
                      on_fetch, f, NULL, &e);
      if (rc) {
        free(f->path);
        free(f);
      }
    } else if (strcmp(cmd, "list") == 0) {
      rc = imap_list(p->imap, on_list, p, NULL, &e);
    } else if (strcmp(cmd, "append") == 0) {
      const char *mbox = arg(p), *file = arg(p);
      if (!file) {
        usage_fail(p, "append MBOX FILE");
        return;
      }
      size_t len = 0;
      char *msg = read_all(file, &len);
      if (!msg) {
        usage_fail(p, "cannot read the message file");
        return;
      }
      rc = imap_append(p->imap, mbox, msg, len, on_append, p, NULL, &e);
      free(msg); /* imap_append copied it */
    } else if (strcmp(cmd, "store") == 0) {
      const char *mbox = arg(p), *u = arg(p), *ch = arg(p), *fl = arg(p);
      unsigned flags;
      char change = !ch                          ? 0
                    : strcmp(ch, "add") == 0     ? '+'
                    : strcmp(ch, "remove") == 0  ? '-'
                    : strcmp(ch, "replace") == 0 ? '='
                                                 : 0;
      if (!fl || !change || parse_flags(fl, &flags)) {
        usage_fail(p, "store MBOX UID add|remove|replace FLAGS");
        return;
      }
      rc = imap_store(p->imap, mbox, (uint32_t)strtoul(u, NULL, 10), change, flags, on_store, p,
                      NULL, &e);
    } else if (strcmp(cmd, "burst") == 0) {
      const char *n = arg(p), *mbox = arg(p);
      if (!mbox) {
        usage_fail(p, "burst N MBOX");
        return;
      }
      long want = strtol(n, NULL, 10);
      int count = want < 2 ? 2 : want > 50 ? 50 : (int)want;
      p->burst_out = cJSON_CreateArray();
      p->burst_left = count;
      imap_op *second = NULL;
      for (int i = 0; i < count; i++) {
        imap_op *op = NULL;
        if (imap_status(p->imap, mbox, on_burst, p, &op, &e)) {
          start_failed("burst", &e);
          p->failed = 1;
          finish_run(p);
          return;
        }
        if (i == 1) second = op;
      }
      imap_op_cancel(second);
      imap_op_cancel(second); /* harmless twice */
      return;
    } else if (strcmp(cmd, "free-midway") == 0) {
      const char *mbox = arg(p);
      if (!mbox) {
        usage_fail(p, "free-midway MBOX");
        return;
      }
      midway_calls = 0;
      if (imap_examine(p->imap, mbox, on_midway, p, NULL, &e) ||
          imap_status(p->imap, mbox, on_midway, p, NULL, &e)) {
        start_failed(cmd, &e);
        p->failed = 1;
      }
      imap_client_free(p->imap); /* both callbacks run inside, cancelled */
      p->imap = NULL;
      if (midway_calls != 2) p->failed = 1;
      finish_run(p); /* the client is gone: nothing may follow */
      return;
    } else {
      {
        usage_fail(p, "unknown command");
        return;
      }
    }
    if (rc == 0) return;
    start_failed(cmd, &e);
  }
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  probe *p = w->data;
  fprintf(stderr, "imap_probe: timed out\n");
  p->failed = 3;
  finish_run(p);
  (void)loop;
}

int main(int argc, char **argv) {
  imap_account acct = {0};
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    const char *o = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(o, "--starttls") == 0) {
      acct.starttls = 1;
      continue;
    }
    if (strcmp(o, "--insecure") == 0) {
      acct.insecure = 1;
      continue;
    }
    if (!v) break;
    if (strcmp(o, "--url") == 0)
      acct.url = v;
    else if (strcmp(o, "--user") == 0)
      acct.user = v;
    else if (strcmp(o, "--password") == 0)
      acct.password = v;
    else if (strcmp(o, "--bearer") == 0)
      acct.bearer = v;
    else if (strcmp(o, "--ca") == 0)
      acct.ca_file = v;
    else if (strcmp(o, "--max-message") == 0)
      acct.max_message = strtoul(v, NULL, 10);
    else if (strcmp(o, "--timeout-ms") == 0)
      acct.timeout_ms = strtol(v, NULL, 10);
    else
      break;
    i++;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: imap_probe --url URL --user U --password P CMD ... (see source)\n");
    return 2;
  }
  log_set_level(LOG_WARN);
  probe p = {0};
  p.loop = ev_loop_new(EVFLAG_AUTO);
  p.argv = argv;
  p.argc = argc;
  p.pos = i;
  perr e;
  p.http = http_client_new(p.loop, &e);
  if (!p.http) {
    fprintf(stderr, "imap_probe: %s\n", e.msg);
    return 2;
  }
  p.imap = imap_client_new(p.loop, p.http, &acct, &e);
  if (!p.imap) {
    fprintf(stderr, "imap_probe: %s\n", e.msg);
    http_client_free(p.http);
    ev_loop_destroy(p.loop);
    return 2;
  }
  ev_timer watchdog;
  ev_timer_init(&watchdog, on_watchdog, 120., 0.);
  watchdog.data = &p;
  ev_timer_start(p.loop, &watchdog);

  run_next(&p);
  if (!p.finished) ev_run(p.loop, 0);

  ev_timer_stop(p.loop, &watchdog);
  imap_client_free(p.imap);
  http_client_free(p.http);
  cJSON_Delete(p.burst_out);
  int left = ev_run(p.loop, EVRUN_NOWAIT);
  if (left) {
    fprintf(stderr, "imap_probe: active watchers left on the loop\n");
    p.failed = 3;
  }
  ev_loop_destroy(p.loop);
  return p.failed;
}
