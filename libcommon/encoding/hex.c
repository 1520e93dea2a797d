#include "encoding/hex.h"
#include "util/error.h"

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void an_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = 0;
}

int an_hex_decode(const char *text, size_t textlen, uint8_t *out, size_t outcap, size_t *outlen)
{
	if (textlen % 2)
		return AN_EMALFORMED;
	if (textlen / 2 > outcap)
		return AN_ETOOBIG;
	for (size_t i = 0; i < textlen / 2; i++) {
		int hi = hex_value((unsigned char)text[2 * i]);
		int lo = hex_value((unsigned char)text[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return AN_EMALFORMED;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*outlen = textlen / 2;
	return 0;
}
