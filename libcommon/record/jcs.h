/*
 * jcs.h - RFC 8785 JSON Canonicalization Scheme over jansson values.
 *
 * The canonical form is what Alternet records are signed over (an-record(5)):
 *   - no whitespace;
 *   - object members sorted by their names compared as arrays of UTF-16 code
 *     units (not UTF-8 bytes: the two orders differ for characters above
 *     U+FFFF against U+E000..U+FFFF);
 *   - strings escaped as ECMAScript JSON.stringify does: \" \\ \b \f \n \r \t,
 *     other controls below U+0020 as \u00xx (lowercase hex), everything else
 *     (including U+007F and U+2028) as literal UTF-8;
 *   - numbers as ECMAScript Number::toString of the IEEE 754 double: shortest
 *     round-trip digits, exponent form below 1e-6 and from 1e21.
 *
 * jansson keeps integers apart from reals.  An integer is serialized as the
 * double it denotes; integers beyond +-(2^53-1) are refused (AN_ETOOBIG)
 * rather than silently rounded, and NaN / infinities (which jansson cannot
 * parse but a caller could build) are refused too.  Strings with NUL are
 * allowed (escaped \u0000) when jansson holds them.
 */
#ifndef AN_RECORD_JCS_H
#define AN_RECORD_JCS_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"

/* Largest integer magnitude JCS can carry exactly (2^53 - 1). */
#define AN_JCS_INT_MAX 9007199254740991LL

/* Room for any number an_jcs_format_double writes, NUL included. */
#define AN_JCS_NUMBER_MAX 32

/*
 * Append the canonical form of v (borrowed) to out.  0, AN_ETOOBIG (out's cap
 * reached, or an integer beyond 2^53-1), AN_EMALFORMED (NaN or infinity),
 * -ENOMEM.  Strings are taken as the valid UTF-8 jansson guarantees.  On error out holds a partial
 * result.
 */
int an_jcs_serialize(const json_t *v, struct an_buf *out);

/*
 * As an_jcs_serialize for the object obj, leaving out its member named skip
 * (if present): the form a signature covers.  AN_EMALFORMED if obj is not an
 * object.
 */
int an_jcs_serialize_without(const json_t *obj, const char *skip, struct an_buf *out);

/*
 * ECMAScript Number::toString of d into out (AN_JCS_NUMBER_MAX bytes).
 * 0, or AN_EMALFORMED for NaN and infinities.  -0 is written "0".
 */
int an_jcs_format_double(double d, char out[AN_JCS_NUMBER_MAX]);

/*
 * Compare two UTF-8 strings (with lengths) by UTF-16 code units, as JCS
 * sorts member names: <0, 0, >0.  Invalid UTF-8 sorts by its bytes.
 */
int an_jcs_compare_keys(const char *a, size_t alen, const char *b, size_t blen);

#endif
