#include "encoding/multihash.h"
#include "encoding/base58.h"
#include "encoding/varint.h"
#include "util/error.h"

#include <sodium.h>
#include <string.h>

int an_multihash_decode(const uint8_t *p, size_t len, struct an_multihash *mh, size_t *used)
{
	uint64_t code, dlen;
	size_t n1, n2;
	int rc;

	if ((rc = an_varint_decode(p, len, &code, &n1)) < 0)
		return rc == AN_EAGAIN ? AN_ETRUNCATED : rc;
	if ((rc = an_varint_decode(p + n1, len - n1, &dlen, &n2)) < 0)
		return rc == AN_EAGAIN ? AN_ETRUNCATED : rc;
	if (dlen > AN_MULTIHASH_MAX_DIGEST)
		return AN_ETOOBIG;
	if (dlen > len - n1 - n2)
		return AN_ETRUNCATED;
	mh->code = code;
	mh->digest = p + n1 + n2;
	mh->len = (size_t)dlen;
	*used = n1 + n2 + (size_t)dlen;
	return 0;
}

int an_multihash_check(const uint8_t *p, size_t len)
{
	struct an_multihash mh;
	size_t used;

	if (an_multihash_decode(p, len, &mh, &used) < 0 || used != len)
		return AN_EMALFORMED;
	if (mh.code == AN_MULTIHASH_IDENTITY)
		return 0;
	if (mh.code == AN_MULTIHASH_SHA2_256 && mh.len == AN_MULTIHASH_SHA2_256_DIGEST)
		return 0;
	return AN_EMALFORMED;
}

int an_multihash_encode(uint64_t code, const uint8_t *digest, size_t dlen, uint8_t *out,
			size_t outcap, size_t *outlen)
{
	uint8_t head[2 * AN_VARINT_MAX_BYTES];
	size_t n;

	if (code > AN_VARINT_MAX_VALUE)
		return AN_EMALFORMED;
	if (dlen > AN_MULTIHASH_MAX_DIGEST)
		return AN_ETOOBIG;
	n = an_varint_encode(code, head);
	n += an_varint_encode(dlen, head + n);
	if (outcap < n || outcap - n < dlen)
		return AN_ETOOBIG;
	memcpy(out, head, n);
	if (dlen)
		memcpy(out + n, digest, dlen);
	*outlen = n + dlen;
	return 0;
}

int an_multihash_sha256(const void *data, size_t len, uint8_t out[AN_MULTIHASH_SHA2_256_LEN])
{
	out[0] = AN_MULTIHASH_SHA2_256;
	out[1] = AN_MULTIHASH_SHA2_256_DIGEST;
	crypto_hash_sha256(out + 2, data, len);
	return 0;
}

int an_multihash_format(const uint8_t *p, size_t len, char *out, size_t outcap)
{
	if (an_multihash_check(p, len) < 0)
		return AN_EMALFORMED;
	return an_base58_encode(p, len, out, outcap);
}

int an_multihash_parse(const char *text, uint8_t *out, size_t outcap, size_t *outlen)
{
	uint8_t buf[AN_MULTIHASH_MAX];
	size_t n;
	int rc;

	if (strnlen(text, AN_MULTIHASH_TEXT_MAX) >= AN_MULTIHASH_TEXT_MAX)
		return AN_ETOOBIG;
	if ((rc = an_base58_decode(text, buf, sizeof buf, &n)) < 0)
		return rc == AN_ETOOBIG ? AN_EMALFORMED : rc;
	if (an_multihash_check(buf, n) < 0)
		return AN_EMALFORMED;
	if (n > outcap)
		return AN_ETOOBIG;
	memcpy(out, buf, n);
	*outlen = n;
	return 0;
}
