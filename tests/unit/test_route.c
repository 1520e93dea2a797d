/*
 * test_route.c - the /an/route/1.0.0 codec: heads both ways, incremental
 * feeding, every limit, strict syntax, body framing, static paths.
 */
#include "route/route.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/error.h"

#define DID "dns:Y9BBkshepgRUAmC91ZtHpc"
#define ROUTE "AN-ROUTE/1.0 " DID " api.mysite\r\n"
#define GET ROUTE "GET /index.html HTTP/1.1\r\nHost: api.mysite\r\n"

/* Feed s in pieces of at most chunk bytes; *used_total gets bytes consumed. */
static int feed(struct an_route_parser *p, const char *s, size_t len, size_t chunk,
		size_t *used_total)
{
	size_t pos = 0;
	int rc = 0;

	while (pos < len) {
		size_t n = len - pos < chunk ? len - pos : chunk, used = 0;
		rc = an_route_parse(p, (const uint8_t *)s + pos, n, &used);
		pos += used;
		if (rc != 0)
			break;
	}
	if (used_total)
		*used_total = pos;
	return rc;
}

/* Parse a whole request string; returns rc, status in *status. */
static int req(const char *s, uint64_t max_body, int *status)
{
	struct an_route_parser p;
	an_route_parser_init_request(&p, max_body, 0);
	int rc = feed(&p, s, strlen(s), strlen(s) + 1, NULL);
	*status = an_route_parser_status(&p);
	an_route_parser_free(&p);
	return rc;
}

static int resp(const char *s, bool head, enum an_route_framing *framing)
{
	struct an_route_parser p;
	an_route_parser_init_response(&p, head, 0);
	int rc = feed(&p, s, strlen(s), strlen(s) + 1, NULL);
	if (rc == 1 && framing)
		*framing = an_route_parser_head(&p)->framing;
	an_route_parser_free(&p);
	return rc;
}

static void test_request_roundtrip(void)
{
	struct an_buf out;
	struct an_route_parser p;
	struct an_route_field f[] = { { "Accept", "text/html" }, { "X-Empty", "" } };
	struct an_route_request r = { .did = DID, .host = "api.mysite", .method = "POST",
				      .target = "/form?a=1", .fields = f, .n_fields = 2,
				      .framing = AN_ROUTE_BODY_LENGTH, .content_length = 5 };
	size_t used;

	an_buf_init(&out, 1 << 16);
	CHECK_EQ_INT(an_route_request_write(&out, &r), 0);
	an_buf_append(&out, "hello", 5);
	an_route_parser_init_request(&p, 0, 0);
	CHECK_EQ_INT(an_route_parse(&p, out.data, out.len, &used), 1);
	CHECK_EQ_INT(used, out.len - 5);
	const struct an_route_head *h = an_route_parser_head(&p);
	CHECK(h != NULL);
	if (h) {
		CHECK_EQ_STR(h->did, DID);
		CHECK_EQ_STR(h->host, "api.mysite");
		CHECK_EQ_STR(h->method, "POST");
		CHECK_EQ_STR(h->target, "/form?a=1");
		CHECK_EQ_INT(h->n_fields, 4);
		CHECK_EQ_STR(an_route_head_get(h, "host"), "api.mysite");
		CHECK_EQ_STR(an_route_head_get(h, "ACCEPT"), "text/html");
		CHECK_EQ_STR(an_route_head_get(h, "x-empty"), "");
		CHECK(an_route_head_get(h, "cookie") == NULL);
		CHECK_EQ_INT(h->framing, AN_ROUTE_BODY_LENGTH);
		CHECK_EQ_INT(h->content_length, 5);
	}
	an_route_parser_free(&p);
	an_buf_free(&out);
}

static void test_request_bytewise(void)
{
	const char *s = GET "Accept:  a b \t\r\nContent-Length: 3\r\n\r\nabc";
	struct an_route_parser p;
	size_t used;

	an_route_parser_init_request(&p, 0, 0);
	CHECK_EQ_INT(feed(&p, s, strlen(s), 1, &used), 1);
	CHECK_EQ_INT(used, strlen(s) - 3);
	const struct an_route_head *h = an_route_parser_head(&p);
	CHECK(h != NULL);
	if (h) {
		CHECK_EQ_STR(h->target, "/index.html");
		CHECK_EQ_STR(an_route_head_get(h, "accept"), "a b");
		CHECK_EQ_INT(h->content_length, 3);
	}
	/* complete: further input is not consumed */
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)"x", 1, &used), 1);
	CHECK_EQ_INT(used, 0);
	an_route_parser_free(&p);
}

static void test_request_every_split(void)
{
	const char *s = GET "A: 1\r\nB: 2\r\n\r\n";
	size_t len = strlen(s);

	for (size_t cut = 1; cut < len; cut++) {
		struct an_route_parser p;
		size_t u1, u2;
		an_route_parser_init_request(&p, 0, 0);
		CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)s, cut, &u1), 0);
		CHECK_EQ_INT(u1, cut);
		CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)s + cut, len - cut, &u2), 1);
		CHECK_EQ_INT(u2, len - cut);
		an_route_parser_free(&p);
	}
}

static void test_route_line_errors(void)
{
	int st;
	const char *bad[] = {
		"GET / HTTP/1.1\r\n\r\n",                                     /* no route line */
		"AN-ROUTE/1.1 " DID " a\r\nGET / HTTP/1.1\r\n\r\n",          /* version */
		"AN-ROUTE/1.0 " DID "\r\nGET / HTTP/1.1\r\n\r\n",            /* no host */
		"AN-ROUTE/1.0 did:Y9BB a\r\nGET / HTTP/1.1\r\n\r\n",         /* not dns: */
		"AN-ROUTE/1.0 dns: a\r\nGET / HTTP/1.1\r\n\r\n",             /* empty did */
		"AN-ROUTE/1.0 dns:Y0BB a\r\nGET / HTTP/1.1\r\n\r\n",         /* '0' not base58 */
		"AN-ROUTE/1.0 " DID " Api.mysite\r\nGET / HTTP/1.1\r\n\r\n", /* uppercase */
		"AN-ROUTE/1.0 " DID " mysite.\r\nGET / HTTP/1.1\r\n\r\n",    /* trailing dot */
		"AN-ROUTE/1.0 " DID " -a.b\r\nGET / HTTP/1.1\r\n\r\n",       /* leading hyphen */
		"AN-ROUTE/1.0 " DID " a..b\r\nGET / HTTP/1.1\r\n\r\n",       /* empty label */
		"AN-ROUTE/1.0 " DID " a b\r\nGET / HTTP/1.1\r\n\r\n",        /* space in host */
		"AN-ROUTE/1.0 " DID " a:80\r\nGET / HTTP/1.1\r\n\r\n",       /* port */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = req(bad[i], 0, &st);
		if (rc != AN_EMALFORMED || st != 400)
			printf("#   case %zu: rc %d status %d\n", i, rc, st);
		CHECK_EQ_INT(rc, AN_EMALFORMED);
		CHECK_EQ_INT(st, 400);
	}
}

