#include "transport/mss.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

enum mss_state {
	ST_WANT_HEADER = 0, /* waiting for the peer's header */
	ST_NEGOTIATING,     /* header seen: proposals / answers */
	ST_DONE
};

static bool proto_valid(const char *p)
{
	size_t n = strlen(p);
	return n > 0 && n <= AN_MSS_PROTO_MAX && p[0] == '/' && !memchr(p, '\n', n);
}

static int fail(struct an_mss *m, int err, const char *why)
{
	m->error = err;
	snprintf(m->reason, sizeof m->reason, "%s", why);
	return err;
}

static void mss_init(struct an_mss *m, enum an_mss_role role, const char *const *protos,
		     size_t n)
{
	memset(m, 0, sizeof *m);
	m->role = role;
	m->state = ST_WANT_HEADER;
	m->protos = protos;
	m->n_protos = n;
}

int an_mss_dialer_init(struct an_mss *m, const char *const *protos, size_t n)
{
	if (n == 0 || !protos)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!protos[i] || !proto_valid(protos[i]))
			return -EINVAL;
	mss_init(m, AN_MSS_DIALER, protos, n);
	return 0;
}

int an_mss_listener_init(struct an_mss *m, const char *const *protos, size_t n,
			 an_mss_supported_fn supported, void *ctx)
{
	if (n && !protos)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!protos[i] || !proto_valid(protos[i]))
			return -EINVAL;
	mss_init(m, AN_MSS_LISTENER, protos, n);
	m->supported = supported;
	m->supported_ctx = ctx;
	return 0;
}

/* uvarint of at most 2 bytes: values up to 16383 cover every legal length. */
static size_t put_len(uint8_t *p, size_t v)
{
	if (v < 0x80) {
		p[0] = (uint8_t)v;
		return 1;
	}
	p[0] = (uint8_t)(0x80 | (v & 0x7f));
	p[1] = (uint8_t)(v >> 7);
	return 2;
}

int an_mss_put_message(struct an_buf *out, const char *s, size_t len)
{
	uint8_t hdr[2];
	size_t h;
	size_t before = out->len;
	int rc;

	if (len + 1 > 16383)
		return -EINVAL;
	h = put_len(hdr, len + 1);
	if ((rc = an_buf_append(out, hdr, h)) < 0 || (rc = an_buf_append(out, s, len)) < 0 ||
	    (rc = an_buf_putc(out, '\n')) < 0) {
		out->len = before; /* all or nothing */
		if (out->data)
			out->data[before] = 0;
		return rc;
	}
	return 0;
}

static int put_str(struct an_buf *out, const char *s)
{
	return an_mss_put_message(out, s, strlen(s));
}

int an_mss_start(struct an_mss *m, struct an_buf *out)
{
	size_t before = out->len;
	int rc;

	if (m->error)
		return m->error;
	if (m->role != AN_MSS_DIALER)
		return 0;
	if ((rc = put_str(out, AN_MSS_HEADER)) < 0 || (rc = put_str(out, m->protos[0])) < 0) {
		out->len = before;
		if (out->data)
			out->data[before] = 0;
		return rc;
	}
	return 0;
}

/*
 * One message at in[0..len): 1 with *msg and *mlen (the '\n' stripped) and *used,
 * 0 if incomplete, or a negative code.  js reads with maxLengthLength 2 and
 * maxDataLength 1024, so longer prefixes or lengths are violations, decided
 * as soon as the prefix is visible (never buffered).
 */
static int next_message(struct an_mss *m, const uint8_t *in, size_t len, const uint8_t **msg,
			size_t *mlen, size_t *used)
{
	size_t v, h;

	if (len == 0)
		return 0;
	if (in[0] < 0x80) {
		v = in[0];
		h = 1;
	} else {
		if (len < 2)
			return 0;
		if (in[1] & 0x80)
			return fail(m, AN_EPROTO, "message length prefix longer than 2 bytes");
		if (in[1] == 0)
			return fail(m, AN_EPROTO, "non-minimal message length");
		v = (size_t)(in[0] & 0x7f) | ((size_t)in[1] << 7);
		h = 2;
	}
	if (v == 0)
		return fail(m, AN_EPROTO, "empty message");
	if (v > AN_MSS_MSG_MAX)
		return fail(m, AN_EPROTO, "message longer than 1024 bytes");
	if (len - h < v)
		return 0;
	if (in[h + v - 1] != '\n')
		return fail(m, AN_EPROTO, "message does not end with a newline");
	*msg = in + h;
	*mlen = v - 1;
	*used = h + v;
	return 1;
}

static bool msg_is(const uint8_t *msg, size_t mlen, const char *s)
{
	size_t n = strlen(s);
	return mlen == n && memcmp(msg, s, n) == 0;
}

