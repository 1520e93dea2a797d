/*
 * client.c - the client side of /an/route/1.0.0 (see client.h).
 */
#include "route/client.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/peerid.h"
#include "record/record.h"
#include "util/error.h"

/* ---- the reader ---- */

void an_route_reader_init(struct an_route_reader *r, bool head_request, uint64_t deadline_ms,
			  size_t hold_max, const struct an_route_reader_cb *cb, void *arg)
{
	memset(r, 0, sizeof(*r));
	an_route_parser_init_response(&r->parser, head_request, deadline_ms);
	an_buf_init(&r->held, hold_max ? hold_max : AN_ROUTE_HOLD_MAX);
	r->cb = cb;
	r->arg = arg;
}

void an_route_reader_free(struct an_route_reader *r)
{
	if (!r)
		return;
	an_route_parser_free(&r->parser);
	an_buf_free(&r->held);
}

static int reader_fail(struct an_route_reader *r, int err)
{
	if (!r->error)
		r->error = err;
	return r->error;
}

/*
 * Process in[0..len) until done, paused or an error; *used is what was
 * processed.  Returns 0, 1 (complete) or the error.
 */
static int reader_process(struct an_route_reader *r, const uint8_t *in, size_t len, size_t *used)
{
	size_t off = 0;
	int rc = 0;
	*used = 0;
	while (!r->paused) {
		if (!r->head_done) {
			size_t u = 0;
			rc = an_route_parse(&r->parser, in + off, len - off, &u);
			off += u;
			if (rc < 0)
				return reader_fail(r, rc);
			if (rc == 0)
				break;
			const struct an_route_head *h = an_route_parser_head(&r->parser);
			r->head_done = true;
			an_route_body_init(&r->body, h->framing, h->content_length, 0);
			if (r->cb && r->cb->on_head)
				r->cb->on_head(r->arg, h);
			if (h->framing == AN_ROUTE_BODY_NONE)
				r->done = true;
			continue;
		}
		if (r->done) {
			/* one response per stream: bytes after it are not part of it
			 * and are dropped, whichever read they arrive in */
			*used = len;
			return 1;
		}
		if (off >= len)
			break;
		const uint8_t *data = NULL;
		size_t u = 0, n = 0;
		rc = an_route_body_decode(&r->body, in + off, len - off, &u, &data, &n);
		off += u;
		if (rc < 0)
			return reader_fail(r, rc);
		if (n && r->cb && r->cb->on_body)
			r->cb->on_body(r->arg, data, n);
		if (rc == 1)
			r->done = true;
	}
	*used = off;
	if (r->done && !r->paused)
		return 1;
	return 0;
}

int an_route_reader_feed(struct an_route_reader *r, const uint8_t *in, size_t len)
{
	size_t used = 0;
	int rc;
	if (r->error)
		return r->error;
	if (r->done && !r->held.len)
		return r->paused ? 0 : 1; /* bytes after the response: dropped */
	if (r->paused || r->held.len) {
		rc = an_buf_append(&r->held, in, len);
		return rc == AN_ETOOBIG ? reader_fail(r, AN_ELIMIT) : rc < 0 ? reader_fail(r, rc) : 0;
	}
	rc = reader_process(r, in, len, &used);
	if (rc < 0)
		return rc;
	if (used < len) { /* paused by a callback */
		int arc = an_buf_append(&r->held, in + used, len - used);
		if (arc < 0)
			return reader_fail(r, arc == AN_ETOOBIG ? AN_ELIMIT : arc);
	}
	return rc;
}

static int reader_end(struct an_route_reader *r)
{
	if (r->error)
		return r->error;
	if (!r->head_done)
		return reader_fail(r, AN_ETRUNCATED);
	if (r->done)
		return 1;
	int rc = an_route_body_eof(&r->body);
	if (rc < 0)
		return reader_fail(r, rc);
	r->done = true;
	return 1;
}

int an_route_reader_eof(struct an_route_reader *r)
{
	if (r->error)
		return r->error;
	if (r->paused || r->held.len) {
		r->eof_pending = true;
		return 0;
	}
	return reader_end(r);
}

void an_route_reader_pause(struct an_route_reader *r)
{
	r->paused = true;
}

