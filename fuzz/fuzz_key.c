/*
 * libFuzzer harness for the key decoders: the first byte picks the decoder
 * (PrivateKey or PublicKey protobuf), the rest is its input.  Whatever
 * decodes must encode back to exactly the input (both encodings are
 * deterministic), and a decoded public key must survive a peer ID round trip
 * and a signature check without crashing.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_privkey(const uint8_t *p, size_t n)
{
	struct an_privkey *k = NULL;
	uint8_t *enc = NULL;
	size_t len = 0;

	if (an_privkey_decode(p, n, &k) < 0)
		return;
	if (an_privkey_encode(k, &enc, &len) < 0)
		abort();
	/* The legacy 96-byte form re-encodes as the 64-byte one. */
	if (n == len && memcmp(enc, p, n) != 0)
		abort();
	sodium_free(enc);
	an_privkey_free(k);
}

static void fuzz_pubkey(const uint8_t *p, size_t n)
{
	static const uint8_t msg[] = "fuzz";
	struct an_pubkey k, k2;
	struct an_peerid id;
	struct an_buf b;
	uint8_t sig[72] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01 };

	if (an_pubkey_decode(p, n, &k) < 0)
		return;
	an_buf_init(&b, AN_PUBKEY_PB_MAX);
	if (an_pubkey_encode(&k, &b) < 0 || b.len != n || memcmp(b.data, p, n) != 0)
		abort();
	an_buf_free(&b);
	if (an_peerid_from_pubkey(&k, &id) < 0)
		abort();
	if (an_peerid_pubkey(&id, &k2) == 0 && !an_pubkey_equal(&k, &k2))
		abort();
	/* Must fail cleanly (a made-up signature), never verify. */
	if (an_pubkey_verify(&k, msg, sizeof msg - 1, sig, 8) == 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > AN_PRIVKEY_FILE_MAX + 1)
		return 0;
	if (sodium_init() < 0)
		abort();
	if (data[0] & 1)
		fuzz_pubkey(data + 1, size - 1);
	else
		fuzz_privkey(data + 1, size - 1);
	return 0;
}
