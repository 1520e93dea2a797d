#include "encoding/multiaddr.h"
#include "encoding/base32.h"
#include "encoding/base58.h"
#include "encoding/hex.h"
#include "encoding/multihash.h"
#include "encoding/varint.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* How a protocol's value is laid out in binary and written in text. */
enum ma_kind {
	MA_NONE,     /* no value */
	MA_IP4,      /* 4 bytes, dotted quad */
	MA_IP6,      /* 16 bytes, RFC 5952 text */
	MA_PORT,     /* 2 bytes big-endian, decimal */
	MA_STRING,   /* varlen UTF-8 (we only refuse '/' and NUL) */
	MA_P2P,      /* varlen peer-ID multihash, base58btc text */
	MA_CERTHASH  /* varlen multihash, multibase text */
};

struct ma_proto {
	uint32_t code;
	const char *name;
	enum ma_kind kind;
};

static const struct ma_proto ma_protos[] = {
	{ AN_MA_IP4, "ip4", MA_IP4 },
	{ AN_MA_TCP, "tcp", MA_PORT },
	{ AN_MA_UDP, "udp", MA_PORT },
	{ AN_MA_IP6, "ip6", MA_IP6 },
	{ AN_MA_IP6ZONE, "ip6zone", MA_STRING },
	{ AN_MA_DNS, "dns", MA_STRING },
	{ AN_MA_DNS4, "dns4", MA_STRING },
	{ AN_MA_DNS6, "dns6", MA_STRING },
	{ AN_MA_DNSADDR, "dnsaddr", MA_STRING },
	{ AN_MA_P2P, "p2p", MA_P2P },
	{ AN_MA_P2P, "ipfs", MA_P2P }, /* parse-only alias; lookups by code find "p2p" first */
	{ AN_MA_P2P_CIRCUIT, "p2p-circuit", MA_NONE },
	{ AN_MA_QUIC, "quic", MA_NONE },
	{ AN_MA_QUIC_V1, "quic-v1", MA_NONE },
	{ AN_MA_WS, "ws", MA_NONE },
	{ AN_MA_WSS, "wss", MA_NONE },
	{ AN_MA_TLS, "tls", MA_NONE },
	{ AN_MA_SNI, "sni", MA_STRING },
	{ AN_MA_NOISE, "noise", MA_NONE },
	{ AN_MA_WEBTRANSPORT, "webtransport", MA_NONE },
	{ AN_MA_CERTHASH, "certhash", MA_CERTHASH },
	{ AN_MA_WEBRTC_DIRECT, "webrtc-direct", MA_NONE },
	{ AN_MA_WEBRTC, "webrtc", MA_NONE },
	{ AN_MA_HTTP, "http", MA_NONE },
	{ AN_MA_HTTPS, "https", MA_NONE },
	{ AN_MA_MEMORY, "memory", MA_STRING },
};

#define NPROTOS (sizeof ma_protos / sizeof ma_protos[0])

static const struct ma_proto *proto_by_code(uint64_t code)
{
	for (size_t i = 0; i < NPROTOS; i++)
		if (ma_protos[i].code == code)
			return &ma_protos[i];
	return NULL;
}

static const struct ma_proto *proto_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < NPROTOS; i++)
		if (strlen(ma_protos[i].name) == len && memcmp(ma_protos[i].name, name, len) == 0)
			return &ma_protos[i];
	return NULL;
}

const char *an_ma_proto_name(uint32_t code)
{
	const struct ma_proto *p = proto_by_code(code);
	return p ? p->name : NULL;
}

/* Fixed value size of a kind, or 0 for MA_NONE and -1 for varlen kinds. */
static int kind_size(enum ma_kind k)
{
	switch (k) {
	case MA_NONE:
		return 0;
	case MA_IP4:
		return 4;
	case MA_IP6:
		return 16;
	case MA_PORT:
		return 2;
	default:
		return -1;
	}
}

