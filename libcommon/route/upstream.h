/*
 * upstream.h - reverse proxy responder (server.h): /an/route/1.0.0 requests
 * forwarded to a local HTTP/1.1 web server, http://IP:PORT (numeric
 * address, IPv4 or [IPv6]; a local server such as 127.0.0.1 or [::1] is
 * the intended use).
 *
 * Per request, one new upstream TCP connection (non-blocking, libev in the
 * host's loop), as man/an-route.7 "Upstream servers" says:
 *   request   "METHOD TARGET HTTP/1.1" without the route line; Host set to
 *             the route line's host; the hop-by-hop fields dropped
 *             (Connection and the fields it names, Keep-Alive,
 *             Proxy-Connection, TE, Trailer, Upgrade, Transfer-Encoding,
 *             Content-Length - the last two written again for the body);
 *             "Connection: close"; X-Forwarded-For set to the client's
 *             peer ID (base58; a client's own X-Forwarded-For,
 *             X-Forwarded-Host and X-Forwarded-Proto are dropped, so the
 *             upstream can trust them), X-Forwarded-Host the route line's
 *             host, X-Forwarded-Proto "an".  "Expect: 100-continue" is
 *             dropped: the body goes on without waiting for a 100 (the
 *             client sent it already; the route protocol has no interim
 *             responses); another expectation is forwarded.  The request body is forwarded
 *             with the framing it came with, held in a buffer (the
 *             request body cap, max_body, plus framing room) while the
 *             upstream is slower: there is no way to stop reading one
 *             stream of a yamux connection, so the cap is the bound.
 *   response  parsed with route.h's upstream parser (HTTP/1.0 or 1.1, the
 *             same head limits as requests; an invalid or oversized head is
 *             502), interim 1xx heads (100 Continue sent unasked, 102,
 *             103) skipped, AN_ROUTE_RESPONSE_TIMEOUT_MS from connecting to
 *             its final head, however the bytes trickle in (504); status and
 *             fields passed on without the hop-by-hop ones,
 *             "X-Content-Type-Options: nosniff" added when the upstream
 *             sent none (as the static server sends it), the body framed again (Content-Length kept,
 *             chunked re-chunked, a body that ends with the connection
 *             becomes an end-of-stream body).  Reading from the upstream
 *             stops while the stream's queue is full (backpressure), and
 *             resumes on the stream's writable callback.
 *   failures  connection refused or failed before a response head: 502;
 *             no head in time: 504; a failure after the head: the stream
 *             is reset.
 */
#ifndef AN_ROUTE_UPSTREAM_H
#define AN_ROUTE_UPSTREAM_H

#include <stdint.h>
#include <sys/socket.h>

#include "route/server.h"

#define AN_UPSTREAM_READ 65536 /* bytes read from the upstream per step */

/* The responder; its arg is a struct an_upstream. */
extern const struct an_route_responder an_upstream_responder;

struct an_upstream {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int timeout_ms;     /* response head deadline; 0: AN_ROUTE_RESPONSE_TIMEOUT_MS */
	uint64_t max_body;  /* request body held for the upstream; 0: AN_ROUTE_SERVER_BODY_MAX */
};

/*
 * Parse url (borrowed): "http://IPV4:PORT" or "http://[IPV6]:PORT", an
 * optional trailing '/'.  AN_EMALFORMED for anything else (no names, no
 * paths, no https).
 */
int an_upstream_init(struct an_upstream *u, const char *url);

#endif
