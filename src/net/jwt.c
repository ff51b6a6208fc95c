/*
 * jwt: RS256 signing with OpenSSL's EVP interface (behind jwt.h).
 *
 * The PEM is read from memory (BIO_new_mem_buf) and freed right after the
 * signature; OpenSSL's error queue is drained on every failure so a later,
 * unrelated TLS error is not blamed on us, and only its reason string (no
 * key material) reaches the message.
 */
#include "net/jwt.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

int jwt_b64url(buf *out, const void *data, size_t len) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const unsigned char *p = data;
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
    char q[4] = {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};
    if (buf_add(out, q, 4)) return -1;
  }
  if (len - i == 1) {
    unsigned v = (unsigned)p[i] << 16;
    char q[2] = {abc[v >> 18], abc[(v >> 12) & 63]};
    if (buf_add(out, q, 2)) return -1;
  } else if (len - i == 2) {
    unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
    char q[3] = {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63]};
    if (buf_add(out, q, 3)) return -1;
  }
  return 0;
}

static int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

char *jwt_b64url_decode(const char *s, size_t len, size_t *out_len) {
  while (len > 0 && s[len - 1] == '=') len--;
  if (len % 4 == 1) return NULL;
  char *out = malloc(len / 4 * 3 + 3);
  if (!out) return NULL;
  size_t n = 0;
  unsigned acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64url_value(s[i]);
    if (v < 0) {
      free(out);
      return NULL;
    }
    acc = (acc << 6 | (unsigned)v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (char)((acc >> bits) & 0xff);
    }
  }
  out[n] = '\0';
  if (out_len) *out_len = n;
  return out;
}

/* The newest OpenSSL reason, then an empty queue. */
static const char *ssl_reason(void) {
  unsigned long code = ERR_peek_last_error();
  const char *r = code ? ERR_reason_error_string(code) : NULL;
  ERR_clear_error();
  return r ? r : "unknown reason";
}

static int sign(const char *input, size_t len, const char *pem, buf *out, perr *e) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  if (!key) {
    /* The passphrase callback is NULL: an encrypted PEM fails here too. */
    return perr_set(e, "private_key is not a readable PEM private key (%s)", ssl_reason());
  }
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
    EVP_PKEY_free(key);
    return perr_set(e, "private_key is not an RSA key (RS256 needs one)");
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t siglen = 0;
  unsigned char *sig = NULL;
  int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
           EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)input, len) == 1 &&
           (sig = malloc(siglen)) != NULL &&
           EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)input, len) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  int rc = 0;
  if (!ok)
    rc = perr_set(e, "RS256 signature failed (%s)", ssl_reason());
  else if (jwt_b64url(out, sig, siglen))
    rc = perr_set(e, "out of memory");
  free(sig);
  return rc;
}

char *jwt_sign_rs256(const char *claims_json, const char *private_key_pem, perr *e) {
  static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
  buf b;
  buf_init(&b, 64 * 1024);
  if (jwt_b64url(&b, header, sizeof header - 1) || buf_addc(&b, '.') ||
      jwt_b64url(&b, claims_json, strlen(claims_json))) {
    perr_set(e, "out of memory");
    return NULL;
  }
  size_t signed_len = b.len;
  if (buf_addc(&b, '.')) {
    perr_set(e, "out of memory");
    return NULL;
  }
  if (sign(b.data, signed_len, private_key_pem, &b, e)) {
    buf_release(&b);
    return NULL;
  }
  char *jwt = buf_detach(&b, NULL);
  if (!jwt) perr_set(e, "out of memory");
  return jwt;
}
