/*
 * imap_client: IMAP operations as short sequences of libcurl transfers on
 * the shared multi (see imap_client.h for the contract and for the libcurl
 * 7.88 limits this works around).
 *
 * An operation (imap_op) is one to two transfers ("steps"):
 *
 *   op        step 0                               step 1
 *   examine   EXAMINE mbox        (URL: mbox)
 *   status    STATUS mbox (...)   (URL: no mbox)
 *   search    UID SEARCH ...      (URL: mbox)
 *   fetch     EXAMINE mbox        (URL: mbox)      URL mbox;UIDVALIDITY=v/;UID=n
 *   list      LIST "" "*" RETURN (SPECIAL-USE)     LIST "" "*"  (only if step 0 got NO/BAD)
 *   append    upload to URL mbox
 *   store     SELECT mbox         (URL: mbox)      UID STORE n ±FLAGS (...)
 *
 * The URL names the mailbox whenever the command works inside one, so the
 * SELECT libcurl performs (or skips, when it believes the mailbox already
 * selected) agrees with what the server has selected.
 *
 * States of an op and the function making each transition
 *
 *   op_submit ──► QUEUED ──pump()──► RUNNING ──on_step_done()──► (done, freed)
 *      │             │                  │  ▲ next step: step_start()
 *      │             │                  └──┘
 *      │             └─imap_op_cancel()─► CANCELLED ──defer_cb()──► (done, freed)
 *      └─(client idle)─► RUNNING
 *
 *   RUNNING always has a transfer in flight (op->call); imap_op_cancel
 *   cancels that transfer and on_step_done reports the op cancelled.
 *   imap_client_free delivers every op as cancelled inside itself; the
 *   running op's transfer is cancelled too and the op, now an orphan
 *   (op->c == NULL), is freed by on_step_done when http_client reports it.
 *
 * User callbacks run only from on_step_done, defer_cb and imap_client_free.
 * c->depth counts those frames; imap_client_free called inside one leaves
 * the final free to the outermost, after its own loops are done with c.
 */
#include "net/imap_client.h"

#include <curl/curl.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"

#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_RESPONSE_TIMEOUT_MS 30000L
#define DEFAULT_MAX_MESSAGE ((size_t)25 << 20)
/* Every server line of one transfer: a LIST of a large account, a SEARCH
 * over a big mailbox. */
#define MAX_TRANSCRIPT ((size_t)16 << 20)
/* libcurl drops the middle of any response line longer than half its
 * receive buffer (keeping 40 bytes): a bigger buffer keeps long SEARCH and
 * LIST lines whole, and debug_cb turns the rare overflow into an error
 * rather than a silently shortened result. */
#define RECV_BUFFER 1048576L

enum op_kind { OP_EXAMINE, OP_STATUS, OP_SEARCH, OP_FETCH, OP_LIST, OP_APPEND, OP_STORE };
enum op_state { OP_QUEUED, OP_RUNNING, OP_CANCELLED, OP_DELIVERING };

struct imap_op {
  imap_client *c; /* NULL once imap_client_free has reported the op */
  enum op_kind kind;
  enum op_state state;
  int step;
  int line_cut; /* libcurl shortened a response line of this transfer */
  http_call *call;
  imap_done_fn done;
  void *ud;
  char *mailbox;
  uint32_t uid, uidvalidity;
  char change;
  unsigned flags;
  imap_search_key key; /* its strings point into hname / hvalue */
  char *hname, *hvalue;
  char *msg; /* append: our copy, read by read_cb */
  size_t msg_len, msg_off;
  char errbuf[1024];
  struct imap_op *next;
};

struct imap_client {
  struct ev_loop *loop;
  http_client *http;
  char *base; /* scheme://host:port, no trailing slash */
  char *user, *password, *bearer, *ca_file;
  int starttls, insecure;
  long timeout_ms, connect_timeout_ms, response_timeout_ms;
  size_t max_message;
  imap_op *running;
  imap_op *queue, *queue_tail;
  imap_op *cancelled, *cancelled_tail;
  ev_timer defer; /* delivers ops cancelled while queued */
  int depth;
  int closing;
  int free_later;
};