int an_route_reader_resume(struct an_route_reader *r)
{
	size_t used = 0;
	int rc = 0;
	r->paused = false;
	if (r->error)
		return r->error;
	if (r->held.len) {
		rc = reader_process(r, r->held.data, r->held.len, &used);
		if (rc < 0)
			return rc;
		an_buf_consume(&r->held, used);
		if (r->held.len)
			return 0; /* paused again */
	}
	if (r->eof_pending) {
		r->eof_pending = false;
		return reader_end(r);
	}
	if (r->done)
		return 1;
	return rc;
}

bool an_route_reader_expired(struct an_route_reader *r, uint64_t now_ms)
{
	if (r->head_done || r->error)
		return false;
	if (an_route_parser_expired(&r->parser, now_ms)) {
		reader_fail(r, -ETIMEDOUT);
		return true;
	}
	return false;
}

size_t an_route_reader_held(const struct an_route_reader *r)
{
	return r->held.len;
}

const struct an_route_head *an_route_reader_head(const struct an_route_reader *r)
{
	return r->head_done ? an_route_parser_head(&r->parser) : NULL;
}

/* ---- request heads ---- */

int an_route_client_head(struct an_buf *out, const char *peerhash, const char *host,
			 const char *method, const char *target, const struct an_route_field *fields,
			 size_t n_fields, enum an_route_framing framing, uint64_t content_length)
{
	char lookup[AN_PEERHASH_LEN + AN_RECORD_FQDN_MAX + 16], did[AN_RECORD_DID_MAX];
	if (!peerhash || !an_peerhash_valid(peerhash) || !host || !an_record_fqdn_valid(host))
		return AN_EMALFORMED;
	snprintf(lookup, sizeof(lookup), "an://%s@%s", peerhash, host);
	int rc = an_record_did(lookup, did);
	if (rc < 0)
		return rc;
	struct an_route_request req = {
		.did = did,
		.host = host,
		.method = method ? method : "GET",
		.target = target ? target : "/",
		.fields = fields,
		.n_fields = n_fields,
		.framing = framing,
		.content_length = content_length,
	};
	return an_route_request_write(out, &req);
}

/* ---- one call ---- */

struct an_route_call {
	struct an_host_conn *conn;
	struct ev_loop *loop;
	struct an_stream *s; /* NULL once closed */
	const struct an_route_call_handler *h;
	void *arg;
	struct an_route_reader rd;
	struct an_route_writer wr;
	ev_timer response_timer; /* start -> response head */
	ev_timer idle_timer;     /* no byte moving */
	ev_timer defer_timer;    /* deferred completion (abort, start errors) */
	int idle_ms;
	int defer_err;
	int busy;        /* nesting of our entry points: free only at 0 */
	bool done;       /* on_done was called */
	bool closed;     /* the stream's on_close came */
	bool body_ended;
	bool paused;
	bool aborting;   /* an_route_call_abort: completion deferred */
	bool opened;     /* the stream is negotiated */
};

static void call_free(struct an_route_call *call)
{
	ev_timer_stop(call->loop, &call->response_timer);
	ev_timer_stop(call->loop, &call->idle_timer);
	ev_timer_stop(call->loop, &call->defer_timer);
	an_route_reader_free(&call->rd);
	an_host_conn_unref(call->conn);
	free(call);
}

static void call_enter(struct an_route_call *call)
{
	call->busy++;
}

static void call_leave(struct an_route_call *call)
{
	if (--call->busy == 0 && call->done && call->closed)
		call_free(call);
}

/* Report err (once); a failed call's stream is reset. */
static void call_finish(struct an_route_call *call, int err)
{
	if (call->done)
		return;
	call->done = true;
	ev_timer_stop(call->loop, &call->response_timer);
	ev_timer_stop(call->loop, &call->idle_timer);
	ev_timer_stop(call->loop, &call->defer_timer);
	if (err && call->s && !call->closed)
		an_stream_reset(call->s); /* on_close runs now, sees done */
	if (call->h->on_done)
		call->h->on_done(call, err, call->arg);
}

static void call_result(struct an_route_call *call, int rc)
{
	if (rc == 1)
		call_finish(call, 0);
	else if (rc < 0)
		call_finish(call, rc);
}

static void rd_head(void *arg, const struct an_route_head *h)
{
	struct an_route_call *call = arg;
	ev_timer_stop(call->loop, &call->response_timer);
	if (call->h->on_head && !call->done)
		call->h->on_head(call, h, call->arg);
}

static void rd_body(void *arg, const uint8_t *p, size_t n)
{
	struct an_route_call *call = arg;
	if (call->h->on_body && !call->done)
		call->h->on_body(call, p, n, call->arg);
}

