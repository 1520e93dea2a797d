/*
 * libFuzzer harness for the DCUtR HolePunch codec (relay/dcutr.h):
 * arbitrary bytes as a bare message and as an LP frame; a decoded message
 * must re-encode, decode to the same type and addresses and re-encode to
 * the same bytes; every address goes through an_dcutr_addr_tcp, which must
 * never crash whatever it answers.
 */
#include "relay/dcutr.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct an_dcutr_msg *a, const struct an_dcutr_msg *b)
{
	if (a->type != b->type || a->naddrs != b->naddrs)
		abort();
	for (size_t i = 0; i < a->naddrs; i++)
		if (a->addrs[i].len != b->addrs[i].len ||
		    memcmp(a->addrs[i].p, b->addrs[i].p, a->addrs[i].len) != 0)
			abort();
}

static void check(const struct an_dcutr_msg *m)
{
	struct an_dcutr_msg m2, m3;
	struct an_buf b1, b2;
	size_t used;

	for (size_t i = 0; i < m->naddrs; i++)
		(void)an_dcutr_addr_tcp(&m->addrs[i]);
	an_buf_init(&b1, 2 * AN_DCUTR_MSG_MAX);
	an_buf_init(&b2, 2 * AN_DCUTR_MSG_MAX);
	/* dropping unknown fields and extra addrs only shrinks the message */
	if (an_dcutr_msg_encode(m, &b1) < 0)
		abort();
	if (an_dcutr_msg_read(b1.data, b1.len, &m2, &used) < 0 || used != b1.len)
		abort();
	same(m, &m2);
	if (an_dcutr_msg_encode(&m2, &b2) < 0 || b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0)
		abort();
	if (an_dcutr_msg_read(b2.data, b2.len, &m3, &used) < 0)
		abort();
	same(&m2, &m3);
	an_buf_free(&b1);
	an_buf_free(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct an_dcutr_msg m;
	size_t used;

	if (an_dcutr_msg_decode(data, size, &m) == 0)
		check(&m);
	if (an_dcutr_msg_read(data, size, &m, &used) == 0) {
		if (used == 0 || used > size)
			abort();
		check(&m);
	}
	return 0;
}
