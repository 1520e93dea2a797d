#include "transport/identify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/protobuf.h"
#include "util/error.h"

enum {
	F_PUBKEY = 1,
	F_ADDRS = 2,
	F_PROTOCOLS = 3,
	F_OBSERVED = 4,
	F_PROTOCOL_VERSION = 5,
	F_AGENT_VERSION = 6,
	F_SIGNED_RECORD = 8
};

void an_identify_init(struct an_identify *m)
{
	memset(m, 0, sizeof(*m));
}

static void bytes_free(struct an_identify_bytes *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

static int bytes_set(struct an_identify_bytes *b, const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);
	if (!d)
		return -ENOMEM;
	if (len)
		memcpy(d, p, len);
	free(b->data);
	b->data = d;
	b->len = len;
	return 0;
}

static void addrs_free(struct an_identify *m)
{
	for (size_t i = 0; i < m->n_addrs; i++)
		bytes_free(&m->addrs[i]);
	m->n_addrs = 0;
}

static void protocols_free(struct an_identify *m)
{
	for (size_t i = 0; i < m->n_protocols; i++)
		free(m->protocols[i]);
	m->n_protocols = 0;
}

void an_identify_free(struct an_identify *m)
{
	if (!m)
		return;
	bytes_free(&m->public_key);
	addrs_free(m);
	protocols_free(m);
	bytes_free(&m->observed_addr);
	free(m->protocol_version);
	free(m->agent_version);
	bytes_free(&m->signed_record);
	an_identify_init(m);
}

static char *strndup_checked(const uint8_t *p, size_t len)
{
	if (memchr(p, 0, len))
		return NULL;
	char *s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, p, len);
	s[len] = 0;
	return s;
}

int an_identify_set_public_key(struct an_identify *m, const uint8_t *pb, size_t len)
{
	int rc = bytes_set(&m->public_key, pb, len);
	if (rc == 0)
		m->present |= AN_IDENTIFY_HAS_PUBKEY;
	return rc;
}

int an_identify_add_addr(struct an_identify *m, const uint8_t *ma, size_t len)
{
	if (m->n_addrs >= AN_IDENTIFY_MAX_ADDRS || len > AN_IDENTIFY_ADDR_MAX)
		return AN_ELIMIT;
	struct an_identify_bytes *b = &m->addrs[m->n_addrs];
	b->data = NULL;
	int rc = bytes_set(b, ma, len);
	if (rc < 0)
		return rc;
	m->n_addrs++;
	m->present |= AN_IDENTIFY_HAS_ADDRS;
	return 0;
}

int an_identify_add_protocol(struct an_identify *m, const char *proto)
{
	size_t len = strlen(proto);
	if (m->n_protocols >= AN_IDENTIFY_MAX_PROTOCOLS || len > AN_IDENTIFY_STRING_MAX)
		return AN_ELIMIT;
	char *s = strndup_checked((const uint8_t *)proto, len);
	if (!s)
		return -ENOMEM;
	m->protocols[m->n_protocols++] = s;
	m->present |= AN_IDENTIFY_HAS_PROTOCOLS;
	return 0;
}

int an_identify_set_observed(struct an_identify *m, const uint8_t *ma, size_t len)
{
	if (len > AN_IDENTIFY_ADDR_MAX)
		return AN_ELIMIT;
	int rc = bytes_set(&m->observed_addr, ma, len);
	if (rc == 0)
		m->present |= AN_IDENTIFY_HAS_OBSERVED;
	return rc;
}

static int string_set(char **dst, const char *s)
{
	char *c = NULL;
	if (s) {
		if (strlen(s) > AN_IDENTIFY_STRING_MAX)
			return AN_ELIMIT;
		c = strdup(s);
		if (!c)
			return -ENOMEM;
	}
	free(*dst);
	*dst = c;
	return 0;
}

int an_identify_set_versions(struct an_identify *m, const char *protocol_version,
			     const char *agent_version)
{
	int rc = string_set(&m->protocol_version, protocol_version);
	if (rc < 0)
		return rc;
	if (protocol_version)
		m->present |= AN_IDENTIFY_HAS_PROTOCOL_VERSION;
	rc = string_set(&m->agent_version, agent_version);
	if (rc < 0)
		return rc;
	if (agent_version)
		m->present |= AN_IDENTIFY_HAS_AGENT_VERSION;
	return 0;
}

