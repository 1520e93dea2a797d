/*
 * dcutr.c - DCUtR HolePunch message codec.
 */
#include "relay/dcutr.h"

#include <errno.h>
#include <string.h>

#include "encoding/multiaddr.h"
#include "encoding/protobuf.h"
#include "util/error.h"

#define F_TYPE 1
#define F_OBS_ADDRS 2

static bool type_valid(uint64_t t)
{
	return t == AN_DCUTR_CONNECT || t == AN_DCUTR_SYNC;
}

void an_dcutr_msg_init(struct an_dcutr_msg *m, enum an_dcutr_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

int an_dcutr_msg_add_addr(struct an_dcutr_msg *m, const uint8_t *p, size_t len)
{
	if (!p || len == 0)
		return -EINVAL;
	if (m->naddrs >= AN_DCUTR_MAX_ADDRS)
		return AN_ELIMIT;
	m->addrs[m->naddrs].p = p;
	m->addrs[m->naddrs].len = len;
	m->naddrs++;
	return 0;
}

int an_dcutr_msg_encode(const struct an_dcutr_msg *m, struct an_buf *out)
{
	struct an_buf body;
	int rc;

	if (!type_valid((uint64_t)m->type) || m->naddrs > AN_DCUTR_MAX_ADDRS)
		return -EINVAL;
	an_buf_init(&body, AN_DCUTR_MSG_MAX);
	if ((rc = an_pb_put_varint(&body, F_TYPE, (uint64_t)m->type)) < 0)
		goto out;
	for (size_t i = 0; i < m->naddrs; i++)
		if ((rc = an_pb_put_bytes(&body, F_OBS_ADDRS, m->addrs[i].p, m->addrs[i].len)) < 0)
			goto out;
	rc = an_lp_put(out, body.data, body.len);
out:
	an_buf_free(&body);
	return rc;
}

int an_dcutr_msg_decode(const uint8_t *p, size_t len, struct an_dcutr_msg *m)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	bool has_type = false;
	int rc;

	an_dcutr_msg_init(m, AN_DCUTR_CONNECT);
	if (len > AN_DCUTR_MSG_MAX)
		return AN_ETOOBIG;
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number == F_TYPE) {
			if (f.wire != AN_PB_VARINT || !type_valid(f.varint))
				return AN_EMALFORMED;
			m->type = (enum an_dcutr_type)f.varint;
			has_type = true;
		} else if (f.number == F_OBS_ADDRS) {
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			/* An empty entry says nothing; dropping it keeps
			   decode(encode(m)) == m (add_addr refuses empties). */
			if (f.len > 0 && m->naddrs < AN_DCUTR_MAX_ADDRS) {
				m->addrs[m->naddrs].p = f.data;
				m->addrs[m->naddrs].len = f.len;
				m->naddrs++;
			}
		}
		/* other fields: skipped */
	}
	if (rc < 0)
		return rc;
	return has_type ? 0 : AN_EFIELD;
}

int an_dcutr_msg_read(const uint8_t *p, size_t len, struct an_dcutr_msg *m, size_t *used)
{
	const uint8_t *msg;
	size_t msg_len, n;
	int rc = an_lp_get(p, len, AN_DCUTR_MSG_MAX, &msg, &msg_len, &n);
	if (rc < 0)
		return rc;
	if ((rc = an_dcutr_msg_decode(msg, msg_len, m)) < 0)
		return rc;
	*used = n;
	return 0;
}

bool an_dcutr_addr_tcp(const struct an_dcutr_addr *a)
{
	struct an_multiaddr ma;
	struct an_ma_iter it;
	struct an_ma_component c;
	int i = 0, rc;

	if (!a->p || an_multiaddr_from_bytes(a->p, a->len, &ma) < 0)
		return false;
	an_ma_iter_init(&it, &ma);
	while ((rc = an_ma_next(&it, &c)) == 1) {
		switch (i++) {
		case 0:
			if (c.code != AN_MA_IP4 && c.code != AN_MA_IP6)
				return false;
			break;
		case 1:
			if (c.code != AN_MA_TCP || c.len != 2 || (c.value[0] == 0 && c.value[1] == 0))
				return false;
			break;
		case 2:
			if (c.code != AN_MA_P2P)
				return false;
			break;
		default:
			return false;
		}
	}
	return rc == 0 && i >= 2;
}
