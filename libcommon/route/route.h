/*
 * route.h - the /an/route/1.0.0 content protocol (man/an-route.7), sans-I/O.
 *
 * One request per yamux stream.  The client writes a route line, then an
 * HTTP/1.1 request head (RFC 9112) and body; the server answers with an
 * HTTP/1.1 response head and body; the stream then closes.  Example:
 *
 *   AN-ROUTE/1.0 dns:Y9BBkshepgRUAmC91ZtHpc api.mysite\r\n
 *   GET /index.html HTTP/1.1\r\n
 *   Host: api.mysite\r\n
 *   \r\n
 *
 * Shape (like transport/mss.h): no sockets and no clock inside.
 *   heads in    an_route_parse()         request (server side) or response
 *                                        (client side) head, fed in any
 *                                        pieces, bounded by the limits below
 *   bodies in   an_route_body_decode()   Content-Length / chunked / FIN-
 *                                        delimited de-framing, one payload
 *                                        span at a time, zero copy
 *   heads out   an_route_request_write(), an_route_response_write(),
 *               an_route_error_write()   appended to a caller's capped an_buf
 *   bodies out  an_route_writer_*()      framing as the head announced
 *   time        an_route_parser_expired(p, now_ms): the head deadline
 *
 * The codec checks the route line's syntax only; whether this node serves
 * the host, and whether the did is an_record_did() of
 * "an://<our peer hash>@<host>" (421 otherwise), is the server's decision.
 *
 * Line syntax is strict, as a gateway in front of browsers must be (request
 * smuggling lives in lenient parsers): CRLF only (a bare CR or LF is an
 * error), no obs-fold, no NUL, no whitespace before a field's colon, both
 * Content-Length and Transfer-Encoding in one message is an error.
 */
#ifndef AN_ROUTE_ROUTE_H
#define AN_ROUTE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AN_ROUTE_PROTOCOL "/an/route/1.0.0"
/* First token of the route line. */
#define AN_ROUTE_MAGIC "AN-ROUTE/1.0"

/* Limits (man/an-route.7, LIMITS). */
#define AN_ROUTE_HEAD_MAX 16384     /* a whole head, route line included, CRLFs counted */
#define AN_ROUTE_LINE_MAX 8192      /* one line without its CRLF */
#define AN_ROUTE_FIELDS_MAX 100     /* header fields in one head */
#define AN_ROUTE_ROUTE_LINE_MAX 512 /* the route line without its CRLF */
#define AN_ROUTE_DID_MAX 64         /* "dns:" + base58, NUL not counted */
#define AN_ROUTE_HOST_MAX 253       /* an fqdn (man/an-record.5) */
#define AN_ROUTE_CHUNK_EXT_MAX 4096 /* chunk extensions of one chunk-size line */
#define AN_ROUTE_INTERIM_MAX 8      /* 1xx heads an upstream may send before its answer */
/* Timeouts (defaults; the host enforces those that need a socket). */
#define AN_ROUTE_HEAD_TIMEOUT_MS 10000  /* stream open -> request head complete */
#define AN_ROUTE_IDLE_TIMEOUT_MS 30000  /* no byte either way on a stream */
#define AN_ROUTE_RESPONSE_TIMEOUT_MS 30000 /* request sent -> response head */

/* How a body is delimited. */
enum an_route_framing {
	AN_ROUTE_BODY_NONE = 0, /* no body (no length given, 204, 304, HEAD) */
	AN_ROUTE_BODY_LENGTH,   /* Content-Length bytes */
	AN_ROUTE_BODY_CHUNKED,  /* Transfer-Encoding: chunked */
	AN_ROUTE_BODY_EOF       /* responses only: until the stream's FIN */
};

/* One header field.  Both strings NUL-terminated. */
struct an_route_field {
	const char *name;
	const char *value;
};

/*
 * A parsed head.  All strings are borrowed from the parser that filled it
 * and valid until that parser is reset or freed.
 */
