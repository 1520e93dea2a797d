#include "transport/identify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/protobuf.h"
#include "util/error.h"

enum {
	F_PUBKEY = 1,
	F_ADDRS = 2,
	F_PROTOCOLS = 3,
	F_OBSERVED = 4,
	F_PROTOCOL_VERSION = 5,
	F_AGENT_VERSION = 6,
	F_SIGNED_RECORD = 8
};

void an_identify_init(struct an_identify *m)
{
	memset(m, 0, sizeof(*m));
}

static void bytes_free(struct an_identify_bytes *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

static int bytes_set(struct an_identify_bytes *b, const uint8_t *p, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);
	if (!d)
		return -ENOMEM;
	if (len)
		memcpy(d, p, len);
	free(b->data);
	b->data = d;
	b->len = len;
	return 0;
}

static void addrs_free(struct an_identify *m)
{
	for (size_t i = 0; i < m->n_addrs; i++)
		bytes_free(&m->addrs[i]);
	m->n_addrs = 0;
}

static void protocols_free(struct an_identify *m)
{
	for (size_t i = 0; i < m->n_protocols; i++)
		free(m->protocols[i]);
	m->n_protocols = 0;
}

void an_identify_free(struct an_identify *m)
{
	if (!m)
		return;
	bytes_free(&m->public_key);
	addrs_free(m);
	protocols_free(m);
	bytes_free(&m->observed_addr);
	free(m->protocol_version);
	free(m->agent_version);
	bytes_free(&m->signed_record);
	an_identify_init(m);
}

static char *strndup_checked(const uint8_t *p, size_t len)
{
	if (memchr(p, 0, len))
		return NULL;
	char *s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, p, len);
	s[len] = 0;
	return s;
}

int an_identify_set_public_key(struct an_identify *m, const uint8_t *pb, size_t len)
{
	int rc = bytes_set(&m->public_key, pb, len);
	if (rc == 0)
		m->present |= AN_IDENTIFY_HAS_PUBKEY;
	return rc;
}

int an_identify_add_addr(struct an_identify *m, const uint8_t *ma, size_t len)
{
	if (m->n_addrs >= AN_IDENTIFY_MAX_ADDRS || len > AN_IDENTIFY_ADDR_MAX)
		return AN_ELIMIT;
	struct an_identify_bytes *b = &m->addrs[m->n_addrs];
	b->data = NULL;
	int rc = bytes_set(b, ma, len);
	if (rc < 0)
		return rc;
	m->n_addrs++;
	m->present |= AN_IDENTIFY_HAS_ADDRS;
	return 0;
}

int an_identify_add_protocol(struct an_identify *m, const char *proto)
{
	size_t len = strlen(proto);
	if (m->n_protocols >= AN_IDENTIFY_MAX_PROTOCOLS || len > AN_IDENTIFY_STRING_MAX)
		return AN_ELIMIT;
	char *s = strndup_checked((const uint8_t *)proto, len);
	if (!s)
		return -ENOMEM;
	m->protocols[m->n_protocols++] = s;
	m->present |= AN_IDENTIFY_HAS_PROTOCOLS;
	return 0;
}

int an_identify_set_observed(struct an_identify *m, const uint8_t *ma, size_t len)
{
	if (len > AN_IDENTIFY_ADDR_MAX)
		return AN_ELIMIT;
	int rc = bytes_set(&m->observed_addr, ma, len);
	if (rc == 0)
		m->present |= AN_IDENTIFY_HAS_OBSERVED;
	return rc;
}

static int string_set(char **dst, const char *s)
{
	char *c = NULL;
	if (s) {
		if (strlen(s) > AN_IDENTIFY_STRING_MAX)
			return AN_ELIMIT;
		c = strdup(s);
		if (!c)
			return -ENOMEM;
	}
	free(*dst);
	*dst = c;
	return 0;
}

int an_identify_set_versions(struct an_identify *m, const char *protocol_version,
			     const char *agent_version)
{
	int rc = string_set(&m->protocol_version, protocol_version);
	if (rc < 0)
		return rc;
	if (protocol_version)
		m->present |= AN_IDENTIFY_HAS_PROTOCOL_VERSION;
	rc = string_set(&m->agent_version, agent_version);
	if (rc < 0)
		return rc;
	if (agent_version)
		m->present |= AN_IDENTIFY_HAS_AGENT_VERSION;
	return 0;
}

int an_identify_encode(const struct an_identify *m, struct an_buf *out)
{
	struct an_buf b;
	int rc = 0;

	an_buf_init(&b, AN_IDENTIFY_SEND_MAX);
	if (m->present & AN_IDENTIFY_HAS_PUBKEY)
		rc = an_pb_put_bytes(&b, F_PUBKEY, m->public_key.data, m->public_key.len);
	for (size_t i = 0; rc == 0 && i < m->n_addrs; i++)
		rc = an_pb_put_bytes(&b, F_ADDRS, m->addrs[i].data, m->addrs[i].len);
	for (size_t i = 0; rc == 0 && i < m->n_protocols; i++)
		rc = an_pb_put_string(&b, F_PROTOCOLS, m->protocols[i]);
	if (rc == 0 && (m->present & AN_IDENTIFY_HAS_OBSERVED))
		rc = an_pb_put_bytes(&b, F_OBSERVED, m->observed_addr.data, m->observed_addr.len);
	if (rc == 0 && m->protocol_version)
		rc = an_pb_put_string(&b, F_PROTOCOL_VERSION, m->protocol_version);
	if (rc == 0 && m->agent_version)
		rc = an_pb_put_string(&b, F_AGENT_VERSION, m->agent_version);
	if (rc == 0 && (m->present & AN_IDENTIFY_HAS_SIGNED_RECORD))
		rc = an_pb_put_bytes(&b, F_SIGNED_RECORD, m->signed_record.data,
				     m->signed_record.len);
	if (rc < 0)
		goto out;
	rc = an_buf_append(out, b.data ? b.data : (const uint8_t *)"", b.len);
out:
	an_buf_free(&b);
	return rc;
}

