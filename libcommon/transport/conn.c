#include "transport/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/mss.h"
#include "transport/noise.h"
#include "util/error.h"

static const char *const security_protos[] = {AN_NOISE_PROTOCOL};
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
	struct an_mss mss;
	struct an_noise *noise;
	struct an_yamux *yamux;
	struct an_buf raw_in, plain_in, plain_out, raw_out;
	struct an_peerid peer;
	struct an_pubkey rkey;
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
	an_buf_init(&c->plain_in, AN_CONN_PLAIN_IN_MAX);
	an_buf_init(&c->plain_out, AN_CONN_PLAIN_OUT_MAX);
	an_buf_init(&c->raw_out, AN_CONN_RAW_OUT_MAX);
	int rc = c->initiator ? an_mss_dialer_init(&c->mss, security_protos, 1)
			      : an_mss_listener_init(&c->mss, security_protos, 1, NULL, NULL);
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
	an_yamux_free(c->yamux);
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

int an_conn_start(struct an_conn *c, uint64_t now_ms)
{
	(void)now_ms;
	if (!c->initiator)
		return 0;
	int rc = an_mss_start(&c->mss, &c->raw_out);
	if (rc < 0)
		return fail_layer(c, rc, "multistream", NULL);
	return 0;
}

size_t an_conn_input_room(const struct an_conn *c)
{
	if (c->state == AN_CONN_FAILED)
		return 0;
	return c->raw_in.max - c->raw_in.len;
}

/* Encrypt as much pending plaintext as the output buffer takes. */
static int encrypt_out(struct an_conn *c)
{
	while (c->plain_out.len > 0) {
		size_t n = c->plain_out.len;
		if (n > AN_NOISE_PLAINTEXT_MAX)
			n = AN_NOISE_PLAINTEXT_MAX;
		if (c->raw_out.max - c->raw_out.len < n + 2 + AN_NOISE_TAG_LEN)
			return 0; /* wait for the byte stream to drain */
		int rc = an_noise_encrypt(c->noise, c->plain_out.data, n, &c->raw_out);
		if (rc < 0)
			return fail_layer(c, rc, "noise", an_noise_reason(c->noise));
		an_buf_consume(&c->plain_out, n);
	}
	return 0;
}

static int start_yamux(struct an_conn *c)
{
	int rc = an_yamux_new(&c->yamux, c->yamux_client ? AN_YAMUX_CLIENT : AN_YAMUX_SERVER,
			      &c->ycfg);
	if (rc < 0)
		return fail_layer(c, rc, "yamux", NULL);
	c->state = AN_CONN_ESTABLISHED;
	c->ready_pending = true;
	return 0;
}

static int noise_done(struct an_conn *c)
{
	const struct an_peerid *p = an_noise_remote_peer(c->noise);
	const struct an_pubkey *k = an_noise_remote_key(c->noise);
	if (!p || !k)
		return fail_layer(c, AN_EPROTO, "noise", "no remote identity");
	c->peer = *p;
	c->rkey = *k;
	const char *mux = an_noise_muxer(c->noise);
	if (mux) {
		if (strcmp(mux, AN_YAMUX_PROTOCOL) != 0)
			return fail_layer(c, AN_ENOPROTO, "noise", "early muxer is not yamux");
		return start_yamux(c);
	}
	c->state = AN_CONN_MSS_MUXER;
	int rc = c->initiator ? an_mss_dialer_init(&c->mss, muxer_protos, 1)
			      : an_mss_listener_init(&c->mss, muxer_protos, 1, NULL, NULL);
	if (rc == 0 && c->initiator)
		rc = an_mss_start(&c->mss, &c->plain_out);
	if (rc < 0)
		return fail_layer(c, rc, "multistream", NULL);
	return encrypt_out(c);
}

