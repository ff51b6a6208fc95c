/*
 * email_reply: builds the reply with GMime (headers encoded per RFC 2047
 * where needed, the body quoted-printable UTF-8), as described in
 * email_reply.h.
 */
#include "actions/email_reply.h"

#include <gmime/gmime.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/clock.h"
#include "mail/mime.h"

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;
static void gmime_shutdown(void) { g_mime_shutdown(); }
/* GMime counts its initialisations: this module's and the parser's pair up
 * with their own shutdowns at exit. */
static void gmime_init(void) {
  g_mime_init();
  atexit(gmime_shutdown);
}

/* Leading reply markers in the languages mail clients commonly write. */
static size_t reply_prefix_len(const char *s) {
  static const char *const words[] = {"re", "aw", "sv", "vs", "antw", "odp", "ynt", NULL};
  for (size_t i = 0; words[i]; i++) {
    size_t n = strlen(words[i]);
    if (strncasecmp(s, words[i], n) != 0) continue;
    const char *p = s + n;
    if (*p == '[') { /* Re[2]: */
      const char *q = p + 1;
      while (*q >= '0' && *q <= '9') q++;
      if (q == p + 1 || *q != ']') continue;
      p = q + 1;
    }
    if (*p != ':') continue;
    p++;
    while (*p == ' ' || *p == '\t') p++;
    return (size_t)(p - s);
  }
  return 0;
}

char *email_reply_subject(const char *subject) {
  const char *s = subject ? subject : "";
  while (*s == ' ' || *s == '\t') s++;
  for (size_t n; (n = reply_prefix_len(s)) > 0;) s += n;
  size_t len = strlen(s);
  char *out = malloc(len + 5);
  if (!out) return NULL;
  memcpy(out, "Re: ", 4);
  memcpy(out + 4, s, len + 1);
  return out;
}

char *email_reply_message_id(int64_t run_id, const char *step_id, const char *original_id,
                             const char *from_address) {
  char seed[1200];
  int n = snprintf(seed, sizeof seed, "%lld\n%s\n%s", (long long)run_id, step_id,
                   original_id ? original_id : "");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (n < 0 || !EVP_Digest(seed, (size_t)n, md, &mdlen, EVP_sha256(), NULL)) return NULL;
  const char *at = from_address ? strrchr(from_address, '@') : NULL;
  const char *domain = at && at[1] ? at + 1 : "promptd.invalid";
  char id[400];
  snprintf(id, sizeof id, "promptd.%lld.%s.%02x%02x%02x%02x@%s", (long long)run_id, step_id,
           md[0], md[1], md[2], md[3], domain);
  return strdup(id);
}

static const char *str(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The reply text, then the quoted original when asked. */
static char *compose_body(const email_reply_opts *o) {
  buf b;
  buf_init(&b, 8u << 20);
  int bad = buf_adds(&b, o->body ? o->body : "");
  if (o->quote && !bad) {
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(o->original, "from");
    const char *who = str(from, "name");
    if (!who || !*who) who = str(from, "address");
    const char *date = str(o->original, "date");
    const char *text = str(o->original, "full_text");
    if (!text) text = str(o->original, "text");
    bad = buf_adds(&b, "\n\n") ||
          (date ? buf_printf(&b, "On %s, %s wrote:\n", date, who ? who : "")
                : buf_printf(&b, "%s wrote:\n", who ? who : ""));
    for (const char *line = text ? text : ""; !bad && *line;) {
      const char *nl = strchr(line, '\n');
      size_t n = nl ? (size_t)(nl - line) : strlen(line);
      bad = buf_adds(&b, n ? "> " : ">") || buf_add(&b, line, n) || buf_addc(&b, '\n');
      line += n + (nl ? 1 : 0);
    }
  }
  if (bad) {
    buf_release(&b);
    return NULL;
  }
  return buf_detach(&b, NULL);
}

/* "<a> <b> <c>": the original's References, then its Message-ID. */
static char *references(const cJSON *orig, const char *orig_id) {
  buf b;
  buf_init(&b, 64 * 1024);
  const cJSON *r;
  int bad = 0;
  cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(orig, "references")) {
    if (cJSON_IsString(r) && *r->valuestring && !(orig_id && strcmp(r->valuestring, orig_id) == 0))
      bad |= buf_printf(&b, "%s<%s>", b.len ? " " : "", r->valuestring);
  }
  if (orig_id) bad |= buf_printf(&b, "%s<%s>", b.len ? " " : "", orig_id);
  if (bad || !b.len) {
    buf_release(&b);
    return NULL;
  }
  return buf_detach(&b, NULL);
}

char *email_reply_build(const email_reply_opts *o, size_t *len, perr *e) {
  const cJSON *to = cJSON_GetObjectItemCaseSensitive(o->original, "reply_to");
  if (!str(to, "address") || !*str(to, "address"))
    to = cJSON_GetObjectItemCaseSensitive(o->original, "from");
  const char *to_addr = str(to, "address");
  if (!to_addr || !*to_addr) {
    perr_set(e, "the message has no From or Reply-To address to answer");
    return NULL;
  }
  if (!o->from_address || !*o->from_address) {
    perr_set(e, "no sender address (from) for the reply");
    return NULL;
  }
  pthread_once(&gmime_once, gmime_init);
  char *subject = email_reply_subject(str(o->original, "subject"));
  char *body = compose_body(o);
  const char *orig_id = str(o->original, "message_id");
  char *refs = references(o->original, orig_id);
  char *out = NULL;
  if (!subject || !body) {
    perr_set(e, "out of memory");
    goto done;
  }
  GMimeMessage *msg = g_mime_message_new(TRUE);
  g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, o->from_name ? o->from_name : "",
                             o->from_address);
  const char *to_name = str(to, "name");
  g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, to_name ? to_name : "", to_addr);
  g_mime_message_set_subject(msg, subject, "utf-8");
  if (o->message_id) g_mime_message_set_message_id(msg, o->message_id);
  GDateTime *date = g_date_time_new_from_unix_utc((gint64)(o->now_ms / 1000));
  g_mime_message_set_date(msg, date);
  g_date_time_unref(date);
  GMimeObject *top = GMIME_OBJECT(msg);
  if (orig_id) {
    char irt[MAIL_MAX_FIELD + 3];
    snprintf(irt, sizeof irt, "<%s>", orig_id);
    g_mime_object_set_header(top, "In-Reply-To", irt, NULL);
  }
  if (refs) g_mime_object_set_header(top, "References", refs, NULL);
  if (o->auto_reply) g_mime_object_set_header(top, "Auto-Submitted", "auto-replied", NULL);
  GMimeTextPart *part = g_mime_text_part_new_with_subtype("plain");
  g_mime_text_part_set_text(part, body);
  g_mime_part_set_content_encoding(GMIME_PART(part), GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  g_mime_message_set_mime_part(msg, GMIME_OBJECT(part));
  g_object_unref(part);
  /* IMAP APPEND and SMTP both want CRLF. */
  GMimeFormatOptions *fo = g_mime_format_options_new();
  g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
  char *text = g_mime_object_to_string(top, fo);
  g_mime_format_options_free(fo);
  g_object_unref(msg);
  if (!text) {
    perr_set(e, "cannot serialise the reply");
    goto done;
  }
  out = strdup(text);
  g_free(text);
  if (!out) perr_set(e, "out of memory");
  else *len = strlen(out);
done:
  free(subject);
  free(body);
  free(refs);
  return out;
}