const char *imap_rc_name(imap_rc rc) {
  switch (rc) {
    case IMAP_OK: return "ok";
    case IMAP_E_TRANSPORT: return "transport";
    case IMAP_E_TLS: return "tls";
    case IMAP_E_LOGIN: return "login";
    case IMAP_E_NO: return "refused";
    case IMAP_E_GONE: return "gone";
    case IMAP_E_TOO_BIG: return "too_big";
    case IMAP_E_PROTOCOL: return "protocol";
    case IMAP_E_CANCELLED: return "cancelled";
  }
  return "unknown";
}

/* ---- lists -------------------------------------------------------------- */

static void list_push(imap_op **head, imap_op **tail, imap_op *op) {
  op->next = NULL;
  if (*tail)
    (*tail)->next = op;
  else
    *head = op;
  *tail = op;
}

static imap_op *list_pop(imap_op **head, imap_op **tail) {
  imap_op *op = *head;
  if (!op) return NULL;
  *head = op->next;
  if (!*head) *tail = NULL;
  op->next = NULL;
  return op;
}

static void list_remove(imap_op **head, imap_op **tail, imap_op *op) {
  imap_op *prev = NULL;
  for (imap_op *p = *head; p; prev = p, p = p->next) {
    if (p != op) continue;
    if (prev)
      prev->next = p->next;
    else
      *head = p->next;
    if (*tail == p) *tail = prev;
    p->next = NULL;
    return;
  }
}

static void op_free(imap_op *op) {
  free(op->mailbox);
  free(op->hname);
  free(op->hvalue);
  free(op->msg);
  free(op);
}

/* ---- transfers ---------------------------------------------------------- */

static size_t read_cb(char *dst, size_t size, size_t nitems, void *userp) {
  imap_op *op = userp;
  size_t room = size * nitems, left = op->msg_len - op->msg_off;
  size_t n = left < room ? left : room;
  memcpy(dst, op->msg + op->msg_off, n);
  op->msg_off += n;
  return n;
}

/* Only watches libcurl's own notes for the one that says a line was cut;
 * everything else (including the LOGIN line) is dropped unread. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *userp) {
  (void)h;
  static const char cut[] = "Excessive server response line";
  if (type == CURLINFO_TEXT && size >= sizeof cut - 1 && memcmp(data, cut, sizeof cut - 1) == 0)
    ((imap_op *)userp)->line_cut = 1;
  return 0;
}

/* The command and URL of op's current step.  cmd stays empty for plain
 * transfers (fetch body, append). */
