#include "dht/kad_server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dht/claim.h"
#include "dht/distance.h"
#include "util/error.h"

static int fail(const char **err, const char *why, int code)
{
	if (err)
		*err = why;
	return code;
}

/* Closer peers for key into out: the k closest known, requester excluded. */
static int add_closer(const struct an_kad_server *srv, const struct an_peerid *from,
		      const struct an_kad_bytes *key, struct an_kad_msg *out)
{
	const struct an_rt_entry *closest[AN_RT_K_MAX];
	struct an_kad_id target;
	size_t k = srv->k ? srv->k : srv->rt->k, n;
	int rc;

	if (k > AN_RT_K_MAX)
		k = AN_RT_K_MAX;
	an_kad_id_from_key(key->p, key->len, &target);
	n = an_rt_closest(srv->rt, &target, from, closest, k);
	for (size_t i = 0; i < n; i++) {
		rc = an_kad_msg_add_peer_ma(out, false, &closest[i]->id, closest[i]->addrs,
					    closest[i]->naddrs, AN_KAD_NOT_CONNECTED);
		if (rc < 0)
			return rc;
	}
	/* js appends itself when asked for its own ID: the asker is looking for us. */
	if (key->len == srv->self.len && memcmp(key->p, srv->self.bytes, key->len) == 0) {
		size_t na = srv->nself_addrs < AN_RT_ADDRS_MAX ? srv->nself_addrs : AN_RT_ADDRS_MAX;
		rc = an_kad_msg_add_peer_ma(out, false, &srv->self, srv->self_addrs, na,
					    AN_KAD_CONNECTED);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int handle_put(const struct an_kad_server *srv, const struct an_kad_msg *req,
		      uint64_t now_ms, struct an_buf *resp, const char **err)
{
	int rc;

	if (!req->has_record)
		return fail(err, "PUT_VALUE without a record", AN_EPROTO);
	/* js: "Key mismatch" - a record stored under another key than its own. */
	if (req->record.key.len != req->key.len ||
	    memcmp(req->record.key.p, req->key.p, req->key.len) != 0)
		return fail(err, "PUT_VALUE record key differs from the message key", AN_EPROTO);
	if (!srv->store.put)
		return fail(err, "PUT_VALUE not served", AN_ENOPROTO);
	rc = srv->store.put(srv->store.arg, req->key.p, req->key.len, req->record.value.p,
			    req->record.value.len, now_ms);
	if (rc < 0)
		return fail(err, "record refused by the store", rc);
	/* Echo the request (K8). */
	return an_kad_msg_encode(req, resp);
}

static int handle_add_provider(const struct an_kad_server *srv, const struct an_peerid *from,
			       const struct an_kad_msg *req, uint64_t now_ms, const char **err)
{
	if (!srv->store.add_provider)
		return fail(err, "ADD_PROVIDER not served", AN_ENOPROTO);
	for (size_t i = 0; i < req->nproviders; i++) {
		const struct an_kad_peer *p = &req->providers[i];
		struct an_kad_provider prov;
		/* Only the sender may announce itself, and only with addresses (js, rust). */
		if (!an_peerid_equal(&p->id, from))
			continue;
		memset(&prov, 0, sizeof(prov));
		prov.id = p->id;
		for (size_t a = 0; a < p->naddrs && prov.naddrs < AN_RT_ADDRS_MAX; a++)
			if (an_multiaddr_from_bytes(p->addrs[a].p, p->addrs[a].len,
						    &prov.addrs[prov.naddrs]) == 0)
				prov.naddrs++;
		if (!prov.naddrs)
			continue;
		if (req->has_record && req->record.key.len) {
			/* A bare-name claim: stored verified, or not at all. */
			if (an_claim_verify(req->key.p, req->key.len, req->record.key.p,
					    req->record.key.len, req->record.value.p,
					    req->record.value.len, from, srv->claim_bits,
					    &prov.work) != 0)
				continue;
			prov.verified = true;
		}
		srv->store.add_provider(srv->store.arg, req->key.p, req->key.len, &prov, now_ms);
	}
	return AN_KAD_SERVER_NO_RESPONSE;
}

int an_kad_server_handle(const struct an_kad_server *srv, const struct an_peerid *from,
			 const struct an_kad_msg *req, uint64_t now_ms, struct an_buf *resp,
			 const char **err)
{
	struct an_kad_msg out;
	struct an_buf value;
	struct an_kad_provider *provs = NULL;
	char when[AN_KAD_TIME_LEN + 1] = "";
	int rc = 0;

	if (err)
		*err = NULL;
	an_kad_msg_init(&out);
	an_buf_init(&value, AN_KAD_MSG_SEND_MAX);
	if (req->type == AN_KAD_PING) {
		out.type = AN_KAD_PING;
		rc = an_kad_msg_encode(&out, resp);
		goto out;
	}
	if (!req->has_key || req->key.len == 0) {
		rc = fail(err, "request without a key", AN_EPROTO);
		goto out;
	}
	if (req->key.len > AN_KAD_KEY_MAX) {
		rc = fail(err, "request key too long", AN_EPROTO);
		goto out;
	}
	switch (req->type) {
	case AN_KAD_PUT_VALUE:
		rc = handle_put(srv, req, now_ms, resp, err);
		goto out;
	case AN_KAD_ADD_PROVIDER:
		rc = handle_add_provider(srv, from, req, now_ms, err);
		goto out;
	default:
		break;
	}
	out.type = req->type;
	out.has_key = true;
	out.key = req->key;
	if (req->type == AN_KAD_GET_VALUE && srv->store.get) {
		rc = srv->store.get(srv->store.arg, req->key.p, req->key.len, &value, when, now_ms);
		if (rc == 0) {
			out.has_record = true;
			out.record.key = req->key;
			out.record.value.p = value.data;
			out.record.value.len = value.len;
			out.record.time_received.p = (const uint8_t *)when;
			out.record.time_received.len = strnlen(when, sizeof(when));
		} else if (rc != AN_ENOTFOUND) {
			goto out;
		}
	}
	if (req->type == AN_KAD_GET_PROVIDERS && srv->store.get_providers) {
		provs = calloc(AN_KAD_SERVER_PROVIDERS_MAX, sizeof(*provs));
		if (!provs) {
			rc = -ENOMEM;
			goto out;
		}
		rc = srv->store.get_providers(srv->store.arg, req->key.p, req->key.len, provs,
					      AN_KAD_SERVER_PROVIDERS_MAX, now_ms);
		if (rc < 0)
			goto out;
		for (int i = 0; i < rc && i < AN_KAD_SERVER_PROVIDERS_MAX; i++) {
			int r = an_kad_msg_add_peer_ma(&out, true, &provs[i].id, provs[i].addrs,
						       provs[i].naddrs, AN_KAD_NOT_CONNECTED);
			if (r < 0) {
				rc = r;
				goto out;
			}
		}
	}
	rc = add_closer(srv, from, &req->key, &out);
	if (rc == 0)
		rc = an_kad_msg_encode(&out, resp);
out:
	free(provs);
	an_buf_free(&value);
	an_kad_msg_free(&out);
	return rc;
}
