/* kad_service.c - inbound kad streams answered by kad_server, their memory
   budget, and the store behind kad_server. */
#include "dht/kad_node_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dht/claim.h"
#include "dht/distance.h"
#include "dht/kad_msg.h"
#include "dht/lookup.h"
#include "dht/validate.h"
#include "encoding/protobuf.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"
#include "util/file.h"

/* ---------------------------------------------------------------------- */
/* Inbound streams: requests answered by kad_server.                        */


/*
 * May b hold new_len bytes of a request?  Past AN_KAD_NODE_IN_SMALL the
 * whole buffer is charged to the node's budget, and only one stream of a
 * connection may be large at a time (kad_node.h).
 */
static bool inbound_may_hold(struct inbound *b, size_t new_len)
{
	struct an_kad_node *n = b->node;
	size_t want = new_len > AN_KAD_NODE_IN_SMALL ? new_len : 0;
	if (want <= b->large)
		return true;
	if (!b->large)
		for (const struct inbound *o = n->ins; o; o = o->next)
			if (o != b && o->large && an_stream_conn(o->s) == an_stream_conn(b->s))
				return false;
	if (n->in_large - b->large + want > AN_KAD_NODE_IN_BUDGET)
		return false;
	n->in_large = n->in_large - b->large + want;
	b->large = want;
	return true;
}

/* b's buffer drained to small: give its charge back (and its memory). */
static void inbound_release(struct inbound *b)
{
	if (b->in.len > AN_KAD_NODE_IN_SMALL)
		return;
	b->node->in_large -= b->large;
	b->large = 0;
	an_buf_shrink(&b->in, AN_KAD_NODE_IN_SMALL);
}

static void inbound_idle(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct inbound *b = w->data;
	ev_timer_stop(loop, w);
	an_stream_reset(b->s);
}

static void inbound_open(struct an_stream *s, void *arg)
{
	struct an_kad_node *n = arg;
	struct inbound *b;
	/*
	 * No kad over a relayed (limited) connection: js-libp2p does not run
	 * kad-dht on limited connections and a relay's data limit would cut
	 * it anyway; the peer uses a direct connection or another peer.
	 */
	if (an_host_conn_relayed(an_stream_conn(s))) {
		an_stream_reset(s);
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b || n->closed) {
		free(b);
		an_stream_reset(s);
		return;
	}
	b->node = n;
	b->s = s;
	an_buf_init(&b->in, AN_KAD_MSG_MAX_DEFAULT + 16);
	ev_timer_init(&b->idle, inbound_idle, AN_KAD_NODE_IDLE_MS / 1000.0, 0);
	b->idle.data = b;
	ev_timer_start(n->loop, &b->idle);
	b->next = n->ins;
	if (n->ins)
		n->ins->prev = b;
	n->ins = b;
	n->refs++;
	an_stream_set_user(s, b);
}

static void inbound_data(struct an_stream *s, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	struct inbound *b = an_stream_user(s);
	struct an_kad_node *n;
	if (!b)
		return;
	n = b->node;
	if (!inbound_may_hold(b, b->in.len + len)) {
		kad_log(n, "kad: large request refused (one a connection, %u MiB in all)",
			 (unsigned)(AN_KAD_NODE_IN_BUDGET >> 20));
		an_stream_reset(s);
		return;
	}
	if (an_buf_append(&b->in, p, len) < 0) {
		kad_log(n, "kad: request over %u bytes", (unsigned)AN_KAD_MSG_MAX_DEFAULT);
		an_stream_reset(s);
		return;
	}
	for (;;) {
		const uint8_t *msg;
		size_t msg_len, used;
		struct an_kad_msg req;
		struct an_buf resp;
		const char *why = NULL;
		int rc = an_lp_get(b->in.data, b->in.len, AN_KAD_MSG_MAX_DEFAULT, &msg, &msg_len, &used);
		if (rc == AN_EAGAIN)
			return;
		if (rc == 0)
			rc = an_kad_msg_decode(msg, msg_len, AN_KAD_MSG_MAX_DEFAULT, &req);
		if (rc < 0) {
			kad_log(n, "kad: malformed request: %s", an_strerror(rc));
			an_stream_reset(s);
			return;
		}
		ev_timer_stop(n->loop, &b->idle);
		ev_timer_set(&b->idle, AN_KAD_NODE_IDLE_MS / 1000.0, 0);
		ev_timer_start(n->loop, &b->idle);
		an_buf_init(&resp, AN_KAD_MSG_SEND_MAX + 16);
		kad_refresh_self_addrs(n);
		rc = an_kad_server_handle(&n->srv, an_host_conn_peer(an_stream_conn(s)), &req,
					  now_ms(n), &resp, &why);
		an_kad_msg_free(&req);
		if (rc == 0) {
			struct an_buf framed;
			an_buf_init(&framed, AN_KAD_MSG_SEND_MAX + 16);
			rc = an_lp_put(&framed, resp.data, resp.len);
			if (rc == 0)
				rc = an_stream_write(s, framed.data, framed.len);
			an_buf_free(&framed);
		}
		an_buf_free(&resp);
		if (rc < 0) {
			kad_log(n, "kad: request refused: %s%s%s", an_strerror(rc), why ? ": " : "",
				 why ? why : "");
			an_stream_reset(s);
			return;
		}
		an_buf_consume(&b->in, used);
		inbound_release(b);
	}
}

