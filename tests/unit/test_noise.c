/* Unit tests for the libp2p Noise XX channel: cacophony vector, in-memory handshakes, failures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "encoding/protobuf.h"
#include "transport/noise.h"
#include "util/error.h"

#define OUT_CAP (4 * 1024 * 1024)

struct side {
	struct an_privkey *id;
	struct an_noise *n;
	struct an_buf out; /* bytes this side sent, not yet read by the other */
	int rc;
};

static int side_init(struct side *s, enum an_noise_role role, const char *const *muxers,
		     size_t n_muxers, const struct an_peerid *expected)
{
	struct an_noise_config cfg;
	int rc;

	memset(s, 0, sizeof *s);
	an_buf_init(&s->out, OUT_CAP);
	if ((rc = an_privkey_generate(&s->id)) < 0)
		return rc;
	an_noise_config_init(&cfg);
	cfg.role = role;
	cfg.identity = s->id;
	cfg.expected_remote = expected;
	if (muxers) {
		cfg.muxers = muxers;
		cfg.n_muxers = n_muxers;
	}
	return an_noise_new(&cfg, &s->n);
}

static void side_free(struct side *s)
{
	an_noise_free(s->n);
	an_privkey_free(s->id);
	an_buf_free(&s->out);
}

/* One step: b reads what a sent. */
static int deliver(struct side *a, struct side *b)
{
	size_t used = 0;
	b->rc = an_noise_recv(b->n, a->out.data, a->out.len, &used, &b->out);
	an_buf_consume(&a->out, used);
	return b->rc;
}

/* Run the handshake between initiator i and responder r (bounded rounds). */
static void run_handshake(struct side *i, struct side *r)
{
	i->rc = an_noise_start(i->n, &i->out);
	r->rc = an_noise_start(r->n, &r->out);
	for (int round = 0; round < 4; round++) {
		if (r->rc >= 0 && r->rc != 1)
			deliver(i, r);
		if (i->rc >= 0 && i->rc != 1)
			deliver(r, i);
	}
}

static void peer_of(const struct side *s, struct an_peerid *id)
{
	struct an_pubkey pub;
	an_privkey_public(s->id, &pub);
	an_peerid_from_pubkey(&pub, id);
}

static int unhex(const char *hex, struct an_buf *b)
{
	size_t n = strlen(hex) / 2;
	uint8_t *p;
	if (an_buf_reserve(b, n, &p) < 0 || check_unhex(hex, p, n) != (int)n)
		return -1;
	b->len += n;
	return 0;
}

/*
 * Cacophony test vector for Noise_XX_25519_ChaChaPoly_SHA256 (as shipped in
 * mcginty/snow tests/vectors/cacophony.txt): fixed keys, prologue "John
 * Galt", arbitrary payloads, then three transport messages.
 */
static const char *const vec_payload[6] = {
	"4c756477696720766f6e204d69736573",
	"4d757272617920526f746862617264",
	"462e20412e20486179656b",
	"4361726c204d656e676572",
	"4a65616e2d426170746973746520536179",
	"457567656e2042f6686d20766f6e2042617765726b",
};
static const char *const vec_cipher[6] = {
	"ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573",
	"95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f8814c7194e83f23dbd8d162c9326ad",
	"c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030",
	"96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df",
	"3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5",
	"eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f",
};

