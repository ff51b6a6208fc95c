/*
 * csvfile: prepare (rendering, quoting-worthy values), the bytes written
 * (parsed back with libcsv), the header written once, the exactly-once
 * protocol (begin, a crash after the write, recover, start again), error
 * classes, and cross-field validation.
 *
 * action_done is the engine's; a unit test has no engine run to hand a call
 * to, so this file links its own recorder in its place (the linker takes
 * this definition and never pulls the engine's object in).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <csv.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/connector.h"
#include "core/buf.h"
#include "testutil.h"

extern const action_kind action_csvfile;
static const action_kind *K = &action_csvfile;

/* ---- the recorder standing in for the engine ------------------------------ */

static int g_done_calls;
static outcome_class g_cls;
static cJSON *g_output;
static char g_detail[1024];

void action_done(action_call *c, outcome_class cls, cJSON *output, const char *detail,
                 long retry_after_ms) {
  (void)c, (void)retry_after_ms;
  g_done_calls++;
  g_cls = cls;
  cJSON_Delete(g_output);
  g_output = output;
  snprintf(g_detail, sizeof g_detail, "%s", detail ? detail : "");
}

/* ---- helpers -------------------------------------------------------------- */

static char *g_dir;

static int setup(void **state) {
  (void)state;
  g_dir = tu_tempdir();
  g_done_calls = 0;
  g_output = NULL;
  g_detail[0] = '\0';
  return g_dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  cJSON_Delete(g_output);
  g_output = NULL;
  tu_rmtree(g_dir);
  free(g_dir);
  return 0;
}

static char *path_in(const char *name) {
  size_t n = strlen(g_dir) + strlen(name) + 2;
  char *p = malloc(n);
  assert_non_null(p);
  snprintf(p, n, "%s/%s", g_dir, name);
  return p;
}

/* cfg as the field table builds it: {"path", "row": [...], "header": [...]}. */
static cJSON *make_cfg(const char *path, const char *const *row, const char *const *header) {
  cJSON *cfg = cJSON_CreateObject();
  cJSON_AddStringToObject(cfg, "path", path);
  cJSON *r = cJSON_AddArrayToObject(cfg, "row");
  for (; row && *row; row++) cJSON_AddItemToArray(r, cJSON_CreateString(*row));
  if (header) {
    cJSON *h = cJSON_AddArrayToObject(cfg, "header");
    for (; *header; header++) cJSON_AddItemToArray(h, cJSON_CreateString(*header));
  }
  return cfg;
}

static cJSON *prepare_ok(const cJSON *cfg, const cJSON *ctx) {
  cJSON *input = NULL;
  perr e = {{0}};
  render_env env = {0};
  if (K->prepare(cfg, ctx, &env, &input, &e)) fail_msg("prepare: %s", e.msg);
  assert_non_null(input);
  return input;
}

/* Runs start() once and checks that exactly one outcome was reported. */
static outcome_class run_start(const cJSON *input, const cJSON *st) {
  action_call c = {.input = input, .state = st, .run_id = 1, .attempt = 1,
                   .recipe = "r", .step_id = "row"};
  perr e = {{0}};
  int before = g_done_calls;
  if (K->start(&c, &e)) fail_msg("start: %s", e.msg);
  assert_int_equal(g_done_calls, before + 1);
  return g_cls;
}

/* Parsed CSV: records of fields. */
typedef struct {
  char *cells[16][8];
  int ncells[16];
  int nrec;
  int cur;
} parsed;

static void on_field(void *s, size_t len, void *ud) {
  parsed *p = ud;
  assert_true(p->nrec < 16 && p->cur < 8);
  /* libcsv's field buffer is not NUL-terminated: copy exactly len bytes. */
  p->cells[p->nrec][p->cur++] = mem_dup_str(s ? s : "", s ? len : 0);
}

static void on_record(int c, void *ud) {
  (void)c;
  parsed *p = ud;
  p->ncells[p->nrec++] = p->cur;
  p->cur = 0;
}