static void test_host_label_limits(void)
{
	char s[1024], label[70];
	int st;

	memset(label, 'a', 63);
	label[63] = 0;
	snprintf(s, sizeof(s), "AN-ROUTE/1.0 " DID " %s.b\r\nGET / HTTP/1.1\r\n\r\n", label);
	CHECK_EQ_INT(req(s, 0, &st), 1);
	label[63] = 'a';
	label[64] = 0;
	snprintf(s, sizeof(s), "AN-ROUTE/1.0 " DID " %s.b\r\nGET / HTTP/1.1\r\n\r\n", label);
	CHECK_EQ_INT(req(s, 0, &st), AN_EMALFORMED);
}

static void test_did_and_host_length(void)
{
	char s[1024], did[AN_ROUTE_DID_MAX + 2], host[AN_ROUTE_HOST_MAX + 2];
	int st;

	strcpy(did, "dns:");
	memset(did + 4, 'a', AN_ROUTE_DID_MAX - 4);
	did[AN_ROUTE_DID_MAX] = 0;
	snprintf(s, sizeof(s), "AN-ROUTE/1.0 %s a\r\nGET / HTTP/1.1\r\n\r\n", did);
	CHECK_EQ_INT(req(s, 0, &st), 1);
	strcat(did, "a");
	snprintf(s, sizeof(s), "AN-ROUTE/1.0 %s a\r\nGET / HTTP/1.1\r\n\r\n", did);
	CHECK_EQ_INT(req(s, 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 400);
	/* 253 = 4 labels: 63.63.63.61 */
	memset(host, 'h', AN_ROUTE_HOST_MAX);
	host[63] = host[127] = host[191] = '.';
	host[AN_ROUTE_HOST_MAX] = 0;
	snprintf(s, sizeof(s), "AN-ROUTE/1.0 " DID " %s\r\nGET / HTTP/1.1\r\n\r\n", host);
	CHECK_EQ_INT(req(s, 0, &st), 1);
	strcat(host, "h");
	snprintf(s, sizeof(s), "AN-ROUTE/1.0 " DID " %s\r\nGET / HTTP/1.1\r\n\r\n", host);
	CHECK_EQ_INT(req(s, 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 400);
}

static void test_request_line_errors(void)
{
	int st;
	CHECK_EQ_INT(req(ROUTE "GET http://a/ HTTP/1.1\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 400);
	CHECK_EQ_INT(req(ROUTE "GET * HTTP/1.1\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 400);
	CHECK_EQ_INT(req(ROUTE "OPTIONS * HTTP/1.1\r\n\r\n", 0, &st), 1);
	CHECK_EQ_INT(req(ROUTE "G(T / HTTP/1.1\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(req(ROUTE "GET  / HTTP/1.1\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(req(ROUTE "GET /a b HTTP/1.1\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(req(ROUTE "GET /\x80 HTTP/1.1\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(req(ROUTE "GET / HTTP/1.0\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 505);
	CHECK_EQ_INT(req(ROUTE "GET / HTTP/2\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 400);
	CHECK_EQ_INT(req(ROUTE "GET /\r\n\r\n", 0, &st), AN_EMALFORMED);
}

static void test_malformed_lines(void)
{
	int st;
	const char *bad[] = {
		GET "A: 1\n\r\n",        /* bare LF */
		GET "A: 1\r\r\n\r\n",    /* CR without LF */
		GET " folded\r\n\r\n",   /* obs-fold */
		GET "A : 1\r\n\r\n",     /* space before colon */
		GET ": 1\r\n\r\n",       /* empty name */
		GET "NoColon\r\n\r\n",   /* no colon */
		GET "A: x\x01y\r\n\r\n", /* control in value */
		GET "A: x\x7fy\r\n\r\n", /* DEL in value */
		GET "A\"b: 1\r\n\r\n",   /* not a token */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = req(bad[i], 0, &st);
		if (rc != AN_EMALFORMED || st != 400)
			printf("#   case %zu: rc %d status %d\n", i, rc, st);
		CHECK_EQ_INT(rc, AN_EMALFORMED);
		CHECK_EQ_INT(st, 400);
	}
	/* obs-text (UTF-8) in values is allowed */
	CHECK_EQ_INT(req(GET "A: caf\xc3\xa9\r\n\r\n", 0, &st), 1);
}

static void test_nul_in_head(void)
{
	const char s[] = GET "A: x\0y\r\n\r\n";
	struct an_route_parser p;
	size_t used;

	an_route_parser_init_request(&p, 0, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)s, sizeof(s) - 1, &used), AN_EMALFORMED);
	CHECK_EQ_INT(an_route_parser_status(&p), 400);
	an_route_parser_free(&p);
}

static void test_sticky_error(void)
{
	struct an_route_parser p;
	size_t used;

	an_route_parser_init_request(&p, 0, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)"X\n", 2, &used), AN_EMALFORMED);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)ROUTE, strlen(ROUTE), &used),
		     AN_EMALFORMED);
	CHECK_EQ_INT(used, 0);
	CHECK(an_route_parser_head(&p) == NULL);
	CHECK(strlen(an_route_parser_why(&p)) > 0);
	an_route_parser_free(&p);
}

static void test_limit_route_line(void)
{
	char s[1200];
	int st;
	memset(s, 0, sizeof(s));
	/* a did of 600 characters makes the route line longer than 512 */
	strcpy(s, "AN-ROUTE/1.0 dns:");
	memset(s + strlen(s), 'a', 600);
	strcat(s, " a\r\n");
	CHECK_EQ_INT(req(s, 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 400);
}

/* A request whose request line is exactly n bytes (without CRLF). */
static char *request_line_of(size_t n)
{
	char *s = malloc(n + 256);
	strcpy(s, ROUTE "GET /");
	size_t pre = strlen(s);
	size_t path = n - strlen("GET /") - strlen(" HTTP/1.1");
	memset(s + pre, 'a', path);
	strcpy(s + pre + path, " HTTP/1.1\r\n\r\n");
	return s;
}

static void test_limit_request_line(void)
{
	int st;
	char *ok = request_line_of(AN_ROUTE_LINE_MAX);
	char *big = request_line_of(AN_ROUTE_LINE_MAX + 1);
	CHECK_EQ_INT(req(ok, 0, &st), 1);
	CHECK_EQ_INT(req(big, 0, &st), AN_ETOOBIG);
	CHECK_EQ_INT(st, 414);
	free(ok);
	free(big);
}

static void test_limit_field_line(void)
{
	size_t n = AN_ROUTE_LINE_MAX;
	char *s = malloc(n + 512);
	int st;

	strcpy(s, GET "X: ");
	size_t pre = strlen(s);
	memset(s + pre, 'v', n - 3);
	strcpy(s + pre + n - 3, "\r\n\r\n");
	CHECK_EQ_INT(req(s, 0, &st), 1);
	memset(s + pre, 'v', n - 2);
	strcpy(s + pre + n - 2, "\r\n\r\n");
	CHECK_EQ_INT(req(s, 0, &st), AN_ETOOBIG);
	CHECK_EQ_INT(st, 431);
	free(s);
}

static char *request_with_fields(size_t n)
{
	char *s = malloc(n * 16 + 256);
	strcpy(s, ROUTE "GET / HTTP/1.1\r\n");
	for (size_t i = 0; i < n; i++)
		sprintf(s + strlen(s), "F%zu: v\r\n", i);
	strcat(s, "\r\n");
	return s;
}

static void test_limit_field_count(void)
{
	int st;
	char *ok = request_with_fields(AN_ROUTE_FIELDS_MAX);
	char *big = request_with_fields(AN_ROUTE_FIELDS_MAX + 1);
	CHECK_EQ_INT(req(ok, 0, &st), 1);
	CHECK_EQ_INT(req(big, 0, &st), AN_ETOOBIG);
	CHECK_EQ_INT(st, 431);
	free(ok);
	free(big);
}

/* A request head of exactly total bytes (CRLFs included). */
static char *head_of(size_t total)
{
	char *s = malloc(total + 1);
	strcpy(s, ROUTE "GET / HTTP/1.1\r\n");
	while (strlen(s) + 4000 + 4 < total) {
		size_t l = strlen(s);
		memcpy(s + l, "X: ", 3);
		memset(s + l + 3, 'v', 4000 - 5);
		strcpy(s + l + 3998, "\r\n");
	}
	size_t l = strlen(s), rest = total - l - 2; /* final CRLF */
	memcpy(s + l, "Y: ", 3);
	memset(s + l + 3, 'w', rest - 5);
	strcpy(s + l + rest - 2, "\r\n\r\n");
	return s;
}

static void test_limit_head_size(void)
{
	int st;
	char *ok = head_of(AN_ROUTE_HEAD_MAX);
	char *big = head_of(AN_ROUTE_HEAD_MAX + 1);
	CHECK_EQ_INT(strlen(ok), AN_ROUTE_HEAD_MAX);
	CHECK_EQ_INT(req(ok, 0, &st), 1);
	CHECK_EQ_INT(req(big, 0, &st), AN_ETOOBIG);
	CHECK_EQ_INT(st, 431);
	free(ok);
	free(big);
}

static void test_request_framing(void)
{
	int st;
	struct an_route_parser p;
	size_t used;
	const char *chunked = GET "Transfer-Encoding: Chunked\r\n\r\n";

	an_route_parser_init_request(&p, 0, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)chunked, strlen(chunked), &used), 1);
	CHECK_EQ_INT(an_route_parser_head(&p)->framing, AN_ROUTE_BODY_CHUNKED);
	an_route_parser_free(&p);
	an_route_parser_init_request(&p, 0, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)GET "\r\n", strlen(GET "\r\n"), &used), 1);
	CHECK_EQ_INT(an_route_parser_head(&p)->framing, AN_ROUTE_BODY_NONE);
	an_route_parser_free(&p);

	CHECK_EQ_INT(req(GET "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", 0, &st),
		     AN_EMALFORMED);
	CHECK_EQ_INT(st, 400);
	CHECK_EQ_INT(req(GET "Transfer-Encoding: gzip, chunked\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 501);
	CHECK_EQ_INT(req(GET "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
			 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 501);
	CHECK_EQ_INT(req(GET "Content-Length: 5, 5\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(st, 400);
	CHECK_EQ_INT(req(GET "Content-Length: +5\r\n\r\n", 0, &st), AN_EMALFORMED);
	CHECK_EQ_INT(req(GET "Content-Length: 12345678901234567890\r\n\r\n", 0, &st),
		     AN_EMALFORMED);
	CHECK_EQ_INT(req(GET "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, &st),
		     AN_EMALFORMED);
	CHECK_EQ_INT(req(GET "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, &st), 1);
}

static void test_request_body_cap(void)
{
	int st;
	CHECK_EQ_INT(req(GET "Content-Length: 100\r\n\r\n", 100, &st), 1);
	CHECK_EQ_INT(req(GET "Content-Length: 101\r\n\r\n", 100, &st), AN_ETOOBIG);
	CHECK_EQ_INT(st, 413);
}

static void test_head_timeout(void)
{
	struct an_route_parser p;
	size_t used;

	an_route_parser_init_request(&p, 0, 1000 + AN_ROUTE_HEAD_TIMEOUT_MS);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)ROUTE, strlen(ROUTE), &used), 0);
	CHECK(!an_route_parser_expired(&p, 1000 + AN_ROUTE_HEAD_TIMEOUT_MS - 1));
	CHECK(an_route_parser_expired(&p, 1000 + AN_ROUTE_HEAD_TIMEOUT_MS));
	CHECK_EQ_INT(an_route_parser_status(&p), 408);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)"G", 1, &used), -ETIMEDOUT);
	an_route_parser_free(&p);

	an_route_parser_init_response(&p, false, 50);
	CHECK(an_route_parser_expired(&p, 60));
	CHECK_EQ_INT(an_route_parser_status(&p), 504);
	an_route_parser_free(&p);
}

static void test_no_timeout_after_head(void)
{
	struct an_route_parser p;
	size_t used;

	an_route_parser_init_request(&p, 0, 50);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)GET "\r\n", strlen(GET "\r\n"), &used), 1);
	CHECK(!an_route_parser_expired(&p, 1000));
	CHECK_EQ_INT(an_route_parser_status(&p), 0);
	an_route_parser_free(&p);
}

static void test_plain_http_request(void)
{
	const char *s = "GET /an/l2xkit3ikcvxz7cv@mysite/ HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
	struct an_route_parser p;
	size_t used;

	an_route_parser_init_http_request(&p, 0, 0);
	CHECK_EQ_INT(feed(&p, s, strlen(s), 1, &used), 1);
	const struct an_route_head *h = an_route_parser_head(&p);
	CHECK(h != NULL);
	if (h) {
		CHECK(h->did == NULL && h->host == NULL);
		CHECK_EQ_STR(h->target, "/an/l2xkit3ikcvxz7cv@mysite/");
		CHECK_EQ_STR(an_route_head_get(h, "host"), "127.0.0.1:8080");
	}
	an_route_parser_free(&p);
	/* a route line is not a request line */
	an_route_parser_init_http_request(&p, 0, 0);
	CHECK_EQ_INT(feed(&p, GET "\r\n", strlen(GET "\r\n"), 64, NULL), AN_EMALFORMED);
	CHECK_EQ_INT(an_route_parser_status(&p), 400);
	an_route_parser_free(&p);
}

static void test_plain_request_line_limit(void)
{
	char *s = request_line_of(AN_ROUTE_LINE_MAX + 1);
	const char *line = s + strlen(ROUTE);
	struct an_route_parser p;

	an_route_parser_init_http_request(&p, 0, 0);
	CHECK_EQ_INT(feed(&p, line, strlen(line), 4096, NULL), AN_ETOOBIG);
	CHECK_EQ_INT(an_route_parser_status(&p), 414);
	an_route_parser_free(&p);
	free(s);
}

static void test_plain_request_write(void)
{
	struct an_buf out;
	struct an_route_parser p;
	struct an_route_request r = { .host = "mysite", .method = "GET", .target = "/x" };
	size_t used;

	an_buf_init(&out, 4096);
	CHECK_EQ_INT(an_route_request_write(&out, &r), 0);
	CHECK_EQ_STR((const char *)out.data, "GET /x HTTP/1.1\r\nHost: mysite\r\n\r\n");
	an_route_parser_init_http_request(&p, 0, 0);
	CHECK_EQ_INT(an_route_parse(&p, out.data, out.len, &used), 1);
	CHECK_EQ_INT(used, out.len);
	an_route_parser_free(&p);
	an_buf_free(&out);
}

static void test_upstream_http10(void)
{
	const char *s = "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6\r\nContent-Length: 2\r\n\r\nhi";
	struct an_route_parser p;
	size_t used;

	an_route_parser_init_upstream_response(&p, false, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)s, strlen(s), &used), 1);
	CHECK_EQ_INT(used, strlen(s) - 2);
	CHECK_EQ_INT(an_route_parser_head(&p)->status, 200);
	CHECK_EQ_INT(an_route_parser_head(&p)->content_length, 2);
	an_route_parser_free(&p);
	an_route_parser_init_upstream_response(&p, false, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)"HTTP/0.9 200 OK\r\n", 17, &used),
		     AN_EMALFORMED);
	an_route_parser_free(&p);
}