static void test_cacophony_xx_vector(void)
{
	struct side i, r;
	uint8_t k[4][32], hh[32], want_hh[32];
	static const uint8_t prologue[] = "John Galt";

	check_unhex("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1", k[0], 32);
	check_unhex("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a", k[1], 32);
	check_unhex("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893", k[2], 32);
	check_unhex("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b", k[3], 32);
	check_unhex("c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e", want_hh, 32);
	CHECK_EQ_INT(side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL), 0);
	CHECK_EQ_INT(side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL), 0);
	CHECK_EQ_INT(an_noise_set_keys_for_test(i.n, k[0], k[1]), 0);
	CHECK_EQ_INT(an_noise_set_keys_for_test(r.n, k[2], k[3]), 0);
	CHECK_EQ_INT(an_noise_set_prologue_for_test(i.n, prologue, sizeof prologue - 1), 0);
	CHECK_EQ_INT(an_noise_set_prologue_for_test(r.n, prologue, sizeof prologue - 1), 0);

	for (int m = 0; m < 6; m++) {
		struct side *w = m % 2 == 0 ? &i : &r, *rd = m % 2 == 0 ? &r : &i;
		struct an_buf pl, want, got, plain;
		size_t used;

		an_buf_init(&pl, 1024);
		an_buf_init(&want, 1024);
		an_buf_init(&got, 1024);
		an_buf_init(&plain, 1024);
		unhex(vec_payload[m], &pl);
		unhex(vec_cipher[m], &want);
		if (m < 3) {
			CHECK_EQ_INT(an_noise_write_raw_for_test(w->n, pl.data, pl.len, &got), 0);
			CHECK_EQ_INT(got.len, want.len);
			CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
			CHECK_EQ_INT(an_noise_read_raw_for_test(rd->n, got.data, got.len, &plain), 0);
		} else {
			/* transport: our frames are u16 length || ciphertext */
			CHECK_EQ_INT(an_noise_encrypt(w->n, pl.data, pl.len, &got), 0);
			CHECK_EQ_INT(got.len, want.len + 2);
			CHECK(got.len == want.len + 2 && memcmp(got.data + 2, want.data, want.len) == 0);
			CHECK_EQ_INT(an_noise_decrypt(rd->n, got.data, got.len, &used, &plain), 0);
			CHECK_EQ_INT(used, got.len);
		}
		CHECK(plain.len == pl.len && memcmp(plain.data, pl.data, pl.len) == 0);
		an_buf_free(&pl);
		an_buf_free(&want);
		an_buf_free(&got);
		an_buf_free(&plain);
		if (m == 2) {
			CHECK(an_noise_established(i.n));
			CHECK(an_noise_established(r.n));
			CHECK_EQ_INT(an_noise_handshake_hash(i.n, hh), 0);
			CHECK_EQ_MEM(hh, want_hh, 32);
			CHECK_EQ_INT(an_noise_handshake_hash(r.n, hh), 0);
			CHECK_EQ_MEM(hh, want_hh, 32);
		}
	}
	side_free(&i);
	side_free(&r);
}

static void test_handshake_in_memory_authenticates_both(void)
{
	struct side i, r;
	struct an_peerid pi, pr;
	uint8_t hi[32], hr[32];

	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	run_handshake(&i, &r);
	CHECK_EQ_INT(i.rc, 1);
	CHECK_EQ_INT(r.rc, 1);
	peer_of(&i, &pi);
	peer_of(&r, &pr);
	CHECK(an_noise_remote_peer(i.n) && an_peerid_equal(an_noise_remote_peer(i.n), &pr));
	CHECK(an_noise_remote_peer(r.n) && an_peerid_equal(an_noise_remote_peer(r.n), &pi));
	CHECK_EQ_INT(an_noise_handshake_hash(i.n, hi), 0);
	CHECK_EQ_INT(an_noise_handshake_hash(r.n, hr), 0);
	CHECK_EQ_MEM(hi, hr, 32);
	CHECK_EQ_INT(i.out.len, 0);
	CHECK_EQ_INT(r.out.len, 0);
	side_free(&i);
	side_free(&r);
}

static void test_message1_is_32_bytes_framed(void)
{
	struct side i;

	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL);
	CHECK_EQ_INT(an_noise_start(i.n, &i.out), 0);
	CHECK_EQ_INT(i.out.len, 34);
	CHECK(i.out.len >= 2 && i.out.data[0] == 0 && i.out.data[1] == 32);
	side_free(&i);
}

static void test_responder_rejects_payload_in_message1(void)
{
	struct side r;
	uint8_t msg[2 + 33] = { 0, 33 };
	size_t used;

	randombytes_buf(msg + 2, 33);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	CHECK_EQ_INT(an_noise_recv(r.n, msg, sizeof msg, &used, &r.out), AN_EPROTO);
	CHECK_EQ_INT(r.out.len, 0);
	side_free(&r);
}

static void test_default_muxer_negotiated_early(void)
{
	struct side i, r;

	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	run_handshake(&i, &r);
	CHECK_EQ_STR(an_noise_muxer(i.n), "/yamux/1.0.0");
	CHECK_EQ_STR(an_noise_muxer(r.n), "/yamux/1.0.0");
	side_free(&i);
	side_free(&r);
}

