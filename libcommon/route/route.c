/*
 * route.c - the /an/route/1.0.0 codec (see route.h and man/an-route.7).
 */
#include "route/route.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"

/* ---- character classes (RFC 9110 section 5.6.2, RFC 9112) ---- */

static bool is_tchar(uint8_t c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar, SP or HTAB: anything but controls (obs-text allowed). */
static bool is_value_char(uint8_t c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool token_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((uint8_t)s[i]))
			return false;
	return true;
}

/* "dns:" + 1..60 base58btc characters (record dids are 22 at most). */
static bool did_ok(const char *s, size_t n)
{
	static const char b58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
	if (n <= 4 || n > AN_ROUTE_DID_MAX || memcmp(s, "dns:", 4) != 0)
		return false;
	for (size_t i = 4; i < n; i++)
		if (s[i] == 0 || !strchr(b58, s[i]))
			return false;
	return true;
}

/* A lowercase fqdn by the LDH rules of man/an-record.5. */
static bool host_ok(const char *s, size_t n)
{
	size_t label = 0;
	if (n == 0 || n > AN_ROUTE_HOST_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? s[i] : '.';
		if (c == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* origin-form (starts with '/', visible ASCII only) or "*". */
static bool target_ok(const char *s, size_t n)
{
	if (n == 1 && s[0] == '*')
		return true;
	if (n == 0 || s[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)s[i] <= 0x20 || (uint8_t)s[i] >= 0x7f)
			return false;
	return true;
}

static bool value_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_value_char((uint8_t)s[i]))
			return false;
	/* no leading or trailing whitespace: the parser would trim it */
	return n == 0 || (!is_ows((uint8_t)s[0]) && !is_ows((uint8_t)s[n - 1]));
}

/* 1..19 digits, nothing else (RFC 9110 8.6; lists like "5, 5" refused). */
static bool parse_length(const char *s, uint64_t *v)
{
	size_t n = strlen(s);
	uint64_t x = 0;
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*v = x;
	return true;
}

const char *an_route_status_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 421: return "Misdirected Request";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "";
	}
}

/* ---- head parser ---- */

const char *an_route_head_get(const struct an_route_head *h, const char *name)
{
	for (size_t i = 0; i < h->n_fields; i++)
		if (strcasecmp(h->fields[i].name, name) == 0)
			return h->fields[i].value;
	return NULL;
}

static void parser_init(struct an_route_parser *p, enum an_route_kind kind, uint64_t deadline_ms)
{
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->deadline_ms = deadline_ms;
	an_buf_init(&p->buf, AN_ROUTE_HEAD_MAX);
}

void an_route_parser_init_request(struct an_route_parser *p, uint64_t max_body,
				  uint64_t deadline_ms)
{
	parser_init(p, AN_ROUTE_REQUEST, deadline_ms);
	p->max_body = max_body;
	p->route_line = true;
}

void an_route_parser_init_http_request(struct an_route_parser *p, uint64_t max_body,
				       uint64_t deadline_ms)
{
	parser_init(p, AN_ROUTE_REQUEST, deadline_ms);
	p->max_body = max_body;
}

void an_route_parser_init_response(struct an_route_parser *p, bool head_request,
				   uint64_t deadline_ms)
{
	parser_init(p, AN_ROUTE_RESPONSE, deadline_ms);
	p->head_request = head_request;
}

void an_route_parser_init_upstream_response(struct an_route_parser *p, bool head_request,
					    uint64_t deadline_ms)
{
	an_route_parser_init_response(p, head_request, deadline_ms);
	p->http10 = true;
	p->skip_interim = true;
}

void an_route_parser_free(struct an_route_parser *p)
{
	if (!p)
		return;
	an_buf_free(&p->buf);
}

/* Record a sticky error.  A response parser's status is always 502. */
static int fail(struct an_route_parser *p, int err, int status, const char *why)
{
	p->error = err;
	p->status = p->kind == AN_ROUTE_RESPONSE ? 502 : status;
	p->why = why;
	return err;
}

