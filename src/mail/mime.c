/*
 * mime: GMime's message tree -> the event described in mime.h.
 *
 * Two passes over GMime's objects, both read-only:
 *
 *   walk()        the MIME tree, depth-first: body text goes into two
 *                 buffers (plain, html-as-text), everything else into the
 *                 attachment list.  In multipart/alternative only the
 *                 chosen branch may give body text; the others are still
 *                 walked for attachments (the images of an HTML branch).
 *   build_event() headers and addresses, then the body: plain if any,
 *                 else HTML; full_text is that, text is it trimmed of
 *                 quotes and signature, both cut at the cap.
 *
 * Ownership: GMime objects obtained through getters belong to the message
 * and are never unreffed here; the four this file creates (input stream,
 * parser, message, and each scratch stream) are unreffed on every path
 * before mail_parse returns, as are parser options and reference lists.
 * Strings GMime allocates (mime types, formatted dates) are g_free'd where
 * they are made.  Every string put into the event goes through mail_clean,
 * which is what makes the UTF-8 invariant hold for any input.
 *
 * Bounds: the raw message is refused past max_message; body text is
 * collected up to BODY_FACTOR * max_text (enough for the trimmer to find
 * the reply in front of a long quote) and each result is cut to max_text;
 * the tree walk stops at MAX_DEPTH; every list stops at MAIL_MAX_LIST; a
 * message with more boundaries or parts than mail has (MAX_BOUNDARIES,
 * MAX_DASH_LINES) has its headers parsed and its body left out.
 */
#include "mail/mime.h"

#include <cjson/cJSON.h>
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/err.h"
#include "mail/html_text.h"
#include "mail/mail_text.h"

#define MAX_DEPTH 32
#define BODY_FACTOR 4
/* Two shapes GMime handles at a cost out of proportion to the bytes:
 * deep nesting (every "--" line is compared with every open boundary, so
 * time grows with the square of the depth: 100,000 levels in 6 MB take
 * seconds) and very many parts (each a few objects: 300,000 empty parts in
 * 3 MB take a gigabyte).  Real mail declares a handful of boundaries and
 * has far fewer lines starting with "--" than this (every part needs one);
 * a message past either limit is read for its headers only. */
#define MAX_BOUNDARIES 256
#define MAX_DASH_LINES 10000

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_shutdown(void) { g_mime_shutdown(); }

/* g_mime_init is not idempotent itself; once per process, torn down at
 * exit so that leak checkers see GMime's tables freed. */
static void gmime_init(void) {
  g_mime_init();
  atexit(gmime_shutdown);
}

/* ---- strings ---- */

/* s cleaned to one line and cut to MAIL_MAX_FIELD; malloc'd ("" for NULL). */
static char *field(const char *s) {
  buf b;
  buf_init(&b, BUF_UNLIMITED);
  if (s && mail_clean(&b, s, strlen(s), MAIL_CLEAN_LINE)) return NULL;
  if (b.len > MAIL_MAX_FIELD) {
    b.len = mail_utf8_cut(b.data, b.len, MAIL_MAX_FIELD);
    b.data[b.len] = '\0';
  }
  return buf_detach(&b, NULL);
}

/* Adds key: field(s), or null when null_if_empty and the field is empty. */
static int add_field(cJSON *o, const char *key, const char *s, int null_if_empty) {
  char *v = field(s);
  if (!v) return -1;
  cJSON *item = null_if_empty && !*v ? cJSON_CreateNull() : cJSON_CreateString(v);
  free(v);
  if (!item) return -1;
  if (!cJSON_AddItemToObject(o, key, item)) {
    cJSON_Delete(item);
    return -1;
  }
  return 0;
}

/* Adds key: the first len bytes of clean text s. */
static int add_text(cJSON *o, const char *key, const char *s, size_t len) {
  char *v = mem_dup_str(s ? s : "", s ? len : 0);
  cJSON *item = v ? cJSON_CreateString(v) : NULL;
  free(v);
  if (!item) return -1;
  if (!cJSON_AddItemToObject(o, key, item)) {
    cJSON_Delete(item);
    return -1;
  }
  return 0;
}

