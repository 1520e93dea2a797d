/*
 * buf.h - a growable byte buffer with a hard cap (after curl's dynbuf).
 *
 * Every buffer that holds input from outside (stdin, files, sockets) is an
 * an_buf with a cap chosen by its owner; reaching the cap is AN_ETOOBIG, a
 * clean data error, never memory exhaustion.  The buffer owns data; free it
 * with an_buf_free().  data is always NUL-terminated (not counted in len) so
 * text can be handed to parsers directly.
 */
#ifndef AN_UTIL_BUF_H
#define AN_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct an_buf {
	uint8_t *data; /* owned; NULL until the first append */
	size_t len;    /* bytes in use */
	size_t alloc;  /* bytes allocated */
	size_t max;    /* cap on len */
};

/* Empty buffer that may grow to max bytes.  Allocates nothing. */
void an_buf_init(struct an_buf *b, size_t max);

/* Free the data (NULL-safe on b and on a never-used buffer); b is re-usable. */
void an_buf_free(struct an_buf *b);

/* Append n bytes.  0, AN_ETOOBIG past the cap (b unchanged), -ENOMEM. */
int an_buf_append(struct an_buf *b, const void *p, size_t n);

/* Append one byte. */
int an_buf_putc(struct an_buf *b, uint8_t c);

/* Make room for n more bytes without changing len; *out points at them. */
int an_buf_reserve(struct an_buf *b, size_t n, uint8_t **out);

/* Drop the first n bytes (n <= len), keeping the rest in order. */
void an_buf_consume(struct an_buf *b, size_t n);

/* Set len to 0, keeping the allocation. */
void an_buf_reset(struct an_buf *b);

/*
 * If b is empty and its allocation is larger than keep bytes, free the
 * allocation (data becomes NULL, as after an_buf_init); else nothing.  For
 * owners of long-lived buffers that drain: a connection that once carried a
 * burst should not hold its high-water allocation while idle.  Returns
 * whether it freed.
 */
int an_buf_shrink(struct an_buf *b, size_t keep);

/* Hand the data over to the caller (who frees it with free()); b becomes empty. */
uint8_t *an_buf_steal(struct an_buf *b, size_t *len);

#endif