static void test_no_muxer_when_one_side_announces_none(void)
{
	struct side i, r;
	static const char *const none[] = { NULL };

	side_init(&i, AN_NOISE_INITIATOR, none, 0, NULL);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	run_handshake(&i, &r);
	CHECK_EQ_INT(i.rc, 1);
	CHECK_EQ_INT(r.rc, 1);
	CHECK(an_noise_muxer(i.n) == NULL);
	CHECK(an_noise_muxer(r.n) == NULL);
	side_free(&i);
	side_free(&r);
}

/* The spec's example: the initiator's preference wins. */
static void test_muxer_is_initiators_first_common_choice(void)
{
	struct side i, r;
	static const char *const ilist[] = { "/yamux/1.0.0", "/mplex/6.7.0" };
	static const char *const rlist[] = { "/mplex/6.7.0", "/yamux/1.0.0" };

	side_init(&i, AN_NOISE_INITIATOR, ilist, 2, NULL);
	side_init(&r, AN_NOISE_RESPONDER, rlist, 2, NULL);
	run_handshake(&i, &r);
	CHECK_EQ_STR(an_noise_muxer(i.n), "/yamux/1.0.0");
	CHECK_EQ_STR(an_noise_muxer(r.n), "/yamux/1.0.0");
	side_free(&i);
	side_free(&r);
}

static void test_disjoint_muxer_lists_fail(void)
{
	struct side i, r;
	static const char *const ilist[] = { "/mplex/6.7.0" };

	side_init(&i, AN_NOISE_INITIATOR, ilist, 1, NULL);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	run_handshake(&i, &r);
	CHECK_EQ_INT(i.rc, AN_ENOPROTO);
	side_free(&i);
	side_free(&r);
}

static void test_expected_peer_accepted(void)
{
	struct side i, r;
	struct an_peerid want;

	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	peer_of(&r, &want);
	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, &want);
	run_handshake(&i, &r);
	CHECK_EQ_INT(i.rc, 1);
	CHECK_EQ_INT(r.rc, 1);
	side_free(&i);
	side_free(&r);
}

static void test_wrong_expected_peer_fails(void)
{
	struct side i, r, other;
	struct an_peerid want;

	side_init(&other, AN_NOISE_RESPONDER, NULL, 0, NULL);
	peer_of(&other, &want);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, &want);
	run_handshake(&i, &r);
	CHECK_EQ_INT(i.rc, AN_EMISMATCH);
	CHECK(an_noise_remote_peer(i.n) == NULL);
	CHECK(an_noise_reason(i.n)[0] != 0);
	side_free(&i);
	side_free(&r);
	side_free(&other);
}

static void test_tampered_message2_fails(void)
{
	struct side i, r;

	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	an_noise_start(i.n, &i.out);
	CHECK_EQ_INT(deliver(&i, &r), 0);
	CHECK(r.out.len > 60);
	r.out.data[50] ^= 1; /* inside the encrypted static key */
	CHECK_EQ_INT(deliver(&r, &i), AN_EPROTO);
	CHECK_EQ_INT(i.out.len, 0); /* message 3 never written */
	side_free(&i);
	side_free(&r);
}

static void test_tampered_message3_fails(void)
{
	struct side i, r;

	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	an_noise_start(i.n, &i.out);
	deliver(&i, &r);
	CHECK_EQ_INT(deliver(&r, &i), 1);
	i.out.data[i.out.len - 1] ^= 0x80; /* the payload's tag */
	CHECK_EQ_INT(deliver(&i, &r), AN_EPROTO);
	CHECK(!an_noise_established(r.n));
	side_free(&i);
	side_free(&r);
}

/*
 * A responder whose payload signs some other static key: built with the raw
 * hook so the Noise layer is valid and only identity_sig is wrong.
 */
