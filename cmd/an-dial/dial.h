/*
 * dial.h - what an-dial's fetch mode and its gateway share: one host to
 * dial sites from, the name backend (daemon or in-process node, opened on
 * first use), and sites: a resolved name plus a live connection to its
 * publisher, cached and reused.
 *
 * Security of the scheme: every address of a record is dialed with
 * /p2p/<the record's publisher>, so the Noise handshake fails (AN_EMISMATCH)
 * unless the node there holds the publisher's key; --connect-to keeps that
 * check (the peer ID of the address, or of the URL, must hash to the URL's
 * peer hash).
 */
#ifndef AN_DIAL_DIAL_H
#define AN_DIAL_DIAL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "crypto/key.h"
#include "node.h"
#include "resolve.h"
#include "transport/host.h"

#define DIAL_MAX_BOOTSTRAP 16
#define DIAL_RECORD_CACHE_S 60.0  /* how long a resolved record is reused */
#define DIAL_FAIL_CACHE_S 5.0     /* how long a failure is answered from cache */
#define DIAL_SITES_MAX 256        /* sites cached (least recently used evicted) */
#define DIAL_LOOKUPS_MAX 64       /* sites resolving or connecting at once (more: AN_ELIMIT) */
#define DIAL_WHY_MAX 512

struct dial_cfg {
	const char *statedir;   /* resolved state directory (borrowed) */
	const char *keyfile;    /* our identity (NULL: ephemeral) */
	const char *protocol;   /* kad protocol ID */
	const char *bootstrap[DIAL_MAX_BOOTSTRAP];
	size_t n_bootstrap;
	const char *connect_to; /* skip resolution: dial this multiaddr */
	int timeout_ms;         /* resolution, each connection attempt, response head, stalls */
	bool repin;             /* every resolution may replace a pin (single requests only) */
	bool verbose;           /* say which address is tried */
};

struct site;

struct dial {
	struct ev_loop *loop;
	struct dial_cfg cfg;
	struct an_privkey *key;
	struct an_host *host;
	struct an_node *node;   /* NULL until the first resolution */
	bool node_opening;      /* an_node_open runs (its bootstrap runs the loop) */
	struct site *sites;     /* the cache, most recently used first */
	size_t n_sites;         /* in the cache (<= DIAL_SITES_MAX) */
	size_t n_busy;          /* of them resolving or connecting (<= DIAL_LOOKUPS_MAX) */
	struct site_wait *refused; /* waits answered without a site, from refuse_kick */
	ev_timer refuse_kick;
};

/* Set up the host (in ev_default_loop).  0 or a code; messages printed. */
int dial_init(struct dial *d, const struct dial_cfg *cfg);

/* Free sites, node, host, key.  NULL-safe fields. */
void dial_free(struct dial *d);

/*
 * Waiting for a site: embed in the request that waits.  cb is called
 * once with err 0 and a live connection (borrowed; ref it to keep it) or
 * an error (AN_ENOTFOUND, AN_EPINNED, AN_EMISMATCH, AN_ELIMIT when the
 * cache or the lookups are full, -ECONNREFUSED, -ETIMEDOUT, ...), with
 * the detail in w->why (this wait's own copy).
 *
 * Pins: set pin before site_get when the request is a person's intent
 * (an-dial's command line, a navigation the user made in the gateway):
 * the site's root name is then pinned to its peer hash if it has no pin.
 * Without it the site is only shown: resolved and served, nothing
 * written.  Either way a pin for another peer hash refuses the site
 * (AN_EPINNED), checked again each time the cached site is used.
 */
struct site_wait;
typedef void (*site_ready_fn)(struct site_wait *w, int err, struct an_host_conn *c);
struct site_wait {
	site_ready_fn cb;
	bool pin;                  /* set by the caller: may pin on first use */
	struct site_wait *next;
	struct site *site;         /* waited on (internal) */
	struct dial *dial;         /* (internal) */
	char why[DIAL_WHY_MAX];    /* filled with the detail of an error */
};

/*
 * Get a connection to name's publisher: from the cache, or resolve and
 * dial.  w->cb is called from the loop, never from inside this call.
 */
void site_get(struct dial *d, const struct an_name *name, struct site_wait *w);

/* Stop waiting (the callback will not be called).  Safe after the callback. */
void site_wait_cancel(struct site_wait *w);

/* Forget name's cached connection (after a failed request on it). */
void site_forget(struct dial *d, const struct an_name *name);

/* The peer hash of name: resolved from its pin for a bare name (borrowed). */
const char *site_peerhash(struct dial *d, const struct an_name *name);

/* ---- fetch mode (fetch.c) and the gateway (gateway.c) ---- */

struct fetch_opts {
	const char *url;
	const char *output;      /* -o FILE, NULL: stdout */
	const char *method;      /* NULL: GET, or POST with data */
	const char *data;        /* -d: literal, @FILE or - (stdin) */
	const char *headers[32]; /* -H "Name: value" */
	size_t n_headers;
	bool include;            /* -i */
	bool silent;             /* -s */
};

/* One request: returns the exit status (messages printed). */
int fetch_run(struct dial *d, const struct fetch_opts *o);

#define GW_MAX_HOSTS 16

struct gateway_opts {
	const char *listen; /* [ADDR:]PORT */
	bool public;        /* allow a non-loopback bind */
	int max_clients;
	/* Host names the gateway answers besides loopback literals, localhost
	 * and *.localhost (--gateway-host; borrowed) */
	const char *hosts[GW_MAX_HOSTS];
	size_t n_hosts;
};

/* Serve until SIGINT/SIGTERM: returns the exit status. */
int gateway_run(struct dial *d, const struct gateway_opts *o);

#endif
