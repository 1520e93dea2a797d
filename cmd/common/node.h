/*
 * node.h - the DHT "backend" every program shares: the daemon's control
 * socket when an `an-dht daemon` answers in the state directory, else an
 * in-process Kademlia node (on a host of its own, or on one the caller
 * already runs, such as an-serve's), bootstrapped from the options'
 * list, else $AN_BOOTSTRAP, else STATEDIR/config.
 *
 * Nothing here prints or exits: functions return 0 or a negative code
 * (util/error.h) and, where detail helps, fill the caller's error text.
 *
 * Every operation is asynchronous underneath (it runs in the loop of the
 * node's host, or in the loop of the daemon client), and each has a
 * blocking form that runs that loop until the answer or the deadline.
 * Running the loop means an in-process node on a caller's host keeps
 * serving the caller's streams while a blocking call waits; a daemon call
 * also goes through the loop (a non-blocking control client), so it does
 * not stall the caller's other watchers either.
 *
 * Daemon protocol (control.h): put is {"cmd":"put","record":R,"root":ROOT?}
 * answered with results [{"key","stored","peers"}] and a code; get is
 * {"cmd":"get","key":K,"rootValue":"<root record text>"?}; providers is
 * {"cmd":"providers","key":"<multihash text>"}.
 */
#ifndef AN_CLI_NODE_H
#define AN_CLI_NODE_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "transport/host.h"

#define AN_NODE_MAX_BOOTSTRAP 16
#define AN_NODE_STATUS_TIMEOUT_MS 2000 /* how long the daemon probe waits */

struct an_node_options {
	const char *statedir;          /* borrowed; resolved directory (see an_node_state_dir) */
	const char *keyfile;           /* borrowed; identity of an own host (NULL: ephemeral) */
	const char *const *bootstrap;  /* borrowed; n_bootstrap text multiaddrs (may be 0) */
	size_t n_bootstrap;
	const char *protocol;          /* kad protocol; NULL: $AN_KAD_PROTOCOL, else the default */
	int timeout_ms;                /* bootstrap deadline and default deadline of each call */
	struct an_host *host;          /* borrowed, may be NULL: run the in-process node on it */
	bool server;                   /* in-process node in DHT server mode (default client) */
	bool no_daemon;                /* never use the daemon, even when one answers */
	const char *agent;             /* identify agentVersion of an own host (borrowed) */
	an_host_log_fn log;            /* failure reasons of the node and an own host; NULL drops */
	void *log_arg;
};

struct an_node;    /* opaque */
struct an_node_op; /* one asynchronous operation under way */

/*
 * The state directory: dir when not NULL, else $AN_STATE_DIR, else
 * $XDG_STATE_HOME/alternet, else ~/.local/state/alternet.  Returned
 * pointer is dir, the environment's, or storage made once a process and
 * kept until exit (borrowed); never truncated, so a path too long for the
 * system fails where it is used (an_node_make_dir: -ENAMETOOLONG) instead
 * of naming another directory.  NULL only when out of memory
 * (an_node_make_dir(NULL) is -ENOMEM).
 */
const char *an_node_state_dir(const char *dir);

/*
 * mkdir -p path with mode 0700, then check the last directory is private:
 * writable by group or others, or not ours, is AN_EDIRPERM (refused);
 * readable by others is fixed to 0700 with a warning on stderr.  0 or a
 * negative code (-ENAMETOOLONG from 4096 bytes on, -ENOTDIR).
 */
int an_node_make_dir(const char *path);

/*
 * Open the backend: probe the daemon's control socket (unless no_daemon);
 * without one, create the state directory, load the key (own host only),
 * start an in-process node (on o->host if given, else on a new host in
 * ev_default_loop) and bootstrap it within o->timeout_ms when any
 * bootstrap address is known or the routing snapshot has peers (a
 * bootstrap that finds nobody is not an error: later calls say
 * AN_ENOTFOUND).  o is copied (its strings stay borrowed).  *out is new:
 * an_node_close.  Errors: AN_EMALFORMED (a bootstrap address), key load
 * codes, -errno; err (may be NULL, errcap bytes) says what failed.
 */
