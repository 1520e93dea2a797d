/*
 * libFuzzer harness for route/client's response reader.  The first byte is
 * the largest chunk handed over at once, the second a pause pattern (bit i
 * set: the i-th body span pauses the reader, resumed after the chunk), the
 * third bit 0: the request was HEAD; the rest is what a server sends.
 * Checks that pausing changes nothing: the same input fed whole, without
 * pauses, and in chunks with pauses and resumes, ends the same way (complete
 * or not) and, when complete, delivers the same body; held bytes never
 * exceed what was fed.
 */
#include "route/client.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	struct an_route_reader *r;
	uint8_t *body;
	size_t len, cap;
	unsigned spans;
	unsigned pattern;
	int heads;
};

static void on_head(void *arg, const struct an_route_head *h)
{
	struct sink *s = arg;
	(void)h;
	s->heads++;
}

static void on_body(void *arg, const uint8_t *p, size_t n)
{
	struct sink *s = arg;
	if (s->len + n > s->cap)
		abort(); /* more body than input */
	memcpy(s->body + s->len, p, n);
	s->len += n;
	if (s->pattern & (1u << (s->spans++ % 8)))
		an_route_reader_pause(s->r);
}

static const struct an_route_reader_cb cb = {.on_head = on_head, .on_body = on_body};

/* Feed in pieces of at most chunk bytes; returns the final code. */
static int run(const uint8_t *in, size_t len, size_t chunk, bool head, struct sink *s)
{
	struct an_route_reader r;
	int rc = 0;
	size_t fed = 0;
	an_route_reader_init(&r, head, 0, 0, &cb, s);
	s->r = &r;
	while (fed < len && rc == 0) {
		size_t n = len - fed < chunk ? len - fed : chunk;
		rc = an_route_reader_feed(&r, in + fed, n);
		fed += n;
		if (an_route_reader_held(&r) > fed)
			abort();
		/* resume until nothing is held (each resume may pause again) */
		for (int i = 0; rc == 0 && r.paused && i < 100000; i++)
			rc = an_route_reader_resume(&r);
	}
	if (rc == 0) {
		rc = an_route_reader_eof(&r);
		for (int i = 0; rc == 0 && (r.paused || r.held.len || r.eof_pending) && i < 100000; i++)
			rc = an_route_reader_resume(&r);
	}
	an_route_reader_free(&r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	size_t chunk = data[0] ? data[0] : 1;
	unsigned pattern = data[1];
	bool head = data[2] & 1;
	data += 3;
	size -= 3;
	struct sink a = {.cap = size}, b = {.cap = size, .pattern = pattern};
	a.body = malloc(size + 1);
	b.body = malloc(size + 1);
	if (!a.body || !b.body)
		abort();
	int ra = run(data, size, size ? size : 1, head, &a);
	int rb = run(data, size, chunk, head, &b);
	if ((ra == 1) != (rb == 1))
		abort();
	if (ra == 1 && (a.len != b.len || memcmp(a.body, b.body, a.len) != 0 || a.heads != b.heads))
		abort();
	free(a.body);
	free(b.body);
	return 0;
}
