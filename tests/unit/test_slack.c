/*
 * action `slack`: validate's cross-field rules, prepare's rendering (Slack
 * escaping where text is mrkdwn, none elsewhere, Block Kit structure kept,
 * secrets left as references), classification against Slack's documented
 * answers in ../shared/conformance/examples/slack-*.json, Retry-After, and
 * the pacer on a real loop (spacing from the answer, FIFO, forget, hold).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/slack.h"
#include "core/connector.h"
#include "testutil.h"

static const action_kind *kind(void) {
  const action_kind *k = connectors_action("slack");
  assert_non_null(k);
  return k;
}

static cJSON *example(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/conformance/examples/%s", PROMPTD_SHARED_DIR, name);
  char *text = tu_read_file(path, NULL);
  if (!text) fail_msg("cannot read %s (is PROMPTD_SHARED_DIR right?)", path);
  cJSON *j = cJSON_Parse(text);
  free(text);
  assert_non_null(j);
  return j;
}

/* ---- validate ---------------------------------------------------------- */

static void refused(const char *cfg_json, const char *word) {
  cJSON *cfg = cJSON_Parse(cfg_json);
  assert_non_null(cfg);
  perr e = {{0}};
  if (!kind()->validate(cfg, &e)) fail_msg("accepted: %s", cfg_json);
  if (!strstr(e.msg, word)) fail_msg("message for %s lacks '%s': %s", cfg_json, word, e.msg);
  cJSON *in = NULL;
  assert_int_equal(kind()->prepare(cfg, NULL, NULL, &in, &e), -1);
  assert_null(in);
  cJSON_Delete(cfg);
}

static void test_validate(void **state) {
  (void)state;
  refused("{\"webhook_url\":\"env:A\",\"token\":\"env:B\",\"channel\":\"x\",\"text\":\"t\"}",
          "not both");
  refused("{\"text\":\"t\"}", "not neither");
  refused("{\"token\":\"env:B\",\"text\":\"t\"}", "token needs channel");
  refused("{\"webhook_url\":\"env:A\",\"channel\":\"x\",\"text\":\"t\"}",
          "channel goes with token");
  refused("{\"webhook_url\":\"env:A\",\"thread_ts\":\"1\",\"text\":\"t\"}", "thread_ts goes");
  refused("{\"webhook_url\":\"env:A\",\"api_url\":\"http://x\",\"text\":\"t\"}", "api_url goes");
  refused("{\"webhook_url\":\"env:A\"}", "text, blocks or both");
  refused("{\"webhook_url\":\"env:A\",\"blocks\":{\"type\":\"section\"}}", "a list");
  refused("{\"webhook_url\":\"env:A\",\"blocks\":[\"x\"]}", "blocks[0]");
  refused(
      "{\"webhook_url\":\"env:A\",\"blocks\":[{\"type\":\"section\",\"fields\":"
      "[{\"type\":\"mrkdwn\",\"text\":\"{{#open}}\"}]}]}",
      "blocks[0].fields[0].text");
  refused("{\"token\":\"env:B\",\"channel\":\"x\",\"text\":\"t\",\"api_url\":\"ftp://x\"}",
          "api_url");
  /* 51 blocks: one past Slack's limit. */
  cJSON *cfg = cJSON_Parse("{\"webhook_url\":\"env:A\",\"blocks\":[]}");
  cJSON *blocks = cJSON_GetObjectItem(cfg, "blocks");
  for (int i = 0; i < 51; i++) cJSON_AddItemToArray(blocks, cJSON_Parse("{\"type\":\"divider\"}"));
  perr e = {{0}};
  assert_int_equal(kind()->validate(cfg, &e), -1);
  assert_non_null(strstr(e.msg, "at most 50"));
  cJSON_DeleteItemFromArray(blocks, 0);
  assert_int_equal(kind()->validate(cfg, &e), 0);
  cJSON_Delete(cfg);
}

/* ---- prepare ----------------------------------------------------------- */

