/*
 * webhook_verify: HMAC signature schemes for the webhook trigger.
 *
 * Design notes
 * - One model for every scheme.  A preset is a row of the same `scheme`
 *   struct the generic block fills (header, prefix, encoding, digest,
 *   timestamp header, window, base string), so the four vendors and the
 *   generic block share one verification path.  Stripe is the one shape
 *   that does not fit: its timestamp and its (possibly several) MACs share
 *   one header, so its row says `stripe` and the header is split first;
 *   everything after that is common.
 * - Validation and construction share scheme_parse(), which only borrows
 *   strings from the JSON; webhook_verifier_new() then copies what it
 *   keeps, so the verifier outlives the recipe's JSON.
 * - The base string is never assembled: its pieces (literal text, the
 *   timestamp as sent, the body) are fed to the MAC one after another, so
 *   a large body is not copied on the request path.
 * - A received MAC is decoded to bytes and compared with CRYPTO_memcmp
 *   only when its length is right; a length says nothing about the secret.
 * - Refusal reasons are fixed phrases plus header names taken from the
 *   recipe and numbers: never the secret, the MAC we computed, or text the
 *   sender chose (which could be a log-injection vector).
 *
 * Sources: GitHub
 * https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries ;
 * Stripe https://docs.stripe.com/webhooks#verify-manually ; Slack
 * https://api.slack.com/authentication/verifying-requests-from-slack ;
 * Typeform https://www.typeform.com/developers/webhooks/secure-your-webhooks/ .
 */
#include "triggers/webhook_verify.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/fields.h"

#define DEFAULT_TOLERANCE_S 300
#define MAX_TOLERANCE_S 86400
#define MAX_HEADER_NAME 64
#define MAX_PREFIX 32
#define MAX_SIGNED 256
#define MAX_PARTS 16            /* pieces of a base string: ample for 256 chars of template */
#define MAX_CANDIDATES 16       /* Stripe sends one v1 per active secret */
#define MAX_MAC 64              /* SHA-512 */
#define MAX_ENCODED 128         /* base64 of 64 bytes is 88 characters */
#define MAX_TIMESTAMP_DIGITS 12 /* unix seconds until year 33658; a 13-digit value is ms */

typedef enum { ENC_HEX, ENC_BASE64 } mac_encoding;

typedef struct scheme {
  const char *name;
  int stripe; /* t= and v1= entries share the signature header */
  const char *header, *prefix, *ts_header, *signed_tpl;
  mac_encoding enc;
  const char *digest; /* OpenSSL digest name */
  size_t mac_len;
  long long tolerance_s;
} scheme;

static const scheme presets[] = {
    {.name = "github",
     .header = "X-Hub-Signature-256",
     .prefix = "sha256=",
     .signed_tpl = "{body}",
     .enc = ENC_HEX,
     .digest = "SHA256",
     .mac_len = 32,
     .tolerance_s = DEFAULT_TOLERANCE_S},
    {.name = "stripe",
     .stripe = 1,
     .header = "Stripe-Signature",
     .signed_tpl = "{timestamp}.{body}",
     .enc = ENC_HEX,
     .digest = "SHA256",
     .mac_len = 32,
     .tolerance_s = DEFAULT_TOLERANCE_S},
    {.name = "slack",
     .header = "X-Slack-Signature",
     .prefix = "v0=",
     .ts_header = "X-Slack-Request-Timestamp",
     .signed_tpl = "v0:{timestamp}:{body}",
     .enc = ENC_HEX,
     .digest = "SHA256",
     .mac_len = 32,
     .tolerance_s = DEFAULT_TOLERANCE_S},
    {.name = "typeform",
     .header = "Typeform-Signature",
     .prefix = "sha256=",
     .signed_tpl = "{body}",
     .enc = ENC_BASE64,
     .digest = "SHA256",
     .mac_len = 32,
     .tolerance_s = DEFAULT_TOLERANCE_S},
};
#define NPRESETS (sizeof presets / sizeof presets[0])

