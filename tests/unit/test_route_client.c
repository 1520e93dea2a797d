/* test_route_client: the sans-I/O half of route/client (reader, request heads). */
#include "check.h"

#include <errno.h>
#include <stdlib.h>

#include "record/record.h"
#include "route/client.h"
#include "util/error.h"

struct got {
	int heads;
	int status;
	char body[4096];
	size_t body_len;
	int spans;
	size_t pause_after; /* pause once body_len reaches this (0: never) */
	struct an_route_reader *r;
};

static void on_head(void *arg, const struct an_route_head *h)
{
	struct got *g = arg;
	g->heads++;
	g->status = h->status;
}

static void on_body(void *arg, const uint8_t *p, size_t n)
{
	struct got *g = arg;
	if (g->body_len + n <= sizeof(g->body)) {
		memcpy(g->body + g->body_len, p, n);
		g->body_len += n;
	}
	g->spans++;
	if (g->pause_after && g->body_len >= g->pause_after) {
		g->pause_after = 0;
		an_route_reader_pause(g->r);
	}
}

static const struct an_route_reader_cb cb = {.on_head = on_head, .on_body = on_body};

static int feed_str(struct an_route_reader *r, const char *s)
{
	return an_route_reader_feed(r, (const uint8_t *)s, strlen(s));
}

static void test_reader_length_body_in_one_piece(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), 1);
	CHECK_EQ_INT(g.heads, 1);
	CHECK_EQ_INT(g.status, 200);
	CHECK_EQ_INT(g.body_len, 5);
	CHECK(memcmp(g.body, "hello", 5) == 0);
	an_route_reader_free(&r);
}

static void test_reader_byte_at_a_time(void)
{
	const char *msg = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
			  "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
	struct an_route_reader r;
	struct got g = {0};
	int rc = 0;
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	for (size_t i = 0; msg[i]; i++) {
		rc = an_route_reader_feed(&r, (const uint8_t *)msg + i, 1);
		if (msg[i + 1])
			CHECK_EQ_INT(rc, 0);
	}
	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_INT(g.status, 404);
	CHECK_EQ_INT(g.body_len, 5);
	CHECK(memcmp(g.body, "abcde", 5) == 0);
	an_route_reader_free(&r);
}

static void test_reader_eof_delimited_body(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\n\r\nuntil the end"), 0);
	CHECK_EQ_INT(an_route_reader_eof(&r), 1);
	CHECK_EQ_INT(g.body_len, strlen("until the end"));
	an_route_reader_free(&r);
}

static void test_reader_truncated_length_body(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"), 0);
	CHECK(an_route_reader_eof(&r) < 0);
	an_route_reader_free(&r);
}

static void test_reader_truncated_head(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\nContent-"), 0);
	CHECK_EQ_INT(an_route_reader_eof(&r), AN_ETRUNCATED);
	CHECK_EQ_INT(g.heads, 0);
	an_route_reader_free(&r);
}

static void test_reader_bytes_after_the_response_are_dropped(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"), 1);
	CHECK_EQ_INT(feed_str(&r, "more"), 1);
	CHECK_EQ_INT(g.body_len, 2);
	CHECK(memcmp(g.body, "ok", 2) == 0);
	an_route_reader_free(&r);
}

static void test_reader_head_request_has_no_body(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, true, 0, 0, &cb, &g);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"), 1);
	CHECK_EQ_INT(g.body_len, 0);
	an_route_reader_free(&r);
}

static void test_reader_invalid_status_line(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	CHECK(feed_str(&r, "HTTP/1.1 2000 OK\r\n\r\n") < 0);
	CHECK_EQ_INT(g.heads, 0);
	an_route_reader_free(&r);
}

static void test_reader_interim_response_refused(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 100 Continue\r\n\r\n"), AN_EPROTO);
	an_route_reader_free(&r);
}

static void test_reader_pause_holds_and_resume_delivers(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	g.r = &r;
	an_route_reader_pause(&r);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc"), 0);
	CHECK_EQ_INT(g.heads, 0); /* nothing delivered while paused */
	CHECK_EQ_INT(feed_str(&r, "def"), 0);
	CHECK_EQ_INT(an_route_reader_held(&r), strlen("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef"));
	CHECK_EQ_INT(an_route_reader_resume(&r), 1);
	CHECK_EQ_INT(g.heads, 1);
	CHECK_EQ_INT(g.body_len, 6);
	CHECK(memcmp(g.body, "abcdef", 6) == 0);
	CHECK_EQ_INT(an_route_reader_held(&r), 0);
	an_route_reader_free(&r);
}

static void test_reader_pause_from_a_callback(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	g.r = &r;
	g.pause_after = 1;
	/* chunked: the first chunk's payload pauses; the second waits */
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"), 0);
	CHECK_EQ_INT(g.body_len, 2);
	CHECK(an_route_reader_held(&r) > 0);
	CHECK_EQ_INT(an_route_reader_resume(&r), 1);
	CHECK_EQ_INT(g.body_len, 4);
	CHECK(memcmp(g.body, "abcd", 4) == 0);
	an_route_reader_free(&r);
}

static void test_reader_eof_while_paused_is_applied_on_resume(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 0, &cb, &g);
	an_route_reader_pause(&r);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\n\r\ntail"), 0);
	CHECK_EQ_INT(an_route_reader_eof(&r), 0);
	CHECK_EQ_INT(g.body_len, 0);
	CHECK_EQ_INT(an_route_reader_resume(&r), 1);
	CHECK_EQ_INT(g.body_len, 4);
	an_route_reader_free(&r);
}