struct an_route_head {
	/* requests */
	const char *did;    /* "dns:..." from the route line */
	const char *host;   /* the fqdn from the route line, lowercase */
	const char *method; /* a token, case kept ("GET") */
	const char *target; /* origin-form ("/a/b?q") or "*" for OPTIONS */
	/* responses */
	int status;         /* 200..599 */
	const char *reason; /* may be "" */
	/* both */
	struct an_route_field fields[AN_ROUTE_FIELDS_MAX];
	size_t n_fields;
	enum an_route_framing framing;
	uint64_t content_length; /* AN_ROUTE_BODY_LENGTH only */
};

/*
 * First value of the field called name (ASCII case-insensitive), borrowed
 * from h; NULL if absent.
 */
const char *an_route_head_get(const struct an_route_head *h, const char *name);

enum an_route_kind { AN_ROUTE_REQUEST, AN_ROUTE_RESPONSE };

/* Head parser.  Fields private; embed freely, one per stream direction. */
struct an_route_parser {
	enum an_route_kind kind;
	bool route_line;       /* request: starts with the route line */
	bool http10;           /* response: HTTP/1.0 status lines accepted */
	bool head_request;     /* response to a HEAD request: no body */
	bool skip_interim;     /* response: 1xx heads (not 101) skipped, not refused */
	bool in_interim;       /* inside a skipped 1xx head */
	unsigned interim;      /* 1xx heads skipped so far */
	uint64_t max_body;     /* request bodies: over it is 413 (0: no cap) */
	uint64_t deadline_ms;  /* head must be complete before (0: none) */
	struct an_buf buf;     /* the head bytes, capped at AN_ROUTE_HEAD_MAX */
	size_t line_start;     /* offset of the line being read */
	size_t line_no;        /* complete lines so far */
	bool cr;               /* last byte was CR */
	bool done;
	int error;             /* sticky */
	int status;            /* HTTP status for error (requests) */
	const char *why;       /* static reason for error */
	/* offsets into buf, turned into pointers when the head completes */
	size_t off_a, off_b, off_c, off_d;
	size_t field_off[AN_ROUTE_FIELDS_MAX][2];
	struct an_route_head head;
};

/*
 * Request parser (server side).  max_body caps request bodies announced by
 * Content-Length (413 at the head; chunked bodies are capped by the body
 * decoder given the same max); 0 means no cap.  deadline_ms is the absolute
 * time (caller's clock) by which the head must be complete, 0 for none; a
 * host passes now + AN_ROUTE_HEAD_TIMEOUT_MS when the stream opens.
 * Allocates nothing until bytes arrive; free with an_route_parser_free.
 */
void an_route_parser_init_request(struct an_route_parser *p, uint64_t max_body,
				  uint64_t deadline_ms);

/*
 * Response parser (client side).  head_request: the request was HEAD, so the
 * response has no body whatever its fields say.  deadline_ms as above
 * (now + AN_ROUTE_RESPONSE_TIMEOUT_MS when the request was sent).
 */
void an_route_parser_init_response(struct an_route_parser *p, bool head_request,
				   uint64_t deadline_ms);

/*
 * The same codec for the plain HTTP/1.1 ends of an Alternet path, so a
 * gateway and a reverse proxy need no second parser:
 *
 * A plain HTTP/1.1 request without the route line (a browser's request to
 * the an-dial gateway); did and host of the head stay NULL.  Otherwise as
 * an_route_parser_init_request.
 */
void an_route_parser_init_http_request(struct an_route_parser *p, uint64_t max_body,
				       uint64_t deadline_ms);

/*
 * A response from an upstream web server (an-serve --upstream): as
 * an_route_parser_init_response, but "HTTP/1.0" status lines are accepted
 * too (python3 -m http.server answers HTTP/1.0), and interim 1xx heads
 * other than 101 (100 Continue, 102, 103) are skipped, up to
 * AN_ROUTE_INTERIM_MAX of them, each within the head limits; the head
 * returned is the final one.  The head written on to the Alternet client is
 * always HTTP/1.1.
 */
void an_route_parser_init_upstream_response(struct an_route_parser *p, bool head_request,
					    uint64_t deadline_ms);