static int parse_route_line(struct an_route_parser *p, size_t start, size_t end)
{
	char *s = (char *)p->buf.data;
	size_t magic = sizeof(AN_ROUTE_MAGIC) - 1;
	size_t i, did_end;

	if (end - start <= magic || memcmp(s + start, AN_ROUTE_MAGIC " ", magic + 1) != 0)
		return fail(p, AN_EMALFORMED, 400, "not an AN-ROUTE/1.0 route line");
	i = start + magic + 1;
	for (did_end = i; did_end < end && s[did_end] != ' '; did_end++)
		;
	if (did_end == end || !did_ok(s + i, did_end - i))
		return fail(p, AN_EMALFORMED, 400, "bad did in route line");
	if (!host_ok(s + did_end + 1, end - did_end - 1))
		return fail(p, AN_EMALFORMED, 400, "bad host in route line");
	p->off_a = i;
	p->off_b = did_end + 1;
	s[did_end] = 0;
	s[end] = 0;
	return 0;
}

static int parse_request_line(struct an_route_parser *p, size_t start, size_t end)
{
	char *s = (char *)p->buf.data;
	size_t m_end, t_end;

	for (m_end = start; m_end < end && s[m_end] != ' '; m_end++)
		;
	if (m_end == end || !token_ok(s + start, m_end - start))
		return fail(p, AN_EMALFORMED, 400, "bad method");
	for (t_end = m_end + 1; t_end < end && s[t_end] != ' '; t_end++)
		;
	if (t_end == end || !target_ok(s + m_end + 1, t_end - m_end - 1))
		return fail(p, AN_EMALFORMED, 400, "bad request target");
	if (s[m_end + 1] == '*' && !(m_end - start == 7 && memcmp(s + start, "OPTIONS", 7) == 0))
		return fail(p, AN_EMALFORMED, 400, "'*' target outside OPTIONS");
	const char *v = s + t_end + 1;
	size_t vn = end - t_end - 1;
	if (vn != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
	    v[7] < '0' || v[7] > '9')
		return fail(p, AN_EMALFORMED, 400, "bad HTTP version");
	if (memcmp(v, "HTTP/1.1", 8) != 0)
		return fail(p, AN_EMALFORMED, 505, "HTTP version other than 1.1");
	p->off_c = start;
	p->off_d = m_end + 1;
	s[m_end] = 0;
	s[t_end] = 0;
	return 0;
}