/* Run the pipeline over buffered input until nothing moves. */
static int process(struct an_conn *c, uint64_t now_ms)
{
	for (int guard = 0; guard < 1000; guard++) {
		size_t used = 0;
		int rc;
		switch (c->state) {
		case AN_CONN_MSS_SECURITY:
			rc = an_mss_recv(&c->mss, c->raw_in.data, c->raw_in.len, &used, &c->raw_out);
			an_buf_consume(&c->raw_in, used);
			if (rc < 0)
				return fail_layer(c, rc, "multistream", an_mss_reason(&c->mss));
			if (rc == 0)
				return 0;
			{
				struct an_noise_config nc;
				an_noise_config_init(&nc);
				nc.role = c->initiator ? AN_NOISE_INITIATOR : AN_NOISE_RESPONDER;
				nc.identity = c->key;
				nc.expected_remote = c->has_expected ? &c->expected : NULL;
				if (!c->early_muxer)
					nc.n_muxers = 0;
				rc = an_noise_new(&nc, &c->noise);
				if (rc == 0)
					rc = an_noise_start(c->noise, &c->raw_out);
				if (rc < 0)
					return fail_layer(c, rc, "noise", NULL);
			}
			c->state = AN_CONN_NOISE;
			break;
		case AN_CONN_NOISE:
			rc = an_noise_recv(c->noise, c->raw_in.data, c->raw_in.len, &used, &c->raw_out);
			an_buf_consume(&c->raw_in, used);
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
			rc = an_noise_decrypt(c->noise, c->raw_in.data, c->raw_in.len, &used,
					      &c->plain_in);
			an_buf_consume(&c->raw_in, used);
			if (rc < 0)
				return fail_layer(c, rc, "noise", an_noise_reason(c->noise));
			moved = used > 0;
			if (c->state == AN_CONN_MSS_MUXER) {
				rc = an_mss_recv(&c->mss, c->plain_in.data, c->plain_in.len, &used,
						 &c->plain_out);
				an_buf_consume(&c->plain_in, used);
				if (rc < 0)
					return fail_layer(c, rc, "multistream", an_mss_reason(&c->mss));
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
					encrypt_out(c);
					return fail_layer(c, rc, "yamux", why);
				}
				if (used > 0)
					moved = true;
				if (c->plain_in.len > 0 && used == 0) {
					/* yamux wants its answers flushed first */
					size_t before = c->plain_out.len;
					an_yamux_send(c->yamux, &c->plain_out);
					rc = encrypt_out(c);
					if (rc < 0)
						return rc;
					if (c->plain_out.len == before)
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
	size_t room = an_conn_input_room(c);
	if (len > room)
		len = room;
	if (len) {
		int rc = an_buf_append(&c->raw_in, in, len);
		if (rc < 0)
			return fail_layer(c, rc, "conn", NULL);
		*consumed = len;
	}
	return process(c, now_ms);
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
			encrypt_out(c);
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
	if (c->yamux) {
		int rc = an_yamux_send(c->yamux, &c->plain_out);
		if (rc < 0 && rc != AN_ETOOBIG) {
			const char *why = NULL;
			an_yamux_error(c->yamux, &why);
			encrypt_out(c);
			return fail_layer(c, rc, "yamux", why);
		}
	}
	if (c->noise && an_noise_established(c->noise)) {
		int rc = encrypt_out(c);
		if (rc < 0)
			return rc;
	}
	return process(c, now_ms);
}

void an_conn_output(const struct an_conn *c, const uint8_t **p, size_t *len)
{
	*p = c->raw_out.data;
	*len = c->raw_out.len;
}

void an_conn_output_consume(struct an_conn *c, size_t n)
{
	an_buf_consume(&c->raw_out, n);
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
	int rc = encrypt_out(c);
	if (rc < 0)
		return rc;
	rc = an_yamux_stream_write(c->yamux, id, p, n, &c->plain_out, accepted);
	if (rc == AN_ETOOBIG)
		rc = 0; /* out is full: a short write */
	if (rc < 0)
		return rc;
	return encrypt_out(c);
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
	return c->state == AN_CONN_ESTABLISHED ? &c->rkey : NULL;
}

int an_conn_error(const struct an_conn *c, const char **reason)
{
	if (reason)
		*reason = c->reason;
	return c->err;
}
