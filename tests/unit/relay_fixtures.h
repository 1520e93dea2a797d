/*
 * Fixtures shared by the relay unit tests (test_relay_client.c,
 * test_relay_dial.c, test_relay_server.c): a host's dialable address, and
 * the result of a dial with a ping on the connection it gave.  Header-only
 * (static, static inline) like fixtures.h, since each test is its own
 * program; include fixtures.h first.
 */
#ifndef AN_TESTS_RELAY_FIXTURES_H
#define AN_TESTS_RELAY_FIXTURES_H

#include "crypto/peerid.h"
#include "transport/host.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/*
 * h's first listen address with /p2p/<h's peer ID> into out (caller's, cap
 * bytes); an empty string when it does not fit (a dial to it then fails as
 * malformed).
 */
static inline void rfx_host_addr(const struct an_host *h, char *out, size_t cap)
{
	const char *addrs[1] = {""};
	char id[AN_PEERID_TEXT_MAX];
	an_host_addrs(h, addrs, 1);
	an_peerid_format(an_host_peer_id(h), id, sizeof(id));
	if ((size_t)snprintf(out, cap, "%s/p2p/%s", addrs[0], id) >= cap)
		out[0] = '\0';
}

/* What a dial (rfx_dial_cb) and then a ping on its connection (rfx_ping_cb) gave. */
struct rfx_dial {
	bool done;
	int err;
	struct an_host_conn *conn; /* borrowed from the host */
	bool pinged;
	int ping_err;
};

/* an_host_dial_fn (and the dial callbacks of the relay API): arg is a struct rfx_dial. */
static inline void rfx_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct rfx_dial *d = arg;
	d->done = true;
	d->err = err;
	d->conn = c;
}

/* The an_ping_once callback: arg is a struct rfx_dial. */
static inline void rfx_ping_cb(void *arg, int err, uint64_t rtt_ms)
{
	(void)rtt_ms;
	struct rfx_dial *d = arg;
	d->pinged = true;
	d->ping_err = err;
}

#endif
