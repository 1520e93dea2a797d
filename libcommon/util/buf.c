#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void an_buf_init(struct an_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->max = max;
}

void an_buf_free(struct an_buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
}

int an_buf_reserve(struct an_buf *b, size_t n, uint8_t **out)
{
	if (n > b->max || b->len > b->max - n)
		return AN_ETOOBIG;
	size_t need = b->len + n + 1; /* + NUL */
	if (need > b->alloc) {
		size_t a = b->alloc ? b->alloc : 64;
		while (a < need)
			a = a > SIZE_MAX / 2 ? need : a * 2;
		if (a > b->max + 1)
			a = b->max + 1 > need ? b->max + 1 : need;
		uint8_t *p = realloc(b->data, a);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->alloc = a;
	}
	if (out)
		*out = b->data + b->len;
	return 0;
}

int an_buf_append(struct an_buf *b, const void *p, size_t n)
{
	uint8_t *dst;
	int rc = an_buf_reserve(b, n, &dst);
	if (rc < 0)
		return rc;
	if (n)
		memcpy(dst, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

int an_buf_putc(struct an_buf *b, uint8_t c)
{
	return an_buf_append(b, &c, 1);
}

void an_buf_consume(struct an_buf *b, size_t n)
{
	if (n >= b->len) {
		an_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = 0;
}

void an_buf_reset(struct an_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

int an_buf_shrink(struct an_buf *b, size_t keep)
{
	if (b->len != 0 || b->alloc <= keep)
		return 0;
	an_buf_free(b);
	return 1;
}

uint8_t *an_buf_steal(struct an_buf *b, size_t *len)
{
	uint8_t *p = b->data;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	return p;
}