static void test_wrong_identity_signature_fails(void)
{
	struct side i, r;
	struct an_buf pl, msg, frame;
	uint8_t other_static[32];
	size_t used;

	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	an_buf_init(&pl, 4096);
	an_buf_init(&msg, 65535);
	an_buf_init(&frame, 65537);
	an_noise_start(i.n, &i.out);
	CHECK_EQ_INT(an_noise_read_raw_for_test(r.n, i.out.data + 2, i.out.len - 2, &pl), 0);
	randombytes_buf(other_static, sizeof other_static);
	CHECK_EQ_INT(an_noise_payload_encode(r.id, other_static, NULL, 0, &pl), 0);
	CHECK_EQ_INT(an_noise_write_raw_for_test(r.n, pl.data, pl.len, &msg), 0);
	an_buf_putc(&frame, (uint8_t)(msg.len >> 8));
	an_buf_putc(&frame, (uint8_t)msg.len);
	an_buf_append(&frame, msg.data, msg.len);
	CHECK_EQ_INT(an_noise_recv(i.n, frame.data, frame.len, &used, &i.out), AN_EBADSIG);
	an_buf_free(&pl);
	an_buf_free(&msg);
	an_buf_free(&frame);
	side_free(&i);
	side_free(&r);
}

static void test_partial_handshake_frame_is_left_unconsumed(void)
{
	struct side i, r;
	size_t used;

	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	an_noise_start(i.n, &i.out);
	CHECK_EQ_INT(an_noise_recv(r.n, i.out.data, 1, &used, &r.out), 0);
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(an_noise_recv(r.n, i.out.data, 33, &used, &r.out), 0);
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(r.out.len, 0);
	CHECK_EQ_INT(an_noise_recv(r.n, i.out.data, 34, &used, &r.out), 0);
	CHECK_EQ_INT(used, 34);
	CHECK(r.out.len > 0);
	side_free(&i);
	side_free(&r);
}

/* Both sides established, outputs drained. */
static int pair(struct side *i, struct side *r)
{
	if (side_init(i, AN_NOISE_INITIATOR, NULL, 0, NULL) < 0 ||
	    side_init(r, AN_NOISE_RESPONDER, NULL, 0, NULL) < 0)
		return -1;
	run_handshake(i, r);
	return i->rc == 1 && r->rc == 1 ? 0 : -1;
}

/* js and rust may send message 3 and the first transport frames in one flight. */
static void test_message3_and_transport_data_in_one_flight(void)
{
	struct side i, r;
	struct an_buf plain;
	size_t used;

	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL);
	side_init(&r, AN_NOISE_RESPONDER, NULL, 0, NULL);
	an_buf_init(&plain, 1024);
	an_noise_start(i.n, &i.out);
	deliver(&i, &r);
	CHECK_EQ_INT(deliver(&r, &i), 1);
	CHECK_EQ_INT(an_noise_encrypt(i.n, (const uint8_t *)"first", 5, &i.out), 0);
	CHECK_EQ_INT(deliver(&i, &r), 1);
	CHECK_EQ_INT(i.out.len, 2 + 5 + 16); /* only the transport frame is left */
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data, i.out.len, &used, &plain), 0);
	CHECK(plain.len == 5 && memcmp(plain.data, "first", 5) == 0);
	an_buf_free(&plain);
	side_free(&i);
	side_free(&r);
}

static void test_transport_round_trip_1mib(void)
{
	struct side i, r;
	struct an_buf plain;
	size_t len = 1 << 20, used, pos = 0, frames = 0;
	uint8_t *data = malloc(len);

	CHECK_EQ_INT(pair(&i, &r), 0);
	an_buf_init(&plain, 2 * len);
	randombytes_buf(data, len);
	CHECK_EQ_INT(an_noise_encrypt(i.n, data, len, &i.out), 0);
	while (pos + 2 <= i.out.len) {
		size_t f = (size_t)i.out.data[pos] << 8 | i.out.data[pos + 1];
		CHECK(f <= AN_NOISE_MSG_MAX);
		pos += 2 + f;
		frames++;
	}
	CHECK_EQ_INT(pos, i.out.len);
	CHECK_EQ_INT(frames, (len + AN_NOISE_PLAINTEXT_MAX - 1) / AN_NOISE_PLAINTEXT_MAX);
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data, i.out.len, &used, &plain), 0);
	CHECK_EQ_INT(used, i.out.len);
	CHECK(plain.len == len && memcmp(plain.data, data, len) == 0);
	free(data);
	an_buf_free(&plain);
	side_free(&i);
	side_free(&r);
}