/* Is v[0..len) an acceptable value for a varlen kind? */
static bool value_valid(enum ma_kind k, const uint8_t *v, size_t len)
{
	struct an_peerid id;
	struct an_multihash mh;
	size_t used;

	switch (k) {
	case MA_STRING:
		/* '/' would split the component in text and NUL would end it. */
		return len > 0 && !memchr(v, '/', len) && !memchr(v, 0, len);
	case MA_P2P:
		return an_peerid_from_bytes(v, len, &id) == 0;
	case MA_CERTHASH:
		return an_multihash_decode(v, len, &mh, &used) == 0 && used == len;
	default:
		return true;
	}
}

/* Decode and check one component at p[0..len). */
static int component_decode(const uint8_t *p, size_t len, struct an_ma_component *c)
{
	const struct ma_proto *proto;
	uint64_t code, vlen;
	size_t n, m = 0;
	int size;

	if (an_varint_decode(p, len, &code, &n) < 0)
		return AN_EMALFORMED;
	if (!(proto = proto_by_code(code)))
		return AN_EMALFORMED;
	size = kind_size(proto->kind);
	if (size >= 0) {
		vlen = (uint64_t)size;
	} else if (an_varint_decode(p + n, len - n, &vlen, &m) < 0) {
		return AN_EMALFORMED;
	}
	if (vlen > len - n - m)
		return AN_EMALFORMED;
	if (size < 0 && !value_valid(proto->kind, p + n + m, (size_t)vlen))
		return AN_EMALFORMED;
	c->code = (uint32_t)code;
	c->value = vlen ? p + n + m : NULL;
	c->len = (size_t)vlen;
	c->raw = p;
	c->raw_len = n + m + (size_t)vlen;
	return 0;
}

void an_multiaddr_init(struct an_multiaddr *ma)
{
	ma->len = 0;
}

void an_ma_iter_init(struct an_ma_iter *it, const struct an_multiaddr *ma)
{
	it->pos = ma->bytes;
	it->end = ma->bytes + ma->len;
}

int an_ma_next(struct an_ma_iter *it, struct an_ma_component *c)
{
	int rc;

	if (it->pos >= it->end)
		return 0;
	if ((rc = component_decode(it->pos, (size_t)(it->end - it->pos), c)) < 0)
		return rc;
	it->pos += c->raw_len;
	return 1;
}

int an_multiaddr_from_bytes(const uint8_t *p, size_t len, struct an_multiaddr *out)
{
	struct an_ma_component c;
	size_t off = 0;

	if (len == 0)
		return AN_EMALFORMED;
	if (len > AN_MULTIADDR_MAX)
		return AN_ETOOBIG;
	while (off < len) {
		if (component_decode(p + off, len - off, &c) < 0)
			return AN_EMALFORMED;
		off += c.raw_len;
	}
	memcpy(out->bytes, p, len);
	out->len = len;
	return 0;
}

int an_multiaddr_append(struct an_multiaddr *ma, uint32_t code, const uint8_t *value,
			size_t len)
{
	const struct ma_proto *proto = proto_by_code(code);
	uint8_t head[2 * AN_VARINT_MAX_BYTES];
	size_t n;
	int size;

	if (!proto)
		return AN_EMALFORMED;
	size = kind_size(proto->kind);
	if (size >= 0 ? len != (size_t)size : !value_valid(proto->kind, value, len))
		return AN_EMALFORMED;
	n = an_varint_encode(code, head);
	if (size < 0)
		n += an_varint_encode(len, head + n);
	if (n + len > AN_MULTIADDR_MAX - ma->len)
		return AN_ETOOBIG;
	memcpy(ma->bytes + ma->len, head, n);
	if (len)
		memcpy(ma->bytes + ma->len + n, value, len);
	ma->len += n + len;
	return 0;
}

int an_multiaddr_append_p2p(struct an_multiaddr *ma, const struct an_peerid *id)
{
	return an_multiaddr_append(ma, AN_MA_P2P, id->bytes, id->len);
}

/* ---- text ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding (multibase 'u'). */
static int b64url_encode(const uint8_t *in, size_t len, char *out, size_t outcap)
{
	size_t n = 0;
	unsigned acc = 0, bits = 0;

	if (outcap < (len * 8 + 5) / 6 + 1)
		return AN_ETOOBIG;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8 | in[i]) & 0x3fff;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[n++] = b64url[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[n++] = b64url[(acc << (6 - bits)) & 63];
	out[n] = 0;
	return 0;
}