static int decode_string(const struct an_pb_field *f, char **dst)
{
	if (f->wire != AN_PB_LEN)
		return AN_EMALFORMED;
	if (f->len > AN_IDENTIFY_STRING_MAX)
		return AN_ETOOBIG;
	char *s = strndup_checked(f->data, f->len);
	if (!s)
		return memchr(f->data, 0, f->len) ? AN_EMALFORMED : -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

int an_identify_decode(const uint8_t *p, size_t len, struct an_identify *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	int rc;

	if (len > AN_IDENTIFY_RECV_MAX)
		return AN_ETOOBIG;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number < F_PUBKEY || f.number > F_SIGNED_RECORD || f.number == 7)
			continue; /* unknown: skip */
		if (f.wire != AN_PB_LEN)
			return AN_EMALFORMED;
		switch (f.number) {
		case F_PUBKEY:
			rc = an_identify_set_public_key(m, f.data, f.len);
			break;
		case F_ADDRS:
			rc = an_identify_add_addr(m, f.data, f.len);
			if (rc == AN_ELIMIT) {
				m->dropped++;
				m->present |= AN_IDENTIFY_HAS_ADDRS;
				rc = 0;
			}
			break;
		case F_PROTOCOLS:
			if (m->n_protocols >= AN_IDENTIFY_MAX_PROTOCOLS ||
			    f.len > AN_IDENTIFY_STRING_MAX) {
				m->dropped++;
				m->present |= AN_IDENTIFY_HAS_PROTOCOLS;
				rc = 0;
				break;
			}
			m->protocols[m->n_protocols] = NULL;
			rc = decode_string(&f, &m->protocols[m->n_protocols]);
			if (rc == 0) {
				m->n_protocols++;
				m->present |= AN_IDENTIFY_HAS_PROTOCOLS;
			}
			break;
		case F_OBSERVED:
			rc = an_identify_set_observed(m, f.data, f.len);
			if (rc == AN_ELIMIT)
				rc = 0; /* an absurd observed address is just ignored */
			break;
		case F_PROTOCOL_VERSION:
			rc = decode_string(&f, &m->protocol_version);
			if (rc == 0)
				m->present |= AN_IDENTIFY_HAS_PROTOCOL_VERSION;
			break;
		case F_AGENT_VERSION:
			rc = decode_string(&f, &m->agent_version);
			if (rc == 0)
				m->present |= AN_IDENTIFY_HAS_AGENT_VERSION;
			break;
		case F_SIGNED_RECORD:
			rc = bytes_set(&m->signed_record, f.data, f.len);
			if (rc == 0)
				m->present |= AN_IDENTIFY_HAS_SIGNED_RECORD;
			break;
		}
		if (rc < 0)
			return rc;
	}
	return rc;
}

#define MOVE_FIELD(dst, src) do { (dst) = (src); memset(&(src), 0, sizeof(src)); } while (0)

void an_identify_merge(struct an_identify *dst, struct an_identify *push)
{
	if (push->present & AN_IDENTIFY_HAS_PUBKEY) {
		bytes_free(&dst->public_key);
		MOVE_FIELD(dst->public_key, push->public_key);
	}
	if (push->present & AN_IDENTIFY_HAS_ADDRS) {
		addrs_free(dst);
		memcpy(dst->addrs, push->addrs, sizeof(dst->addrs));
		dst->n_addrs = push->n_addrs;
		push->n_addrs = 0;
	}
	if (push->present & AN_IDENTIFY_HAS_PROTOCOLS) {
		protocols_free(dst);
		memcpy(dst->protocols, push->protocols, sizeof(dst->protocols));
		dst->n_protocols = push->n_protocols;
		push->n_protocols = 0;
	}
	if (push->present & AN_IDENTIFY_HAS_OBSERVED) {
		bytes_free(&dst->observed_addr);
		MOVE_FIELD(dst->observed_addr, push->observed_addr);
	}
	if (push->present & AN_IDENTIFY_HAS_PROTOCOL_VERSION) {
		free(dst->protocol_version);
		MOVE_FIELD(dst->protocol_version, push->protocol_version);
	}
	if (push->present & AN_IDENTIFY_HAS_AGENT_VERSION) {
		free(dst->agent_version);
		MOVE_FIELD(dst->agent_version, push->agent_version);
	}
	if (push->present & AN_IDENTIFY_HAS_SIGNED_RECORD) {
		bytes_free(&dst->signed_record);
		MOVE_FIELD(dst->signed_record, push->signed_record);
	}
	dst->present |= push->present;
	dst->dropped += push->dropped;
	push->present = 0;
}
