/*
 * jsonstream.h - read a stream of JSON values (records) from a file
 * descriptor, one value at a time, each bounded by a cap.
 *
 * Values may be separated by any JSON whitespace (one per line is usual, but
 * pretty-printed values and several on one line work too).  The splitter
 * finds where a value ends (tracking strings, escapes and nesting) before
 * jansson parses it, so a huge or endless value is refused at the cap
 * without being held whole, and one value never swallows the next.
 */
#ifndef AN_RECORD_JSONSTREAM_H
#define AN_RECORD_JSONSTREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct an_json_stream {
	int fd;            /* borrowed */
	size_t max_value;  /* cap on one value's bytes */
	struct an_buf buf; /* owned: bytes read; those from start on are not consumed */
	size_t start;
	size_t scan;       /* bytes of the current value already scanned */
	int depth;         /* scanner state for the current value */
	bool in_string, escape, eof;
	uint64_t offset;   /* stream offset of buf.data[0] */
	uint64_t value_offset; /* stream offset where the last value began */
};

/* Read from fd (borrowed, not closed) with values of at most max_value bytes. */
void an_json_stream_init(struct an_json_stream *s, int fd, size_t max_value);

/* NULL-safe; frees the buffer, not the fd. */
void an_json_stream_free(struct an_json_stream *s);

/*
 * The next value: 1 with *out new (the caller json_decref()s it), 0 at the
 * clean end of the stream.  Errors (the stream cannot go on after one):
 * AN_EMALFORMED (jansson's reason in err: bad syntax, invalid UTF-8,
 * duplicate keys, too-big numbers), AN_ETOOBIG (over max_value),
 * AN_ETRUNCATED (the stream ends inside a value), -errno on read errors.
 * s->value_offset is the byte offset where the value (or error) began.
 */
int an_json_stream_next(struct an_json_stream *s, json_t **out, char *err, size_t errlen);

#endif
