/* kad request handler tests, with an in-memory store. */
#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "fixtures.h"
#include "dht/distance.h"
#include "dht/kad_server.h"
#include "util/error.h"

static uint64_t rng_state = 0x853c49e6748fea9bull;

static void random_peer(struct an_peerid *id)
{
	fx_random_peer(&rng_state, id);
}

/* The fake store: one record, a few providers, and call counters. */
struct fake_store {
	char key[64];
	char value[64];
	int puts;
	int refuse; /* put returns this when non-zero */
	struct an_kad_provider provs[4];
	size_t nprovs;
	uint8_t prov_key[64];
	size_t prov_key_len;
};

static int fs_get(void *arg, const uint8_t *key, size_t key_len, struct an_buf *value,
		  char when[AN_KAD_TIME_LEN + 1], uint64_t now_ms)
{
	struct fake_store *s = arg;
	(void)now_ms;
	if (!s->key[0] || key_len != strlen(s->key) || memcmp(key, s->key, key_len) != 0)
		return AN_ENOTFOUND;
	an_kad_time_format(1795467799, 0, when);
	return an_buf_append(value, s->value, strlen(s->value));
}

static int fs_put(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
		  size_t value_len, uint64_t now_ms)
{
	struct fake_store *s = arg;
	(void)now_ms;
	s->puts++;
	if (s->refuse)
		return s->refuse;
	if (key_len >= sizeof(s->key) || value_len >= sizeof(s->value))
		return AN_ETOOBIG;
	memcpy(s->key, key, key_len);
	s->key[key_len] = 0;
	memcpy(s->value, value, value_len);
	s->value[value_len] = 0;
	return 0;
}

static int fs_add_provider(void *arg, const uint8_t *key, size_t key_len,
			   const struct an_kad_provider *p, uint64_t now_ms)
{
	struct fake_store *s = arg;
	(void)now_ms;
	if (s->nprovs >= 4 || key_len >= sizeof(s->prov_key))
		return AN_ELIMIT;
	memcpy(s->prov_key, key, key_len);
	s->prov_key_len = key_len;
	s->provs[s->nprovs++] = *p;
	return 0;
}

static int fs_get_providers(void *arg, const uint8_t *key, size_t key_len,
			    struct an_kad_provider *out, size_t cap, uint64_t now_ms)
{
	struct fake_store *s = arg;
	size_t n = 0;
	(void)now_ms;
	if (key_len != s->prov_key_len || memcmp(key, s->prov_key, key_len) != 0)
		return 0;
	for (; n < s->nprovs && n < cap; n++)
		out[n] = s->provs[n];
	return (int)n;
}

static struct fake_store store;
static struct an_rt rt;
static struct an_kad_server srv;
static struct an_multiaddr self_addr;
static struct an_peerid peers[300];

static void setup(void)
{
	struct an_multiaddr ma[4];
	/* 300 peers on one /48 (long addresses for the size checks): no diversity limit */
	struct an_rt_config rc = {.flags = AN_RT_NO_DIVERSITY};
	memset(&store, 0, sizeof(store));
	memset(&srv, 0, sizeof(srv));
	random_peer(&srv.self);
	an_rt_free(&rt);
	an_rt_init(&rt, &srv.self, &rc);
	an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &self_addr);
	an_multiaddr_parse("/ip6/2001:db8::1:2:3:4/tcp/4001", &ma[0]);
	an_multiaddr_parse("/ip6/2001:db8::1:2:3:5/tcp/4001", &ma[1]);
	an_multiaddr_parse("/ip6/2001:db8::1:2:3:6/tcp/4001", &ma[2]);
	an_multiaddr_parse("/ip6/2001:db8::1:2:3:7/tcp/4001", &ma[3]);
	for (size_t i = 0; i < 300; i++) {
		random_peer(&peers[i]);
		an_rt_update(&rt, &peers[i], ma, 4, i);
	}
	srv.rt = &rt;
	srv.self_addrs = &self_addr;
	srv.nself_addrs = 1;
	srv.store.get = fs_get;
	srv.store.put = fs_put;
	srv.store.add_provider = fs_add_provider;
	srv.store.get_providers = fs_get_providers;
	srv.store.arg = &store;
}

/* Handle req from `from`; decode the response into *m (when there is one). */
static int ask(const struct an_peerid *from, const struct an_kad_msg *req, struct an_buf *resp,
	       struct an_kad_msg *m)
{
	int rc = an_kad_server_handle(&srv, from, req, 5000, resp, NULL);
	an_kad_msg_init(m);
	if (rc == 0 && an_kad_msg_decode(resp->data, resp->len, AN_KAD_MSG_MAX_DEFAULT, m) != 0)
		return -1000;
	return rc;
}

static void request(struct an_kad_msg *req, enum an_kad_type type, const void *key, size_t len)
{
	an_kad_msg_init(req);
	req->type = type;
	req->has_key = key != NULL;
	req->key.p = key;
	req->key.len = len;
}

