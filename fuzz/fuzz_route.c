/*
 * libFuzzer harness for the /an/route/1.0.0 codec.  The first byte picks
 * the parser (bit 0: request / server side or response / client side; bit
 * 1: the response answers HEAD; bit 2: the plain HTTP variant - a request
 * without route line, an upstream response that may be HTTP/1.0), the second the largest chunk handed over
 * at once; the rest is what the peer sends: a head, then a body de-framed
 * by what the head announced, then FIN.
 * Checks the contracts: used never exceeds the bytes offered, payload spans
 * lie inside the input, a parsed request head survives being written back
 * and parsed again unchanged, and a normalized path never holds a ".."
 * segment, a backslash or a control byte.
 */
#include "route/route.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *target)
{
	char out[AN_ROUTE_LINE_MAX + 1];
	if (an_route_path_normalize(target, out, sizeof(out)) != 0)
		return;
	size_t n = strlen(out);
	if (out[0] != '/' || strstr(out, "/../") || (n >= 3 && strcmp(out + n - 3, "/..") == 0) ||
	    strchr(out, '\\'))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)out[i] < 0x20 || out[i] == 0x7f)
			abort();
}

/* Write a parsed request head again and parse the result: same head. */
static void check_rewrite(const struct an_route_head *h)
{
	struct an_route_field f[AN_ROUTE_FIELDS_MAX];
	size_t n = 0, used;
	struct an_buf out;
	struct an_route_parser p;

	if (!h->did) /* a plain request: the route line would be new */
		return;

	for (size_t i = 0; i < h->n_fields; i++) {
		const char *name = h->fields[i].name;
		if (strcasecmp(name, "host") && strcasecmp(name, "content-length") &&
		    strcasecmp(name, "transfer-encoding"))
			f[n++] = h->fields[i];
	}
	struct an_route_request r = { .did = h->did, .host = h->host, .method = h->method,
				      .target = h->target, .fields = f, .n_fields = n,
				      .framing = h->framing, .content_length = h->content_length };
	an_buf_init(&out, 2 * AN_ROUTE_HEAD_MAX);
	int rc = an_route_request_write(&out, &r);
	if (rc == AN_ETOOBIG || (rc == -EINVAL && n > AN_ROUTE_FIELDS_MAX - 2))
		goto out; /* the added Host line did not fit */
	if (rc != 0)
		abort();
	an_route_parser_init_request(&p, 0, 0);
	if (an_route_parse(&p, out.data, out.len, &used) != 1 || used != out.len)
		abort();
	const struct an_route_head *g = an_route_parser_head(&p);
	if (strcmp(g->did, h->did) || strcmp(g->host, h->host) || strcmp(g->method, h->method) ||
	    strcmp(g->target, h->target) || g->framing != h->framing ||
	    g->content_length != h->content_length || g->n_fields != n + 1 + (h->framing != 0))
		abort();
	for (size_t i = 0; i < n; i++)
		if (strcmp(g->fields[i + 1].name, f[i].name) ||
		    strcmp(g->fields[i + 1].value, f[i].value))
			abort();
	an_route_parser_free(&p);
out:
	an_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct an_route_parser p;
	struct an_route_body b;
	size_t pos = 0, chunk;
	int rc = 0;

	if (size < 2)
		return 0;
	bool request = !(data[0] & 1);
	bool head_req = data[0] & 2;
	bool plain = data[0] & 4;
	chunk = data[1] ? data[1] : 1;
	data += 2;
	size -= 2;
	if (request && plain)
		an_route_parser_init_http_request(&p, 1 << 20, 0);
	else if (request)
		an_route_parser_init_request(&p, 1 << 20, 0);
	else if (plain)
		an_route_parser_init_upstream_response(&p, head_req, 0);
	else
		an_route_parser_init_response(&p, head_req, 0);
	while (rc == 0 && pos < size) {
		size_t used = 0, n = size - pos < chunk ? size - pos : chunk;
		rc = an_route_parse(&p, data + pos, n, &used);
		if (used > n || (rc == 0 && used != n))
			abort();
		pos += used;
	}
	if (rc < 0) {
		if (an_route_parser_status(&p) < 400 || an_route_parser_head(&p))
			abort();
		goto out;
	}
	if (rc == 0)
		goto out;
	const struct an_route_head *h = an_route_parser_head(&p);
	if (!h)
		abort();
	if (request && plain != (h->did == NULL))
		abort();
	if (request) {
		check_path(h->target);
		check_rewrite(h);
	} else if (h->status < 200 || h->status > 599) {
		abort();
	}
	an_route_body_init(&b, h->framing, h->content_length, 1 << 20);
	rc = 0;
	while (rc == 0 && pos < size) {
		size_t used, dl, n = size - pos < chunk ? size - pos : chunk;
		const uint8_t *d;
		rc = an_route_body_decode(&b, data + pos, n, &used, &d, &dl);
		if (used > n || (rc == 0 && used == 0))
			abort();
		if (dl && (d < data + pos || d + dl > data + pos + used))
			abort();
		pos += used;
	}
	if (rc >= 0) {
		rc = an_route_body_eof(&b);
		if (rc == 0 && !an_route_body_done(&b))
			abort();
	}
	if (rc < 0) {
		int st = an_route_body_status(&b);
		if (st != 400 && st != 413 && st != 431)
			abort();
	}
out:
	an_route_parser_free(&p);
	return 0;
}
