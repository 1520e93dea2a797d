#include "encoding/varint.h"
#include "util/error.h"

size_t an_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t an_varint_encode(uint64_t v, uint8_t *out)
{
	size_t n = 0;
	if (v > AN_VARINT_MAX_VALUE)
		return 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int an_varint_decode(const uint8_t *p, size_t len, uint64_t *value, size_t *used)
{
	uint64_t v = 0;
	for (size_t i = 0; i < AN_VARINT_MAX_BYTES; i++) {
		if (i == len)
			return AN_EAGAIN;
		v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (p[i] & 0x80)
			continue;
		/* A last byte of 0 after others means the value fitted in fewer
		 * bytes: the spec requires minimal encodings (and signatures over
		 * protobufs depend on them). */
		if (p[i] == 0 && i > 0)
			return AN_EMALFORMED;
		*value = v;
		*used = i + 1;
		return 0;
	}
	/* Nine bytes all with the continuation bit: a 10th would exceed 63 bits. */
	return AN_EMALFORMED;
}