static int b64url_decode(const char *text, size_t textlen, uint8_t *out, size_t outcap,
			 size_t *outlen)
{
	size_t n = 0;
	unsigned acc = 0, bits = 0;

	if (textlen % 4 == 1)
		return AN_EMALFORMED;
	for (size_t i = 0; i < textlen; i++) {
		const char *p = text[i] ? strchr(b64url, text[i]) : NULL;
		if (!p)
			return AN_EMALFORMED;
		acc = (acc << 6 | (unsigned)(p - b64url)) & 0x3fff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == outcap)
				return AN_ETOOBIG;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	if (acc & ((1u << bits) - 1))
		return AN_EMALFORMED;
	*outlen = n;
	return 0;
}

/* Decode a multibase certhash value s[0..len) into out. */
static int certhash_parse(const char *s, size_t len, uint8_t *out, size_t outcap,
			  size_t *outlen)
{
	char tmp[AN_BASE58_MAX_INPUT + 1];

	if (len < 2)
		return AN_EMALFORMED;
	switch (s[0]) {
	case 'u':
		return b64url_decode(s + 1, len - 1, out, outcap, outlen);
	case 'b':
	case 'B':
		return an_base32_decode(s + 1, len - 1, out, outcap, outlen);
	case 'f':
	case 'F':
		return an_hex_decode(s + 1, len - 1, out, outcap, outlen);
	case 'z':
		if (len - 1 > AN_BASE58_MAX_INPUT)
			return AN_ETOOBIG;
		memcpy(tmp, s + 1, len - 1);
		tmp[len - 1] = 0;
		return an_base58_decode(tmp, out, outcap, outlen);
	default:
		return AN_EMALFORMED;
	}
}

/* Decimal port s[0..len): 1 to 5 digits, at most 65535. */
static int port_parse(const char *s, size_t len, uint8_t out[2])
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return AN_EMALFORMED;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return AN_EMALFORMED;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return AN_EMALFORMED;
	out[0] = (uint8_t)(v >> 8);
	out[1] = (uint8_t)v;
	return 0;
}

/* Binary value of one text value s[0..len) of kind k into out (cap AN_MULTIADDR_MAX). */
static int value_parse(enum ma_kind k, const char *s, size_t len, uint8_t *out, size_t *outlen)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	struct an_peerid id;
	int rc;

	switch (k) {
	case MA_IP4:
	case MA_IP6:
		if (len >= sizeof tmp)
			return AN_EMALFORMED;
		memcpy(tmp, s, len);
		tmp[len] = 0;
		if (inet_pton(k == MA_IP4 ? AF_INET : AF_INET6, tmp, out) != 1)
			return AN_EMALFORMED;
		*outlen = k == MA_IP4 ? 4 : 16;
		return 0;
	case MA_PORT:
		*outlen = 2;
		return port_parse(s, len, out);
	case MA_STRING:
		if (len > AN_MULTIADDR_MAX)
			return AN_ETOOBIG;
		memcpy(out, s, len);
		*outlen = len;
		return 0;
	case MA_P2P: {
		char text[AN_PEERID_TEXT_MAX];
		if (len >= sizeof text)
			return AN_EMALFORMED;
		memcpy(text, s, len);
		text[len] = 0;
		if ((rc = an_peerid_parse(text, &id)) < 0)
			return AN_EMALFORMED;
		memcpy(out, id.bytes, id.len);
		*outlen = id.len;
		return 0;
	}
	case MA_CERTHASH:
		rc = certhash_parse(s, len, out, AN_MULTIADDR_MAX, outlen);
		return rc == AN_ETOOBIG ? rc : rc < 0 ? AN_EMALFORMED : 0;
	default:
		return AN_EMALFORMED;
	}
}

