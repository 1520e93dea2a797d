#include "transport/ping.h"

#include <sodium.h>
#include <string.h>

#include "util/error.h"

void an_ping_responder_init(struct an_ping_responder *r)
{
	memset(r, 0, sizeof(*r));
}

int an_ping_responder_feed(struct an_ping_responder *r, const uint8_t *in, size_t len,
			   struct an_buf *out)
{
	while (len > 0) {
		size_t n = AN_PING_SIZE - r->have;
		if (n > len)
			n = len;
		memcpy(r->pending + r->have, in, n);
		r->have += n;
		in += n;
		len -= n;
		if (r->have == AN_PING_SIZE) {
			int rc = an_buf_append(out, r->pending, AN_PING_SIZE);
			if (rc < 0)
				return rc;
			r->have = 0;
			r->echoed++;
		}
	}
	return 0;
}

void an_ping_client_init(struct an_ping_client *c)
{
	memset(c, 0, sizeof(*c));
}

int an_ping_client_start(struct an_ping_client *c, uint64_t now_ms, struct an_buf *out)
{
	if (c->outstanding)
		return AN_EPROTO;
	randombytes_buf(c->payload, sizeof(c->payload));
	int rc = an_buf_append(out, c->payload, sizeof(c->payload));
	if (rc < 0)
		return rc;
	c->got = 0;
	c->sent_ms = now_ms;
	c->outstanding = 1;
	return 0;
}

int an_ping_client_feed(struct an_ping_client *c, const uint8_t *in, size_t len, uint64_t now_ms,
			size_t *used, uint64_t *rtt_ms)
{
	*used = 0;
	if (!c->outstanding)
		return len ? AN_EPROTO : AN_EAGAIN;
	size_t n = AN_PING_SIZE - c->got;
	if (n > len)
		n = len;
	if (memcmp(in, c->payload + c->got, n) != 0)
		return AN_EPROTO;
	c->got += n;
	*used = n;
	if (c->got < AN_PING_SIZE)
		return AN_EAGAIN;
	c->outstanding = 0;
	*rtt_ms = now_ms >= c->sent_ms ? now_ms - c->sent_ms : 0;
	return 0;
}
