/* promptd serve: the daemon in the foreground, logging to stderr. */
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/daemon_lock.h"
#include "core/engine.h"
#include "core/log.h"
#include "core/metrics_catalog.h"
#include "core/reload.h"
#include "core/service.h"
#include "net/admin_server.h"
#include "triggers/webhook_router.h"

static const char usage_text[] =
    "usage: promptd serve [--recipes DIR] [--listen ADDR:PORT] [--admin-listen ADDR:PORT]\n"
    "\n"
    "Runs the daemon in the foreground, logging to stderr. Runs left unfinished by\n"
    "a previous process resume at their first unfinished step. SIGTERM or SIGINT\n"
    "stop intake, let in-flight steps finish (engine.shutdown_timeout_s, default\n"
    "30 s) and exit 0; a second signal stops at once (unfinished steps resume at\n"
    "the next start).\n"
    "\n"
    "Retention (`retention:` in the configuration): succeeded runs, their steps\n"
    "and events, and events no recipe matched are deleted once older than\n"
    "retention.succeeded (default 7d), failed runs and their events after\n"
    "retention.failed (default 30d); queued, running, retrying and budget runs\n"
    "never. A pass every retention.interval (default 60s) deletes in batches of\n"
    "retention.batch rows (default 500) and logs \"retention pass\" with counts.\n"
    "Deduplication lasts as long as the event is kept: a redelivered key whose\n"
    "event was pruned is accepted as a new event. `off` keeps rows forever.\n"
    "\n"
    "SIGHUP reloads the configuration file (the same --config) and the recipes\n"
    "directory. A configuration with any error is refused whole (logged with\n"
    "FILE:LINE:COL) and the one in force stays. log: and engine: settings apply\n"
    "at once; a changed connector section (providers:, mail:, google:, ...)\n"
    "remakes the kinds' shared state for new steps (steps in flight finish with\n"
    "the old) and restarts account triggers; http:, admin: and retention:\n"
    "settings are logged as taking effect at restart. Recipes are imported all\n"
    "or nothing: a changed recipe gets a new version, a recipe whose file left\n"
    "the directory is removed (no new runs); runs keep the version they were\n"
    "created with. Log lines: \"config reloaded\", \"recipe reloaded\",\n"
    "\"recipe removed\", \"reload refused\", \"reload done\".\n"
    "\n"
    "Under systemd (promptd.service, Type=notify) serve reports READY=1 once the\n"
    "store is open, the recipes imported and every listener bound, STOPPING=1 at\n"
    "the stop signal, STATUS= with the queue depth every 5 s and, with\n"
    "WatchdogSec=, WATCHDOG=1 from the event loop at half the interval. A\n"
    "listening socket passed by promptd.socket (LISTEN_FDS) becomes the webhook\n"
    "server, in place of --listen and http.listen. Elsewhere none of this applies.\n"
    "\n"
    "  --recipes DIR   import the recipes in DIR before serving and at each SIGHUP\n"
    "                  (all or nothing; also `recipes_dir:` in the configuration)\n"
    "  --listen ADDR:PORT\n"
    "                  serve webhooks there (overrides `http: { listen: }`; default\n"
    "                  127.0.0.1:8080). The server starts when this or http.listen\n"
    "                  is given, or when an enabled recipe has a webhook trigger.\n"
    "  --admin-listen ADDR:PORT\n"
    "                  serve /healthz, /readyz and /metrics (Prometheus) there\n"
    "                  (overrides `admin: { listen: }`; a bare PORT means\n"
    "                  127.0.0.1:PORT). Off unless given. Unauthenticated: keep it\n"
    "                  on loopback.\n";

typedef struct serve_state {
  engine *en;
  struct ev_loop *loop;
  int stopping;
  reloader *rl;
  webhook_router **router;
  const char *listen;
} serve_state;

static void on_stopped(void *ud) {
  serve_state *st = ud;
  ev_break(st->loop, EVBREAK_ALL);
}

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)revents;
  serve_state *st = w->data;
  if (st->stopping++) {
    log_warn("second signal: stopping now", "signal=%d", w->signum);
    ev_break(loop, EVBREAK_ALL);
    return;
  }
  log_info("stopping", "signal=%d", w->signum);
  service_stopping();
  engine_shutdown(st->en, on_stopped, st);
}

/* `systemctl status` shows the queue depth, refreshed every few seconds. */
static void on_status_tick(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop, (void)revents;
  serve_state *st = w->data;
  if (st->en && !st->stopping)
    service_status("serving: %zu runs in flight, %zu waiting", engine_active(st->en),
                   engine_backlog(st->en));
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)loop, (void)revents;
  serve_state *st = w->data;
  if (st->stopping || !st->en) {
    log_warn("SIGHUP ignored: stopping", "%s", "");
    return;
  }
  reloader_run(st->rl, st->en);
  /* A reload that brought the first webhook recipe starts the server. */
  if (!*st->router && webhook_router_wanted(st->en)) {
    perr e;
    if (!(*st->router = webhook_router_new(st->en, reloader_config(st->rl), st->listen, &e)))
      log_error("cannot start the webhook server", "error=%s", log_q(e.msg));
  }
}

