/* relay_stream.c - one relay message onto a stream (see relay_stream.h). */
#include "relay/relay_stream.h"

#include "util/buf.h"

int an_relay_stream_send(struct an_stream *s, const struct an_relay_msg *m)
{
	struct an_buf b;
	int rc;
	an_buf_init(&b, AN_RELAY_MSG_MAX + 8); /* + the uvarint length prefix */
	rc = an_relay_msg_encode(m, &b);
	if (rc == 0)
		rc = an_stream_write(s, b.data, b.len);
	an_buf_free(&b);
	return rc;
}