static int step_text(imap_op *op, buf *url, buf *cmd) {
  imap_client *c = op->c;
  buf raw;
  buf_init(&raw, (size_t)64 << 10);
  int with_mailbox = op->kind != OP_STATUS && op->kind != OP_LIST;
  int rc = buf_adds(url, c->base) || buf_addc(url, '/');
  if (!rc && with_mailbox) rc = imap_put_url_mailbox(url, op->mailbox);

  switch (op->kind) {
    case OP_EXAMINE:
      rc = rc || buf_adds(&raw, "EXAMINE ") || imap_put_quoted(&raw, op->mailbox);
      break;
    case OP_FETCH:
      if (op->step == 0) {
        rc = rc || buf_adds(&raw, "EXAMINE ") || imap_put_quoted(&raw, op->mailbox);
      } else {
        if (op->uidvalidity)
          rc = rc || buf_printf(url, ";UIDVALIDITY=%u/", (unsigned)op->uidvalidity);
        else
          rc = rc || buf_addc(url, '/');
        rc = rc || buf_printf(url, ";UID=%u", (unsigned)op->uid);
      }
      break;
    case OP_STATUS:
      rc = rc || buf_adds(&raw, "STATUS ") || imap_put_quoted(&raw, op->mailbox) ||
           buf_adds(&raw, " (MESSAGES UIDNEXT UIDVALIDITY)");
      break;
    case OP_SEARCH: {
      const imap_search_key *k = &op->key;
      int any = 0;
      rc = rc || buf_adds(&raw, "UID SEARCH");
      if (k->uid_from) {
        rc = rc || buf_printf(&raw, " UID %u:*", (unsigned)k->uid_from);
        any = 1;
      }
      if (k->since_year) {
        rc = rc || buf_addc(&raw, ' ') ||
             imap_put_since(&raw, k->since_year, k->since_month, k->since_day);
        any = 1;
      }
      if (k->header_name) {
        rc = rc || buf_adds(&raw, " HEADER ") || imap_put_quoted(&raw, k->header_name) ||
             buf_addc(&raw, ' ') || imap_put_quoted(&raw, k->header_value);
        any = 1;
      }
      if (!any) rc = rc || buf_adds(&raw, " ALL");
      break;
    }
    case OP_LIST:
      rc = rc || buf_adds(&raw, op->step == 0 ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
                                              : "LIST \"\" \"*\"");
      break;
    case OP_APPEND: break;
    case OP_STORE:
      if (op->step == 0) {
        rc = rc || buf_adds(&raw, "SELECT ") || imap_put_quoted(&raw, op->mailbox);
      } else {
        const char *how = op->change == '+' ? "+FLAGS" : op->change == '-' ? "-FLAGS" : "FLAGS";
        rc = rc || buf_printf(&raw, "UID STORE %u %s ", (unsigned)op->uid, how) ||
             imap_put_flags(&raw, op->flags);
      }
      break;
  }
  if (!rc && raw.len) rc = imap_put_custom(cmd, raw.data);
  buf_release(&raw);
  return rc ? -1 : 0;
}

static void on_step_done(void *ud, const http_response *r);

/* Starts op's current step.  Fails now (perr) or on_step_done runs later. */
static int step_start(imap_op *op, perr *e) {
  imap_client *c = op->c;
  buf url, cmd;
  buf_init(&url, (size_t)16 << 10);
  buf_init(&cmd, (size_t)64 << 10);
  if (step_text(op, &url, &cmd)) {
    buf_release(&url);
    buf_release(&cmd);
    return perr_set(e, "imap: cannot write the command (a name holds CR or LF, or is too long)");
  }
  CURL *h = curl_easy_init();
  if (!h) {
    buf_release(&url);
    buf_release(&cmd);
    return perr_set(e, "out of memory");
  }
  CURLcode rc = CURLE_OK;
#define SET(opt, val) (rc = rc == CURLE_OK ? curl_easy_setopt(h, opt, val) : rc)
  /* libcurl copies every string option, so the buffers can go after this. */
  SET(CURLOPT_URL, url.data);
  SET(CURLOPT_PROTOCOLS_STR, "imap,imaps");
  SET(CURLOPT_PATH_AS_IS, 1L);
  SET(CURLOPT_USERNAME, c->user);
  if (c->password) SET(CURLOPT_PASSWORD, c->password);
  if (c->bearer) {
    SET(CURLOPT_XOAUTH2_BEARER, c->bearer);
    SET(CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
  }
  if (c->starttls) SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
  if (c->ca_file) SET(CURLOPT_CAINFO, c->ca_file);
  if (c->insecure) {
    SET(CURLOPT_SSL_VERIFYPEER, 0L);
    SET(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, (c->response_timeout_ms + 999) / 1000);
  SET(CURLOPT_BUFFERSIZE, RECV_BUFFER);
  SET(CURLOPT_VERBOSE, 1L);
  SET(CURLOPT_DEBUGFUNCTION, debug_cb);
  SET(CURLOPT_DEBUGDATA, (void *)op);
  if (cmd.len) SET(CURLOPT_CUSTOMREQUEST, cmd.data);
  if (op->kind == OP_APPEND) {
    op->msg_off = 0;
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)op->msg_len);
    SET(CURLOPT_READFUNCTION, read_cb);
    SET(CURLOPT_READDATA, (void *)op);
  }
#undef SET
  buf_release(&url);
  buf_release(&cmd);
  if (rc != CURLE_OK) {
    curl_easy_cleanup(h);
    return perr_set(e, "imap transfer setup: %s", curl_easy_strerror(rc));
  }
  int fetching = op->kind == OP_FETCH && op->step == 1;
  http_easy_opts o = {
      .timeout_ms = c->timeout_ms,
      .connect_timeout_ms = c->connect_timeout_ms,
      .max_response = fetching ? c->max_message : MAX_TRANSCRIPT,
      .max_headers = MAX_TRANSCRIPT,
      .raw_headers = 1,
  };
  op->line_cut = 0;
  return http_client_start_easy(c->http, h, &o, on_step_done, op, &op->call, e);
}