static int add_bool(cJSON *o, const char *key, int v) {
  return cJSON_AddBoolToObject(o, key, v ? 1 : 0) ? 0 : -1;
}

/* A message id with its angle brackets and spaces removed. */
static int add_msgid(cJSON *o, const char *key, const char *id) {
  if (!id) return cJSON_AddNullToObject(o, key) ? 0 : -1;
  while (*id == '<' || *id == ' ' || *id == '\t') id++;
  size_t n = strlen(id);
  while (n && (id[n - 1] == '>' || id[n - 1] == ' ' || id[n - 1] == '\t' || id[n - 1] == '\r' ||
               id[n - 1] == '\n'))
    n--;
  char *v = mem_dup_str(id, n);
  if (!v) return -1;
  int rc = add_field(o, key, v, 1);
  free(v);
  return rc;
}

/* ---- addresses ---- */

static cJSON *mailbox_json(InternetAddress *ia) {
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  const char *name = ia ? internet_address_get_name(ia) : NULL;
  const char *addr = ia && INTERNET_ADDRESS_IS_MAILBOX(ia)
                         ? internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia))
                         : NULL;
  if (add_field(o, "name", name, 0) || add_field(o, "address", addr, 0)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* The first mailbox of l, looking inside groups. */
static InternetAddress *first_mailbox(InternetAddressList *l, int depth) {
  if (!l || depth > 4) return NULL;
  int n = internet_address_list_length(l);
  for (int i = 0; i < n; i++) {
    InternetAddress *ia = internet_address_list_get_address(l, i);
    if (INTERNET_ADDRESS_IS_MAILBOX(ia)) return ia;
    if (INTERNET_ADDRESS_IS_GROUP(ia)) {
      InternetAddress *m =
          first_mailbox(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), depth + 1);
      if (m) return m;
    }
  }
  return NULL;
}

/* *count: entries in arr so far (cJSON counts by walking the list). */
static int add_mailboxes(cJSON *arr, int *count, InternetAddressList *l, int depth) {
  if (!l || depth > 4) return 0;
  int n = internet_address_list_length(l);
  for (int i = 0; i < n && *count < MAIL_MAX_LIST; i++) {
    InternetAddress *ia = internet_address_list_get_address(l, i);
    if (INTERNET_ADDRESS_IS_GROUP(ia)) {
      if (add_mailboxes(arr, count, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
                        depth + 1))
        return -1;
    } else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
      cJSON *m = mailbox_json(ia);
      if (!m) return -1;
      if (!cJSON_AddItemToArray(arr, m)) {
        cJSON_Delete(m);
        return -1;
      }
      ++*count;
    }
  }
  return 0;
}

static int add_address_list(cJSON *ev, const char *key, InternetAddressList *l) {
  cJSON *arr = cJSON_AddArrayToObject(ev, key);
  int count = 0;
  return arr ? add_mailboxes(arr, &count, l, 0) : -1;
}

/* ---- the MIME tree ---- */

typedef struct walk {
  size_t cap;      /* bytes of body text collected at most */
  buf plain, html; /* body text so far (clean UTF-8) */
  int saw_plain;   /* a text/plain body part exists, even an empty one */
  int saw_html;
  int cut_plain; /* collection into plain stopped at cap */
  int cut_html;
  cJSON *attachments;
  int n_attachments;
  int failed; /* out of memory */
} walk;

static int is_type(GMimeObject *o, const char *type, const char *sub) {
  GMimeContentType *ct = g_mime_object_get_content_type(o);
  return ct && g_mime_content_type_is_type(ct, type, sub);
}

static const char *part_filename(GMimeObject *o) {
  if (GMIME_IS_PART(o)) return g_mime_part_get_filename(GMIME_PART(o));
  const char *f = g_mime_object_get_content_disposition_parameter(o, "filename");
  return f ? f : g_mime_object_get_content_type_parameter(o, "name");
}

/* A body part: inline text/plain or text/html without a file name. */
static int body_kind(GMimeObject *o) {
  if (!GMIME_IS_PART(o) || part_filename(o) || g_mime_part_is_attachment(GMIME_PART(o))) return 0;
  if (is_type(o, "text", "plain")) return 'p';
  if (is_type(o, "text", "html")) return 'h';
  return 0;
}