int an_multiaddr_parse(const char *text, struct an_multiaddr *out)
{
	static const uint8_t none[1];
	uint8_t value[AN_MULTIADDR_MAX];
	struct an_multiaddr ma;
	const char *p = text;
	size_t tlen = strnlen(text, AN_MULTIADDR_TEXT_MAX);
	int rc;

	if (tlen >= AN_MULTIADDR_TEXT_MAX)
		return AN_ETOOBIG;
	if (*p != '/')
		return AN_EMALFORMED;
	an_multiaddr_init(&ma);
	while (*p == '/' && p[1]) {
		const struct ma_proto *proto;
		const char *name = ++p, *val;
		size_t vlen = 0;

		p += strcspn(p, "/");
		if (!(proto = proto_by_name(name, (size_t)(p - name))))
			return AN_EMALFORMED;
		if (proto->kind == MA_NONE) {
			rc = an_multiaddr_append(&ma, proto->code, none, 0);
		} else {
			if (*p != '/')
				return AN_EMALFORMED; /* value missing */
			val = ++p;
			p += strcspn(p, "/");
			if (p == val)
				return AN_EMALFORMED;
			if ((rc = value_parse(proto->kind, val, (size_t)(p - val), value, &vlen)) < 0)
				return rc;
			rc = an_multiaddr_append(&ma, proto->code, value, vlen);
		}
		if (rc < 0)
			return rc;
	}
	/* The loop stops at the end or at one trailing '/'. */
	if (ma.len == 0)
		return AN_EMALFORMED;
	*out = ma;
	return 0;
}

/* Append s to out at *pos, keeping room for the NUL. */
static int text_put(char *out, size_t outcap, size_t *pos, const char *s)
{
	size_t n = strlen(s);
	if (n >= outcap - *pos)
		return AN_ETOOBIG;
	memcpy(out + *pos, s, n + 1);
	*pos += n;
	return 0;
}

/* Text of one value into buf (cap bufcap). */
static int value_format(const struct ma_proto *proto, const struct an_ma_component *c,
			char *buf, size_t bufcap)
{
	struct an_peerid id;

	switch (proto->kind) {
	case MA_IP4:
	case MA_IP6:
		if (!inet_ntop(proto->kind == MA_IP4 ? AF_INET : AF_INET6, c->value, buf,
			       (socklen_t)bufcap))
			return AN_EMALFORMED;
		return 0;
	case MA_PORT:
		snprintf(buf, bufcap, "%u", (unsigned)c->value[0] << 8 | c->value[1]);
		return 0;
	case MA_STRING:
		if (c->len >= bufcap)
			return AN_ETOOBIG;
		memcpy(buf, c->value, c->len);
		buf[c->len] = 0;
		return 0;
	case MA_P2P:
		if (an_peerid_from_bytes(c->value, c->len, &id) < 0)
			return AN_EMALFORMED;
		return an_peerid_format(&id, buf, bufcap);
	case MA_CERTHASH:
		buf[0] = 'u';
		return b64url_encode(c->value, c->len, buf + 1, bufcap - 1);
	default:
		buf[0] = 0;
		return 0;
	}
}

int an_multiaddr_format(const struct an_multiaddr *ma, char *out, size_t outcap)
{
	/* The longest value text: a string or certhash of nearly AN_MULTIADDR_MAX bytes. */
	char val[AN_MULTIADDR_MAX * 4 / 3 + 8];
	struct an_ma_iter it;
	struct an_ma_component c;
	size_t pos = 0;
	int rc;

	if (outcap == 0)
		return AN_ETOOBIG;
	out[0] = 0;
	an_ma_iter_init(&it, ma);
	while ((rc = an_ma_next(&it, &c)) == 1) {
		const struct ma_proto *proto = proto_by_code(c.code);
		if ((rc = text_put(out, outcap, &pos, "/")) < 0 ||
		    (rc = text_put(out, outcap, &pos, proto->name)) < 0)
			return rc;
		if (proto->kind == MA_NONE)
			continue;
		if ((rc = value_format(proto, &c, val, sizeof val)) < 0 ||
		    (rc = text_put(out, outcap, &pos, "/")) < 0 ||
		    (rc = text_put(out, outcap, &pos, val)) < 0)
			return rc;
	}
	if (rc < 0)
		return rc;
	return ma->len ? 0 : AN_EMALFORMED;
}

/* ---- helpers for the transport ---- */

int an_multiaddr_split_p2p(const struct an_multiaddr *ma, struct an_multiaddr *rest,
			   struct an_peerid *id)
{
	struct an_ma_iter it;
	struct an_ma_component c, last = { 0 };
	size_t before = 0, off = 0;
	int rc;