/* The "ls" answer: one message whose body is the list of messages, then '\n'. */
static int put_ls(struct an_mss *m, struct an_buf *out)
{
	uint8_t hdr[2];
	size_t total = 1, before = out->len;
	int rc = 0;

	for (size_t i = 0; i < m->n_protos; i++) {
		size_t l = strlen(m->protos[i]) + 1;
		total += (l < 0x80 ? 1 : 2) + l;
	}
	if (total > 16383)
		return fail(m, AN_ELIMIT, "protocol list too long for ls");
	if ((rc = an_buf_append(out, hdr, put_len(hdr, total))) < 0)
		goto out;
	for (size_t i = 0; i < m->n_protos; i++)
		if ((rc = put_str(out, m->protos[i])) < 0)
			goto out;
	rc = an_buf_putc(out, '\n');
out:
	if (rc < 0) {
		out->len = before;
		if (out->data)
			out->data[before] = 0;
	}
	return rc;
}

static bool listener_accepts(struct an_mss *m, const uint8_t *msg, size_t mlen)
{
	if (mlen == 0 || msg[0] != '/' || memchr(msg, '\n', mlen) || memchr(msg, 0, mlen))
		return false;
	for (size_t i = 0; i < m->n_protos; i++)
		if (msg_is(msg, mlen, m->protos[i]))
			return true;
	if (!m->supported)
		return false;
	memcpy(m->selected, msg, mlen);
	m->selected[mlen] = 0;
	bool ok = m->supported(m->supported_ctx, m->selected);
	if (!ok)
		m->selected[0] = 0;
	return ok;
}

/* Handle one listener message; 1 when selected. */
static int listener_step(struct an_mss *m, const uint8_t *msg, size_t mlen, struct an_buf *out)
{
	int rc;

	if (m->state == ST_WANT_HEADER) {
		if (!msg_is(msg, mlen, AN_MSS_HEADER))
			return fail(m, AN_EPROTO, "first message is not the multistream header");
		if ((rc = put_str(out, AN_MSS_HEADER)) < 0)
			return rc;
		m->state = ST_NEGOTIATING;
		return 0;
	}
	if (msg_is(msg, mlen, "ls"))
		return put_ls(m, out);
	if (listener_accepts(m, msg, mlen)) {
		if ((rc = an_mss_put_message(out, (const char *)msg, mlen)) < 0) {
			m->selected[0] = 0;
			return rc;
		}
		memcpy(m->selected, msg, mlen);
		m->selected[mlen] = 0;
		m->state = ST_DONE;
		return 1;
	}
	if (m->rejects >= AN_MSS_MAX_REJECTS)
		return fail(m, AN_EPROTO, "too many refused proposals");
	if ((rc = put_str(out, "na")) < 0)
		return rc;
	m->rejects++;
	return 0;
}

/* Handle one dialer message; 1 when selected. */
static int dialer_step(struct an_mss *m, const uint8_t *msg, size_t mlen, struct an_buf *out)
{
	const char *want = m->protos[m->next];
	int rc;

	if (m->state == ST_WANT_HEADER) {
		if (!msg_is(msg, mlen, AN_MSS_HEADER))
			return fail(m, AN_EPROTO, "first answer is not the multistream header");
		m->state = ST_NEGOTIATING;
		return 0;
	}
	if (msg_is(msg, mlen, want)) {
		memcpy(m->selected, want, mlen);
		m->selected[mlen] = 0;
		m->state = ST_DONE;
		return 1;
	}
	if (!msg_is(msg, mlen, "na"))
		return fail(m, AN_EPROTO, "answer is neither the proposal nor na");
	if (m->next + 1 >= m->n_protos)
		return fail(m, AN_ENOPROTO, "peer refused every proposed protocol");
	if ((rc = put_str(out, m->protos[m->next + 1])) < 0)
		return rc;
	m->next++;
	return 0;
}

int an_mss_recv(struct an_mss *m, const uint8_t *in, size_t len, size_t *used,
		struct an_buf *out)
{
	size_t pos = 0;
	int rc = 0;

	*used = 0;
	if (m->error)
		return m->error;
	while (m->state != ST_DONE) {
		const uint8_t *msg;
		size_t mlen, n;

		rc = next_message(m, in + pos, len - pos, &msg, &mlen, &n);
		if (rc <= 0)
			break;
		rc = m->role == AN_MSS_LISTENER ? listener_step(m, msg, mlen, out)
						: dialer_step(m, msg, mlen, out);
		if (rc < 0)
			break; /* out errors leave the message unconsumed */
		pos += n;
	}
	*used = pos;
	if (rc < 0)
		return rc;
	return m->state == ST_DONE ? 1 : 0;
}

const char *an_mss_selected(const struct an_mss *m)
{
	return m->state == ST_DONE ? m->selected : NULL;
}

const char *an_mss_reason(const struct an_mss *m)
{
	return m->reason;
}