static void parse_file(const char *path, parsed *out) {
  memset(out, 0, sizeof *out);
  size_t len;
  char *text = tu_read_file(path, &len);
  assert_non_null(text);
  struct csv_parser cp;
  assert_int_equal(csv_init(&cp, CSV_STRICT | CSV_STRICT_FINI), 0);
  assert_int_equal(csv_parse(&cp, text, len, on_field, on_record, out), len);
  assert_int_equal(csv_fini(&cp, on_field, on_record, out), 0);
  csv_free(&cp);
  free(text);
}

static void parsed_free(parsed *p) {
  for (int r = 0; r < p->nrec; r++)
    for (int c = 0; c < p->ncells[r]; c++) free(p->cells[r][c]);
}

static void assert_record(const parsed *p, int r, const char *const *want) {
  int n = 0;
  for (; want[n]; n++) assert_string_equal(p->cells[r][n], want[n]);
  assert_int_equal(p->ncells[r], n);
}

static off_t file_size(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return -1;
  return st.st_size;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_table(void **state) {
  (void)state;
  assert_string_equal(K->name, "csvfile");
  assert_true(K->flags & ACTION_EXACTLY_ONCE);
  assert_non_null(K->begin);
  assert_non_null(K->recover);
  assert_non_null(K->resource);
}

static void test_prepare_renders_cells(void **state) {
  (void)state;
  char *p = path_in("out.csv");
  static const char *const row[] = {"{{event.n}}", "{{event.text}}", "{{{event.html}}}",
                                    "fixed", NULL};
  static const char *const header[] = {"n", "text", "html", "fixed", NULL};
  cJSON *cfg = make_cfg(p, row, header);
  cJSON *ctx = cJSON_Parse("{\"event\":{\"n\":7,\"text\":\"a, \\\"b\\\"\\r\\nc\","
                           "\"html\":\"<b>&\"}}");
  cJSON *in = prepare_ok(cfg, ctx);

  assert_string_equal(cJSON_GetObjectItem(in, "path")->valuestring, p);
  cJSON *cells = cJSON_GetObjectItem(in, "row");
  assert_int_equal(cJSON_GetArraySize(cells), 4);
  assert_string_equal(cJSON_GetArrayItem(cells, 0)->valuestring, "7");
  /* No escaping: the text lands in a CSV cell as is. */
  assert_string_equal(cJSON_GetArrayItem(cells, 1)->valuestring, "a, \"b\"\r\nc");
  assert_string_equal(cJSON_GetArrayItem(cells, 2)->valuestring, "<b>&");
  assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(in, "header")), 4);
  assert_string_equal(K->resource(in), p);

  cJSON_Delete(in);
  cJSON_Delete(ctx);
  cJSON_Delete(cfg);
  free(p);
}

static void test_prepare_template_error(void **state) {
  (void)state;
  static const char *const row[] = {"ok", "{{unclosed", NULL};
  cJSON *cfg = make_cfg("/tmp/x.csv", row, NULL);
  cJSON *ctx = cJSON_Parse("{}");
  cJSON *in = NULL;
  perr e = {{0}};
  render_env env = {0};
  assert_int_equal(K->prepare(cfg, ctx, &env, &in, &e), -1);
  assert_null(in);
  assert_non_null(strstr(e.msg, "row[1]"));
  cJSON_Delete(ctx);
  cJSON_Delete(cfg);
}

