#include "dht/distance.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "util/error.h"

void an_kad_id_from_key(const uint8_t *key, size_t len, struct an_kad_id *out)
{
	crypto_hash_sha256(out->b, key, len);
}

void an_kad_id_from_peer(const struct an_peerid *id, struct an_kad_id *out)
{
	crypto_hash_sha256(out->b, id->bytes, id->len);
}

void an_kad_distance(const struct an_kad_id *a, const struct an_kad_id *b, struct an_kad_id *out)
{
	for (size_t i = 0; i < AN_KAD_ID_LEN; i++)
		out->b[i] = a->b[i] ^ b->b[i];
}

int an_kad_id_cmp(const struct an_kad_id *a, const struct an_kad_id *b)
{
	return memcmp(a->b, b->b, AN_KAD_ID_LEN);
}

int an_kad_closer(const struct an_kad_id *target, const struct an_kad_id *a,
		  const struct an_kad_id *b)
{
	for (size_t i = 0; i < AN_KAD_ID_LEN; i++) {
		uint8_t da = a->b[i] ^ target->b[i], db = b->b[i] ^ target->b[i];
		if (da != db)
			return da < db ? -1 : 1;
	}
	return 0;
}

unsigned an_kad_cpl(const struct an_kad_id *a, const struct an_kad_id *b)
{
	for (unsigned i = 0; i < AN_KAD_ID_LEN; i++) {
		uint8_t x = a->b[i] ^ b->b[i];
		if (x) {
			unsigned n = 0;
			while (!(x & 0x80)) {
				x <<= 1;
				n++;
			}
			return i * 8 + n;
		}
	}
	return AN_KAD_BITS;
}

int an_kad_key_with_cpl(const struct an_kad_id *self, unsigned cpl, uint64_t start,
			uint64_t max_tries, uint8_t key[34])
{
	static const char tag[] = "an-kad-refresh";
	uint8_t seed[sizeof(tag) + 8];
	struct an_kad_id pos;

	if (cpl >= AN_KAD_BITS)
		return -EINVAL;
	memcpy(seed, tag, sizeof(tag));
	key[0] = 0x12;
	key[1] = 0x20;
	for (uint64_t t = 0; t < max_tries; t++) {
		uint64_t c = start + t;
		for (int i = 0; i < 8; i++)
			seed[sizeof(tag) + i] = (uint8_t)(c >> (56 - 8 * i));
		crypto_hash_sha256(key + 2, seed, sizeof(seed));
		an_kad_id_from_key(key, 34, &pos);
		if (an_kad_cpl(self, &pos) == cpl)
			return 0;
	}
	return AN_ENOTFOUND;
}
