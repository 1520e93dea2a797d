/*
 * yamux.h - the yamux stream multiplexer (/yamux/1.0.0), sans-I/O.
 *
 * Spec: libp2p/specs yamux/README.md (the hashicorp spec); behaviour of real
 * peers from ChainSafe/js-libp2p-yamux and libp2p/rust-yamux (see the wire
 * digest, sections 6 and 15/K14).
 *
 * Wire: every frame starts with a 12-byte big-endian header
 *   version u8 (=0) | type u8 | flags u16 | stream_id u32 | length u32
 * type 0 Data (length = payload bytes that follow), 1 WindowUpdate (length =
 * window delta, no payload), 2 Ping (length = opaque value), 3 GoAway
 * (length = code).  Flags SYN 1, ACK 2, FIN 4, RST 8.  The two meanings of
 * length (payload size vs window delta) are kept strictly apart
 * (py-libp2p#1269 broke interop by mixing them).
 *
 * Shape (like nghttp2's mem_recv / mem_send):
 *   bytes in   an_yamux_feed()          consumes what it can of the input
 *   bytes out  an_yamux_send()          appends pending control frames to a
 *              an_yamux_stream_write()  capped an_buf; data frames are
 *                                       written straight into the caller's
 *                                       buffer, bounded by the peer's window
 *   events     an_yamux_next_event()    poll until it returns 0
 *   time       now_ms arguments (ping RTT and window auto-tuning only)
 * No sockets, no clocks, no callbacks.  Streams are named by their yamux
 * stream id (uint32_t); an id that is no longer known gives AN_ECLOSED, so a
 * stale id is never a dangling pointer.
 *
 * Typical host loop:
 *   feed(in) -> while (next_event) handle -> send(out) -> write out to socket
 * and after any application call (write, read, close, reset, open, ping):
 * send(out).  an_yamux_want_send() says whether send has anything to do.
 *
 * Roles: the caller picks client (odd stream ids from 1) or server (even
 * ids from 2) - normally the connection dialer is the client, but DCUtR
 * assigns roles independently of who called connect().
 *
 * Flow control: every stream starts with the spec's 256 KiB window each way.
 * Data received is buffered in the session (at most the stream's receive
 * window: a peer sending more is a protocol error) until the application
 * reads it; the window is re-opened only as the application consumes
 * (backpressure).  A WindowUpdate is sent once half the window has been
 * consumed (rust-yamux's rule).  Auto-tuning: if that half-window was
 * consumed within 2 RTTs of the previous update, and none of it waited in
 * our buffer for 2 RTTs (a slow reader is the bottleneck, not the window),
 * the window doubles, up to max_window and within the session-wide budget
 * (rust-yamux flow_control.rs; js doubles within 4 RTTs); RTT comes from our
 * own yamux pings (an_yamux_ping), so a host wanting auto-tuning pings once
 * at session start, as js does.  An RTT below the clock's 1 ms counts as
 * 1 ms (else loopback and LAN links, where it reads 0, would never grow).
 * Receive buffers grow as data arrives (never allocated at window size up
 * front) and are freed when a large one drains, so an idle stream costs
 * ~100 bytes; a stream in a bulk transfer keeps a drained buffer of up to
 * 256 KiB until it drains while holding less than 64 KiB.
 *
 * Streams are ACKed as soon as their SYN arrives (queued for the next send,
 * exactly once: rust caps un-ACKed streams at 256 and go-yamux complains
 * about a second ACK), or refused with RST when over max_inbound_streams or
 * after a GoAway.  We never wait for the peer's ACK before writing (js ACKs
 * lazily on its first frame, dart_libp2p#29).
 *
 * Unknown stream ids: a frame without SYN for an id the peer never opened
 * (above the highest inbound id seen, or one of our ids not yet allocated)
 * is a protocol error.  Frames for a stream that existed but has been freed
 * (e.g. data in flight after we reset it) are dropped silently, as
 * rust-yamux does (paritytech/yamux#110) - treating them as errors would
 * break real sessions.
 *
 * Errors: a misbehaving peer makes the session fail with AN_EPROTO (or
 * AN_ETOOBIG for an oversized frame) and a static reason string
 * (an_yamux_error()); every later call returns the same code, and send
 * emits one GoAway (1 protocol error, 2 internal error) for the host to
 * flush before closing the connection.  Never a crash, never unbounded
 * memory: worst case per session is about
 *   max streams x ~100 B + sum of receive windows (initial_window per stream
 *   plus at most window_budget of auto-tuned growth).
 */