static void test_reader_hold_cap(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 0, 16, &cb, &g);
	an_route_reader_pause(&r);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200 OK\r\n"), AN_ELIMIT);
	CHECK_EQ_INT(an_route_reader_resume(&r), AN_ELIMIT);
	an_route_reader_free(&r);
}

static void test_reader_head_deadline(void)
{
	struct an_route_reader r;
	struct got g = {0};
	an_route_reader_init(&r, false, 1000, 0, &cb, &g);
	CHECK_EQ_INT(feed_str(&r, "HTTP/1.1 200"), 0);
	CHECK(!an_route_reader_expired(&r, 999));
	CHECK(an_route_reader_expired(&r, 1000));
	CHECK_EQ_INT(feed_str(&r, " OK\r\n\r\n"), -ETIMEDOUT);
	an_route_reader_free(&r);
}

static void test_client_head_route_line(void)
{
	struct an_buf out;
	char did[AN_RECORD_DID_MAX], want[512];
	const struct an_route_field f[] = {{"Accept", "text/html"}};
	an_buf_init(&out, AN_ROUTE_HEAD_MAX);
	CHECK_EQ_INT(an_record_did("an://abcdefghijklmnop@api.mysite", did), 0);
	CHECK_EQ_INT(an_route_client_head(&out, "abcdefghijklmnop", "api.mysite", NULL, "/x?y=1",
					  f, 1, AN_ROUTE_BODY_NONE, 0), 0);
	snprintf(want, sizeof(want), "AN-ROUTE/1.0 %s api.mysite\r\nGET /x?y=1 HTTP/1.1\r\n", did);
	CHECK(out.len > strlen(want));
	CHECK(memcmp(out.data, want, strlen(want)) == 0);
	CHECK(strstr((const char *)out.data, "\r\nHost: api.mysite\r\n") != NULL);
	CHECK(strstr((const char *)out.data, "\r\nAccept: text/html\r\n") != NULL);
	an_buf_free(&out);
}

static void test_client_head_parses_as_a_request(void)
{
	struct an_buf out;
	struct an_route_parser p;
	size_t used = 0;
	an_buf_init(&out, AN_ROUTE_HEAD_MAX);
	CHECK_EQ_INT(an_route_client_head(&out, "abcdefghijklmnop", "mysite", "POST", "/form", NULL,
					  0, AN_ROUTE_BODY_LENGTH, 3), 0);
	an_route_parser_init_request(&p, 0, 0);
	CHECK_EQ_INT(an_route_parse(&p, out.data, out.len, &used), 1);
	const struct an_route_head *h = an_route_parser_head(&p);
	CHECK_EQ_STR(h->method, "POST");
	CHECK_EQ_STR(h->host, "mysite");
	CHECK_EQ_INT(h->framing, AN_ROUTE_BODY_LENGTH);
	CHECK_EQ_INT(h->content_length, 3);
	an_route_parser_free(&p);
	an_buf_free(&out);
}

static void test_client_head_refuses_bad_names(void)
{
	struct an_buf out;
	an_buf_init(&out, AN_ROUTE_HEAD_MAX);
	CHECK_EQ_INT(an_route_client_head(&out, "short", "mysite", NULL, NULL, NULL, 0,
					  AN_ROUTE_BODY_NONE, 0), AN_EMALFORMED);
	CHECK_EQ_INT(an_route_client_head(&out, "abcdefghijklmnop", "Bad_Host", NULL, NULL, NULL,
					  0, AN_ROUTE_BODY_NONE, 0), AN_EMALFORMED);
	CHECK_EQ_INT(out.len, 0);
	an_buf_free(&out);
}

static void test_client_head_refuses_header_injection(void)
{
	struct an_buf out;
	const struct an_route_field f[] = {{"X-A", "v\r\nEvil: 1"}};
	an_buf_init(&out, AN_ROUTE_HEAD_MAX);
	CHECK(an_route_client_head(&out, "abcdefghijklmnop", "mysite", NULL, NULL, f, 1,
				   AN_ROUTE_BODY_NONE, 0) < 0);
	CHECK_EQ_INT(out.len, 0);
	an_buf_free(&out);
}

int main(void)
{
	RUN(test_reader_length_body_in_one_piece);
	RUN(test_reader_byte_at_a_time);
	RUN(test_reader_eof_delimited_body);
	RUN(test_reader_truncated_length_body);
	RUN(test_reader_truncated_head);
	RUN(test_reader_bytes_after_the_response_are_dropped);
	RUN(test_reader_head_request_has_no_body);
	RUN(test_reader_invalid_status_line);
	RUN(test_reader_interim_response_refused);
	RUN(test_reader_pause_holds_and_resume_delivers);
	RUN(test_reader_pause_from_a_callback);
	RUN(test_reader_eof_while_paused_is_applied_on_resume);
	RUN(test_reader_hold_cap);
	RUN(test_reader_head_deadline);
	RUN(test_client_head_route_line);
	RUN(test_client_head_parses_as_a_request);
	RUN(test_client_head_refuses_bad_names);
	RUN(test_client_head_refuses_header_injection);
	return check_done();
}