static cJSON *prepared(const char *cfg_json, const char *ctx_json) {
  cJSON *cfg = cJSON_Parse(cfg_json), *ctx = cJSON_Parse(ctx_json), *in = NULL;
  assert_non_null(cfg);
  assert_non_null(ctx);
  perr e = {{0}};
  render_env env = {0};
  if (kind()->prepare(cfg, ctx, &env, &in, &e)) fail_msg("prepare: %s", e.msg);
  cJSON_Delete(cfg);
  cJSON_Delete(ctx);
  return in;
}

static void assert_json(const cJSON *got, const char *want_json) {
  cJSON *want = cJSON_Parse(want_json);
  assert_non_null(want);
  if (!cJSON_Compare(got, want, 1)) {
    char *g = cJSON_PrintUnformatted(got);
    fail_msg("got %s\nwant %s", g, want_json);
  }
  cJSON_Delete(want);
}

static void test_prepare_webhook(void **state) {
  (void)state;
  cJSON *in = prepared(
      "{\"webhook_url\":\"env:SLACK_SALES_URL\",\"username\":\"{{event.who}}\","
      "\"icon_emoji\":\":robot_face:\","
      "\"text\":\"{{{event.at}}} lead {{event.name}} ({{event.score}}/10) <!here>\"}",
      "{\"event\":{\"name\":\"Ann <b> & \\\"Co\\\" &quot;\",\"score\":8,\"at\":\"<@U1>\","
      "\"who\":\"A&B\"}}");
  /* Values are escaped for Slack (& < > only); the template's own text and
   * raw tags are markup; a literal &quot; in a value survives as &amp;quot;. */
  assert_json(in,
              "{\"webhook_url\":\"env:SLACK_SALES_URL\",\"body\":{"
              "\"text\":\"<@U1> lead Ann &lt;b&gt; &amp; \\\"Co\\\" &amp;quot; (8/10) <!here>\","
              "\"username\":\"A&B\",\"icon_emoji\":\":robot_face:\"}}");
  cJSON_Delete(in);
}

static void test_prepare_blocks(void **state) {
  (void)state;
  /* The documented Block Kit example, its strings turned into templates. */
  cJSON *doc = example("slack-webhook-blocks.json");
  cJSON *cfg = cJSON_CreateObject();
  cJSON_AddStringToObject(cfg, "webhook_url", "env:HOOK");
  cJSON_AddStringToObject(cfg, "text", "{{event.name}} left a review");
  cJSON *blocks = cJSON_Duplicate(cJSON_GetObjectItem(doc, "blocks"), 1);
  cJSON *b1 = cJSON_GetArrayItem(blocks, 1);
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(b1, "text"), "text",
                            cJSON_CreateString("<https://example.com|{{event.hotel}}> :star:"));
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(b1, "accessory"), "image_url",
                            cJSON_CreateString("https://img.example/{{event.img}}"));
  cJSON_AddItemToArray(blocks, cJSON_Parse("{\"type\":\"context\",\"elements\":[{\"type\":"
                                           "\"plain_text\",\"text\":\"{{event.hotel}}\","
                                           "\"emoji\":true}]}"));
  cJSON_AddItemToObject(cfg, "blocks", blocks);
  char *cfg_text = cJSON_PrintUnformatted(cfg);
  cJSON *in = prepared(cfg_text,
                       "{\"event\":{\"name\":\"Danny\",\"hotel\":\"Overlook & <Co>\","
                       "\"img\":\"a.jpg?x=1&y=2\"}}");
  free(cfg_text);
  const cJSON *out = cJSON_GetObjectItem(cJSON_GetObjectItem(in, "body"), "blocks");
  assert_int_equal(cJSON_GetArraySize(out), 4);
  /* Untouched blocks come back exactly as documented. */
  assert_true(cJSON_Compare(cJSON_GetArrayItem(out, 0),
                            cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "blocks"), 0), 1));
  assert_true(cJSON_Compare(cJSON_GetArrayItem(out, 2),
                            cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "blocks"), 2), 1));
  const cJSON *o1 = cJSON_GetArrayItem(out, 1);
  assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o1, "text"), "text")->valuestring,
                      "<https://example.com|Overlook &amp; &lt;Co&gt;> :star:");
  assert_string_equal(
      cJSON_GetObjectItem(cJSON_GetObjectItem(o1, "accessory"), "image_url")->valuestring,
      "https://img.example/a.jpg?x=1&y=2");
  assert_string_equal(cJSON_GetObjectItem(o1, "block_id")->valuestring, "section567");
  const cJSON *el =
      cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(out, 3), "elements"), 0);
  assert_string_equal(cJSON_GetObjectItem(el, "text")->valuestring, "Overlook & <Co>");
  assert_true(cJSON_IsTrue(cJSON_GetObjectItem(el, "emoji")));
  cJSON_Delete(in);
  cJSON_Delete(cfg);
  cJSON_Delete(doc);
}