/* Free the parser's buffer (NULL-safe); the head's strings die with it. */
void an_route_parser_free(struct an_route_parser *p);

/*
 * Feed in[0..len) (borrowed).  Consumes head bytes only and sets *used:
 *   0   more input is needed (all of in was consumed)
 *   1   the head is complete (an_route_parser_head); in[*used..len) is body
 *   AN_EMALFORMED  a syntax error             (request: 400, 501 or 505)
 *   AN_ETOOBIG     a limit was exceeded       (request: 413, 414 or 431)
 *   AN_EPROTO      response only: a head we must not accept (1xx but as
 *                  an upstream parser skips them, unknown transfer coding)
 *   -ENOMEM        (status 500)
 *   -ETIMEDOUT     after an_route_parser_expired said so (408 / 504)
 * Errors are sticky; an_route_parser_status gives the status a server
 * answers with and an_route_parser_why a static description.  After 1,
 * later calls return 1 and consume nothing.
 */
int an_route_parse(struct an_route_parser *p, const uint8_t *in, size_t len, size_t *used);

/* The parsed head (borrowed from p), NULL until an_route_parse returned 1. */
const struct an_route_head *an_route_parser_head(const struct an_route_parser *p);

/*
 * HTTP status for the parser's error: 400, 408, 413, 414, 431, 501 or 505
 * for a request parser, 502 for a response parser (what a gateway answers);
 * 0 if there is no error.
 */
int an_route_parser_status(const struct an_route_parser *p);

/* Static description of the parser's error, "" if none. */
const char *an_route_parser_why(const struct an_route_parser *p);

/*
 * true if the head is not complete and now_ms is at or past the deadline.
 * It then also becomes the parser's sticky error: -ETIMEDOUT, status 408
 * (request) or 504 (response).
 */
bool an_route_parser_expired(struct an_route_parser *p, uint64_t now_ms);

/* Body de-framing.  Fields private. */
struct an_route_body {
	enum an_route_framing framing;
	uint64_t remaining; /* LENGTH: bytes left; CHUNKED: of the current chunk */
	uint64_t total;     /* payload bytes delivered */
	uint64_t max;       /* cap on total (0: none) */
	int state;
	unsigned count;     /* digits of a chunk size / trailer fields */
	size_t line_len;    /* chunk extension or trailer line length so far */
	bool done;
	int error;          /* sticky */
	int status;         /* HTTP status for error */
};

/*
 * Decoder for a body framed as framing (from the head), content_length for
 * AN_ROUTE_BODY_LENGTH, max the cap on payload bytes (0: none; over it is
 * AN_ETOOBIG, 413 for a server).
 */
void an_route_body_init(struct an_route_body *b, enum an_route_framing framing,
			uint64_t content_length, uint64_t max);

/*
 * Feed in[0..len) (borrowed).  Consumes framing bytes up to and including
 * at most one payload span, which is returned in *data and *data_len (a pointer
 * into in; *data_len may be 0).  *used counts everything consumed.  When
 * len > 0 and the body is not complete, at least one byte is consumed, so
 * calling in a loop over the input always progresses.
 *   0   the body goes on
 *   1   the body is complete; in[*used..len) is not part of it (with one
 *       request per stream, more bytes are a protocol error for the caller)
 *   AN_EMALFORMED  bad chunked framing                           (400)
 *   AN_ETOOBIG     payload over max                              (413)
 *                  trailer fields over their count or line limit (431)
 *                  a chunk size over 16 hex digits, chunk
 *                  extensions over AN_ROUTE_CHUNK_EXT_MAX        (400)
 * (the status a server answers with: an_route_body_status).  Errors are
 * sticky.  Trailer fields are checked for syntax and limits and discarded.
 */
int an_route_body_decode(struct an_route_body *b, const uint8_t *in, size_t len, size_t *used,
			 const uint8_t **data, size_t *data_len);

/*
 * The stream ended (FIN).  0 if the body is complete (always for
 * AN_ROUTE_BODY_EOF, which completes here), AN_ETRUNCATED if it was cut
 * short (then the sticky error, status 400), or the decoder's sticky error.
 */
