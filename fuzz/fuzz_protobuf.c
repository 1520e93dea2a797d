/*
 * libFuzzer harness: walk every field of a message (and of any
 * length-delimited field as a nested message, a few levels deep), then
 * re-encode what was read and check it reads back the same.
 */
#include "encoding/protobuf.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const uint8_t *p, size_t len, int depth)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	struct an_buf b;
	int rc;

	an_buf_init(&b, 2 * len + 64);
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number == 0 || r.pos > r.end)
			abort();
		switch (f.wire) {
		case AN_PB_VARINT:
			if (an_pb_put_varint(&b, f.number, f.varint) != 0)
				abort();
			break;
		case AN_PB_LEN:
			if (f.data < p || f.data + f.len > p + len)
				abort();
			if (depth < 4)
				walk(f.data, f.len, depth + 1);
			if (an_pb_put_bytes(&b, f.number, f.data, f.len) != 0)
				abort();
			break;
		case AN_PB_FIXED32:
			if (f.varint > UINT32_MAX)
				abort();
			break;
		case AN_PB_FIXED64:
			break;
		default:
			abort();
		}
	}
	if (rc != 0 && rc != AN_EMALFORMED && rc != AN_ETRUNCATED)
		abort();
	/* An error leaves the reader in place: asking again repeats it. */
	if (rc < 0 && an_pb_next(&r, &f) != rc)
		abort();

	/* What we wrote (varint and bytes fields only) must read back. */
	an_pb_reader_init(&r, b.data, b.len);
	while ((rc = an_pb_next(&r, &f)) == 1)
		;
	if (rc != 0)
		abort();
	an_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *msg;
	size_t mlen, used;

	walk(data, size, 0);
	/* The same bytes as a stream of length-prefixed frames. */
	while (an_lp_get(data, size, 4096, &msg, &mlen, &used) == 0) {
		if (used > size || msg + mlen != data + used)
			abort();
		data += used;
		size -= used;
	}
	return 0;
}