static int contains_kind(GMimeObject *o, int kind, int depth) {
  if (!o || depth > MAX_DEPTH) return 0;
  if (GMIME_IS_MULTIPART(o)) {
    GMimeMultipart *mp = GMIME_MULTIPART(o);
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; i++)
      if (contains_kind(g_mime_multipart_get_part(mp, i), kind, depth + 1)) return 1;
    return 0;
  }
  return body_kind(o) == kind;
}

/* Decoded (transfer encoding undone) bytes of a part into out. */
static int part_bytes(GMimePart *part, GMimeStream *out) {
  GMimeDataWrapper *w = g_mime_part_get_content(part);
  if (!w) return 0;
  return g_mime_data_wrapper_write_to_stream(w, out) < 0 ? -1 : 0;
}

/* Size in bytes of what the part decodes to. */
static size_t decoded_size(GMimeObject *o) {
  GMimeStream *null = g_mime_stream_null_new();
  if (GMIME_IS_PART(o))
    part_bytes(GMIME_PART(o), null);
  else
    g_mime_object_write_content_to_stream(o, NULL, null);
  size_t n = GMIME_STREAM_NULL(null)->written;
  g_object_unref(null);
  return n;
}

static void add_attachment(walk *w, GMimeObject *o) {
  if (w->n_attachments >= MAIL_MAX_LIST) return;
  cJSON *a = cJSON_CreateObject();
  GMimeContentType *ct = g_mime_object_get_content_type(o);
  char *mime = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
  if (mime)
    for (char *p = mime; *p; p++)
      if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + ('a' - 'A'));
  const char *disp = g_mime_object_get_disposition(o);
  int is_inline = disp ? strcasecmp(disp, "inline") == 0 : g_mime_object_get_content_id(o) != NULL;
  if (!a || add_field(a, "filename", part_filename(o), 1) ||
      add_field(a, "content_type", mime ? mime : "application/octet-stream", 0) ||
      !cJSON_AddNumberToObject(a, "size", (double)decoded_size(o)) ||
      add_bool(a, "inline", is_inline) || !cJSON_AddItemToArray(w->attachments, a)) {
    cJSON_Delete(a);
    w->failed = 1;
  } else {
    w->n_attachments++;
  }
  g_free(mime);
}

/* Appends one body part's text to dst, separated from earlier parts. */
static void add_body(walk *w, GMimeObject *o, buf *dst, int html) {
  int *cut = html ? &w->cut_html : &w->cut_plain;
  if (*cut) return;
  GMimeStream *mem = g_mime_stream_mem_new();
  part_bytes(GMIME_PART(o), mem); /* a decoding error keeps what was decoded */
  GByteArray *raw = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
  buf text;
  buf_init(&text, BUF_UNLIMITED);
  int rc = mail_to_utf8(&text, g_mime_object_get_content_type_parameter(o, "charset"),
                        raw && raw->len ? (const char *)raw->data : "", raw ? raw->len : 0);
  g_object_unref(mem);
  const char *format = g_mime_object_get_content_type_parameter(o, "format");
  if (rc == 0 && !html && format && strcasecmp(format, "flowed") == 0 && text.len) {
    const char *delsp = g_mime_object_get_content_type_parameter(o, "delsp");
    buf flat;
    buf_init(&flat, BUF_UNLIMITED);
    rc = mail_unflow(&flat, text.data, text.len, delsp && strcasecmp(delsp, "yes") == 0);
    buf_release(&text);
    text = flat;
  }
  if (rc == 0 && text.len) {
    if (dst->len && buf_adds(dst, "\n\n")) rc = -1;
    if (rc == 0 && html) {
      int r = html_to_text(dst, text.data, text.len, w->cap);
      if (r < 0) rc = -1;
      if (r == 1) *cut = 1;
    } else if (rc == 0) {
      size_t room = dst->len < w->cap ? w->cap - dst->len : 0;
      size_t n = mail_utf8_cut(text.data, text.len, room);
      if (n < text.len) *cut = 1;
      if (buf_add(dst, text.data, n)) rc = -1;
    }
  }
  buf_release(&text);
  if (rc) w->failed = 1;
}