/* ---- completion --------------------------------------------------------- */

static void client_destroy(imap_client *c);

static void deliver(imap_client *c, imap_op *op, const imap_result *res) {
  op->state = OP_DELIVERING;
  c->depth++;
  op->done(op->ud, res);
  c->depth--;
}

/* Ends the running op with res, frees it. */
static void finish(imap_op *op, const imap_result *res) {
  imap_client *c = op->c;
  if (c->running == op) c->running = NULL;
  deliver(c, op, res);
  op_free(op);
}

static void finish_error(imap_op *op, imap_rc rc, int curl_code, const char *msg) {
  imap_result res;
  memset(&res, 0, sizeof res);
  res.rc = rc;
  res.curl_code = curl_code;
  if (msg != op->errbuf) snprintf(op->errbuf, sizeof op->errbuf, "%s", msg);
  res.error = op->errbuf;
  finish(op, &res);
}

static imap_rc classify(const imap_op *op, int code, const char *msg) {
  switch (code) {
    case CURLE_LOGIN_DENIED:
      /* libcurl reports a refused SELECT with the login code. */
      return strncmp(msg, "Select failed", 13) == 0 ? IMAP_E_NO : IMAP_E_LOGIN;
    case CURLE_QUOTE_ERROR:
    case CURLE_UPLOAD_FAILED: return IMAP_E_NO;
    case CURLE_REMOTE_FILE_NOT_FOUND: return IMAP_E_GONE;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED: return op->kind == OP_FETCH ? IMAP_E_TOO_BIG : IMAP_E_PROTOCOL;
    case CURLE_USE_SSL_FAILED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CONNECT_ERROR: return IMAP_E_TLS;
    case CURLE_WEIRD_SERVER_REPLY: return IMAP_E_PROTOCOL;
    default: return IMAP_E_TRANSPORT;
  }
}

/* A failed transfer: curl's message, plus the server's tagged line when it
 * explains the refusal. */
static void fail_transfer(imap_op *op, const http_response *r, const char *t, size_t tlen) {
  imap_rc rc = classify(op, r->transport_error, r->error);
  size_t slen = 0;
  /* Not simply the last tagged line: after a failure libcurl closes the
   * connection, and the LOGOUT's OK comes after the refusal. */
  const char *said = imap_last_refusal(t, tlen, &slen);
  if (rc == IMAP_E_TOO_BIG) {
    snprintf(op->errbuf, sizeof op->errbuf, "message larger than %zu bytes", op->c->max_message);
  } else if (said) {
    snprintf(op->errbuf, sizeof op->errbuf, "%s (server: %.*s)", r->error,
             (int)(slen > 400 ? 400 : slen), said);
  } else {
    snprintf(op->errbuf, sizeof op->errbuf, "%s", r->error);
  }
  finish_error(op, rc, r->transport_error, op->errbuf);
}