int an_identify_encode(const struct an_identify *m, struct an_buf *out)
{
	struct an_buf b;
	int rc = 0;

	an_buf_init(&b, AN_IDENTIFY_SEND_MAX);
	if (m->present & AN_IDENTIFY_HAS_PUBKEY)
		rc = an_pb_put_bytes(&b, F_PUBKEY, m->public_key.data, m->public_key.len);
	for (size_t i = 0; rc == 0 && i < m->n_addrs; i++)
		rc = an_pb_put_bytes(&b, F_ADDRS, m->addrs[i].data, m->addrs[i].len);
	for (size_t i = 0; rc == 0 && i < m->n_protocols; i++)
		rc = an_pb_put_string(&b, F_PROTOCOLS, m->protocols[i]);
	if (rc == 0 && (m->present & AN_IDENTIFY_HAS_OBSERVED))
		rc = an_pb_put_bytes(&b, F_OBSERVED, m->observed_addr.data, m->observed_addr.len);
	if (rc == 0 && m->protocol_version)
		rc = an_pb_put_string(&b, F_PROTOCOL_VERSION, m->protocol_version);
	if (rc == 0 && m->agent_version)
		rc = an_pb_put_string(&b, F_AGENT_VERSION, m->agent_version);
	if (rc == 0 && (m->present & AN_IDENTIFY_HAS_SIGNED_RECORD))
		rc = an_pb_put_bytes(&b, F_SIGNED_RECORD, m->signed_record.data,
				     m->signed_record.len);
	if (rc < 0)
		goto out;
	rc = an_buf_append(out, b.data ? b.data : (const uint8_t *)"", b.len);
out:
	an_buf_free(&b);
	return rc;
}

static int decode_string(const struct an_pb_field *f, char **dst)
{
	if (f->wire != AN_PB_LEN)
		return AN_EMALFORMED;
	if (f->len > AN_IDENTIFY_STRING_MAX)
		return AN_ETOOBIG;
	char *s = strndup_checked(f->data, f->len);
	if (!s)
		return memchr(f->data, 0, f->len) ? AN_EMALFORMED : -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

int an_identify_decode(const uint8_t *p, size_t len, struct an_identify *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	if (len > AN_IDENTIFY_RECV_MAX)
		return AN_ETOOBIG;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number < F_PUBKEY || f.number > F_SIGNED_RECORD || f.number == 7)
			continue; /* unknown: skip */
		if (f.wire != AN_PB_LEN)
			return AN_EMALFORMED;
		switch (f.number) {
		case F_PUBKEY:
			rc = an_identify_set_public_key(m, f.data, f.len);
			break;
		case F_ADDRS:
			rc = an_identify_add_addr(m, f.data, f.len);
			if (rc == AN_ELIMIT) {
				m->dropped++;
				m->present |= AN_IDENTIFY_HAS_ADDRS;
				rc = 0;
			}
			break;
		case F_PROTOCOLS:
			if (m->n_protocols >= AN_IDENTIFY_MAX_PROTOCOLS ||
			    f.len > AN_IDENTIFY_STRING_MAX) {
				m->dropped++;
				m->present |= AN_IDENTIFY_HAS_PROTOCOLS;
				rc = 0;
				break;
			}
			m->protocols[m->n_protocols] = NULL;
			rc = decode_string(&f, &m->protocols[m->n_protocols]);
			if (rc == 0) {
				m->n_protocols++;
				m->present |= AN_IDENTIFY_HAS_PROTOCOLS;
			}
			break;
		case F_OBSERVED:
			rc = an_identify_set_observed(m, f.data, f.len);
			if (rc == AN_ELIMIT)
				rc = 0; /* an absurd observed address is just ignored */
			break;
		case F_PROTOCOL_VERSION:
			rc = decode_string(&f, &m->protocol_version);
			if (rc == 0)
				m->present |= AN_IDENTIFY_HAS_PROTOCOL_VERSION;
			break;
		case F_AGENT_VERSION:
			rc = decode_string(&f, &m->agent_version);
			if (rc == 0)
				m->present |= AN_IDENTIFY_HAS_AGENT_VERSION;
			break;
		case F_SIGNED_RECORD:
			rc = bytes_set(&m->signed_record, f.data, f.len);
			if (rc == 0)
				m->present |= AN_IDENTIFY_HAS_SIGNED_RECORD;
			break;
		}
		if (rc < 0)
			return rc;
	}
	return rc;
}