static void test_find_node_returns_k_closest_without_requester(void)
{
	struct an_kad_msg req, m;
	struct an_buf resp;
	const struct an_rt_entry *want[AN_RT_K_DEFAULT + 1];
	struct an_kad_id target;
	uint8_t key[34] = { 0x12, 0x20, 9, 9, 9 };
	setup();
	an_kad_id_from_key(key, sizeof(key), &target);
	CHECK_EQ_INT(an_rt_closest(&rt, &target, NULL, want, AN_RT_K_DEFAULT + 1),
		     AN_RT_K_DEFAULT + 1);
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	request(&req, AN_KAD_FIND_NODE, key, sizeof(key));
	/* The requester is the closest peer: it is left out. */
	CHECK_EQ_INT(ask(&want[0]->id, &req, &resp, &m), 0);
	CHECK_EQ_INT(m.type, AN_KAD_FIND_NODE);
	CHECK_EQ_INT(m.ncloser, AN_RT_K_DEFAULT);
	for (size_t i = 0; i < m.ncloser; i++) {
		CHECK(an_peerid_equal(&m.closer[i].id, &want[i + 1]->id));
		CHECK_EQ_INT(m.closer[i].naddrs, AN_RT_ADDRS_MAX);
	}
	/* K6: 20 peers with 4 addresses each stay under rust's 16 KiB. */
	CHECK(resp.len <= AN_KAD_MSG_SEND_MAX);
	an_kad_msg_free(&m);
	an_buf_free(&resp);
}

static void test_find_node_own_id_appends_self(void)
{
	struct an_kad_msg req, m;
	struct an_buf resp;
	setup();
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	request(&req, AN_KAD_FIND_NODE, srv.self.bytes, srv.self.len);
	CHECK_EQ_INT(ask(&peers[0], &req, &resp, &m), 0);
	CHECK_EQ_INT(m.ncloser, AN_RT_K_DEFAULT + 1);
	CHECK(an_peerid_equal(&m.closer[m.ncloser - 1].id, &srv.self));
	CHECK_EQ_INT(m.closer[m.ncloser - 1].naddrs, 1);
	an_kad_msg_free(&m);
	an_buf_free(&resp);
}

static void test_get_value_held_and_not_held(void)
{
	struct an_kad_msg req, m;
	struct an_buf resp;
	setup();
	strcpy(store.key, "/an/x");
	strcpy(store.value, "value-x");
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	request(&req, AN_KAD_GET_VALUE, "/an/x", 5);
	CHECK_EQ_INT(ask(&peers[0], &req, &resp, &m), 0);
	CHECK_EQ_INT(m.type, AN_KAD_GET_VALUE);
	CHECK(m.has_record);
	CHECK(m.record.key.len == 5 && memcmp(m.record.key.p, "/an/x", 5) == 0);
	CHECK(m.record.value.len == 7 && memcmp(m.record.value.p, "value-x", 7) == 0);
	CHECK(m.record.time_received.len == AN_KAD_TIME_LEN &&
	      memcmp(m.record.time_received.p, "2026-11-23T21:03:19.000000000Z", 30) == 0);
	CHECK_EQ_INT(m.ncloser, AN_RT_K_DEFAULT);
	an_kad_msg_free(&m);
	an_buf_reset(&resp);
	request(&req, AN_KAD_GET_VALUE, "/an/y", 5);
	CHECK_EQ_INT(ask(&peers[0], &req, &resp, &m), 0);
	CHECK(!m.has_record);
	CHECK_EQ_INT(m.ncloser, AN_RT_K_DEFAULT);
	an_kad_msg_free(&m);
	an_buf_free(&resp);
}

static void put_request(struct an_kad_msg *req, const char *key, const char *rkey,
			const char *value)
{
	request(req, AN_KAD_PUT_VALUE, key, strlen(key));
	req->has_record = true;
	req->record.key.p = (const uint8_t *)rkey;
	req->record.key.len = strlen(rkey);
	req->record.value.p = (const uint8_t *)value;
	req->record.value.len = strlen(value);
}

static void test_put_value_stores_and_echoes(void)
{
	struct an_kad_msg req;
	struct an_buf resp, want;
	setup();
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	an_buf_init(&want, AN_KAD_MSG_SEND_MAX);
	put_request(&req, "/an/z", "/an/z", "value-z");
	CHECK_EQ_INT(an_kad_server_handle(&srv, &peers[1], &req, 1, &resp, NULL), 0);
	CHECK_EQ_INT(an_kad_msg_encode(&req, &want), 0);
	CHECK(resp.len == want.len && memcmp(resp.data, want.data, want.len) == 0);
	CHECK_EQ_INT(store.puts, 1);
	CHECK_EQ_STR(store.value, "value-z");
	an_buf_free(&resp);
	an_buf_free(&want);
}