/* Moves op to its next step; a start failure ends it. */
static void next_step(imap_op *op) {
  perr e;
  op->step++;
  if (step_start(op, &e)) finish_error(op, IMAP_E_TRANSPORT, 0, e.msg);
}

static void step_result(imap_op *op, const http_response *r) {
  size_t tlen = 0;
  const char *t = http_response_raw_headers(r, &tlen);
  if (r->transport_error == HTTP_CANCELLED) {
    finish_error(op, IMAP_E_CANCELLED, 0, "cancelled");
    return;
  }
  if (op->line_cut) {
    finish_error(op, IMAP_E_PROTOCOL, 0, "server sent a response line longer than 512 KiB");
    return;
  }
  if (r->transport_error) {
    if (op->kind == OP_LIST && op->step == 0 && r->transport_error == CURLE_QUOTE_ERROR) {
      next_step(op); /* no LIST-EXTENDED: plain LIST still shows SPECIAL-USE on most servers */
      return;
    }
    fail_transfer(op, r, t, tlen);
    return;
  }

  size_t off = imap_last_command(t, tlen);
  const char *s = t + off;
  size_t n = tlen - off;
  imap_result res;
  memset(&res, 0, sizeof res);
  res.error = "";
  perr e;
  switch (op->kind) {
    case OP_EXAMINE:
    case OP_STATUS:
      if ((op->kind == OP_EXAMINE ? imap_parse_select(s, n, &res.info, &e)
                                  : imap_parse_status(s, n, &res.info, &e)) ||
          (!res.info.has_uidvalidity &&
           perr_set(&e, "server sent no UIDVALIDITY for %s", op->mailbox))) {
        finish_error(op, IMAP_E_PROTOCOL, 0, e.msg);
        return;
      }
      finish(op, &res);
      return;
    case OP_SEARCH: {
      uint32_t *uids;
      size_t count;
      if (imap_parse_search(s, n, &uids, &count, &e)) {
        finish_error(op, IMAP_E_PROTOCOL, 0, e.msg);
        return;
      }
      /* "UID n:*" always matches the last message, even below n. */
      size_t first = 0;
      while (first < count && uids[first] < op->key.uid_from) first++;
      res.uids = count > first ? uids + first : NULL;
      res.n_uids = count - first;
      finish(op, &res);
      free(uids);
      return;
    }
    case OP_FETCH:
      if (op->step == 0) {
        imap_mailbox_info info;
        if (imap_parse_select(s, n, &info, &e)) {
          finish_error(op, IMAP_E_PROTOCOL, 0, e.msg);
          return;
        }
        if (op->uidvalidity && info.has_uidvalidity && info.uidvalidity != op->uidvalidity) {
          snprintf(op->errbuf, sizeof op->errbuf, "UIDVALIDITY of %s is now %u, not %u",
                   op->mailbox, (unsigned)info.uidvalidity, (unsigned)op->uidvalidity);
          finish_error(op, IMAP_E_GONE, 0, op->errbuf);
          return;
        }
        next_step(op);
        return;
      }
      res.uid = op->uid;
      res.uidvalidity = op->uidvalidity;
      res.has_uid = 1;
      res.data = r->body;
      res.data_len = r->body_len;
      finish(op, &res);
      return;
    case OP_LIST: {
      imap_folder *f;
      size_t count;
      if (imap_parse_list(s, n, &f, &count, &e)) {
        finish_error(op, IMAP_E_PROTOCOL, 0, e.msg);
        return;
      }
      res.folders = f;
      res.n_folders = count;
      finish(op, &res);
      imap_folders_free(f, count);
      return;
    }
    case OP_APPEND:
      res.has_uid = imap_parse_appenduid(t, tlen, &res.uidvalidity, &res.uid);
      finish(op, &res);
      return;
    case OP_STORE:
      if (op->step == 0) {
        next_step(op);
        return;
      }
      res.uid = op->uid;
      res.has_uid = 1;
      int found = imap_parse_fetch_flags(s, n, op->uid, &res.flags, &e);
      if (found < 0) {
        finish_error(op, IMAP_E_PROTOCOL, 0, e.msg);
        return;
      }
      res.has_flags = found;
      finish(op, &res);
      return;
  }
}

