#include "transport/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/mss.h"
#include "transport/noise.h"
#include "transport/tls.h"
#include "util/error.h"

#include <time.h>

/*
 * Drained buffers larger than this are freed after a small input (see
 * release_idle).  0: all of them.  A DHT node's connections sit idle between
 * small RPCs; 100 of them keeping even 2-4 KB a buffer cost ~0.3 MB, while
 * growing a buffer again is a few reallocs an RPC, nothing next to its
 * crypto and syscalls.
 */
#define CONN_BUF_KEEP 0
/* ... unless this much output was sealed since the last small input. */
#define RELEASE_OUTPUT_MAX (64 * 1024)

static const char *const security_protos[] = {AN_NOISE_PROTOCOL, AN_TLS_PROTOCOL};
static const char *const tls_protos[] = {AN_TLS_PROTOCOL};
static const char *const muxer_protos[] = {AN_YAMUX_PROTOCOL};

struct an_conn {
	enum an_conn_state state;
	bool initiator;
	bool yamux_client;
	bool early_muxer;
	const struct an_privkey *key;
	struct an_peerid expected;
	bool has_expected;
	struct an_yamux_config ycfg;
	/* multistream state, only while negotiating (1.2 KB): freed once yamux
	   starts, so an established connection does not carry it */
	struct an_mss *mss;
	struct an_noise *noise;
	struct an_tls *tls;     /* instead of noise after /tls/1.0.0 */
	bool want_tls;          /* dialer proposes /tls/1.0.0 */
	int64_t now_s;
	struct an_yamux *yamux;
	struct an_buf raw_in, plain_in, plain_out, raw_out;
	size_t raw_out_off; /* raw_out[0..raw_out_off) has been taken by the byte stream */
	size_t raw_in_off;  /* raw_in[0..raw_in_off) has been processed */
	size_t read_want;   /* room an_conn_input_buffer offers (grows with bulk input) */
	size_t sealed_since_release; /* output bytes since release_idle last ran */
	struct an_peerid peer; /* the remote key itself stays in noise (1.1 KB) */
	bool ready_pending;
	bool error_pending;
	int err;
	char reason[160];
};