static void test_put_value_refusals(void)
{
	struct an_kad_msg req;
	struct an_buf resp;
	const char *err = NULL;
	setup();
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	put_request(&req, "/an/z", "/an/other", "v");
	CHECK_EQ_INT(an_kad_server_handle(&srv, &peers[1], &req, 1, &resp, &err), AN_EPROTO);
	CHECK(err != NULL);
	CHECK_EQ_INT(store.puts, 0);
	request(&req, AN_KAD_PUT_VALUE, "/an/z", 5);
	CHECK_EQ_INT(an_kad_server_handle(&srv, &peers[1], &req, 1, &resp, &err), AN_EPROTO);
	store.refuse = AN_EBADSIG;
	put_request(&req, "/an/z", "/an/z", "forged");
	CHECK_EQ_INT(an_kad_server_handle(&srv, &peers[1], &req, 1, &resp, &err), AN_EBADSIG);
	CHECK_EQ_INT(store.puts, 1);
	CHECK_EQ_INT(resp.len, 0);
	srv.store.put = NULL;
	CHECK_EQ_INT(an_kad_server_handle(&srv, &peers[1], &req, 1, &resp, &err), AN_ENOPROTO);
	an_buf_free(&resp);
}

static void test_add_provider_only_for_sender_with_addrs(void)
{
	struct an_kad_msg req;
	struct an_buf resp;
	uint8_t key[34] = { 0x12, 0x20, 1 };
	setup();
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	request(&req, AN_KAD_ADD_PROVIDER, key, sizeof(key));
	an_kad_msg_add_peer_ma(&req, true, &peers[2], &self_addr, 1, AN_KAD_CONNECTED); /* not the sender */
	an_kad_msg_add_peer_ma(&req, true, &peers[1], NULL, 0, AN_KAD_CONNECTED);      /* no addrs */
	an_kad_msg_add_peer_ma(&req, true, &peers[1], &self_addr, 1, AN_KAD_CONNECTED);
	CHECK_EQ_INT(an_kad_server_handle(&srv, &peers[1], &req, 1, &resp, NULL),
		     AN_KAD_SERVER_NO_RESPONSE);
	CHECK_EQ_INT(resp.len, 0);
	CHECK_EQ_INT(store.nprovs, 1);
	CHECK(an_peerid_equal(&store.provs[0].id, &peers[1]));
	CHECK(an_multiaddr_equal(&store.provs[0].addrs[0], &self_addr));
	an_kad_msg_free(&req);
	an_buf_free(&resp);
}

static void test_get_providers_lists_them(void)
{
	struct an_kad_msg req, m;
	struct an_buf resp;
	uint8_t key[34] = { 0x12, 0x20, 1 };
	setup();
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	request(&req, AN_KAD_ADD_PROVIDER, key, sizeof(key));
	an_kad_msg_add_peer_ma(&req, true, &peers[1], &self_addr, 1, AN_KAD_CONNECTED);
	an_kad_server_handle(&srv, &peers[1], &req, 1, &resp, NULL);
	an_kad_msg_free(&req);
	request(&req, AN_KAD_GET_PROVIDERS, key, sizeof(key));
	CHECK_EQ_INT(ask(&peers[5], &req, &resp, &m), 0);
	CHECK_EQ_INT(m.type, AN_KAD_GET_PROVIDERS);
	CHECK_EQ_INT(m.nproviders, 1);
	CHECK(m.nproviders == 1 && an_peerid_equal(&m.providers[0].id, &peers[1]));
	CHECK_EQ_INT(m.ncloser, AN_RT_K_DEFAULT);
	an_kad_msg_free(&m);
	an_buf_free(&resp);
}

static void test_ping_is_answered(void)
{
	struct an_kad_msg req, m;
	struct an_buf resp;
	setup();
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	request(&req, AN_KAD_PING, NULL, 0);
	CHECK_EQ_INT(ask(&peers[0], &req, &resp, &m), 0);
	CHECK_EQ_INT(m.type, AN_KAD_PING);
	CHECK_EQ_INT(m.ncloser, 0);
	an_kad_msg_free(&m);
	an_buf_free(&resp);
}

static void test_bad_keys_are_refused(void)
{
	static uint8_t big[AN_KAD_KEY_MAX + 1];
	struct an_kad_msg req;
	struct an_buf resp;
	setup();
	an_buf_init(&resp, AN_KAD_MSG_SEND_MAX);
	request(&req, AN_KAD_FIND_NODE, NULL, 0);
	CHECK_EQ_INT(an_kad_server_handle(&srv, &peers[0], &req, 1, &resp, NULL), AN_EPROTO);
	request(&req, AN_KAD_GET_VALUE, big, sizeof(big));
	CHECK_EQ_INT(an_kad_server_handle(&srv, &peers[0], &req, 1, &resp, NULL), AN_EPROTO);
	request(&req, AN_KAD_GET_VALUE, big, sizeof(big) - 1);
	CHECK_EQ_INT(an_kad_server_handle(&srv, &peers[0], &req, 1, &resp, NULL), 0);
	an_buf_free(&resp);
}

int main(void)
{
	RUN(test_find_node_returns_k_closest_without_requester);
	RUN(test_find_node_own_id_appends_self);
	RUN(test_get_value_held_and_not_held);
	RUN(test_put_value_stores_and_echoes);
	RUN(test_put_value_refusals);
	RUN(test_add_provider_only_for_sender_with_addrs);
	RUN(test_get_providers_lists_them);
	RUN(test_ping_is_answered);
	RUN(test_bad_keys_are_refused);
	an_rt_free(&rt);
	return check_done();
}
