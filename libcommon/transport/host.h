/*
 * host.h - the libev host: TCP listeners and dialer, the connection manager
 * and its limits, per-connection timers, the protocol handler registry,
 * outbound streams (negotiated with multistream-select), a small peer store
 * and graceful shutdown.
 *
 * Layering: the host only moves bytes.  Every connection is a struct an_conn
 * (conn.h), a sans-I/O pipeline mss -> Noise -> mss -> yamux over "some byte
 * stream"; the host's TCP transport is one such byte stream, a relayed
 * stream (Circuit Relay v2, later) another.  Application protocols (ping,
 * identify, kad, ...) sit above, registering handlers here.
 *
 * Ownership: the host owns its connections and streams.  Handlers get
 * borrowed struct an_stream pointers that stay valid until their on_close
 * callback returns.  Everything runs in the one libev loop given to
 * an_host_new(); nothing here is thread-safe.
 *
 * NAT traversal: when the host listens on TCP, outgoing dials bind to the
 * listen port with SO_REUSEADDR + SO_REUSEPORT, so peers observe one port
 * (identify's observedAddr) and DCUtR can punch with a simultaneous open.
 */
#ifndef AN_TRANSPORT_HOST_H
#define AN_TRANSPORT_HOST_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "crypto/key.h"
#include "crypto/peerid.h"

/*
 * Limits and timers; zero fields take the defaults below.
 *
 * Per remote address: a node is a public server, so what one address can
 * hold is capped below the totals - whatever one address (or one /24 of
 * IPv4, one /64 of IPv6) holds, a peer elsewhere still gets a handshake, a
 * connection and streams.  On loopback (127.0.0.0/8, ::1) every address
 * counts as a network of its own, so tests can attack from 127.0.0.2 while
 * 127.0.0.1 is served.  Connections the peer dialed count (pending and
 * connections); streams the peer opened count on any TCP connection with
 * that address.  Relayed connections (an_host_conn_over_stream) have no
 * address of their own: their carrier stream counted on the relay's.
 * Refused connections are closed at once (and logged one a second, with
 * a count of the rest); a refused stream is reset (logged once a
 * connection).
 */
struct an_host_limits {
	size_t max_conns;            /* established + handshaking */
	size_t max_pending;          /* connections still in their handshake */
	size_t max_per_peer;         /* connections to one peer ID */
	size_t max_streams_per_conn; /* open yamux streams on one connection */
	int handshake_timeout_ms;    /* TCP connect to yamux ready (our dials) */
	int idle_timeout_ms;         /* no stream open and no bytes for this long */
	int negotiate_timeout_ms;    /* one stream's multistream-select */
	/* inbound TCP accept to yamux ready, the whole handshake (never a
	   byte's); 0: handshake_timeout_ms when that is set, else the default */
	int inbound_handshake_timeout_ms;
	size_t max_pending_per_addr; /* inbound handshakes from one address */
	size_t max_pending_per_net;  /* ... from one /24 (IPv4) or /64 (IPv6) */
	size_t max_conns_per_addr;   /* inbound connections from one address */
	size_t max_conns_per_net;
	size_t max_streams_per_addr; /* streams opened by peers at one address, open at once */
	size_t max_streams_per_net;
};

#define AN_HOST_DEFAULT_MAX_CONNS 256
#define AN_HOST_DEFAULT_MAX_PENDING 64
#define AN_HOST_DEFAULT_MAX_PER_PEER 8
#define AN_HOST_DEFAULT_MAX_STREAMS 256
#define AN_HOST_DEFAULT_HANDSHAKE_MS 10000 /* js dial timeout (DIAL_TIMEOUT) */
/*
 * js-libp2p gives an address 6 s for the TCP connect and the whole upgrade
 * (ADDRESS_DIAL_TIMEOUT), so an inbound handshake past that has nobody
 * waiting for it; js's own inbound upgrade timeout is 10 s.
 */
#define AN_HOST_DEFAULT_INBOUND_HANDSHAKE_MS 6000
#define AN_HOST_DEFAULT_IDLE_MS 120000
#define AN_HOST_DEFAULT_NEGOTIATE_MS 10000 /* js stream negotiation timeout */
/* Per address: half of the default totals; per network: three quarters
   (fixed numbers: lower totals bind first). */