static const struct an_route_reader_cb reader_cb = {.on_head = rd_head, .on_body = rd_body};

static void touch(struct an_route_call *call)
{
	if (!call->paused && !call->done)
		ev_timer_again(call->loop, &call->idle_timer);
}

static void st_open(struct an_stream *s, void *arg)
{
	struct an_route_call *call = arg;
	call_enter(call);
	call->opened = true;
	touch(call);
	if (!call->done && call->body_ended) {
		int rc = an_stream_close_write(s);
		if (rc < 0)
			call_finish(call, rc);
	} else if (!call->done && call->h->on_writable) {
		call->h->on_writable(call, call->arg);
	}
	call_leave(call);
}

static void st_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct an_route_call *call = arg;
	(void)s;
	if (call->done || call->aborting)
		return;
	call_enter(call);
	touch(call);
	call_result(call, an_route_reader_feed(&call->rd, p, n));
	call_leave(call);
}

static void st_eof(struct an_stream *s, void *arg)
{
	struct an_route_call *call = arg;
	(void)s;
	if (call->done || call->aborting)
		return;
	call_enter(call);
	call_result(call, an_route_reader_eof(&call->rd));
	call_leave(call);
}

static void st_close(struct an_stream *s, int err, void *arg)
{
	struct an_route_call *call = arg;
	(void)s;
	call_enter(call);
	call->closed = true;
	call->s = NULL;
	if (!call->done && !call->aborting) {
		if (err == 0) {
			int rc = an_route_reader_eof(&call->rd);
			/* a held end of stream cannot be delivered once the stream is
			 * gone unless the consumer resumes: keep the call open */
			if (rc == 0 && call->rd.eof_pending)
				goto out;
			call_result(call, rc);
		} else {
			call_finish(call, err);
		}
	}
out:
	call_leave(call);
}

static void st_writable(struct an_stream *s, void *arg)
{
	struct an_route_call *call = arg;
	(void)s;
	call_enter(call);
	touch(call);
	if (!call->done && !call->body_ended && call->h->on_writable)
		call->h->on_writable(call, call->arg);
	call_leave(call);
}

static const struct an_stream_handler stream_handler = {
	.on_open = st_open,
	.on_data = st_data,
	.on_eof = st_eof,
	.on_close = st_close,
	.on_writable = st_writable,
};

/* The response and idle deadlines end the call with -ETIMEDOUT; the
   deferred completion (abort, start errors) with its stored code. */
static void timer_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct an_route_call *call = w->data;
	call_enter(call);
	call_finish(call, w == &call->defer_timer ? call->defer_err : -ETIMEDOUT);
	call_leave(call);
}

int an_route_call_start(struct an_host_conn *conn, const struct an_route_call_opts *o,
			const struct an_route_call_handler *handler, void *arg,
			struct an_route_call **out)
{
	struct an_route_call *call = NULL;
	struct an_buf head;
	int rc;
	bool head_req;
	if (out)
		*out = NULL;
	if (!conn || !o || !handler || (o->framing != AN_ROUTE_BODY_NONE &&
					  o->framing != AN_ROUTE_BODY_LENGTH &&
					  o->framing != AN_ROUTE_BODY_CHUNKED))
		return -EINVAL;
	an_buf_init(&head, AN_ROUTE_HEAD_MAX);
	rc = an_route_client_head(&head, o->peerhash, o->host, o->method, o->target, o->fields,
				  o->n_fields, o->framing, o->content_length);
	if (rc < 0)
		goto out;
	call = calloc(1, sizeof(*call));
	if (!call) {
		rc = -ENOMEM;
		goto out;
	}
	struct an_host *host = an_host_conn_host(conn);
	call->conn = conn;
	call->loop = an_host_loop(host);
	call->h = handler;
	call->arg = arg;
	int resp_ms = o->response_timeout_ms > 0 ? o->response_timeout_ms : AN_ROUTE_RESPONSE_TIMEOUT_MS;
	call->idle_ms = o->idle_timeout_ms > 0 ? o->idle_timeout_ms : AN_ROUTE_IDLE_TIMEOUT_MS;
	head_req = o->method && strcmp(o->method, "HEAD") == 0;
	/* the head deadline is enforced by response_timer; the parser's own
	 * deadline stays off so one clock decides */
	an_route_reader_init(&call->rd, head_req, 0, o->hold_max, &reader_cb, call);
	an_route_writer_init(&call->wr, o->framing, o->content_length);
	ev_timer_init(&call->response_timer, timer_fired, resp_ms / 1000.0, 0.);
	ev_timer_init(&call->idle_timer, timer_fired, 0., call->idle_ms / 1000.0);
	ev_timer_init(&call->defer_timer, timer_fired, 0., 0.);
	call->response_timer.data = call->idle_timer.data = call->defer_timer.data = call;
	rc = an_host_stream_open(conn, AN_ROUTE_PROTOCOL, &stream_handler, call, &call->s);
	if (rc < 0) {
		an_route_reader_free(&call->rd);
		free(call);
		call = NULL;
		goto out;
	}
	an_host_conn_ref(conn);
	call_enter(call);
	rc = an_stream_write(call->s, head.data, head.len);
	/* The FIN of a bodiless request goes out from st_open: a FIN asked for
	 * while the stream negotiates is sent by the host as soon as the
	 * negotiation's own bytes are flushed, ahead of the early writes it
	 * holds (host.c stream_flush), which would lose the request. */
	if (rc == 0 && o->framing == AN_ROUTE_BODY_NONE)
		call->body_ended = true;
	ev_timer_start(call->loop, &call->response_timer);
	ev_timer_again(call->loop, &call->idle_timer);
	if (rc < 0) {
		/* report through on_done, as promised, never from in here */
		call->defer_err = rc;
		ev_timer_start(call->loop, &call->defer_timer);
		rc = 0;
	}
	if (out)
		*out = call;
	call_leave(call);
out:
	an_buf_free(&head);
	return rc;
}

