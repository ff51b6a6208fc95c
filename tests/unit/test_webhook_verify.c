/*
 * webhook_verify: each preset against the vendor's published or derived
 * vector, read in place from conformance/examples/webhook-signature-vectors.json;
 * tampering, missing and malformed headers, replay windows, several Stripe
 * signatures, the generic hmac block (hex, base64, timestamps, other
 * digests), the messages for bad `verify:` values, and that no refusal
 * reason ever carries the secret or the expected signature.
 *
 * Sources of the schemes and vectors:
 *   GitHub    https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
 *             (documented vector)
 *   Slack     https://api.slack.com/authentication/verifying-requests-from-slack
 *             (documented vector)
 *   Stripe    https://docs.stripe.com/webhooks#verify-manually (derived vector)
 *   Typeform  https://www.typeform.com/developers/webhooks/secure-your-webhooks/
 *             (derived vector; the payload page is
 *             https://www.typeform.com/developers/webhooks/example-payload/)
 *   HMAC-SHA-256/512: RFC 4231 test case 2; HMAC-SHA-1: RFC 2202 test case 2.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "testutil.h"
#include "triggers/webhook_verify.h"

#define VECTORS PROMPTD_SHARED_DIR "/conformance/examples/webhook-signature-vectors.json"

static cJSON *g_vec;

static int setup(void **state) {
  (void)state;
  char *text = tu_read_file(VECTORS, NULL);
  if (!text) return -1;
  g_vec = cJSON_Parse(text);
  free(text);
  return g_vec ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  cJSON_Delete(g_vec);
  return 0;
}

static const char *vec(const char *name, const char *key) {
  const cJSON *v =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g_vec, name), key);
  if (!cJSON_IsString(v)) fail_msg("vector %s.%s missing", name, key);
  return v->valuestring;
}

/* ---- a request's headers ---- */

typedef struct headers {
  const char *name[4], *value[4];
  size_t n;
} headers;

static const char *lookup(void *ud, const char *name) {
  const headers *h = ud;
  for (size_t i = 0; i < h->n; i++)
    if (!strcasecmp(h->name[i], name)) return h->value[i];
  return NULL;
}

static headers hdr1(const char *n1, const char *v1) { return (headers){{n1}, {v1}, 1}; }
static headers hdr2(const char *n1, const char *v1, const char *n2, const char *v2) {
  return (headers){{n1, n2}, {v1, v2}, 2};
}

/* ---- verifiers ---- */

static webhook_verifier *make(const char *json) {
  perr e = {{0}};
  cJSON *j = cJSON_Parse(json);
  if (!j) j = cJSON_CreateString(json); /* a bare preset name */
  webhook_verifier *v = webhook_verifier_new(j, &e);
  cJSON_Delete(j);
  if (!v) fail_msg("%s: %s", json, e.msg);
  return v;
}

/* Secrets and expected signatures seen so far: no reason may hold one. */
static const char *g_forbidden[32];
static size_t g_nforbidden;

static void forbid(const char *s) {
  assert_true(g_nforbidden < sizeof g_forbidden / sizeof g_forbidden[0]);
  g_forbidden[g_nforbidden++] = s;
}

static int run(const webhook_verifier *v, const char *secret, headers *h, const char *body,
               int64_t now, char *why, size_t why_len) {
  int rc =
      webhook_verify(v, secret, strlen(secret), lookup, h, body, strlen(body), now, why, why_len);
  for (size_t i = 0; i < g_nforbidden; i++) {
    const char *f = g_forbidden[i];
    const char *eq = strchr(f, '=');
    /* Check the bare signature too, without its "sha256=" or "v1=" label. */
    if (strstr(why, f) || (eq && eq[1] && strstr(why, eq + 1)))
      fail_msg("reason '%s' holds a secret or expected signature", why);
  }
  return rc;
}