int an_conn_new(const struct an_conn_config *cfg, struct an_conn **out)
{
	*out = NULL;
	if (!cfg->key)
		return -EINVAL;
	struct an_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->state = AN_CONN_MSS_SECURITY;
	c->initiator = cfg->initiator;
	c->yamux_client = cfg->yamux_client;
	c->early_muxer = !cfg->no_early_muxer;
	c->want_tls = cfg->tls;
	c->now_s = cfg->now_s;
	c->key = cfg->key;
	if (cfg->expected) {
		c->expected = *cfg->expected;
		c->has_expected = true;
	}
	if (cfg->yamux)
		c->ycfg = *cfg->yamux;
	else
		an_yamux_config_default(&c->ycfg);
	an_buf_init(&c->raw_in, AN_CONN_RAW_IN_MAX);
	c->read_want = AN_CONN_READ_MIN;
	an_buf_init(&c->plain_in, AN_CONN_PLAIN_IN_MAX);
	an_buf_init(&c->plain_out, AN_NOISE_PLAINTEXT_MAX);
	an_buf_init(&c->raw_out, AN_CONN_RAW_OUT_MAX);
	if (!(c->mss = calloc(1, sizeof(*c->mss)))) {
		an_conn_free(c);
		return -ENOMEM;
	}
	int rc = c->initiator ? an_mss_dialer_init(c->mss, c->want_tls ? tls_protos : security_protos, 1)
			      : an_mss_listener_init(c->mss, security_protos, 2, NULL, NULL);
	if (rc < 0) {
		an_conn_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void an_conn_free(struct an_conn *c)
{
	if (!c)
		return;
	an_noise_free(c->noise);
	an_tls_free(c->tls);
	an_yamux_free(c->yamux);
	free(c->mss);
	an_buf_free(&c->raw_in);
	an_buf_free(&c->plain_in);
	an_buf_free(&c->plain_out);
	an_buf_free(&c->raw_out);
	free(c);
}

void an_conn_fail(struct an_conn *c, int err, const char *reason)
{
	if (c->state == AN_CONN_FAILED)
		return;
	c->state = AN_CONN_FAILED;
	c->err = err ? err : AN_EPROTO;
	snprintf(c->reason, sizeof(c->reason), "%s", reason && *reason ? reason : an_strerror(c->err));
	c->error_pending = true;
}

static int fail_layer(struct an_conn *c, int err, const char *layer, const char *why)
{
	char r[160];
	snprintf(r, sizeof(r), "%s: %s", layer, why && *why ? why : an_strerror(err));
	an_conn_fail(c, err, r);
	return c->err;
}

/* Make the Noise session and, as initiator, put its first message out. */
static int noise_begin(struct an_conn *c)
{
	struct an_noise_config nc;
	an_noise_config_init(&nc);
	nc.role = c->initiator ? AN_NOISE_INITIATOR : AN_NOISE_RESPONDER;
	nc.identity = c->key;
	nc.expected_remote = c->has_expected ? &c->expected : NULL;
	if (!c->early_muxer)
		nc.n_muxers = 0;
	int rc = an_noise_new(&nc, &c->noise);
	if (rc == 0)
		rc = an_noise_start(c->noise, &c->raw_out);
	if (rc < 0)
		return fail_layer(c, rc, "noise", NULL);
	return 0;
}

static bool out_room(struct an_conn *c, size_t need);

/* TLS output (ciphertext) into raw_out: 0, or an error when it has no room. */
static int tls_move_out(struct an_conn *c)
{
	const uint8_t *p;
	size_t len;
	an_tls_output(c->tls, &p, &len);
	if (len == 0)
		return 0;
	if (!out_room(c, len))
		return fail_layer(c, AN_ELIMIT, "tls", "output full");
	int rc = an_buf_append(&c->raw_out, p, len);
	if (rc < 0)
		return fail_layer(c, rc, "tls", NULL);
	an_tls_output_consume(c->tls, len);
	return 0;
}

/* Make the TLS session and, as client (the dialer), put its hello out. */
static int tls_begin(struct an_conn *c)
{
	struct an_tls_config tc = {.key = c->key, .server = !c->initiator,
				   .expected = c->has_expected ? &c->expected : NULL,
				   .now_s = c->now_s ? c->now_s : (int64_t)time(NULL)};
	int rc = an_tls_new(&tc, &c->tls);
	if (rc < 0)
		return fail_layer(c, rc, "tls", NULL);
	if (c->initiator && (rc = an_tls_handshake(c->tls)) < 0)
		return fail_layer(c, rc, "tls", an_tls_reason(c->tls));
	return tls_move_out(c);
}

/*
 * The dialer proposes one security protocol, so it sends Noise's first
 * message in the same flight as the proposal, not a round trip later (what
 * rust-libp2p's V1Lazy does; digest K10).  With a single proposal this is
 * sound: the listener either echoes "/noise" and reads the message next, or
 * answers "na" and the connection fails either way (the listener then reads
 * our message as a malformed multistream line and fails too).
 */
int an_conn_start(struct an_conn *c, uint64_t now_ms)
{
	(void)now_ms;
	if (!c->initiator)
		return 0;
	int rc = an_mss_start(c->mss, &c->raw_out);
	if (rc < 0)
		return fail_layer(c, rc, "multistream", NULL);
	return c->want_tls ? tls_begin(c) : noise_begin(c);
}

static int process(struct an_conn *c, uint64_t now_ms);

/*
 * Input shape.  raw_in is processed from an offset (raw_in_off): whole
 * frames are taken from the front without moving the rest, and the tail
 * (at most one partial frame) is moved to the front only when the free
 * space at the end gets short.  The owner may read straight into raw_in
 * (an_conn_input_buffer), so bytes from the socket are not copied before
 * they are decrypted.
 */
static const uint8_t *in_data(const struct an_conn *c)
{
	return c->raw_in.data ? c->raw_in.data + c->raw_in_off : NULL;
}

static size_t in_len(const struct an_conn *c)
{
	return c->raw_in.len - c->raw_in_off;
}

static void in_consume(struct an_conn *c, size_t n)
{
	c->raw_in_off += n;
	if (c->raw_in_off >= c->raw_in.len) {
		an_buf_reset(&c->raw_in);
		c->raw_in_off = 0;
	}
}

/* Free space at the end of raw_in, after moving the unprocessed tail to the
   front if the end has less than want bytes left. */
static size_t in_room(struct an_conn *c, size_t want)
{
	struct an_buf *b = &c->raw_in;
	if (b->max - b->len < want && c->raw_in_off > 0) {
		memmove(b->data, b->data + c->raw_in_off, b->len - c->raw_in_off);
		b->len -= c->raw_in_off;
		c->raw_in_off = 0;
	}
	return b->max - b->len;
}

size_t an_conn_input_room(const struct an_conn *c)
{
	if (c->state == AN_CONN_FAILED)
		return 0;
	/* what in_room could offer */
	return c->raw_in.max - c->raw_in.len + c->raw_in_off;
}

int an_conn_input_buffer(struct an_conn *c, uint8_t **p, size_t *room)
{
	*p = NULL;
	*room = 0;
	if (c->state == AN_CONN_FAILED)
		return c->err;
	/* one byte under read_want when empty: with the an_buf's NUL the
	   allocation is then read_want exactly, not twice that */
	size_t want = c->raw_in.len ? c->read_want : c->read_want - 1;
	size_t n = in_room(c, want);
	if (n > want)
		n = want;
	if (n == 0)
		return 0;
	int rc = an_buf_reserve(&c->raw_in, n, p);
	if (rc < 0)
		return fail_layer(c, rc, "conn", NULL);
	*room = n;
	return 0;
}

/*
 * After a small input all processed: the connection is not in a bulk
 * transfer, so free raw_in and, once drained, the other three buffers, which
 * would otherwise keep their high-water allocation (64 KiB and more each
 * after a burst) on an idle connection.  The next small input after a burst
 * comes at the latest with the yamux keep-alive ping.  A bulk sender's small
 * inputs are window updates, one per ~1 MiB sent, so re-allocating costs
 * nothing measurable there.
 */
static void release_idle(struct an_conn *c)
{
	/* Not while sending in bulk: a sender's small inputs are the window
	   updates of its transfer, and freeing its output buffers at each one
	   made it grow them again from nothing - fresh pages to fault in and
	   zero, one round per window update (measured: 8.1 -> 7.3 Gbit/s). */
	size_t sealed = c->sealed_since_release;
	c->sealed_since_release = 0;
	if (sealed >= RELEASE_OUTPUT_MAX)
		return;
	an_buf_free(&c->raw_in);
	c->raw_in_off = 0;
	c->read_want = AN_CONN_READ_MIN;
	if (c->raw_out.len == c->raw_out_off) {
		an_buf_reset(&c->raw_out);
		c->raw_out_off = 0;
		an_buf_shrink(&c->raw_out, CONN_BUF_KEEP);
	}
	an_buf_shrink(&c->plain_out, CONN_BUF_KEEP);
	an_buf_shrink(&c->plain_in, CONN_BUF_KEEP);
}

int an_conn_input_commit(struct an_conn *c, size_t n, uint64_t now_ms)
{
	if (c->state == AN_CONN_FAILED)
		return c->err;
	if (n > c->raw_in.max - c->raw_in.len)
		return -EINVAL;
	/* A read that filled what was offered: offer more next time (bulk). */
	bool small = n < AN_CONN_READ_MIN / 2;
	if (n >= c->read_want - 1 && c->read_want < AN_CONN_READ_MAX)
		c->read_want *= 2;
	if (n) {
		c->raw_in.len += n;
		c->raw_in.data[c->raw_in.len] = 0;
	}
	int rc = process(c, now_ms);
	/* A small read all processed: the connection is not in a bulk transfer,
	   so give the buffers back (idle connections hold no input memory). */
	if (small && c->raw_in.len == 0)
		release_idle(c);
	return rc;
}

/*
 * Output shape.  plain_out is the one Noise message being filled (yamux
 * frames and multistream lines, at most AN_NOISE_PLAINTEXT_MAX bytes); it is
 * sealed into raw_out when full, or when the owner flushes.  So a bulk
 * writer's messages carry a full 65519 bytes each (several yamux frames),
 * and nothing is ever moved within plain_out.  raw_out is consumed from an
 * offset (raw_out_off) and only compacted when that is cheap, so a socket
 * taking part of the output costs no memmove of the rest.
 */

/* Can raw_out take need more bytes at its end (compacting if cheap)? */
static bool out_room(struct an_conn *c, size_t need)
{
	struct an_buf *b = &c->raw_out;
	if (b->max - b->len >= need)
		return true;
	size_t live = b->len - c->raw_out_off;
	/* Move the unsent bytes to the front only when they are no more than
	 * what was sent since the last move: the copying stays amortized below
	 * the bytes sent, however slowly the byte stream drains. */
	if (c->raw_out_off == 0 || live > c->raw_out_off)
		return false;
	memmove(b->data, b->data + c->raw_out_off, live);
	b->len = live;
	c->raw_out_off = 0;
	return b->max - b->len >= need;
}

/* Seal the open message into raw_out: 1 done (or nothing to do), 0 no room yet, <0 error. */
static int seal(struct an_conn *c)
{
	if (c->plain_out.len == 0)
		return 1;
	if (c->tls) {
		/* records of up to 16 KiB, 22 bytes of overhead each */
		if (!out_room(c, c->plain_out.len + (c->plain_out.len / 16384 + 1) * 32))
			return 0;
		int rc = an_tls_write(c->tls, c->plain_out.data, c->plain_out.len);
		if (rc < 0)
			return fail_layer(c, rc, "tls", an_tls_reason(c->tls));
		if ((rc = tls_move_out(c)) < 0)
			return rc;
		c->sealed_since_release += c->plain_out.len;
		an_buf_reset(&c->plain_out);
		return 1;
	}
	if (!out_room(c, c->plain_out.len + 2 + AN_NOISE_TAG_LEN))
		return 0; /* wait for the byte stream to drain */
	int rc = an_noise_encrypt(c->noise, c->plain_out.data, c->plain_out.len, &c->raw_out);
	if (rc < 0)
		return fail_layer(c, rc, "noise", an_noise_reason(c->noise));
	c->sealed_since_release += c->plain_out.len;
	an_buf_reset(&c->plain_out);
	return 1;
}

/* Room left in the open message. */
static size_t msg_room(const struct an_conn *c)
{
	return c->plain_out.max - c->plain_out.len;
}

/*
 * Let yamux emit its pending control frames, sealing messages as they fill
 * (all of them when flush_all).  *moved is set if any bytes were produced.
 * 0 or the connection's error.
 */
static int drain_yamux(struct an_conn *c, bool flush_all, bool *moved)
{
	for (int guard = 0; guard < 64; guard++) {
		if (c->yamux && an_yamux_want_send(c->yamux)) {
			size_t before = c->plain_out.len;
			int rc = an_yamux_send(c->yamux, &c->plain_out);
			if (rc < 0 && rc != AN_ETOOBIG) {
				const char *why = NULL;
				an_yamux_error(c->yamux, &why);
				seal(c); /* let the GoAway out before the host closes */
				return fail_layer(c, rc, "yamux", why);
			}
			if (c->plain_out.len != before && moved)
				*moved = true;
		}
		bool more = c->yamux && an_yamux_want_send(c->yamux);
		if (!more && !flush_all && msg_room(c) > AN_YAMUX_HEADER_SIZE)
			return 0; /* the open message waits for more */
		int rc = seal(c);
		if (rc <= 0)
			return rc; /* an error, or raw_out is full */
		if (!more)
			return 0;
	}
	return 0;
}

/* Seal the open message (multistream stages, where yamux is not running). */
static int encrypt_out(struct an_conn *c)
{
	int rc = seal(c);
	return rc < 0 ? rc : 0;
}

static int start_yamux(struct an_conn *c)
{
	int rc = an_yamux_new(&c->yamux, c->yamux_client ? AN_YAMUX_CLIENT : AN_YAMUX_SERVER,
			      &c->ycfg);
	if (rc < 0)
		return fail_layer(c, rc, "yamux", NULL);
	c->state = AN_CONN_ESTABLISHED;
	c->ready_pending = true;
	free(c->mss);
	c->mss = NULL;
	return 0;
}

static int noise_done(struct an_conn *c)
{
	const struct an_peerid *p = an_noise_remote_peer(c->noise);
	const struct an_pubkey *k = an_noise_remote_key(c->noise);
	if (!p || !k)
		return fail_layer(c, AN_EPROTO, "noise", "no remote identity");
	c->peer = *p;
	const char *mux = an_noise_muxer(c->noise);
	if (mux) {
		if (strcmp(mux, AN_YAMUX_PROTOCOL) != 0)
			return fail_layer(c, AN_ENOPROTO, "noise", "early muxer is not yamux");
		return start_yamux(c);
	}
	c->state = AN_CONN_MSS_MUXER;
	int rc = c->initiator ? an_mss_dialer_init(c->mss, muxer_protos, 1)
			      : an_mss_listener_init(c->mss, muxer_protos, 1, NULL, NULL);
	if (rc == 0 && c->initiator)
		rc = an_mss_start(c->mss, &c->plain_out);
	if (rc < 0)
		return fail_layer(c, rc, "multistream", NULL);
	return encrypt_out(c);
}

/* The TLS handshake ended: the muxer is negotiated with multistream
   (ALPN "libp2p": no inlined muxer). */
static int tls_done(struct an_conn *c)
{
	const struct an_peerid *p = an_tls_peer(c->tls);
	if (!p)
		return fail_layer(c, AN_EPROTO, "tls", "no remote identity");
	c->peer = *p;
	c->state = AN_CONN_MSS_MUXER;
	int rc = c->initiator ? an_mss_dialer_init(c->mss, muxer_protos, 1)
			      : an_mss_listener_init(c->mss, muxer_protos, 1, NULL, NULL);
	if (rc == 0 && c->initiator)
		rc = an_mss_start(c->mss, &c->plain_out);
	if (rc < 0)
		return fail_layer(c, rc, "multistream", NULL);
	return encrypt_out(c);
}

/* TLS: ciphertext from raw_in into the session, plaintext out into plain_in. */
static int tls_decrypt(struct an_conn *c, size_t *used, size_t *got)
{
	*used = in_len(c);
	*got = 0;
	if (*used > AN_TLS_IN_MAX / 2)
		*used = AN_TLS_IN_MAX / 2;
	int rc = an_tls_feed(c->tls, in_data(c), *used);
	if (rc < 0) {
		*used = 0; /* the session holds enough: read it first */
	}
	for (int i = 0; i < 64; i++) {
		uint8_t *p;
		size_t room = c->plain_in.max - c->plain_in.len, n = 0;
		if (room == 0 || an_buf_reserve(&c->plain_in, room, &p) < 0)
			break;
		rc = an_tls_read(c->tls, p, room, &n);
		if (rc < 0)
			return fail_layer(c, rc, "tls", an_tls_reason(c->tls)[0] ? an_tls_reason(c->tls) : NULL);
		if (n == 0)
			break;
		c->plain_in.len += n;
		*got += n;
	}
	return tls_move_out(c); /* alerts, key updates */
}

/* Run the pipeline over buffered input until nothing moves. */
static int process(struct an_conn *c, uint64_t now_ms)
{
	for (int guard = 0; guard < 1000; guard++) {
		size_t used = 0;
		int rc;
		switch (c->state) {
		case AN_CONN_MSS_SECURITY:
			rc = an_mss_recv(c->mss, in_data(c), in_len(c), &used, &c->raw_out);
			in_consume(c, used);
			if (rc < 0)
				return fail_layer(c, rc, "multistream", an_mss_reason(c->mss));
			if (rc == 0)
				return 0;
			/* the dialer's session began with its proposal (an_conn_start) */
			if (strcmp(an_mss_selected(c->mss), AN_TLS_PROTOCOL) == 0) {
				if (!c->tls && (rc = tls_begin(c)) < 0)
					return rc;
				c->state = AN_CONN_TLS;
				break;
			}
			if (!c->noise && (rc = noise_begin(c)) < 0)
				return rc;
			c->state = AN_CONN_NOISE;
			break;
		case AN_CONN_TLS:
			used = in_len(c);
			if (used && an_tls_feed(c->tls, in_data(c), used) < 0)
				return fail_layer(c, AN_ELIMIT, "tls", "handshake too large");
			in_consume(c, used);
			rc = an_tls_handshake(c->tls);
			if (rc < 0) {
				tls_move_out(c); /* the alert */
				return fail_layer(c, rc, "tls", an_tls_reason(c->tls));
			}
			if ((rc = tls_move_out(c)) < 0)
				return rc;
			if (an_tls_peer(c->tls) == NULL)
				return 0;
			rc = tls_done(c);
			if (rc < 0)
				return rc;
			break;
		case AN_CONN_NOISE:
			rc = an_noise_recv(c->noise, in_data(c), in_len(c), &used, &c->raw_out);
			in_consume(c, used);
			if (rc < 0)
				return fail_layer(c, rc, "noise", an_noise_reason(c->noise));
			if (rc == 0)
				return 0;
			rc = noise_done(c);
			if (rc < 0)
				return rc;
			break;
		case AN_CONN_MSS_MUXER:
		case AN_CONN_ESTABLISHED: {
			bool moved = false;
			if (c->tls) {
				size_t got = 0;
				rc = tls_decrypt(c, &used, &got);
				in_consume(c, used);
				if (rc < 0)
					return rc;
				moved = used > 0 || got > 0;
			} else {
				rc = an_noise_decrypt(c->noise, in_data(c), in_len(c), &used, &c->plain_in);
				in_consume(c, used);
				if (rc < 0)
					return fail_layer(c, rc, "noise", an_noise_reason(c->noise));
				moved = used > 0;
			}
			if (c->state == AN_CONN_MSS_MUXER) {
				rc = an_mss_recv(c->mss, c->plain_in.data, c->plain_in.len, &used,
						 &c->plain_out);
				an_buf_consume(&c->plain_in, used);
				if (rc < 0)
					return fail_layer(c, rc, "multistream", an_mss_reason(c->mss));
				if (rc == 1)
					rc = start_yamux(c);
				if (rc < 0)
					return rc;
				rc = encrypt_out(c);
				if (rc < 0)
					return rc;
				if (c->state == AN_CONN_MSS_MUXER && !moved && used == 0)
					return 0;
				break;
			}
			if (c->plain_in.len > 0) {
				rc = an_yamux_feed(c->yamux, c->plain_in.data, c->plain_in.len, &used,
						   now_ms);
				an_buf_consume(&c->plain_in, used);
				if (rc < 0) {
					const char *why = NULL;
					an_yamux_error(c->yamux, &why);
					/* let the GoAway out before the host closes */
					an_yamux_send(c->yamux, &c->plain_out);
					seal(c);
					return fail_layer(c, rc, "yamux", why);
				}
				if (used > 0)
					moved = true;
				if (c->plain_in.len > 0 && used == 0) {
					/* yamux wants its answers flushed first */
					bool out_moved = false;
					rc = drain_yamux(c, false, &out_moved);
					if (rc < 0)
						return rc;
					if (!out_moved)
						return 0; /* output is full: wait for the byte stream */
					moved = true;
				}
			}
			if (!moved)
				return 0;
			break;
		}
		case AN_CONN_FAILED:
			return c->err;
		}
	}
	return 0;
}

int an_conn_feed(struct an_conn *c, const uint8_t *in, size_t len, size_t *consumed,
		 uint64_t now_ms)
{
	*consumed = 0;
	if (c->state == AN_CONN_FAILED)
		return c->err;
	size_t room = in_room(c, len);
	if (len > room)
		len = room;
	if (len) {
		int rc = an_buf_append(&c->raw_in, in, len);
		if (rc < 0)
			return fail_layer(c, rc, "conn", NULL);
		*consumed = len;
	}
	int rc = process(c, now_ms);
	if (len < AN_CONN_READ_MIN / 2 && c->raw_in.len == 0)
		release_idle(c);
	return rc;
}

size_t an_conn_buffer_bytes(const struct an_conn *c)
{
	return c->raw_in.alloc + c->plain_in.alloc + c->plain_out.alloc + c->raw_out.alloc;
}

int an_conn_next_event(struct an_conn *c, struct an_conn_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	if (c->ready_pending) {
		c->ready_pending = false;
		ev->type = AN_CONN_EV_READY;
		return 1;
	}
	if (c->yamux && c->state == AN_CONN_ESTABLISHED && an_yamux_next_event(c->yamux, &ev->yamux)) {
		if (ev->yamux.type == AN_YAMUX_EV_ERROR) {
			fail_layer(c, ev->yamux.err, "yamux", ev->yamux.reason);
			an_yamux_send(c->yamux, &c->plain_out);
			seal(c);
			c->error_pending = false;
			ev->type = AN_CONN_EV_ERROR;
			ev->err = c->err;
			ev->reason = c->reason;
			return 1;
		}
		ev->type = AN_CONN_EV_YAMUX;
		return 1;
	}
	if (c->error_pending) {
		c->error_pending = false;
		ev->type = AN_CONN_EV_ERROR;
		ev->err = c->err;
		ev->reason = c->reason;
		return 1;
	}
	return 0;
}

int an_conn_flush(struct an_conn *c, uint64_t now_ms)
{
	if (c->state == AN_CONN_FAILED)
		return c->err;
	if ((c->noise && an_noise_established(c->noise)) || (c->tls && an_tls_peer(c->tls))) {
		/* everything pending goes out, the open message too */
		int rc = drain_yamux(c, true, NULL);
		if (rc < 0)
			return rc;
	}
	return process(c, now_ms);
}

void an_conn_output(const struct an_conn *c, const uint8_t **p, size_t *len)
{
	*p = c->raw_out.data ? c->raw_out.data + c->raw_out_off : NULL;
	*len = c->raw_out.len - c->raw_out_off;
}

void an_conn_output_consume(struct an_conn *c, size_t n)
{
	size_t live = c->raw_out.len - c->raw_out_off;
	if (n >= live) {
		an_buf_reset(&c->raw_out);
		c->raw_out_off = 0;
		return;
	}
	c->raw_out_off += n;
}

bool an_conn_output_blocked(const struct an_conn *c)
{
	/* after a flush the open message is empty unless raw_out had no room */
	return c->state != AN_CONN_FAILED && c->plain_out.len > 0;
}

struct an_yamux *an_conn_yamux(struct an_conn *c)
{
	return c->state == AN_CONN_ESTABLISHED ? c->yamux : NULL;
}

int an_conn_stream_write(struct an_conn *c, uint32_t id, const uint8_t *p, size_t n,
			 size_t *accepted)
{
	*accepted = 0;
	if (c->state != AN_CONN_ESTABLISHED)
		return c->state == AN_CONN_FAILED ? c->err : -EINVAL;
	/* Frames go into the open message; each message is sealed as it fills,
	   so a large write becomes full 65519-byte Noise messages.  The last,
	   partly filled one waits for more writes or for an_conn_flush. */
	for (int guard = 0; guard < 1024 && *accepted < n; guard++) {
		size_t acc = 0;
		int rc = an_yamux_stream_write(c->yamux, id, p + *accepted, n - *accepted,
					       &c->plain_out, &acc);
		if (rc == AN_ETOOBIG)
			rc = 0; /* out is full: a short write */
		if (rc < 0)
			return rc;
		*accepted += acc;
		if (*accepted == n)
			break;
		/* Cut short: by the window (the message still has room and no
		   control frame waits), or by a full message: seal and go on. */
		if (msg_room(c) > AN_YAMUX_HEADER_SIZE && !an_yamux_want_send(c->yamux))
			break;
		rc = seal(c);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break; /* raw_out is full: wait for the byte stream */
	}
	if (msg_room(c) <= AN_YAMUX_HEADER_SIZE) {
		int rc = seal(c);
		if (rc < 0)
			return rc;
	}
	return 0;
}

enum an_conn_state an_conn_state(const struct an_conn *c)
{
	return c->state;
}

const struct an_peerid *an_conn_peer(const struct an_conn *c)
{
	return c->state == AN_CONN_ESTABLISHED ? &c->peer : NULL;
}

const struct an_pubkey *an_conn_remote_key(const struct an_conn *c)
{
	if (c->state != AN_CONN_ESTABLISHED)
		return NULL;
	return c->tls ? an_tls_remote_key(c->tls) : an_noise_remote_key(c->noise);
}

int an_conn_error(const struct an_conn *c, const char **reason)
{
	if (reason)
		*reason = c->reason;
	return c->err;
}
