#include "encoding/protobuf.h"
#include "encoding/varint.h"
#include "util/error.h"

#include <errno.h>
#include <string.h>

/* Largest protobuf field number (2^29 - 1), from the protobuf encoding spec. */
#define PB_MAX_FIELD ((UINT32_C(1) << 29) - 1)
/* A protobuf varint carries up to 64 bits: ten bytes, the last one 0 or 1. */
#define PB_VARINT_MAX_BYTES 10

void an_pb_reader_init(struct an_pb_reader *r, const uint8_t *p, size_t len)
{
	r->pos = p;
	r->end = p ? p + len : p;
}

/*
 * Field values are protobuf varints, which unlike multiformats varints may
 * use all 64 bits (uint64 above 2^63, negative int32/int64 sign-extended to
 * ten bytes).  Refusing those would make one odd field of a peer's message
 * fail the whole message, so values get their own decoder; tags and lengths
 * go through the stricter multiformats one.  Both insist on minimal form.
 */
static int pb_value_decode(const uint8_t *p, size_t len, uint64_t *value, size_t *used)
{
	uint64_t v = 0;
	for (size_t i = 0; i < PB_VARINT_MAX_BYTES; i++) {
		if (i == len)
			return AN_ETRUNCATED;
		if (i == PB_VARINT_MAX_BYTES - 1 && p[i] > 1)
			return AN_EMALFORMED; /* bits beyond 64, or a continuation */
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (p[i] & 0x80)
			continue;
		if (p[i] == 0 && i > 0)
			return AN_EMALFORMED;
		*value = v;
		*used = i + 1;
		return 0;
	}
	return AN_EMALFORMED; /* not reached: the tenth byte check returns */
}

/* A multiformats varint inside a message: running out of bytes is truncation. */
static int pb_uvarint(const uint8_t *p, size_t len, uint64_t *value, size_t *used)
{
	int rc = an_varint_decode(p, len, value, used);
	return rc == AN_EAGAIN ? AN_ETRUNCATED : rc;
}

static uint64_t load_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

int an_pb_next(struct an_pb_reader *r, struct an_pb_field *f)
{
	const uint8_t *p = r->pos;
	size_t left = (size_t)(r->end - p), used;
	uint64_t tag, v;
	int rc;

	if (left == 0)
		return 0;
	/* On error r->pos stays put, so a caller that calls again gets the
	 * same error rather than a clean end. */
	if ((rc = pb_uvarint(p, left, &tag, &used)) < 0)
		return rc;
	if (tag >> 3 == 0 || tag >> 3 > PB_MAX_FIELD)
		return AN_EMALFORMED;
	p += used;
	left -= used;
	memset(f, 0, sizeof *f);
	f->number = (uint32_t)(tag >> 3);
	switch (tag & 7) {
	case AN_PB_VARINT:
		if ((rc = pb_value_decode(p, left, &v, &used)) < 0)
			return rc;
		f->varint = v;
		break;
	case AN_PB_FIXED64:
	case AN_PB_FIXED32:
		used = (tag & 7) == AN_PB_FIXED64 ? 8 : 4;
		if (left < used)
			return AN_ETRUNCATED;
		f->varint = load_le(p, used);
		break;
	case AN_PB_LEN:
		if ((rc = pb_uvarint(p, left, &v, &used)) < 0)
			return rc;
		if (v > left - used)
			return AN_ETRUNCATED;
		f->data = p + used;
		f->len = (size_t)v;
		used += (size_t)v;
		break;
	default: /* 3, 4: groups (deprecated, never used by libp2p); 6, 7: invalid */
		return AN_EMALFORMED;
	}
	f->wire = (enum an_pb_wire)(tag & 7);
	r->pos = p + used;
	return 1;
}

/* Append the tag, the value varint and then n bytes of p, all or nothing. */
static int pb_put(struct an_buf *b, uint32_t number, enum an_pb_wire wire, uint64_t v,
		  const void *p, size_t n)
{
	uint8_t head[AN_VARINT_MAX_BYTES + PB_VARINT_MAX_BYTES];
	size_t hn, old = b->len;
	int rc;

	if (number == 0 || number > PB_MAX_FIELD)
		return -EINVAL;
	hn = an_varint_encode((uint64_t)number << 3 | wire, head);
	do {
		head[hn++] = (uint8_t)(v >= 0x80 ? (v | 0x80) : v);
		v >>= 7;
	} while (v);
	if ((rc = an_buf_append(b, head, hn)) < 0)
		return rc;
	if (n && (rc = an_buf_append(b, p, n)) < 0) {
		b->len = old;
		b->data[old] = 0;
		return rc;
	}
	return 0;
}

int an_pb_put_varint(struct an_buf *b, uint32_t number, uint64_t v)
{
	return pb_put(b, number, AN_PB_VARINT, v, NULL, 0);
}

int an_pb_put_bytes(struct an_buf *b, uint32_t number, const void *p, size_t len)
{
	if ((uint64_t)len > AN_VARINT_MAX_VALUE)
		return AN_ETOOBIG;
	return pb_put(b, number, AN_PB_LEN, len, p, len);
}

int an_pb_put_string(struct an_buf *b, uint32_t number, const char *s)
{
	return an_pb_put_bytes(b, number, s, strlen(s));
}

int an_lp_put(struct an_buf *b, const void *p, size_t len)
{
	uint8_t head[AN_VARINT_MAX_BYTES];
	size_t hn, old = b->len;
	int rc;

	if ((uint64_t)len > AN_VARINT_MAX_VALUE)
		return AN_ETOOBIG;
	hn = an_varint_encode(len, head);
	if ((rc = an_buf_append(b, head, hn)) < 0)
		return rc;
	if (len && (rc = an_buf_append(b, p, len)) < 0) {
		b->len = old;
		b->data[old] = 0;
		return rc;
	}
	return 0;
}

int an_lp_get(const uint8_t *p, size_t len, size_t max, const uint8_t **msg, size_t *msg_len,
	      size_t *used)
{
	uint64_t n;
	size_t hn;
	int rc = an_varint_decode(p, len, &n, &hn);

	if (rc < 0)
		return rc; /* AN_EAGAIN or AN_EMALFORMED */
	if (n > max)
		return AN_ETOOBIG;
	if (n > len - hn)
		return AN_EAGAIN;
	*msg = p + hn;
	*msg_len = (size_t)n;
	*used = hn + (size_t)n;
	return 0;
}