#ifndef AN_TRANSPORT_YAMUX_H
#define AN_TRANSPORT_YAMUX_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AN_YAMUX_PROTOCOL "/yamux/1.0.0"

/* Wire constants (spec). */
#define AN_YAMUX_HEADER_SIZE 12
#define AN_YAMUX_VERSION 0
#define AN_YAMUX_TYPE_DATA 0
#define AN_YAMUX_TYPE_WINDOW_UPDATE 1
#define AN_YAMUX_TYPE_PING 2
#define AN_YAMUX_TYPE_GO_AWAY 3
#define AN_YAMUX_FLAG_SYN 0x1
#define AN_YAMUX_FLAG_ACK 0x2
#define AN_YAMUX_FLAG_FIN 0x4
#define AN_YAMUX_FLAG_RST 0x8
#define AN_YAMUX_GOAWAY_NORMAL 0
#define AN_YAMUX_GOAWAY_PROTOCOL 1
#define AN_YAMUX_GOAWAY_INTERNAL 2
/* The window every stream starts with, by the spec (both directions). */
#define AN_YAMUX_INITIAL_WINDOW 262144u

/*
 * Limits.  Defaults (an_yamux_config_default):
 *   max_inbound_streams   512   streams the peer may have open with us at
 *                               once (rust's max_num_streams; js uses 1000)
 *   max_outbound_streams  512   streams we may open at once
 *   initial_window        256 KiB  (>= 256 KiB; more is announced with the
 *                               SYN/ACK frame's delta)
 *   max_window            16 MiB  per-stream auto-tuning ceiling (js's)
 *   window_budget         64 MiB  session-wide sum of growth beyond
 *                               initial_window over all streams (rust caps
 *                               the connection at 1 GiB)
 *   max_frame_body        1 MiB   largest Data payload accepted in one frame
 *                               (rust's limit); bigger is AN_ETOOBIG
 *   max_send_frame        16 KiB  largest Data payload we send in one frame
 *                               (rust's size; fits one Noise frame)
 * Counts include streams half-closed or reset but not yet released (a
 * stream is released once both FINs are through and its data read, or once
 * it is reset, and its events have been polled).
 */
struct an_yamux_config {
	uint32_t max_inbound_streams;
	uint32_t max_outbound_streams;
	uint32_t initial_window;
	uint32_t max_window;
	uint64_t window_budget;
	uint32_t max_frame_body;
	uint32_t max_send_frame;
};

/* Fill c with the defaults above. */
void an_yamux_config_default(struct an_yamux_config *c);

enum an_yamux_role {
	AN_YAMUX_CLIENT = 1, /* odd stream ids */
	AN_YAMUX_SERVER = 2  /* even stream ids */
};

enum an_yamux_event_type {
	AN_YAMUX_EV_NONE = 0,
	AN_YAMUX_EV_STREAM_NEW,   /* stream_id: the peer opened it (already ACKed) */
	AN_YAMUX_EV_READABLE,     /* stream_id: new data buffered since the last one */
	AN_YAMUX_EV_PEER_FIN,     /* stream_id: the peer will send no more (read on
	                             until empty; writing is still allowed) */
	AN_YAMUX_EV_PEER_RST,     /* stream_id: the peer reset it.  Data it sent
	                             before the RST is readable until this event
	                             is taken (READABLE comes first), then gone,
	                             and the id is released */
	AN_YAMUX_EV_WRITABLE,     /* stream_id: a write was cut short by the
	                             window and the peer has opened it again */
	AN_YAMUX_EV_PING_RTT,     /* value: round trip of our ping, ms */
	AN_YAMUX_EV_GOAWAY,       /* value: the peer's GoAway code (0): no new
	                             streams may be opened, existing ones go on;
	                             a non-zero code fails the session instead
	                             (EV_ERROR, AN_ECLOSED with the code named) */
	AN_YAMUX_EV_ERROR         /* err, reason: the session failed */
};

