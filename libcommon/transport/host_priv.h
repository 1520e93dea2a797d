/*
 * host_priv.h - what the host's files share, and nothing else includes:
 *
 *   host.c          the host: config, listen and dial API, connection
 *                   lifecycle, timers, limits, handlers, observers, peer
 *                   store, shutdown
 *   host_stream.c   streams: multistream-select per stream, reads, writes,
 *                   backpressure, early streams; the yamux stream ops
 *   host_tcp.c      the TCP transport: sockets, listen, accept, connect
 *   host_relayed.c  the relayed transport: a connection whose byte stream
 *                   is a stream of another connection (Circuit Relay v2)
 *
 * A connection is generic; what differs per transport goes through its
 * struct an_transport (c->tp): how bytes leave, how the transport is
 * released, and how streams are opened, written, read and ended.  TCP and
 * relayed connections both carry an an_conn pipeline (mss, Noise, yamux),
 * so both fill the stream ops with yamux's (host_yamux_*); a QUIC
 * transport fills them with its native streams.
 */
#ifndef AN_TRANSPORT_HOST_PRIV_H
#define AN_TRANSPORT_HOST_PRIV_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "encoding/multiaddr.h"
#include "transport/conn.h"
#include "transport/host.h"
#include "transport/mss.h"
#include "util/buf.h"

#define READ_CHUNK 65536
#define STREAM_OUT_MAX (1024 * 1024) /* queued writes per stream */
/*
 * Reading stops above this much queued output: twice the writers' mark, so a
 * writer that honours on_writable (and so stays near AN_STREAM_QUEUE_HIGH)
 * never stops its own reading - that would deadlock against peers whose
 * echo waits for us to read (js-libp2p grants window as data arrives and
 * aborts the stream at a 4 MiB read buffer instead).  Handlers that write
 * from on_data without looking (echo) get backpressure here.
 */
#define READ_BLOCK_MARK (2 * AN_STREAM_QUEUE_HIGH)
#define PEERSTORE_MAX 1024
#define PEERSTORE_ADDRS 4

struct an_transport {
	const char *name;
	/* Rides on another connection (relayed): no address of its own, the
	   outbound handshake deadline for both roles. */
	bool carried;
	/* Is ma (no /p2p) an address of this transport?  NULL: none is. */
	bool (*handles)(const struct an_multiaddr *ma);
	/* Listen on ma: 0 (a listener added, notify_changed done) or an error. */
	int (*listen)(struct an_host *h, const struct an_multiaddr *ma);
	/*
	 * Start a connection to ma (expected may be NULL): 0 and *out (owned by
	 * the host, pending), or 0, *out NULL and *late_err when the attempt
	 * failed at once (the dialer hears it from the loop), or an error for
	 * an_host_dial to return.
	 */
	int (*dial)(struct an_host *h, const struct an_multiaddr *ma, const struct an_peerid *expected,
		    struct an_host_conn **out, int *late_err);
	/* Move c's output to the byte stream (c alive, not connecting or failing). */
	void (*write)(struct an_host_conn *c);
	/* No more I/O until c is destroyed (host_conn_destroy_later). */
	void (*quiet)(struct an_host_conn *c);
	/* Release the byte stream; c is being destroyed. */
	void (*close)(struct an_host_conn *c);

	/* ---- streams (ids are the transport's) ---- */
	bool (*stream_ready)(struct an_host_conn *c); /* established, streams usable */
	int (*stream_open)(struct an_host_conn *c, uint32_t *id);
	/* *accepted may be short: wait for a WRITABLE event or drained output */
	int (*stream_write)(struct an_host_conn *c, uint32_t id, const uint8_t *p, size_t n,
			    size_t *accepted);
	int (*stream_close_write)(struct an_host_conn *c, uint32_t id); /* FIN */
	void (*stream_reset)(struct an_host_conn *c, uint32_t id);
	/* received bytes in place (borrowed until consume or the next call) */
	int (*stream_peek)(struct an_host_conn *c, uint32_t id, const uint8_t **p, size_t *len);
	int (*stream_consume)(struct an_host_conn *c, uint32_t id, size_t n);
	void (*ping)(struct an_host_conn *c);   /* keep-alive and RTT */
	void (*goaway)(struct an_host_conn *c); /* no new streams either way */
};

struct handler_entry {
	char *proto;
	struct an_stream_handler h;
	void *arg;
};

struct conn_observer {
	an_host_conn_fn fn;
	void *arg;
};