	an_ma_iter_init(&it, ma);
	while ((rc = an_ma_next(&it, &c)) == 1) {
		before = off;
		off += c.raw_len;
		last = c;
	}
	if (rc < 0)
		return rc;
	if (last.code != AN_MA_P2P || an_peerid_from_bytes(last.value, last.len, id) < 0) {
		if (rest != ma)
			*rest = *ma;
		return AN_ENOTFOUND;
	}
	if (rest != ma)
		memcpy(rest->bytes, ma->bytes, before);
	rest->len = before;
	return 0;
}

bool an_multiaddr_has(const struct an_multiaddr *ma, uint32_t code)
{
	struct an_ma_iter it;
	struct an_ma_component c;

	an_ma_iter_init(&it, ma);
	while (an_ma_next(&it, &c) == 1)
		if (c.code == code)
			return true;
	return false;
}

bool an_multiaddr_is_circuit(const struct an_multiaddr *ma)
{
	return an_multiaddr_has(ma, AN_MA_P2P_CIRCUIT);
}

bool an_multiaddr_equal(const struct an_multiaddr *a, const struct an_multiaddr *b)
{
	return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* Interface index of an ip6zone value: a name, or a number as Linux prints it. */
static int zone_index(const struct an_ma_component *c, uint32_t *index)
{
	char name[IF_NAMESIZE + 8];
	unsigned long v = 0;
	size_t i;

	if (c->len >= sizeof name)
		return -ENODEV;
	memcpy(name, c->value, c->len);
	name[c->len] = 0;
	if ((*index = if_nametoindex(name)) != 0)
		return 0;
	for (i = 0; i < c->len && name[i] >= '0' && name[i] <= '9' && v <= UINT32_MAX; i++)
		v = v * 10 + (unsigned long)(name[i] - '0');
	if (i != c->len || v == 0 || v > UINT32_MAX)
		return -ENODEV;
	*index = (uint32_t)v;
	return 0;
}

int an_multiaddr_to_sockaddr(const struct an_multiaddr *ma, struct sockaddr_storage *ss,
			     socklen_t *sslen)
{
	struct an_ma_iter it;
	struct an_ma_component c[5]; /* ip6zone, ip6, tcp, p2p, and one too many */
	size_t n = 0, i = 0;
	uint32_t scope = 0;
	int rc = 0;

	an_ma_iter_init(&it, ma);
	while (n < 5 && (rc = an_ma_next(&it, &c[n])) == 1)
		n++;
	if (rc < 0)
		return rc;
	if (n == 5)
		return AN_ENOPROTO;
	if (n > 0 && c[0].code == AN_MA_IP6ZONE) {
		if (n < 2 || c[1].code != AN_MA_IP6)
			return AN_ENOPROTO;
		if ((rc = zone_index(&c[0], &scope)) < 0)
			return rc;
		i = 1;
	}
	/* ip, tcp, and at most a trailing /p2p/ */
	if (n - i < 2 || n - i > 3 || c[i + 1].code != AN_MA_TCP ||
	    (n - i == 3 && c[i + 2].code != AN_MA_P2P))
		return AN_ENOPROTO;
	memset(ss, 0, sizeof *ss);
	if (c[i].code == AN_MA_IP4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, c[i].value, 4);
		memcpy(&sin->sin_port, c[i + 1].value, 2);
		*sslen = sizeof *sin;
	} else if (c[i].code == AN_MA_IP6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, c[i].value, 16);
		memcpy(&sin6->sin6_port, c[i + 1].value, 2);
		sin6->sin6_scope_id = scope;
		*sslen = sizeof *sin6;
	} else {
		return AN_ENOPROTO;
	}
	return 0;
}