#define AN_HOST_DEFAULT_MAX_PENDING_PER_ADDR 32
#define AN_HOST_DEFAULT_MAX_PENDING_PER_NET 48
#define AN_HOST_DEFAULT_MAX_CONNS_PER_ADDR 128
#define AN_HOST_DEFAULT_MAX_CONNS_PER_NET 192
/* an-serve's route server takes 1024 requests at once (route/server.h) */
#define AN_HOST_DEFAULT_MAX_STREAMS_PER_ADDR 512
#define AN_HOST_DEFAULT_MAX_STREAMS_PER_NET 768
#define AN_HOST_MAX_LISTENERS 8
#define AN_HOST_MAX_ANNOUNCE 8
#define AN_HOST_MAX_PROTOCOLS 32
#define AN_HOST_ADDR_TEXT_MAX 256

struct an_host;
struct an_host_conn; /* one connection as the host manages it */
struct an_stream;    /* one negotiated application stream */

/*
 * Log hook: the library never prints, so reasons for closing connections
 * (malformed frames, limits, timeouts) go here; NULL drops them.
 */
typedef void (*an_host_log_fn)(void *arg, const char *msg);

struct an_host_config {
	const struct an_privkey *key; /* borrowed; must outlive the host */
	struct an_host_limits limits;
	const char *agent_version;    /* borrowed (not copied); identify's agentVersion */
	an_host_log_fn log;
	void *log_arg;
	/* Our dials propose /tls/1.0.0 instead of /noise (a listener takes
	   both); relayed connections keep Noise. */
	bool dial_tls;
};

/*
 * A new host in loop (borrowed).  cfg is copied; the key and agent_version
 * stay borrowed and must outlive the host.  *out is new; free with
 * an_host_free.  -EINVAL without a key, -ENOMEM.  No process-wide side
 * effects: programs call an_global_init (util/accept.h) once in main.
 */
int an_host_new(struct ev_loop *loop, const struct an_host_config *cfg, struct an_host **out);

/* Close everything at once (no GoAway), free the host.  NULL-safe. */
void an_host_free(struct an_host *h);

/* Replace the log hook given in the config. */
void an_host_config_log(struct an_host *h, an_host_log_fn log, void *arg);

/* Our peer ID (borrowed from h). */
const struct an_peerid *an_host_peer_id(const struct an_host *h);

/* The host's identity key (borrowed from the config). */
const struct an_privkey *an_host_key(const struct an_host *h);

/* The agent version given in the config (borrowed, may be NULL). */
const char *an_host_agent(const struct an_host *h);

/* The loop the host runs in (borrowed). */
struct ev_loop *an_host_loop(const struct an_host *h);

/*
 * Listen on a TCP multiaddr text (/ip4/A/tcp/P or /ip6/A/tcp/P; port 0 picks
 * one).  AN_EMALFORMED for other addresses, -errno from bind/listen:
 * -EADDRINUSE when something listens on that port already, another host of
 * ours included (listeners set SO_REUSEPORT for the dials below, but the
 * port is probed without it first, so two nodes never share a port).
 */
int an_host_listen(struct an_host *h, const char *maddr);

/* Add an address to announce (not listened on; may be /dns4/...).  Copied. */
int an_host_announce(struct an_host *h, const char *maddr);

/*
 * Our addresses as text, without /p2p: the announced ones when any were
 * given, else the bound listen addresses (port 0 resolved).  Fills up to
 * max pointers into h's storage (borrowed, valid until the next listen or
 * announce call); returns the count.
 */
size_t an_host_addrs(const struct an_host *h, const char **out, size_t max);

/* ---- protocol handlers ---- */

struct an_stream_handler {
	/* The stream is negotiated and usable. */
	void (*on_open)(struct an_stream *s, void *arg);
	/* Bytes from the peer (borrowed for the call). */
	void (*on_data)(struct an_stream *s, const uint8_t *p, size_t n, void *arg);
	/* The peer half-closed (FIN); we may still write. */
	void (*on_eof)(struct an_stream *s, void *arg);
	/*
	 * The stream is gone: err 0 after both sides closed, AN_ERESET,
	 * AN_ECLOSED (connection lost), -ETIMEDOUT, AN_ENOPROTO (outbound
	 * negotiation refused), ...  Called exactly once, also for streams that
	 * never opened; s is freed when it returns.
	 */
	void (*on_close)(struct an_stream *s, int err, void *arg);
	/*
	 * Optional: the queue of written bytes fell below
	 * AN_STREAM_QUEUE_HIGH after a write left it above (write more now).
	 */
	void (*on_writable)(struct an_stream *s, void *arg);
};