static void walk_tree(walk *w, GMimeObject *o, int depth, int body_ok) {
  if (!o || w->failed || depth > MAX_DEPTH) return;
  if (GMIME_IS_MULTIPART(o)) {
    GMimeMultipart *mp = GMIME_MULTIPART(o);
    int n = g_mime_multipart_get_count(mp);
    int chosen = -1;
    if (body_ok && is_type(o, "multipart", "alternative")) {
      for (int i = 0; i < n && chosen < 0; i++)
        if (contains_kind(g_mime_multipart_get_part(mp, i), 'p', depth + 1)) chosen = i;
      for (int i = 0; i < n && chosen < 0; i++)
        if (contains_kind(g_mime_multipart_get_part(mp, i), 'h', depth + 1)) chosen = i;
    }
    for (int i = 0; i < n && !w->failed; i++)
      walk_tree(w, g_mime_multipart_get_part(mp, i), depth + 1,
                body_ok && (chosen < 0 || chosen == i));
    return;
  }
  int kind = body_kind(o);
  if (kind == 'p' || kind == 'h') {
    if (!body_ok) return; /* the alternative not chosen */
    if (kind == 'p')
      w->saw_plain = 1;
    else
      w->saw_html = 1;
    add_body(w, o, kind == 'p' ? &w->plain : &w->html, kind == 'h');
    return;
  }
  add_attachment(w, o);
}

/* ---- the event ---- */

static int add_date(cJSON *ev, GMimeMessage *msg) {
  GDateTime *d = g_mime_message_get_date(msg);
  GDateTime *utc = d ? g_date_time_to_utc(d) : NULL;
  gchar *s = utc ? g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ") : NULL;
  int rc = s ? add_field(ev, "date", s, 1) : (cJSON_AddNullToObject(ev, "date") ? 0 : -1);
  g_free(s);
  if (utc) g_date_time_unref(utc);
  return rc;
}

static int add_references(cJSON *ev, GMimeMessage *msg, GMimeParserOptions *po) {
  const char *in_reply_to = g_mime_object_get_header(GMIME_OBJECT(msg), "In-Reply-To");
  GMimeReferences *irt = in_reply_to ? g_mime_references_parse(po, in_reply_to) : NULL;
  int rc =
      add_msgid(ev, "in_reply_to",
                irt && g_mime_references_length(irt) > 0 ? g_mime_references_get_message_id(irt, 0)
                                                         : in_reply_to);
  if (irt) g_mime_references_free(irt);
  cJSON *arr = rc ? NULL : cJSON_AddArrayToObject(ev, "references");
  if (!arr) return -1;
  const char *refs = g_mime_object_get_header(GMIME_OBJECT(msg), "References");
  GMimeReferences *r = refs ? g_mime_references_parse(po, refs) : NULL;
  int n = r ? g_mime_references_length(r) : 0;
  /* The newest ids matter for threading: keep the last ones. */
  for (int i = n > MAIL_MAX_LIST ? n - MAIL_MAX_LIST : 0; rc == 0 && i < n; i++) {
    char *id = field(g_mime_references_get_message_id(r, i));
    cJSON *s = id && *id ? cJSON_CreateString(id) : NULL;
    if (id && *id && (!s || !cJSON_AddItemToArray(arr, s))) {
      cJSON_Delete(s);
      rc = -1;
    }
    if (!id) rc = -1;
    free(id);
  }
  if (r) g_mime_references_free(r);
  return rc;
}

static int add_headers(cJSON *ev, GMimeMessage *msg) {
  static const struct {
    const char *key, *name, *alt;
  } wanted[] = {
      {"auto_submitted", "Auto-Submitted", NULL},
      {"precedence", "Precedence", NULL},
      {"list_id", "List-Id", NULL},
      {"return_path", "Return-Path", NULL},
      {"x_autoreply", "X-Autoreply", "X-Autorespond"},
  };
  cJSON *h = cJSON_AddObjectToObject(ev, "headers");
  if (!h) return -1;
  for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
    const char *v = g_mime_object_get_header(GMIME_OBJECT(msg), wanted[i].name);
    if (!v && wanted[i].alt) v = g_mime_object_get_header(GMIME_OBJECT(msg), wanted[i].alt);
    /* An empty Return-Path is "<>", which says something: keep it. */
    if (v ? add_field(h, wanted[i].key, v, 0) : !cJSON_AddNullToObject(h, wanted[i].key)) return -1;
  }
  return 0;
}

