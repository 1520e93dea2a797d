/*
 * control.h - the daemon's control socket: a Unix stream socket
 * <statedir>/control.sock (mode 0600) carrying one JSON request per line and
 * one JSON reply per line.
 *
 *   request:  {"cmd":"ping","addr":"/ip4/.../p2p/...","count":3,"timeoutMs":10000}
 *   reply:    {"ok":true,...}  or  {"ok":false,"error":"<text>","code":<an error>}
 *
 * Every call has a deadline: the client waits at most its timeout for the
 * reply; the server answers {"ok":false,"error":"timeout"} itself when a
 * handler has not replied within the request's timeoutMs (capped), cancels
 * the handler's work and drops its late answer.
 *
 * Codes a DHT command's reply carries (an-dht, node.h map them to exits):
 * 0; AN_ENOTFOUND: peers answered and none had the key or stored the
 * record (exit 1); -EHOSTUNREACH: no peer reachable, nobody was asked;
 * -ETIMEDOUT: the deadline passed first (both exit 4).  A client whose
 * own deadline passes with no reply line says the daemon is not
 * answering (exit 4), never "not found".
 *
 * The server side runs in the daemon's libev loop; the client side is a
 * blocking call with a deadline for the tools (an-dht ping/id/...).
 */
#ifndef AN_CONTROL_CONTROL_H
#define AN_CONTROL_CONTROL_H

#include <ev.h>
#include <jansson.h>
#include <stddef.h>

#define AN_CONTROL_SOCKET_NAME "control.sock"
#define AN_CONTROL_LINE_MAX 65536         /* longest request or reply line */
#define AN_CONTROL_MAX_CLIENTS 64         /* concurrent control connections */
#define AN_CONTROL_DEFAULT_TIMEOUT_MS 10000
#define AN_CONTROL_MAX_TIMEOUT_MS 600000
#define AN_CONTROL_IDLE_MS 60000          /* a silent client is dropped */

/* "<statedir>/control.sock" into out; -ENAMETOOLONG if it does not fit a sun_path. */
int an_control_socket_path(const char *statedir, char *out, size_t outcap);

struct an_control_server;
struct an_control_call;

/*
 * Handler of one request.  req is borrowed for the duration of the call
 * only.  The handler either replies at once or later with
 * an_control_reply(); if it keeps working asynchronously it may register a
 * cancel function with an_control_call_on_cancel(), which the server calls
 * (instead of waiting for a reply) when the deadline passes or the client
 * goes away; after cancel or reply the handler must forget the call.
 */
typedef void (*an_control_handler_fn)(struct an_control_call *call, const json_t *req, void *arg);
typedef void (*an_control_cancel_fn)(struct an_control_call *call, void *arg);

/*
 * Bind and listen on path (0600; a stale socket left by a dead daemon is
 * replaced, a live one is -EADDRINUSE) and serve in loop (borrowed).
 * handler/arg are borrowed.  *out is new; free with an_control_server_free.
 */
int an_control_server_new(struct ev_loop *loop, const char *path, an_control_handler_fn handler,
			  void *arg, struct an_control_server **out);

/* Stop listening, cancel open calls, close clients, unlink the socket. NULL-safe. */
void an_control_server_free(struct an_control_server *s);

/* The request's deadline in ms (timeoutMs, defaulted and capped). */
int an_control_call_timeout_ms(const struct an_control_call *call);

/* Register cancel (see above); arg is borrowed. */
void an_control_call_on_cancel(struct an_control_call *call, an_control_cancel_fn cancel, void *arg);

/*
 * Send reply (steals the reference) and end the call; call is freed.
 * NULL reply is an internal error reply.
 */
void an_control_reply(struct an_control_call *call, json_t *reply);

/* Convenience: {"ok":false,"error":an_strerror(err) or msg,"code":err}; ends the call. */
void an_control_reply_error(struct an_control_call *call, int err, const char *msg);

/*
 * Client: connect to path, send req (borrowed) as one line, wait for one
 * reply line, all within timeout_ms.  *reply is new.  -ENOENT or
 * -ECONNREFUSED when no daemon listens there (callers fall back to an
 * in-process node), -ETIMEDOUT, AN_EMALFORMED for a reply that is not a
 * JSON object, AN_ETOOBIG for an overlong line.
 */
int an_control_request(const char *path, const json_t *req, int timeout_ms, json_t **reply);

#endif