/*
 * Backpressure: writers should stop when an_stream_queued() reaches
 * AN_STREAM_QUEUE_HIGH and wait for on_writable.  A stream whose queue
 * reaches twice that (a handler writing from on_data without looking, such
 * as an echo) stops reading, so yamux withholds window updates from the
 * peer, until the queue drains.
 */
#define AN_STREAM_QUEUE_HIGH (256 * 1024)

/*
 * Register the handler of inbound streams for protocol proto (copied;
 * must start with '/').  handler and arg are borrowed.  A second
 * registration of the same protocol replaces the first.  AN_ELIMIT past
 * AN_HOST_MAX_PROTOCOLS.
 */
int an_host_handle(struct an_host *h, const char *proto, const struct an_stream_handler *handler,
		   void *arg);

/* Remove a registration (no effect on open streams). */
void an_host_unhandle(struct an_host *h, const char *proto);

/* The registered protocols (borrowed); returns the count, fills up to max. */
size_t an_host_protocols(const struct an_host *h, const char **out, size_t max);

/*
 * Called when the set of protocols or addresses changes (identify push
 * hooks in here).  One hook; NULL removes it.
 */
typedef void (*an_host_changed_fn)(struct an_host *h, void *arg);
void an_host_on_changed(struct an_host *h, an_host_changed_fn fn, void *arg);

/*
 * Called for every connection that completed its upgrade (identify runs
 * here), before the dialers' callbacks.  an_host_on_connection sets one
 * slot (a second call replaces it, NULL empties it; it runs first);
 * an_host_add_conn_observer adds to a list of up to AN_HOST_MAX_OBSERVERS
 * more (kad, AutoNAT, DCUtR side by side), run in the order added.  The
 * same fn and arg twice is one observer.  An observer may close c (the
 * rest are then skipped) and add or remove observers (a removed one is not
 * called).  fn and arg are borrowed until removed or the host is freed.
 * add: 0, -EINVAL for a NULL fn, AN_ELIMIT when the list is full.
 */
typedef void (*an_host_conn_fn)(struct an_host_conn *c, void *arg);
void an_host_on_connection(struct an_host *h, an_host_conn_fn fn, void *arg);
#define AN_HOST_MAX_OBSERVERS 8
int an_host_add_conn_observer(struct an_host *h, an_host_conn_fn fn, void *arg);
void an_host_remove_conn_observer(struct an_host *h, an_host_conn_fn fn, void *arg);

/*
 * Identify push observer: the identify service (transport/identify.h)
 * calls an_host_identify_pushed with each push it decoded and checked from
 * c's peer; m (struct an_identify, borrowed for the call) has only the
 * fields the peer pushed (absent = unchanged).  The kad service follows
 * peers switching between DHT client and server mode here.  One hook;
 * NULL removes it.  The hook must not use the push stream (it has none).
 */
struct an_identify;
typedef void (*an_host_identify_push_fn)(struct an_host_conn *c, const struct an_identify *m,
					 void *arg);
void an_host_on_identify_push(struct an_host *h, an_host_identify_push_fn fn, void *arg);
void an_host_identify_pushed(struct an_host_conn *c, const struct an_identify *m);

/* ---- connections ---- */

/*
 * Outcome of a dial: err 0 and c (borrowed; valid until the connection
 * closes - use an_host_conn_ref/unref to keep it) or a negative code
 * (-ECONNREFUSED, -ETIMEDOUT, AN_EMISMATCH for a peer ID other than the
 * address's /p2p/, AN_EPROTO, AN_ELIMIT).
 */
typedef void (*an_host_dial_fn)(struct an_host *h, struct an_host_conn *c, int err, void *arg);

/*
 * Dial maddr (/ip4|ip6/A/tcp/P[/p2p/ID]) or reuse an established
 * connection to that peer.  The upgrade runs with the usual roles (we are
 * Noise initiator and yamux client).  cb is always called, never from
 * inside this function.  timeout_ms 0 = the handshake timeout.
 */