struct listener {
	ev_io io;                      /* first: the accept callback casts */
	const struct an_transport *tp; /* whose listener this is */
	ev_timer pause; /* out of descriptors without a reserve (util/accept.h) */
	struct an_host *host;
	int fd;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char text[AN_HOST_ADDR_TEXT_MAX];
};

struct dial_waiter {
	ev_timer t; /* deadline, or 0 s to report an existing connection */
	struct an_host *host;
	struct an_host_conn *conn; /* referenced */
	an_host_dial_fn cb;
	void *arg;
	struct dial_waiter *next;
	bool immediate;
};

struct an_stream {
	ev_timer neg_timer; /* multistream-select deadline; first for the cast */
	struct an_host_conn *c;
	struct an_stream *next;
	uint32_t id;
	bool inbound, negotiating, opened, fin_wanted, fin_sent, remote_fin;
	bool read_blocked;  /* stopped reading: our queue is above the high mark */
	bool fin_deferred;  /* the peer's FIN, held until blocked data is read */
	bool paused;        /* an_stream_pause: the application holds reading */
	bool want_writable; /* a write left the queue above the high mark */
	bool deferred;      /* outbound, waiting for the peer to serve streams (id 0) */
	char proto[AN_MSS_PROTO_MAX + 1];
	const char *proposal[1];
	struct an_mss mss;
	const struct an_stream_handler *h;
	/* inbound: h points here, a copy of the registration (an_host_unhandle
	   compacts the table, so open streams must not point into it) */
	struct an_stream_handler h_copy;
	void *arg;
	void *user;
	struct an_buf out;     /* bytes for the yamux stream (mss answers, data) */
	size_t out_off;        /* out[0..out_off) already went to yamux */
	struct an_buf pending; /* application writes before negotiation ends */
};

struct an_host_conn {
	ev_io io; /* TCP: the socket's watcher (first: conn_io_cb casts) */
	const struct an_transport *tp; /* the byte stream under the pipeline */
	ev_timer hs_timer;
	ev_timer idle_timer;
	ev_timer ping_timer; /* yamux keep-alive and RTT (window auto-tuning) */
	ev_timer fail_timer; /* destroys a connection conn_write found dead (see there) */
	struct an_host *host;
	struct an_host_conn *next, *prev;
	int fd; /* TCP: the socket; -1 otherwise */
	int refs;
	bool inbound, connecting, established, alive, closing;
	bool dispatching; /* inside conn_handle_events: callbacks must not recurse */
	bool failing;     /* fail_timer runs: no more I/O, destroyed from the loop */
	int fail_err;
	char fail_reason[128];
	bool peer_ready;  /* the peer answered or opened a stream (early-stream rule) */
	size_t n_streams_total; /* struct an_stream objects on this connection */
	size_t n_streams_in;    /* ... of them opened by the peer */
	bool has_key;           /* key is the remote's address (TCP, not relayed) */
	bool stream_limit_logged;
	struct an_host_addr_key key;
	ev_tstamp last_activity;
	struct an_conn *conn;
	char remote_text[AN_HOST_ADDR_TEXT_MAX];
	uint8_t remote_bin[64];
	size_t remote_bin_len;
	struct an_peerid peer;
	uint8_t *pubkey_pb; /* malloc'd at its size (36 bytes for Ed25519, not the 1.1 KB cap) */
	size_t pubkey_len;
	struct an_stream *streams;
	struct dial_waiter *waiters; /* dials waiting for this connection */
	/* Relayed (an_host_conn_over_stream): the stream of another connection
	   that carries this one's bytes, instead of fd. */
	struct an_stream *carrier;
	struct an_buf carrier_in; /* carrier bytes the conn could not take yet */
	bool carrier_draining;
	ev_timer carrier_kick;    /* re-kick after output waited for room (as EV_WRITE) */
	bool relayed;             /* made by an_host_conn_over_stream; never cleared */
	/* A stream's on_data is reading bytes in place (stream_readable). */
	uint32_t delivering;
	bool reset_delivered; /* ... and the handler reset that stream */
	/* In the host's flush queue (conn_kick): holds a reference while there. */
	bool flush_queued;
	struct an_host_conn *flush_next;
};

struct peer_entry {
	struct an_peerid id;
	size_t n;
	char addrs[PEERSTORE_ADDRS][AN_HOST_ADDR_TEXT_MAX];
};