struct an_yamux_event {
	enum an_yamux_event_type type;
	uint32_t stream_id; /* stream events; 0 for session events */
	uint32_t value;     /* PING_RTT: ms; GOAWAY: code */
	int err;            /* ERROR: AN_EPROTO, AN_ETOOBIG, -ENOMEM ... */
	const char *reason; /* ERROR: static text, never freed */
};

struct an_yamux; /* opaque session */

/*
 * New session for role.  cfg is borrowed and copied (NULL: defaults); an
 * invalid cfg (initial_window < 256 KiB, max_window < initial_window,
 * max_send_frame 0, max_frame_body 0) is -EINVAL.  *out is new; free with
 * an_yamux_free().  0 or -ENOMEM / -EINVAL.
 */
int an_yamux_new(struct an_yamux **out, enum an_yamux_role role, const struct an_yamux_config *cfg);

/* Free the session and every stream buffer (NULL-safe). */
void an_yamux_free(struct an_yamux *y);

/*
 * Bytes in.  in[0..len) is borrowed; *consumed says how much was taken.
 * Frames may arrive split anywhere (payloads are buffered as they come).
 * It consumes less than len only when output must be flushed first (the
 * queues of ping answers and stream refusals are full, a bound against
 * ping floods): call an_yamux_send(), write the bytes out, then feed the
 * rest.  Returns 0, or the session error (AN_EPROTO with a reason, AN_ETOOBIG,
 * -ENOMEM); once failed every call returns the same code.
 */
int an_yamux_feed(struct an_yamux *y, const uint8_t *in, size_t len, size_t *consumed,
		  uint64_t now_ms);

/*
 * Bytes out: append every pending control frame (ACKs, SYNs of streams not
 * yet announced, window updates, FIN, RST, ping and its answers, GoAway) to
 * out (borrowed) as far as out's cap allows; the rest stays pending.  After a
 * session error it emits the GoAway once and then returns the error.
 * 0, the session error, or -ENOMEM from out.
 */
int an_yamux_send(struct an_yamux *y, struct an_buf *out);

/* 1 if an_yamux_send() has frames to emit, else 0. */
int an_yamux_want_send(const struct an_yamux *y);

/*
 * Next event into *ev: 1 if one was written, 0 when there are none left.
 * Stream events come per stream in the order NEW, READABLE, PEER_FIN,
 * PEER_RST, WRITABLE; an ERROR event is delivered once, first.
 */
int an_yamux_next_event(struct an_yamux *y, struct an_yamux_event *ev);

/*
 * Open a stream: *id gets its id; the SYN (a WindowUpdate, delta =
 * initial_window - 256 KiB) is queued for send and data may be written at
 * once.  AN_ELIMIT at max_outbound_streams or when ids run out, AN_ECLOSED
 * after a GoAway from either side, the session error, -ENOMEM.
 */
int an_yamux_stream_open(struct an_yamux *y, uint32_t *id);

/*
 * Write up to len bytes of data (borrowed) as Data frames appended to out
 * (borrowed); pending control frames are flushed into out first (so a SYN
 * precedes the stream's data).  *accepted gets the bytes taken: fewer than
 * len when the peer's window, max_send_frame pieces or out's cap stop it.
 * Cut short by the window, an AN_YAMUX_EV_WRITABLE follows once the peer
 * opens it again.  Writing after the peer's FIN is fine.  0; AN_ECLOSED
 * (unknown id, or we already closed or reset it); the session error.
 */
int an_yamux_stream_write(struct an_yamux *y, uint32_t id, const uint8_t *data, size_t len,
			  struct an_buf *out, size_t *accepted);

/* Bytes the peer's window lets us send on id now (0 for an unknown id). */
uint32_t an_yamux_stream_send_window(const struct an_yamux *y, uint32_t id);