int an_node_open(const struct an_node_options *o, struct an_node **out, char *err, size_t errcap);

/*
 * Let pending requests leave (ADD_PROVIDER, corrections; up to 1 s),
 * stop the node, shut down and free an own host and key.  A caller's host
 * is left running.  NULL-safe.
 */
void an_node_close(struct an_node *n);

/*
 * The node's AutoNAT service (nat/autonat.h; borrowed, valid until
 * an_node_close): an_autonat_reachability and an_autonat_table say whether
 * each of our addresses is publicly reachable.  NULL with a daemon or with
 * AN_AUTONAT=off.
 */
struct an_autonat;
struct an_autonat *an_node_autonat(const struct an_node *n);

/* True when calls go to a daemon. */
bool an_node_is_daemon(const struct an_node *n);

/* The control socket path (borrowed), "" without a daemon. */
const char *an_node_daemon_socket(const struct an_node *n);

/* The loop calls run in (borrowed). */
struct ev_loop *an_node_loop(const struct an_node *n);

/* Known bootstrap addresses at open, and peers in the routing table now (0 with a daemon). */
size_t an_node_bootstrap_count(const struct an_node *n);
size_t an_node_peer_count(const struct an_node *n);

/*
 * Callback of an asynchronous call, exactly once, from the loop, unless
 * cancelled.  err 0 or a negative code (-ETIMEDOUT past the deadline,
 * AN_ENOTFOUND, daemon errors as the daemon coded them).  result is
 * borrowed for the call: get, the record (a JSON object); providers, an
 * array of {"peerId","peerHash","addrs"}; put, {"key","stored"}.  stored
 * is how many peers stored a put (0 for other calls).
 */
typedef void (*an_node_done_fn)(void *arg, int err, const json_t *result, size_t stored);

/*
 * Start a put of rec (borrowed, copied; a signed record that names its
 * own DHT key in "lookup") with root (borrowed, copied, may be NULL: the
 * subdomain's root record).  As our own record (the node announces us as
 * a provider of the bare name).  A record refused before anything is
 * sent (validation) is returned as an error; done is then never called.
 * timeout_ms 0: the open's.  *op (may be NULL) for an_node_op_cancel.
 * A put nobody stored is err 0 with stored 0 (the daemon's AN_ENOTFOUND
 * "no peer stored the record" is mapped to that too).
 */
int an_node_put_start(struct an_node *n, const json_t *rec, const json_t *root, int timeout_ms,
		      an_node_done_fn done, void *arg, struct an_node_op **op);

/* Start a get of key (borrowed; "/an/<hash>@<fqdn>"), a subdomain checked against root. */
int an_node_get_start(struct an_node *n, const char *key, const json_t *root, int timeout_ms,
		      an_node_done_fn done, void *arg, struct an_node_op **op);

/* Start a provider lookup for a bare name fqdn (its /an-name/ multihash key). */
int an_node_providers_start(struct an_node *n, const char *fqdn, int timeout_ms,
			    an_node_done_fn done, void *arg, struct an_node_op **op);

/* Cancel op: done is never called.  NULL-safe; not after done ran. */
void an_node_op_cancel(struct an_node_op *op);

/*
 * Blocking forms: run the loop until the answer (at most the deadline).
 * put: *stored (may be NULL) is how many peers stored it.  get: *rec new
 * (AN_ENOTFOUND when no valid record).  providers: *list new (an array,
 * maybe empty; 0).
 */
int an_node_put(struct an_node *n, const json_t *rec, const json_t *root, size_t *stored);
int an_node_get(struct an_node *n, const char *key, const json_t *root, json_t **rec);
int an_node_providers(struct an_node *n, const char *fqdn, json_t **list);

#endif
