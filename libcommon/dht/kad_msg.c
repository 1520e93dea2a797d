#include "dht/kad_msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encoding/protobuf.h"
#include "util/error.h"

/* Field numbers (kad-dht/README.md). */
enum {
	F_MSG_TYPE = 1,
	F_MSG_KEY = 2,
	F_MSG_RECORD = 3,
	F_MSG_CLOSER = 8,
	F_MSG_PROVIDERS = 9,
	F_MSG_CLUSTER = 10,
	F_REC_KEY = 1,
	F_REC_VALUE = 2,
	F_REC_TIME = 5,
	F_PEER_ID = 1,
	F_PEER_ADDRS = 2,
	F_PEER_CONN = 3
};

void an_kad_msg_init(struct an_kad_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = AN_KAD_PUT_VALUE;
}

void an_kad_msg_free(struct an_kad_msg *m)
{
	if (!m)
		return;
	free(m->closer);
	free(m->providers);
	an_kad_msg_init(m);
}

const char *an_kad_type_name(int type)
{
	static const char *const names[] = { "PUT_VALUE",     "GET_VALUE", "ADD_PROVIDER",
					     "GET_PROVIDERS", "FIND_NODE", "PING" };
	if (type < 0 || type > AN_KAD_PING)
		return "UNKNOWN";
	return names[type];
}

