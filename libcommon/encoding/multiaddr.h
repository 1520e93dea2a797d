/*
 * multiaddr.h - multiformats multiaddr, text <-> binary.
 *
 * Binary: components uvarint(code) || value, where value is fixed-size
 * (ip4 4, ip6 16, tcp/udp 2 big-endian) or uvarint(len) || bytes, or empty.
 * Text: "/name/value/name/...".  Known protocols (codes from
 * multiformats/multiaddr protocols.csv):
 *
 *   ip4 4, tcp 6, udp 273, ip6 41, ip6zone 42, dns 53, dns4 54, dns6 55,
 *   dnsaddr 56, p2p 421 (text alias "ipfs", printed "p2p"), p2p-circuit 290,
 *   quic 460, quic-v1 461, ws 477, wss 478, tls 448, sni 449, noise 454,
 *   webtransport 465, certhash 466, webrtc-direct 280, webrtc 281, http 480,
 *   https 443, memory 777.
 *
 * Any other code is AN_EMALFORMED: peers send listen addresses of transports
 * we do not know, and callers skip such addresses (as rust-libp2p kad does).
 * Decoding checks every value, so a decoded multiaddr always prints and
 * parses back to the same bytes: string values (dns*, ip6zone, sni, memory)
 * must be non-empty and contain no '/' or NUL; a p2p value must be a peer ID
 * (identity or sha2-256 multihash; text base58btc or CIDv1 "bafz...",
 * printed base58btc); a certhash is a multihash (text multibase: 'u'
 * base64url, 'z' base58btc, 'b'/'B' base32, 'f'/'F' hex; printed 'u').
 *
 * struct an_multiaddr holds the binary form inline (no heap): copy it by
 * assignment, it needs no free.
 */
#ifndef AN_ENCODING_MULTIADDR_H
#define AN_ENCODING_MULTIADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "crypto/peerid.h"

#define AN_MULTIADDR_MAX 512       /* binary bytes */
#define AN_MULTIADDR_TEXT_MAX 4096 /* text bytes with the NUL: enough for any AN_MULTIADDR_MAX */

enum an_ma_code {
	AN_MA_IP4 = 4,
	AN_MA_TCP = 6,
	AN_MA_IP6 = 41,
	AN_MA_IP6ZONE = 42,
	AN_MA_DNS = 53,
	AN_MA_DNS4 = 54,
	AN_MA_DNS6 = 55,
	AN_MA_DNSADDR = 56,
	AN_MA_UDP = 273,
	AN_MA_WEBRTC_DIRECT = 280,
	AN_MA_WEBRTC = 281,
	AN_MA_P2P_CIRCUIT = 290,
	AN_MA_P2P = 421,
	AN_MA_HTTPS = 443,
	AN_MA_TLS = 448,
	AN_MA_SNI = 449,
	AN_MA_NOISE = 454,
	AN_MA_QUIC = 460,
	AN_MA_QUIC_V1 = 461,
	AN_MA_WEBTRANSPORT = 465,
	AN_MA_CERTHASH = 466,
	AN_MA_WS = 477,
	AN_MA_WSS = 478,
	AN_MA_HTTP = 480,
	AN_MA_MEMORY = 777
};

struct an_multiaddr {
	size_t len;
	uint8_t bytes[AN_MULTIADDR_MAX];
};

/* One component; value and raw borrow from the multiaddr iterated over. */
struct an_ma_component {
	uint32_t code;
	const uint8_t *value; /* the value bytes (no length prefix); NULL if none */
	size_t len;
	const uint8_t *raw;   /* the whole component: code, length prefix, value */
	size_t raw_len;
};

struct an_ma_iter {
	const uint8_t *pos; /* borrowed */
	const uint8_t *end;
};

/* The empty multiaddr (a starting point for an_multiaddr_append). */
void an_multiaddr_init(struct an_multiaddr *ma);

/*
 * Check and copy the binary multiaddr p[0..len) (borrowed) into *out.
 * 0; AN_EMALFORMED (unknown code, bad value, truncated, empty input);
 * AN_ETOOBIG over AN_MULTIADDR_MAX.
 */
int an_multiaddr_from_bytes(const uint8_t *p, size_t len, struct an_multiaddr *out);

/*
 * Parse text (NUL-terminated, borrowed) into *out.  One trailing '/' is
 * allowed.  0; AN_EMALFORMED (unknown name, bad value, empty);
 * AN_ETOOBIG (text over AN_MULTIADDR_TEXT_MAX or binary over the cap).
 */