int an_host_dial(struct an_host *h, const char *maddr, int timeout_ms, an_host_dial_fn cb, void *arg);

/*
 * an_host_dial with flags:
 *   AN_HOST_DIAL_FRESH   never reuse an existing connection: always a new
 *                        socket (AutoNAT's dial-back, DCUtR's direct dial).
 *   AN_HOST_DIAL_DIRECT  reuse only a direct connection, never a relayed
 *                        one (a /p2p/ dial meant to get past a relay).
 * maddr may also be a bare /p2p/ID: the peer's connection (as the flags
 * allow), else a dial to the first address of it in the peer store
 * (an_host_peer_add_addr); AN_ENOTFOUND when there is neither.
 */
#define AN_HOST_DIAL_FRESH 0x1u
#define AN_HOST_DIAL_DIRECT 0x2u
int an_host_dial_ex(struct an_host *h, const char *maddr, int timeout_ms, unsigned flags,
		    an_host_dial_fn cb, void *arg);

/*
 * A connection over a byte stream of another connection: a Circuit Relay
 * v2 circuit, whose stream carries a whole Noise + yamux session.  The
 * upgrade runs as Noise initiator and yamux client when initiator (the
 * peer that dialed through the relay), else as responder and server.
 * expected (may be NULL) is the peer that must answer; remote_text
 * (copied) is its address for logs and an_host_conn_remote_addr (by
 * convention RELAYADDR/p2p/RELAY/p2p-circuit, which tells relayed
 * connections apart).  From now on every event of s must reach *handler
 * with *handler_arg (both set here): the owner of s's handler forwards
 * them (relay/relay_client.h does), and must not write to s any more.
 * cb (may be NULL; then the on_connection hook is the only report) as for
 * an_host_dial, timeout_ms 0 = the handshake timeout.  Closing or failing
 * the connection resets s; s ending closes the connection.  0, AN_ELIMIT,
 * AN_ECLOSED (shutting down), -ENOMEM.
 */
int an_host_conn_over_stream(struct an_host *h, struct an_stream *s, bool initiator,
			     const struct an_peerid *expected, const char *remote_text,
			     int timeout_ms, an_host_dial_fn cb, void *arg,
			     const struct an_stream_handler **handler, void **handler_arg);

/* Keep c's memory alive past its close (the connection is then dead). */
void an_host_conn_ref(struct an_host_conn *c);
void an_host_conn_unref(struct an_host_conn *c);
bool an_host_conn_alive(const struct an_host_conn *c);

/* True if the peer dialed us. */
bool an_host_conn_inbound(const struct an_host_conn *c);

/*
 * True for a connection made by an_host_conn_over_stream (a Circuit Relay
 * v2 circuit), also after it closed.  js-libp2p calls such connections
 * "limited" when the relay announced a limit and opens only protocols
 * registered with runOnLimitedConnection on them; we open any protocol
 * (the remote decides), and a relay refuses hop requests over them.
 */
bool an_host_conn_relayed(const struct an_host_conn *c);

/* The host c belongs to (borrowed). */
struct an_host *an_host_conn_host(const struct an_host_conn *c);

/* Remote peer ID (borrowed; valid once established). */
const struct an_peerid *an_host_conn_peer(const struct an_host_conn *c);

/* Remote's address as seen on the socket, text, no /p2p (borrowed). */
const char *an_host_conn_remote_addr(const struct an_host_conn *c);

/* Same, as a binary multiaddr (for identify's observedAddr). */
size_t an_host_conn_remote_addr_bin(const struct an_host_conn *c, uint8_t *out, size_t cap);

/* The remote's public key as a PublicKey protobuf (borrowed), once established. */
const uint8_t *an_host_conn_remote_pubkey(const struct an_host_conn *c, size_t *len);

/*
 * Close with GoAway (normal): no new streams either way; the socket closes
 * once the open streams have finished and the output is flushed (the idle
 * timeout bounds a peer that never finishes them).
 */
void an_host_conn_close(struct an_host_conn *c);

/* Established connections (borrowed), up to max; returns the count. */
size_t an_host_conns(const struct an_host *h, struct an_host_conn **out, size_t max);