static int parse_status_line(struct an_route_parser *p, size_t start, size_t end)
{
	char *s = (char *)p->buf.data;
	size_t n = end - start;
	const char *l = s + start;

	/* "HTTP/1.1 200 OK"; the SP before an empty reason may be missing */
	if (n < 12 ||
	    (memcmp(l, "HTTP/1.1 ", 9) != 0 && !(p->http10 && memcmp(l, "HTTP/1.0 ", 9) == 0)) ||
	    l[9] < '0' || l[9] > '9' ||
	    l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9' || (n > 12 && l[12] != ' '))
		return fail(p, AN_EMALFORMED, 502, "bad status line");
	int status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	if (status < 100 || status > 599)
		return fail(p, AN_EMALFORMED, 502, "status out of range");
	if (status < 200) {
		/*
		 * An upstream may send 100 Continue (python's http.server does
		 * for Expect: 100-continue, and RFC 9110 15.2 lets any server
		 * send one unasked), 102 or 103 before its answer: skipped.  101
		 * would switch protocols, which a proxy that dropped Upgrade
		 * never asked for.
		 */
		if (!p->skip_interim || status == 101)
			return fail(p, AN_EPROTO, 502, "interim (1xx) response");
		if (++p->interim > AN_ROUTE_INTERIM_MAX)
			return fail(p, AN_EPROTO, 502, "too many interim (1xx) responses");
		p->in_interim = true;
		return 0;
	}
	for (size_t i = start + 13; i < end; i++)
		if (!is_value_char((uint8_t)s[i]))
			return fail(p, AN_EMALFORMED, 502, "bad reason phrase");
	p->head.status = status;
	p->off_a = n > 12 ? start + 13 : end;
	s[end] = 0;
	return 0;
}

static int parse_field_line(struct an_route_parser *p, size_t start, size_t end)
{
	char *s = (char *)p->buf.data;
	size_t colon, v, ve;

	if (is_ows((uint8_t)s[start]))
		return fail(p, AN_EMALFORMED, 400, "obsolete line folding");
	for (colon = start; colon < end && s[colon] != ':'; colon++)
		if (!is_tchar((uint8_t)s[colon]))
			return fail(p, AN_EMALFORMED, 400, "bad field name");
	if (colon == end || colon == start)
		return fail(p, AN_EMALFORMED, 400, "field line without name or colon");
	for (v = colon + 1; v < end && is_ows((uint8_t)s[v]); v++)
		;
	for (ve = end; ve > v && is_ows((uint8_t)s[ve - 1]); ve--)
		;
	for (size_t i = v; i < ve; i++)
		if (!is_value_char((uint8_t)s[i]))
			return fail(p, AN_EMALFORMED, 400, "control character in field value");
	if (p->head.n_fields == AN_ROUTE_FIELDS_MAX)
		return fail(p, AN_ETOOBIG, 431, "too many header fields");
	p->field_off[p->head.n_fields][0] = start;
	p->field_off[p->head.n_fields][1] = v;
	p->head.n_fields++;
	s[colon] = 0;
	s[ve] = 0;
	return 0;
}

/* Decide the body framing (RFC 9112 section 6.3, strict). */
static int head_framing(struct an_route_parser *p)
{
	struct an_route_head *h = &p->head;
	const char *te = NULL;
	size_t n_te = 0;
	bool have_cl = false;
	uint64_t cl = 0;

	for (size_t i = 0; i < h->n_fields; i++) {
		const struct an_route_field *f = &h->fields[i];
		if (strcasecmp(f->name, "transfer-encoding") == 0) {
			te = f->value;
			n_te++;
		} else if (strcasecmp(f->name, "content-length") == 0) {
			uint64_t v;
			if (!parse_length(f->value, &v) || (have_cl && v != cl))
				return fail(p, AN_EMALFORMED, 400, "bad Content-Length");
			cl = v;
			have_cl = true;
		}
	}
	if (p->kind == AN_ROUTE_RESPONSE &&
	    (p->head_request || h->status == 204 || h->status == 304)) {
		h->framing = AN_ROUTE_BODY_NONE;
		return 0;
	}
	if (n_te) {
		/* both: a smuggling vector; RFC 9112 6.1 lets us refuse it */
		if (have_cl)
			return fail(p, AN_EMALFORMED, 400,
				    "both Content-Length and Transfer-Encoding");
		if (n_te > 1 || strcasecmp(te, "chunked") != 0)
			return fail(p, p->kind == AN_ROUTE_RESPONSE ? AN_EPROTO : AN_EMALFORMED,
				    501, "transfer coding other than chunked");
		h->framing = AN_ROUTE_BODY_CHUNKED;
	} else if (have_cl) {
		if (p->kind == AN_ROUTE_REQUEST && p->max_body && cl > p->max_body)
			return fail(p, AN_ETOOBIG, 413, "request body over the limit");
		h->framing = AN_ROUTE_BODY_LENGTH;
		h->content_length = cl;
	} else {
		h->framing = p->kind == AN_ROUTE_REQUEST ? AN_ROUTE_BODY_NONE : AN_ROUTE_BODY_EOF;
	}
	return 0;
}

static int head_finish(struct an_route_parser *p)
{
	char *s = (char *)p->buf.data;
	struct an_route_head *h = &p->head;

	if (p->kind == AN_ROUTE_REQUEST) {
		if (p->route_line) {
			h->did = s + p->off_a;
			h->host = s + p->off_b;
		}
		h->method = s + p->off_c;
		h->target = s + p->off_d;
	} else {
		h->reason = s + p->off_a;
	}
	for (size_t i = 0; i < h->n_fields; i++) {
		h->fields[i].name = s + p->field_off[i][0];
		h->fields[i].value = s + p->field_off[i][1];
	}
	int rc = head_framing(p);
	if (rc < 0)
		return rc;
	p->done = true;
	return 1;
}

/* A complete line buf[start..end) (CRLF at end).  0, 1 (head done) or error. */
static int line_done(struct an_route_parser *p, size_t start, size_t end)
{
	size_t no = p->line_no++;

	if (p->kind == AN_ROUTE_REQUEST) {
		if (p->route_line && no == 0)
			return parse_route_line(p, start, end);
		if (no == (p->route_line ? 1u : 0u))
			return parse_request_line(p, start, end);
	} else if (no == 0) {
		return parse_status_line(p, start, end);
	}
	if (start == end && p->in_interim) {
		/* the end of an interim head: forget it, the next status line starts over */
		p->in_interim = false;
		p->line_no = 0;
		p->head.n_fields = 0;
		p->buf.len = 0;
		return 0;
	}
	if (start == end)
		return head_finish(p);
	return parse_field_line(p, start, end);
}

int an_route_parse(struct an_route_parser *p, const uint8_t *in, size_t len, size_t *used)
{
	size_t i;
	int rc;

	*used = 0;
	if (p->error)
		return p->error;
	if (p->done)
		return 1;
	for (i = 0; i < len; i++) {
		uint8_t c = in[i];
		*used = i + 1;
		if (p->buf.len >= AN_ROUTE_HEAD_MAX)
			return fail(p, AN_ETOOBIG, 431, "head too large");
		rc = an_buf_putc(&p->buf, c);
		if (rc < 0)
			return fail(p, rc, 500, "out of memory");
		if (p->cr) {
			if (c != '\n')
				return fail(p, AN_EMALFORMED, 400, "CR without LF");
			p->cr = false;
			rc = line_done(p, p->line_start, p->buf.len - 2);
			if (rc != 0)
				return rc;
			p->line_start = p->buf.len;
			continue;
		}
		if (c == '\r') {
			p->cr = true;
			continue;
		}
		if (c == '\n')
			return fail(p, AN_EMALFORMED, 400, "LF without CR");
		if (c == 0)
			return fail(p, AN_EMALFORMED, 400, "NUL in head");
		size_t line_len = p->buf.len - p->line_start;
		if (p->route_line && p->line_no == 0) {
			if (line_len > AN_ROUTE_ROUTE_LINE_MAX)
				return fail(p, AN_EMALFORMED, 400, "route line too long");
		} else if (line_len > AN_ROUTE_LINE_MAX) {
			if (p->kind == AN_ROUTE_REQUEST && p->line_no == (p->route_line ? 1u : 0u))
				return fail(p, AN_ETOOBIG, 414, "request line too long");
			return fail(p, AN_ETOOBIG, 431, "header line too long");
		}
	}
	*used = len;
	return 0;
}

const struct an_route_head *an_route_parser_head(const struct an_route_parser *p)
{
	return p->done ? &p->head : NULL;
}

int an_route_parser_status(const struct an_route_parser *p)
{
	return p->error ? p->status : 0;
}

const char *an_route_parser_why(const struct an_route_parser *p)
{
	return p->error && p->why ? p->why : "";
}

bool an_route_parser_expired(struct an_route_parser *p, uint64_t now_ms)
{
	if (p->done || p->error || p->deadline_ms == 0 || now_ms < p->deadline_ms)
		return false;
	fail(p, -ETIMEDOUT, 408, "head not complete in time");
	/* a client that waited too long for a response head is a gateway timeout */
	if (p->kind == AN_ROUTE_RESPONSE)
		p->status = 504;
	return true;
}

/* ---- body de-framing ---- */

enum {
	CH_SIZE = 0,
	CH_EXT,
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TRAILER_START,
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_END_LF
};

/* Record a sticky error and the status a server answers it with. */
static int body_fail_status(struct an_route_body *b, int err, int status)
{
	b->error = err;
	b->status = status;
	return err;
}

static int body_fail(struct an_route_body *b, int err)
{
	return body_fail_status(b, err, 400);
}

void an_route_body_init(struct an_route_body *b, enum an_route_framing framing,
			uint64_t content_length, uint64_t max)
{
	memset(b, 0, sizeof(*b));
	b->framing = framing;
	b->max = max;
	if (framing == AN_ROUTE_BODY_LENGTH) {
		b->remaining = content_length;
		if (max && content_length > max)
			body_fail_status(b, AN_ETOOBIG, 413);
	}
	b->done = framing == AN_ROUTE_BODY_NONE ||
		  (framing == AN_ROUTE_BODY_LENGTH && content_length == 0 && !b->error);
	b->state = CH_SIZE;
}

/* One framing byte of a chunked body.  0, 1 (done) or error. */
static int chunked_byte(struct an_route_body *b, uint8_t c)
{
	int v;

	switch (b->state) {
	case CH_SIZE:
		v = hex_value(c);
		if (v >= 0) {
			if (b->count == 16)
				return body_fail(b, AN_ETOOBIG);
			b->remaining = b->remaining << 4 | (uint64_t)v;
			b->count++;
			return 0;
		}
		if (b->count == 0)
			return body_fail(b, AN_EMALFORMED);
		if (c == '\r') {
			b->state = CH_SIZE_LF;
		} else if (c == ';' || is_ows(c)) {
			b->state = CH_EXT;
			b->line_len = 1;
		} else {
			return body_fail(b, AN_EMALFORMED);
		}
		return 0;
	case CH_EXT:
		if (c == '\r') {
			b->state = CH_SIZE_LF;
			return 0;
		}
		if (!is_value_char(c))
			return body_fail(b, AN_EMALFORMED);
		if (++b->line_len > AN_ROUTE_CHUNK_EXT_MAX)
			return body_fail(b, AN_ETOOBIG);
		return 0;
	case CH_SIZE_LF:
		if (c != '\n')
			return body_fail(b, AN_EMALFORMED);
		if (b->remaining == 0) {
			b->state = CH_TRAILER_START;
			b->count = 0;
			return 0;
		}
		if (b->max && (b->total > b->max || b->remaining > b->max - b->total))
			return body_fail_status(b, AN_ETOOBIG, 413);
		b->state = CH_DATA;
		return 0;
	case CH_DATA_CR:
		if (c != '\r')
			return body_fail(b, AN_EMALFORMED);
		b->state = CH_DATA_LF;
		return 0;
	case CH_DATA_LF:
		if (c != '\n')
			return body_fail(b, AN_EMALFORMED);
		b->state = CH_SIZE;
		b->count = 0;
		b->remaining = 0;
		return 0;
	case CH_TRAILER_START:
		if (c == '\r') {
			b->state = CH_END_LF;
			return 0;
		}
		if (!is_tchar(c))
			return body_fail(b, AN_EMALFORMED);
		if (b->count == AN_ROUTE_FIELDS_MAX)
			return body_fail_status(b, AN_ETOOBIG, 431);
		b->count++;
		b->line_len = 1;
		b->state = CH_TRAILER_NAME;
		return 0;
	case CH_TRAILER_NAME:
		if (c == ':')
			b->state = CH_TRAILER_VALUE;
		else if (!is_tchar(c))
			return body_fail(b, AN_EMALFORMED);
		if (++b->line_len > AN_ROUTE_LINE_MAX)
			return body_fail_status(b, AN_ETOOBIG, 431);
		return 0;
	case CH_TRAILER_VALUE:
		if (c == '\r') {
			b->state = CH_TRAILER_LF;
			return 0;
		}
		if (!is_value_char(c))
			return body_fail(b, AN_EMALFORMED);
		if (++b->line_len > AN_ROUTE_LINE_MAX)
			return body_fail_status(b, AN_ETOOBIG, 431);
		return 0;
	case CH_TRAILER_LF:
		if (c != '\n')
			return body_fail(b, AN_EMALFORMED);
		b->state = CH_TRAILER_START;
		return 0;
	case CH_END_LF:
		if (c != '\n')
			return body_fail(b, AN_EMALFORMED);
		b->done = true;
		return 1;
	default:
		return body_fail(b, AN_EMALFORMED);
	}
}

int an_route_body_decode(struct an_route_body *b, const uint8_t *in, size_t len, size_t *used,
			 const uint8_t **data, size_t *data_len)
{
	size_t i, n;
	int rc;

	*used = 0;
	*data = NULL;
	*data_len = 0;
	if (b->error)
		return b->error;
	if (b->done)
		return 1;
	switch (b->framing) {
	case AN_ROUTE_BODY_LENGTH:
		n = b->remaining < len ? (size_t)b->remaining : len;
		*data = in;
		*data_len = n;
		*used = n;
		b->remaining -= n;
		b->total += n;
		if (b->remaining == 0)
			b->done = true;
		return b->done;
	case AN_ROUTE_BODY_EOF:
		if (b->max && (b->total > b->max || len > b->max - b->total))
			return body_fail_status(b, AN_ETOOBIG, 413);
		*data = in;
		*data_len = len;
		*used = len;
		b->total += len;
		return 0;
	case AN_ROUTE_BODY_CHUNKED:
		break;
	default:
		return body_fail(b, -EINVAL);
	}
	for (i = 0; i < len; i++) {
		if (b->state == CH_DATA) {
			n = b->remaining < len - i ? (size_t)b->remaining : len - i;
			*data = in + i;
			*data_len = n;
			*used = i + n;
			b->remaining -= n;
			b->total += n;
			if (b->remaining == 0)
				b->state = CH_DATA_CR;
			return 0;
		}
		rc = chunked_byte(b, in[i]);
		if (rc != 0) {
			*used = i + 1;
			return rc;
		}
	}
	*used = len;
	return 0;
}

int an_route_body_eof(struct an_route_body *b)
{
	if (b->error)
		return b->error;
	if (b->framing == AN_ROUTE_BODY_EOF)
		b->done = true;
	if (!b->done)
		return body_fail(b, AN_ETRUNCATED);
	return 0;
}

int an_route_body_status(const struct an_route_body *b)
{
	return b->error ? b->status : 0;
}

bool an_route_body_done(const struct an_route_body *b)
{
	return b->done;
}

uint64_t an_route_body_total(const struct an_route_body *b)
{
	return b->total;
}

/* ---- writers ---- */

static int put(struct an_buf *out, const char *s, size_t n)
{
	return an_buf_append(out, s, n);
}

static int puts_(struct an_buf *out, const char *s)
{
	return an_buf_append(out, s, strlen(s));
}

/* Validate and write the caller's fields; framing fields are ours. */
static int put_fields(struct an_buf *out, const struct an_route_field *f, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t nn, vn;
		if (!f[i].name || !f[i].value)
			return -EINVAL;
		nn = strlen(f[i].name);
		vn = strlen(f[i].value);
		if (!token_ok(f[i].name, nn) || !value_ok(f[i].value, vn) ||
		    nn + 2 + vn > AN_ROUTE_LINE_MAX || strcasecmp(f[i].name, "content-length") == 0 ||
		    strcasecmp(f[i].name, "transfer-encoding") == 0 ||
		    strcasecmp(f[i].name, "host") == 0)
			return -EINVAL;
		if ((rc = put(out, f[i].name, nn)) < 0 || (rc = put(out, ": ", 2)) < 0 ||
		    (rc = put(out, f[i].value, vn)) < 0)
			break;
		rc = put(out, "\r\n", 2);
	}
	return rc;
}