static const char *const preset_names[] = {"github", "stripe", "slack", "typeform", NULL};
static const char *const block_names[] = {"hmac", NULL};
static const char *const hmac_keys[] = {"header",           "encoding",    "prefix", "algorithm",
                                        "timestamp_header", "tolerance_s", "signed", NULL};
static const char *const encodings[] = {"hex", "base64", NULL};

static const struct {
  const char *name, *digest;
  size_t len;
} algorithms[] = {{"sha256", "SHA256", 32}, {"sha512", "SHA512", 64}, {"sha1", "SHA1", 20}};
static const char *const algorithm_names[] = {"sha256", "sha512", "sha1", NULL};

/* ---- messages ---- */

/* How a JSON value is shown after "got": a short quoted string with
 * control characters escaped, a number, true/false, or its kind. */
static void describe(const cJSON *v, char *out, size_t size) {
  if (cJSON_IsString(v)) {
    size_t o = 0;
    const char *s = v->valuestring;
    out[o++] = '"';
    for (size_t i = 0; s[i] && o + 8 < size; i++) {
      if (i == 40) {
        o += (size_t)snprintf(out + o, size - o, "...");
        break;
      }
      unsigned char c = (unsigned char)s[i];
      if (c == '"' || c == '\\')
        o += (size_t)snprintf(out + o, size - o, "\\%c", c);
      else if (c < 0x20 || c == 0x7f)
        o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
      else
        out[o++] = (char)c;
    }
    snprintf(out + o, size - o, "\"");
  } else if (cJSON_IsNumber(v)) {
    snprintf(out, size, "%g", v->valuedouble);
  } else if (cJSON_IsBool(v)) {
    snprintf(out, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
  } else if (cJSON_IsArray(v)) {
    snprintf(out, size, "a list");
  } else if (cJSON_IsObject(v)) {
    snprintf(out, size, cJSON_GetArraySize(v) ? "a mapping" : "an empty mapping");
  } else {
    snprintf(out, size, "null");
  }
}

static int expected(perr *e, const char *path, const char *what, const cJSON *got) {
  char g[96];
  describe(got, g, sizeof g);
  return perr_set(e, "%s: expected %s, got %s", path, what, g);
}

/* "expected one of a, b, got "x" (did you mean 'y'?)" for a closed list. */
static int not_in_list(perr *e, const char *path, const char *what, const char *const *names,
                       const cJSON *got) {
  char g[96], list[160];
  size_t o = 0;
  describe(got, g, sizeof g);
  list[0] = '\0';
  for (size_t i = 0; names[i] && o < sizeof list; i++)
    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", names[i]);
  const char *near = cJSON_IsString(got) ? fields_did_you_mean(got->valuestring, names) : NULL;
  if (near)
    return perr_set(e, "%s: expected %s (%s), got %s (did you mean '%s'?)", path, what, list, g,
                    near);
  return perr_set(e, "%s: expected %s (%s), got %s", path, what, list, g);
}

/* ---- checking a scheme ---- */

/* RFC 9110 token characters: what a header field name may hold. */
static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int check_header_name(const cJSON *v, const char *path, perr *e) {
  if (!cJSON_IsString(v)) return expected(e, path, "a header name", v);
  size_t n = strlen(v->valuestring);
  if (n == 0 || n > MAX_HEADER_NAME)
    return perr_set(e, "%s: expected a header name of 1 to %d characters, got %zu", path,
                    MAX_HEADER_NAME, n);
  for (size_t i = 0; i < n; i++)
    if (!is_tchar((unsigned char)v->valuestring[i]))
      return perr_set(e, "%s: character %zu may not appear in a header name", path, i + 1);
  return 0;
}

static int check_prefix(const cJSON *v, const char *path, perr *e) {
  if (!cJSON_IsString(v)) return expected(e, path, "a string", v);
  size_t n = strlen(v->valuestring);
  if (n > MAX_PREFIX)
    return perr_set(e, "%s: expected at most %d characters, got %zu", path, MAX_PREFIX, n);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)v->valuestring[i];
    /* It is matched against a header value: visible ASCII and space only. */
    if (c < 0x20 || c > 0x7e)
      return perr_set(e, "%s: character %zu is not printable ASCII", path, i + 1);
  }
  return 0;
}

