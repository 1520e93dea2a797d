/*
 * varint.h - multiformats unsigned varint (LEB128, minimal, at most 9 bytes
 * = 63 bits, as the multiformats spec allows).
 */
#ifndef AN_ENCODING_VARINT_H
#define AN_ENCODING_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define AN_VARINT_MAX_BYTES 9
#define AN_VARINT_MAX_VALUE ((UINT64_C(1) << 63) - 1)

/* Bytes needed to encode v (1..10; values above AN_VARINT_MAX_VALUE need 10). */
size_t an_varint_len(uint64_t v);

/*
 * Encode v (<= AN_VARINT_MAX_VALUE) into out, which has room for
 * AN_VARINT_MAX_BYTES.  Returns the number of bytes written, 0 if v is too big.
 */
size_t an_varint_encode(uint64_t v, uint8_t *out);

/*
 * Decode one varint from p[0..len).  On success stores the value and the
 * bytes used and returns 0.  AN_EAGAIN if p ends inside the varint (more
 * input may complete it); AN_EMALFORMED for a non-minimal encoding or one
 * longer than AN_VARINT_MAX_BYTES.
 */
int an_varint_decode(const uint8_t *p, size_t len, uint64_t *value, size_t *used);

#endif
