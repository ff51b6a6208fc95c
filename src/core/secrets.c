/*
 * secrets: resolving env:, file: and cred: references.
 *
 * Rules, and why:
 *   - A reference is checked for syntax alone by secret_is_ref (recipe
 *     import), and resolved only when a step needs it, so a recipe can be
 *     imported on a machine that does not hold the secret.
 *   - file: takes an absolute path: the daemon's working directory is not
 *     something a recipe author controls.  cred: takes a bare name (no '/',
 *     not "." or ".."), as systemd's LoadCredential= does.
 *   - A file is read up to 64 KiB (a key, a token, a PEM: never more), must
 *     be a regular file, and loses one trailing newline ("\n" or "\r\n"),
 *     which editors and `echo` add.  NUL bytes are refused: the value is a
 *     C string and a NUL would cut it silently.
 *   - An empty value is an error: an empty HMAC key or token is always a
 *     mistake, and failing at resolution names the reference.
 *   - Every value returned is registered with log_redact first.
 *   - Messages name the reference and the reason; they never hold a value.
 */
#include "core/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"

#define SECRET_FILE_MAX (64 * 1024)

static int env_name_ok(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9')) return 0;
  for (; *s; s++) {
    char c = *s;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '_'))
      return 0;
  }
  return 1;
}

static int cred_name_ok(const char *s) {
  if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return 0;
  return strchr(s, '/') == NULL;
}

int secret_is_ref(const char *s) {
  if (!s) return 0;
  if (strncmp(s, "env:", 4) == 0) return env_name_ok(s + 4);
  if (strncmp(s, "file:", 5) == 0) return s[5] == '/' && s[6] != '\0';
  if (strncmp(s, "cred:", 5) == 0) return cred_name_ok(s + 5);
  return 0;
}

/* Reads path (capped, regular file, no NUL, one trailing newline removed).
 * ref is only used in messages. */
static char *read_secret_file(const char *path, const char *ref, perr *e) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    perr_set(e, "%s: cannot open %s: %s", ref, path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    perr_set(e, "%s: cannot stat %s: %s", ref, path, strerror(errno));
    close(fd);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    perr_set(e, "%s: %s is not a regular file", ref, path);
    close(fd);
    return NULL;
  }
  buf b;
  buf_init(&b, SECRET_FILE_MAX);
  char chunk[4096];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      perr_set(e, "%s: cannot read %s: %s", ref, path, strerror(errno));
      buf_release(&b);
      close(fd);
      return NULL;
    }
    if (n == 0) break;
    if (buf_add(&b, chunk, (size_t)n)) {
      perr_set(e, "%s: %s is larger than %d bytes (or memory ran out)", ref, path,
               SECRET_FILE_MAX);
      close(fd);
      return NULL;
    }
  }
  close(fd);
  size_t len;
  char *v = buf_detach(&b, &len);
  if (!v) {
    perr_set(e, "%s: out of memory", ref);
    return NULL;
  }
  if (memchr(v, '\0', len)) {
    /* Wipe: this buffer held (part of) a secret. */
    memset(v, 0, len);
    free(v);
    perr_set(e, "%s: %s contains a NUL byte", ref, path);
    return NULL;
  }
  if (len > 0 && v[len - 1] == '\n') {
    v[--len] = '\0';
    if (len > 0 && v[len - 1] == '\r') v[--len] = '\0';
  }
  return v;
}

char *secret_resolve(const char *ref, perr *e) {
  if (!secret_is_ref(ref)) {
    perr_set(e, "\"%.200s\" is not a secret reference (expected env:NAME, file:/path or "
                "cred:NAME)",
             ref ? ref : "");
    return NULL;
  }
  char *v = NULL;
  if (strncmp(ref, "env:", 4) == 0) {
    const char *s = getenv(ref + 4);
    if (!s) {
      perr_set(e, "%s: environment variable %s is not set", ref, ref + 4);
      return NULL;
    }
    v = strdup(s);
  } else if (strncmp(ref, "file:", 5) == 0) {
    v = read_secret_file(ref + 5, ref, e);
    if (!v) return NULL;
  } else {
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir) {
      perr_set(e, "%s: $CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with "
                  "LoadCredential=)",
               ref);
      return NULL;
    }
    buf path;
    buf_init(&path, 4096);
    buf_printf(&path, "%s/%s", dir, ref + 5);
    if (path.failed) {
      perr_set(e, "%s: credential path too long", ref);
      return NULL;
    }
    v = read_secret_file(path.data, ref, e);
    buf_release(&path);
    if (!v) return NULL;
  }
  if (!v) {
    perr_set(e, "%s: out of memory", ref);
    return NULL;
  }
  if (!*v) {
    free(v);
    perr_set(e, "%s: the value is empty", ref);
    return NULL;
  }
  log_redact(v);
  return v;
}
