/*
 * relay_dial.c - dialing through a relay (see relay_dial.h).
 *
 * One struct rdial per dial, alive while exactly one step is under way:
 * the dial of the relay, the CONNECT, or the upgrade over the circuit.
 * Each step is given what is left of the one deadline, and each reports
 * exactly once (an_host_dial, an_relay_connect and
 * an_host_conn_over_stream all promise that), so no timer of our own is
 * needed except to defer the report of a reused connection.
 */
#include "relay/relay_dial.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/circuit.h"
#include "relay/relay_client.h"
#include "util/error.h"

#define CIRCUIT "/p2p-circuit"

struct rdial {
	struct an_host *h;
	an_host_dial_fn cb;
	void *arg;
	struct an_peerid target;
	uint64_t deadline_ms;
	struct an_host_conn *reuse; /* referenced until the deferred report */
	ev_timer later;
};

bool an_relay_addr_is_circuit(const char *maddr)
{
	return strstr(maddr, CIRCUIT) != NULL;
}

int an_relay_addr_split(const char *maddr, char *relay, size_t cap, struct an_peerid *target)
{
	const char *c = strstr(maddr, CIRCUIT);
	const char *t;
	size_t n;
	if (!c || strstr(c + 1, CIRCUIT))
		return AN_EMALFORMED; /* none, or a circuit through a circuit */
	t = c + strlen(CIRCUIT);
	if (strncmp(t, "/p2p/", 5) != 0 || an_peerid_parse(t + 5, target) < 0)
		return AN_EMALFORMED;
	n = (size_t)(c - maddr);
	/* the relay part must name its relay: .../p2p/RELAY right before /p2p-circuit */
	const char *p2p = NULL;
	for (const char *q = maddr; (q = strstr(q, "/p2p/")) && q < c; q++)
		p2p = q;
	if (!p2p || n == 0)
		return AN_EMALFORMED;
	if (n >= cap)
		return AN_ETOOBIG;
	memcpy(relay, maddr, n);
	relay[n] = '\0';
	return 0;
}

int an_relay_circuit_name(struct an_host_conn *relay_conn, char *out, size_t cap)
{
	char id[AN_PEERID_TEXT_MAX];
	if (an_peerid_format(an_host_conn_peer(relay_conn), id, sizeof(id)) < 0)
		return AN_ETOOBIG;
	int n = snprintf(out, cap, "%s/p2p/%s" CIRCUIT, an_host_conn_remote_addr(relay_conn), id);
	return n < 0 || (size_t)n >= cap ? AN_ETOOBIG : 0;
}

/* Report once and free. */
static void finish(struct rdial *d, struct an_host_conn *c, int err)
{
	d->cb(d->h, err < 0 ? NULL : c, err, d->arg);
	free(d);
}

/* Milliseconds left, or 0 when the deadline passed. */
static int left_ms(const struct rdial *d)
{
	uint64_t now = an_host_now_ms(d->h);
	return now >= d->deadline_ms ? 0 : (int)(d->deadline_ms - now);
}

static int status_err(uint32_t status)
{
	switch (status) {
	case AN_RELAY_NO_RESERVATION:
	case AN_RELAY_CONNECTION_FAILED:
	case AN_RELAY_PERMISSION_DENIED:
		return -ECONNREFUSED;
	case AN_RELAY_RESOURCE_LIMIT_EXCEEDED:
		return AN_ELIMIT;
	default:
		return AN_EPROTO;
	}
}

static void upgraded_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	finish(arg, c, err);
}

/* The relay put us through: Noise + yamux over the circuit, as initiator. */
static void connect_cb(void *arg, int err, uint32_t status, struct an_stream *s,
		       const struct an_relay_limit *limit)
{
	(void)limit;
	struct rdial *d = arg;
	const struct an_stream_handler *handler;
	void *handler_arg;
	char name[AN_HOST_ADDR_TEXT_MAX];
	int rc, left;
	if (err < 0 || status != AN_RELAY_OK) {
		finish(d, NULL, err < 0 ? err : status_err(status));
		return;
	}
	left = left_ms(d);
	rc = left ? an_relay_circuit_name(an_stream_conn(s), name, sizeof(name)) : -ETIMEDOUT;
	if (rc == 0)
		rc = an_host_conn_over_stream(d->h, s, true, &d->target, name, left, upgraded_cb, d,
					      &handler, &handler_arg);
	if (rc < 0) {
		an_stream_reset(s);
		finish(d, NULL, rc);
		return;
	}
	an_relay_stream_redirect(s, handler, handler_arg);
}

static void relay_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct rdial *d = arg;
	int left = left_ms(d);
	if (err == 0 && !left)
		err = -ETIMEDOUT;
	if (err == 0)
		err = an_relay_connect(c, &d->target, left, connect_cb, d, NULL, NULL);
	if (err < 0)
		finish(d, NULL, err);
}

static void later_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct rdial *d = (struct rdial *)((char *)w - offsetof(struct rdial, later));
	struct an_host_conn *c = d->reuse;
	bool alive = an_host_conn_alive(c);
	an_host_conn_ref(c); /* across the callback: finish frees d, not c */
	an_host_conn_unref(d->reuse);
	finish(d, c, alive ? 0 : AN_ECLOSED);
	an_host_conn_unref(c);
}

/* An established connection to id (direct or relayed), or NULL. */
static struct an_host_conn *find_conn(struct an_host *h, const struct an_peerid *id)
{
	struct an_host_conn *conns[64];
	size_t n = an_host_conns(h, conns, 64);
	for (size_t i = 0; i < n; i++)
		if (an_host_conn_alive(conns[i]) && an_peerid_equal(an_host_conn_peer(conns[i]), id))
			return conns[i];
	return NULL;
}

int an_relay_dial(struct an_host *h, const char *maddr, int timeout_ms, an_host_dial_fn cb,
		  void *arg)
{
	char relay[AN_HOST_ADDR_TEXT_MAX];
	struct an_peerid target;
	struct rdial *d;
	int rc;
	if (!an_relay_addr_is_circuit(maddr))
		return an_host_dial(h, maddr, timeout_ms, cb, arg);
	if ((rc = an_relay_addr_split(maddr, relay, sizeof(relay), &target)) < 0)
		return rc == AN_ETOOBIG ? AN_EMALFORMED : rc;
	if (an_peerid_equal(&target, an_host_peer_id(h)))
		return -EINVAL; /* dialing ourselves, as an_host_dial */
	if (!(d = calloc(1, sizeof(*d))))
		return -ENOMEM;
	d->h = h;
	d->cb = cb;
	d->arg = arg;
	d->target = target;
	d->deadline_ms = an_host_now_ms(h) +
			 (uint64_t)(timeout_ms > 0 ? timeout_ms : AN_HOST_DEFAULT_HANDSHAKE_MS);
	if ((d->reuse = find_conn(h, &target))) {
		an_host_conn_ref(d->reuse);
		ev_timer_init(&d->later, later_cb, 0., 0.);
		ev_timer_start(an_host_loop(h), &d->later);
		return 0;
	}
	rc = an_host_dial(h, relay, left_ms(d), relay_cb, d);
	if (rc < 0)
		free(d);
	return rc;
}
