/*
 * libFuzzer harness for the Circuit Relay v2 codecs: arbitrary bytes as a
 * HopMessage and as a StopMessage; a decoded message must re-encode, decode
 * to the same fields and re-encode to the same bytes.  A decoded
 * reservation's voucher, and the input itself, go through the envelope and
 * voucher decoders (relay/envelope.h), which must never crash whatever the
 * signature check says.
 */
#include "relay/circuit.h"
#include "relay/envelope.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int bytes_eq(const struct an_relay_bytes *a, const struct an_relay_bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static void same(const struct an_relay_msg *a, const struct an_relay_msg *b)
{
	if (a->type != b->type || a->has_status != b->has_status || a->status != b->status ||
	    a->peer.present != b->peer.present || a->peer.has_id != b->peer.has_id ||
	    a->peer.naddrs != b->peer.naddrs || a->rsv.present != b->rsv.present ||
	    a->rsv.has_expire != b->rsv.has_expire || a->rsv.expire != b->rsv.expire ||
	    a->rsv.naddrs != b->rsv.naddrs || !bytes_eq(&a->rsv.voucher, &b->rsv.voucher) ||
	    a->limit.present != b->limit.present || a->limit.duration != b->limit.duration ||
	    a->limit.data != b->limit.data)
		abort();
	if (a->peer.has_id && !an_peerid_equal(&a->peer.id, &b->peer.id))
		abort();
	for (size_t i = 0; i < a->peer.naddrs; i++)
		if (!bytes_eq(&a->peer.addrs[i], &b->peer.addrs[i]))
			abort();
	for (size_t i = 0; i < a->rsv.naddrs; i++)
		if (!bytes_eq(&a->rsv.addrs[i], &b->rsv.addrs[i]))
			abort();
}

static void one(enum an_relay_kind kind, const uint8_t *data, size_t size)
{
	struct an_relay_msg m, m2, m3;
	struct an_buf b1, b2;
	size_t used;

	if (an_relay_msg_decode(kind, data, size, &m) < 0)
		return;
	an_buf_init(&b1, 4 * AN_RELAY_MSG_MAX);
	an_buf_init(&b2, 4 * AN_RELAY_MSG_MAX);
	/* dropping unknown fields and extra addrs only shrinks the message */
	if (an_relay_msg_encode(&m, &b1) < 0)
		abort();
	if (an_relay_msg_read(kind, b1.data, b1.len, &m2, &used) < 0 || used != b1.len)
		abort();
	same(&m, &m2);
	if (an_relay_msg_encode(&m2, &b2) < 0 || b1.len != b2.len ||
	    memcmp(b1.data, b2.data, b1.len) != 0)
		abort();
	if (an_relay_msg_read(kind, b2.data, b2.len, &m3, &used) < 0)
		abort();
	same(&m2, &m3);
	if (m.rsv.voucher.len) {
		struct an_voucher v;
		(void)an_voucher_open(m.rsv.voucher.p, m.rsv.voucher.len, &v);
	}
	an_buf_free(&b1);
	an_buf_free(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct an_voucher v;
	struct an_envelope env;
	one(AN_RELAY_HOP, data, size);
	one(AN_RELAY_STOP, data, size);
	(void)an_voucher_open(data, size, &v);
	(void)an_voucher_decode(data, size, &v);
	(void)an_envelope_open("libp2p-peer-record", data, size, &env);
	return 0;
}
