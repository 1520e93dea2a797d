/*
 * base32.h - RFC 4648 base32, lowercase alphabet, no padding (as multibase
 * 'b' and the Alternet peer hash use it).  Decoding accepts upper case too
 * and refuses padding, stray characters and non-zero trailing bits.
 */
#ifndef AN_ENCODING_BASE32_H
#define AN_ENCODING_BASE32_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed for len bytes, without the NUL. */
size_t an_base32_encoded_len(size_t len);

/* As an_base58_encode: 0 or AN_ETOOBIG. */
int an_base32_encode(const uint8_t *in, size_t len, char *out, size_t outcap);

/* Decode textlen characters of text: 0, AN_EMALFORMED, AN_ETOOBIG. */
int an_base32_decode(const char *text, size_t textlen, uint8_t *out, size_t outcap,
		     size_t *outlen);

#endif
