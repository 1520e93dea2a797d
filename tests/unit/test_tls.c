/*
 * test_tls.c - the libp2p TLS 1.3 session (transport/tls.h) in memory: a
 * client and a server handshake, each learns the other's peer ID, records
 * go both ways; a client expecting another peer, and a server shown a
 * certificate for nobody's key, fail with the reason.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "transport/tls.h"
#include "util/error.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

static struct an_privkey *kc, *ks, *kx;

static void peer_of(const struct an_privkey *k, struct an_peerid *id)
{
	struct an_pubkey pk;
	an_privkey_public(k, &pk);
	an_peerid_from_pubkey(&pk, id);
}

/* Move output both ways and step both handshakes until neither moves. */
static void pump(struct an_tls *a, struct an_tls *b, int *ra, int *rb)
{
	for (int i = 0; i < 50; i++) {
		bool moved = false;
		struct an_tls *from[2] = {a, b}, *to[2] = {b, a};
		*ra = an_tls_handshake(a);
		*rb = an_tls_handshake(b);
		for (int d = 0; d < 2; d++) {
			const uint8_t *p;
			size_t len;
			an_tls_output(from[d], &p, &len);
			if (len) {
				an_tls_feed(to[d], p, len);
				an_tls_output_consume(from[d], len);
				moved = true;
			}
		}
		if (!moved && *ra != 0 && *rb != 0)
			return;
		if (!moved && i > 2)
			return;
	}
}

static int pair(const struct an_peerid *expect, struct an_privkey *client_key, struct an_tls **c,
		struct an_tls **s, int *rc, int *rs)
{
	struct an_tls_config cc = {.key = client_key, .server = false, .expected = expect, .now_s = time(NULL)};
	struct an_tls_config sc = {.key = ks, .server = true, .now_s = time(NULL)};
	if (an_tls_new(&cc, c) < 0 || an_tls_new(&sc, s) < 0)
		return -1;
	pump(*c, *s, rc, rs);
	return 0;
}

static void test_handshake_and_records(void)
{
	struct an_tls *c, *s;
	struct an_peerid idc, ids;
	int rc, rs;
	peer_of(kc, &idc);
	peer_of(ks, &ids);
	CHECK_EQ_INT(pair(&ids, kc, &c, &s, &rc, &rs), 0);
	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_INT(rs, 1);
	CHECK(an_tls_peer(c) && an_peerid_equal(an_tls_peer(c), &ids));
	CHECK(an_tls_peer(s) && an_peerid_equal(an_tls_peer(s), &idc));
	/* 100 KiB client to server, a line back */
	static uint8_t big[100 * 1024], got[128 * 1024];
	randombytes_buf(big, sizeof(big));
	CHECK_EQ_INT(an_tls_write(c, big, sizeof(big)), 0);
	const uint8_t *p;
	size_t len, n, total = 0;
	an_tls_output(c, &p, &len);
	CHECK(len > sizeof(big));
	CHECK_EQ_INT(an_tls_feed(s, p, len), 0);
	an_tls_output_consume(c, len);
	for (int i = 0; i < 100; i++) {
		CHECK_EQ_INT(an_tls_read(s, got + total, sizeof(got) - total, &n), 0);
		if (n == 0)
			break;
		total += n;
	}
	CHECK_EQ_INT(total, sizeof(big));
	CHECK(memcmp(got, big, sizeof(big)) == 0);
	CHECK_EQ_INT(an_tls_write(s, (const uint8_t *)"pong\n", 5), 0);
	an_tls_output(s, &p, &len);
	an_tls_feed(c, p, len);
	an_tls_output_consume(s, len);
	total = 0;
	for (int i = 0; i < 10; i++) {
		CHECK_EQ_INT(an_tls_read(c, got + total, sizeof(got) - total, &n), 0);
		if (n == 0)
			break;
		total += n;
	}
	CHECK_EQ_INT(total, 5);
	CHECK(memcmp(got, "pong\n", 5) == 0);
	an_tls_free(c);
	an_tls_free(s);
}

static void test_client_expecting_another_peer_fails(void)
{
	struct an_tls *c, *s;
	struct an_peerid idx;
	int rc, rs;
	peer_of(kx, &idx);
	CHECK_EQ_INT(pair(&idx, kc, &c, &s, &rc, &rs), 0);
	CHECK_EQ_INT(rc, AN_EMISMATCH);
	CHECK(strstr(an_tls_reason(c), "not ") != NULL);
	CHECK(an_tls_peer(c) == NULL);
	CHECK(rs != 1); /* the server saw the client abort (alert) */
	an_tls_free(c);
	an_tls_free(s);
}

static void test_anyone_accepted_without_expectation(void)
{
	struct an_tls *c, *s;
	struct an_peerid ids;
	int rc, rs;
	peer_of(ks, &ids);
	CHECK_EQ_INT(pair(NULL, kx, &c, &s, &rc, &rs), 0);
	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_INT(rs, 1);
	CHECK(an_tls_peer(c) && an_peerid_equal(an_tls_peer(c), &ids));
	an_tls_free(c);
	an_tls_free(s);
}

static void test_garbage_fails_the_handshake(void)
{
	struct an_tls *s;
	struct an_tls_config sc = {.key = ks, .server = true, .now_s = time(NULL)};
	uint8_t junk[64];
	CHECK_EQ_INT(an_tls_new(&sc, &s), 0);
	memset(junk, 0x16, sizeof(junk)); /* a handshake record header, then nonsense */
	CHECK_EQ_INT(an_tls_feed(s, junk, sizeof(junk)), 0);
	CHECK(an_tls_handshake(s) < 0);
	CHECK(an_tls_reason(s)[0] != '\0');
	an_tls_free(s);
}

int main(void)
{
	if (sodium_init() < 0 || an_privkey_generate(&kc) < 0 || an_privkey_generate(&ks) < 0 ||
	    an_privkey_generate(&kx) < 0)
		return 1;
	RUN(test_handshake_and_records);
	RUN(test_client_expecting_another_peer_fails);
	RUN(test_anyone_accepted_without_expectation);
	RUN(test_garbage_fails_the_handshake);
	an_privkey_free(kc);
	an_privkey_free(ks);
	an_privkey_free(kx);
	return check_done();
}