/* 100 Continue (also unasked), 102 and 103 before the answer are skipped; byte by byte too. */
static void test_upstream_interim_heads_skipped(void)
{
	const char *s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
			"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct an_route_parser p;
	size_t used, total = 0;
	int rc = 0;

	an_route_parser_init_upstream_response(&p, false, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)s, strlen(s), &used), 1);
	CHECK_EQ_INT(used, strlen(s) - 2);
	const struct an_route_head *h = an_route_parser_head(&p);
	CHECK(h != NULL);
	if (!h) {
		an_route_parser_free(&p);
		return;
	}
	CHECK_EQ_INT(h->status, 200);
	CHECK_EQ_INT(h->n_fields, 1);
	CHECK_EQ_STR(h->fields[0].name, "Content-Length");
	CHECK(an_route_head_get(h, "Link") == NULL);
	CHECK_EQ_INT(h->content_length, 2);
	an_route_parser_free(&p);
	an_route_parser_init_upstream_response(&p, false, 0);
	for (size_t i = 0; i < strlen(s) && rc == 0; i++) {
		rc = an_route_parse(&p, (const uint8_t *)s + i, 1, &used);
		total += used;
	}
	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_INT(total, strlen(s) - 2);
	CHECK(an_route_parser_head(&p) && an_route_parser_head(&p)->status == 200);
	an_route_parser_free(&p);
}

