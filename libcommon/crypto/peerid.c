#include "crypto/peerid.h"

#include "encoding/base32.h"
#include "encoding/base58.h"
#include "encoding/varint.h"
#include "util/error.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

/* multihash codes and the CID parts of RFC 0001 (text peer IDs). */
#define MH_IDENTITY 0x00
#define MH_SHA2_256 0x12
#define MH_SHA2_256_LEN 32
#define CID_V1 0x01
#define CID_LIBP2P_KEY 0x72
/* Serialized keys up to this size are inlined (identity multihash). */
#define IDENTITY_MAX 42
/* Bytes of SHA-256 kept in the peer hash: 80 bits = 16 base32 characters. */
#define PEERHASH_BYTES 10

int an_peerid_from_pubkey(const struct an_pubkey *k, struct an_peerid *out)
{
	struct an_buf pb;
	int rc;

	an_buf_init(&pb, AN_PUBKEY_PB_MAX);
	rc = an_pubkey_encode(k, &pb);
	if (rc < 0)
		goto out;
	if (pb.len <= IDENTITY_MAX) {
		out->bytes[0] = MH_IDENTITY;
		out->bytes[1] = (uint8_t)pb.len; /* < 0x80: a one-byte varint */
		memcpy(out->bytes + 2, pb.data, pb.len);
		out->len = 2 + pb.len;
	} else {
		out->bytes[0] = MH_SHA2_256;
		out->bytes[1] = MH_SHA2_256_LEN;
		crypto_hash_sha256(out->bytes + 2, pb.data, pb.len);
		out->len = 2 + MH_SHA2_256_LEN;
	}
out:
	an_buf_free(&pb);
	return rc;
}

int an_peerid_from_bytes(const uint8_t *p, size_t len, struct an_peerid *out)
{
	uint64_t code, dlen;
	size_t used1, used2;

	if (len > AN_PEERID_MAX)
		return AN_ETOOBIG;
	if (an_varint_decode(p, len, &code, &used1) < 0)
		return AN_EMALFORMED;
	if (an_varint_decode(p + used1, len - used1, &dlen, &used2) < 0)
		return AN_EMALFORMED;
	if (dlen != len - used1 - used2)
		return AN_EMALFORMED;
	if (code == MH_IDENTITY) {
		if (dlen == 0 || dlen > IDENTITY_MAX)
			return AN_EMALFORMED;
	} else if (code == MH_SHA2_256) {
		if (dlen != MH_SHA2_256_LEN)
			return AN_EMALFORMED;
	} else {
		return AN_EMALFORMED;
	}
	memcpy(out->bytes, p, len);
	out->len = len;
	return 0;
}

int an_peerid_parse(const char *text, struct an_peerid *out)
{
	uint8_t buf[AN_PEERID_MAX + 2];
	size_t n = 0, tlen = strnlen(text, AN_PEERID_TEXT_MAX);
	int rc;

	if (tlen >= AN_PEERID_TEXT_MAX)
		return AN_ETOOBIG;
	/* RFC 0001: "1..." and "Qm..." are bare base58btc multihashes. */
	if (text[0] == '1' || (text[0] == 'Q' && text[1] == 'm')) {
		rc = an_base58_decode(text, buf, sizeof buf, &n);
		if (rc < 0)
			return rc == AN_ETOOBIG ? AN_EMALFORMED : rc;
		return an_peerid_from_bytes(buf, n, out);
	}
	/* Otherwise a multibase CID; we read the base32 ('b') form we print. */
	if (text[0] != 'b')
		return AN_EMALFORMED;
	rc = an_base32_decode(text + 1, tlen - 1, buf, sizeof buf, &n);
	if (rc < 0)
		return rc == AN_ETOOBIG ? AN_EMALFORMED : rc;
	if (n < 2 || buf[0] != CID_V1 || buf[1] != CID_LIBP2P_KEY)
		return AN_EMALFORMED;
	return an_peerid_from_bytes(buf + 2, n - 2, out);
}

int an_peerid_format(const struct an_peerid *id, char *out, size_t outcap)
{
	return an_base58_encode(id->bytes, id->len, out, outcap);
}

int an_peerid_format_cid(const struct an_peerid *id, char *out, size_t outcap)
{
	uint8_t cid[2 + AN_PEERID_MAX];

	if (outcap < 2)
		return AN_ETOOBIG;
	cid[0] = CID_V1;
	cid[1] = CID_LIBP2P_KEY;
	memcpy(cid + 2, id->bytes, id->len);
	out[0] = 'b';
	return an_base32_encode(cid, 2 + id->len, out + 1, outcap - 1);
}

int an_peerid_pubkey(const struct an_peerid *id, struct an_pubkey *out)
{
	uint64_t code, dlen;
	size_t used1, used2;

	if (an_varint_decode(id->bytes, id->len, &code, &used1) < 0 ||
	    an_varint_decode(id->bytes + used1, id->len - used1, &dlen, &used2) < 0)
		return AN_EMALFORMED;
	if (code != MH_IDENTITY)
		return AN_ENOTFOUND;
	if (dlen != id->len - used1 - used2)
		return AN_EMALFORMED;
	return an_pubkey_decode(id->bytes + used1 + used2, (size_t)dlen, out);
}

bool an_peerid_equal(const struct an_peerid *a, const struct an_peerid *b)
{
	return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

int an_peerhash(const struct an_peerid *id, char out[AN_PEERHASH_LEN + 1])
{
	uint8_t digest[crypto_hash_sha256_BYTES];

	if (sodium_init() < 0)
		return -ENOSYS;
	crypto_hash_sha256(digest, id->bytes, id->len);
	return an_base32_encode(digest, PEERHASH_BYTES, out, AN_PEERHASH_LEN + 1);
}

bool an_peerhash_valid(const char *text)
{
	size_t i;

	for (i = 0; i < AN_PEERHASH_LEN; i++) {
		char c = text[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')))
			return false;
	}
	return text[i] == '\0';
}