#define MOVE_FIELD(dst, src) do { (dst) = (src); memset(&(src), 0, sizeof(src)); } while (0)

void an_identify_merge(struct an_identify *dst, struct an_identify *push)
{
	if (push->present & AN_IDENTIFY_HAS_PUBKEY) {
		bytes_free(&dst->public_key);
		MOVE_FIELD(dst->public_key, push->public_key);
	}
	if (push->present & AN_IDENTIFY_HAS_ADDRS) {
		addrs_free(dst);
		memcpy(dst->addrs, push->addrs, sizeof(dst->addrs));
		dst->n_addrs = push->n_addrs;
		push->n_addrs = 0;
	}
	if (push->present & AN_IDENTIFY_HAS_PROTOCOLS) {
		protocols_free(dst);
		memcpy(dst->protocols, push->protocols, sizeof(dst->protocols));
		dst->n_protocols = push->n_protocols;
		push->n_protocols = 0;
	}
	if (push->present & AN_IDENTIFY_HAS_OBSERVED) {
		bytes_free(&dst->observed_addr);
		MOVE_FIELD(dst->observed_addr, push->observed_addr);
	}
	if (push->present & AN_IDENTIFY_HAS_PROTOCOL_VERSION) {
		free(dst->protocol_version);
		MOVE_FIELD(dst->protocol_version, push->protocol_version);
	}
	if (push->present & AN_IDENTIFY_HAS_AGENT_VERSION) {
		free(dst->agent_version);
		MOVE_FIELD(dst->agent_version, push->agent_version);
	}
	if (push->present & AN_IDENTIFY_HAS_SIGNED_RECORD) {
		bytes_free(&dst->signed_record);
		MOVE_FIELD(dst->signed_record, push->signed_record);
	}
	dst->present |= push->present;
	dst->dropped += push->dropped;
	push->present = 0;
}

/* ---- service ---- */

#include <ev.h>

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "transport/host.h"

int an_identify_build(struct an_host *h, struct an_host_conn *c, struct an_identify *m)
{
	struct an_pubkey pk;
	struct an_buf b;
	const char *addrs[16], *protos[AN_HOST_MAX_PROTOCOLS];
	uint8_t bin[AN_IDENTIFY_ADDR_MAX];
	size_t len;
	int rc;

	an_buf_init(&b, AN_PUBKEY_PB_MAX);
	an_privkey_public(an_host_key(h), &pk);
	rc = an_pubkey_encode(&pk, &b);
	if (rc == 0)
		rc = an_identify_set_public_key(m, b.data, b.len);
	an_buf_free(&b);
	if (rc < 0)
		return rc;
	size_t n = an_host_addrs(h, addrs, 16);
	for (size_t i = 0; i < n; i++) {
		/* addresses our stopgap codec cannot encode (dns) are left out */
		if (an_host_maddr_encode(addrs[i], bin, sizeof(bin), &len) == 0)
			an_identify_add_addr(m, bin, len);
	}
	m->present |= AN_IDENTIFY_HAS_ADDRS;
	n = an_host_protocols(h, protos, AN_HOST_MAX_PROTOCOLS);
	for (size_t i = 0; i < n; i++)
		an_identify_add_protocol(m, protos[i]);
	m->present |= AN_IDENTIFY_HAS_PROTOCOLS;
	/*
	 * observedAddr is the address we see the peer at.  Over a relayed
	 * connection we see only the relay, not the peer's own address, so we
	 * send none rather than the relay's (the peer would take it for its
	 * own public address).
	 */
	if (c && !an_host_conn_relayed(c)) {
		len = an_host_conn_remote_addr_bin(c, bin, sizeof(bin));
		if (len)
			an_identify_set_observed(m, bin, len);
	}
	return an_identify_set_versions(m, AN_IDENTIFY_PROTOCOL_VERSION, an_host_agent(h));
}