static void test_upstream_interim_limits(void)
{
	char many[512] = "";
	struct an_route_parser p;
	size_t used;

	an_route_parser_init_upstream_response(&p, false, 0);
	const char *sw = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)sw, strlen(sw), &used), AN_EPROTO);
	CHECK_EQ_INT(an_route_parser_status(&p), 502);
	an_route_parser_free(&p);
	for (int i = 0; i <= AN_ROUTE_INTERIM_MAX; i++)
		strcat(many, "HTTP/1.1 100 Continue\r\n\r\n");
	strcat(many, "HTTP/1.1 200 OK\r\n\r\n");
	an_route_parser_init_upstream_response(&p, false, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)many, strlen(many), &used), AN_EPROTO);
	an_route_parser_free(&p);
	/* one fewer is fine */
	an_route_parser_init_upstream_response(&p, false, 0);
	const char *rest = many + strlen("HTTP/1.1 100 Continue\r\n\r\n");
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)rest, strlen(rest), &used), 1);
	an_route_parser_free(&p);
	/* a route client still refuses them: our server never sends one */
	an_route_parser_init_response(&p, false, 0);
	const char *c = "HTTP/1.1 100 Continue\r\n\r\n";
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)c, strlen(c), &used), AN_EPROTO);
	an_route_parser_free(&p);
}

static void test_response_roundtrip(void)
{
	struct an_buf out;
	struct an_route_parser p;
	struct an_route_field f[] = { { "Content-Type", "text/html" } };
	struct an_route_response r = { .status = 404, .fields = f, .n_fields = 1,
				       .framing = AN_ROUTE_BODY_CHUNKED };
	size_t used;

	an_buf_init(&out, 1 << 16);
	CHECK_EQ_INT(an_route_response_write(&out, &r), 0);
	CHECK_EQ_STR((const char *)out.data, "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n"
					     "Transfer-Encoding: chunked\r\n\r\n");
	an_route_parser_init_response(&p, false, 0);
	CHECK_EQ_INT(feed(&p, (const char *)out.data, out.len, 1, &used), 1);
	const struct an_route_head *h = an_route_parser_head(&p);
	CHECK(h != NULL);
	if (h) {
		CHECK_EQ_INT(h->status, 404);
		CHECK_EQ_STR(h->reason, "Not Found");
		CHECK_EQ_STR(an_route_head_get(h, "content-type"), "text/html");
		CHECK_EQ_INT(h->framing, AN_ROUTE_BODY_CHUNKED);
	}
	an_route_parser_free(&p);
	an_buf_free(&out);
}