/* A fresh slot at the end of the closer or provider list. */
static int peer_slot(struct an_kad_msg *m, bool providers, struct an_kad_peer **slot)
{
	struct an_kad_peer **arr = providers ? &m->providers : &m->closer;
	size_t *n = providers ? &m->nproviders : &m->ncloser;
	size_t *alloc = providers ? &m->providers_alloc : &m->closer_alloc;

	if (*n >= AN_KAD_MSG_PEERS_MAX)
		return AN_ELIMIT;
	if (*n == *alloc) {
		size_t na = *alloc ? *alloc * 2 : 8;
		if (na > AN_KAD_MSG_PEERS_MAX)
			na = AN_KAD_MSG_PEERS_MAX;
		struct an_kad_peer *p = realloc(*arr, na * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*arr = p;
		*alloc = na;
	}
	*slot = &(*arr)[*n];
	memset(*slot, 0, sizeof(**slot));
	(*n)++;
	return 0;
}

int an_kad_msg_add_peer(struct an_kad_msg *m, bool providers, const struct an_peerid *id,
			const struct an_kad_bytes *addrs, size_t naddrs, enum an_kad_conn conn)
{
	struct an_kad_peer *p;
	int rc = peer_slot(m, providers, &p);
	if (rc < 0)
		return rc;
	p->id = *id;
	if (naddrs > AN_KAD_PEER_ADDRS_MAX)
		naddrs = AN_KAD_PEER_ADDRS_MAX;
	for (size_t i = 0; i < naddrs; i++)
		p->addrs[i] = addrs[i];
	p->naddrs = naddrs;
	p->connection = conn;
	return 0;
}

int an_kad_msg_add_peer_ma(struct an_kad_msg *m, bool providers, const struct an_peerid *id,
			   const struct an_multiaddr *addrs, size_t naddrs, enum an_kad_conn conn)
{
	struct an_kad_bytes b[AN_KAD_PEER_ADDRS_MAX];
	if (naddrs > AN_KAD_PEER_ADDRS_MAX)
		naddrs = AN_KAD_PEER_ADDRS_MAX;
	for (size_t i = 0; i < naddrs; i++) {
		b[i].p = addrs[i].bytes;
		b[i].len = addrs[i].len;
	}
	return an_kad_msg_add_peer(m, providers, id, b, naddrs, conn);
}

/* ---- encoding ---- */

static int encode_peer(const struct an_kad_peer *p, struct an_buf *tmp)
{
	int rc = 0;
	if (p->id.len)
		rc = an_pb_put_bytes(tmp, F_PEER_ID, p->id.bytes, p->id.len);
	for (size_t i = 0; rc == 0 && i < p->naddrs; i++)
		rc = an_pb_put_bytes(tmp, F_PEER_ADDRS, p->addrs[i].p, p->addrs[i].len);
	/* js writes an explicitly set connection even when 0; so do we. */
	if (rc == 0)
		rc = an_pb_put_varint(tmp, F_PEER_CONN, (uint64_t)p->connection);
	return rc;
}

static int encode_peers(const struct an_kad_peer *peers, size_t n, uint32_t field,
			struct an_buf *out)
{
	struct an_buf tmp;
	int rc = 0;

	an_buf_init(&tmp, out->max);
	for (size_t i = 0; i < n; i++) {
		an_buf_reset(&tmp);
		rc = encode_peer(&peers[i], &tmp);
		if (rc == 0)
			rc = an_pb_put_bytes(out, field, tmp.data, tmp.len);
		if (rc < 0)
			goto out;
	}
out:
	an_buf_free(&tmp);
	return rc;
}

static int encode_record(const struct an_kad_record *r, struct an_buf *out)
{
	struct an_buf tmp;
	int rc = 0;

	an_buf_init(&tmp, out->max);
	if (r->key.len)
		rc = an_pb_put_bytes(&tmp, F_REC_KEY, r->key.p, r->key.len);
	if (rc == 0 && r->value.len)
		rc = an_pb_put_bytes(&tmp, F_REC_VALUE, r->value.p, r->value.len);
	if (rc == 0 && r->time_received.len)
		rc = an_pb_put_bytes(&tmp, F_REC_TIME, r->time_received.p, r->time_received.len);
	if (rc == 0)
		rc = an_pb_put_bytes(out, F_MSG_RECORD, tmp.data, tmp.len);
	an_buf_free(&tmp);
	return rc;
}

int an_kad_msg_encode(const struct an_kad_msg *m, struct an_buf *out)
{
	int rc;

	if ((int)m->type < 0 || m->type > AN_KAD_PING)
		return -EINVAL;
	/* Always written, even PUT_VALUE = 0 (K13). */
	rc = an_pb_put_varint(out, F_MSG_TYPE, (uint64_t)m->type);
	if (rc == 0 && m->has_key)
		rc = an_pb_put_bytes(out, F_MSG_KEY, m->key.p, m->key.len);
	if (rc == 0 && m->has_record)
		rc = encode_record(&m->record, out);
	if (rc == 0)
		rc = encode_peers(m->closer, m->ncloser, F_MSG_CLOSER, out);
	if (rc == 0)
		rc = encode_peers(m->providers, m->nproviders, F_MSG_PROVIDERS, out);
	/* int32: negative values are sign-extended to 64 bits, as protobuf does. */
	if (rc == 0 && m->has_cluster_level)
		rc = an_pb_put_varint(out, F_MSG_CLUSTER, (uint64_t)(int64_t)m->cluster_level);
	return rc;
}

/* ---- decoding ---- */

static int decode_record(const uint8_t *p, size_t len, struct an_kad_record *r)
{
	struct an_pb_reader rd;
	struct an_pb_field f;
	int rc;

	memset(r, 0, sizeof(*r));
	an_pb_reader_init(&rd, p, len);
	while ((rc = an_pb_next(&rd, &f)) == 1) {
		struct an_kad_bytes *dst = NULL;
		if (f.number == F_REC_KEY)
			dst = &r->key;
		else if (f.number == F_REC_VALUE)
			dst = &r->value;
		else if (f.number == F_REC_TIME)
			dst = &r->time_received;
		else
			continue; /* removed author (3), signature (4), rust 666/777, ... */
		if (f.wire != AN_PB_LEN)
			return AN_EMALFORMED;
		dst->p = f.data;
		dst->len = f.len;
	}
	return rc;
}

/*
 * One Peer into a new slot of m's list.  A peer without a valid peer ID is
 * dropped (return 0, no slot); addresses that do not parse are skipped.
 */
static int decode_peer(struct an_kad_msg *m, bool providers, const uint8_t *p, size_t len)
{
	struct an_pb_reader rd;
	struct an_pb_field f;
	struct an_kad_peer peer;
	struct an_kad_peer *slot;
	struct an_multiaddr ma;
	bool has_id = false, id_ok = false;
	int rc;

	memset(&peer, 0, sizeof(peer));
	an_pb_reader_init(&rd, p, len);
	while ((rc = an_pb_next(&rd, &f)) == 1) {
		if (f.number == F_PEER_ID) {
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			has_id = true;
			id_ok = an_peerid_from_bytes(f.data, f.len, &peer.id) == 0;
		} else if (f.number == F_PEER_ADDRS) {
			if (f.wire != AN_PB_LEN)
				return AN_EMALFORMED;
			if (peer.naddrs >= AN_KAD_PEER_ADDRS_MAX)
				continue;
			if (an_multiaddr_from_bytes(f.data, f.len, &ma) < 0)
				continue; /* a transport we do not know: keep the others */
			peer.addrs[peer.naddrs].p = f.data;
			peer.addrs[peer.naddrs].len = f.len;
			peer.naddrs++;
		} else if (f.number == F_PEER_CONN) {
			if (f.wire != AN_PB_VARINT)
				return AN_EMALFORMED;
			peer.connection = f.varint <= AN_KAD_CANNOT_CONNECT ?
						  (enum an_kad_conn)f.varint :
						  AN_KAD_NOT_CONNECTED;
		}
	}
	if (rc < 0)
		return rc;
	if (!has_id || !id_ok)
		return 0;
	rc = peer_slot(m, providers, &slot);
	if (rc == AN_ELIMIT)
		return 0; /* over the cap: ignored */
	if (rc < 0)
		return rc;
	*slot = peer;
	return 0;
}

int an_kad_msg_decode(const uint8_t *p, size_t len, size_t max_len, struct an_kad_msg *m)
{
	struct an_pb_reader rd;
	struct an_pb_field f;
	int rc;

	an_kad_msg_init(m);
	if (len > max_len)
		return AN_ETOOBIG;
	an_pb_reader_init(&rd, p, len);
	while ((rc = an_pb_next(&rd, &f)) == 1) {
		switch (f.number) {
		case F_MSG_TYPE:
			if (f.wire != AN_PB_VARINT) {
				rc = AN_EMALFORMED;
				goto out;
			}
			if (f.varint > AN_KAD_PING) {
				rc = AN_EMALFORMED;
				goto out;
			}
			m->type = (enum an_kad_type)f.varint;
			break;
		case F_MSG_KEY:
			if (f.wire != AN_PB_LEN) {
				rc = AN_EMALFORMED;
				goto out;
			}
			m->has_key = true;
			m->key.p = f.data;
			m->key.len = f.len;
			break;
		case F_MSG_RECORD:
			if (f.wire != AN_PB_LEN) {
				rc = AN_EMALFORMED;
				goto out;
			}
			rc = decode_record(f.data, f.len, &m->record);
			if (rc < 0)
				goto out;
			m->has_record = true;
			break;
		case F_MSG_CLOSER:
		case F_MSG_PROVIDERS:
			if (f.wire != AN_PB_LEN) {
				rc = AN_EMALFORMED;
				goto out;
			}
			rc = decode_peer(m, f.number == F_MSG_PROVIDERS, f.data, f.len);
			if (rc < 0)
				goto out;
			break;
		case F_MSG_CLUSTER:
			if (f.wire != AN_PB_VARINT) {
				rc = AN_EMALFORMED;
				goto out;
			}
			m->has_cluster_level = true;
			m->cluster_level = (int32_t)(uint32_t)f.varint;
			break;
		default:
			break; /* unknown fields are skipped (K17) */
		}
	}
	/* proto3 senders (js) omit type for PUT_VALUE = 0: absence means 0 (from init). */
out:
	if (rc < 0) {
		an_kad_msg_free(m);
		return rc;
	}
	return 0;
}

/* ---- RFC 3339 ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned mo, unsigned d)
{
	y -= mo <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *mo, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*mo = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*mo <= 2);
}

/* v as exactly n decimal digits (zero-padded) at out. */
static void put_digits(char *out, size_t n, uint64_t v)
{
	for (size_t i = n; i-- > 0; v /= 10)
		out[i] = (char)('0' + v % 10);
}

int an_kad_time_format(int64_t sec, uint32_t nsec, char out[AN_KAD_TIME_LEN + 1])
{
	int64_t days, rem, y;
	unsigned mo, d;

	if (nsec >= 1000000000u)
		return -EINVAL;
	days = sec / 86400;
	rem = sec % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &mo, &d);
	if (y < 0 || y > 9999)
		return -EINVAL;
	put_digits(out, 4, (uint64_t)y);
	out[4] = '-';
	put_digits(out + 5, 2, mo);
	out[7] = '-';
	put_digits(out + 8, 2, d);
	out[10] = 'T';
	put_digits(out + 11, 2, (uint64_t)(rem / 3600));
	out[13] = ':';
	put_digits(out + 14, 2, (uint64_t)(rem / 60 % 60));
	out[16] = ':';
	put_digits(out + 17, 2, (uint64_t)(rem % 60));
	out[19] = '.';
	put_digits(out + 20, 9, nsec);
	out[29] = 'Z';
	out[30] = '\0';
	return 0;
}