typedef enum { PART_LIT, PART_TIMESTAMP, PART_BODY } part_kind;
typedef struct sig_part {
  part_kind kind;
  size_t off, len; /* PART_LIT: the text's place in the template */
} sig_part;

/* Splits a base-string template into its pieces.  parts may be NULL (only
 * checking).  with_ts: whether a timestamp exists to put in it. */
static int parse_signed(const char *tpl, int with_ts, const char *path, sig_part *parts,
                        size_t *nparts, perr *e) {
  static const char ts_ph[] = "{timestamp}", body_ph[] = "{body}";
  size_t n = 0, bodies = 0, stamps = 0, lit = 0, i = 0, len = strlen(tpl);
  if (len == 0 || len > MAX_SIGNED)
    return perr_set(e, "%s: expected 1 to %d characters, got %zu", path, MAX_SIGNED, len);
  while (i <= len) {
    part_kind k = PART_LIT;
    size_t skip = 0;
    if (i < len && tpl[i] == '{') {
      if (!strncmp(tpl + i, ts_ph, sizeof ts_ph - 1)) {
        k = PART_TIMESTAMP;
        skip = sizeof ts_ph - 1;
      } else if (!strncmp(tpl + i, body_ph, sizeof body_ph - 1)) {
        k = PART_BODY;
        skip = sizeof body_ph - 1;
      } else {
        return perr_set(e,
                        "%s: '{' at character %zu opens no placeholder (only {body} and "
                        "{timestamp} are known)",
                        path, i + 1);
      }
    } else if (i < len) {
      i++;
      continue;
    }
    /* A placeholder or the end closes the literal run before it. */
    if (i > lit) {
      if (n == MAX_PARTS) return perr_set(e, "%s: too many pieces", path);
      if (parts) parts[n] = (sig_part){PART_LIT, lit, i - lit};
      n++;
    }
    if (i == len) break;
    if (n == MAX_PARTS) return perr_set(e, "%s: too many pieces", path);
    if (parts) parts[n] = (sig_part){k, 0, 0};
    n++;
    if (k == PART_BODY) bodies++;
    if (k == PART_TIMESTAMP) stamps++;
    i += skip;
    lit = i;
  }
  if (bodies != 1)
    return perr_set(e, "%s: expected {body} exactly once, found it %zu times", path, bodies);
  if (stamps && !with_ts) return perr_set(e, "%s: {timestamp} needs timestamp_header", path);
  if (!stamps && with_ts)
    return perr_set(e,
                    "%s: must contain {timestamp} when timestamp_header is set (an unsigned "
                    "timestamp can be rewritten by whoever replays the request)",
                    path);
  if (nparts) *nparts = n;
  return 0;
}

