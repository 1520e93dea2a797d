/*
 * circuit.c - Circuit Relay v2 hop and stop message codecs.
 */
#include "relay/circuit.h"

#include <errno.h>
#include <string.h>

#include "encoding/protobuf.h"
#include "util/error.h"

/* Field numbers that differ between HopMessage and StopMessage. */
#define F_TYPE 1
#define F_PEER 2
#define HOP_F_RESERVATION 3
#define HOP_F_LIMIT 4
#define HOP_F_STATUS 5
#define STOP_F_LIMIT 3
#define STOP_F_STATUS 4

static uint32_t f_limit(enum an_relay_kind kind)
{
	return kind == AN_RELAY_HOP ? HOP_F_LIMIT : STOP_F_LIMIT;
}

static uint32_t f_status(enum an_relay_kind kind)
{
	return kind == AN_RELAY_HOP ? HOP_F_STATUS : STOP_F_STATUS;
}

static bool type_valid(enum an_relay_kind kind, uint64_t type)
{
	return kind == AN_RELAY_HOP ? type <= AN_HOP_STATUS : type <= AN_STOP_STATUS;
}

void an_relay_msg_init(struct an_relay_msg *m, enum an_relay_kind kind, int type)
{
	memset(m, 0, sizeof(*m));
	m->kind = kind;
	m->type = type;
}

static int put_addrs(struct an_buf *b, uint32_t number, const struct an_relay_bytes *a, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = an_pb_put_bytes(b, number, a[i].p, a[i].len);
	return rc;
}

/* Encode a submessage built in sub as field number of b. */
static int put_sub(struct an_buf *b, uint32_t number, struct an_buf *sub)
{
	return an_pb_put_bytes(b, number, sub->data, sub->len);
}

static int encode_body(const struct an_relay_msg *m, struct an_buf *b)
{
	struct an_buf sub;
	int rc;

	an_buf_init(&sub, AN_RELAY_MSG_MAX);
	if ((rc = an_pb_put_varint(b, F_TYPE, (uint64_t)m->type)) < 0)
		goto out;
	if (m->peer.present) {
		if (m->peer.naddrs > AN_RELAY_MAX_ADDRS) {
			rc = -EINVAL;
			goto out;
		}
		if (m->peer.has_id && (rc = an_pb_put_bytes(&sub, 1, m->peer.id.bytes, m->peer.id.len)) < 0)
			goto out;
		if ((rc = put_addrs(&sub, 2, m->peer.addrs, m->peer.naddrs)) < 0)
			goto out;
		if ((rc = put_sub(b, F_PEER, &sub)) < 0)
			goto out;
		an_buf_reset(&sub);
	}
	if (m->rsv.present) {
		if (m->kind != AN_RELAY_HOP || m->rsv.naddrs > AN_RELAY_MAX_ADDRS) {
			rc = -EINVAL;
			goto out;
		}
		if (m->rsv.has_expire && (rc = an_pb_put_varint(&sub, 1, m->rsv.expire)) < 0)
			goto out;
		if ((rc = put_addrs(&sub, 2, m->rsv.addrs, m->rsv.naddrs)) < 0)
			goto out;
		if (m->rsv.voucher.len &&
		    (rc = an_pb_put_bytes(&sub, 3, m->rsv.voucher.p, m->rsv.voucher.len)) < 0)
			goto out;
		if ((rc = put_sub(b, HOP_F_RESERVATION, &sub)) < 0)
			goto out;
		an_buf_reset(&sub);
	}
	if (m->limit.present) {
		if (m->limit.has_duration && (rc = an_pb_put_varint(&sub, 1, m->limit.duration)) < 0)
			goto out;
		if (m->limit.has_data && (rc = an_pb_put_varint(&sub, 2, m->limit.data)) < 0)
			goto out;
		if ((rc = put_sub(b, f_limit(m->kind), &sub)) < 0)
			goto out;
		an_buf_reset(&sub);
	}
	if (m->has_status && (rc = an_pb_put_varint(b, f_status(m->kind), m->status)) < 0)
		goto out;
	rc = 0;
out:
	an_buf_free(&sub);
	return rc;
}

int an_relay_msg_encode(const struct an_relay_msg *m, struct an_buf *out)
{
	struct an_buf body;
	int rc;

	if ((m->kind != AN_RELAY_HOP && m->kind != AN_RELAY_STOP) || m->type < 0 ||
	    !type_valid(m->kind, (uint64_t)m->type))
		return -EINVAL;
	an_buf_init(&body, AN_RELAY_MSG_MAX);
	if ((rc = encode_body(m, &body)) < 0)
		goto out;
	rc = an_lp_put(out, body.data, body.len);
out:
	an_buf_free(&body);
	return rc;
}

