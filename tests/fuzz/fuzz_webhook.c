/*
 * fuzz_webhook: arbitrary webhook requests through the same steps the
 * router takes (method check, signature check, request -> event), checking
 * after each that what came out is something the rest of promptd accepts.
 *
 * Input format (deterministic, so every saved input replays the same way):
 *
 *   byte 0      trigger configuration: (byte - '0') mod NCONFIGS, see configs[]
 *   byte 1      signature scheme:      (byte - '0') mod NSCHEMES, see schemes[]
 *   then text:
 *     METHOD SP TARGET             TARGET is path[?query]; no SP: path "/"
 *     Name: value                  header lines, until an empty line
 *     <empty line>
 *     body                         every remaining byte, NULs included
 *
 * Lines end at LF; a CR before it is dropped.  A header line without a
 * colon is skipped.  The query is split on '&' and '=' and decoded the way
 * libmicrohttpd hands it to promptd: "+" is a space, %XX a byte (a
 * malformed escape stays literal), a decoded NUL ends the C string, and a
 * name without '=' gets "".  Past 64 headers or 64 query pairs the rest
 * are dropped.  Seeds are therefore plain text starting with
 * two digits, e.g. "21POST /hooks/a?x=1\nContent-Type: text/plain\n\nhi".
 *
 * Why the router's order is kept: the builder only ever sees a
 * method the recipe allows and the recipe's own path, so a request failing
 * those is answered 404/405 here too; holding the builder to inputs it can
 * never get would report bugs that cannot happen.  The signature check, on
 * the other hand, does not gate the builder: a sender holding the secret can
 * sign anything, and gating on an HMAC would hide the builder from the
 * fuzzer.
 *
 * Invariants (a broken one aborts):
 *   verify   returns 0 or -1; the reason is NUL-terminated, non-empty on -1,
 *            and never holds the secret.
 *   build 0  the payload is len bytes of UTF-8 without NUL that passes
 *            intake_check_payload and parses (as intake parses it) to one
 *            object holding method, path, headers, query and body; method
 *            and path are the request's; no credential header is kept;
 *            with map: typeform it holds fields; a dedupe key is non-empty
 *            UTF-8, and for dedupe: header:NAME it is that header's value.
 *   build !0 the status is 400, 415 or 500, nothing is handed out, and the
 *            reason is non-empty and NUL-terminated within its buffer.
 *   make     webhook_event_make (the router's call) gives the same status,
 *            payload, dedupe key and reason as webhook_event_build, and
 *            the event it hands over prints as its payload, which prints
 *            the same again once parsed.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/intake.h"
#include "core/utf8.h"
#include "triggers/webhook_route.h"
#include "triggers/webhook_verify.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define HOOK_PATH "/hooks/a"
#define SECRET "It's a Secret to Everybody"
/* Fixed so that timestamped seeds stay inside their window forever. */
#define NOW_S ((int64_t)1700000000)
#define MAX_PAIRS 64

static const char *const configs[] = {
    "{\"path\":\"" HOOK_PATH "\"}",
    "{\"path\":\"" HOOK_PATH "\",\"dedupe\":\"header:Idempotency-Key\"}",
    "{\"path\":\"" HOOK_PATH "\",\"dedupe\":\"body:id\"}",
    "{\"path\":\"" HOOK_PATH "\",\"map\":\"typeform\",\"dedupe\":\"body:event_id\"}",
    "{\"path\":\"" HOOK_PATH "\",\"methods\":[\"POST\",\"GET\"]}",
    "{\"path\":\"" HOOK_PATH "\",\"methods\":[\"PUT\"],\"dedupe\":\"body:items.0.sku\"}",
};
#define NCONFIGS (sizeof configs / sizeof configs[0])

/* NULL: no verify key (the recipe does not sign). */
static const char *const schemes[] = {
    NULL,
    "\"github\"",
    "\"stripe\"",
    "\"slack\"",
    "\"typeform\"",
    "{\"hmac\":{\"header\":\"X-Signature\",\"prefix\":\"sha256=\"}}",
    "{\"hmac\":{\"header\":\"X-Sig\",\"encoding\":\"base64\",\"algorithm\":\"sha512\","
    "\"timestamp_header\":\"X-Ts\",\"tolerance_s\":60,\"signed\":\"{timestamp}:{body}\"}}",
};
#define NSCHEMES (sizeof schemes / sizeof schemes[0])

static size_t pick(uint8_t b, size_t n) {
  int d = (int)b - '0';
  return (size_t)(((d % (int)n) + (int)n) % (int)n);
}