/* Write our record on s, LP-framed, and half-close (js waits for the FIN). */
static void send_record(struct an_stream *s)
{
	struct an_identify m;
	struct an_buf msg, framed;
	struct an_host_conn *c = an_stream_conn(s);
	an_identify_init(&m);
	an_buf_init(&msg, AN_IDENTIFY_SEND_MAX);
	an_buf_init(&framed, AN_IDENTIFY_SEND_MAX + 8);
	int rc = an_identify_build(an_host_conn_host(c), c, &m);
	if (rc == 0)
		rc = an_identify_encode(&m, &msg);
	if (rc == 0)
		rc = an_lp_put(&framed, msg.data, msg.len);
	if (rc == 0)
		rc = an_stream_write(s, framed.data, framed.len);
	an_identify_free(&m);
	an_buf_free(&msg);
	an_buf_free(&framed);
	if (rc < 0)
		an_stream_reset(s);
	else
		an_stream_close_write(s);
}

static void responder_open(struct an_stream *s, void *arg)
{
	(void)arg;
	send_record(s);
}

static void ignore_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg; (void)n; (void)p; (void)s;
}

static const struct an_stream_handler responder_handler = {
	.on_open = responder_open,
	.on_data = ignore_data,
};

/* Reading one LP-framed message to EOF: shared by push and requests. */
struct reader {
	ev_timer timer; /* first: the timer callback casts */
	struct an_host *host;
	struct an_stream *s;
	struct an_buf in;
	an_identify_result_fn cb;
	void *arg;
	int err;
	bool done;
	bool push;
};

static void reader_finish(struct reader *r, int err, const struct an_identify *m)
{
	if (r->done)
		return;
	r->done = true;
	if (r->cb)
		r->cb(r->arg, err, m);
}

/* Decode what arrived; check publicKey against the connection's peer. */
static int reader_decode(struct reader *r, struct an_identify *m)
{
	const uint8_t *msg;
	size_t msg_len, used;
	int rc = an_lp_get(r->in.data, r->in.len, AN_IDENTIFY_RECV_MAX, &msg, &msg_len, &used);
	if (rc == AN_EAGAIN)
		return AN_ETRUNCATED;
	if (rc < 0)
		return rc;
	rc = an_identify_decode(msg, msg_len, m);
	if (rc < 0)
		return rc;
	if (m->present & AN_IDENTIFY_HAS_PUBKEY) {
		struct an_pubkey pk;
		struct an_peerid id;
		const struct an_peerid *want = an_host_conn_peer(an_stream_conn(r->s));
		if (an_pubkey_decode(m->public_key.data, m->public_key.len, &pk) < 0 ||
		    an_peerid_from_pubkey(&pk, &id) < 0 || !want || !an_peerid_equal(&id, want))
			return AN_EMISMATCH;
	} else if (!r->push) {
		return AN_EFIELD; /* js and rust both require publicKey */
	}
	return 0;
}

static void reader_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	struct reader *r = arg;
	if (an_buf_append(&r->in, p, n) < 0) {
		r->err = AN_ETOOBIG;
		an_stream_reset(s);
	}
}

static void store_addrs(struct an_host *h, const struct an_peerid *id, const struct an_identify *m)
{
	char text[AN_HOST_ADDR_TEXT_MAX];
	for (size_t i = 0; i < m->n_addrs; i++)
		if (an_host_maddr_format(m->addrs[i].data, m->addrs[i].len, text, sizeof(text)) == 0)
			an_host_peer_add_addr(h, id, text);
}

static void reader_eof(struct an_stream *s, void *arg)
{
	struct reader *r = arg;
	struct an_identify m;
	an_identify_init(&m);
	int rc = reader_decode(r, &m);
	if (rc == 0) {
		const struct an_peerid *id = an_host_conn_peer(an_stream_conn(s));
		if (id)
			store_addrs(r->host, id, &m);
		/* a peer's protocols changed (kad client <-> server): tell the observer */
		if (id && r->push)
			an_host_identify_pushed(an_stream_conn(s), &m);
	}
	if (r->push) {
		/* Nobody waits for a push: just finish the stream (our FIN). */
		r->done = true;
		an_stream_close_write(s); /* may free s and r */
	} else {
		/* Our FIN went out with the request.  The callback may tear
		 * everything down, so it is the last use of s and r. */
		reader_finish(r, rc, rc == 0 ? &m : NULL);
	}
	an_identify_free(&m);
}

