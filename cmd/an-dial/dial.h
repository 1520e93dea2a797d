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

struct dial_cfg {
	const char *statedir;   /* resolved state directory (borrowed) */
	const char *keyfile;    /* our identity (NULL: ephemeral) */
	const char *protocol;   /* kad protocol ID */
	const char *bootstrap[DIAL_MAX_BOOTSTRAP];
	size_t n_bootstrap;
	const char *connect_to; /* skip resolution: dial this multiaddr */
	int timeout_ms;         /* resolution, each connection attempt, response head, stalls */
	bool repin;
	bool verbose;           /* say which address is tried */
};

struct site;

struct dial {
	struct ev_loop *loop;
	struct dial_cfg cfg;
	struct an_privkey *key;
	struct an_host *host;
	struct an_node *node;   /* NULL until the first resolution */
	struct site *sites;     /* the cache */
	char last_err[512];     /* detail of the last site failure */
};

/* Set up the host (in ev_default_loop).  0 or a code; messages printed. */
int dial_init(struct dial *d, const struct dial_cfg *cfg);

/* Free sites, node, host, key.  NULL-safe fields. */
void dial_free(struct dial *d);

/*
 * Waiting for a site: embed in the request that waits.  cb is called
 * once with err 0 and a live connection (borrowed; ref it to keep it) or
 * an error (AN_ENOTFOUND, AN_EPINNED, AN_EMISMATCH, -ECONNREFUSED,
 * -ETIMEDOUT, ...), detail in dial.last_err.
 */
struct site_wait;
typedef void (*site_ready_fn)(struct site_wait *w, int err, struct an_host_conn *c);
struct site_wait {
	site_ready_fn cb;
	struct site_wait *next;
	struct site *site;
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

struct gateway_opts {
	const char *listen; /* [ADDR:]PORT */
	bool public;        /* allow a non-loopback bind */
	int max_clients;
};

/* Serve until SIGINT/SIGTERM: returns the exit status. */
int gateway_run(struct dial *d, const struct gateway_opts *o);

#endif