static void test_quoting_round_trip(void **state) {
  (void)state;
  char *p = path_in("out.csv");
  static const char *const row[] = {"{{event.a}}", "{{event.b}}", "{{event.c}}", "{{event.d}}",
                                    "{{event.e}}", "{{event.f}}", NULL};
  static const char *const header[] = {"comma", "quote", "crlf", "newline", "empty", "utf8",
                                       NULL};
  cJSON *cfg = make_cfg(p, row, header);
  cJSON *ctx = cJSON_Parse("{\"event\":{\"a\":\"x,y\",\"b\":\"say \\\"hi\\\"\","
                           "\"c\":\"one\\r\\ntwo\",\"d\":\"l1\\nl2\\n\",\"e\":\"\","
                           "\"f\":\"caf\\u00e9 \\u65e5\\u672c\"}}");
  cJSON *in = prepare_ok(cfg, ctx);

  assert_int_equal(run_start(in, NULL), OUTCOME_OK);
  assert_int_equal(run_start(in, NULL), OUTCOME_OK);

  /* The exact bytes: every field quoted, quotes doubled, CRLF records. */
  char *text = tu_read_file(p, NULL);
  const char *head = "\"comma\",\"quote\",\"crlf\",\"newline\",\"empty\",\"utf8\"\r\n";
  const char *line = "\"x,y\",\"say \"\"hi\"\"\",\"one\r\ntwo\",\"l1\nl2\n\",\"\","
                     "\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\"\r\n";
  size_t hl = strlen(head), ll = strlen(line);
  assert_int_equal(strlen(text), hl + 2 * ll);
  assert_memory_equal(text, head, hl);
  assert_memory_equal(text + hl, line, ll);
  assert_memory_equal(text + hl + ll, line, ll);
  free(text);

  /* The second row's output says where it began and how long it is. */
  assert_non_null(g_output);
  assert_string_equal(cJSON_GetObjectItem(g_output, "path")->valuestring, p);
  assert_int_equal((long)cJSON_GetObjectItem(g_output, "offset")->valuedouble, (long)(hl + ll));
  assert_int_equal((long)cJSON_GetObjectItem(g_output, "bytes")->valuedouble, (long)ll);

  parsed ps;
  parse_file(p, &ps);
  assert_int_equal(ps.nrec, 3); /* header once, two rows */
  assert_record(&ps, 0, header);
  static const char *const want[] = {"x,y", "say \"hi\"", "one\r\ntwo", "l1\nl2\n", "",
                                     "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", NULL};
  assert_record(&ps, 1, want);
  assert_record(&ps, 2, want);
  parsed_free(&ps);

  struct stat st;
  assert_int_equal(stat(p, &st), 0);
  assert_int_equal(st.st_mode & 0077 & ~0040, 0); /* 0640 at most */

  cJSON_Delete(in);
  cJSON_Delete(ctx);
  cJSON_Delete(cfg);
  free(p);
}

static void test_header_only_when_empty(void **state) {
  (void)state;
  char *p = path_in("existing.csv");
  assert_int_equal(tu_write_file(p, "\"old\"\r\n"), 0);
  static const char *const row[] = {"new", NULL};
  static const char *const header[] = {"h", NULL};
  cJSON *cfg = make_cfg(p, row, header);
  cJSON *ctx = cJSON_CreateObject();
  cJSON *in = prepare_ok(cfg, ctx);
  assert_int_equal(run_start(in, NULL), OUTCOME_OK);
  char *text = tu_read_file(p, NULL);
  assert_string_equal(text, "\"old\"\r\n\"new\"\r\n");
  free(text);

  /* An existing but empty file gets the header. */
  assert_int_equal(truncate(p, 0), 0);
  assert_int_equal(run_start(in, NULL), OUTCOME_OK);
  text = tu_read_file(p, NULL);
  assert_string_equal(text, "\"h\"\r\n\"new\"\r\n");
  free(text);
  assert_int_equal((long)cJSON_GetObjectItem(g_output, "offset")->valuedouble, 5);

  /* No header given: none written. */
  char *q = path_in("nohead.csv");
  cJSON *cfg2 = make_cfg(q, row, NULL);
  cJSON *in2 = prepare_ok(cfg2, ctx);
  assert_null(cJSON_GetObjectItem(in2, "header"));
  assert_int_equal(run_start(in2, NULL), OUTCOME_OK);
  text = tu_read_file(q, NULL);
  assert_string_equal(text, "\"new\"\r\n");
  free(text);

  cJSON_Delete(in2);
  cJSON_Delete(cfg2);
  cJSON_Delete(in);
  cJSON_Delete(ctx);
  cJSON_Delete(cfg);
  free(q);
  free(p);
}