static void test_response_framing(void)
{
	enum an_route_framing fr = AN_ROUTE_BODY_CHUNKED;
	CHECK_EQ_INT(resp("HTTP/1.1 200 OK\r\n\r\n", false, &fr), 1);
	CHECK_EQ_INT(fr, AN_ROUTE_BODY_EOF);
	CHECK_EQ_INT(resp("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", false, &fr), 1);
	CHECK_EQ_INT(fr, AN_ROUTE_BODY_LENGTH);
	CHECK_EQ_INT(resp("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, &fr), 1);
	CHECK_EQ_INT(fr, AN_ROUTE_BODY_NONE);
	CHECK_EQ_INT(resp("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", false, &fr), 1);
	CHECK_EQ_INT(fr, AN_ROUTE_BODY_NONE);
	CHECK_EQ_INT(resp("HTTP/1.1 304 Not Modified\r\n\r\n", false, &fr), 1);
	CHECK_EQ_INT(fr, AN_ROUTE_BODY_NONE);
	CHECK_EQ_INT(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, NULL),
		     AN_EPROTO);
	CHECK_EQ_INT(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1"
			  "\r\n\r\n", false, NULL), AN_EMALFORMED);
}

static void test_status_lines(void)
{
	struct an_route_parser p;
	size_t used;
	const char *noreason = "HTTP/1.1 200\r\n\r\n";

	an_route_parser_init_response(&p, false, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)noreason, strlen(noreason), &used), 1);
	CHECK_EQ_STR(an_route_parser_head(&p)->reason, "");
	an_route_parser_free(&p);
	CHECK_EQ_INT(resp("HTTP/1.1 200 \r\n\r\n", false, NULL), 1);
	CHECK_EQ_INT(resp("HTTP/1.0 200 OK\r\n\r\n", false, NULL), AN_EMALFORMED);
	CHECK_EQ_INT(resp("HTTP/1.1 20 OK\r\n\r\n", false, NULL), AN_EMALFORMED);
	CHECK_EQ_INT(resp("HTTP/1.1 2000 OK\r\n\r\n", false, NULL), AN_EMALFORMED);
	CHECK_EQ_INT(resp("HTTP/1.1 600 X\r\n\r\n", false, NULL), AN_EMALFORMED);
	CHECK_EQ_INT(resp("HTTP/1.1 100 Continue\r\n\r\n", false, NULL), AN_EPROTO);
	CHECK_EQ_INT(resp("HTTP/1.1 200 O\x01K\r\n\r\n", false, NULL), AN_EMALFORMED);
}

static void test_response_error_status(void)
{
	struct an_route_parser p;
	size_t used;

	an_route_parser_init_response(&p, false, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)"garbage\r\n", 9, &used), AN_EMALFORMED);
	CHECK_EQ_INT(an_route_parser_status(&p), 502);
	an_route_parser_free(&p);
}

static void test_response_head_limits(void)
{
	struct an_route_parser p;
	char *s = malloc(AN_ROUTE_HEAD_MAX + 64);
	size_t used;

	/* one field line over the line limit */
	strcpy(s, "HTTP/1.1 200 OK\r\nX: ");
	memset(s + strlen(s), 'v', AN_ROUTE_LINE_MAX);
	an_route_parser_init_response(&p, false, 0);
	CHECK_EQ_INT(an_route_parse(&p, (const uint8_t *)s, strlen(s), &used), AN_ETOOBIG);
	CHECK_EQ_INT(an_route_parser_status(&p), 502);
	an_route_parser_free(&p);
	/* a whole head over the head limit, in short lines */
	strcpy(s, "HTTP/1.1 200 OK\r\n");
	while (strlen(s) < AN_ROUTE_HEAD_MAX)
		strcat(s, "X: 0123456789012345678901234567890123456789012345678901234567890\r\n");
	an_route_parser_init_response(&p, false, 0);
	CHECK_EQ_INT(feed(&p, s, strlen(s), 1000, NULL), AN_ETOOBIG);
	an_route_parser_free(&p);
	free(s);
}

static void test_response_writer_refuses(void)
{
	struct an_buf out;
	struct an_route_field te[] = { { "Transfer-Encoding", "chunked" } };
	struct an_route_response r = { .status = 200, .reason = "OK\r\nX: y" };

	an_buf_init(&out, 4096);
	CHECK_EQ_INT(an_route_response_write(&out, &r), -EINVAL);
	r.reason = NULL;
	r.status = 100;
	CHECK_EQ_INT(an_route_response_write(&out, &r), -EINVAL);
	r.status = 200;
	r.fields = te;
	r.n_fields = 1;
	CHECK_EQ_INT(an_route_response_write(&out, &r), -EINVAL);
	CHECK_EQ_INT(out.len, 0);
	r.n_fields = 0;
	r.framing = AN_ROUTE_BODY_EOF;
	CHECK_EQ_INT(an_route_response_write(&out, &r), 0);
	CHECK_EQ_STR((const char *)out.data, "HTTP/1.1 200 OK\r\n\r\n");
	an_buf_free(&out);
}

static void test_error_write(void)
{
	struct an_buf out;
	struct an_route_parser p;
	struct an_route_body b;
	size_t used, used2, dl;
	const uint8_t *d;

	an_buf_init(&out, 4096);
	CHECK_EQ_INT(an_route_error_write(&out, 421), 0);
	an_route_parser_init_response(&p, false, 0);
	CHECK_EQ_INT(an_route_parse(&p, out.data, out.len, &used), 1);
	const struct an_route_head *h = an_route_parser_head(&p);
	CHECK_EQ_INT(h->status, 421);
	CHECK_EQ_STR(h->reason, "Misdirected Request");
	CHECK_EQ_INT(h->framing, AN_ROUTE_BODY_LENGTH);
	CHECK_EQ_STR(an_route_head_get(h, "X-Content-Type-Options"), "nosniff");
	an_route_body_init(&b, h->framing, h->content_length, 0);
	CHECK_EQ_INT(an_route_body_decode(&b, out.data + used, out.len - used, &used2, &d, &dl), 1);
	CHECK_EQ_INT(dl, strlen("421 Misdirected Request\n"));
	CHECK_EQ_MEM(d, "421 Misdirected Request\n", dl);
	CHECK_EQ_INT(used + used2, out.len);
	an_route_parser_free(&p);
	CHECK_EQ_INT(an_route_error_write(&out, 200), -EINVAL);
	an_buf_free(&out);
}

static void test_writer_refuses_injection(void)
{
	struct an_buf out;
	struct an_route_field crlf[] = { { "A", "x\r\nEvil: 1" } };
	struct an_route_field cl[] = { { "content-length", "5" } };
	struct an_route_field host[] = { { "Host", "other" } };
	struct an_route_field name[] = { { "A B", "x" } };
	struct an_route_request r = { .did = DID, .host = "mysite", .method = "GET", .target = "/" };

	an_buf_init(&out, 4096);
	an_buf_append(&out, "keep", 4);
	r.fields = crlf, r.n_fields = 1;
	CHECK_EQ_INT(an_route_request_write(&out, &r), -EINVAL);
	r.fields = cl;
	CHECK_EQ_INT(an_route_request_write(&out, &r), -EINVAL);
	r.fields = host;
	CHECK_EQ_INT(an_route_request_write(&out, &r), -EINVAL);
	r.fields = name;
	CHECK_EQ_INT(an_route_request_write(&out, &r), -EINVAL);
	r.n_fields = 0;
	r.target = "/a b";
	CHECK_EQ_INT(an_route_request_write(&out, &r), -EINVAL);
	r.target = "/";
	r.host = "My.Site";
	CHECK_EQ_INT(an_route_request_write(&out, &r), -EINVAL);
	r.host = "mysite";
	r.did = "dns:0OIl";
	CHECK_EQ_INT(an_route_request_write(&out, &r), -EINVAL);
	/* nothing was appended by the failures */
	CHECK_EQ_INT(out.len, 4);
	CHECK_EQ_STR((const char *)out.data, "keep");
	an_buf_free(&out);
}