static void inbound_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	an_stream_close_write(s);
}

static void inbound_close(struct an_stream *s, int err, void *arg)
{
	(void)arg; (void)err;
	struct inbound *b = an_stream_user(s);
	struct an_kad_node *n;
	if (!b)
		return;
	n = b->node;
	ev_timer_stop(n->loop, &b->idle);
	if (b->prev)
		b->prev->next = b->next;
	else if (n->ins == b)
		n->ins = b->next;
	if (b->next)
		b->next->prev = b->prev;
	n->in_large -= b->large;
	an_buf_free(&b->in);
	free(b);
	kad_node_unref(n);
}

const struct an_stream_handler kad_inbound_handler = {
	.on_open = inbound_open,
	.on_data = inbound_data,
	.on_eof = inbound_eof,
	.on_close = inbound_close,
};

/* ---- the store behind kad_server (ms -> s, key caps 512 -> 511) ---- */

int kad_ops_get(void *arg, const uint8_t *key, size_t key_len, struct an_buf *value,
		   char when[AN_KAD_TIME_LEN + 1], uint64_t ms)
{
	(void)ms;
	struct an_kad_node *n = arg;
	struct an_store_record r;
	int rc;
	if (key_len > AN_VALIDATE_KEY_MAX || an_validate_namespace(key, key_len) == AN_NS_UNKNOWN)
		return AN_ENOTFOUND;
	an_store_record_init(&r);
	rc = an_store_get(n->store, key, key_len, now_s(), &r);
	if (rc == 0)
		rc = an_buf_append(value, r.value.data, r.value.len);
	if (rc == 0 && an_kad_time_format(r.time_received, 0, when) < 0)
		when[0] = 0;
	an_store_record_free(&r);
	return rc;
}

int kad_ops_put(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
		   size_t value_len, uint64_t ms)
{
	(void)ms;
	struct an_kad_node *n = arg;
	struct an_store_put p = {.key = key, .key_len = key_len, .value = value, .value_len = value_len};
	struct an_record_error e = {{0}, {0}};
	int rc;
	if (key_len > AN_VALIDATE_KEY_MAX)
		return AN_ETOOBIG;
	rc = an_store_put(n->store, &p, now_s(), NULL, &e);
	if (rc < 0 && rc != AN_ESTALE)
		kad_log(n, "kad: PUT_VALUE refused: %s%s%s", an_strerror(rc), e.message[0] ? ": " : "",
			 e.message);
	return rc;
}

/* cfg's claim bits, else $AN_CLAIM_BITS, else the default; capped. */
unsigned kad_claim_bits(const struct an_kad_node_config *cfg)
{
	const char *env = getenv("AN_CLAIM_BITS");
	unsigned long b = AN_CLAIM_BITS_DEFAULT;
	char *end;
	if (cfg->claim_bits)
		b = cfg->claim_bits;
	else if (env && *env) {
		b = strtoul(env, &end, 10);
		if (*end)
			b = AN_CLAIM_BITS_DEFAULT;
	}
	return b > AN_CLAIM_BITS_MAX ? AN_CLAIM_BITS_MAX : (unsigned)b;
}

int kad_ops_add_provider(void *arg, const uint8_t *key, size_t key_len,
			    const struct an_kad_provider *p, uint64_t ms)
{
	(void)ms;
	struct an_kad_node *n = arg;
	return an_store_provider_claim(n->store, key, key_len, &p->id, p->addrs, p->naddrs,
				       p->verified, p->work, now_s());
}

int kad_ops_get_providers(void *arg, const uint8_t *key, size_t key_len,
			     struct an_kad_provider *out, size_t cap, uint64_t ms)
{
	(void)ms;
	struct an_kad_node *n = arg;
	struct an_store_provider ps[AN_KAD_SERVER_PROVIDERS_MAX];
	size_t np = 0;
	int rc;
	if (cap > AN_KAD_SERVER_PROVIDERS_MAX)
		cap = AN_KAD_SERVER_PROVIDERS_MAX;
	rc = an_store_providers_get(n->store, key, key_len, now_s(), ps, cap, &np);
	if (rc < 0)
		return rc == AN_EMALFORMED ? 0 : rc;
	for (size_t i = 0; i < np; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].id = ps[i].id;
		for (size_t a = 0; a < ps[i].naddrs && a < AN_RT_ADDRS_MAX; a++)
			out[i].addrs[out[i].naddrs++] = ps[i].addrs[a];
	}
	return (int)np;
}

/* get_root of the validator: the store's live value. */
int kad_store_root_get(void *arg, const uint8_t *key, size_t key_len, struct an_buf *out)
{
	struct an_kad_node *n = arg;
	struct an_store_record r;
	int rc;
	an_store_record_init(&r);
	rc = an_store_get(n->store, key, key_len, now_s(), &r);
	if (rc == 0)
		rc = an_buf_append(out, r.value.data, r.value.len);
	an_store_record_free(&r);
	return rc;
}
