/*
 * log: one structured line per happening, to stderr (journald keeps it).
 *
 *   ts=2026-11-27T19:40:00.123Z level=info msg="run succeeded" run=12 recipe=crash-csv
 *
 * The message is the constant part; the variable parts are key=value pairs
 * given as a printf tail.  log_kv quotes a value when it needs it, so callers
 * write `log_info("run failed", "run=%lld error=%s", id, log_q(err))`.
 * Values registered with log_redact() are replaced by "[redacted]" wherever
 * they would appear, so a resolved secret never reaches the journal.
 */
#ifndef PROMPTD_LOG_H
#define PROMPTD_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level min);
void log_set_json(int on); /* one JSON object per line instead of logfmt */
int log_level_parse(const char *s, log_level *out);

void log_msg(log_level lvl, const char *msg, const char *kv_fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define log_debug(msg, ...) log_msg(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...) log_msg(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_msg(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_msg(LOG_ERROR, msg, __VA_ARGS__)

/* Quotes s for a logfmt value into a rotating static slot (8 slots), so a
 * few may be used in one call. Long values are cut at 300 bytes. */
const char *log_q(const char *s);

/* Never print this value (copied; freed by log_redact_clear). */
void log_redact(const char *secret);
void log_redact_clear(void);

#endif
