/* libFuzzer harness: varint decode, and encode/decode round trip of what decodes. */
#include "encoding/varint.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	/* Walk the input as a sequence of varints, as framing code does. */
	while (off < size) {
		uint64_t v, v2;
		size_t used, used2, n;
		uint8_t out[AN_VARINT_MAX_BYTES];
		int rc = an_varint_decode(data + off, size - off, &v, &used);

		if (rc == AN_EAGAIN || rc == AN_EMALFORMED)
			break;
		if (rc != 0 || used == 0 || used > AN_VARINT_MAX_BYTES || used > size - off)
			abort();
		/* Minimal encodings only: re-encoding gives the same bytes. */
		n = an_varint_encode(v, out);
		if (n != used || memcmp(out, data + off, n) != 0 || an_varint_len(v) != n)
			abort();
		if (an_varint_decode(out, n, &v2, &used2) != 0 || v2 != v || used2 != n)
			abort();
		off += used;
	}
	return 0;
}