/* begin, start, "crash" (the outcome is never recorded), recover with the
 * begin state, start again: the row is in the file exactly once. */
static void crash_after_write(const char *name, int preexisting_rows) {
  char *p = path_in(name);
  static const char *const row[] = {"{{event.n}}", "{{event.text}}", NULL};
  static const char *const header[] = {"n", "text", NULL};
  cJSON *cfg = make_cfg(p, row, header);
  cJSON *ctx = cJSON_Parse("{\"event\":{\"n\":1,\"text\":\"a\"}}");
  cJSON *in0 = prepare_ok(cfg, ctx);
  for (int i = 0; i < preexisting_rows; i++) assert_int_equal(run_start(in0, NULL), OUTCOME_OK);
  cJSON_Delete(in0);
  cJSON_Delete(ctx);

  ctx = cJSON_Parse("{\"event\":{\"n\":2,\"text\":\"the one\"}}");
  cJSON *in = prepare_ok(cfg, ctx);
  cJSON *st = NULL;
  perr e = {{0}};
  assert_int_equal(K->begin(in, &st, &e), 0);
  off_t before = file_size(p);
  assert_int_equal((long)cJSON_GetObjectItem(st, "offset")->valuedouble,
                   before < 0 ? 0 : (long)before);

  assert_int_equal(run_start(in, st), OUTCOME_OK); /* written; outcome lost */
  assert_true(file_size(p) > (before < 0 ? 0 : before));

  assert_int_equal(K->recover(in, st, &e), 0);
  assert_int_equal(file_size(p), before < 0 ? 0 : before);
  assert_int_equal(K->recover(in, st, &e), 0); /* harmless twice */

  assert_int_equal(run_start(in, st), OUTCOME_OK);

  parsed ps;
  parse_file(p, &ps);
  assert_int_equal(ps.nrec, 1 + preexisting_rows + 1);
  assert_record(&ps, 0, header);
  static const char *const want[] = {"2", "the one", NULL};
  assert_record(&ps, ps.nrec - 1, want);
  int seen = 0;
  for (int r = 0; r < ps.nrec; r++)
    if (strcmp(ps.cells[r][1], "the one") == 0) seen++;
  assert_int_equal(seen, 1);
  parsed_free(&ps);

  cJSON_Delete(st);
  cJSON_Delete(in);
  cJSON_Delete(ctx);
  cJSON_Delete(cfg);
  free(p);
}

static void test_crash_new_file(void **state) {
  (void)state;
  crash_after_write("new.csv", 0);
}

static void test_crash_existing_file(void **state) {
  (void)state;
  crash_after_write("old.csv", 3);
}

static void test_recover_half_row(void **state) {
  (void)state;
  char *p = path_in("half.csv");
  assert_int_equal(tu_write_file(p, "\"a\"\r\n"), 0);
  static const char *const row[] = {"b", NULL};
  cJSON *cfg = make_cfg(p, row, NULL);
  cJSON *ctx = cJSON_CreateObject();
  cJSON *in = prepare_ok(cfg, ctx);
  cJSON *st = NULL;
  perr e = {{0}};
  assert_int_equal(K->begin(in, &st, &e), 0);
  /* A crash in the middle of write(2): part of a row, no line end. */
  FILE *f = fopen(p, "ab");
  fputs("\"partial", f);
  fclose(f);
  assert_int_equal(K->recover(in, st, &e), 0);
  char *text = tu_read_file(p, NULL);
  assert_string_equal(text, "\"a\"\r\n");
  free(text);
  assert_int_equal(run_start(in, st), OUTCOME_OK);
  text = tu_read_file(p, NULL);
  assert_string_equal(text, "\"a\"\r\n\"b\"\r\n");
  free(text);
  cJSON_Delete(st);
  cJSON_Delete(in);
  cJSON_Delete(ctx);
  cJSON_Delete(cfg);
  free(p);
}