static void test_writer_head_too_big(void)
{
	struct an_buf out;
	static char big[AN_ROUTE_LINE_MAX];
	struct an_route_field f[3];
	struct an_route_request r = { .did = DID, .host = "mysite", .method = "GET",
				      .target = "/", .fields = f, .n_fields = 3 };

	memset(big, 'v', sizeof(big) - 8);
	big[sizeof(big) - 8] = 0;
	for (int i = 0; i < 3; i++)
		f[i] = (struct an_route_field){ "X", big };
	an_buf_init(&out, 1 << 20);
	CHECK_EQ_INT(an_route_request_write(&out, &r), AN_ETOOBIG);
	CHECK_EQ_INT(out.len, 0);
	r.n_fields = 1;
	CHECK_EQ_INT(an_route_request_write(&out, &r), 0);
	an_buf_free(&out);
}

static void test_writer_out_cap(void)
{
	struct an_buf out;
	struct an_route_request r = { .did = DID, .host = "mysite", .method = "GET", .target = "/" };

	an_buf_init(&out, 20);
	CHECK_EQ_INT(an_route_request_write(&out, &r), AN_ETOOBIG);
	CHECK_EQ_INT(out.len, 0);
	an_buf_free(&out);
}

/* Decode in[0..len) handed over chunk bytes at a time; payload into got. */
static int decode_all(struct an_route_body *b, const char *in, size_t len, size_t chunk,
		      struct an_buf *got, size_t *consumed)
{
	size_t pos = 0, have = 0;
	int rc = 0;

	while (have < len) {
		have = have + chunk < len ? have + chunk : len;
		while (pos < have) {
			size_t used, dl;
			const uint8_t *d;
			rc = an_route_body_decode(b, (const uint8_t *)in + pos, have - pos, &used, &d, &dl);
			if (rc < 0)
				goto out;
			if (used == 0 && rc == 0) { /* would loop forever */
				rc = -1000;
				goto out;
			}
			if (dl)
				an_buf_append(got, d, dl);
			pos += used;
			if (rc == 1)
				goto out;
		}
	}
out:
	if (consumed)
		*consumed = pos;
	return rc;
}

static void test_chunked_roundtrip(void)
{
	struct an_buf wire, got;
	struct an_route_writer w;
	struct an_route_body b;
	static uint8_t data[70000];
	size_t consumed;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	an_buf_init(&wire, 1 << 20);
	an_route_writer_init(&w, AN_ROUTE_BODY_CHUNKED, 0);
	CHECK_EQ_INT(an_route_writer_write(&w, &wire, data, 1), 0);
	CHECK_EQ_INT(an_route_writer_write(&w, &wire, data + 1, 0), 0);
	CHECK_EQ_INT(an_route_writer_write(&w, &wire, data + 1, 65535), 0);
	CHECK_EQ_INT(an_route_writer_write(&w, &wire, data + 65536, sizeof(data) - 65536), 0);
	CHECK_EQ_INT(an_route_writer_end(&w, &wire), 0);
	CHECK_EQ_INT(an_route_writer_write(&w, &wire, data, 1), -EINVAL);
	an_buf_append(&wire, "NEXT", 4);
	size_t chunks[] = { 1, 3, 4096, wire.len };
	for (size_t c = 0; c < 4; c++) {
		an_buf_init(&got, 1 << 20);
		an_route_body_init(&b, AN_ROUTE_BODY_CHUNKED, 0, 0);
		CHECK_EQ_INT(decode_all(&b, (const char *)wire.data, wire.len, chunks[c], &got,
					&consumed), 1);
		CHECK_EQ_INT(consumed, wire.len - 4);
		CHECK_EQ_INT(got.len, sizeof(data));
		CHECK(got.len == sizeof(data) && memcmp(got.data, data, sizeof(data)) == 0);
		CHECK_EQ_INT(an_route_body_total(&b), sizeof(data));
		CHECK_EQ_INT(an_route_body_eof(&b), 0);
		an_buf_free(&got);
	}
	an_buf_free(&wire);
}

/* Status of the last chunked() decoder's error. */
static int chunked_status;

static int chunked(const char *s, uint64_t max, struct an_buf *got)
{
	struct an_route_body b;
	an_route_body_init(&b, AN_ROUTE_BODY_CHUNKED, 0, max);
	int rc = decode_all(&b, s, strlen(s), 1, got, NULL);
	chunked_status = an_route_body_status(&b);
	return rc;
}

