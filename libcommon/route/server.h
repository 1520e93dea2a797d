/*
 * server.h - the /an/route/1.0.0 server on an an_host (man/an-route.7).
 *
 * One request per inbound stream.  The server reads the route line and the
 * request head (route.h's parser, AN_ROUTE_HEAD_TIMEOUT_MS from stream open
 * for the whole head, never pushed back by bytes trickling in: 408), picks the site whose host the route line names and checks the did
 * against an_record_did("an://<our peer hash>@<host>") (421 for an unknown
 * host or a wrong did), de-frames the request body (route.h's decoder,
 * capped: 413) and hands the request to the site's responder.  The
 * responder answers through the exchange functions below, which frame
 * the body as its head announced and give backpressure: a responder writes
 * while an_route_exchange_writable() is true and waits for its writable
 * callback otherwise, so no response is ever buffered whole.  A stream on
 * which no byte moves either way for the idle timeout
 * (AN_ROUTE_IDLE_TIMEOUT_MS) is reset, so a stalled reader or writer loses
 * only its stream.  Errors before the response head are answered with
 * their status (route.h's an_route_error_write), and as the rest of the
 * request is not read, a client that keeps sending is reset
 * AN_ROUTE_LINGER_MS later (or at the idle timeout if that is shorter); a
 * response that cannot be completed after its head is ended with a reset,
 * never a clean close.
 *
 * The pool of requests under way is shared: past max_streams_per_addr
 * from one client address (an_host_conn_addr_key; a relayed client by its
 * peer ID) or max_streams_per_net from its /24 or /64 (relayed clients
 * all together), a new stream is reset at once, so slow clients from one
 * place cannot fill the pool for everyone (1024 slow heads from one
 * address used to lock every other client out until their 408s).
 *
 * Responders: static files (static_site.h) and the reverse proxy
 * (upstream.h) are two implementations of struct an_route_responder.
 *
 * The library never prints: an access-log hook gets one record per
 * request when its stream is gone, a log hook the reasons for resets.
 *
 * Everything runs in the host's loop; nothing is thread-safe.
 */
#ifndef AN_ROUTE_SERVER_H
#define AN_ROUTE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "route/route.h"
#include "transport/host.h"

#define AN_ROUTE_SERVER_SITES_MAX 64          /* root + subdomains on one server */
#define AN_ROUTE_SERVER_BODY_MAX (16u << 20)  /* default request body cap (413 above) */
#define AN_ROUTE_SERVER_STREAMS_MAX 1024      /* requests under way at once */
/* ... from one address (relayed: one peer ID) and one /24 or /64 (relayed: all) */
#define AN_ROUTE_SERVER_STREAMS_PER_ADDR 128
#define AN_ROUTE_SERVER_STREAMS_PER_NET 256
#define AN_ROUTE_LINGER_MS 2000               /* after an error answer, then reset */

struct an_route_server;
struct an_route_exchange; /* one request and its response (one stream) */

/*
 * One finished request for the access log.  Strings borrowed for the call;
 * method/target/host are "-" when the head never completed.
 */
struct an_route_access {
	const char *peer;      /* the client's peer ID, base58 */
	const char *host;      /* the route line's host */
	const char *method;
	const char *target;
	int status;            /* status sent; 0 if none was (stream reset first) */
	uint64_t bytes;        /* response body bytes written (payload, not framing) */
	uint64_t duration_ms;  /* stream open to stream gone */
	int err;               /* 0: stream closed cleanly; else why it ended (AN_ERESET, -ETIMEDOUT...) */
};

typedef void (*an_route_access_fn)(void *arg, const struct an_route_access *a);

/*
 * A responder: what answers the requests of one site.  arg is the site's
 * (given to an_route_server_add_site).  Calls come from the server, in the
 * loop:
 *   start     the head is complete (h borrowed until finish).  Answer now or
 *             later with the exchange functions; per-request state goes in
 *             an_route_exchange_set_ctx.  A negative return is answered 500.
 *   body      request payload (borrowed for the call); may be NULL (the body
 *             is then discarded).
 *   body_end  the request body is complete (also for requests without one,
 *             right after start).  May be NULL.
 *   writable  the stream took the queued bytes: write more.  May be NULL.
 *   finish    the exchange is over (err 0 after a complete response, else
 *             why: AN_ERESET, -ETIMEDOUT, AN_ECLOSED): free the ctx.  Never
 *             called from inside an exchange function, so a responder may
 *             use its ctx after calling one.
 */
