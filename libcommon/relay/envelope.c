/*
 * envelope.c - signed envelopes and relay reservation vouchers.
 */
#include "relay/envelope.h"

#include <errno.h>
#include <string.h>

#include "encoding/protobuf.h"
#include "encoding/varint.h"
#include "util/error.h"

const uint8_t an_voucher_payload_type[2] = {0x03, 0x02};

/* The signed bytes: three length-prefixed strings (RFC 0002). */
static int signed_bytes(const char *domain, const uint8_t *type, size_t type_len,
			const uint8_t *payload, size_t len, struct an_buf *out)
{
	int rc;
	if ((rc = an_lp_put(out, domain, strlen(domain))) < 0)
		return rc;
	if ((rc = an_lp_put(out, type, type_len)) < 0)
		return rc;
	return an_lp_put(out, payload, len);
}

int an_envelope_seal(const struct an_privkey *k, const char *domain, const uint8_t *type,
		     size_t type_len, const uint8_t *payload, size_t len, struct an_buf *out)
{
	struct an_buf msg, pk, env;
	struct an_pubkey pub;
	uint8_t sig[64];
	int rc;

	if (!domain || !domain[0] || type_len == 0)
		return -EINVAL;
	an_buf_init(&msg, AN_ENVELOPE_MAX + 64);
	an_buf_init(&pk, AN_PUBKEY_PB_MAX);
	an_buf_init(&env, AN_ENVELOPE_MAX);
	if ((rc = signed_bytes(domain, type, type_len, payload, len, &msg)) < 0)
		goto out;
	if ((rc = an_privkey_sign(k, msg.data, msg.len, sig)) < 0)
		goto out;
	an_privkey_public(k, &pub);
	if ((rc = an_pubkey_encode(&pub, &pk)) < 0)
		goto out;
	if ((rc = an_pb_put_bytes(&env, 1, pk.data, pk.len)) < 0 ||
	    (rc = an_pb_put_bytes(&env, 2, type, type_len)) < 0 ||
	    (rc = an_pb_put_bytes(&env, 3, payload, len)) < 0 ||
	    (rc = an_pb_put_bytes(&env, 5, sig, sizeof(sig))) < 0)
		goto out;
	rc = an_buf_append(out, env.data, env.len);
out:
	an_buf_free(&msg);
	an_buf_free(&pk);
	an_buf_free(&env);
	return rc;
}

int an_envelope_open(const char *domain, const uint8_t *p, size_t len, struct an_envelope *env)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	const uint8_t *sig = NULL;
	size_t sig_len = 0;
	bool has_key = false, has_type = false, has_payload = false;
	struct an_buf msg;
	int rc;

	memset(env, 0, sizeof(*env));
	if (len > AN_ENVELOPE_MAX)
		return AN_ETOOBIG;
	an_buf_init(&msg, AN_ENVELOPE_MAX + 64);
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number != 1 && f.number != 2 && f.number != 3 && f.number != 5)
			continue;
		if (f.wire != AN_PB_LEN) {
			rc = AN_EMALFORMED;
			goto out;
		}
		if (f.number == 1) {
			if ((rc = an_pubkey_decode(f.data, f.len, &env->key)) < 0)
				goto out;
			has_key = true;
		} else if (f.number == 2) {
			if (f.len > AN_ENVELOPE_TYPE_MAX) {
				rc = AN_ETOOBIG;
				goto out;
			}
			env->payload_type = f.data;
			env->payload_type_len = f.len;
			has_type = f.len > 0;
		} else if (f.number == 3) {
			env->payload = f.data;
			env->payload_len = f.len;
			has_payload = true;
		} else {
			sig = f.data;
			sig_len = f.len;
		}
	}
	if (rc < 0)
		goto out;
	if (!has_key || !has_type || !sig) {
		rc = AN_EFIELD;
		goto out;
	}
	if (!has_payload)
		env->payload = (const uint8_t *)""; /* proto3: absent = empty */
	if ((rc = signed_bytes(domain, env->payload_type, env->payload_type_len, env->payload,
			       env->payload_len, &msg)) < 0)
		goto out;
	rc = an_pubkey_verify(&env->key, msg.data, msg.len, sig, sig_len);
out:
	an_buf_free(&msg);
	return rc;
}

int an_voucher_encode(const struct an_voucher *v, struct an_buf *out)
{
	size_t old = out->len;
	int rc;
	if ((rc = an_pb_put_bytes(out, 1, v->relay.bytes, v->relay.len)) < 0 ||
	    (rc = an_pb_put_bytes(out, 2, v->peer.bytes, v->peer.len)) < 0 ||
	    (rc = an_pb_put_varint(out, 3, v->expiration)) < 0) {
		out->len = old;
		if (out->data)
			out->data[old] = 0;
	}
	return rc;
}

int an_voucher_decode(const uint8_t *p, size_t len, struct an_voucher *v)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	bool has_relay = false, has_peer = false, has_exp = false;
	int rc;

	memset(v, 0, sizeof(*v));
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number == 1 || f.number == 2) {
			if (f.wire != AN_PB_LEN ||
			    an_peerid_from_bytes(f.data, f.len, f.number == 1 ? &v->relay : &v->peer) < 0)
				return AN_EMALFORMED;
			if (f.number == 1)
				has_relay = true;
			else
				has_peer = true;
		} else if (f.number == 3) {
			if (f.wire != AN_PB_VARINT)
				return AN_EMALFORMED;
			v->expiration = f.varint;
			has_exp = true;
		}
	}
	if (rc < 0)
		return rc;
	return has_relay && has_peer && has_exp ? 0 : AN_EFIELD;
}

int an_voucher_sign(const struct an_privkey *k, const struct an_peerid *peer,
		    uint64_t expiration, struct an_buf *out)
{
	struct an_voucher v;
	struct an_pubkey pub;
	struct an_buf payload;
	int rc;

	an_buf_init(&payload, AN_ENVELOPE_MAX);
	an_privkey_public(k, &pub);
	if ((rc = an_peerid_from_pubkey(&pub, &v.relay)) < 0)
		goto out;
	v.peer = *peer;
	v.expiration = expiration;
	if ((rc = an_voucher_encode(&v, &payload)) < 0)
		goto out;
	rc = an_envelope_seal(k, AN_VOUCHER_DOMAIN, an_voucher_payload_type,
			      sizeof(an_voucher_payload_type), payload.data, payload.len, out);
out:
	an_buf_free(&payload);
	return rc;
}

int an_voucher_open(const uint8_t *p, size_t len, struct an_voucher *v)
{
	struct an_envelope env;
	struct an_peerid signer;
	int rc;

	memset(v, 0, sizeof(*v));
	if ((rc = an_envelope_open(AN_VOUCHER_DOMAIN, p, len, &env)) < 0)
		return rc;
	if (env.payload_type_len != sizeof(an_voucher_payload_type) ||
	    memcmp(env.payload_type, an_voucher_payload_type, sizeof(an_voucher_payload_type)) != 0)
		return AN_EMISMATCH;
	if ((rc = an_voucher_decode(env.payload, env.payload_len, v)) < 0)
		return rc;
	if ((rc = an_peerid_from_pubkey(&env.key, &signer)) < 0)
		return rc;
	return an_peerid_equal(&signer, &v->relay) ? 0 : AN_EMISMATCH;
}