/*
 * Established sessions keep their transport keys in shared slabs of slots
 * (noise.c); 100 pairs span several slabs.  Every pair must keep its own
 * keys while others are freed and new ones take the freed slots.
 */
#define MANY 100
static struct side many_i[MANY], many_r[MANY];

/* i[k] seals a numbered message; 1 if rd opens it intact, 0 if it refuses. */
static int many_message(int k, struct side *rd, struct an_buf *plain)
{
	char msg[16];
	int n = snprintf(msg, sizeof msg, "pair %d", k);
	size_t used;

	an_buf_reset(&many_i[k].out);
	an_buf_reset(plain);
	if (an_noise_encrypt(many_i[k].n, (const uint8_t *)msg, (size_t)n, &many_i[k].out) < 0)
		return -1;
	if (an_noise_decrypt(rd->n, many_i[k].out.data, many_i[k].out.len, &used, plain) < 0)
		return 0;
	return plain->len == (size_t)n && memcmp(plain->data, msg, (size_t)n) == 0 ? 1 : -1;
}

static void test_many_sessions_keep_their_own_keys(void)
{
	struct an_buf plain;
	int ok = 0, refused = 0;

	an_buf_init(&plain, 1024);
	for (int k = 0; k < MANY; k++)
		CHECK_EQ_INT(pair(&many_i[k], &many_r[k]), 0);
	for (int k = 0; k < MANY; k += 2) { /* free every other pair, then refill */
		side_free(&many_i[k]);
		side_free(&many_r[k]);
	}
	for (int k = 0; k < MANY; k += 2)
		CHECK_EQ_INT(pair(&many_i[k], &many_r[k]), 0);
	for (int k = 0; k < MANY; k++)
		ok += many_message(k, &many_r[k], &plain) == 1;
	/* same nonce (1) on both sides: only the keys differ */
	for (int k = 0; k < MANY; k++)
		refused += many_message(k, &many_r[(k + 1) % MANY], &plain) == 0;
	CHECK_EQ_INT(ok, MANY);
	CHECK_EQ_INT(refused, MANY);
	for (int k = 0; k < MANY; k++) {
		side_free(&many_i[k]);
		side_free(&many_r[k]);
	}
	an_buf_free(&plain);
}

static void test_transport_responder_to_initiator(void)
{
	struct side i, r;
	struct an_buf plain;
	size_t used;

	CHECK_EQ_INT(pair(&i, &r), 0);
	an_buf_init(&plain, 1024);
	CHECK_EQ_INT(an_noise_encrypt(r.n, (const uint8_t *)"pong", 4, &r.out), 0);
	CHECK_EQ_INT(an_noise_decrypt(i.n, r.out.data, r.out.len, &used, &plain), 0);
	CHECK(plain.len == 4 && memcmp(plain.data, "pong", 4) == 0);
	an_buf_free(&plain);
	side_free(&i);
	side_free(&r);
}

static void test_transport_partial_frame_unconsumed(void)
{
	struct side i, r;
	struct an_buf plain;
	size_t used;

	CHECK_EQ_INT(pair(&i, &r), 0);
	an_buf_init(&plain, 1024);
	an_noise_encrypt(i.n, (const uint8_t *)"abc", 3, &i.out);
	an_noise_encrypt(i.n, (const uint8_t *)"defg", 4, &i.out);
	/* first frame (2 + 3 + 16 = 21 bytes) plus half of the second */
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data, 30, &used, &plain), 0);
	CHECK_EQ_INT(used, 21);
	CHECK(plain.len == 3 && memcmp(plain.data, "abc", 3) == 0);
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data + 21, i.out.len - 21, &used, &plain), 0);
	CHECK_EQ_INT(used, i.out.len - 21);
	CHECK(plain.len == 7 && memcmp(plain.data, "abcdefg", 7) == 0);
	an_buf_free(&plain);
	side_free(&i);
	side_free(&r);
}

