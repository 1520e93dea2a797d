/*
 * autonat_msg.c - AutoNAT v1 and v2 protobufs (see autonat_msg.h).
 */
#include "nat/autonat_msg.h"

#include <errno.h>
#include <string.h>

#include "encoding/protobuf.h"
#include "encoding/varint.h"
#include "util/error.h"

/* fixed64: tag with wire type 1, then 8 bytes little-endian. */
static int put_fixed64(struct an_buf *b, uint32_t number, uint64_t v)
{
	uint8_t tmp[10 + 8];
	size_t n = an_varint_encode(((uint64_t)number << 3) | AN_PB_FIXED64, tmp);
	for (int i = 0; i < 8; i++)
		tmp[n + i] = (uint8_t)(v >> (8 * i));
	return an_buf_append(b, tmp, n + 8);
}

/* Append body as one LP frame to out, out unchanged on error. */
static int frame(const struct an_buf *body, struct an_buf *out)
{
	if (body->len > AN_AUTONAT_MSG_MAX)
		return AN_ETOOBIG;
	size_t before = out->len;
	int rc = an_lp_put(out, body->len ? body->data : (const uint8_t *)"", body->len);
	if (rc < 0)
		out->len = before;
	return rc;
}

static int put_bytes(struct an_buf *b, uint32_t number, const struct an_autonat_bytes *v)
{
	return an_pb_put_bytes(b, number, v->len ? v->p : (const uint8_t *)"", v->len);
}

/* A message of ours never exceeds the frame cap, so the scratch cap is that. */
#define SCRATCH_MAX (AN_AUTONAT_MSG_MAX + 64)

/* ---- v1 ---- */

void an_autonat1_init(struct an_autonat1_msg *m, uint32_t type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

int an_autonat1_encode(const struct an_autonat1_msg *m, struct an_buf *out)
{
	struct an_buf body, sub, peer;
	int rc;

	an_buf_init(&body, SCRATCH_MAX);
	an_buf_init(&sub, SCRATCH_MAX);
	an_buf_init(&peer, SCRATCH_MAX);
	rc = an_pb_put_varint(&body, 1, m->type);
	if (rc == 0 && m->has_dial) {
		if (m->has_peer) {
			rc = put_bytes(&peer, 1, &m->peer_id);
			for (size_t i = 0; rc == 0 && i < m->naddrs && i < AN_AUTONAT_MAX_ADDRS; i++)
				rc = put_bytes(&peer, 2, &m->addrs[i]);
			if (rc == 0)
				rc = an_pb_put_bytes(&sub, 1, peer.len ? peer.data : (const uint8_t *)"",
						     peer.len);
		}
		if (rc == 0)
			rc = an_pb_put_bytes(&body, 2, sub.len ? sub.data : (const uint8_t *)"", sub.len);
	}
	if (rc == 0 && m->has_response) {
		an_buf_reset(&sub);
		rc = an_pb_put_varint(&sub, 1, m->status);
		if (rc == 0 && m->status_text.len)
			rc = put_bytes(&sub, 2, &m->status_text);
		if (rc == 0 && m->addr.len)
			rc = put_bytes(&sub, 3, &m->addr);
		if (rc == 0)
			rc = an_pb_put_bytes(&body, 3, sub.data, sub.len);
	}
	if (rc == 0)
		rc = frame(&body, out);
	an_buf_free(&body);
	an_buf_free(&sub);
	an_buf_free(&peer);
	return rc;
}

static int decode_peer(const uint8_t *p, size_t len, struct an_autonat1_msg *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	m->has_peer = true;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number != 1 && f.number != 2)
			continue;
		if (f.wire != AN_PB_LEN)
			return AN_EMALFORMED;
		if (f.number == 1) {
			m->peer_id.p = f.data;
			m->peer_id.len = f.len;
		} else if (m->naddrs < AN_AUTONAT_MAX_ADDRS) {
			m->addrs[m->naddrs].p = f.data;
			m->addrs[m->naddrs++].len = f.len;
		} else {
			m->dropped++;
		}
	}
	return rc;
}