/* Starts queued ops until one is running.  Runs in callback context, so a
 * start failure is reported through done. */
static void pump(imap_client *c) {
  while (!c->running && !c->closing && c->queue) {
    imap_op *op = list_pop(&c->queue, &c->queue_tail);
    op->state = OP_RUNNING;
    c->running = op;
    perr e;
    if (step_start(op, &e) == 0) return;
    finish_error(op, IMAP_E_TRANSPORT, 0, e.msg);
  }
}

/* The outermost of our callback frames finishes a deferred free. */
static void leave(imap_client *c) {
  if (--c->depth == 0 && c->free_later) client_destroy(c);
}

static void on_step_done(void *ud, const http_response *r) {
  imap_op *op = ud;
  op->call = NULL;
  imap_client *c = op->c;
  if (!c) { /* reported as cancelled by imap_client_free already */
    op_free(op);
    return;
  }
  c->depth++;
  step_result(op, r);
  pump(c);
  leave(c);
}

static void defer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  imap_client *c = w->data;
  c->depth++;
  imap_op *op;
  while ((op = list_pop(&c->cancelled, &c->cancelled_tail)))
    finish_error(op, IMAP_E_CANCELLED, 0, "cancelled");
  leave(c);
}

/* ---- submission --------------------------------------------------------- */

static imap_op *op_new(imap_client *c, enum op_kind kind, const char *mailbox, imap_done_fn done,
                       void *ud, perr *e) {
  if (c->closing) {
    perr_set(e, "imap client is shutting down");
    return NULL;
  }
  if (!done) {
    perr_set(e, "imap operation needs a callback");
    return NULL;
  }
  if (mailbox && (!mailbox[0] || strpbrk(mailbox, "\r\n"))) {
    perr_set(e, "imap mailbox name must be non-empty, without CR or LF");
    return NULL;
  }
  imap_op *op = calloc(1, sizeof *op);
  if (!op || (mailbox && !(op->mailbox = strdup(mailbox)))) {
    free(op);
    perr_set(e, "out of memory");
    return NULL;
  }
  op->c = c;
  op->kind = kind;
  op->done = done;
  op->ud = ud;
  return op;
}

/* Runs op now when the client is idle, else queues it.  Frees op on
 * failure. */
static int op_submit(imap_op *op, imap_op **out, perr *e) {
  imap_client *c = op->c;
  if (out) *out = NULL;
  if (!c->running && !c->queue) {
    op->state = OP_RUNNING;
    c->running = op;
    if (step_start(op, e)) {
      c->running = NULL;
      op_free(op);
      return -1;
    }
  } else {
    op->state = OP_QUEUED;
    list_push(&c->queue, &c->queue_tail, op);
  }
  if (out) *out = op;
  return 0;
}

int imap_examine(imap_client *c, const char *mailbox, imap_done_fn done, void *ud, imap_op **out,
                 perr *e) {
  if (!mailbox) return perr_set(e, "imap examine needs a mailbox");
  imap_op *op = op_new(c, OP_EXAMINE, mailbox, done, ud, e);
  return op ? op_submit(op, out, e) : -1;
}

int imap_status(imap_client *c, const char *mailbox, imap_done_fn done, void *ud, imap_op **out,
                perr *e) {
  if (!mailbox) return perr_set(e, "imap status needs a mailbox");
  imap_op *op = op_new(c, OP_STATUS, mailbox, done, ud, e);
  return op ? op_submit(op, out, e) : -1;
}

