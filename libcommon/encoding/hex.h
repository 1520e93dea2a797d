/*
 * hex.h - lowercase hexadecimal.
 */
#ifndef AN_ENCODING_HEX_H
#define AN_ENCODING_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Write 2*len lowercase hex digits and a NUL; out has room for 2*len+1. */
void an_hex_encode(const uint8_t *in, size_t len, char *out);

/* Decode textlen digits (either case): 0, AN_EMALFORMED, AN_ETOOBIG. */
int an_hex_decode(const char *text, size_t textlen, uint8_t *out, size_t outcap, size_t *outlen);

#endif
