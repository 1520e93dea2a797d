/*
 * Fixtures shared by several unit tests: the peer-ids spec key vectors,
 * deterministic random peers, a signed-record builder and a bounded libev
 * loop run.  Header-only (static, static inline), since each test is its own
 * program linked with libcommon alone; a test uses what it needs and the
 * rest costs nothing.
 */
#ifndef AN_TESTS_FIXTURES_H
#define AN_TESTS_FIXTURES_H

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "record/record.h"

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- peer-ids spec, "Test vectors" (libp2p/specs 7740c07, peer-ids/peer-ids.md), hex */

static const char ed25519_priv_pb[] =
	"080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
	"1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
static const char ed25519_pub_pb[] =
	"080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
static const char ecdsa_pub_pb[] =
	"0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44"
	"abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62";
static const char secp256k1_pub_pb[] =
	"08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99";
static const char rsa_pub_pb[] =
	"080012a60430820222300d06092a864886f70d01010105000382020f003082020a0282020100e1beab071d08200bde24"
	"eef00d049449b07770ff9910257b2d7d5dda242ce8f0e2f12e1af4b32d9efd2c090f66b0f29986dbb645dae988008970"
	"4a94e5066d594162ae6ee8892e6ec70701db0a6c445c04778eb3de1293aa1a23c3825b85c6620a2bc3f82f9b0c309bc0"
	"ab3aeb1873282bebd3da03c33e76c21e9beb172fd44c9e43be32e2c99827033cf8d0f0c606f4579326c930eb4e854395"
	"ad941256542c793902185153c474bed109d6ff5141ebf9cd256cf58893a37f83729f97e7cb435ec679d2e33901d27bb3"
	"5aa0d7e20561da08885ef0abbf8e2fb48d6a5487047a9ecb1ad41fa7ed84f6e3e8ecd5d98b3982d2a901b4454991766d"
	"a295ab78822add5612a2df83bcee814cf50973e80d7ef38111b1bd87da2ae92438a2c8cbcc70b31ee319939a3b9c761d"
	"bc13b5c086d6b64bf7ae7dacc14622375d92a8ff9af7eb962162bbddebf90acb32adb5e4e4029f1c96019949ecfbfeff"
	"d7ac1e3fbcc6b6168c34be3d5a2e5999fcbb39bba7adbca78eab09b9bc39f7fa4b93411f4cc175e70c0a083e96bfaefb"
	"04a9580b4753c1738a6a760ae1afd851a1a4bdad231cf56e9284d832483df215a46c1c21bdf0c6cfe951c18f1ee4078c"
	"79c13d63edb6e14feaeffabc90ad317e4875fe648101b0864097e998f0ca3025ef9638cd2b0caecd3770ab54a1d9c6ca"
	"959b0f5dcbc90caeefc4135baca6fd475224269bbe1b0203010001";

/* ---- deterministic test data */

/* xorshift64*: the next value of the sequence in *state (seeded non-zero). */
static inline uint64_t fx_rng(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dull;
}

/* A random sha2-256 multihash peer ID drawn from *state into id (caller's). */
static inline void fx_random_peer(uint64_t *state, struct an_peerid *id)
{
	uint8_t b[34] = { 0x12, 0x20 };
	for (int i = 2; i < 34; i++)
		b[i] = (uint8_t)fx_rng(state);
	if (an_peerid_from_bytes(b, sizeof(b), id) != 0)
		abort();
}

/* ---- records */

/*
 * A record of type for name signed by k (borrowed) at now with seq, valid for
 * valid_secs (0: the default), under root (borrowed, NULL for a root record).
 * root and A records get one address, TXT records the text "hello".  New
 * reference (json_decref), or NULL with the reason printed as a TAP comment.
 */
static inline json_t *fx_sign_at(struct an_privkey *k, const char *type, const char *name,
				 const json_t *root, int64_t now, uint64_t seq, int64_t valid_secs)
{
	static const char *addrs[] = {"/ip4/198.51.100.7/tcp/4001"};
	struct an_record_sign_opts o = {.now = now, .name = name, .type = type, .root = root,
					.has_seq = true, .seq = seq, .valid_secs = valid_secs};
	struct an_record_error e;
	json_t *rec = json_object();
	if (!strcmp(type, "root") || !strcmp(type, "A")) {
		o.addrs = addrs;
		o.naddrs = 1;
	}
	if (!strcmp(type, "TXT"))
		o.text = "hello";
	if (an_record_sign(rec, k, &o, &e)) {
		printf("# sign %s %s: %s: %s\n", type, name, e.field, e.message);
		json_decref(rec);
		return NULL;
	}
	return rec;
}

/* ---- a bounded event loop */

static inline void fx_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	*(bool *)w->data = true;
	ev_break(loop, EVBREAK_ALL);
}

/* Run loop until *flag turns true or seconds pass; returns *flag. */
static inline bool fx_run_until(struct ev_loop *loop, const bool *flag, double seconds)
{
	bool timed_out = false;
	ev_timer deadline;
	ev_timer_init(&deadline, fx_deadline_cb, seconds, 0);
	deadline.data = &timed_out;
	ev_timer_start(loop, &deadline);
	while (!*flag && !timed_out)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &deadline);
	return *flag;
}

#endif