int an_route_call_write(struct an_route_call *call, const uint8_t *p, size_t n)
{
	struct an_buf framed;
	int rc;
	if (call->done || call->body_ended)
		return -EINVAL;
	if (!call->s)
		return AN_ECLOSED;
	an_buf_init(&framed, n + 64);
	rc = an_route_writer_write(&call->wr, &framed, p, n);
	if (rc == 0 && framed.len)
		rc = an_stream_write(call->s, framed.data, framed.len);
	an_buf_free(&framed);
	if (rc == 0)
		touch(call);
	return rc;
}

int an_route_call_end(struct an_route_call *call)
{
	struct an_buf framed;
	int rc;
	if (call->done || call->body_ended)
		return -EINVAL;
	if (!call->s)
		return AN_ECLOSED;
	an_buf_init(&framed, 64);
	rc = an_route_writer_end(&call->wr, &framed);
	if (rc == 0 && framed.len)
		rc = an_stream_write(call->s, framed.data, framed.len);
	an_buf_free(&framed);
	if (rc == 0) {
		call->body_ended = true;
		if (call->opened) /* else from st_open (see an_route_call_start) */
			rc = an_stream_close_write(call->s);
	}
	return rc;
}

size_t an_route_call_queued(const struct an_route_call *call)
{
	return call->s ? an_stream_queued(call->s) : 0;
}

void an_route_call_pause(struct an_route_call *call)
{
	if (call->done || call->paused)
		return;
	call->paused = true;
	an_route_reader_pause(&call->rd);
	if (call->s && !call->closed)
		an_stream_pause(call->s, true); /* yamux's window then stops the server */
	ev_timer_stop(call->loop, &call->idle_timer);
}

void an_route_call_resume(struct an_route_call *call)
{
	if (call->done || !call->paused)
		return;
	call_enter(call);
	call->paused = false;
	ev_timer_again(call->loop, &call->idle_timer);
	int rc = an_route_reader_resume(&call->rd);
	if (rc < 0 || rc == 1)
		call_result(call, rc);
	else if (call->closed && !call->rd.paused && !call->done)
		call_finish(call, AN_ETRUNCATED); /* the stream ended without its body */
	else if (!call->done && !call->rd.paused && call->s && !call->closed)
		an_stream_pause(call->s, false); /* may deliver data right away */
	call_leave(call);
}

void an_route_call_abort(struct an_route_call *call)
{
	if (call->done || call->aborting)
		return;
	call->aborting = true;
	call->defer_err = -ECANCELED;
	an_route_reader_pause(&call->rd); /* deliver nothing more */
	call->paused = true;
	ev_timer_stop(call->loop, &call->idle_timer);
	ev_timer_stop(call->loop, &call->response_timer);
	ev_timer_start(call->loop, &call->defer_timer);
}

struct an_host_conn *an_route_call_conn(const struct an_route_call *call)
{
	return call->conn;
}
