#include "encoding/base32.h"
#include "util/error.h"

static const char b32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

/* Value of c (either case), or -1 for anything else, padding included. */
static int b32_value(unsigned char c)
{
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

size_t an_base32_encoded_len(size_t len)
{
	return len / 5 * 8 + (len % 5 * 8 + 4) / 5;
}

int an_base32_encode(const uint8_t *in, size_t len, char *out, size_t outcap)
{
	size_t n = 0;
	unsigned acc = 0, bits = 0;

	if (len > SIZE_MAX / 2 || outcap < an_base32_encoded_len(len) + 1)
		return AN_ETOOBIG;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8 | in[i]) & 0xfff; /* at most 4 + 8 bits pending */
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[n++] = b32_alphabet[(acc >> bits) & 31];
		}
	}
	if (bits)
		out[n++] = b32_alphabet[(acc << (5 - bits)) & 31];
	out[n] = 0;
	return 0;
}

int an_base32_decode(const char *text, size_t textlen, uint8_t *out, size_t outcap,
		     size_t *outlen)
{
	size_t n = 0;
	unsigned acc = 0, bits = 0;

	/* Unpadded lengths mod 8 of 1, 3 and 6 encode no whole byte count. */
	switch (textlen % 8) {
	case 1:
	case 3:
	case 6:
		return AN_EMALFORMED;
	}
	if (textlen / 8 * 5 + textlen % 8 * 5 / 8 > outcap)
		return AN_ETOOBIG;
	for (size_t i = 0; i < textlen; i++) {
		int v = b32_value((unsigned char)text[i]);
		if (v < 0)
			return AN_EMALFORMED;
		acc = (acc << 5 | (unsigned)v) & 0xfff; /* at most 7 + 5 bits pending */
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero, so every byte string has one encoding. */
	if (acc & ((1u << bits) - 1))
		return AN_EMALFORMED;
	*outlen = n;
	return 0;
}