static void test_transport_stops_when_plain_is_full(void)
{
	struct side i, r;
	struct an_buf plain;
	size_t used;

	CHECK_EQ_INT(pair(&i, &r), 0);
	an_buf_init(&plain, 5);
	an_noise_encrypt(i.n, (const uint8_t *)"abc", 3, &i.out);
	an_noise_encrypt(i.n, (const uint8_t *)"defg", 4, &i.out);
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data, i.out.len, &used, &plain), 0);
	CHECK_EQ_INT(used, 21);
	an_buf_reset(&plain);
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data + 21, i.out.len - 21, &used, &plain), 0);
	CHECK_EQ_INT(used, i.out.len - 21);
	CHECK(plain.len == 4 && memcmp(plain.data, "defg", 4) == 0);
	an_buf_free(&plain);
	side_free(&i);
	side_free(&r);
}

static void test_transport_tampered_frame_fails(void)
{
	struct side i, r;
	struct an_buf plain;
	size_t used;

	CHECK_EQ_INT(pair(&i, &r), 0);
	an_buf_init(&plain, 1024);
	an_noise_encrypt(i.n, (const uint8_t *)"hello", 5, &i.out);
	i.out.data[3] ^= 1;
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data, i.out.len, &used, &plain), AN_EPROTO);
	CHECK_EQ_INT(plain.len, 0);
	/* sticky: the channel is dead */
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data, i.out.len, &used, &plain), AN_EPROTO);
	an_buf_free(&plain);
	side_free(&i);
	side_free(&r);
}

static void test_transport_frame_shorter_than_tag_fails(void)
{
	struct side i, r;
	struct an_buf plain;
	static const uint8_t frame[] = { 0, 5, 1, 2, 3, 4, 5 };
	size_t used;

	CHECK_EQ_INT(pair(&i, &r), 0);
	an_buf_init(&plain, 1024);
	CHECK_EQ_INT(an_noise_decrypt(r.n, frame, sizeof frame, &used, &plain), AN_EPROTO);
	an_buf_free(&plain);
	side_free(&i);
	side_free(&r);
}

static void test_transport_encrypt_respects_out_cap(void)
{
	struct side i, r;
	struct an_buf small;
	uint8_t data[100] = { 0 };

	CHECK_EQ_INT(pair(&i, &r), 0);
	an_buf_init(&small, 100 + 2 + 16 - 1);
	CHECK_EQ_INT(an_noise_encrypt(i.n, data, sizeof data, &small), AN_ETOOBIG);
	CHECK_EQ_INT(small.len, 0);
	an_buf_free(&small);
	side_free(&i);
	side_free(&r);
}

static void test_nonce_limit_never_wraps(void)
{
	struct side i, r;
	struct an_buf plain;
	size_t used;

	CHECK_EQ_INT(pair(&i, &r), 0);
	an_buf_init(&plain, 1024);
	an_noise_set_nonces_for_test(i.n, UINT64_MAX - 1, 0);
	an_noise_set_nonces_for_test(r.n, 0, UINT64_MAX - 1);
	/* 2^64-2 is the last usable nonce */
	CHECK_EQ_INT(an_noise_encrypt(i.n, (const uint8_t *)"x", 1, &i.out), 0);
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data, i.out.len, &used, &plain), 0);
	CHECK_EQ_INT(plain.len, 1);
	CHECK_EQ_INT(an_noise_encrypt(i.n, (const uint8_t *)"y", 1, &i.out), AN_ELIMIT);
	an_buf_free(&plain);
	side_free(&i);
	side_free(&r);
}

static void test_receive_nonce_limit_never_wraps(void)
{
	struct side i, r;
	struct an_buf plain;
	size_t used;

	CHECK_EQ_INT(pair(&i, &r), 0);
	an_buf_init(&plain, 1024);
	an_noise_set_nonces_for_test(i.n, UINT64_MAX - 1, 0);
	an_noise_set_nonces_for_test(r.n, 0, UINT64_MAX);
	CHECK_EQ_INT(an_noise_encrypt(i.n, (const uint8_t *)"x", 1, &i.out), 0);
	CHECK_EQ_INT(an_noise_decrypt(r.n, i.out.data, i.out.len, &used, &plain), AN_ELIMIT);
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(plain.len, 0);
	an_buf_free(&plain);
	side_free(&i);
	side_free(&r);
}

static void test_transport_before_handshake_refused(void)
{
	struct side i;

	side_init(&i, AN_NOISE_INITIATOR, NULL, 0, NULL);
	CHECK_EQ_INT(an_noise_encrypt(i.n, (const uint8_t *)"x", 1, &i.out), -EINVAL);
	side_free(&i);
}