static int import_dir(store *s, const char *dir) {
  int changes;
  perr e;
  if (reload_import_recipes(s, dir, "recipe imported", 1, &changes, &e)) {
    log_error("recipes not imported", "dir=%s error=%s", log_q(dir), log_q(e.msg));
    return -1;
  }
  return 0;
}

int cmd_serve(int argc, char **argv, const cli_globals *g) {
  if (cli_wants_help(argc, argv)) return fputs(usage_text, stdout), EXIT_OK;
  static const struct option opts[] = {{"recipes", required_argument, 0, 'r'},
                                      {"listen", required_argument, 0, 'l'},
                                      {"admin-listen", required_argument, 0, 'a'},
                                      {0, 0, 0, 0}};
  const char *recipes = NULL, *listen = NULL, *admin_listen = NULL;
  int c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'r')
      recipes = optarg;
    else if (c == 'l')
      listen = optarg;
    else if (c == 'a')
      admin_listen = optarg;
    else
      return cli_fail(EXIT_USAGE, "serve: unknown option or missing value: %s", argv[optind - 1]);
  }
  if (optind < argc) return cli_fail(EXIT_USAGE, "serve: unexpected argument '%s'", argv[optind]);

  config cfg;
  config_init(&cfg);
  perr e;
  if (config_load(&cfg, g->config_path, &e)) {
    config_release(&cfg);
    return cli_fail(EXIT_RUNTIME, "%s", e.msg);
  }
  if (!recipes) recipes = cfg.recipes_dir;
  int rc = EXIT_RUNTIME, lock = -1;
  store *s = NULL;
  engine *en = NULL;
  webhook_router *router = NULL;
  admin_server *admin = NULL;
  serve_state st = {.router = &router, .listen = listen};
  ev_signal sig_term, sig_int, sig_hup;
  ev_timer status_tick;
  struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
  if (!loop) {
    cli_fail(EXIT_RUNTIME, "cannot create the event loop");
    goto out;
  }
  /* Watch signals before anything slow: a SIGTERM during start-up is then
   * handled by the loop (a clean stop) instead of killing the process. */
  signal(SIGPIPE, SIG_IGN);
  st.loop = loop;
  ev_signal_init(&sig_term, on_stop_signal, SIGTERM);
  ev_signal_init(&sig_int, on_stop_signal, SIGINT);
  ev_signal_init(&sig_hup, on_hup, SIGHUP);
  sig_term.data = sig_int.data = sig_hup.data = &st;
  ev_signal_start(loop, &sig_term);
  ev_signal_start(loop, &sig_int);
  ev_signal_start(loop, &sig_hup);
  ev_timer_init(&status_tick, on_status_tick, 5., 5.);
  status_tick.data = &st;
  if (service_init(loop, &e)) {
    cli_fail(EXIT_RUNTIME, "%s", e.msg);
    goto out;
  }
  if ((lock = daemon_lock_take(g->db_path, &e)) < 0) {
    cli_fail(EXIT_RUNTIME, "%s", e.msg);
    goto out;
  }
  if (!(st.rl = reloader_new(g->config_path, recipes == cfg.recipes_dir ? NULL : recipes, &cfg))) {
    cli_fail(EXIT_RUNTIME, "out of memory");
    goto out;
  }
  if (!(s = cli_open_store(g, 0))) goto out;
  if (recipes && import_dir(s, recipes)) goto out;
  if (!(en = engine_new(loop, s, &cfg, &e)) || engine_start(en, &e)) {
    log_error("cannot start", "error=%s", log_q(e.msg));
    goto out;
  }
  st.en = en;
  const cJSON *http = config_get_section(&cfg, "http");
  if (listen || (http && cJSON_GetObjectItemCaseSensitive(http, "listen")) ||
      webhook_router_wanted(en) || service_listen_fd() >= 0) {
    if (!(router = webhook_router_new(en, &cfg, listen, &e))) {
      log_error("cannot start the webhook server", "error=%s", log_q(e.msg));
      goto out;
    }
  }
  if ((admin_listen = admin_listen_address(&cfg, admin_listen)) &&
      !(admin = admin_server_new(en, admin_listen, &e))) {
    log_error("cannot start the admin listener", "error=%s", log_q(e.msg));
    goto out;
  }
  /* Every listener is bound: only now may systemd start what depends on us. */
  service_ready();
  ev_timer_start(loop, &status_tick);
  log_info("serving", "pid=%ld db=%s concurrency=%d", (long)getpid(), log_q(g->db_path),
           cfg.engine.concurrency);
  ev_run(loop, 0);
  if (engine_failed(en)) {
    log_error("stopped after a store failure", "error=%s", log_q(engine_failed(en)));
  } else {
    log_info("stopped", "%s", "");
    rc = EXIT_OK;
  }
out:
  if (loop) {
    ev_signal_stop(loop, &sig_term);
    ev_signal_stop(loop, &sig_int);
    ev_signal_stop(loop, &sig_hup);
    ev_timer_stop(loop, &status_tick);
  }
  service_free();
  /* The engine answers requests still waiting for a commit; then the
   * server closes their connections. */
  engine_free(en);
  webhook_router_free(router);
  admin_server_free(admin);
  store_close(s);
  daemon_lock_drop(lock);
  if (loop) ev_loop_destroy(loop);
  /* After everything that may point into a configuration a reload applied. */
  reloader_free(st.rl);
  config_release(&cfg);
  metrics_catalog_release();
  return rc;
}