struct an_host {
	struct ev_loop *loop;
	const struct an_privkey *key;
	struct an_peerid id;
	struct an_host_limits lim;
	const char *agent; /* borrowed from the config */
	bool dial_tls;
	an_host_log_fn log;
	void *log_arg;
	struct listener listeners[AN_HOST_MAX_LISTENERS];
	size_t n_listeners;
	char *announce[AN_HOST_MAX_ANNOUNCE];
	size_t n_announce;
	struct handler_entry handlers[AN_HOST_MAX_PROTOCOLS];
	size_t n_handlers;
	an_host_changed_fn changed;
	void *changed_arg;
	an_host_conn_fn on_conn; /* an_host_on_connection's one slot */
	void *on_conn_arg;
	struct conn_observer observers[AN_HOST_MAX_OBSERVERS];
	size_t n_observers;
	an_host_identify_push_fn on_push;
	void *on_push_arg;
	struct an_host_conn *conns;
	size_t n_conns, n_pending;
	struct dial_waiter *loose_waiters; /* immediate reports not tied to a dialing conn */
	struct peer_entry *peers;
	size_t n_peers;
	bool shutting_down;
	ev_timer shutdown_timer;
	/* Connections with output to seal and send before the loop blocks
	   (conn_kick); flush_watcher empties the queue each loop iteration. */
	struct an_host_conn *flush_head, *flush_tail;
	ev_prepare flush_watcher;
	ev_tstamp refusal_logged; /* log_refusal: one line a second */
	size_t refusals_quiet;
	ev_idle flush_again; /* the queue outgrew one pass: do not block yet */
};

#define AN_HOST_N_TRANSPORTS 1 /* dialable and listenable ones (TCP) */
extern const struct an_transport host_tcp_transport;
extern const struct an_transport host_relayed_transport;

/* ---- host.c ---- */
void host_log(struct an_host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void host_notify_changed(struct an_host *h);
struct handler_entry *host_find_handler(const struct an_host *h, const char *proto);
/* A new pending connection over tp (timers running, in h's list, refs 1). */
struct an_host_conn *host_conn_new(struct an_host *h, const struct an_transport *tp, bool inbound,
				   const struct an_peerid *expected);
void host_conn_destroy(struct an_host_conn *c, int err, const char *reason);
void host_conn_destroy_later(struct an_host_conn *c, int err, const char *reason);
void host_conn_unref(struct an_host_conn *c);
void host_conn_kick(struct an_host_conn *c);
void host_conn_write(struct an_host_conn *c);
void host_conn_handle_events(struct an_host_conn *c);
/* After a write of everything it had (len 0, not blocked): a closing conn
   with no streams, or a failed one, is destroyed (from the loop); true then. */
bool host_conn_finish_if_done(struct an_host_conn *c, size_t len, bool blocked);
/* A dialer waiting for c, bounded by timeout_ms (0: the handshake timeout). */
int host_waiter_add(struct an_host *h, struct an_host_conn *c, int timeout_ms, an_host_dial_fn cb,
		    void *arg);
void host_log_refusal(struct an_host *h, const char *text, const char *why);
const char *host_addr_refusal(const struct an_host *h, const struct an_host_addr_key *k);
bool host_addr_stream_allowed(struct an_host_conn *c);

/* ---- host_stream.c ---- */
struct an_stream *host_find_stream(const struct an_host_conn *c, uint32_t id);
void host_stream_finish(struct an_stream *s, int err);
int host_stream_flush(struct an_stream *s);
void host_stream_maybe_done(struct an_host_conn *c, uint32_t id);
void host_stream_readable(struct an_host_conn *c, uint32_t id);
void host_stream_peer_fin(struct an_host_conn *c, uint32_t id);
void host_inbound_stream(struct an_host_conn *c, uint32_t id);
/* Flush waiting streams, resume reading, call on_writable (after events). */
void host_streams_service(struct an_host_conn *c);
/* The stream ops of transports that carry an an_conn (yamux inside). */
bool host_yamux_ready(struct an_host_conn *c);
int host_yamux_open(struct an_host_conn *c, uint32_t *id);
int host_yamux_write(struct an_host_conn *c, uint32_t id, const uint8_t *p, size_t n,
		     size_t *accepted);
int host_yamux_close_write(struct an_host_conn *c, uint32_t id);
void host_yamux_reset(struct an_host_conn *c, uint32_t id);
int host_yamux_peek(struct an_host_conn *c, uint32_t id, const uint8_t **p, size_t *len);
int host_yamux_consume(struct an_host_conn *c, uint32_t id, size_t n);
void host_yamux_ping(struct an_host_conn *c);
void host_yamux_goaway(struct an_host_conn *c);

#endif
