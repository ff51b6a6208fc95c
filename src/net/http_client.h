/*
 * http_client: all of promptd's outbound HTTP, asynchronous, on the one
 * libev loop, through libcurl's multi-socket API.
 *
 * Shape
 *   One http_client owns one CURLM (so connections, TLS sessions and HTTP/2
 *   streams are shared by every call), one ev_timer for curl's timeouts, one
 *   0 s ev_timer for deferred completions, and one ev_io per socket curl
 *   asks about.  Each http_call owns its easy handle, its copied request
 *   body, its capped response buffers and its error buffer.  No threads and
 *   no blocking call: DNS uses curl's own resolver (threaded or c-ares, as
 *   the distribution builds it), connect and TLS are driven by the loop.
 *
 * Async contract (STYLE.md habit 3)
 *   http_client_start either fails now (-1, perr set, done never called) or
 *   returns 0 and calls done exactly once, later, from the loop: never from
 *   inside http_client_start or http_call_cancel.  The one exception is
 *   http_client_free, which completes every call still outstanding as
 *   cancelled, inside itself, so the owner can release what the callbacks
 *   refer to before the loop goes away.
 *
 *   A done callback may start new calls, cancel other calls and even call
 *   http_client_free (the glue then finishes tearing down once the callback
 *   returns).  The response it receives, including body and headers, is
 *   valid only during the callback.
 *
 * Results
 *   transport_error == 0 means an HTTP status was received (any status,
 *   4xx and 5xx included: classifying them is the caller's job).  Otherwise
 *   it is the CURLcode, or HTTP_CANCELLED, and status is 0.  A body larger
 *   than max_response is a transport error, never a truncated success.
 *
 * Other protocols on the same multi
 *   http_client_start_easy runs an easy handle the caller configured (IMAP,
 *   SMTP: URL, credentials, TLS, upload) under the same contract, so those
 *   connections share the loop wiring, the timer and the shutdown order.
 *   The glue keeps for itself only what it needs to drive and report the
 *   transfer: private pointer, error buffer, write and header callbacks,
 *   no signals, timeouts.
 *
 * Process-wide state
 *   curl_global_init runs once, from the first http_client_new (promptd is
 *   single-threaded at that point).  curl_global_cleanup is never called:
 *   what it would free is reachable process-global state, and calling it
 *   while another component still uses curl would be worse than keeping it.
 */
#ifndef PROMPTD_NET_HTTP_CLIENT_H
#define PROMPTD_NET_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stddef.h>

#include "core/err.h"

struct ev_loop;

typedef struct http_client http_client;
typedef struct http_call http_call;

/* transport_error of a call ended by http_call_cancel or http_client_free. */
#define HTTP_CANCELLED (-1)

typedef struct http_request {
  const char *method;         /* "GET", "POST", ... */
  const char *url;            /* http:// or https:// only */
  const char *const *headers; /* "Name: value" strings, NULL-terminated, or NULL */
  const char *body;
  size_t body_len;         /* copied at start; may be NULL */
  long timeout_ms;         /* whole transfer; 0 = 60000 */
  long connect_timeout_ms; /* 0 = 10000 */
  size_t max_response;     /* body cap; 0 = 8 MiB; past it the call fails (transport error) */
} http_request;

typedef struct http_response {
  int transport_error; /* 0 when an HTTP status was received; else the CURLcode (or HTTP_CANCELLED)
                        */
  const char *error;   /* human message for transport errors (curl's error buffer), "" otherwise */
  int timed_out;       /* 1 for CURLE_OPERATION_TIMEDOUT */
  long status;         /* HTTP status, 0 on transport error */
  const char *body;
  size_t body_len; /* NUL-terminated; valid only during the callback */
  double total_s;  /* transfer time */
  /* opaque header storage follows */
} http_response;

/* Response header by name, case-insensitive; the last value if repeated;
 * NULL when absent (always NULL on a transport error).  Headers are those of
 * the final response head: a 100 Continue or other interim head is dropped. */
const char *http_response_header(const http_response *r, const char *name);

typedef void (*http_done_fn)(void *ud, const http_response *r);

/* Creates a client on loop (which must outlive it). */
http_client *http_client_new(struct ev_loop *loop, perr *e);

/* Per-host connection limit (default 64).  Transfers past it wait for a
 * free connection.  Over HTTP/2 one connection carries many calls, so this
 * matters for HTTP/1.1 servers, where it bounds concurrency per host. */
int http_client_set_max_host_connections(http_client *c, long n, perr *e);

/* Starts a call.  Fails now (-1, e set, done never called) or returns 0 and
 * calls done exactly once, later, never from inside this call.  *out (may be
 * NULL) lets the caller cancel; it is valid until done has been called. */
int http_client_start(http_client *c, const http_request *req, http_done_fn done, void *ud,
                      http_call **out, perr *e);

/* What http_client_start_easy needs besides the easy handle. */
typedef struct http_easy_opts {
  long timeout_ms;         /* whole transfer; 0 = 60000 */
  long connect_timeout_ms; /* 0 = 10000 */
  size_t max_response;     /* body cap; 0 = 8 MiB; past it the call fails (transport error) */
  size_t max_headers;      /* header stream cap; 0 = 256 KiB; past it the call fails */
  /* 1: keep the header stream verbatim (for IMAP and SMTP it is every line
   * the server sent), read with http_response_raw_headers.  0: parse it as
   * HTTP, read with http_response_header. */
  int raw_headers;
} http_easy_opts;

/* Starts a transfer on an easy handle the caller configured, under the
 * contract of http_client_start.  The call owns easy from here on, also
 * when this fails (it is cleaned up then): the caller must not touch it
 * again, and must not set CURLOPT_PRIVATE, the error buffer, the write or
 * header callbacks (the glue sets them; they would be overwritten).  What
 * the caller's options point to (upload data, slists) must stay valid
 * until done has run.  opts may be NULL (all defaults, parsed headers).
 *
 * The response differs from an HTTP call's in two ways: transport_error is
 * 0 exactly when curl reported CURLE_OK (status is whatever
 * CURLINFO_RESPONSE_CODE says, often 0 outside HTTP), and body and headers
 * hold what was received also when the transfer failed, because other
 * protocols explain a refusal in those lines. */
int http_client_start_easy(http_client *c, CURL *easy, const http_easy_opts *opts,
                           http_done_fn done, void *ud, http_call **out, perr *e);

/* The header stream of a call started with raw_headers, verbatim and
 * NUL-terminated, its length in *len (may be NULL); "" for other calls.
 * Valid only during the callback. */
const char *http_response_raw_headers(const http_response *r, size_t *len);

/* Stops the transfer now; done is called later (next loop iteration, never
 * inside this call) with transport_error = HTTP_CANCELLED.  Only valid
 * before done has run; a second cancel before then is harmless. */
void http_call_cancel(http_call *call);

/* Calls started whose done has not been called yet (cancelled ones whose
 * done is still pending included). */
size_t http_client_in_flight(const http_client *c);

/* Cancels every call still outstanding: their done callbacks run, with
 * HTTP_CANCELLED, inside this call.  Then curl_multi_cleanup (while the loop
 * is still alive: curl closes sockets through the socket callback), stops
 * the watchers and frees.  The loop has no active watcher of this client
 * afterwards.  NULL is ignored. */
void http_client_free(http_client *c);

#endif
