/*
 * libFuzzer harness for the Noise channel.  The first byte picks the target:
 *   0  responder fed arbitrary framed handshake messages
 *   1  initiator (after sending message 1) fed an arbitrary message 2
 *   2  the handshake payload decoder (+ signature check against a fixed key)
 *   3  transport decrypt of arbitrary frames on an established session
 * Keys are fixed (the test hook) so runs are reproducible.
 */
#include "transport/noise.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct an_privkey *identity;

static const uint8_t key_a[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const uint8_t key_b[32] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
static const uint8_t key_c[32] = { 0x42 };
static const uint8_t key_d[32] = { 0x24 };

static struct an_noise *make(enum an_noise_role role, const uint8_t *s, const uint8_t *e)
{
	struct an_noise_config cfg;
	struct an_noise *n = NULL;

	an_noise_config_init(&cfg);
	cfg.role = role;
	cfg.identity = identity;
	if (an_noise_new(&cfg, &n) < 0 || an_noise_set_keys_for_test(n, s, e) < 0)
		abort();
	return n;
}

static void feed_handshake(struct an_noise *n, const uint8_t *p, size_t len, struct an_buf *out)
{
	size_t used = 0;
	int rc;

	for (int i = 0; i < 4; i++) {
		rc = an_noise_recv(n, p, len, &used, out);
		if (used > len)
			abort();
		if (rc != 0 || used == 0)
			break;
		p += used;
		len -= used;
	}
}

static void fuzz_payload(const uint8_t *p, size_t len)
{
	struct an_noise_payload pl;

	if (an_noise_payload_decode(p, len, &pl) < 0)
		return;
	if (pl.sig_len > len || (pl.extensions && pl.extensions_len > len))
		abort();
	an_noise_payload_verify(&pl, key_a);
}

/* A real session between two machines, then arbitrary frames to one side. */
static void fuzz_transport(const uint8_t *p, size_t len)
{
	struct an_noise *i = make(AN_NOISE_INITIATOR, key_a, key_b);
	struct an_noise *r = make(AN_NOISE_RESPONDER, key_c, key_d);
	struct an_buf a, b, plain;
	size_t used;
	int ri = 0, rr = 0;

	an_buf_init(&a, 1 << 17);
	an_buf_init(&b, 1 << 17);
	an_buf_init(&plain, 1 << 20);
	an_noise_start(i, &a);
	for (int round = 0; round < 3 && (ri != 1 || rr != 1); round++) {
		rr = an_noise_recv(r, a.data, a.len, &used, &b);
		an_buf_consume(&a, used);
		ri = an_noise_recv(i, b.data, b.len, &used, &a);
		an_buf_consume(&b, used);
	}
	if (ri != 1)
		abort();
	rr = an_noise_recv(r, a.data, a.len, &used, &b);
	if (rr != 1)
		abort();
	if (an_noise_decrypt(r, p, len, &used, &plain) == 0 && used > len)
		abort();
	an_buf_free(&a);
	an_buf_free(&b);
	an_buf_free(&plain);
	an_noise_free(i);
	an_noise_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct an_buf out;
	struct an_noise *n;

	if (!identity && (sodium_init() < 0 || an_privkey_generate(&identity) < 0))
		abort();
	if (size < 1)
		return 0;
	an_buf_init(&out, 1 << 17);
	switch (data[0] % 4) {
	case 0:
		n = make(AN_NOISE_RESPONDER, key_c, key_d);
		an_noise_start(n, &out);
		feed_handshake(n, data + 1, size - 1, &out);
		an_noise_free(n);
		break;
	case 1:
		n = make(AN_NOISE_INITIATOR, key_a, key_b);
		an_noise_start(n, &out);
		feed_handshake(n, data + 1, size - 1, &out);
		an_noise_free(n);
		break;
	case 2:
		fuzz_payload(data + 1, size - 1);
		break;
	default:
		fuzz_transport(data + 1, size - 1);
		break;
	}
	an_buf_free(&out);
	return 0;
}