static void reader_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct reader *r = arg;
	ev_timer_stop(an_host_loop(r->host), &r->timer);
	reader_finish(r, r->err ? r->err : err ? err : AN_ECLOSED, NULL);
	an_buf_free(&r->in);
	free(r);
}

static void reader_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop; (void)revents;
	struct reader *r = (struct reader *)w;
	r->err = -ETIMEDOUT;
	an_stream_reset(r->s);
}

static const struct an_stream_handler reader_handler = {
	.on_data = reader_data,
	.on_eof = reader_eof,
	.on_close = reader_close,
};

static struct reader *reader_new(struct an_host *h, bool push)
{
	struct reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->host = h;
	r->push = push;
	an_buf_init(&r->in, AN_IDENTIFY_RECV_MAX + 8);
	ev_timer_init(&r->timer, reader_timeout, AN_IDENTIFY_TIMEOUT_MS / 1000.0, 0);
	return r;
}

/* Inbound push: same reader, installed when the stream opens. */
static void push_in_open(struct an_stream *s, void *arg)
{
	struct reader *r = reader_new(arg, true);
	if (!r) {
		an_stream_reset(s);
		return;
	}
	r->s = s;
	an_stream_set_user(s, r);
	ev_timer_start(an_host_loop(r->host), &r->timer);
}

static void push_in_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	reader_data(s, p, n, an_stream_user(s));
}

static void push_in_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	reader_eof(s, an_stream_user(s));
}

static void push_in_close(struct an_stream *s, int err, void *arg)
{
	(void)arg;
	if (an_stream_user(s))
		reader_close(s, err, an_stream_user(s));
}

static const struct an_stream_handler push_in_handler = {
	.on_open = push_in_open,
	.on_data = push_in_data,
	.on_eof = push_in_eof,
	.on_close = push_in_close,
};

/* Outbound push: write our record, FIN, ignore the rest. */
static void push_out_open(struct an_stream *s, void *arg)
{
	(void)arg;
	send_record(s);
}

static void push_out_eof(struct an_stream *s, void *arg)
{
	(void)arg; (void)s;
}

static const struct an_stream_handler push_out_handler = {
	.on_open = push_out_open,
	.on_data = ignore_data,
	.on_eof = push_out_eof,
};

static void push_all(struct an_host *h, void *arg)
{
	(void)arg;
	struct an_host_conn *conns[AN_HOST_DEFAULT_MAX_CONNS];
	size_t n = an_host_conns(h, conns, AN_HOST_DEFAULT_MAX_CONNS);
	for (size_t i = 0; i < n; i++)
		an_host_stream_open(conns[i], AN_IDENTIFY_PUSH_PROTOCOL, &push_out_handler, NULL, NULL);
}

int an_identify_service_register(struct an_host *h)
{
	int rc = an_host_handle(h, AN_IDENTIFY_PROTOCOL, &responder_handler, h);
	if (rc == 0)
		rc = an_host_handle(h, AN_IDENTIFY_PUSH_PROTOCOL, &push_in_handler, h);
	if (rc == 0)
		an_host_on_changed(h, push_all, NULL);
	return rc;
}

int an_identify_request(struct an_host_conn *c, int timeout_ms, an_identify_result_fn cb, void *arg)
{
	struct an_host *h = an_host_conn_host(c);
	struct reader *r = reader_new(h, false);
	if (!r)
		return -ENOMEM;
	r->cb = cb;
	r->arg = arg;
	int rc = an_host_stream_open(c, AN_IDENTIFY_PROTOCOL, &reader_handler, r, &r->s);
	if (rc < 0) {
		an_buf_free(&r->in);
		free(r);
		return rc;
	}
	if (timeout_ms > 0)
		ev_timer_set(&r->timer, timeout_ms / 1000.0, 0);
	ev_timer_start(an_host_loop(h), &r->timer);
	/* we send nothing: half-close at once, as js does */
	an_stream_close_write(r->s);
	return 0;
}
