/* dht.h - what the an-dht subcommands share. */
#ifndef AN_DHT_CMD_H
#define AN_DHT_CMD_H

#include <jansson.h>
#include <stdbool.h>

#include "crypto/key.h"
#include "transport/host.h"

#define DHT_DEFAULT_TIMEOUT_MS 10000
#define DHT_MAX_LISTEN 8
#define DHT_MAX_BOOTSTRAP 16

struct dht_opts {
	const char *keyfile;
	const char *statedir;
	long long timeout_ms;
	long count;
	const char *listen[DHT_MAX_LISTEN];
	int n_listen;
	const char *announce[AN_HOST_MAX_ANNOUNCE];
	int n_announce;
	struct an_host_limits limits;
	bool quiet;
	const char *bootstrap[DHT_MAX_BOOTSTRAP]; /* --bootstrap (kad.c) */
	int n_bootstrap;
	const char *protocol; /* --protocol: the kad protocol ID */
	bool client;          /* --client: DHT client mode */
	bool force;           /* republish --force */
	unsigned claim_bits;  /* --claim-bits: work of a bare-name claim; 0: default */
	char **args; /* positional arguments after the options */
	int n_args;
};

/* A network query (ping, id) run on a host: result lines, then done. */
struct dht_job;
typedef void (*dht_line_fn)(void *arg, json_t *line);             /* steals line */
typedef void (*dht_done_fn)(void *arg, int err, const char *msg); /* err 0: ok */

/*
 * Start cmd ("ping" or "id") against addr on h.  Callbacks come from the
 * loop, done exactly once unless dht_job_cancel is called first.
 */
int dht_job_start(struct an_host *h, const char *cmd, const char *addr, long count, int timeout_ms,
		  dht_line_fn line, dht_done_fn done, void *arg, struct dht_job **out);
void dht_job_cancel(struct dht_job *j);

/* The state directory from -s, $AN_STATE_DIR, $XDG_STATE_HOME or ~ (static storage). */
const char *dht_state_dir(const struct dht_opts *o);

/* A host for this process: key from -k (or ephemeral), ping + identify served. */
int dht_host_new(struct ev_loop *loop, const struct dht_opts *o, struct an_privkey **key,
		 struct an_host **h);

/* Subcommands. */
int dht_cmd_daemon(struct dht_opts *o);
int dht_cmd_query(struct dht_opts *o, const char *cmd); /* ping, id */
int dht_cmd_kad(struct dht_opts *o, const char *cmd);   /* put, get, providers, peers, republish, pin, unpin */

/* The DHT in the daemon (kad.c): start it on h, serve its control commands, stop it. */
struct dht_kad;
int dht_kad_start(struct an_host *h, const struct dht_opts *o, const char *statedir,
		  struct dht_kad **out);
/* true if cmd is a DHT command (the call is then answered, now or later). */
struct an_control_call;
bool dht_kad_handle(struct dht_kad *k, struct an_control_call *call, const char *cmd,
		    const json_t *req);
void dht_kad_stop(struct dht_kad *k);
/* The DHT's part of `an-dht status`: {"routingTable","records","republishDue"} (new). */
json_t *dht_kad_status(struct dht_kad *k);
/* an-dht status: the daemon's status as one JSON line. */
int dht_cmd_status(struct dht_opts *o);

#endif