int imap_search(imap_client *c, const char *mailbox, const imap_search_key *key, imap_done_fn done,
                void *ud, imap_op **out, perr *e) {
  if (!mailbox) return perr_set(e, "imap search needs a mailbox");
  imap_search_key k = {0};
  if (key) k = *key;
  if (k.since_year) {
    buf probe;
    buf_init(&probe, 64);
    int bad = imap_put_since(&probe, k.since_year, k.since_month, k.since_day);
    buf_release(&probe);
    if (bad) return perr_set(e, "imap search: impossible date");
  }
  if (k.header_name && (!k.header_value || strpbrk(k.header_name, "\r\n") ||
                        strpbrk(k.header_value, "\r\n") || !k.header_name[0]))
    return perr_set(e, "imap search: a header name and value without CR or LF are needed");
  imap_op *op = op_new(c, OP_SEARCH, mailbox, done, ud, e);
  if (!op) return -1;
  if (k.header_name) {
    op->hname = strdup(k.header_name);
    op->hvalue = strdup(k.header_value);
    if (!op->hname || !op->hvalue) {
      op_free(op);
      return perr_set(e, "out of memory");
    }
    k.header_name = op->hname;
    k.header_value = op->hvalue;
  }
  op->key = k;
  return op_submit(op, out, e);
}

int imap_fetch(imap_client *c, const char *mailbox, uint32_t uidvalidity, uint32_t uid,
               imap_done_fn done, void *ud, imap_op **out, perr *e) {
  if (!mailbox || uid == 0) return perr_set(e, "imap fetch needs a mailbox and a UID");
  imap_op *op = op_new(c, OP_FETCH, mailbox, done, ud, e);
  if (!op) return -1;
  op->uid = uid;
  op->uidvalidity = uidvalidity;
  return op_submit(op, out, e);
}

int imap_list(imap_client *c, imap_done_fn done, void *ud, imap_op **out, perr *e) {
  imap_op *op = op_new(c, OP_LIST, NULL, done, ud, e);
  return op ? op_submit(op, out, e) : -1;
}

int imap_append(imap_client *c, const char *mailbox, const char *msg, size_t len, imap_done_fn done,
                void *ud, imap_op **out, perr *e) {
  if (!mailbox || !msg || len == 0) return perr_set(e, "imap append needs a mailbox and a message");
  imap_op *op = op_new(c, OP_APPEND, mailbox, done, ud, e);
  if (!op) return -1;
  op->msg = malloc(len);
  if (!op->msg) {
    op_free(op);
    return perr_set(e, "out of memory");
  }
  memcpy(op->msg, msg, len);
  op->msg_len = len;
  return op_submit(op, out, e);
}

int imap_store(imap_client *c, const char *mailbox, uint32_t uid, char change, unsigned flags,
               imap_done_fn done, void *ud, imap_op **out, perr *e) {
  if (!mailbox || uid == 0) return perr_set(e, "imap store needs a mailbox and a UID");
  if (change != '+' && change != '-' && change != '=')
    return perr_set(e, "imap store: change must be '+', '-' or '='");
  imap_op *op = op_new(c, OP_STORE, mailbox, done, ud, e);
  if (!op) return -1;
  op->uid = uid;
  op->change = change;
  op->flags = flags & ~(unsigned)IMAP_FLAG_RECENT;
  return op_submit(op, out, e);
}

void imap_op_cancel(imap_op *op) {
  if (!op || !op->c) return;
  imap_client *c = op->c;
  if (op->state == OP_QUEUED) {
    list_remove(&c->queue, &c->queue_tail, op);
    op->state = OP_CANCELLED;
    list_push(&c->cancelled, &c->cancelled_tail, op);
    if (!ev_is_active(&c->defer)) {
      ev_timer_set(&c->defer, 0., 0.);
      ev_timer_start(c->loop, &c->defer);
    }
  } else if (op->state == OP_RUNNING && op->call) {
    http_call_cancel(op->call); /* on_step_done reports it */
  }
}

/* ---- client ------------------------------------------------------------- */

static char *dup_or_null(const char *s, int *oom) {
  if (!s) return NULL;
  char *d = strdup(s);
  if (!d) *oom = 1;
  return d;
}