static int parse_hmac_block(const cJSON *blk, scheme *s, perr *e) {
  const cJSON *tolerance = NULL, *signed_v = NULL;
  char path[96];
  if (!cJSON_IsObject(blk)) return expected(e, "verify.hmac", "a mapping", blk);
  *s = (scheme){.name = "hmac",
                .enc = ENC_HEX,
                .digest = "SHA256",
                .mac_len = 32,
                .tolerance_s = DEFAULT_TOLERANCE_S};
  for (const cJSON *c = blk->child; c; c = c->next) {
    snprintf(path, sizeof path, "verify.hmac.%.40s", c->string);
    if (!strcmp(c->string, "header")) {
      if (check_header_name(c, path, e)) return -1;
      s->header = c->valuestring;
    } else if (!strcmp(c->string, "encoding")) {
      if (!cJSON_IsString(c)) return not_in_list(e, path, "one of", encodings, c);
      if (!strcmp(c->valuestring, "hex"))
        s->enc = ENC_HEX;
      else if (!strcmp(c->valuestring, "base64"))
        s->enc = ENC_BASE64;
      else
        return not_in_list(e, path, "one of", encodings, c);
    } else if (!strcmp(c->string, "prefix")) {
      if (check_prefix(c, path, e)) return -1;
      s->prefix = c->valuestring;
    } else if (!strcmp(c->string, "algorithm")) {
      size_t a = 0;
      while (a < sizeof algorithms / sizeof algorithms[0] &&
             !(cJSON_IsString(c) && !strcmp(c->valuestring, algorithms[a].name)))
        a++;
      if (a == sizeof algorithms / sizeof algorithms[0])
        return not_in_list(e, path, "one of", algorithm_names, c);
      s->digest = algorithms[a].digest;
      s->mac_len = algorithms[a].len;
    } else if (!strcmp(c->string, "timestamp_header")) {
      if (check_header_name(c, path, e)) return -1;
      s->ts_header = c->valuestring;
    } else if (!strcmp(c->string, "tolerance_s")) {
      double d = c->valuedouble;
      /* Range first: casting an out-of-range double is undefined. */
      if (!cJSON_IsNumber(c) || !(d >= 1 && d <= MAX_TOLERANCE_S) || d != (double)(long long)d) {
        char what[64];
        snprintf(what, sizeof what, "a whole number of seconds from 1 to %d", MAX_TOLERANCE_S);
        return expected(e, path, what, c);
      }
      tolerance = c;
      s->tolerance_s = (long long)d;
    } else if (!strcmp(c->string, "signed")) {
      if (cJSON_IsObject(c))
        return perr_set(e,
                        "%s: expected a string, got a mapping (braces start a YAML mapping: "
                        "quote the value, signed: \"{timestamp}.{body}\")",
                        path);
      if (!cJSON_IsString(c)) return expected(e, path, "a string", c);
      signed_v = c;
    } else {
      const char *near = fields_did_you_mean(c->string, hmac_keys);
      if (near)
        return perr_set(e,
                        "verify.hmac: unknown field '%.80s' (did you mean '%s'? allowed here: "
                        "header, encoding, prefix, algorithm, timestamp_header, tolerance_s, "
                        "signed)",
                        c->string, near);
      return perr_set(e,
                      "verify.hmac: unknown field '%.80s' (allowed here: header, encoding, "
                      "prefix, algorithm, timestamp_header, tolerance_s, signed)",
                      c->string);
    }
  }
  if (!s->header) return perr_set(e, "verify.hmac: missing required field 'header'");
  if (tolerance && !s->ts_header)
    return perr_set(e,
                    "verify.hmac.tolerance_s: needs timestamp_header (the window applies "
                    "to a signed timestamp)");
  if (s->ts_header && !strcasecmp(s->ts_header, s->header))
    return perr_set(e, "verify.hmac.timestamp_header: must differ from header");
  if (signed_v) {
    s->signed_tpl = signed_v->valuestring;
    if (parse_signed(s->signed_tpl, s->ts_header != NULL, "verify.hmac.signed", NULL, NULL, e))
      return -1;
  } else {
    s->signed_tpl = s->ts_header ? "{timestamp}.{body}" : "{body}";
  }
  return 0;
}

/* Fills s with borrowed strings (from presets or from verify). */
static int scheme_parse(const cJSON *verify, scheme *s, perr *e) {
  static const char shapes[] =
      "a preset (github, stripe, slack, typeform) or a mapping { hmac: { header: ... } }";
  if (!verify) return perr_set(e, "verify: missing");
  if (cJSON_IsString(verify)) {
    for (size_t i = 0; i < NPRESETS; i++)
      if (!strcmp(verify->valuestring, presets[i].name)) {
        *s = presets[i];
        return 0;
      }
    if (!strcmp(verify->valuestring, "hmac"))
      return perr_set(e, "verify: hmac needs its settings: verify: { hmac: { header: NAME } }");
    return not_in_list(e, "verify", "a preset", preset_names, verify);
  }
  if (!cJSON_IsObject(verify)) return expected(e, "verify", shapes, verify);
  const cJSON *c = verify->child;
  if (!c) return expected(e, "verify", shapes, verify);
  if (c->next)
    return perr_set(e, "verify.%.40s: only one scheme per trigger; this one already has '%.40s'",
                    c->next->string, c->string);
  if (!strcmp(c->string, "hmac")) return parse_hmac_block(c, s, e);
  for (size_t i = 0; i < NPRESETS; i++)
    if (!strcmp(c->string, presets[i].name))
      return perr_set(e, "verify.%s: a preset takes no settings; write verify: %s", c->string,
                      c->string);
  const char *near = fields_did_you_mean(c->string, block_names);
  if (!near) near = fields_did_you_mean(c->string, preset_names);
  if (near)
    return perr_set(e, "verify: unknown scheme '%.80s' (did you mean '%s'? expected %s)", c->string,
                    near, shapes);
  return perr_set(e, "verify: unknown scheme '%.80s' (expected %s)", c->string, shapes);
}