struct an_route_responder {
	int (*start)(void *arg, struct an_route_exchange *x, const struct an_route_head *h);
	void (*body)(struct an_route_exchange *x, const uint8_t *p, size_t n);
	void (*body_end)(struct an_route_exchange *x);
	void (*writable)(struct an_route_exchange *x);
	void (*finish)(struct an_route_exchange *x, int err);
};

/* Zero fields take the defaults. */
struct an_route_server_config {
	int head_timeout_ms;    /* AN_ROUTE_HEAD_TIMEOUT_MS */
	int idle_timeout_ms;    /* AN_ROUTE_IDLE_TIMEOUT_MS */
	uint64_t max_body;      /* AN_ROUTE_SERVER_BODY_MAX */
	size_t max_streams;     /* AN_ROUTE_SERVER_STREAMS_MAX; more are reset at once */
	size_t max_streams_per_addr; /* AN_ROUTE_SERVER_STREAMS_PER_ADDR; more reset at once */
	size_t max_streams_per_net;  /* AN_ROUTE_SERVER_STREAMS_PER_NET; more reset at once */
	an_route_access_fn access;
	void *access_arg;
	an_host_log_fn log;     /* why streams were reset; NULL drops */
	void *log_arg;
};

/*
 * A server on h (borrowed; must outlive it) answering AN_ROUTE_PROTOCOL.
 * cfg is copied.  The protocol is registered by the first add_site.
 * *out new: an_route_server_free.
 */
int an_route_server_new(struct an_host *h, const struct an_route_server_config *cfg,
			struct an_route_server **out);

/*
 * Serve fqdn (copied; lowercase, an_record_fqdn_valid) with r (borrowed)
 * and arg (borrowed).  AN_EMALFORMED for a bad name, AN_ELIMIT past
 * AN_ROUTE_SERVER_SITES_MAX, -EEXIST for a host already served.
 */
int an_route_server_add_site(struct an_route_server *s, const char *fqdn,
			     const struct an_route_responder *r, void *arg);

/* The did clients must send for fqdn on this server (into out); AN_ENOTFOUND if not served. */
int an_route_server_did(const struct an_route_server *s, const char *fqdn, char *out, size_t cap);

/* Requests under way. */
size_t an_route_server_active(const struct an_route_server *s);

/*
 * Unregister the protocol and reset every stream under way (their finish
 * and access-log calls happen here).  NULL-safe.
 */
void an_route_server_free(struct an_route_server *s);

/* ---- for responders ---- */

void an_route_exchange_set_ctx(struct an_route_exchange *x, void *ctx);
void *an_route_exchange_ctx(const struct an_route_exchange *x);

/* The loop and host (borrowed). */
struct an_host *an_route_exchange_host(const struct an_route_exchange *x);

/* The client's peer ID as base58 text (borrowed). */
const char *an_route_exchange_peer(const struct an_route_exchange *x);

/* The request head (borrowed; valid until finish). */
const struct an_route_head *an_route_exchange_head(const struct an_route_exchange *x);

/*
 * Write the response head r (borrowed); the body that follows is framed as
 * r->framing says.  For a HEAD request the head is written as given and
 * no body follows (an_route_exchange_end right after).  -EINVAL when a
 * head was already written; route.h's writer errors; AN_ECLOSED when the
 * stream is gone.
 */
int an_route_exchange_respond(struct an_route_exchange *x, const struct an_route_response *r);

/*
 * A complete error response (text/plain "<status> <reason>") and the end
 * of the exchange; only before a head was written (-EINVAL after).
 */
int an_route_exchange_error(struct an_route_exchange *x, int status);

/*
 * Body bytes (copied), framed.  The caller keeps to
 * an_route_exchange_writable(); the stream queue past that is accepted but
 * is what the writable callback exists to avoid.  AN_ETOOBIG past an
 * announced Content-Length, AN_ECLOSED.
 */
int an_route_exchange_write(struct an_route_exchange *x, const void *p, size_t n);

/* true while the stream's queue is below AN_STREAM_QUEUE_HIGH. */
bool an_route_exchange_writable(const struct an_route_exchange *x);

/*
 * The response is complete: end the body (last chunk), half-close.  A
 * Content-Length body that is short is reset instead (AN_ETRUNCATED).
 */
int an_route_exchange_end(struct an_route_exchange *x);

/*
 * Hold (true) stops the idle timeout while the responder waits on
 * something with a deadline of its own (the upstream's response head);
 * release (false) starts it again.
 */
void an_route_exchange_hold(struct an_route_exchange *x, bool hold);

/* Give up: reset the stream (a started response is never left looking complete). */
void an_route_exchange_abort(struct an_route_exchange *x);

#endif