/* n decimal digits at s into *v; false if any is not a digit. */
static bool digits(const uint8_t *s, size_t n, unsigned *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return true;
}

int an_kad_time_parse(const uint8_t *s, size_t len, int64_t *sec, uint32_t *nsec)
{
	unsigned y, mo, d, h, mi, se, oh, om, frac = 0, fdig = 0;
	size_t i = 19;
	int64_t t, off = 0;
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !digits(s + 17, 2, &se))
		return AN_EMALFORMED;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return AN_EMALFORMED;
	if (s[i] == '.') {
		i++;
		size_t start = i;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (fdig < 9) {
				frac = frac * 10 + (unsigned)(s[i] - '0');
				fdig++;
			}
			i++;
		}
		if (i == start)
			return AN_EMALFORMED;
		for (; fdig < 9; fdig++)
			frac *= 10;
	}
	if (i >= len)
		return AN_EMALFORMED;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		if (len - i < 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
		    !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return AN_EMALFORMED;
		off = (int64_t)(oh * 3600 + om * 60);
		if (s[i] == '-')
			off = -off;
		i += 6;
	} else {
		return AN_EMALFORMED;
	}
	if (i != len)
		return AN_EMALFORMED;
	t = days_from_civil(y, mo, d) * 86400 + (int64_t)(h * 3600 + mi * 60 + (se > 59 ? 59 : se));
	*sec = t - off;
	*nsec = frac;
	return 0;
}