static void test_recover_nothing_to_undo(void **state) {
  (void)state;
  perr e = {{0}};
  char *p = path_in("gone.csv");
  static const char *const row[] = {"b", NULL};
  cJSON *cfg = make_cfg(p, row, NULL);
  cJSON *ctx = cJSON_CreateObject();
  cJSON *in = prepare_ok(cfg, ctx);

  /* The file never came to be. */
  cJSON *st = cJSON_Parse("{\"offset\":0}");
  assert_int_equal(K->recover(in, st, &e), 0);
  assert_int_equal(file_size(p), -1);
  cJSON_Delete(st);

  /* Shorter than recorded: not ours to touch. */
  assert_int_equal(tu_write_file(p, "xy"), 0);
  st = cJSON_Parse("{\"offset\":100}");
  assert_int_equal(K->recover(in, st, &e), 0);
  assert_int_equal(file_size(p), 2);
  cJSON_Delete(st);

  /* A state without an offset is an error, not a guess. */
  st = cJSON_Parse("{}");
  assert_int_equal(K->recover(in, st, &e), -1);
  assert_non_null(strstr(e.msg, "offset"));
  cJSON_Delete(st);
  st = cJSON_Parse("{\"offset\":-5}");
  assert_int_equal(K->recover(in, st, &e), -1);
  cJSON_Delete(st);

  cJSON_Delete(in);
  cJSON_Delete(ctx);
  cJSON_Delete(cfg);
  free(p);
}

static void test_begin_absent_file(void **state) {
  (void)state;
  char *p = path_in("absent.csv");
  static const char *const row[] = {"b", NULL};
  cJSON *cfg = make_cfg(p, row, NULL);
  cJSON *ctx = cJSON_CreateObject();
  cJSON *in = prepare_ok(cfg, ctx);
  cJSON *st = NULL;
  perr e = {{0}};
  assert_int_equal(K->begin(in, &st, &e), 0);
  assert_int_equal((long)cJSON_GetObjectItem(st, "offset")->valuedouble, 0);
  cJSON_Delete(st);
  cJSON_Delete(in);
  cJSON_Delete(ctx);
  cJSON_Delete(cfg);
  free(p);
}

static void test_errors(void **state) {
  (void)state;
  static const char *const row[] = {"b", NULL};
  cJSON *ctx = cJSON_CreateObject();

  /* Missing directory: permanent, and the detail names the path. */
  char *p = path_in("no/such/dir/out.csv");
  cJSON *cfg = make_cfg(p, row, NULL);
  cJSON *in = prepare_ok(cfg, ctx);
  assert_int_equal(run_start(in, NULL), OUTCOME_FAIL);
  assert_non_null(strstr(g_detail, p));
  assert_non_null(strstr(g_detail, "No such file or directory"));
  assert_null(g_output);
  cJSON_Delete(in);
  cJSON_Delete(cfg);
  free(p);

  /* A directory at the path: permanent. */
  cfg = make_cfg(g_dir, row, NULL);
  in = prepare_ok(cfg, ctx);
  assert_int_equal(run_start(in, NULL), OUTCOME_FAIL);
  assert_non_null(strstr(g_detail, g_dir));
  cJSON *st = NULL;
  perr e = {{0}};
  assert_int_equal(K->begin(in, &st, &e), 0);
  assert_int_equal(K->recover(in, st, &e), 0); /* nothing of ours there */
  cJSON_Delete(st);
  cJSON_Delete(in);
  cJSON_Delete(cfg);

  /* Permission denied (meaningless as root, who may write anywhere). */
  if (geteuid() != 0) {
    char *d = path_in("ro");
    assert_int_equal(mkdir(d, 0500), 0);
    p = path_in("ro/out.csv");
    cfg = make_cfg(p, row, NULL);
    in = prepare_ok(cfg, ctx);
    assert_int_equal(run_start(in, NULL), OUTCOME_FAIL);
    assert_non_null(strstr(g_detail, "Permission denied"));
    cJSON_Delete(in);
    cJSON_Delete(cfg);
    chmod(d, 0700);
    free(p);
    free(d);
  }

  /* Disk full: transient. /dev/full fails every write with ENOSPC, but it
   * is not a regular file, so it is refused before writing; the errno
   * classes are checked through a regular file on a full disk only in the
   * integration suite. */
  if (access("/dev/full", W_OK) == 0) {
    cfg = make_cfg("/dev/full", row, NULL);
    in = prepare_ok(cfg, ctx);
    assert_int_equal(run_start(in, NULL), OUTCOME_FAIL);
    assert_non_null(strstr(g_detail, "not a regular file"));
    cJSON_Delete(in);
    cJSON_Delete(cfg);
  }
  cJSON_Delete(ctx);
}