static int put_framing(struct an_buf *out, enum an_route_framing framing, uint64_t cl)
{
	char line[48];

	switch (framing) {
	case AN_ROUTE_BODY_LENGTH:
		snprintf(line, sizeof(line), "Content-Length: %" PRIu64 "\r\n", cl);
		return puts_(out, line);
	case AN_ROUTE_BODY_CHUNKED:
		return puts_(out, "Transfer-Encoding: chunked\r\n");
	default:
		return 0;
	}
}

int an_route_request_write(struct an_buf *out, const struct an_route_request *r)
{
	size_t start = out->len;
	int rc;

	if (!r->host || !r->method || !r->target ||
	    (r->did && !did_ok(r->did, strlen(r->did))) || !host_ok(r->host, strlen(r->host)) ||
	    !token_ok(r->method, strlen(r->method)) || !target_ok(r->target, strlen(r->target)) ||
	    (r->target[0] == '*' && strcmp(r->method, "OPTIONS") != 0) ||
	    r->n_fields > AN_ROUTE_FIELDS_MAX - 2 || (r->n_fields && !r->fields) ||
	    r->framing == AN_ROUTE_BODY_EOF)
		return -EINVAL;
	if (strlen(r->method) + strlen(r->target) + 10 > AN_ROUTE_LINE_MAX)
		return AN_ETOOBIG;
	if (r->did &&
	    ((rc = puts_(out, AN_ROUTE_MAGIC " ")) < 0 || (rc = puts_(out, r->did)) < 0 ||
	     (rc = put(out, " ", 1)) < 0 || (rc = puts_(out, r->host)) < 0 ||
	     (rc = put(out, "\r\n", 2)) < 0))
		goto out;
	if ((rc = puts_(out, r->method)) < 0 ||
	    (rc = put(out, " ", 1)) < 0 || (rc = puts_(out, r->target)) < 0 ||
	    (rc = puts_(out, " HTTP/1.1\r\nHost: ")) < 0 || (rc = puts_(out, r->host)) < 0 ||
	    (rc = put(out, "\r\n", 2)) < 0 || (rc = put_fields(out, r->fields, r->n_fields)) < 0 ||
	    (rc = put_framing(out, r->framing, r->content_length)) < 0 ||
	    (rc = put(out, "\r\n", 2)) < 0)
		goto out;
	if (out->len - start > AN_ROUTE_HEAD_MAX)
		rc = AN_ETOOBIG;
out:
	if (rc < 0) {
		out->len = start;
		if (out->data)
			out->data[start] = 0;
	}
	return rc;
}