int an_multiaddr_from_sockaddr(const struct sockaddr *sa, socklen_t salen,
			       struct an_multiaddr *out)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct an_multiaddr ma;
	char zone[IF_NAMESIZE + 12];
	const uint8_t *port;
	int rc;

	an_multiaddr_init(&ma);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		if (salen < (socklen_t)sizeof *sin)
			return AN_EMALFORMED;
		rc = an_multiaddr_append(&ma, AN_MA_IP4, (const uint8_t *)&sin->sin_addr, 4);
		port = (const uint8_t *)&sin->sin_port;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *a = sin6->sin6_addr.s6_addr;
		if (salen < (socklen_t)sizeof *sin6)
			return AN_EMALFORMED;
		port = (const uint8_t *)&sin6->sin6_port;
		if (memcmp(a, v4mapped, 12) == 0) {
			rc = an_multiaddr_append(&ma, AN_MA_IP4, a + 12, 4);
		} else {
			rc = 0;
			if (sin6->sin6_scope_id) {
				if (!if_indextoname(sin6->sin6_scope_id, zone))
					snprintf(zone, sizeof zone, "%u", (unsigned)sin6->sin6_scope_id);
				rc = an_multiaddr_append(&ma, AN_MA_IP6ZONE, (const uint8_t *)zone,
							 strlen(zone));
			}
			if (rc == 0)
				rc = an_multiaddr_append(&ma, AN_MA_IP6, a, 16);
		}
	} else {
		return -EAFNOSUPPORT;
	}
	if (rc == 0)
		rc = an_multiaddr_append(&ma, AN_MA_TCP, port, 2);
	if (rc < 0)
		return rc;
	*out = ma;
	return 0;
}

/* ---- address scope ---- */

struct v4range {
	uint32_t net;
	unsigned prefix;
};

/* IANA IPv4 special-purpose ranges that are not globally reachable (RFC 6890 and updates). */
static const struct v4range v4_private[] = {
	{ 0x00000000, 8 },  /* "this network" */
	{ 0x0a000000, 8 },  /* RFC 1918 */
	{ 0x64400000, 10 }, /* shared address space (carrier-grade NAT) */
	{ 0xa9fe0000, 16 }, /* link-local */
	{ 0xac100000, 12 }, /* RFC 1918 */
	{ 0xc0000000, 24 }, /* IETF protocol assignments */
	{ 0xc0000200, 24 }, /* TEST-NET-1 */
	{ 0xc0586300, 24 }, /* 6to4 relay anycast (deprecated) */
	{ 0xc0a80000, 16 }, /* RFC 1918 */
	{ 0xc6120000, 15 }, /* benchmarking */
	{ 0xc6336400, 24 }, /* TEST-NET-2 */
	{ 0xcb007100, 24 }, /* TEST-NET-3 */
	{ 0xe0000000, 4 },  /* multicast */
	{ 0xf0000000, 4 },  /* reserved, and broadcast */
};

static enum an_ma_scope scope_v4(const uint8_t *a)
{
	uint32_t ip = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];

	if (a[0] == 127)
		return AN_MA_SCOPE_LOOPBACK;
	for (size_t i = 0; i < sizeof v4_private / sizeof v4_private[0]; i++)
		if ((ip ^ v4_private[i].net) >> (32 - v4_private[i].prefix) == 0)
			return AN_MA_SCOPE_PRIVATE;
	return AN_MA_SCOPE_PUBLIC;
}

static enum an_ma_scope scope_v6(const uint8_t *a)
{
	static const uint8_t loopback[16] = { [15] = 1 };
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (memcmp(a, loopback, 16) == 0)
		return AN_MA_SCOPE_LOOPBACK;
	if (memcmp(a, v4mapped, 12) == 0)
		return scope_v4(a + 12);
	if ((a[0] & 0xe0) != 0x20)   /* outside global unicast 2000::/3: ::, fc00::/7, */
		return AN_MA_SCOPE_PRIVATE; /* fe80::/10, fec0::/10, ff00::/8, 100::/64... */
	if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8)
		return AN_MA_SCOPE_PRIVATE; /* 2001:db8::/32 documentation */
	return AN_MA_SCOPE_PUBLIC;
}

enum an_ma_scope an_multiaddr_scope(const struct an_multiaddr *ma)
{
	struct an_ma_iter it;
	struct an_ma_component c;

	an_ma_iter_init(&it, ma);
	while (an_ma_next(&it, &c) == 1) {
		if (c.code == AN_MA_IP4)
			return scope_v4(c.value);
		if (c.code == AN_MA_IP6)
			return scope_v6(c.value);
	}
	return AN_MA_SCOPE_UNKNOWN;
}