/* The request's strings all point into one owned, NUL-separated copy of
 * the input, so a single free releases them. */
typedef struct request_text {
  char *text;
  webhook_kv headers[MAX_PAIRS], query[MAX_PAIRS];
  webhook_request rq;
} request_text;

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* In place; the result is never longer than the input. */
static void query_unescape(char *s) {
  char *o = s;
  for (const char *p = s; *p; p++) {
    int hi, lo;
    if (*p == '+') {
      *o++ = ' ';
    } else if (*p == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0) {
      *o++ = (char)(hi * 16 + lo);
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
}

static void parse_query(request_text *t, char *q) {
  while (q && *q) {
    char *amp = strchr(q, '&');
    if (amp) *amp = '\0';
    if (*q && t->rq.nquery < MAX_PAIRS) {
      char *eq = strchr(q, '=');
      if (eq) *eq = '\0';
      query_unescape(q);
      if (eq) query_unescape(eq + 1);
      t->query[t->rq.nquery++] = (webhook_kv){q, eq ? eq + 1 : ""};
    }
    q = amp ? amp + 1 : NULL;
  }
}

/* Cuts the line starting at *at (ending at LF or end) and moves *at past
 * it; NULL at the end of the text. */
static char *next_line(char *text, size_t len, size_t *at) {
  if (*at >= len) return NULL;
  char *line = text + *at;
  char *lf = memchr(line, '\n', len - *at);
  size_t n = lf ? (size_t)(lf - line) : len - *at;
  *at += n + (lf != NULL);
  line[n] = '\0';
  if (n && line[n - 1] == '\r') line[n - 1] = '\0';
  return line;
}

static int request_parse(request_text *t, const uint8_t *data, size_t size) {
  memset(t, 0, sizeof *t);
  /* One extra byte: the body ends in a NUL like the server's buffer does. */
  t->text = malloc(size + 1);
  if (!t->text) return -1;
  if (size) memcpy(t->text, data, size);
  t->text[size] = '\0';
  t->rq.headers = t->headers;
  t->rq.query = t->query;
  size_t at = 0;
  char *line = next_line(t->text, size, &at);
  if (!line) line = t->text + size; /* "" */
  char *sp = strchr(line, ' ');
  t->rq.method = line;
  t->rq.path = "/";
  if (sp) {
    *sp = '\0';
    char *target = sp + 1, *qm = strchr(target, '?');
    if (qm) *qm = '\0';
    t->rq.path = target;
    parse_query(t, qm ? qm + 1 : NULL);
  }
  while ((line = next_line(t->text, size, &at)) != NULL && *line) {
    char *colon = strchr(line, ':');
    if (!colon || t->rq.nheaders >= MAX_PAIRS) continue;
    *colon = '\0';
    char *value = colon + 1;
    while (*value == ' ' || *value == '\t') value++;
    t->headers[t->rq.nheaders++] = (webhook_kv){line, value};
  }
  t->rq.body = t->text + at;
  t->rq.body_len = size - at;
  return 0;
}

static const char *lookup(void *ud, const char *name) { return webhook_header(ud, name); }

static int terminated(const char *s, size_t cap) { return memchr(s, '\0', cap) != NULL; }

static void check_verify(const char *scheme, const webhook_request *rq) {
  cJSON *j = cJSON_Parse(scheme);
  CHECK(j);
  perr e;
  webhook_verifier *v = webhook_verifier_new(j, &e);
  CHECK(v);
  char why[200];
  memset(why, 'x', sizeof why);
  int rc = webhook_verify(v, SECRET, sizeof SECRET - 1, lookup, (void *)rq, rq->body, rq->body_len,
                          NOW_S, why, sizeof why);
  CHECK(rc == 0 || rc == -1);
  CHECK(terminated(why, sizeof why));
  CHECK(rc == 0 || why[0] != '\0');
  CHECK(!strstr(why, SECRET));
  webhook_verifier_free(v);
  cJSON_Delete(j);
}

static const cJSON *member(const cJSON *o, const char *name) {
  return cJSON_GetObjectItemCaseSensitive(o, name);
}

static void check_event(const cJSON *cfg, const webhook_request *rq, const char *payload,
                        size_t len, const char *dedupe) {
  CHECK(payload && len == strlen(payload));
  perr e;
  CHECK(intake_check_payload(payload, len, 0, &e) == 0);
  /* intake_event parses exactly so: a payload it cannot parse would turn an
   * accepted request into a refusal after the builder said yes. */
  const char *end = NULL;
  cJSON *ev = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
  CHECK(ev && cJSON_IsObject(ev));
  while (end && end < payload + len && strchr(" \t\r\n", *end)) end++;
  CHECK(end == payload + len);
  const cJSON *method = member(ev, "method"), *path = member(ev, "path");
  const cJSON *headers = member(ev, "headers"), *h;
  CHECK(cJSON_IsString(method) && strcmp(method->valuestring, rq->method) == 0);
  CHECK(cJSON_IsString(path) && strcmp(path->valuestring, rq->path) == 0);
  CHECK(cJSON_IsObject(headers));
  CHECK(cJSON_IsObject(member(ev, "query")));
  CHECK(member(ev, "body") != NULL);
  cJSON_ArrayForEach(h, headers) {
    CHECK(strcasecmp(h->string, "authorization") != 0);
    CHECK(strcasecmp(h->string, "proxy-authorization") != 0);
    CHECK(strcasecmp(h->string, "cookie") != 0);
  }
  const cJSON *map = member(cfg, "map");
  if (cJSON_IsString(map)) CHECK(cJSON_IsObject(member(ev, "fields")));
  if (dedupe) CHECK(*dedupe && utf8_valid(dedupe, strlen(dedupe), NULL));
  const cJSON *d = member(cfg, "dedupe");
  if (cJSON_IsString(d) && strncmp(d->valuestring, "header:", 7) == 0) {
    const char *v = webhook_header(rq, d->valuestring + 7);
    CHECK(v && *v ? dedupe && strcmp(dedupe, v) == 0 : dedupe == NULL);
  }
  cJSON_Delete(ev);
}

/* The router's path (webhook_event_make, whose event goes to intake
 * unparsed) and the plain webhook_event_build must agree, and the event
 * handed over must be what the payload says: intake stores one and runs
 * on the other. */
static void check_build(const cJSON *cfg, const webhook_request *rq) {
  char *payload = NULL, *dedupe = NULL, why[240];
  size_t len = 0;
  memset(why, 'x', sizeof why);
  int st = webhook_event_build(cfg, rq, &payload, &len, &dedupe, why, sizeof why);
  if (st == 0) {
    check_event(cfg, rq, payload, len, dedupe);
  } else {
    CHECK(st == 400 || st == 415 || st == 500);
    CHECK(payload == NULL && dedupe == NULL);
    CHECK(terminated(why, sizeof why) && why[0] != '\0');
  }
  cJSON *event2 = NULL;
  char *payload2 = NULL, *dedupe2 = NULL, why2[240];
  size_t len2 = 0;
  int st2 = webhook_event_make(cfg, rq, &event2, &payload2, &len2, &dedupe2, why2, sizeof why2);
  CHECK(st2 == st);
  if (st == 0) {
    CHECK(len2 == len && memcmp(payload2, payload, len) == 0);
    CHECK(dedupe ? dedupe2 && strcmp(dedupe2, dedupe) == 0 : dedupe2 == NULL);
    /* Compared as printed text: cJSON_Compare matches object members by
     * name, so two trees holding the same repeated key differ to it. */
    cJSON *parsed = cJSON_ParseWithLength(payload2, len2);
    char *again = parsed ? cJSON_PrintUnformatted(parsed) : NULL;
    char *shown = cJSON_PrintUnformatted(event2);
    CHECK(again && strcmp(again, payload2) == 0);
    CHECK(shown && strcmp(shown, payload2) == 0);
    free(again);
    free(shown);
    cJSON_Delete(parsed);
  } else {
    CHECK(event2 == NULL && payload2 == NULL && dedupe2 == NULL);
    CHECK(strcmp(why2, why) == 0);
  }
  cJSON_Delete(event2);
  free(payload2);
  free(dedupe2);
  free(payload);
  free(dedupe);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  request_text t;
  if (request_parse(&t, data + 2, size - 2)) return 0;
  cJSON *cfg = cJSON_Parse(configs[pick(data[0], NCONFIGS)]);
  CHECK(cfg);
  const char *scheme = schemes[pick(data[1], NSCHEMES)];
  const cJSON *route = member(cfg, "path");
  if (strcmp(t.rq.path, route->valuestring) == 0 && webhook_method_allowed(cfg, t.rq.method)) {
    if (scheme) check_verify(scheme, &t.rq);
    check_build(cfg, &t.rq);
  }
  cJSON_Delete(cfg);
  free(t.text);
  return 0;
}
