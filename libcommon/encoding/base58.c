#include "encoding/base58.h"
#include "util/error.h"

#include <string.h>

static const char b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* Value of character c, or -1 outside the alphabet (0, O, I, l and non-ASCII). */
static int b58_value(unsigned char c)
{
	const char *p = c ? strchr(b58_alphabet, c) : NULL;
	return p ? (int)(p - b58_alphabet) : -1;
}

int an_base58_encode(const uint8_t *in, size_t len, char *out, size_t outcap)
{
	/* log(256)/log(58) < 1.38: digits needed for the non-zero part. */
	uint8_t digits[AN_BASE58_MAX_INPUT * 138 / 100 + 1];
	size_t zeros = 0, ndig = 0;

	if (len > AN_BASE58_MAX_INPUT)
		return AN_ETOOBIG;
	while (zeros < len && in[zeros] == 0)
		zeros++;
	/* Schoolbook base conversion: digits holds the number little-endian. */
	for (size_t i = zeros; i < len; i++) {
		unsigned carry = in[i];
		for (size_t j = 0; j < ndig; j++) {
			carry += (unsigned)digits[j] << 8;
			digits[j] = (uint8_t)(carry % 58);
			carry /= 58;
		}
		while (carry) {
			digits[ndig++] = (uint8_t)(carry % 58);
			carry /= 58;
		}
	}
	if (outcap < zeros + ndig + 1)
		return AN_ETOOBIG;
	memset(out, '1', zeros);
	for (size_t j = 0; j < ndig; j++)
		out[zeros + j] = b58_alphabet[digits[ndig - 1 - j]];
	out[zeros + ndig] = 0;
	return 0;
}

int an_base58_decode(const char *text, uint8_t *out, size_t outcap, size_t *outlen)
{
	/* log(58)/log(256) < 0.733: bytes needed for the non-'1' part. */
	uint8_t bytes[AN_BASE58_MAX_INPUT * 733 / 1000 + 1];
	size_t len = strnlen(text, AN_BASE58_MAX_INPUT + 1), zeros = 0, nbytes = 0;

	if (len == 0)
		return AN_EMALFORMED;
	if (len > AN_BASE58_MAX_INPUT)
		return AN_ETOOBIG;
	while (zeros < len && text[zeros] == '1')
		zeros++;
	for (size_t i = zeros; i < len; i++) {
		int v = b58_value((unsigned char)text[i]);
		if (v < 0)
			return AN_EMALFORMED;
		unsigned carry = (unsigned)v;
		for (size_t j = 0; j < nbytes; j++) {
			carry += bytes[j] * 58u;
			bytes[j] = (uint8_t)carry;
			carry >>= 8;
		}
		while (carry) {
			bytes[nbytes++] = (uint8_t)carry;
			carry >>= 8;
		}
	}
	if (outcap < zeros + nbytes)
		return AN_ETOOBIG;
	memset(out, 0, zeros);
	for (size_t j = 0; j < nbytes; j++)
		out[zeros + j] = bytes[nbytes - 1 - j];
	*outlen = zeros + nbytes;
	return 0;
}