int an_route_response_write(struct an_buf *out, const struct an_route_response *r)
{
	size_t start = out->len;
	const char *reason = r->reason ? r->reason : an_route_status_reason(r->status);
	char line[32];
	int rc;

	if (r->status < 200 || r->status > 599 || !value_ok(reason, strlen(reason)) ||
	    strlen(reason) > 512 || r->n_fields > AN_ROUTE_FIELDS_MAX - 1 ||
	    (r->n_fields && !r->fields))
		return -EINVAL;
	snprintf(line, sizeof(line), "HTTP/1.1 %d ", r->status);
	if ((rc = puts_(out, line)) < 0 || (rc = puts_(out, reason)) < 0 ||
	    (rc = put(out, "\r\n", 2)) < 0 || (rc = put_fields(out, r->fields, r->n_fields)) < 0 ||
	    (rc = put_framing(out, r->framing, r->content_length)) < 0 ||
	    (rc = put(out, "\r\n", 2)) < 0)
		goto out;
	if (out->len - start > AN_ROUTE_HEAD_MAX)
		rc = AN_ETOOBIG;
out:
	if (rc < 0) {
		out->len = start;
		if (out->data)
			out->data[start] = 0;
	}
	return rc;
}

int an_route_error_write(struct an_buf *out, int status)
{
	char body[64];
	size_t start = out->len;
	int n, rc;

	if (status < 400 || status > 599)
		return -EINVAL;
	n = snprintf(body, sizeof(body), "%d %s\n", status, an_route_status_reason(status));
	struct an_route_field f[] = { { "Content-Type", "text/plain; charset=utf-8" },
				      { "X-Content-Type-Options", "nosniff" } };
	struct an_route_response r = { .status = status, .fields = f, .n_fields = 2,
				       .framing = AN_ROUTE_BODY_LENGTH,
				       .content_length = (uint64_t)n };
	rc = an_route_response_write(out, &r);
	if (rc == 0 && (rc = put(out, body, (size_t)n)) < 0) {
		out->len = start;
		if (out->data)
			out->data[start] = 0;
	}
	return rc;
}