static void test_payload_round_trip(void)
{
	struct an_privkey *id = NULL;
	struct an_pubkey pub;
	struct an_buf b;
	struct an_noise_payload pl;
	uint8_t st[32];
	static const char *const mux[] = { "/yamux/1.0.0", "/mplex/6.7.0" };

	an_buf_init(&b, 4096);
	CHECK_EQ_INT(an_privkey_generate(&id), 0);
	randombytes_buf(st, sizeof st);
	CHECK_EQ_INT(an_noise_payload_encode(id, st, mux, 2, &b), 0);
	CHECK_EQ_INT(an_noise_payload_decode(b.data, b.len, &pl), 0);
	an_privkey_public(id, &pub);
	CHECK(an_pubkey_equal(&pl.key, &pub));
	CHECK_EQ_INT(pl.sig_len, 64);
	CHECK_EQ_INT(pl.n_muxers, 2);
	CHECK_EQ_INT(an_noise_payload_verify(&pl, st), 0);
	st[0] ^= 1;
	CHECK_EQ_INT(an_noise_payload_verify(&pl, st), AN_EBADSIG);
	an_buf_free(&b);
	an_privkey_free(id);
}

static void test_payload_skips_unknown_fields(void)
{
	struct an_privkey *id = NULL;
	struct an_buf b;
	struct an_noise_payload pl;
	uint8_t st[32] = { 0 };

	an_buf_init(&b, 4096);
	an_privkey_generate(&id);
	CHECK_EQ_INT(an_noise_payload_encode(id, st, NULL, 0, &b), 0);
	CHECK_EQ_INT(an_pb_put_varint(&b, 9, 7), 0);
	CHECK_EQ_INT(an_noise_payload_decode(b.data, b.len, &pl), 0);
	CHECK(pl.extensions == NULL);
	CHECK_EQ_INT(pl.n_muxers, 0);
	an_buf_free(&b);
	an_privkey_free(id);
}

static void test_payload_without_signature_refused(void)
{
	struct an_privkey *id = NULL;
	struct an_pubkey pub;
	struct an_buf key, b;
	struct an_noise_payload pl;

	an_buf_init(&key, 4096);
	an_buf_init(&b, 4096);
	an_privkey_generate(&id);
	an_privkey_public(id, &pub);
	an_pubkey_encode(&pub, &key);
	an_pb_put_bytes(&b, 1, key.data, key.len);
	CHECK_EQ_INT(an_noise_payload_decode(b.data, b.len, &pl), AN_EPROTO);
	an_buf_free(&key);
	an_buf_free(&b);
	an_privkey_free(id);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(test_cacophony_xx_vector);
	RUN(test_handshake_in_memory_authenticates_both);
	RUN(test_message1_is_32_bytes_framed);
	RUN(test_responder_rejects_payload_in_message1);
	RUN(test_default_muxer_negotiated_early);
	RUN(test_no_muxer_when_one_side_announces_none);
	RUN(test_muxer_is_initiators_first_common_choice);
	RUN(test_disjoint_muxer_lists_fail);
	RUN(test_expected_peer_accepted);
	RUN(test_wrong_expected_peer_fails);
	RUN(test_tampered_message2_fails);
	RUN(test_tampered_message3_fails);
	RUN(test_wrong_identity_signature_fails);
	RUN(test_partial_handshake_frame_is_left_unconsumed);
	RUN(test_message3_and_transport_data_in_one_flight);
	RUN(test_transport_round_trip_1mib);
	RUN(test_transport_responder_to_initiator);
	RUN(test_many_sessions_keep_their_own_keys);
	RUN(test_transport_partial_frame_unconsumed);
	RUN(test_transport_stops_when_plain_is_full);
	RUN(test_transport_tampered_frame_fails);
	RUN(test_transport_frame_shorter_than_tag_fails);
	RUN(test_transport_encrypt_respects_out_cap);
	RUN(test_nonce_limit_never_wraps);
	RUN(test_receive_nonce_limit_never_wraps);
	RUN(test_transport_before_handshake_refused);
	RUN(test_payload_round_trip);
	RUN(test_payload_skips_unknown_fields);
	RUN(test_payload_without_signature_refused);
	return check_done();
}