static void test_prepare_token(void **state) {
  (void)state;
  cJSON *in = prepared(
      "{\"token\":\"env:SLACK_BOT_TOKEN\",\"channel\":\"{{event.ch}}\","
      "\"text\":\"hi\",\"thread_ts\":\"{{steps.first.ts}}\","
      "\"api_url\":\"http://127.0.0.1:9/api//\"}",
      "{\"event\":{\"ch\":\"#sales\"},\"steps\":{}}");
  /* An empty thread_ts is left out: the message starts a thread of its own. */
  assert_json(in,
              "{\"url\":\"http://127.0.0.1:9/api/chat.postMessage\","
              "\"token\":\"env:SLACK_BOT_TOKEN\","
              "\"body\":{\"channel\":\"#sales\",\"text\":\"hi\"}}");
  cJSON_Delete(in);
  in = prepared(
      "{\"token\":\"env:T\",\"channel\":\"C1\",\"text\":\"hi\","
      "\"thread_ts\":\"{{steps.first.ts}}\"}",
      "{\"steps\":{\"first\":{\"ts\":\"1503435956.000247\"}}}");
  assert_json(in,
              "{\"url\":\"https://slack.com/api/chat.postMessage\",\"token\":\"env:T\","
              "\"body\":{\"channel\":\"C1\",\"text\":\"hi\","
              "\"thread_ts\":\"1503435956.000247\"}}");
  cJSON_Delete(in);
}

/* ---- classification ---------------------------------------------------- */