static int decode_peer(const uint8_t *p, size_t len, struct an_relay_peer *peer)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	peer->present = true;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number == 1) {
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			if (an_peerid_from_bytes(f.data, f.len, &peer->id) < 0)
				return AN_EMALFORMED;
			peer->has_id = true;
		} else if (f.number == 2) {
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			if (peer->naddrs < AN_RELAY_MAX_ADDRS) {
				peer->addrs[peer->naddrs].p = f.data;
				peer->addrs[peer->naddrs].len = f.len;
				peer->naddrs++;
			}
		}
	}
	return rc;
}

static int decode_rsv(const uint8_t *p, size_t len, struct an_relay_reservation *rsv)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	rsv->present = true;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number == 1) {
			if (f.wire != AN_PB_VARINT)
				return AN_EMALFORMED;
			rsv->has_expire = true;
			rsv->expire = f.varint;
		} else if (f.number == 2) {
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			if (rsv->naddrs < AN_RELAY_MAX_ADDRS) {
				rsv->addrs[rsv->naddrs].p = f.data;
				rsv->addrs[rsv->naddrs].len = f.len;
				rsv->naddrs++;
			}
		} else if (f.number == 3) {
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			rsv->voucher.p = f.data;
			rsv->voucher.len = f.len;
		}
	}
	return rc;
}

static int decode_limit(const uint8_t *p, size_t len, struct an_relay_limit *lim)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	lim->present = true;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number == 1) {
			if (f.wire != AN_PB_VARINT || f.varint > UINT32_MAX)
				return AN_EMALFORMED;
			lim->has_duration = true;
			lim->duration = (uint32_t)f.varint;
		} else if (f.number == 2) {
			if (f.wire != AN_PB_VARINT)
				return AN_EMALFORMED;
			lim->has_data = true;
			lim->data = f.varint;
		}
	}
	return rc;
}

int an_relay_msg_decode(enum an_relay_kind kind, const uint8_t *p, size_t len,
			struct an_relay_msg *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	bool has_type = false;
	int rc;

	an_relay_msg_init(m, kind, 0);
	if (len > AN_RELAY_MSG_MAX)
		return AN_ETOOBIG;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		uint32_t n = f.number;
		if (n == F_TYPE) {
			if (f.wire != AN_PB_VARINT || !type_valid(kind, f.varint))
				return AN_EMALFORMED;
			m->type = (int)f.varint;
			has_type = true;
			continue;
		}
		if (n == f_status(kind)) {
			if (f.wire != AN_PB_VARINT || f.varint > UINT32_MAX)
				return AN_EMALFORMED;
			m->has_status = true;
			m->status = (uint32_t)f.varint;
			continue;
		}
		if (n != F_PEER && n != f_limit(kind) && !(kind == AN_RELAY_HOP && n == HOP_F_RESERVATION))
			continue; /* unknown field: skipped */
		if (f.wire != AN_PB_LEN)
			return AN_EMALFORMED;
		/* A repeated embedded message merges in protobuf; we keep the last. */
		if (n == F_PEER) {
			memset(&m->peer, 0, sizeof(m->peer));
			rc = decode_peer(f.data, f.len, &m->peer);
		} else if (n == f_limit(kind)) {
			memset(&m->limit, 0, sizeof(m->limit));
			rc = decode_limit(f.data, f.len, &m->limit);
		} else {
			memset(&m->rsv, 0, sizeof(m->rsv));
			rc = decode_rsv(f.data, f.len, &m->rsv);
		}
		if (rc < 0)
			return rc;
	}
	if (rc < 0)
		return rc;
	return has_type ? 0 : AN_EFIELD;
}

int an_relay_msg_read(enum an_relay_kind kind, const uint8_t *p, size_t len,
		      struct an_relay_msg *m, size_t *used)
{
	const uint8_t *msg;
	size_t msg_len, n;
	int rc = an_lp_get(p, len, AN_RELAY_MSG_MAX, &msg, &msg_len, &n);
	if (rc < 0)
		return rc;
	if ((rc = an_relay_msg_decode(kind, msg, msg_len, m)) < 0)
		return rc;
	*used = n;
	return 0;
}

const char *an_relay_status_name(uint32_t status)
{
	switch (status) {
	case AN_RELAY_UNUSED: return "UNUSED";
	case AN_RELAY_OK: return "OK";
	case AN_RELAY_RESERVATION_REFUSED: return "RESERVATION_REFUSED";
	case AN_RELAY_RESOURCE_LIMIT_EXCEEDED: return "RESOURCE_LIMIT_EXCEEDED";
	case AN_RELAY_PERMISSION_DENIED: return "PERMISSION_DENIED";
	case AN_RELAY_CONNECTION_FAILED: return "CONNECTION_FAILED";
	case AN_RELAY_NO_RESERVATION: return "NO_RESERVATION";
	case AN_RELAY_MALFORMED_MESSAGE: return "MALFORMED_MESSAGE";
	case AN_RELAY_UNEXPECTED_MESSAGE: return "UNEXPECTED_MESSAGE";
	default: return "UNKNOWN";
	}
}
