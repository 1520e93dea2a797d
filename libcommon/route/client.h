/*
 * client.h - the client side of /an/route/1.0.0 (man/an-route.7) on an
 * an_host connection: one request per stream, several at once on one
 * connection, the response head and body delivered as they arrive.
 *
 * Two layers:
 *   an_route_reader   sans-I/O: response bytes in (any pieces), head and
 *                     body spans out through callbacks; pause/resume with a
 *                     capped hold buffer; end of stream; protocol errors.
 *   an_route_call     one request on a host connection: opens the stream,
 *                     writes route line + head (+ body the caller streams),
 *                     feeds the reader, enforces the response and idle
 *                     timeouts, abort.
 *
 * Backpressure: a consumer that cannot take more (a slow pipe, a browser
 * socket) calls an_route_call_pause().  The stream's reading is then held
 * (an_stream_pause), so yamux's receive window stops the server; the few
 * bytes already read when the pause came (at most one read of the host)
 * are held in a buffer capped at hold_max, and a reader that overruns the
 * cap fails the call with AN_ELIMIT instead of growing memory.
 */
#ifndef AN_ROUTE_CLIENT_H
#define AN_ROUTE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route/route.h"
#include "transport/host.h"
#include "util/buf.h"

/* Default cap of the bytes held while paused. */
#define AN_ROUTE_HOLD_MAX (16u * 1024 * 1024)

/* ---- the sans-I/O response reader ---- */

struct an_route_reader_cb {
	/*
	 * The response head is complete.  h is borrowed from the reader and
	 * valid until an_route_reader_free.
	 */
	void (*on_head)(void *arg, const struct an_route_head *h);
	/* A span of body payload (borrowed for the call); n > 0. */
	void (*on_body)(void *arg, const uint8_t *p, size_t n);
};

/* Fields private.  Embed freely. */
struct an_route_reader {
	struct an_route_parser parser;
	struct an_route_body body;
	struct an_buf held;  /* input not yet processed because of a pause */
	bool head_done;
	bool done;           /* the body is complete */
	bool paused;
	bool eof_pending;    /* FIN seen while bytes were held */
	int error;           /* sticky */
	const struct an_route_reader_cb *cb;
	void *arg;
};

/*
 * Reader of the response to a request (head_request: it was HEAD, so no
 * body).  deadline_ms: absolute time (caller's clock) by which the head
 * must be complete, 0 for none.  hold_max: cap on bytes held while paused
 * (0: AN_ROUTE_HOLD_MAX).  cb and arg borrowed.  Allocates nothing until
 * bytes arrive; free with an_route_reader_free.
 */
void an_route_reader_init(struct an_route_reader *r, bool head_request, uint64_t deadline_ms,
			  size_t hold_max, const struct an_route_reader_cb *cb, void *arg);

/* Free the reader's buffers (NULL-safe); the head dies with them. */
void an_route_reader_free(struct an_route_reader *r);

/*
 * Feed in[0..len) (borrowed).  Calls on_head once and on_body for each
 * payload span, until done, paused or an error; input left over while
 * paused is held (copied).  Returns
 *   0   the response goes on
 *   1   the response is complete
 *   AN_EMALFORMED, AN_ETOOBIG, AN_EPROTO  an invalid response head or body
 *                  framing (a gateway answers 502: an_route_reader_status)
 *   AN_ELIMIT      more than hold_max bytes held while paused
 * Bytes after the end of the response (one response per stream) are not
 * part of it and are dropped, whatever the pieces they arrive in.
 *   -ENOMEM
 * Errors are sticky.  Callbacks may call an_route_reader_pause.
 */
int an_route_reader_feed(struct an_route_reader *r, const uint8_t *in, size_t len);

/*
 * The stream ended (FIN).  1 if the response is complete (also for a body
 * that runs to the end of the stream), AN_ETRUNCATED if the head or body
 * was cut short, the sticky error otherwise; 0 if the end is held behind a
 * pause (it is applied by an_route_reader_resume).
 */
int an_route_reader_eof(struct an_route_reader *r);

/* Stop delivering; later input is held. */
void an_route_reader_pause(struct an_route_reader *r);

/*
 * Deliver what is held (callbacks run from here, and may pause again),
 * then the pending end of stream.  Returns as an_route_reader_feed (or
 * an_route_reader_eof when that end was pending).
 */
int an_route_reader_resume(struct an_route_reader *r);

/* true if the time is past the head deadline (then -ETIMEDOUT is sticky). */
bool an_route_reader_expired(struct an_route_reader *r, uint64_t now_ms);

/* Bytes currently held. */
size_t an_route_reader_held(const struct an_route_reader *r);