static void test_classify_webhook(void **state) {
  (void)state;
  cJSON *doc = example("slack-webhook-errors.json");
  slack_verdict v;
  const cJSON *ok = cJSON_GetObjectItem(doc, "success");
  const char *okbody = cJSON_GetObjectItem(ok, "body")->valuestring;
  slack_classify_webhook((long)cJSON_GetObjectItem(ok, "http_status")->valuedouble, NULL, okbody,
                         strlen(okbody), &v);
  assert_int_equal(v.cls, OUTCOME_OK);
  const cJSON *err;
  int checked = 0;
  cJSON_ArrayForEach(err, cJSON_GetObjectItem(doc, "errors")) {
    const cJSON *st = cJSON_GetObjectItem(err, "http_status");
    if (!cJSON_IsNumber(st)) continue; /* Slack does not say which status */
    const char *word = cJSON_GetObjectItem(err, "error")->valuestring;
    char body[160];
    snprintf(body, sizeof body, "%s\n", word);
    slack_classify_webhook((long)st->valuedouble, NULL, body, strlen(body), &v);
    outcome_class want =
        cJSON_IsTrue(cJSON_GetObjectItem(err, "retry")) ? OUTCOME_RETRY : OUTCOME_FAIL;
    if (v.cls != want) fail_msg("%s: class %d, want %d", word, v.cls, want);
    char detail[200];
    snprintf(detail, sizeof detail, "%s (HTTP %ld)", word, (long)st->valuedouble);
    assert_string_equal(v.detail, detail);
    assert_int_equal(v.retry_after_ms, -1);
    checked++;
  }
  assert_true(checked >= 6);
  /* 429 with Retry-After in seconds, as the document says. */
  const cJSON *rl = cJSON_GetObjectItem(doc, "rate_limited");
  assert_string_equal(cJSON_GetObjectItem(rl, "unit")->valuestring, "seconds");
  slack_classify_webhook(429, "30", "", 0, &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_int_equal(v.retry_after_ms, 30000);
  assert_string_equal(v.detail, "rate limited (HTTP 429)");
  /* A proxy's page is not quoted; a retry-after on a permanent error is
   * not kept. */
  const char *html = "<html><body>Bad Gateway</body></html>";
  slack_classify_webhook(502, NULL, html, strlen(html), &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_string_equal(v.detail, "HTTP 502");
  slack_classify_webhook(404, "5", "no_service", 10, &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_int_equal(v.retry_after_ms, -1);
  assert_string_equal(v.detail, "no_service (HTTP 404)");
  slack_classify_webhook(301, NULL, NULL, 0, &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  cJSON_Delete(doc);
}

static void classify_api_text(long status, const char *ra, const char *body, slack_verdict *v) {
  slack_classify_api(status, ra, body, body ? strlen(body) : 0, v);
}

static void test_classify_api(void **state) {
  (void)state;
  slack_verdict v;
  cJSON *okdoc = example("slack-chat-postmessage-ok.json");
  char *text = cJSON_PrintUnformatted(okdoc);
  classify_api_text(200, NULL, text, &v);
  free(text);
  assert_int_equal(v.cls, OUTCOME_OK);
  assert_string_equal(v.ts, "1503435956.000247");
  assert_string_equal(v.channel, "C1H9RESGL");
  cJSON_Delete(okdoc);
  cJSON *errdoc = example("slack-chat-postmessage-error.json");
  text = cJSON_PrintUnformatted(errdoc);
  classify_api_text(200, NULL, text, &v);
  free(text);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_string_equal(v.detail, "too_many_attachments");
  cJSON_Delete(errdoc);

  static const struct {
    const char *error;
    outcome_class cls;
  } cases[] = {
      {"channel_not_found", OUTCOME_FAIL},    {"not_authed", OUTCOME_FAIL},
      {"invalid_auth", OUTCOME_FAIL},         {"not_in_channel", OUTCOME_FAIL},
      {"fatal_error", OUTCOME_FAIL},          {"ratelimited", OUTCOME_RETRY},
      {"rate_limited", OUTCOME_RETRY},        {"internal_error", OUTCOME_RETRY},
      {"service_unavailable", OUTCOME_RETRY},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char body[200];
    snprintf(body, sizeof body, "{\"ok\":false,\"error\":\"%s\"}", cases[i].error);
    classify_api_text(200, NULL, body, &v);
    if (v.cls != cases[i].cls) fail_msg("%s: class %d", cases[i].error, v.cls);
    assert_string_equal(v.detail, cases[i].error);
  }
  classify_api_text(429, "3", "{\"ok\":false,\"error\":\"ratelimited\"}", &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_int_equal(v.retry_after_ms, 3000);
  assert_string_equal(v.detail, "ratelimited (HTTP 429)");
  classify_api_text(503, NULL, "<html>down</html>", &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  assert_string_equal(v.detail, "HTTP 503");
  classify_api_text(200, NULL, "<html>captive portal</html>", &v);
  assert_int_equal(v.cls, OUTCOME_RETRY);
  classify_api_text(404, NULL, "not found", &v);
  assert_int_equal(v.cls, OUTCOME_FAIL);
  assert_string_equal(v.detail, "HTTP 404");
  classify_api_text(200, NULL,
                    "{\"ok\":false,\"error\":\"missing_scope\",\"needed\":\"chat:write\","
                    "\"provided\":\"channels:read\"}",
                    &v);
  assert_string_equal(v.detail, "missing_scope (needed: chat:write)");
  classify_api_text(200, NULL,
                    "{\"ok\":false,\"error\":\"invalid_blocks\",\"response_metadata\":"
                    "{\"messages\":[\"[ERROR] must be more than 0 characters "
                    "[json-pointer:/blocks/0/text/text]\"]}}",
                    &v);
  assert_string_equal(v.detail,
                      "invalid_blocks: [ERROR] must be more than 0 characters "
                      "[json-pointer:/blocks/0/text/text]");
}

static void test_retry_after(void **state) {
  (void)state;
  assert_int_equal(slack_retry_after_ms("30"), 30000);
  assert_int_equal(slack_retry_after_ms(" 1.5 "), 1500);
  assert_int_equal(slack_retry_after_ms("0"), 0);
  assert_int_equal(slack_retry_after_ms(NULL), -1);
  assert_int_equal(slack_retry_after_ms("soon"), -1);
  assert_int_equal(slack_retry_after_ms("-1"), -1);
  assert_int_equal(slack_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
  assert_int_equal(slack_retry_after_ms("99999999"), SLACK_MAX_RETRY_AFTER_MS);
}

/* ---- pacer ------------------------------------------------------------- */

typedef struct tw {
  slack_waiter w;
  int id;
  double at;
} tw;

static int g_order[8], g_norder;
static slack_pacer *g_pacer;
static unsigned char g_key[SLACK_KEY_LEN];

/* Each granted waiter "answers" at once, releasing its slot. */
static void on_go(slack_waiter *w) {
  tw *t = (tw *)w;
  t->at = ev_time();
  g_order[g_norder++] = t->id;
  slack_pacer_release(g_pacer, g_key);
}

static void test_pacer(void **state) {
  (void)state;
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  const double interval = 0.05;
  g_pacer = slack_pacer_new(loop, interval);
  g_norder = 0;
  memset(g_key, 'a', sizeof g_key);
  unsigned char other[SLACK_KEY_LEN];
  memset(other, 'b', sizeof other);
  tw t[5];
  for (int i = 0; i < 5; i++) t[i] = (tw){.w = {.go = on_go}, .id = i};

  double t0 = ev_time();
  assert_int_equal(slack_pacer_take(g_pacer, g_key, &t[0].w), 1);
  /* While the first is in flight, the rest queue, whatever the time. */
  for (int i = 1; i < 4; i++) assert_int_equal(slack_pacer_take(g_pacer, g_key, &t[i].w), 0);
  /* Another destination is not held up. */
  assert_int_equal(slack_pacer_take(g_pacer, other, &t[4].w), 1);
  assert_int_equal(slack_pacer_waiting(g_pacer, g_key), 3);
  slack_pacer_forget(g_pacer, &t[2].w);
  slack_pacer_forget(g_pacer, &t[2].w); /* harmless twice */
  assert_int_equal(slack_pacer_waiting(g_pacer, g_key), 2);
  /* The first is answered now: the next goes an interval later. */
  double answered = ev_time();
  slack_pacer_release(g_pacer, g_key);
  ev_run(loop, 0); /* until no timer is active */
  assert_int_equal(g_norder, 2);
  assert_int_equal(g_order[0], 1);
  assert_int_equal(g_order[1], 3);
  assert_true(t[1].at - answered >= interval);
  assert_true(t[3].at - t[1].at >= interval);
  assert_true(t[3].at - t0 < 10 * interval);

  /* A hold (429) pushes the next slot past the interval. */
  slack_pacer_release(g_pacer, other);
  tw h = {.w = {.go = on_go}, .id = 7};
  double held = ev_time();
  slack_pacer_hold(g_pacer, other, 0.2);
  assert_int_equal(slack_pacer_take(g_pacer, other, &h.w), 0);
  memcpy(g_key, other, sizeof g_key);
  ev_run(loop, 0);
  assert_int_equal(g_order[2], 7);
  assert_true(h.at - held >= 0.2);

  /* Freed with a waiter still queued: its dest link is cleared, no call. */
  tw last = {.w = {.go = on_go}, .id = 6};
  slack_pacer_hold(g_pacer, other, 10);
  assert_int_equal(slack_pacer_take(g_pacer, other, &last.w), 0);
  slack_pacer_free(g_pacer);
  assert_null(last.w.dest);
  assert_int_equal(g_norder, 3);
  /* The loop closed clean: the pacer left no watcher behind. */
  assert_int_equal(ev_run(loop, EVRUN_NOWAIT), 0);
  ev_loop_destroy(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_validate),         cmocka_unit_test(test_prepare_webhook),
      cmocka_unit_test(test_prepare_blocks),   cmocka_unit_test(test_prepare_token),
      cmocka_unit_test(test_classify_webhook), cmocka_unit_test(test_classify_api),
      cmocka_unit_test(test_retry_after),      cmocka_unit_test(test_pacer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
