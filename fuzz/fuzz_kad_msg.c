/*
 * libFuzzer harness for the kad message codec: decode arbitrary bytes; a
 * decoded message must re-encode, decode again to the same fields and
 * re-encode to the same bytes.  The message is also fed to a lookup as a
 * response (GET_VALUE and GET_PROVIDERS), and timeReceived through the
 * RFC 3339 parser and formatter.
 */
#include "dht/kad_msg.h"
#include "dht/lookup.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int accept_all(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
		      size_t val_len)
{
	(void)arg, (void)key, (void)key_len;
	return val_len && val[0] == 'v' ? 0 : AN_EMALFORMED;
}

static int by_length(void *arg, const uint8_t *key, size_t key_len, const uint8_t *a, size_t a_len,
		     const uint8_t *b, size_t b_len)
{
	(void)arg, (void)key, (void)key_len, (void)a, (void)b;
	return a_len > b_len ? 1 : a_len < b_len ? -1 : 0;
}

static int bytes_eq(const struct an_kad_bytes *a, const struct an_kad_bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

static void same_peers(const struct an_kad_peer *a, const struct an_kad_peer *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!an_peerid_equal(&a[i].id, &b[i].id) || a[i].naddrs != b[i].naddrs ||
		    a[i].connection != b[i].connection)
			abort();
		for (size_t j = 0; j < a[i].naddrs; j++)
			if (!bytes_eq(&a[i].addrs[j], &b[i].addrs[j]))
				abort();
	}
}

static void as_response(const struct an_kad_msg *m, enum an_lookup_kind kind)
{
	struct an_lookup_config cfg = { .kind = kind, .validate = accept_all,
					.compare = by_length, .quorum = 2 };
	struct an_lookup *l = NULL;
	struct an_lookup_request req;
	struct an_peerid self, seed;
	const struct an_lookup_peer *out[64];
	uint8_t id[34] = { 0x12, 0x20 };
	const uint8_t *val;
	size_t len;

	an_peerid_from_bytes(id, sizeof(id), &self);
	id[2] = 1;
	an_peerid_from_bytes(id, sizeof(id), &seed);
	if (an_lookup_new(&l, &cfg, &self, (const uint8_t *)"/an/k", 5) != 0)
		abort();
	an_lookup_seed(l, &seed, NULL, 0);
	if (an_lookup_next_request(l, 0, &req) != AN_LOOKUP_REQUEST)
		abort();
	an_lookup_response(l, 1, &seed, m);
	for (int i = 0; i < 100 && an_lookup_next_request(l, 2, &req) == AN_LOOKUP_REQUEST; i++)
		an_lookup_failure(l, 3, &req.peer);
	an_lookup_closest(l, out, 64);
	an_lookup_providers(l, out, 64);
	an_lookup_corrections(l, out, 64);
	an_lookup_value(l, &val, &len, NULL);
	an_lookup_free(l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct an_kad_msg m, m2;
	struct an_buf b1, b2;
	int64_t sec, sec2;
	uint32_t nsec, nsec2;
	char text[AN_KAD_TIME_LEN + 1];

	if (an_kad_msg_decode(data, size, 1 << 16, &m) != 0)
		return 0;
	an_buf_init(&b1, 1 << 20);
	an_buf_init(&b2, 1 << 20);
	if (an_kad_msg_encode(&m, &b1) != 0)
		abort();
	if (an_kad_msg_decode(b1.data, b1.len, 1 << 20, &m2) != 0)
		abort();
	if (m2.type != m.type || m2.has_key != m.has_key || !bytes_eq(&m2.key, &m.key) ||
	    m2.has_record != m.has_record || m2.ncloser != m.ncloser ||
	    m2.nproviders != m.nproviders || m2.has_cluster_level != m.has_cluster_level ||
	    m2.cluster_level != m.cluster_level)
		abort();
	if (m.has_record && (!bytes_eq(&m.record.key, &m2.record.key) ||
			     !bytes_eq(&m.record.value, &m2.record.value) ||
			     !bytes_eq(&m.record.time_received, &m2.record.time_received)))
		abort();
	same_peers(m.closer, m2.closer, m.ncloser);
	same_peers(m.providers, m2.providers, m.nproviders);
	if (an_kad_msg_encode(&m2, &b2) != 0 || b1.len != b2.len ||
	    memcmp(b1.data, b2.data, b1.len) != 0)
		abort();
	if (m.has_record && an_kad_time_parse(m.record.time_received.p, m.record.time_received.len,
					      &sec, &nsec) == 0 &&
	    an_kad_time_format(sec, nsec, text) == 0) {
		if (an_kad_time_parse((const uint8_t *)text, strlen(text), &sec2, &nsec2) != 0 ||
		    sec2 != sec || nsec2 != nsec)
			abort();
	}
	as_response(&m, AN_LOOKUP_GET_VALUE);
	as_response(&m, AN_LOOKUP_GET_PROVIDERS);
	an_kad_msg_free(&m2);
	an_kad_msg_free(&m);
	an_buf_free(&b1);
	an_buf_free(&b2);
	return 0;
}
