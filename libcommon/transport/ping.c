#include "transport/ping.h"

#include <sodium.h>
#include <string.h>

#include "util/error.h"

void an_ping_responder_init(struct an_ping_responder *r)
{
	memset(r, 0, sizeof(*r));
}

int an_ping_responder_feed(struct an_ping_responder *r, const uint8_t *in, size_t len,
			   struct an_buf *out)
{
	while (len > 0) {
		size_t n = AN_PING_SIZE - r->have;
		if (n > len)
			n = len;
		memcpy(r->pending + r->have, in, n);
		r->have += n;
		in += n;
		len -= n;
		if (r->have == AN_PING_SIZE) {
			int rc = an_buf_append(out, r->pending, AN_PING_SIZE);
			if (rc < 0)
				return rc;
			r->have = 0;
			r->echoed++;
		}
	}
	return 0;
}

void an_ping_client_init(struct an_ping_client *c)
{
	memset(c, 0, sizeof(*c));
}

int an_ping_client_start(struct an_ping_client *c, uint64_t now_ms, struct an_buf *out)
{
	if (c->outstanding)
		return AN_EPROTO;
	randombytes_buf(c->payload, sizeof(c->payload));
	int rc = an_buf_append(out, c->payload, sizeof(c->payload));
	if (rc < 0)
		return rc;
	c->got = 0;
	c->sent_ms = now_ms;
	c->outstanding = 1;
	return 0;
}

int an_ping_client_feed(struct an_ping_client *c, const uint8_t *in, size_t len, uint64_t now_ms,
			size_t *used, uint64_t *rtt_ms)
{
	*used = 0;
	if (!c->outstanding)
		return len ? AN_EPROTO : AN_EAGAIN;
	size_t n = AN_PING_SIZE - c->got;
	if (n > len)
		n = len;
	if (memcmp(in, c->payload + c->got, n) != 0)
		return AN_EPROTO;
	c->got += n;
	*used = n;
	if (c->got < AN_PING_SIZE)
		return AN_EAGAIN;
	c->outstanding = 0;
	*rtt_ms = now_ms >= c->sent_ms ? now_ms - c->sent_ms : 0;
	return 0;
}

/* ---- service ---- */

#include <errno.h>
#include <stdlib.h>

#include <ev.h>

#include "transport/host.h"

static void responder_open(struct an_stream *s, void *arg)
{
	(void)arg;
	struct an_ping_responder *r = malloc(sizeof(*r));
	if (!r) {
		an_stream_reset(s);
		return;
	}
	an_ping_responder_init(r);
	an_stream_set_user(s, r);
}

static void responder_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	struct an_ping_responder *r = an_stream_user(s);
	struct an_buf out;
	an_buf_init(&out, 65536 + AN_PING_SIZE);
	if (an_ping_responder_feed(r, p, n, &out) < 0 || an_stream_write(s, out.data, out.len) < 0) {
		an_buf_free(&out);
		an_stream_reset(s);
		return;
	}
	an_buf_free(&out);
}

static void responder_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	an_stream_close_write(s);
}

static void responder_close(struct an_stream *s, int err, void *arg)
{
	(void)arg; (void)err;
	free(an_stream_user(s));
}

static const struct an_stream_handler responder_handler = {
	.on_open = responder_open,
	.on_data = responder_data,
	.on_eof = responder_eof,
	.on_close = responder_close,
};

int an_ping_service_register(struct an_host *h)
{
	return an_host_handle(h, AN_PING_PROTOCOL, &responder_handler, NULL);
}

struct ping_req {
	ev_timer timer;
	struct an_host *host;
	struct an_stream *s;
	struct an_ping_client client;
	an_ping_result_fn cb;
	void *arg;
	int err;
	uint64_t rtt;
	int done;
	int ok; /* the echo matched */
};

static void req_report(struct ping_req *q)
{
	if (q->done)
		return;
	q->done = 1;
	q->cb(q->arg, q->err, q->rtt);
}

/* Right after the open, not in on_open: the payload follows the protocol
   proposal in the same frame (lazy select, host.c), one round trip. */
static int client_send(struct an_stream *s, struct ping_req *q)
{
	struct an_buf out;
	an_buf_init(&out, AN_PING_SIZE);
	int rc = an_ping_client_start(&q->client, an_host_now_ms(q->host), &out);
	if (rc == 0)
		rc = an_stream_write(s, out.data, out.len);
	an_buf_free(&out);
	if (rc == 0)
		rc = an_stream_close_write(s);
	return rc;
}

static void client_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct ping_req *q = arg;
	size_t used;
	uint64_t rtt;
	int rc = an_ping_client_feed(&q->client, p, n, an_host_now_ms(q->host), &used, &rtt);
	if (rc == AN_EAGAIN)
		return;
	if (rc == 0 && used == n) {
		q->rtt = rtt;
		q->ok = 1;
		/* we need nothing more from this stream; client_close reports */
		an_stream_reset(s);
		return;
	}
	q->err = AN_EPROTO;
	an_stream_reset(s);
}

static void client_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct ping_req *q = arg;
	ev_timer_stop(an_host_loop(q->host), &q->timer);
	if (!q->done) {
		if (q->ok)
			q->err = 0;
		else if (!q->err)
			q->err = err ? err : AN_ECLOSED;
		req_report(q);
	}
	free(q);
}

static const struct an_stream_handler client_handler = {
	.on_data = client_data,
	.on_close = client_close,
};

static void client_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct ping_req *q = (struct ping_req *)w;
	q->err = -ETIMEDOUT;
	an_stream_reset(q->s); /* client_close reports and frees */
}

int an_ping_once(struct an_host_conn *c, int timeout_ms, an_ping_result_fn cb, void *arg)
{
	struct ping_req *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	struct an_stream *s;
	q->host = NULL;
	q->cb = cb;
	q->arg = arg;
	an_ping_client_init(&q->client);
	/* the host is reached through the connection's streams */
	int rc = an_host_stream_open(c, AN_PING_PROTOCOL, &client_handler, q, &s);
	if (rc < 0) {
		free(q);
		return rc;
	}
	q->s = s;
	q->host = an_host_conn_host(c);
	ev_timer_init(&q->timer, client_timeout, (timeout_ms > 0 ? timeout_ms : AN_PING_TIMEOUT_MS) / 1000.0, 0);
	ev_timer_start(an_host_loop(q->host), &q->timer);
	rc = client_send(s, q);
	if (rc < 0) {
		q->done = 1; /* the caller learns from rc: no report */
		an_stream_reset(s); /* client_close frees q */
	}
	return rc;
}