static void accepted(const webhook_verifier *v, const char *secret, headers h, const char *body,
                     int64_t now) {
  char why[256] = "";
  if (run(v, secret, &h, body, now, why, sizeof why)) fail_msg("refused: %s", why);
  assert_string_equal(why, "");
}

static void refused(const webhook_verifier *v, const char *secret, headers h, const char *body,
                    int64_t now, const char *reason) {
  char why[256] = "";
  assert_int_equal(run(v, secret, &h, body, now, why, sizeof why), -1);
  if (!strstr(why, reason)) fail_msg("reason '%s' lacks '%s'", why, reason);
}

/* s with byte i changed to another character of the same class. */
static char *flip(const char *s, size_t i) {
  char *c = strdup(s);
  assert_non_null(c);
  assert_true(i < strlen(c));
  c[i] = c[i] == 'a' ? 'b' : c[i] == 'A' ? 'B' : c[i] == '0' ? '1' : 'a';
  return c;
}

/* ---- presets ---- */

static void test_github(void **state) {
  (void)state;
  const char *secret = vec("github", "secret"), *body = vec("github", "payload");
  const char *name = vec("github", "header"), *sig = vec("github", "expected");
  forbid(secret);
  forbid(sig);
  webhook_verifier *v = make("github");
  assert_string_equal(webhook_verifier_name(v), "github");
  accepted(v, secret, hdr1(name, sig), body, 0);
  /* Header names are the caller's to match case-insensitively. */
  accepted(v, secret, hdr1("x-hub-signature-256", sig), body, 0);

  char *b = flip(body, 0);
  refused(v, secret, hdr1(name, sig), b, 0, "signature mismatch");
  free(b);
  char *s = flip(sig, strlen(sig) - 1);
  refused(v, secret, hdr1(name, s), body, 0, "signature mismatch");
  free(s);
  refused(v, "It's a Secret to Everybodz", hdr1(name, sig), body, 0, "signature mismatch");
  refused(v, secret, hdr1("X-Other", sig), body, 0, "missing header X-Hub-Signature-256");
  refused(v, secret, hdr1(name, sig + 7), body, 0, "expected the prefix \"sha256=\"");
  refused(v, secret, hdr1(name, "sha256=757107ea"), body, 0, "expected 64 hex digits");
  refused(v, secret,
          hdr1(name, "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
          body, 0, "malformed header X-Hub-Signature-256");
  refused(v, "", hdr1(name, sig), body, 0, "no secret");

  /* Hex case does not matter: the MAC is compared as bytes. */
  char *upper = strdup(sig);
  for (char *p = upper + 7; *p; p++)
    if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
  accepted(v, secret, hdr1(name, upper), body, 0);
  free(upper);
  webhook_verifier_free(v);
}

static void test_slack(void **state) {
  (void)state;
  const char *secret = vec("slack", "secret"), *body = vec("slack", "payload");
  const char *sig = vec("slack", "expected"), *ts = vec("slack", "timestamp");
  const char *sh = vec("slack", "header"), *th = vec("slack", "timestamp_header");
  forbid(secret);
  forbid(sig);
  int64_t t = strtoll(ts, NULL, 10);
  webhook_verifier *v = make("slack");

  /* The vector is years old: "now" sits next to its timestamp. */
  accepted(v, secret, hdr2(sh, sig, th, ts), body, t);
  accepted(v, secret, hdr2(sh, sig, th, ts), body, t + 300);
  accepted(v, secret, hdr2(sh, sig, th, ts), body, t - 300);
  refused(v, secret, hdr2(sh, sig, th, ts), body, t + 301, "outside tolerance");
  refused(v, secret, hdr2(sh, sig, th, ts), body, t - 301, "in the future");
  refused(v, secret, hdr2(sh, sig, th, ts), body, 1700000000, "outside tolerance");

  char *b = flip(body, 10);
  refused(v, secret, hdr2(sh, sig, th, ts), b, t, "signature mismatch");
  free(b);
  char *s = flip(sig, 3);
  refused(v, secret, hdr2(sh, s, th, ts), body, t, "signature mismatch");
  free(s);
  /* The timestamp is signed: moving it into the window breaks the MAC. */
  refused(v, secret, hdr2(sh, sig, th, "1531420619"), body, t, "signature mismatch");

  refused(v, secret, hdr1(th, ts), body, t, "missing header X-Slack-Signature");
  refused(v, secret, hdr1(sh, sig), body, t, "missing header X-Slack-Request-Timestamp");
  refused(v, secret, hdr2(sh, sig, th, "15314206l8"), body, t,
          "malformed header X-Slack-Request-Timestamp");
  refused(v, secret, hdr2(sh, sig, th, "1531420618000"), body, t, "unix seconds");
  refused(v, secret, hdr2(sh, sig + 3, th, ts), body, t, "expected the prefix \"v0=\"");

  /* The derived vector, same scheme, another secret and body. */
  const char *s2 = vec("slack_derived", "secret"), *b2 = vec("slack_derived", "payload");
  const char *sig2 = vec("slack_derived", "expected");
  forbid(s2);
  forbid(sig2);
  accepted(v, s2, hdr2(sh, sig2, th, vec("slack_derived", "timestamp")), b2, t);
  refused(v, s2, hdr2(sh, sig, th, ts), b2, t, "signature mismatch");
  webhook_verifier_free(v);
}

static void test_stripe(void **state) {
  (void)state;
  const char *secret = vec("stripe_derived", "secret"), *body = vec("stripe_derived", "payload");
  const char *h = vec("stripe_derived", "header"), *sig = vec("stripe_derived", "expected");
  int64_t t = strtoll(vec("stripe_derived", "timestamp"), NULL, 10);
  forbid(secret);
  forbid(strstr(sig, "v1="));
  webhook_verifier *v = make("stripe");
  accepted(v, secret, hdr1(h, sig), body, t);
  accepted(v, secret, hdr1(h, sig), body, t + 300);
  refused(v, secret, hdr1(h, sig), body, t + 301, "outside tolerance");
  refused(v, secret, hdr1(h, sig), body, t - 301, "outside tolerance");

  const char *mac = strstr(sig, "v1=") + 3;
  const char *wrong = "5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd";
  char multi[512];
  /* During a secret rotation Stripe sends one v1 per secret: any may match. */
  snprintf(multi, sizeof multi, "t=%lld,v1=%s,v1=%s,v0=%s", (long long)t, wrong, mac, wrong);
  accepted(v, secret, hdr1(h, multi), body, t);
  snprintf(multi, sizeof multi, "t=%lld, v1=%s, v1=%s", (long long)t, mac, wrong);
  accepted(v, secret, hdr1(h, multi), body, t);
  snprintf(multi, sizeof multi, "v1=%s,t=%lld", mac, (long long)t);
  accepted(v, secret, hdr1(h, multi), body, t);
  snprintf(multi, sizeof multi, "t=%lld,v1=%s,v1=%s", (long long)t, wrong, wrong);
  refused(v, secret, hdr1(h, multi), body, t, "signature mismatch");
  /* A v0 MAC is not accepted in place of v1. */
  snprintf(multi, sizeof multi, "t=%lld,v0=%s", (long long)t, mac);
  refused(v, secret, hdr1(h, multi), body, t, "no v1 signature");

  char *b = flip(body, 12);
  refused(v, secret, hdr1(h, sig), b, t, "signature mismatch");
  free(b);
  char *s = flip(sig, strlen(sig) - 2);
  refused(v, secret, hdr1(h, s), body, t, "signature mismatch");
  free(s);
  snprintf(multi, sizeof multi, "t=%lld,v1=%s", (long long)t + 1, mac);
  refused(v, secret, hdr1(h, multi), body, t, "signature mismatch");

  refused(v, secret, hdr1("X-Other", sig), body, t, "missing header Stripe-Signature");
  snprintf(multi, sizeof multi, "v1=%s", mac);
  refused(v, secret, hdr1(h, multi), body, t, "no t= timestamp");
  snprintf(multi, sizeof multi, "t=%lld,t=%lld,v1=%s", (long long)t, (long long)t, mac);
  refused(v, secret, hdr1(h, multi), body, t, "more than one t=");
  refused(v, secret, hdr1(h, "garbage"), body, t, "malformed header Stripe-Signature");
  snprintf(multi, sizeof multi, "t=later,v1=%s", mac);
  refused(v, secret, hdr1(h, multi), body, t, "unix seconds");
  webhook_verifier_free(v);
}

static void test_typeform(void **state) {
  (void)state;
  const char *secret = vec("typeform_derived", "secret"),
             *body = vec("typeform_derived", "payload");
  const char *h = vec("typeform_derived", "header"), *sig = vec("typeform_derived", "expected");
  forbid(secret);
  forbid(sig);
  webhook_verifier *v = make("typeform");
  accepted(v, secret, hdr1(h, sig), body, 0);
  /* Unpadded base64 carries the same bytes. */
  char *nopad = strdup(sig);
  nopad[strlen(nopad) - 1] = '\0';
  accepted(v, secret, hdr1(h, nopad), body, 0);
  free(nopad);

  char *b = flip(body, 4);
  refused(v, secret, hdr1(h, sig), b, 0, "signature mismatch");
  free(b);
  char *s = flip(sig, 10);
  refused(v, secret, hdr1(h, s), body, 0, "signature mismatch");
  free(s);
  refused(v, secret, hdr1("X-Hub-Signature-256", sig), body, 0,
          "missing header Typeform-Signature");
  refused(v, secret, hdr1(h, "sha256=dXEH6g6y!J/CESIczphLijdXC211hsIsRvQ3nIsEPhc="), body, 0,
          "expected 44 base64 characters");
  refused(v, secret, hdr1(h, "sha256=dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEP="), body, 0,
          "malformed header Typeform-Signature");
  refused(v, secret, hdr1(h, "sha1=dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc="), body, 0,
          "expected the prefix \"sha256=\"");
  webhook_verifier_free(v);
}

/* ---- the generic block ---- */

static void test_hmac_hex_and_base64(void **state) {
  (void)state;
  const char *secret = vec("github", "secret"), *body = vec("github", "payload");
  forbid(secret);
  forbid(vec("github", "expected"));
  forbid(vec("typeform_derived", "expected"));

  webhook_verifier *v = make("{\"hmac\":{\"header\":\"X-Signature\",\"prefix\":\"sha256=\"}}");
  assert_string_equal(webhook_verifier_name(v), "hmac");
  accepted(v, secret, hdr1("X-Signature", vec("github", "expected")), body, 0);
  refused(v, secret, hdr1("X-Signature", vec("github", "expected") + 7), body, 0,
          "expected the prefix");
  refused(v, secret, hdr1("X-Hub-Signature-256", vec("github", "expected")), body, 0,
          "missing header X-Signature");
  webhook_verifier_free(v);

  /* No prefix: the header is the bare hex MAC. */
  v = make("{\"hmac\":{\"header\":\"X-Signature\",\"encoding\":\"hex\"}}");
  accepted(v, secret, hdr1("X-Signature", vec("github", "expected") + 7), body, 0);
  refused(v, secret, hdr1("X-Signature", vec("github", "expected")), body, 0, "expected 64 hex");
  webhook_verifier_free(v);

  v = make(
      "{\"hmac\":{\"header\":\"X-Signature\",\"encoding\":\"base64\",\"prefix\":\"sha256=\"}}");
  accepted(v, secret, hdr1("X-Signature", vec("typeform_derived", "expected")), body, 0);
  char *b = flip(body, 0);
  refused(v, secret, hdr1("X-Signature", vec("typeform_derived", "expected")), b, 0,
          "signature mismatch");
  free(b);
  webhook_verifier_free(v);
}

static void test_hmac_timestamp(void **state) {
  (void)state;
  /* Stripe's scheme spelled out: "{timestamp}.{body}" is also the default. */
  const char *secret = vec("stripe_derived", "secret"), *body = vec("stripe_derived", "payload");
  const char *ts = vec("stripe_derived", "timestamp");
  const char *mac = strstr(vec("stripe_derived", "expected"), "v1=") + 3;
  int64_t t = strtoll(ts, NULL, 10);
  forbid(secret);
  forbid(mac);
  webhook_verifier *v =
      make("{\"hmac\":{\"header\":\"X-Sig\",\"timestamp_header\":\"X-Ts\",\"tolerance_s\":60}}");
  accepted(v, secret, hdr2("X-Sig", mac, "X-Ts", ts), body, t + 60);
  refused(v, secret, hdr2("X-Sig", mac, "X-Ts", ts), body, t + 61, "limit 60 s");
  refused(v, secret, hdr1("X-Sig", mac), body, t, "missing header X-Ts");
  webhook_verifier_free(v);

  v = make(
      "{\"hmac\":{\"header\":\"X-Sig\",\"timestamp_header\":\"X-Ts\","
      "\"signed\":\"{timestamp}.{body}\"}}");
  accepted(v, secret, hdr2("X-Sig", mac, "X-Ts", ts), body, t - 300);
  refused(v, secret, hdr2("X-Sig", mac, "X-Ts", ts), body, t - 301, "in the future");
  webhook_verifier_free(v);

  /* Slack's scheme spelled out. */
  const char *ssec = vec("slack", "secret");
  forbid(ssec);
  v = make(
      "{\"hmac\":{\"header\":\"X-Slack-Signature\",\"prefix\":\"v0=\","
      "\"timestamp_header\":\"X-Slack-Request-Timestamp\",\"signed\":\"v0:{timestamp}:{body}\"}}");
  accepted(v, ssec,
           hdr2("X-Slack-Signature", vec("slack", "expected"), "X-Slack-Request-Timestamp",
                vec("slack", "timestamp")),
           vec("slack", "payload"), strtoll(vec("slack", "timestamp"), NULL, 10));
  webhook_verifier_free(v);
}

static void test_hmac_algorithms(void **state) {
  (void)state;
  forbid("Jefe");
  /* RFC 4231 test case 2 (SHA-256 and SHA-512) and RFC 2202 test case 2
   * (SHA-1): key "Jefe", data "what do ya want for nothing?". */
  const char *data = "what do ya want for nothing?";
  webhook_verifier *v = make("{\"hmac\":{\"header\":\"X-Sig\",\"algorithm\":\"sha256\"}}");
  accepted(v, "Jefe",
           hdr1("X-Sig", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"), data,
           0);
  webhook_verifier_free(v);
  v = make("{\"hmac\":{\"header\":\"X-Sig\",\"algorithm\":\"sha512\"}}");
  accepted(v, "Jefe",
           hdr1("X-Sig",
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
                "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
           data, 0);
  refused(v, "Jefe",
          hdr1("X-Sig", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"), data,
          0, "expected 128 hex digits");
  webhook_verifier_free(v);
  v = make("{\"hmac\":{\"header\":\"X-Sig\",\"algorithm\":\"sha1\",\"prefix\":\"sha1=\"}}");
  accepted(v, "Jefe", hdr1("X-Sig", "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"), data, 0);
  webhook_verifier_free(v);
}

/* An empty body is signed like any other; a NULL verifier or why is safe. */
static void test_edges(void **state) {
  (void)state;
  webhook_verifier *v = make("{\"hmac\":{\"header\":\"X-Sig\"}}");
  /* HMAC-SHA256("key", "") */
  accepted(v, "key",
           hdr1("X-Sig", "5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0"), "",
           0);
  headers h = hdr1("X-Sig", "00");
  assert_int_equal(webhook_verify(v, "key", 3, lookup, &h, "", 0, 0, NULL, 0), -1);
  webhook_verifier_free(v);
  char why[64];
  assert_int_equal(webhook_verify(NULL, "key", 3, lookup, &h, "", 0, 0, why, sizeof why), -1);
  webhook_verifier_free(NULL);
}

/* ---- validation messages ---- */

static void invalid(const char *json, const char *want) {
  perr e = {{0}};
  cJSON *j = cJSON_Parse(json);
  assert_non_null(j);
  assert_int_equal(webhook_verify_validate(j, &e), -1);
  if (!strstr(e.msg, want)) fail_msg("%s: message '%s' lacks '%s'", json, e.msg, want);
  assert_null(webhook_verifier_new(j, &e));
  if (!strstr(e.msg, want)) fail_msg("%s: message '%s' lacks '%s'", json, e.msg, want);
  cJSON_Delete(j);
}

static void valid(const char *json) {
  perr e = {{0}};
  cJSON *j = cJSON_Parse(json);
  assert_non_null(j);
  if (webhook_verify_validate(j, &e)) fail_msg("%s: %s", json, e.msg);
  cJSON_Delete(j);
}

static void test_validate(void **state) {
  (void)state;
  valid("\"github\"");
  valid("\"stripe\"");
  valid("\"slack\"");
  valid("\"typeform\"");
  valid("{\"hmac\":{\"header\":\"X-Signature\"}}");
  valid(
      "{\"hmac\":{\"header\":\"X-Signature\",\"encoding\":\"base64\",\"prefix\":\"sha256=\","
      "\"algorithm\":\"sha512\",\"timestamp_header\":\"X-Timestamp\",\"tolerance_s\":600,"
      "\"signed\":\"{timestamp}:{body}\"}}");

  invalid("\"githbu\"",
          "verify: expected a preset (github, stripe, slack, typeform), got "
          "\"githbu\" (did you mean 'github'?)");
  invalid("\"GitHub\"", "did you mean 'github'?");
  invalid("\"webhook\"", "verify: expected a preset");
  invalid("\"hmac\"", "verify: hmac needs its settings");
  invalid("42", "verify: expected a preset (github, stripe, slack, typeform) or a mapping");
  invalid("null", "got null");
  invalid("[\"github\"]", "got a list");
  invalid("{}", "got an empty mapping");
  invalid("{\"hmca\":{\"header\":\"X\"}}", "verify: unknown scheme 'hmca' (did you mean 'hmac'?");
  invalid("{\"github\":{}}", "verify.github: a preset takes no settings; write verify: github");
  invalid("{\"hmac\":{\"header\":\"X\"},\"github\":null}",
          "verify.github: only one scheme per trigger");
  invalid("{\"hmac\":\"X-Signature\"}", "verify.hmac: expected a mapping, got \"X-Signature\"");

  invalid("{\"hmac\":{}}", "verify.hmac: missing required field 'header'");
  invalid("{\"hmac\":{\"header\":\"X\",\"encodnig\":\"hex\"}}",
          "verify.hmac: unknown field 'encodnig' (did you mean 'encoding'?");
  invalid("{\"hmac\":{\"header\":\"X\",\"secret\":\"abc\"}}",
          "verify.hmac: unknown field 'secret' (allowed here: header, encoding");
  invalid(
      "{\"hmac\":{\"header\":\"X\",\"encoding\":\"hexa\"}}",
      "verify.hmac.encoding: expected one of (hex, base64), got \"hexa\" (did you mean 'hex'?)");
  invalid("{\"hmac\":{\"header\":\"X\",\"encoding\":\"base32\"}}", "got \"base32\"");
  invalid("{\"hmac\":{\"header\":\"X\",\"encoding\":true}}", "got true");
  invalid("{\"hmac\":{\"header\":\"X\",\"algorithm\":\"md5\"}}",
          "verify.hmac.algorithm: expected one of (sha256, sha512, sha1), got \"md5\"");
  invalid("{\"hmac\":{\"header\":\"X Sig\"}}",
          "verify.hmac.header: character 2 may not appear in a header name");
  invalid("{\"hmac\":{\"header\":\"\"}}", "verify.hmac.header: expected a header name of 1 to 64");
  invalid("{\"hmac\":{\"header\":7}}", "verify.hmac.header: expected a header name, got 7");
  invalid("{\"hmac\":{\"header\":\"X\",\"prefix\":\"sha256=\\n\"}}",
          "verify.hmac.prefix: character 8 is not printable ASCII");
  invalid("{\"hmac\":{\"header\":\"X\",\"tolerance_s\":300}}",
          "verify.hmac.tolerance_s: needs timestamp_header");
  invalid("{\"hmac\":{\"header\":\"X\",\"timestamp_header\":\"T\",\"tolerance_s\":0}}",
          "verify.hmac.tolerance_s: expected a whole number of seconds from 1 to 86400, got 0");
  invalid("{\"hmac\":{\"header\":\"X\",\"timestamp_header\":\"T\",\"tolerance_s\":2.5}}",
          "got 2.5");
  invalid("{\"hmac\":{\"header\":\"X\",\"timestamp_header\":\"T\",\"tolerance_s\":1e300}}",
          "got 1e+300");
  invalid("{\"hmac\":{\"header\":\"X\",\"timestamp_header\":\"T\",\"tolerance_s\":\"300\"}}",
          "got \"300\"");
  invalid("{\"hmac\":{\"header\":\"X\",\"timestamp_header\":\"x\"}}",
          "verify.hmac.timestamp_header: must differ from header");
  invalid("{\"hmac\":{\"header\":\"X\",\"signed\":\"{timestamp}\"}}",
          "verify.hmac.signed: expected {body} exactly once, found it 0 times");
  invalid("{\"hmac\":{\"header\":\"X\",\"signed\":\"{body}{body}\"}}", "found it 2 times");
  invalid("{\"hmac\":{\"header\":\"X\",\"signed\":\"{timestamp}.{body}\"}}",
          "verify.hmac.signed: {timestamp} needs timestamp_header");
  invalid("{\"hmac\":{\"header\":\"X\",\"timestamp_header\":\"T\",\"signed\":\"{body}\"}}",
          "verify.hmac.signed: must contain {timestamp} when timestamp_header is set");
  invalid("{\"hmac\":{\"header\":\"X\",\"signed\":\"{id}.{body}\"}}",
          "verify.hmac.signed: '{' at character 1 opens no placeholder");
  invalid("{\"hmac\":{\"header\":\"X\",\"signed\":\"\"}}", "verify.hmac.signed: expected 1 to 256");
  /* What an unquoted `signed: {timestamp}.{body}` becomes in YAML. */
  invalid("{\"hmac\":{\"header\":\"X\",\"signed\":{\"timestamp\":null}}}",
          "verify.hmac.signed: expected a string, got a mapping (braces start a YAML mapping");

  perr e = {{0}};
  assert_int_equal(webhook_verify_validate(NULL, &e), -1);
  assert_string_equal(e.msg, "verify: missing");
  assert_int_equal(webhook_verify_validate(NULL, NULL), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_github),
      cmocka_unit_test(test_slack),
      cmocka_unit_test(test_stripe),
      cmocka_unit_test(test_typeform),
      cmocka_unit_test(test_hmac_hex_and_base64),
      cmocka_unit_test(test_hmac_timestamp),
      cmocka_unit_test(test_hmac_algorithms),
      cmocka_unit_test(test_edges),
      cmocka_unit_test(test_validate),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