int an_route_body_eof(struct an_route_body *b);

/*
 * HTTP status for the decoder's error (400, 413 or 431; a client answering
 * a browser uses 502 for any), 0 if there is none.
 */
int an_route_body_status(const struct an_route_body *b);

/* true once the body is complete. */
bool an_route_body_done(const struct an_route_body *b);

/* Payload bytes delivered so far. */
uint64_t an_route_body_total(const struct an_route_body *b);

/* A request head to write (client side).  All borrowed for the call. */
struct an_route_request {
	const char *did;    /* "dns:" + base58btc; NULL: no route line (a plain
			       HTTP/1.1 request for an upstream web server) */
	const char *host;   /* lowercase fqdn */
	const char *method; /* token */
	const char *target; /* origin-form, or "*" */
	const struct an_route_field *fields; /* without Host, Content-Length,
					        Transfer-Encoding: written from
					        host and framing */
	size_t n_fields;
	enum an_route_framing framing;   /* NONE, LENGTH or CHUNKED */
	uint64_t content_length;
};

/*
 * Append the route line and request head to out (the writer adds Host:
 * and the framing field).  Appends all or nothing.  0, -EINVAL for a field
 * that does not pass the parser's own rules (so header injection through
 * CR/LF is impossible), AN_ETOOBIG if the head would exceed the limits, or
 * out's error.
 */
int an_route_request_write(struct an_buf *out, const struct an_route_request *r);

/* A response head to write (server side).  All borrowed for the call. */
struct an_route_response {
	int status;         /* 200..599 */
	const char *reason; /* NULL: an_route_status_reason(status) */
	const struct an_route_field *fields; /* without Content-Length and
					        Transfer-Encoding */
	size_t n_fields;
	enum an_route_framing framing; /* NONE writes no framing field (204,
					  304); EOF: the body ends at FIN */
	uint64_t content_length;       /* LENGTH (also right for HEAD) */
};

/* Append a response head to out.  Returns as an_route_request_write. */
int an_route_response_write(struct an_buf *out, const struct an_route_response *r);

/*
 * Append a complete error response: status, Content-Type: text/plain,
 * X-Content-Type-Options: nosniff, Content-Length and a one-line body
 * "<status> <reason>\n".  -EINVAL if status is not 400..599.
 */
int an_route_error_write(struct an_buf *out, int status);

/* Static reason phrase of a status ("Not Found"), "" for unknown ones. */
const char *an_route_status_reason(int status);

/* Body framing on the way out.  Fields private. */
struct an_route_writer {
	enum an_route_framing framing;
	uint64_t remaining;
	bool done;
};

void an_route_writer_init(struct an_route_writer *w, enum an_route_framing framing,
			  uint64_t content_length);

/*
 * Append data[0..len) framed (a chunk for CHUNKED, as is otherwise; len 0
 * writes nothing).  Appends all or nothing.  -EINVAL for NONE or after
 * end, AN_ETOOBIG past the announced Content-Length, or out's error.
 */
int an_route_writer_write(struct an_route_writer *w, struct an_buf *out, const void *data,
			  size_t len);

/*
 * End the body: the last chunk for CHUNKED; nothing otherwise (EOF bodies
 * end with the stream's FIN, sent by the caller).  AN_ETRUNCATED if fewer
 * than Content-Length bytes were written.
 */
int an_route_writer_end(struct an_route_writer *w, struct an_buf *out);

/*
 * Static-file path from a request target, without touching the file system:
 * the query is dropped, percent-escapes are decoded, empty and "."
 * segments are removed; the result starts with '/', keeps a trailing '/'
 * (a directory), and is written NUL-terminated to out (cap outlen).
 * AN_EMALFORMED for a target that is not origin-form, a ".." segment
 * (plain or encoded), an encoded '/' or '\' (%2f, %5c), a raw '\', NUL
 * (%00) or another control byte, or a bad escape; AN_ETOOBIG if out is too
 * small.  The server answers AN_EMALFORMED with 400.
 */
int an_route_path_normalize(const char *target, char *out, size_t outlen);

#endif