imap_client *imap_client_new(struct ev_loop *loop, http_client *http, const imap_account *acct,
                             perr *e) {
  if (!acct || !acct->url || !acct->user) {
    perr_set(e, "imap account needs a URL and a user");
    return NULL;
  }
  int imaps = strncmp(acct->url, "imaps://", 8) == 0;
  if (!imaps && strncmp(acct->url, "imap://", 7) != 0) {
    perr_set(e, "imap account URL must start with imap:// or imaps://");
    return NULL;
  }
  if (!acct->password == !acct->bearer) {
    perr_set(e, "imap account needs a password or a bearer token (one of them)");
    return NULL;
  }
  const char *hostpart = acct->url + (imaps ? 8 : 7);
  const char *slash = strchr(hostpart, '/');
  if (!hostpart[0] || (slash && slash[1])) {
    perr_set(e, "imap account URL must be scheme://host[:port] with no path");
    return NULL;
  }
  imap_client *c = calloc(1, sizeof *c);
  if (!c) {
    perr_set(e, "out of memory");
    return NULL;
  }
  int oom = 0;
  c->loop = loop;
  c->http = http;
  c->base = dup_or_null(acct->url, &oom);
  if (c->base && slash) c->base[slash - acct->url] = '\0';
  c->user = dup_or_null(acct->user, &oom);
  c->password = dup_or_null(acct->password, &oom);
  c->bearer = dup_or_null(acct->bearer, &oom);
  c->ca_file = dup_or_null(acct->ca_file, &oom);
  c->starttls = acct->starttls && !imaps;
  c->insecure = acct->insecure;
  c->timeout_ms = acct->timeout_ms > 0 ? acct->timeout_ms : DEFAULT_TIMEOUT_MS;
  c->connect_timeout_ms =
      acct->connect_timeout_ms > 0 ? acct->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
  c->response_timeout_ms =
      acct->response_timeout_ms > 0 ? acct->response_timeout_ms : DEFAULT_RESPONSE_TIMEOUT_MS;
  c->max_message = acct->max_message ? acct->max_message : DEFAULT_MAX_MESSAGE;
  ev_timer_init(&c->defer, defer_cb, 0., 0.);
  c->defer.data = c;
  if (oom) {
    client_destroy(c);
    perr_set(e, "out of memory");
    return NULL;
  }
  return c;
}

static void client_destroy(imap_client *c) {
  ev_timer_stop(c->loop, &c->defer);
  free(c->base);
  free(c->user);
  if (c->password) {
    /* Not a security boundary (curl keeps its own copies), just tidy. */
    memset(c->password, 0, strlen(c->password));
    free(c->password);
  }
  free(c->bearer);
  free(c->ca_file);
  free(c);
}

void imap_client_free(imap_client *c) {
  if (!c || c->closing) return;
  c->closing = 1;
  c->depth++;
  imap_op *op = c->running;
  if (op && op->state == OP_RUNNING) {
    c->running = NULL;
    http_call *call = op->call;
    /* The transfer's own completion comes later from http_client: the op
     * waits for it as an orphan, after its owner has been told. */
    imap_result res;
    memset(&res, 0, sizeof res);
    res.rc = IMAP_E_CANCELLED;
    res.error = "cancelled";
    deliver(c, op, &res);
    op->c = NULL;
    if (call)
      http_call_cancel(call);
    else
      op_free(op);
  }
  /* Callbacks may cancel queued ops meanwhile: drain both lists. */
  for (;;) {
    op = list_pop(&c->queue, &c->queue_tail);
    if (!op) op = list_pop(&c->cancelled, &c->cancelled_tail);
    if (!op) break;
    finish_error(op, IMAP_E_CANCELLED, 0, "cancelled");
  }
  ev_timer_stop(c->loop, &c->defer);
  if (c->depth > 1) {
    c->depth--;
    c->free_later = 1;
    return;
  }
  c->depth = 0;
  client_destroy(c);
}