int an_multiaddr_parse(const char *text, struct an_multiaddr *out);

/* Text form into out (outcap bytes with the NUL).  0, AN_ETOOBIG, AN_EMALFORMED. */
int an_multiaddr_format(const struct an_multiaddr *ma, char *out, size_t outcap);

/* Iterate over ma's components; ma is borrowed and must outlive it. */
void an_ma_iter_init(struct an_ma_iter *it, const struct an_multiaddr *ma);

/* 1 and *c filled, 0 at the end, AN_EMALFORMED (the iterator then stays put). */
int an_ma_next(struct an_ma_iter *it, struct an_ma_component *c);

/* The text name of a known code, or NULL. */
const char *an_ma_proto_name(uint32_t code);

/*
 * Append one component (value borrowed and copied; NULL/0 for protocols
 * without a value), checked as decoding checks it.  0, AN_EMALFORMED,
 * AN_ETOOBIG (ma unchanged on error).
 */
int an_multiaddr_append(struct an_multiaddr *ma, uint32_t code, const uint8_t *value,
			size_t len);

/* Append "/p2p/<id>".  0 or AN_ETOOBIG. */
int an_multiaddr_append_p2p(struct an_multiaddr *ma, const struct an_peerid *id);

/*
 * If ma ends in /p2p/<id>: *rest gets everything before it, *id the peer ID,
 * returns 0.  Otherwise AN_ENOTFOUND, and *rest is a copy of ma.  rest may
 * be ma itself.  For a relay address .../p2p/R/p2p-circuit/p2p/T this splits
 * off T only.
 */
int an_multiaddr_split_p2p(const struct an_multiaddr *ma, struct an_multiaddr *rest,
			   struct an_peerid *id);

/*
 * The TCP endpoint of an address of the form [ip6zone/]ip4|ip6/tcp[/p2p/id]
 * into *ss (port and address in network order) and *sslen.  AN_ENOPROTO for
 * anything else (dns, udp, ws, p2p-circuit, ...): not dialable as plain TCP.
 * -ENODEV for an ip6zone naming no interface here.
 */
int an_multiaddr_to_sockaddr(const struct an_multiaddr *ma, struct sockaddr_storage *ss,
			     socklen_t *sslen);

/*
 * /ip4/A/tcp/P or /ip6/A/tcp/P (with /ip6zone/ for a scoped IPv6 address)
 * from an AF_INET or AF_INET6 sockaddr (borrowed).  IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d from dual-stack sockets) become ip4.
 * 0 or -EAFNOSUPPORT, AN_EMALFORMED if salen is short.
 */
int an_multiaddr_from_sockaddr(const struct sockaddr *sa, socklen_t salen,
			       struct an_multiaddr *out);

/* True if ma contains a component with this code. */
bool an_multiaddr_has(const struct an_multiaddr *ma, uint32_t code);

/* True for relayed addresses (a p2p-circuit component anywhere). */
bool an_multiaddr_is_circuit(const struct an_multiaddr *ma);

bool an_multiaddr_equal(const struct an_multiaddr *a, const struct an_multiaddr *b);

enum an_ma_scope {
	AN_MA_SCOPE_UNKNOWN = 0, /* no ip4/ip6 component (dns names, memory) */
	AN_MA_SCOPE_LOOPBACK,    /* 127.0.0.0/8, ::1 */
	AN_MA_SCOPE_PRIVATE,     /* not globally routable (see below) */
	AN_MA_SCOPE_PUBLIC
};

/*
 * Scope of the first ip4/ip6 component.  PRIVATE covers the IANA
 * special-purpose ranges that are not globally reachable: RFC 1918,
 * 100.64/10, link-local, 0/8, 192.0.0/24, the TEST-NETs, 198.18/15,
 * multicast and 240/4; for IPv6 ::, fc00::/7, fe80::/10, fec0::/10,
 * ff00::/8, 2001:db8::/32, 100::/64 and anything outside 2000::/3.
 * IPv4-mapped IPv6 is classified as its IPv4 address.  js-libp2p dials only
 * what it deems public; note that lab addresses in 198.18/15 or TEST-NET
 * count as private here, as in js's private-ip list.
 */
enum an_ma_scope an_multiaddr_scope(const struct an_multiaddr *ma);

#endif