/*
 * Borrow the buffered received data of id: *data points into the session
 * (valid until the next call on y), *len its size (0 if none).  0 or
 * AN_ECLOSED for an unknown id.  Use with an_yamux_stream_consume().
 */
int an_yamux_stream_peek(const struct an_yamux *y, uint32_t id, const uint8_t **data, size_t *len);

/*
 * The application has used n bytes (n <= buffered): drop them and, once
 * half the window has been used, queue a WindowUpdate (auto-tuning with
 * now_ms).  0, AN_ECLOSED (unknown id), -EINVAL (n too big), session error.
 */
int an_yamux_stream_consume(struct an_yamux *y, uint32_t id, size_t n, uint64_t now_ms);

/*
 * Copy up to cap buffered bytes into buf (caller's) and consume them;
 * *got gets the count (0: nothing buffered - check for PEER_FIN).  Returns as
 * an_yamux_stream_consume().
 */
int an_yamux_stream_read(struct an_yamux *y, uint32_t id, uint8_t *buf, size_t cap, size_t *got,
			 uint64_t now_ms);

/* Bytes buffered for reading on id (0 for an unknown id). */
size_t an_yamux_stream_buffered(const struct an_yamux *y, uint32_t id);

/* Current receive window of id (grows with auto-tuning; 0 if unknown). */
uint32_t an_yamux_stream_recv_window(const struct an_yamux *y, uint32_t id);

/*
 * Half-close: queue a FIN; no more writes on id, reading goes on.  Closing
 * twice is a no-op.  0, AN_ECLOSED (unknown or reset id), session error.
 */
int an_yamux_stream_close(struct an_yamux *y, uint32_t id);

/*
 * Abort: queue an RST, drop buffered data and pending events of id; the id is
 * released once the RST is sent.  0, AN_ECLOSED (unknown id), session error.
 */
int an_yamux_stream_reset(struct an_yamux *y, uint32_t id);

/* Streams currently held (open, half-closed, or awaiting release). */
size_t an_yamux_stream_count(const struct an_yamux *y);

/*
 * Send a ping (SYN, opaque = a counter) stamped now_ms; its ACK gives an
 * AN_YAMUX_EV_PING_RTT and feeds window auto-tuning.  One ping at a time: while
 * one is outstanding this returns 0 and sends nothing.  Timing a ping out is
 * the host's job (an_yamux_ping_outstanding()).  0 or session error.
 */
int an_yamux_ping(struct an_yamux *y, uint64_t now_ms);

/* 1 and *sent_ms if a ping of ours awaits its ACK, else 0. */
int an_yamux_ping_outstanding(const struct an_yamux *y, uint64_t *sent_ms);

/* Last measured RTT in ms, or -1 before the first ping answer. */
int64_t an_yamux_rtt(const struct an_yamux *y);

/*
 * Shut down: queue a GoAway with code (AN_YAMUX_GOAWAY_NORMAL on a clean
 * shutdown); no new streams either way afterwards (inbound SYNs get RST),
 * existing streams go on.  Only the first call sends.  0 or session error.
 */
int an_yamux_goaway(struct an_yamux *y, uint32_t code);

/* 1 once the peer sent a GoAway (*code gets it, may be NULL), else 0. */
int an_yamux_peer_goaway(const struct an_yamux *y, uint32_t *code);

/* The session error (0 if none); *reason (may be NULL) gets static text. */
int an_yamux_error(const struct an_yamux *y, const char **reason);

/* Frame header helpers (for tests, fuzz seeds and tracing). */
void an_yamux_header_encode(uint8_t out[AN_YAMUX_HEADER_SIZE], uint8_t type, uint16_t flags,
			    uint32_t stream_id, uint32_t length);

struct an_yamux_header {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t stream_id;
	uint32_t length;
};

/* Decode 12 bytes (borrowed) without judging them. */
void an_yamux_header_decode(const uint8_t in[AN_YAMUX_HEADER_SIZE], struct an_yamux_header *h);

#endif