int webhook_verify_validate(const cJSON *verify, perr *e) {
  scheme s;
  return scheme_parse(verify, &s, e);
}

/* ---- the verifier ---- */

struct webhook_verifier {
  const char *name; /* static */
  int stripe;
  char *header, *prefix, *ts_header, *signed_tpl; /* prefix and ts_header may be NULL */
  size_t prefix_len;
  mac_encoding enc;
  char digest[16];
  size_t mac_len;
  long long tolerance_s;
  sig_part parts[MAX_PARTS];
  size_t nparts;
  EVP_MAC *mac; /* fetched once: fetching per request would search the providers */
};

void webhook_verifier_free(webhook_verifier *v) {
  if (!v) return;
  EVP_MAC_free(v->mac);
  free(v->header);
  free(v->prefix);
  free(v->ts_header);
  free(v->signed_tpl);
  free(v);
}

static int dup_opt(const char *s, char **out) {
  *out = NULL;
  if (!s) return 0;
  *out = strdup(s);
  return *out ? 0 : -1;
}

webhook_verifier *webhook_verifier_new(const cJSON *verify, perr *e) {
  scheme s;
  if (scheme_parse(verify, &s, e)) return NULL;
  webhook_verifier *v = calloc(1, sizeof *v);
  if (!v) goto oom;
  v->name = s.name;
  v->stripe = s.stripe;
  v->enc = s.enc;
  v->mac_len = s.mac_len;
  v->tolerance_s = s.tolerance_s;
  snprintf(v->digest, sizeof v->digest, "%s", s.digest);
  if (dup_opt(s.header, &v->header) || dup_opt(s.prefix, &v->prefix) ||
      dup_opt(s.ts_header, &v->ts_header) || dup_opt(s.signed_tpl, &v->signed_tpl))
    goto oom;
  v->prefix_len = v->prefix ? strlen(v->prefix) : 0;
  if (parse_signed(v->signed_tpl, v->stripe || v->ts_header, "verify.hmac.signed", v->parts,
                   &v->nparts, e)) {
    webhook_verifier_free(v);
    return NULL;
  }
  v->mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
  if (!v->mac) {
    webhook_verifier_free(v);
    perr_set(e, "verify: HMAC is not available from OpenSSL");
    return NULL;
  }
  return v;
oom:
  webhook_verifier_free(v);
  perr_set(e, "verify: out of memory");
  return NULL;
}

const char *webhook_verifier_name(const webhook_verifier *v) { return v ? v->name : "none"; }

/* ---- checking a request ---- */

typedef struct span {
  const char *p;
  size_t n;
} span;