/* The head once complete (borrowed), else NULL. */
const struct an_route_head *an_route_reader_head(const struct an_route_reader *r);

/* ---- request heads ---- */

/*
 * Append the route line and request head for a request to the site
 * an://<peerhash>@<host> (did = an_record_did of that lookup) to out.
 * peerhash: 16-character peer hash; host: lowercase fqdn; fields without
 * Host and the framing fields (written from host and framing).  Returns 0,
 * AN_EMALFORMED for a bad peer hash or host, or as an_route_request_write.
 */
int an_route_client_head(struct an_buf *out, const char *peerhash, const char *host,
			 const char *method, const char *target, const struct an_route_field *fields,
			 size_t n_fields, enum an_route_framing framing, uint64_t content_length);

/* ---- one request on a host connection ---- */

struct an_route_call;

struct an_route_call_handler {
	/* The response head (borrowed; valid until on_done returns). */
	void (*on_head)(struct an_route_call *call, const struct an_route_head *h, void *arg);
	/* Body payload (borrowed for the call). */
	void (*on_body)(struct an_route_call *call, const uint8_t *p, size_t n, void *arg);
	/*
	 * Exactly once: err 0 when the whole response arrived, else
	 * -ETIMEDOUT (no response head in time, or idle), AN_ERESET (the server
	 * abandoned the response), AN_ETRUNCATED, AN_EPROTO/AN_EMALFORMED/
	 * AN_ETOOBIG (invalid response), AN_ENOPROTO (peer does not speak
	 * /an/route/1.0.0), AN_ECLOSED, AN_ELIMIT, -ECANCELED (aborted by us).
	 * The call is gone once this returns.
	 */
	void (*on_done)(struct an_route_call *call, int err, void *arg);
	/*
	 * Optional, for requests with a body: the stream can take more body
	 * (first after the stream opened, then when its queue drained below
	 * AN_STREAM_QUEUE_HIGH).
	 */
	void (*on_writable)(struct an_route_call *call, void *arg);
};

struct an_route_call_opts {
	const char *peerhash;  /* 16-character peer hash of the site */
	const char *host;      /* lowercase fqdn */
	const char *method;    /* "GET" when NULL */
	const char *target;    /* origin-form; "/" when NULL */
	const struct an_route_field *fields; /* extra fields (borrowed for the call) */
	size_t n_fields;
	enum an_route_framing framing;  /* request body: NONE, LENGTH or CHUNKED */
	uint64_t content_length;
	int response_timeout_ms;  /* 0: AN_ROUTE_RESPONSE_TIMEOUT_MS */
	int idle_timeout_ms;      /* 0: AN_ROUTE_IDLE_TIMEOUT_MS */
	size_t hold_max;          /* 0: AN_ROUTE_HOLD_MAX */
};

/*
 * Start a request on conn (borrowed): open a /an/route/1.0.0 stream and
 * queue the route line and head (written right behind the negotiation).
 * With framing NONE the sending side is closed at once; otherwise the
 * caller writes the body with an_route_call_write and ends it with
 * an_route_call_end.  handler/arg borrowed.  The call is owned by the
 * library; *out (may be NULL) stays valid until on_done returns.  on_done
 * is never called from inside this function.  Returns 0, AN_EMALFORMED /
 * -EINVAL for bad options, or an_host_stream_open's error.
 */
int an_route_call_start(struct an_host_conn *conn, const struct an_route_call_opts *o,
			const struct an_route_call_handler *handler, void *arg,
			struct an_route_call **out);

/*
 * Request body bytes (copied), framed as announced.  AN_ETOOBIG past the
 * Content-Length, -EINVAL after the end, AN_ECLOSED if the stream is gone.
 * Callers keep an_route_call_queued under AN_STREAM_QUEUE_HIGH and wait
 * for on_writable.
 */
int an_route_call_write(struct an_route_call *call, const uint8_t *p, size_t n);

/* End the request body (last chunk, FIN).  AN_ETRUNCATED if short of Content-Length. */
int an_route_call_end(struct an_route_call *call);

/* Request bytes queued on the stream, not yet taken by yamux. */
size_t an_route_call_queued(const struct an_route_call *call);

/*
 * Pause / resume delivery of the response (on_body).  The idle timeout
 * does not run while paused: a slow consumer is not the server's fault.
 */
void an_route_call_pause(struct an_route_call *call);
void an_route_call_resume(struct an_route_call *call);

/* Abort: reset the stream; on_done(-ECANCELED) follows, not from inside this call. */
void an_route_call_abort(struct an_route_call *call);

/* The connection the call runs on (borrowed). */
struct an_host_conn *an_route_call_conn(const struct an_route_call *call);

#endif