/* Counts for tests and the limits: connections (all), handshaking ones. */
size_t an_host_conn_count(const struct an_host *h);
size_t an_host_pending_count(const struct an_host *h);

/*
 * The remote address of a connection as the per-address limits see it: ip
 * (IPv4 as ::ffff:a.b.c.d) and net (its /24 or /64; on loopback the
 * address itself).  False (and *out zeroed) for relayed connections and
 * other addresses without an IP.  The relay (relay_server.h) keys its
 * per-address limits on this too.
 */
struct an_host_addr_key {
	uint8_t ip[16];
	uint8_t net[16];
};
bool an_host_conn_addr_key(const struct an_host_conn *c, struct an_host_addr_key *out);

/* ---- streams ---- */

/*
 * Open an outbound stream on c and negotiate proto (copied).  handler/arg
 * borrowed; on_open or on_close(err) follows (AN_ENOPROTO if the peer
 * refuses proto, -ETIMEDOUT after the negotiation deadline).  AN_ELIMIT
 * over the stream limit, AN_ECLOSED on a dead connection.  *out (may be
 * NULL) is the stream.  Until the peer has answered or opened a stream, at
 * most 8 of ours negotiate at once and later ones wait (js-libp2p aborts a
 * connection that receives more than 10 streams before its upgrade ends).
 * A yamux ping goes out when a connection is ready and every 30 s.
 */
int an_host_stream_open(struct an_host_conn *c, const char *proto,
			const struct an_stream_handler *handler, void *arg, struct an_stream **out);

/* Queue bytes (copied).  AN_ECLOSED after close_write or reset. */
int an_stream_write(struct an_stream *s, const uint8_t *p, size_t n);

/* Bytes written but not yet taken by yamux (the peer's window or our buffers). */
size_t an_stream_queued(const struct an_stream *s);

/* Half-close (FIN) after the queued bytes. */
int an_stream_close_write(struct an_stream *s);

/* Abort (RST); on_close(AN_ERESET) follows right away. */
void an_stream_reset(struct an_stream *s);

/*
 * Hold (paused true) or restart reading s: held bytes stay in yamux, whose
 * receive window then stops the peer, and the peer's FIN waits behind them.
 * A splice (the relay) holds its source while the other side's queue is at
 * AN_STREAM_QUEUE_HIGH and restarts it from that side's on_writable.
 */
void an_stream_pause(struct an_stream *s, bool paused);

const char *an_stream_protocol(const struct an_stream *s);
struct an_host_conn *an_stream_conn(const struct an_stream *s);
bool an_stream_inbound(const struct an_stream *s);

/* Per-stream user pointer (for handlers that keep state). */
void an_stream_set_user(struct an_stream *s, void *user);
void *an_stream_user(const struct an_stream *s);

/* ---- peer store ---- */

/* Remember addresses (text, without /p2p) of a peer; capped per peer. */
int an_host_peer_add_addr(struct an_host *h, const struct an_peerid *id, const char *maddr);

/* ---- lifecycle ---- */

/*
 * Graceful shutdown: stop listening, send GoAway on every connection, close
 * each once its open streams have finished and its output is flushed (all
 * bounded by timeout_ms), then ev_break the loop.  Safe to call from a
 * signal watcher.
 */
void an_host_shutdown(struct an_host *h, int timeout_ms);

/*
 * Multiaddr conveniences over encoding/multiaddr.h.
 * an_host_maddr_encode: text to binary (AN_EMALFORMED, AN_ETOOBIG).
 * an_host_maddr_format: binary to text (unknown codes are AN_EMALFORMED).
 * an_host_maddr_split: a dialable TCP address with optional /p2p/<id> into
 * a socket address and the peer ID (*has_id false when absent);
 * AN_EMALFORMED for anything not dialable as plain TCP.
 */
int an_host_maddr_encode(const char *text, uint8_t *out, size_t cap, size_t *len);
int an_host_maddr_format(const uint8_t *bin, size_t len, char *out, size_t cap);
int an_host_maddr_split(const char *text, struct sockaddr_storage *ss, socklen_t *sslen,
			struct an_peerid *id, bool *has_id);

/* Milliseconds of the loop's clock (ev_now), for the sans-I/O machines. */
uint64_t an_host_now_ms(const struct an_host *h);

#endif