static int refuse(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(char *why, size_t why_len, const char *fmt, ...) {
  if (why && why_len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

static span trim(const char *p, size_t n) {
  while (n && is_ows(*p)) p++, n--;
  while (n && is_ows(p[n - 1])) n--;
  return (span){p, n};
}

/* Unix seconds as decimal digits; 0 on success. */
static int parse_unix(span s, long long *out) {
  if (s.n == 0 || s.n > MAX_TIMESTAMP_DIGITS) return -1;
  long long t = 0;
  for (size_t i = 0; i < s.n; i++) {
    if (s.p[i] < '0' || s.p[i] > '9') return -1;
    t = t * 10 + (s.p[i] - '0');
  }
  *out = t;
  return 0;
}

static int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int is_b64(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

/* Decodes one received MAC into out (MAX_MAC bytes); its length, or -1
 * when it is not a well-formed encoding of a MAC of this size. */
static long decode_mac(mac_encoding enc, span s, size_t want, unsigned char *out) {
  if (enc == ENC_HEX) {
    if (s.n != 2 * want) return -1;
    for (size_t i = 0; i < want; i++) {
      int hi = hex_val(s.p[2 * i]), lo = hex_val(s.p[2 * i + 1]);
      if (hi < 0 || lo < 0) return -1;
      out[i] = (unsigned char)(hi << 4 | lo);
    }
    return (long)want;
  }
  /* EVP_DecodeBlock skips surrounding blanks and counts padding as data,
   * so the text is checked strictly here and the padding subtracted. */
  size_t data = 0, pad = 0;
  while (data < s.n && is_b64(s.p[data])) data++;
  while (data + pad < s.n && s.p[data + pad] == '=') pad++;
  if (data + pad != s.n || pad > 2 || data == 0 || data > MAX_ENCODED) return -1;
  if ((data + pad) % 4 && pad) return -1;
  size_t rem = data % 4;
  if (rem == 1) return -1;
  unsigned char in[MAX_ENCODED + 4];
  memcpy(in, s.p, data);
  size_t missing = rem ? 4 - rem : 0; /* padding is optional: restore it */
  memset(in + data, '=', missing);
  unsigned char tmp[(MAX_ENCODED + 4) / 4 * 3];
  int n = EVP_DecodeBlock(tmp, in, (int)(data + missing));
  if (n < 0) return -1;
  size_t len = (size_t)n - missing;
  if (len != want) return -1;
  memcpy(out, tmp, len);
  return (long)len;
}

/* Splits `t=<unix>,v1=<hex>,v1=<hex>,v0=<hex>` (any order; other schemes
 * ignored, as Stripe's own libraries do).  0, or -1 with why set. */
static int split_stripe(const webhook_verifier *v, const char *h, span *ts, span *cands,
                        size_t *ncand, char *why, size_t why_len) {
  *ncand = 0;
  ts->p = NULL;
  ts->n = 0;
  const char *p = h;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    span item = trim(p, n);
    if (item.n) {
      const char *eq = memchr(item.p, '=', item.n);
      if (!eq)
        return refuse(why, why_len, "malformed header %s: an entry is not KEY=VALUE", v->header);
      span key = trim(item.p, (size_t)(eq - item.p));
      span val = trim(eq + 1, item.n - (size_t)(eq + 1 - item.p));
      if (key.n == 1 && key.p[0] == 't') {
        if (ts->p) return refuse(why, why_len, "malformed header %s: more than one t=", v->header);
        *ts = val;
      } else if (key.n == 2 && key.p[0] == 'v' && key.p[1] == '1') {
        if (*ncand == MAX_CANDIDATES)
          return refuse(why, why_len, "malformed header %s: more than %d v1 signatures", v->header,
                        MAX_CANDIDATES);
        cands[(*ncand)++] = val;
      }
    }
    if (!end) break;
    p = end + 1;
  }
  if (!ts->p) return refuse(why, why_len, "malformed header %s: no t= timestamp", v->header);
  if (!*ncand) return refuse(why, why_len, "malformed header %s: no v1 signature", v->header);
  return 0;
}

static int compute_mac(const webhook_verifier *v, const char *secret, size_t secret_len, span ts,
                       const char *body, size_t body_len, unsigned char *out) {
  char digest[sizeof v->digest];
  memcpy(digest, v->digest, sizeof digest);
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(v->mac);
  if (!ctx) return -1;
  int ok = EVP_MAC_init(ctx, (const unsigned char *)secret, secret_len, params);
  for (size_t i = 0; ok && i < v->nparts; i++) {
    const sig_part *pt = &v->parts[i];
    switch (pt->kind) {
      case PART_LIT:
        ok = EVP_MAC_update(ctx, (const unsigned char *)v->signed_tpl + pt->off, pt->len);
        break;
      case PART_TIMESTAMP: ok = EVP_MAC_update(ctx, (const unsigned char *)ts.p, ts.n); break;
      case PART_BODY:
        /* An empty body still signs: the MAC then covers the rest alone. */
        if (body_len) ok = EVP_MAC_update(ctx, (const unsigned char *)body, body_len);
        break;
    }
  }
  size_t outl = 0;
  if (ok) ok = EVP_MAC_final(ctx, out, &outl, MAX_MAC);
  EVP_MAC_CTX_free(ctx);
  return ok && outl == v->mac_len ? 0 : -1;
}

int webhook_verify(const webhook_verifier *v, const char *secret, size_t secret_len,
                   const char *(*header)(void *ud, const char *name), void *hud, const char *body,
                   size_t body_len, int64_t now_s, char *why, size_t why_len) {
  if (why && why_len) why[0] = '\0';
  if (!v || !header) return refuse(why, why_len, "no verifier");
  /* HMAC accepts an empty key, which anyone can sign with. */
  if (!secret || !secret_len) return refuse(why, why_len, "no secret configured");
  if (!body && body_len) return refuse(why, why_len, "no body");

  const char *h = header(hud, v->header);
  if (!h) return refuse(why, why_len, "missing header %s", v->header);
  span cands[MAX_CANDIDATES];
  size_t ncand = 0;
  span ts = {NULL, 0};
  const char *ts_name = v->header;
  if (v->stripe) {
    if (split_stripe(v, h, &ts, cands, &ncand, why, why_len)) return -1;
  } else {
    span sig = trim(h, strlen(h));
    if (sig.n < v->prefix_len || (v->prefix_len && memcmp(sig.p, v->prefix, v->prefix_len)))
      return refuse(why, why_len, "malformed header %s: expected the prefix \"%s\"", v->header,
                    v->prefix ? v->prefix : "");
    cands[ncand++] = (span){sig.p + v->prefix_len, sig.n - v->prefix_len};
    if (v->ts_header) {
      ts_name = v->ts_header;
      const char *t = header(hud, v->ts_header);
      if (!t) return refuse(why, why_len, "missing header %s", v->ts_header);
      ts = trim(t, strlen(t));
    }
  }

  if (ts.p) {
    long long t;
    if (parse_unix(ts, &t))
      return refuse(why, why_len, "malformed header %s: expected a timestamp in unix seconds",
                    ts_name);
    /* t is at most 12 digits and the window at most a day, so t +/- the
     * window cannot overflow whatever now_s is; the distance is taken in
     * unsigned arithmetic, where it always fits. */
    int old = now_s > t + v->tolerance_s, ahead = now_s < t - v->tolerance_s;
    if (old || ahead) {
      unsigned long long d = old ? (unsigned long long)now_s - (unsigned long long)t
                                 : (unsigned long long)t - (unsigned long long)now_s;
      return refuse(why, why_len, "timestamp outside tolerance (replay?): %llu s %s, limit %lld s",
                    d, old ? "old" : "in the future", v->tolerance_s);
    }
  }

  unsigned char want[MAX_MAC], got[MAX_MAC];
  size_t decoded = 0;
  int match = 0;
  if (compute_mac(v, secret, secret_len, ts, body, body_len, want)) {
    OPENSSL_cleanse(want, sizeof want);
    return refuse(why, why_len, "could not compute the HMAC");
  }
  /* Every candidate is compared, so time does not tell which one matched. */
  for (size_t i = 0; i < ncand; i++) {
    if (decode_mac(v->enc, trim(cands[i].p, cands[i].n), v->mac_len, got) < 0) continue;
    decoded++;
    match |= CRYPTO_memcmp(got, want, v->mac_len) == 0;
  }
  OPENSSL_cleanse(want, sizeof want);
  if (!decoded && !v->stripe)
    return refuse(why, why_len, "malformed header %s: expected %zu %s after the prefix", v->header,
                  v->enc == ENC_HEX ? 2 * v->mac_len : (v->mac_len + 2) / 3 * 4,
                  v->enc == ENC_HEX ? "hex digits" : "base64 characters");
  if (!match) return refuse(why, why_len, "signature mismatch");
  return 0;
}