static int decode_dial(const uint8_t *p, size_t len, struct an_autonat1_msg *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	m->has_dial = true;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number != 1)
			continue;
		if (f.wire != AN_PB_LEN)
			return AN_EMALFORMED;
		/* a repeated occurrence replaces (merging is not worth it here) */
		m->naddrs = 0;
		m->dropped = 0;
		rc = decode_peer(f.data, f.len, m);
		if (rc < 0)
			return rc;
	}
	return rc;
}

static int decode_response(const uint8_t *p, size_t len, struct an_autonat1_msg *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	m->has_response = true;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		switch (f.number) {
		case 1:
			if (f.wire != AN_PB_VARINT)
				return AN_EMALFORMED;
			m->status = (uint32_t)f.varint;
			break;
		case 2:
		case 3:
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			if (f.number == 2) {
				m->status_text.p = f.data;
				m->status_text.len = f.len;
			} else {
				m->addr.p = f.data;
				m->addr.len = f.len;
			}
			break;
		default:
			break;
		}
	}
	return rc;
}

int an_autonat1_decode(const uint8_t *p, size_t len, struct an_autonat1_msg *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	an_autonat1_init(m, 0);
	if (len > AN_AUTONAT_MSG_MAX)
		return AN_ETOOBIG;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		switch (f.number) {
		case 1:
			if (f.wire != AN_PB_VARINT)
				return AN_EMALFORMED;
			m->type = (uint32_t)f.varint;
			break;
		case 2:
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			rc = decode_dial(f.data, f.len, m);
			break;
		case 3:
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			rc = decode_response(f.data, f.len, m);
			break;
		default:
			break;
		}
		if (rc < 0)
			return rc;
	}
	return rc;
}

/* ---- v2 ---- */

void an_autonat2_init(struct an_autonat2_msg *m, enum an_autonat2_kind kind)
{
	memset(m, 0, sizeof(*m));
	m->kind = kind;
}

int an_autonat2_encode(const struct an_autonat2_msg *m, struct an_buf *out)
{
	struct an_buf body, sub;
	int rc = 0;

	if (m->kind < AN_AUTONAT2_DIAL_REQUEST || m->kind > AN_AUTONAT2_DIAL_DATA_RESPONSE)
		return -EINVAL;
	an_buf_init(&body, SCRATCH_MAX);
	an_buf_init(&sub, SCRATCH_MAX);
	switch (m->kind) {
	case AN_AUTONAT2_DIAL_REQUEST:
		for (size_t i = 0; rc == 0 && i < m->naddrs && i < AN_AUTONAT_MAX_ADDRS; i++)
			rc = put_bytes(&sub, 1, &m->addrs[i]);
		if (rc == 0 && m->nonce)
			rc = put_fixed64(&sub, 2, m->nonce);
		break;
	case AN_AUTONAT2_DIAL_RESPONSE:
		if (m->status)
			rc = an_pb_put_varint(&sub, 1, m->status);
		if (rc == 0 && m->addr_idx)
			rc = an_pb_put_varint(&sub, 2, m->addr_idx);
		if (rc == 0 && m->dial_status)
			rc = an_pb_put_varint(&sub, 3, m->dial_status);
		break;
	case AN_AUTONAT2_DIAL_DATA_REQUEST:
		if (m->addr_idx)
			rc = an_pb_put_varint(&sub, 1, m->addr_idx);
		if (rc == 0 && m->num_bytes)
			rc = an_pb_put_varint(&sub, 2, m->num_bytes);
		break;
	default: /* AN_AUTONAT2_DIAL_DATA_RESPONSE */
		if (m->data.len)
			rc = put_bytes(&sub, 1, &m->data);
		break;
	}
	if (rc == 0)
		rc = an_pb_put_bytes(&body, (uint32_t)m->kind, sub.len ? sub.data : (const uint8_t *)"",
				     sub.len);
	if (rc == 0)
		rc = frame(&body, out);
	an_buf_free(&body);
	an_buf_free(&sub);
	return rc;
}