static int add_body_fields(cJSON *ev, walk *w, size_t max_text) {
  const buf *body = w->saw_plain ? &w->plain : &w->html;
  int cut = w->saw_plain ? w->cut_plain : w->cut_html;
  const char *type = w->saw_plain ? "text/plain" : w->saw_html ? "text/html" : NULL;
  const char *s = body->data ? body->data : "";
  size_t n = body->len;

  buf trimmed, snip;
  buf_init(&trimmed, BUF_UNLIMITED);
  buf_init(&snip, BUF_UNLIMITED);
  int rc = mail_trim_quoted(&trimmed, s, n);
  const char *t = trimmed.data ? trimmed.data : "";
  size_t tn = mail_utf8_cut(t, trimmed.len, max_text);
  size_t fn = mail_utf8_cut(s, n, max_text);
  if (rc == 0) rc = mail_snippet(&snip, t, tn, MAIL_SNIPPET_CHARS);
  if (rc == 0)
    rc = add_text(ev, "text", t, tn) || add_text(ev, "full_text", s, fn) ||
                 add_bool(ev, "text_truncated", tn < trimmed.len || cut) ||
                 add_bool(ev, "full_text_truncated", fn < n || cut) ||
                 (type ? add_field(ev, "body_type", type, 0)
                       : !cJSON_AddNullToObject(ev, "body_type")) ||
                 add_text(ev, "snippet", snip.data, snip.len)
             ? -1
             : 0;
  buf_release(&trimmed);
  buf_release(&snip);
  return rc;
}

static int build_event(cJSON *ev, GMimeMessage *msg, GMimeParserOptions *po, walk *w,
                       size_t raw_len, size_t max_text) {
  InternetAddress *from = msg ? first_mailbox(g_mime_message_get_from(msg), 0) : NULL;
  if (!from && msg) from = first_mailbox(g_mime_message_get_sender(msg), 0);
  InternetAddress *reply_to = msg ? first_mailbox(g_mime_message_get_reply_to(msg), 0) : NULL;

  cJSON *f = mailbox_json(from);
  if (!f || !cJSON_AddItemToObject(ev, "from", f)) {
    cJSON_Delete(f);
    return -1;
  }
  cJSON *rt = reply_to ? mailbox_json(reply_to) : cJSON_CreateNull();
  if (!rt || !cJSON_AddItemToObject(ev, "reply_to", rt)) {
    cJSON_Delete(rt);
    return -1;
  }
  if (add_address_list(ev, "to", msg ? g_mime_message_get_to(msg) : NULL) ||
      add_address_list(ev, "cc", msg ? g_mime_message_get_cc(msg) : NULL) ||
      add_field(ev, "subject", msg ? g_mime_message_get_subject(msg) : NULL, 0))
    return -1;
  if (msg) {
    if (add_date(ev, msg) || add_msgid(ev, "message_id", g_mime_message_get_message_id(msg)) ||
        add_references(ev, msg, po))
      return -1;
  } else if (!cJSON_AddNullToObject(ev, "date") || !cJSON_AddNullToObject(ev, "message_id") ||
             !cJSON_AddNullToObject(ev, "in_reply_to") ||
             !cJSON_AddArrayToObject(ev, "references")) {
    return -1;
  }
  if (add_body_fields(ev, w, max_text)) return -1;
  if (!cJSON_AddItemToObject(ev, "attachments", w->attachments)) return -1;
  w->attachments = NULL; /* the event owns it now */
  if (msg) {
    if (add_headers(ev, msg)) return -1;
  } else {
    cJSON *h = cJSON_AddObjectToObject(ev, "headers");
    const char *keys[] = {"auto_submitted", "precedence", "list_id", "return_path", "x_autoreply"};
    for (size_t i = 0; h && i < sizeof keys / sizeof keys[0]; i++)
      if (!cJSON_AddNullToObject(h, keys[i])) h = NULL;
    if (!h) return -1;
  }
  return cJSON_AddNumberToObject(ev, "size", (double)raw_len) ? 0 : -1;
}