void an_route_writer_init(struct an_route_writer *w, enum an_route_framing framing,
			  uint64_t content_length)
{
	w->framing = framing;
	w->remaining = framing == AN_ROUTE_BODY_LENGTH ? content_length : 0;
	w->done = false;
}

int an_route_writer_write(struct an_route_writer *w, struct an_buf *out, const void *data,
			  size_t len)
{
	size_t start = out->len;
	char head[24];
	int rc;

	if (w->done || w->framing == AN_ROUTE_BODY_NONE)
		return -EINVAL;
	if (len == 0)
		return 0;
	switch (w->framing) {
	case AN_ROUTE_BODY_LENGTH:
		if (len > w->remaining)
			return AN_ETOOBIG;
		rc = put(out, data, len);
		if (rc == 0)
			w->remaining -= len;
		return rc;
	case AN_ROUTE_BODY_CHUNKED:
		snprintf(head, sizeof(head), "%zx\r\n", len);
		if ((rc = puts_(out, head)) < 0 || (rc = put(out, data, len)) < 0 ||
		    (rc = put(out, "\r\n", 2)) < 0) {
			out->len = start;
			if (out->data)
				out->data[start] = 0;
		}
		return rc;
	default:
		return put(out, data, len);
	}
}

int an_route_writer_end(struct an_route_writer *w, struct an_buf *out)
{
	int rc = 0;

	if (w->done)
		return -EINVAL;
	if (w->framing == AN_ROUTE_BODY_LENGTH && w->remaining)
		return AN_ETRUNCATED;
	if (w->framing == AN_ROUTE_BODY_CHUNKED)
		rc = put(out, "0\r\n\r\n", 5);
	if (rc == 0)
		w->done = true;
	return rc;
}

