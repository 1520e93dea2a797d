/*
 * libFuzzer harness for the AutoNAT codecs (nat/autonat_msg.h): the first
 * byte picks the decoder (v1 Message, v2 Message, DialBack,
 * DialBackResponse), the rest is one bare message.  A decoded message must
 * re-encode within the frame cap, and decode again to the same fields.
 */
#include "nat/autonat_msg.h"
#include "encoding/protobuf.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *unframe(const struct an_buf *b, size_t *len)
{
	const uint8_t *msg;
	size_t used;
	if (an_lp_get(b->data, b->len, AN_AUTONAT_MSG_MAX, &msg, len, &used) < 0 || used != b->len)
		abort();
	return msg;
}

static void same_bytes(const struct an_autonat_bytes *a, const struct an_autonat_bytes *b)
{
	if (a->len != b->len || (a->len && memcmp(a->p, b->p, a->len) != 0))
		abort();
}

static void v1(const uint8_t *p, size_t n)
{
	struct an_autonat1_msg m, m2;
	struct an_buf b;
	size_t len;
	if (an_autonat1_decode(p, n, &m) < 0)
		return;
	an_buf_init(&b, 2 * AN_AUTONAT_MSG_MAX);
	/* dropping unknown fields and extra addresses only shrinks it */
	if (an_autonat1_encode(&m, &b) < 0)
		abort();
	const uint8_t *q = unframe(&b, &len);
	if (an_autonat1_decode(q, len, &m2) < 0)
		abort();
	if (m.type != m2.type || m.has_dial != m2.has_dial || m.naddrs != m2.naddrs ||
	    m.has_response != m2.has_response || (m.has_response && m.status != m2.status))
		abort();
	for (size_t i = 0; i < m.naddrs; i++)
		same_bytes(&m.addrs[i], &m2.addrs[i]);
	if (m.has_peer)
		same_bytes(&m.peer_id, &m2.peer_id);
	an_buf_free(&b);
}

static void v2(const uint8_t *p, size_t n)
{
	struct an_autonat2_msg m, m2;
	struct an_buf b;
	size_t len;
	if (an_autonat2_decode(p, n, &m) < 0 || m.kind == AN_AUTONAT2_NONE)
		return;
	an_buf_init(&b, 2 * AN_AUTONAT_MSG_MAX);
	if (an_autonat2_encode(&m, &b) < 0)
		abort();
	const uint8_t *q = unframe(&b, &len);
	if (an_autonat2_decode(q, len, &m2) < 0)
		abort();
	if (m.kind != m2.kind || m.naddrs != m2.naddrs || m.nonce != m2.nonce || m.status != m2.status ||
	    m.addr_idx != m2.addr_idx || m.dial_status != m2.dial_status || m.num_bytes != m2.num_bytes)
		abort();
	for (size_t i = 0; i < m.naddrs; i++)
		same_bytes(&m.addrs[i], &m2.addrs[i]);
	same_bytes(&m.data, &m2.data);
	an_buf_free(&b);
}

static void dial_back(const uint8_t *p, size_t n)
{
	uint64_t nonce, nonce2;
	struct an_buf b;
	size_t len;
	if (an_autonat2_dial_back_decode(p, n, &nonce) < 0)
		return;
	an_buf_init(&b, 64);
	if (an_autonat2_dial_back_encode(nonce, &b) < 0)
		abort();
	const uint8_t *q = unframe(&b, &len);
	if (an_autonat2_dial_back_decode(q, len, &nonce2) < 0 || nonce != nonce2)
		abort();
	an_buf_free(&b);
}

static void dial_back_response(const uint8_t *p, size_t n)
{
	uint32_t st, st2;
	struct an_buf b;
	size_t len;
	if (an_autonat2_dial_back_response_decode(p, n, &st) < 0)
		return;
	an_buf_init(&b, 64);
	if (an_autonat2_dial_back_response_encode(st, &b) < 0)
		abort();
	const uint8_t *q = unframe(&b, &len);
	if (an_autonat2_dial_back_response_decode(q, len, &st2) < 0 || st != st2)
		abort();
	an_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		v1(data + 1, size - 1);
		break;
	case 1:
		v2(data + 1, size - 1);
		break;
	case 2:
		dial_back(data + 1, size - 1);
		break;
	default:
		dial_back_response(data + 1, size - 1);
		break;
	}
	return 0;
}