/* 1 when s declares more than MAX_BOUNDARIES boundaries ("boundary" in
 * any case, wherever it stands) or has more than MAX_DASH_LINES lines
 * starting with "--". */
static int too_many_parts(const char *s, size_t n) {
  size_t boundaries = 0, dashes = 0;
  for (size_t i = 0; i < n; i++) {
    if ((s[i] | 0x20) == 'b' && n - i >= 8 && strncasecmp(s + i, "boundary", 8) == 0) {
      if (++boundaries > MAX_BOUNDARIES) return 1;
      i += 7;
    } else if (s[i] == '-' && (i == 0 || s[i - 1] == '\n') && n - i >= 2 && s[i + 1] == '-') {
      if (++dashes > MAX_DASH_LINES) return 1;
    }
  }
  return 0;
}

/* Length of the header block: up to and including the first empty line. */
static size_t header_end(const char *s, size_t n) {
  for (size_t i = 0; i + 1 < n; i++) {
    if (s[i] != '\n') continue;
    if (s[i + 1] == '\n') return i + 2;
    if (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n') return i + 3;
  }
  return n;
}

int mail_parse(const char *raw, size_t len, const mail_parse_opts *o, cJSON **event, perr *e) {
  size_t max_message = o && o->max_message ? o->max_message : MAIL_MAX_MESSAGE;
  size_t max_text = o && o->max_text ? o->max_text : MAIL_MAX_TEXT;
  *event = NULL;
  if (len > max_message)
    return perr_set(e, "message is %zu bytes, more than the %zu-byte limit", len, max_message);
  pthread_once(&gmime_once, gmime_init);

  GMimeParserOptions *po = g_mime_parser_options_new();
  /* Undeclared 8-bit headers: UTF-8 when valid, else what Windows sends. */
  const char *fallback[] = {"utf-8", "windows-1252", NULL};
  g_mime_parser_options_set_fallback_charsets(po, fallback);
  g_mime_parser_options_set_address_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_rfc2047_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);
  g_mime_parser_options_set_parameter_compliance_mode(po, GMIME_RFC_COMPLIANCE_LOOSE);

  size_t parse_len = raw ? len : 0;
  int headers_only = raw && too_many_parts(raw, len);
  if (headers_only) parse_len = header_end(raw, len);
  GMimeStream *stream = g_mime_stream_mem_new_with_buffer(raw ? raw : "", parse_len);
  GMimeParser *parser = g_mime_parser_new_with_stream(stream);
  GMimeMessage *msg = g_mime_parser_construct_message(parser, po);

  walk w = {.cap = max_text > ((size_t)-1) / BODY_FACTOR ? max_text : max_text * BODY_FACTOR};
  w.cut_plain = w.cut_html = headers_only; /* no body read: the texts say truncated */
  buf_init(&w.plain, BUF_UNLIMITED);
  buf_init(&w.html, BUF_UNLIMITED);
  w.attachments = cJSON_CreateArray();
  cJSON *ev = cJSON_CreateObject();
  int rc = -1;
  if (ev && w.attachments) {
    if (msg) walk_tree(&w, g_mime_message_get_mime_part(msg), 0, 1);
    if (!w.failed && w.plain.failed == 0 && w.html.failed == 0 &&
        build_event(ev, msg, po, &w, len, max_text) == 0)
      rc = 0;
  }
  buf_release(&w.plain);
  buf_release(&w.html);
  cJSON_Delete(w.attachments);
  if (msg) g_object_unref(msg);
  g_object_unref(parser);
  g_object_unref(stream);
  g_mime_parser_options_free(po);
  if (rc) {
    cJSON_Delete(ev);
    return perr_set(e, "out of memory while parsing a message");
  }
  *event = ev;
  return 0;
}
