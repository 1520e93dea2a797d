/*
 * protobuf.h - a small hand-written protobuf reader and writer.
 *
 * The reader walks the fields of one message without allocating; the caller
 * picks the fields it knows and ignores the rest, so unknown fields of every
 * wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32) are skipped.
 * Lengths are checked against the message bounds; groups (3, 4) are refused.
 * The writer appends to a capped an_buf, fields in the order called (callers
 * emit ascending tags), minimal varints, so output is deterministic.
 */
#ifndef AN_ENCODING_PROTOBUF_H
#define AN_ENCODING_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum an_pb_wire {
	AN_PB_VARINT = 0,
	AN_PB_FIXED64 = 1,
	AN_PB_LEN = 2,
	AN_PB_FIXED32 = 5
};

struct an_pb_reader {
	const uint8_t *pos; /* borrowed */
	const uint8_t *end;
};

struct an_pb_field {
	uint32_t number;
	enum an_pb_wire wire;
	uint64_t varint;     /* AN_PB_VARINT; also FIXED32/64 values (little-endian decoded) */
	const uint8_t *data; /* AN_PB_LEN: borrowed from the reader's input */
	size_t len;
};

/* Read the message p[0..len) (borrowed, must outlive the reader). */
void an_pb_reader_init(struct an_pb_reader *r, const uint8_t *p, size_t len);

/*
 * Next field: 1 and *f filled, 0 at the clean end of the message,
 * AN_EMALFORMED (bad tag, field number 0, group wire type, non-minimal or
 * overlong varint) or AN_ETRUNCATED (a field runs past the end).
 * Tags and lengths are multiformats varints (at most 9 bytes); varint field
 * values may use all 64 bits (10 bytes), as protobuf uint64 and negative
 * int32/int64 do.  After an error the reader does not advance: calling again
 * returns the same error, never a clean end.
 */
int an_pb_next(struct an_pb_reader *r, struct an_pb_field *f);

/*
 * Writers: append one field to b.  0, AN_ETOOBIG at b's cap (b unchanged),
 * -ENOMEM, -EINVAL for a field number outside 1..2^29-1.  b is borrowed;
 * p and s are borrowed and copied.
 */
int an_pb_put_varint(struct an_buf *b, uint32_t number, uint64_t v);
int an_pb_put_bytes(struct an_buf *b, uint32_t number, const void *p, size_t len);
int an_pb_put_string(struct an_buf *b, uint32_t number, const char *s);

/* Append uvarint(len) || p: the length-prefixed framing of libp2p protocols. */
int an_lp_put(struct an_buf *b, const void *p, size_t len);

/*
 * Find one length-prefixed frame at the start of p[0..len): 0 with *msg and
 * *msg_len pointing into p and *used the bytes consumed; AN_EAGAIN if
 * incomplete; AN_ETOOBIG if the announced length exceeds max; AN_EMALFORMED
 * for a non-minimal or overlong length varint.
 */
int an_lp_get(const uint8_t *p, size_t len, size_t max, const uint8_t **msg, size_t *msg_len,
	      size_t *used);

#endif
