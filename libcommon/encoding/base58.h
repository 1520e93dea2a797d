/*
 * base58.h - base58btc (the Bitcoin alphabet, leading zero bytes as '1').
 */
#ifndef AN_ENCODING_BASE58_H
#define AN_ENCODING_BASE58_H

#include <stddef.h>
#include <stdint.h>

/* Largest input either function accepts (peer IDs and CIDs are far smaller). */
#define AN_BASE58_MAX_INPUT 1024

/*
 * Encode in[0..len) into out as a NUL-terminated string.  0, or AN_ETOOBIG
 * if out (outcap bytes including the NUL) is too small or len too large.
 */
int an_base58_encode(const uint8_t *in, size_t len, char *out, size_t outcap);

/*
 * Decode the NUL-terminated text into out (outcap bytes); *outlen gets the
 * length.  AN_EMALFORMED on a character outside the alphabet or empty input,
 * AN_ETOOBIG when out is too small.
 */
int an_base58_decode(const char *text, uint8_t *out, size_t outcap, size_t *outlen);

#endif