static void test_chunked_edge_cases(void)
{
	struct an_buf got;
	an_buf_init(&got, 1 << 16);

	/* extensions, upper-case hex, leading zeros, trailers */
	CHECK_EQ_INT(chunked("A;name=value;x\r\n0123456789\r\n0000000000000001 ; e\r\nZ\r\n"
			     "0\r\nTrailer-A: 1\r\nB:\r\n\r\n", 0, &got), 1);
	CHECK_EQ_INT(got.len, 11);
	CHECK_EQ_MEM(got.data, "0123456789Z", 11);
	an_buf_reset(&got);
	CHECK_EQ_INT(chunked("0\r\n\r\n", 0, &got), 1);
	CHECK_EQ_INT(got.len, 0);
	/* 17 hex digits: over the cap even when the value would fit */
	CHECK_EQ_INT(chunked("00000000000000001\r\nZ\r\n0\r\n\r\n", 0, &got), AN_ETOOBIG);
	CHECK_EQ_INT(chunked_status, 400);
	CHECK_EQ_INT(chunked("ffffffffffffffff\r\n", 0, &got), 0);
	CHECK_EQ_INT(chunked("ffffffffffffffff\r\n", 1000, &got), AN_ETOOBIG);
	CHECK_EQ_INT(chunked_status, 413);
	CHECK_EQ_INT(chunked("\r\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked_status, 400);
	CHECK_EQ_INT(chunked("x\r\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked("-1\r\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked("1\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked("1\r\nZZ\r\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked("1\r\nZ\n0\r\n\r\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked("1;a\x01\r\nZ\r\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked("0\r\n folded\r\n\r\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked("0\r\nA\r\n\r\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked("0\r\nA: \x01\r\n\r\n", 0, &got), AN_EMALFORMED);
	CHECK_EQ_INT(chunked("0\r\n\r\r", 0, &got), AN_EMALFORMED);
	an_buf_free(&got);
}

static void test_chunked_limits(void)
{
	struct an_buf got;
	char *s = malloc(AN_ROUTE_CHUNK_EXT_MAX + 64);
	an_buf_init(&got, 1 << 16);

	/* payload cap: exactly max is fine, one more is not */
	CHECK_EQ_INT(chunked("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 5, &got), 1);
	CHECK_EQ_INT(chunked("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 5, &got), AN_ETOOBIG);
	CHECK_EQ_INT(chunked_status, 413);
	/* chunk extension length */
	strcpy(s, "1;");
	memset(s + 2, 'e', AN_ROUTE_CHUNK_EXT_MAX - 1);
	strcpy(s + 1 + AN_ROUTE_CHUNK_EXT_MAX, "\r\nZ\r\n0\r\n\r\n");
	CHECK_EQ_INT(chunked(s, 0, &got), 1);
	strcpy(s, "1;");
	memset(s + 2, 'e', AN_ROUTE_CHUNK_EXT_MAX);
	strcpy(s + 2 + AN_ROUTE_CHUNK_EXT_MAX, "\r\nZ\r\n0\r\n\r\n");
	CHECK_EQ_INT(chunked(s, 0, &got), AN_ETOOBIG);
	CHECK_EQ_INT(chunked_status, 400);
	free(s);
	/* trailer count */
	s = malloc(16 * (AN_ROUTE_FIELDS_MAX + 2) + 16);
	strcpy(s, "0\r\n");
	for (int i = 0; i < AN_ROUTE_FIELDS_MAX; i++)
		strcat(s, "T: v\r\n");
	strcat(s, "\r\n");
	CHECK_EQ_INT(chunked(s, 0, &got), 1);
	s[strlen(s) - 2] = 0;
	strcat(s, "T: v\r\n\r\n");
	CHECK_EQ_INT(chunked(s, 0, &got), AN_ETOOBIG);
	CHECK_EQ_INT(chunked_status, 431);
	free(s);
	/* trailer line length */
	s = malloc(AN_ROUTE_LINE_MAX + 32);
	strcpy(s, "0\r\nT:");
	memset(s + 5, 'v', AN_ROUTE_LINE_MAX - 2);
	strcpy(s + 5 + AN_ROUTE_LINE_MAX - 2, "\r\n\r\n");
	CHECK_EQ_INT(chunked(s, 0, &got), 1);
	strcpy(s, "0\r\nT:");
	memset(s + 5, 'v', AN_ROUTE_LINE_MAX - 1);
	strcpy(s + 5 + AN_ROUTE_LINE_MAX - 1, "\r\n\r\n");
	CHECK_EQ_INT(chunked(s, 0, &got), AN_ETOOBIG);
	CHECK_EQ_INT(chunked_status, 431);
	free(s);
	an_buf_free(&got);
}

static void test_chunked_truncated(void)
{
	struct an_route_body b;
	struct an_buf got;
	an_buf_init(&got, 1024);
	an_route_body_init(&b, AN_ROUTE_BODY_CHUNKED, 0, 0);
	CHECK_EQ_INT(decode_all(&b, "5\r\nabc", 6, 6, &got, NULL), 0);
	CHECK(!an_route_body_done(&b));
	CHECK_EQ_INT(an_route_body_eof(&b), AN_ETRUNCATED);
	CHECK_EQ_INT(an_route_body_status(&b), 400);
	an_buf_free(&got);
}

static void test_chunked_sticky(void)
{
	struct an_route_body b;
	size_t used, dl;
	const uint8_t *d;

	an_route_body_init(&b, AN_ROUTE_BODY_CHUNKED, 0, 0);
	CHECK_EQ_INT(an_route_body_decode(&b, (const uint8_t *)"g", 1, &used, &d, &dl),
		     AN_EMALFORMED);
	CHECK_EQ_INT(an_route_body_decode(&b, (const uint8_t *)"0\r\n\r\n", 5, &used, &d, &dl),
		     AN_EMALFORMED);
	CHECK_EQ_INT(used, 0);
	CHECK_EQ_INT(an_route_body_eof(&b), AN_EMALFORMED);
}

static void test_length_body(void)
{
	struct an_route_body b;
	struct an_buf got;
	size_t consumed;

	an_buf_init(&got, 1024);
	an_route_body_init(&b, AN_ROUTE_BODY_LENGTH, 5, 0);
	CHECK_EQ_INT(decode_all(&b, "abcdeXYZ", 8, 2, &got, &consumed), 1);
	CHECK_EQ_INT(consumed, 5);
	CHECK_EQ_MEM(got.data, "abcde", 5);
	CHECK_EQ_INT(an_route_body_eof(&b), 0);
	an_route_body_init(&b, AN_ROUTE_BODY_LENGTH, 5, 0);
	CHECK_EQ_INT(decode_all(&b, "abc", 3, 3, &got, NULL), 0);
	CHECK_EQ_INT(an_route_body_eof(&b), AN_ETRUNCATED);
	an_route_body_init(&b, AN_ROUTE_BODY_LENGTH, 0, 0);
	CHECK(an_route_body_done(&b));
	an_route_body_init(&b, AN_ROUTE_BODY_LENGTH, 6, 5);
	CHECK_EQ_INT(decode_all(&b, "abc", 3, 3, &got, NULL), AN_ETOOBIG);
	CHECK_EQ_INT(an_route_body_status(&b), 413);
	an_route_body_init(&b, AN_ROUTE_BODY_NONE, 0, 0);
	CHECK(an_route_body_done(&b));
	CHECK_EQ_INT(decode_all(&b, "abc", 3, 3, &got, &consumed), 1);
	CHECK_EQ_INT(consumed, 0);
	an_buf_free(&got);
}

static void test_eof_body(void)
{
	struct an_route_body b;
	struct an_buf got;

	an_buf_init(&got, 1024);
	an_route_body_init(&b, AN_ROUTE_BODY_EOF, 0, 0);
	CHECK_EQ_INT(decode_all(&b, "abcdef", 6, 4, &got, NULL), 0);
	CHECK(!an_route_body_done(&b));
	CHECK_EQ_INT(an_route_body_eof(&b), 0);
	CHECK(an_route_body_done(&b));
	CHECK_EQ_INT(got.len, 6);
	an_route_body_init(&b, AN_ROUTE_BODY_EOF, 0, 4);
	an_buf_reset(&got);
	CHECK_EQ_INT(decode_all(&b, "abcd", 4, 4, &got, NULL), 0);
	CHECK_EQ_INT(decode_all(&b, "e", 1, 1, &got, NULL), AN_ETOOBIG);
	CHECK_EQ_INT(got.len, 4);
	an_buf_free(&got);
}

static void test_length_writer(void)
{
	struct an_route_writer w;
	struct an_buf out;

	an_buf_init(&out, 1024);
	an_route_writer_init(&w, AN_ROUTE_BODY_LENGTH, 4);
	CHECK_EQ_INT(an_route_writer_write(&w, &out, "abc", 3), 0);
	CHECK_EQ_INT(an_route_writer_write(&w, &out, "de", 2), AN_ETOOBIG);
	CHECK_EQ_INT(an_route_writer_end(&w, &out), AN_ETRUNCATED);
	CHECK_EQ_INT(an_route_writer_write(&w, &out, "d", 1), 0);
	CHECK_EQ_INT(an_route_writer_end(&w, &out), 0);
	CHECK_EQ_INT(out.len, 4);
	CHECK_EQ_MEM(out.data, "abcd", 4);
	an_route_writer_init(&w, AN_ROUTE_BODY_NONE, 0);
	CHECK_EQ_INT(an_route_writer_write(&w, &out, "a", 1), -EINVAL);
	an_buf_free(&out);
}

static void test_chunked_writer_bytes(void)
{
	struct an_route_writer w;
	struct an_buf out;

	an_buf_init(&out, 1024);
	an_route_writer_init(&w, AN_ROUTE_BODY_CHUNKED, 0);
	CHECK_EQ_INT(an_route_writer_write(&w, &out, "0123456789abcdefX", 17), 0);
	CHECK_EQ_INT(an_route_writer_end(&w, &out), 0);
	CHECK_EQ_STR((const char *)out.data, "11\r\n0123456789abcdefX\r\n0\r\n\r\n");
	an_buf_free(&out);
}

static int norm(const char *t, char *out)
{
	return an_route_path_normalize(t, out, 256);
}

static void test_path_normalize(void)
{
	char out[256];
	CHECK_EQ_INT(norm("/", out), 0);
	CHECK_EQ_STR(out, "/");
	CHECK_EQ_INT(norm("/a/b.html?x=../y", out), 0);
	CHECK_EQ_STR(out, "/a/b.html");
	CHECK_EQ_INT(norm("//a//./b/", out), 0);
	CHECK_EQ_STR(out, "/a/b/");
	CHECK_EQ_INT(norm("/a/.", out), 0);
	CHECK_EQ_STR(out, "/a/");
	CHECK_EQ_INT(norm("/caf%C3%A9%20x.txt", out), 0);
	CHECK_EQ_STR(out, "/caf\xc3\xa9 x.txt");
	CHECK_EQ_INT(norm("/.well-known/x", out), 0);
	CHECK_EQ_STR(out, "/.well-known/x");
	CHECK_EQ_INT(norm("/a...b/..c", out), 0);
	CHECK_EQ_STR(out, "/a...b/..c");
	CHECK_EQ_INT(norm("/%2e/a", out), 0);
	CHECK_EQ_STR(out, "/a");
	CHECK_EQ_INT(norm("/a#frag", out), 0);
	CHECK_EQ_STR(out, "/a");
}

static void test_path_traversal(void)
{
	char out[256];
	const char *bad[] = {
		"/..", "/../etc/passwd", "/a/../../b", "/a/..", "/%2e%2e/x", "/%2E%2e/x",
		"/.%2e/x", "/%2e./x", "/a%2f..%2fb", "/a%2F..", "/..%2fetc", "/a%5c..%5cb",
		"/a\\..\\b", "/a%00.html", "/a%0a", "/a%7f", "/a%zz", "/a%2", "/a%", "a/b", "",
		"*", "/a\x01",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = norm(bad[i], out);
		if (rc != AN_EMALFORMED)
			printf("#   \"%s\" gave %d\n", bad[i], rc);
		CHECK_EQ_INT(rc, AN_EMALFORMED);
	}
	CHECK_EQ_INT(an_route_path_normalize(NULL, out, sizeof(out)), AN_EMALFORMED);
}

static void test_path_out_cap(void)
{
	char out[6];
	CHECK_EQ_INT(an_route_path_normalize("/abcd", out, sizeof(out)), 0);
	CHECK_EQ_STR(out, "/abcd");
	CHECK_EQ_INT(an_route_path_normalize("/abcde", out, sizeof(out)), AN_ETOOBIG);
	CHECK_EQ_INT(an_route_path_normalize("/abc/", out, sizeof(out)), 0);
	CHECK_EQ_STR(out, "/abc/");
	CHECK_EQ_INT(an_route_path_normalize("/abcd/", out, sizeof(out)), AN_ETOOBIG);
	CHECK_EQ_INT(an_route_path_normalize("/", out, 1), AN_ETOOBIG);
}

int main(void)
{
	RUN(test_request_roundtrip);
	RUN(test_request_bytewise);
	RUN(test_request_every_split);
	RUN(test_route_line_errors);
	RUN(test_host_label_limits);
	RUN(test_did_and_host_length);
	RUN(test_request_line_errors);
	RUN(test_malformed_lines);
	RUN(test_nul_in_head);
	RUN(test_sticky_error);
	RUN(test_limit_route_line);
	RUN(test_limit_request_line);
	RUN(test_limit_field_line);
	RUN(test_limit_field_count);
	RUN(test_limit_head_size);
	RUN(test_request_framing);
	RUN(test_request_body_cap);
	RUN(test_head_timeout);
	RUN(test_no_timeout_after_head);
	RUN(test_plain_http_request);
	RUN(test_plain_request_line_limit);
	RUN(test_plain_request_write);
	RUN(test_upstream_http10);
	RUN(test_upstream_interim_heads_skipped);
	RUN(test_upstream_interim_limits);
	RUN(test_response_roundtrip);
	RUN(test_response_framing);
	RUN(test_status_lines);
	RUN(test_response_error_status);
	RUN(test_response_head_limits);
	RUN(test_response_writer_refuses);
	RUN(test_error_write);
	RUN(test_writer_refuses_injection);
	RUN(test_writer_head_too_big);
	RUN(test_writer_out_cap);
	RUN(test_chunked_roundtrip);
	RUN(test_chunked_edge_cases);
	RUN(test_chunked_limits);
	RUN(test_chunked_truncated);
	RUN(test_chunked_sticky);
	RUN(test_length_body);
	RUN(test_eof_body);
	RUN(test_length_writer);
	RUN(test_chunked_writer_bytes);
	RUN(test_path_normalize);
	RUN(test_path_traversal);
	RUN(test_path_out_cap);
	return check_done();
}