/* ---- static paths ---- */

int an_route_path_normalize(const char *target, char *out, size_t outlen)
{
	const char *p = target;
	size_t o = 0;
	bool trailing = false;

	if (!target || target[0] != '/')
		return AN_EMALFORMED;
	if (outlen < 2)
		return AN_ETOOBIG;
	out[o++] = '/';
	while (*p && *p != '?' && *p != '#') {
		size_t seg; /* where this segment's bytes start in out */
		p++;        /* the '/' */
		/* a separator unless out is just "/" */
		seg = o == 1 ? o : o + 1;
		size_t w = seg;
		while (*p && *p != '/' && *p != '?' && *p != '#') {
			uint8_t c = (uint8_t)*p;
			if (c == '%') {
				int hi = hex_value((uint8_t)p[1]);
				int lo = hi < 0 ? -1 : hex_value((uint8_t)p[2]);
				if (lo < 0)
					return AN_EMALFORMED;
				c = (uint8_t)(hi << 4 | lo);
				/* an encoded separator would let a segment
				 * name a path the checks below never saw */
				if (c == '/' || c == '\\')
					return AN_EMALFORMED;
				p += 3;
			} else {
				if (c == '\\')
					return AN_EMALFORMED;
				p++;
			}
			if (c < 0x20 || c == 0x7f)
				return AN_EMALFORMED;
			if (w + 1 >= outlen)
				return AN_ETOOBIG;
			out[w++] = (char)c;
		}
		size_t n = w - seg;
		trailing = n == 0 || (n == 1 && out[seg] == '.');
		if (n == 2 && out[seg] == '.' && out[seg + 1] == '.')
			return AN_EMALFORMED;
		if (n == 0 || (n == 1 && out[seg] == '.'))
			continue;
		if (seg != 1)
			out[o] = '/';
		o = w;
	}
	if (trailing && o > 1) {
		if (o + 1 >= outlen)
			return AN_ETOOBIG;
		out[o++] = '/';
	}
	out[o] = 0;
	return 0;
}
