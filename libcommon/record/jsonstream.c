#include "record/jsonstream.h"

#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 65536

void an_json_stream_init(struct an_json_stream *s, int fd, size_t max_value)
{
	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->max_value = max_value;
	an_buf_init(&s->buf, max_value + CHUNK);
}

void an_json_stream_free(struct an_json_stream *s)
{
	if (s)
		an_buf_free(&s->buf);
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Read one chunk; 0 (possibly setting eof) or -errno. */
static int fill(struct an_json_stream *s)
{
	uint8_t *p;
	/* Drop consumed bytes only when refilling: one move per chunk, not per value. */
	an_buf_consume(&s->buf, s->start);
	s->start = 0;
	int rc = an_buf_reserve(&s->buf, CHUNK, &p);
	if (rc)
		return rc;
	ssize_t n;
	do
		n = read(s->fd, p, CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		s->eof = true;
	s->buf.len += (size_t)n;
	s->buf.data[s->buf.len] = 0;
	return 0;
}

/*
 * Advance the scanner over the current value (which starts at buf.data[0]).
 * Returns the value's length once its end is seen, else 0.
 */
static size_t scan(struct an_json_stream *s)
{
	const uint8_t *d = s->buf.data + s->start;
	size_t i = s->scan, n = s->buf.len - s->start;
	if (i == 0) {
		if (d[0] != '{' && d[0] != '[' && d[0] != '"') {
			/* A scalar: it ends at whitespace or a structural character. */
			while (i < n && !is_space(d[i]) && !strchr("{}[],:\"", d[i]))
				i++;
			s->scan = i;
			return i < n ? (i ? i : 1) : 0;
		}
		if (d[0] == '"')
			s->in_string = true;
		else
			s->depth = 1;
		i = 1;
	}
	for (; i < n; i++) {
		uint8_t c = d[i];
		if (s->in_string) {
			if (s->escape)
				s->escape = false;
			else if (c == '\\')
				s->escape = true;
			else if (c == '"') {
				s->in_string = false;
				if (s->depth == 0)
					return i + 1;
			}
		} else if (c == '"') {
			s->in_string = true;
		} else if (c == '{' || c == '[') {
			s->depth++;
		} else if (c == '}' || c == ']') {
			if (--s->depth == 0)
				return i + 1;
		}
	}
	s->scan = i;
	return 0;
}

int an_json_stream_next(struct an_json_stream *s, json_t **out, char *err, size_t errlen)
{
	*out = NULL;
	if (err && errlen)
		err[0] = 0;
	for (;;) {
		/* Skip whitespace between values. */
		size_t ws = 0, avail = s->buf.len - s->start;
		while (ws < avail && is_space(s->buf.data[s->start + ws]))
			ws++;
		s->start += ws;
		s->offset += ws;
		if (ws < avail)
			break;
		if (s->eof)
			return 0;
		int rc = fill(s);
		if (rc)
			return rc;
	}
	s->value_offset = s->offset;
	s->scan = 0;
	s->depth = 0;
	s->in_string = s->escape = false;
	size_t len;
	while ((len = scan(s)) == 0) {
		const uint8_t *d = s->buf.data + s->start;
		size_t avail = s->buf.len - s->start;
		if (avail > s->max_value) {
			snprintf(err, errlen, "value longer than %zu bytes", s->max_value);
			return AN_ETOOBIG;
		}
		if (s->eof) {
			/* A scalar may end at the end of the stream. */
			if (s->depth == 0 && !s->in_string && avail > 0 && d[0] != '"' && d[0] != '{' &&
			    d[0] != '[') {
				len = avail;
				break;
			}
			snprintf(err, errlen, "input ends inside a value");
			return AN_ETRUNCATED;
		}
		int rc = fill(s);
		if (rc)
			return rc;
	}
	if (len > s->max_value) {
		snprintf(err, errlen, "value longer than %zu bytes", s->max_value);
		return AN_ETOOBIG;
	}
	json_error_t jerr;
	json_t *v = json_loadb((const char *)s->buf.data + s->start, len,
			       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v) {
		snprintf(err, errlen, "%s at byte %llu", jerr.text,
			 (unsigned long long)(s->value_offset + (jerr.position > 0 ? (size_t)jerr.position - 1 : 0)));
		return AN_EMALFORMED;
	}
	s->start += len;
	s->offset += len;
	*out = v;
	return 1;
}