/* A write that fails half way (here: the file-size limit, EFBIG) leaves no
 * half row behind, and the class is permanent. */
static void test_failed_write_is_undone(void **state) {
  (void)state;
  char *p = path_in("limited.csv");
  assert_int_equal(tu_write_file(p, "\"a\"\r\n"), 0);
  static const char *const row[] = {"a long cell that crosses the limit", NULL};
  cJSON *cfg = make_cfg(p, row, NULL);
  cJSON *ctx = cJSON_CreateObject();
  cJSON *in = prepare_ok(cfg, ctx);

  struct rlimit old, lim;
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 16;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  outcome_class cls = run_start(in, NULL);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev);

  assert_int_equal(cls, OUTCOME_FAIL);
  assert_non_null(strstr(g_detail, "cannot write"));
  assert_non_null(strstr(g_detail, p));
  char *text = tu_read_file(p, NULL);
  assert_string_equal(text, "\"a\"\r\n");
  free(text);

  cJSON_Delete(in);
  cJSON_Delete(ctx);
  cJSON_Delete(cfg);
  free(p);
}

static void test_validate(void **state) {
  (void)state;
  perr e = {{0}};
  static const char *const row2[] = {"a", "b", NULL};
  static const char *const h1[] = {"x", NULL};
  static const char *const h2[] = {"x", "y", NULL};

  cJSON *cfg = make_cfg("/tmp/out.csv", row2, h2);
  assert_int_equal(K->validate(cfg, &e), 0);
  cJSON_Delete(cfg);

  cfg = make_cfg("/tmp/out.csv", row2, NULL);
  assert_int_equal(K->validate(cfg, &e), 0);
  cJSON_Delete(cfg);

  cfg = make_cfg("/tmp/out.csv", row2, h1);
  assert_int_equal(K->validate(cfg, &e), -1);
  assert_non_null(strstr(e.msg, "header"));
  assert_non_null(strstr(e.msg, "expected 2"));
  assert_non_null(strstr(e.msg, "got 1"));
  cJSON_Delete(cfg);

  static const char *const none[] = {NULL};
  cfg = make_cfg("/tmp/out.csv", none, NULL);
  assert_int_equal(K->validate(cfg, &e), -1);
  assert_non_null(strstr(e.msg, "row"));
  cJSON_Delete(cfg);

  cfg = make_cfg("", row2, NULL);
  assert_int_equal(K->validate(cfg, &e), -1);
  assert_non_null(strstr(e.msg, "path"));
  cJSON_Delete(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_table, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prepare_renders_cells, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prepare_template_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quoting_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_header_only_when_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_new_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_crash_existing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recover_half_row, setup, teardown),
      cmocka_unit_test_setup_teardown(test_recover_nothing_to_undo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_begin_absent_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_write_is_undone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
