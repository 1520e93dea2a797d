#include "transport/tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/tls_cert.h"
#include "util/buf.h"
#include "util/error.h"

struct an_tls {
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;
	struct an_tls_cert *cert;
	struct an_buf in, out;
	bool has_expected, done, failed;
	struct an_peerid expected, peer;
	struct an_pubkey remote;
	int64_t now_s;
	int verify_err; /* the peer certificate's refusal */
	char reason[AN_TLS_REASON_MAX];
};

/* GnuTLS reads the wire from t->in: what is there, else "try again". */
static ssize_t pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	struct an_tls *t = ptr;
	if (t->in.len == 0) {
		gnutls_transport_set_errno(t->s, EAGAIN);
		return -1;
	}
	size_t n = len < t->in.len ? len : t->in.len;
	memcpy(data, t->in.data, n);
	an_buf_consume(&t->in, n);
	return (ssize_t)n;
}

/* ... and writes it to t->out, bounded: a full buffer is "try again". */
static ssize_t push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	struct an_tls *t = ptr;
	if (an_buf_append(&t->out, data, len) < 0) {
		gnutls_transport_set_errno(t->s, EAGAIN);
		return -1;
	}
	return (ssize_t)len;
}

/* The peer's certificate: exactly one, checked as tls_cert.h says. */
static int verify_peer(gnutls_session_t s)
{
	struct an_tls *t = gnutls_session_get_ptr(s);
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n != 1) {
		t->verify_err = AN_EFIELD;
		snprintf(t->reason, sizeof(t->reason), "%u certificates, not one", n);
		return -1;
	}
	int rc = an_tls_cert_verify(certs[0].data, certs[0].size, t->now_s,
				    t->has_expected ? &t->expected : NULL, &t->remote, &t->peer,
				    t->reason, sizeof(t->reason));
	if (rc < 0) {
		t->verify_err = rc;
		return -1;
	}
	return 0;
}

int an_tls_new(const struct an_tls_config *cfg, struct an_tls **out)
{
	struct an_tls *t;
	int rc;
	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	an_buf_init(&t->in, AN_TLS_IN_MAX);
	an_buf_init(&t->out, AN_TLS_OUT_MAX);
	t->now_s = cfg->now_s;
	if (cfg->expected) {
		t->expected = *cfg->expected;
		t->has_expected = true;
	}
	rc = an_tls_cert_new(cfg->key, cfg->now_s, &t->cert);
	if (rc < 0)
		goto out;
	gnutls_x509_crt_t crt = an_tls_cert_gnutls_crt(t->cert);
	gnutls_datum_t alpn = {(unsigned char *)AN_TLS_ALPN, sizeof(AN_TLS_ALPN) - 1};
	if (gnutls_certificate_allocate_credentials(&t->cred) < 0 ||
	    gnutls_certificate_set_x509_key(t->cred, &crt, 1, an_tls_cert_gnutls_key(t->cert)) < 0 ||
	    gnutls_init(&t->s, (cfg->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK |
				       GNUTLS_NO_TICKETS) < 0 ||
	    gnutls_priority_set_direct(t->s, "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL) < 0 ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, t->cred) < 0 ||
	    gnutls_alpn_set_protocols(t->s, &alpn, 1, GNUTLS_ALPN_MANDATORY) < 0) {
		rc = AN_EPROTO;
		goto out;
	}
	/* no gnutls_server_name_set: the spec forbids SNI (a server ignores it) */
	if (cfg->server)
		gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_ptr(t->s, t);
	gnutls_session_set_verify_function(t->s, verify_peer);
	gnutls_transport_set_ptr(t->s, t);
	gnutls_transport_set_pull_function(t->s, pull);
	gnutls_transport_set_push_function(t->s, push);
	*out = t;
	t = NULL;
	rc = 0;
out:
	an_tls_free(t);
	return rc;
}

void an_tls_free(struct an_tls *t)
{
	if (!t)
		return;
	if (t->s)
		gnutls_deinit(t->s);
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	an_tls_cert_free(t->cert);
	an_buf_free(&t->in);
	an_buf_free(&t->out);
	free(t);
}

int an_tls_feed(struct an_tls *t, const uint8_t *p, size_t n)
{
	return an_buf_append(&t->in, p, n) < 0 ? AN_ELIMIT : 0;
}

static int fail(struct an_tls *t, int err, const char *what)
{
	t->failed = true;
	if (!t->reason[0])
		snprintf(t->reason, sizeof(t->reason), "%s", what);
	return err;
}

int an_tls_handshake(struct an_tls *t)
{
	if (t->failed)
		return t->verify_err ? t->verify_err : AN_EPROTO;
	if (t->done)
		return 1;
	int rc = gnutls_handshake(t->s);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return 0;
	if (rc < 0) {
		if (t->verify_err)
			return fail(t, t->verify_err, "peer certificate refused");
		return fail(t, AN_EPROTO, gnutls_strerror(rc));
	}
	/* The verify function ran for the peer's certificate (it is required
	   both ways), so the peer is known; make sure of it all the same. */
	gnutls_datum_t proto;
	if (gnutls_alpn_get_selected_protocol(t->s, &proto) < 0 || proto.size != sizeof(AN_TLS_ALPN) - 1 ||
	    memcmp(proto.data, AN_TLS_ALPN, proto.size) != 0)
		return fail(t, AN_EPROTO, "ALPN did not agree on libp2p");
	if (!t->remote.len)
		return fail(t, AN_EPROTO, "peer showed no certificate");
	t->done = true;
	return 1;
}

void an_tls_output(const struct an_tls *t, const uint8_t **p, size_t *len)
{
	*p = t->out.data;
	*len = t->out.len;
}

void an_tls_output_consume(struct an_tls *t, size_t n)
{
	an_buf_consume(&t->out, n);
}

int an_tls_write(struct an_tls *t, const uint8_t *p, size_t n)
{
	if (!t->done || t->failed)
		return AN_ECLOSED;
	while (n > 0) {
		/* a record's worth at a time, each fitting the output whole */
		size_t chunk = n < 16384 ? n : 16384;
		if (t->out.max - t->out.len < chunk + 256)
			return AN_ELIMIT;
		ssize_t rc = gnutls_record_send(t->s, p, chunk);
		if (rc < 0)
			return fail(t, AN_EPROTO, gnutls_strerror((int)rc));
		p += rc;
		n -= (size_t)rc;
	}
	return 0;
}

int an_tls_read(struct an_tls *t, uint8_t *out, size_t cap, size_t *got)
{
	*got = 0;
	if (!t->done || t->failed)
		return AN_ECLOSED;
	ssize_t rc = gnutls_record_recv(t->s, out, cap);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return 0;
	if (rc == 0)
		return AN_ECLOSED;
	if (rc < 0)
		return fail(t, AN_EPROTO, gnutls_strerror((int)rc));
	*got = (size_t)rc;
	return 0;
}

const struct an_peerid *an_tls_peer(const struct an_tls *t)
{
	return t->done ? &t->peer : NULL;
}

const struct an_pubkey *an_tls_remote_key(const struct an_tls *t)
{
	return t->done ? &t->remote : NULL;
}

const char *an_tls_reason(const struct an_tls *t)
{
	return t->reason;
}