static int decode_case(const uint8_t *p, size_t len, enum an_autonat2_kind kind,
		       struct an_autonat2_msg *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	an_autonat2_init(m, kind);
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number >= 16)
			continue; /* unknown (and would alias another case's key below) */
		uint32_t key = (uint32_t)kind * 16 + f.number;
		switch (key) {
		case AN_AUTONAT2_DIAL_REQUEST * 16 + 1:
		case AN_AUTONAT2_DIAL_DATA_RESPONSE * 16 + 1:
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			if (kind == AN_AUTONAT2_DIAL_DATA_RESPONSE) {
				m->data.p = f.data;
				m->data.len = f.len;
			} else if (m->naddrs < AN_AUTONAT_MAX_ADDRS) {
				m->addrs[m->naddrs].p = f.data;
				m->addrs[m->naddrs++].len = f.len;
			} else {
				m->dropped++;
			}
			break;
		case AN_AUTONAT2_DIAL_REQUEST * 16 + 2:
			if (f.wire != AN_PB_FIXED64)
				return AN_EMALFORMED;
			m->nonce = f.varint;
			break;
		case AN_AUTONAT2_DIAL_RESPONSE * 16 + 1:
		case AN_AUTONAT2_DIAL_RESPONSE * 16 + 2:
		case AN_AUTONAT2_DIAL_RESPONSE * 16 + 3:
		case AN_AUTONAT2_DIAL_DATA_REQUEST * 16 + 1:
		case AN_AUTONAT2_DIAL_DATA_REQUEST * 16 + 2:
			if (f.wire != AN_PB_VARINT)
				return AN_EMALFORMED;
			if (key == AN_AUTONAT2_DIAL_RESPONSE * 16 + 1)
				m->status = (uint32_t)f.varint;
			else if (key == AN_AUTONAT2_DIAL_RESPONSE * 16 + 3)
				m->dial_status = (uint32_t)f.varint;
			else if (key == AN_AUTONAT2_DIAL_DATA_REQUEST * 16 + 2)
				m->num_bytes = f.varint;
			else
				m->addr_idx = (uint32_t)f.varint;
			break;
		default:
			break;
		}
	}
	return rc;
}

int an_autonat2_decode(const uint8_t *p, size_t len, struct an_autonat2_msg *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	an_autonat2_init(m, AN_AUTONAT2_NONE);
	if (len > AN_AUTONAT_MSG_MAX)
		return AN_ETOOBIG;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number < AN_AUTONAT2_DIAL_REQUEST || f.number > AN_AUTONAT2_DIAL_DATA_RESPONSE)
			continue;
		if (f.wire != AN_PB_LEN)
			return AN_EMALFORMED;
		rc = decode_case(f.data, f.len, (enum an_autonat2_kind)f.number, m);
		if (rc < 0)
			return rc;
	}
	return rc;
}

int an_autonat2_dial_back_encode(uint64_t nonce, struct an_buf *out)
{
	struct an_buf body;
	int rc = 0;

	an_buf_init(&body, 64);
	if (nonce)
		rc = put_fixed64(&body, 1, nonce);
	if (rc == 0)
		rc = frame(&body, out);
	an_buf_free(&body);
	return rc;
}

int an_autonat2_dial_back_decode(const uint8_t *p, size_t len, uint64_t *nonce)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	*nonce = 0;
	if (len > AN_AUTONAT_MSG_MAX)
		return AN_ETOOBIG;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number != 1)
			continue;
		if (f.wire != AN_PB_FIXED64)
			return AN_EMALFORMED;
		*nonce = f.varint;
	}
	return rc;
}

int an_autonat2_dial_back_response_encode(uint32_t status, struct an_buf *out)
{
	struct an_buf body;
	int rc = 0;

	an_buf_init(&body, 64);
	if (status)
		rc = an_pb_put_varint(&body, 1, status);
	if (rc == 0)
		rc = frame(&body, out);
	an_buf_free(&body);
	return rc;
}

int an_autonat2_dial_back_response_decode(const uint8_t *p, size_t len, uint32_t *status)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	*status = 0;
	if (len > AN_AUTONAT_MSG_MAX)
		return AN_ETOOBIG;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number != 1)
			continue;
		if (f.wire != AN_PB_VARINT)
			return AN_EMALFORMED;
		*status = (uint32_t)f.varint;
	}
	return rc;
}
