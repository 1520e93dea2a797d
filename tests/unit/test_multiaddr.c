/* Unit tests for libcommon/encoding/multiaddr. */
#include "check.h"

#include "crypto/peerid.h"
#include "encoding/multiaddr.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/un.h>

#define PEERID_HEX "0024080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e"
#define PEERID_B58 "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
#define PEERID_CID "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6"
/* sha2-256 multihash of the empty string: a peer ID in the RSA ("Qm") form. */
#define QM_B58 "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
/* certhash: sha2-256 multihash with digest 00..1f, in multibase 'u' and 'b'. */
#define CERT_U "uEiAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHw"
#define CERT_B "bciqaaaicamcakbqhbaequcymbuha6earcijrifiwc4mbsgq3dqor4hy"
#define CERT_HEX "1220000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

struct vec {
	const char *text, *hex;
};

/* Text (as we print it) and binary. */
static const struct vec vectors[] = {
	/* the digest's example */
	{ "/ip4/127.0.0.1/tcp/4001/p2p/" PEERID_B58, "047f000001060fa1a50326" PEERID_HEX },
	{ "/ip6/::1/tcp/4001", "2900000000000000000000000000000001060fa1" },
	{ "/ip4/1.2.3.4/udp/4001/quic-v1", "04010203049102" "0fa1" "cd03" },
	{ "/dns4/example.com/tcp/443/wss", "360b6578616d706c652e636f6d0601bbde03" },
	{ "/dns/a.b/tcp/1/tls/ws", "3503612e62060001c003dd03" },
	{ "/dns6/x/tcp/2/tls/sni/x/ws", "370178060002c003c1030178dd03" },
	{ "/dnsaddr/bootstrap.libp2p.io", "3813626f6f7473747261702e6c69627032702e696f" },
	{ "/ip6zone/eth0/ip6/fe80::1/tcp/80", "2a0465746830" "29fe800000000000000000000000000001" "060050" },
	{ "/ip4/1.2.3.4/udp/1/webrtc-direct/certhash/" CERT_U,
	  "040102030491020001" "9802" "d20322" CERT_HEX },
	{ "/ip4/1.2.3.4/udp/1/quic-v1/webtransport/certhash/" CERT_U,
	  "040102030491020001cd03d103d20322" CERT_HEX },
	{ "/ip4/1.2.3.4/tcp/1/p2p/" PEERID_B58 "/p2p-circuit/webrtc",
	  "0401020304060001a50326" PEERID_HEX "a2029902" },
	{ "/ip4/1.2.3.4/tcp/1/noise", "0401020304060001c603" },
	{ "/ip4/1.2.3.4/tcp/80/http", "0401020304060050e003" },
	{ "/ip4/1.2.3.4/tcp/443/https", "04010203040601bbbb03" },
	{ "/ip4/1.2.3.4/udp/1/quic", "040102030491020001cc03" },
	{ "/memory/test", "890604" "74657374" },
	{ "/p2p/" QM_B58, "a50322" "1220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
};

#define NVEC (sizeof vectors / sizeof vectors[0])

static void test_vectors_parse(void)
{
	for (size_t i = 0; i < NVEC; i++) {
		uint8_t want[AN_MULTIADDR_MAX];
		struct an_multiaddr ma;
		int n = check_unhex(vectors[i].hex, want, sizeof want);
		int rc = an_multiaddr_parse(vectors[i].text, &ma);
		CHECK_EQ_INT(rc, 0);
		if (rc == 0) {
			CHECK_EQ_INT(ma.len, n);
			CHECK_EQ_MEM(ma.bytes, want, (size_t)n);
		}
		if (rc || (int)ma.len != n)
			printf("#   vector %zu: %s\n", i, vectors[i].text);
	}
}

static void test_vectors_decode_and_format(void)
{
	for (size_t i = 0; i < NVEC; i++) {
		uint8_t in[AN_MULTIADDR_MAX];
		struct an_multiaddr ma;
		char text[AN_MULTIADDR_TEXT_MAX];
		int n = check_unhex(vectors[i].hex, in, sizeof in);
		CHECK_EQ_INT(an_multiaddr_from_bytes(in, (size_t)n, &ma), 0);
		CHECK_EQ_INT(an_multiaddr_format(&ma, text, sizeof text), 0);
		CHECK_EQ_STR(text, vectors[i].text);
	}
}

static void test_ipfs_alias_prints_p2p(void)
{
	struct an_multiaddr a, b;
	char text[AN_MULTIADDR_TEXT_MAX];
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001/ipfs/" PEERID_B58, &a), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001/p2p/" PEERID_B58, &b), 0);
	CHECK(an_multiaddr_equal(&a, &b));
	CHECK_EQ_INT(an_multiaddr_format(&a, text, sizeof text), 0);
	CHECK_EQ_STR(text, "/ip4/127.0.0.1/tcp/4001/p2p/" PEERID_B58);
}

static void test_p2p_cid_text_accepted(void)
{
	struct an_multiaddr a, b;
	CHECK_EQ_INT(an_multiaddr_parse("/p2p/" PEERID_CID, &a), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/p2p/" PEERID_B58, &b), 0);
	CHECK(an_multiaddr_equal(&a, &b));
}

static void test_certhash_other_multibases(void)
{
	struct an_multiaddr a, b, c;
	CHECK_EQ_INT(an_multiaddr_parse("/certhash/" CERT_U, &a), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/certhash/" CERT_B, &b), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/certhash/f" CERT_HEX, &c), 0);
	CHECK(an_multiaddr_equal(&a, &b));
	CHECK(an_multiaddr_equal(&a, &c));
}

static void test_trailing_slash_accepted(void)
{
	struct an_multiaddr a, b;
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/1.2.3.4/tcp/5/", &a), 0);
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/1.2.3.4/tcp/5", &b), 0);
	CHECK(an_multiaddr_equal(&a, &b));
}

static int parse_rc(const char *text)
{
	struct an_multiaddr ma;
	return an_multiaddr_parse(text, &ma);
}

static void test_parse_bad_structure(void)
{
	CHECK_EQ_INT(parse_rc(""), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("ip4/1.2.3.4"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("//ip4/1.2.3.4"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip4/1.2.3.4//tcp/1"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip4/1.2.3.4/tcp/1//"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/tcp"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip4/1.2.3.4/tcp/"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/dns4//tcp/1"), AN_EMALFORMED);
}

static void test_parse_unknown_protocol(void)
{
	CHECK_EQ_INT(parse_rc("/foo/1"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip4/1.2.3.4/unix/tmp"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/IP4/1.2.3.4"), AN_EMALFORMED);
}

static void test_parse_bad_ips(void)
{
	CHECK_EQ_INT(parse_rc("/ip4/256.0.0.1"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip4/1.2.3"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip4/1.2.3.4.5"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip4/::1"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip4/1.2.3.x"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip6/::g"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip6/1.2.3.4"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip6/1:2:3:4:5:6:7:8:9"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/ip6/0000:0000:0000:0000:0000:0000:0000:0000:0000"), AN_EMALFORMED);
}

static void test_parse_bad_ports(void)
{
	CHECK_EQ_INT(parse_rc("/tcp/65536"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/tcp/-1"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/tcp/+1"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/tcp/1a"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/tcp/123456"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/udp/99999"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/tcp/65535"), 0);
	CHECK_EQ_INT(parse_rc("/tcp/0"), 0);
}

static void test_parse_bad_peer_ids(void)
{
	CHECK_EQ_INT(parse_rc("/p2p/12D3KooW0"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/p2p/2g"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/p2p/" PEERID_B58 "x"), AN_EMALFORMED);
}

static void test_parse_bad_certhash(void)
{
	CHECK_EQ_INT(parse_rc("/certhash/x1234"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/certhash/u"), AN_EMALFORMED);
	CHECK_EQ_INT(parse_rc("/certhash/uEiA"), AN_EMALFORMED); /* digest cut short */
	CHECK_EQ_INT(parse_rc("/certhash/u!!!!"), AN_EMALFORMED);
}

static void test_parse_overlong(void)
{
	static char text[AN_MULTIADDR_TEXT_MAX + 16];
	size_t n = 0;
	/* 300 x "/ws" is 600 binary bytes, past AN_MULTIADDR_MAX */
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "/ws");
	CHECK_EQ_INT(parse_rc(text), AN_ETOOBIG);
	memset(text, 'a', sizeof text - 1);
	text[0] = '/';
	text[sizeof text - 1] = 0;
	CHECK_EQ_INT(parse_rc(text), AN_ETOOBIG);
	/* a 600-byte dns name */
	memcpy(text, "/dns/", 5);
	memset(text + 5, 'a', 600);
	text[605] = 0;
	CHECK_EQ_INT(parse_rc(text), AN_ETOOBIG);
}

static int decode_rc(const char *hex)
{
	uint8_t in[AN_MULTIADDR_MAX + 8];
	struct an_multiaddr ma;
	int n = check_unhex(hex, in, sizeof in);
	return an_multiaddr_from_bytes(in, (size_t)n, &ma);
}

static void test_decode_unknown_codes(void)
{
	CHECK_EQ_INT(decode_rc("11" "0fa1"), AN_EMALFORMED);       /* 17: old udp code */
	CHECK_EQ_INT(decode_rc("9003" "0474657374"), AN_EMALFORMED); /* 400: unix */
	CHECK_EQ_INT(decode_rc("0401020304" "bc03"), AN_EMALFORMED); /* 444: onion after ip4 */
	CHECK_EQ_INT(decode_rc("00"), AN_EMALFORMED);
}

static void test_decode_bad_structure(void)
{
	CHECK_EQ_INT(decode_rc(""), AN_EMALFORMED);
	CHECK_EQ_INT(decode_rc("047f0000"), AN_EMALFORMED);        /* ip4 cut short */
	CHECK_EQ_INT(decode_rc("060f"), AN_EMALFORMED);            /* tcp cut short */
	CHECK_EQ_INT(decode_rc("3605616263"), AN_EMALFORMED);      /* length past end */
	CHECK_EQ_INT(decode_rc("36"), AN_EMALFORMED);              /* no length */
	CHECK_EQ_INT(decode_rc("a5"), AN_EMALFORMED);              /* code cut short */
	CHECK_EQ_INT(decode_rc("8400" "7f000001"), AN_EMALFORMED); /* non-minimal code */
	CHECK_EQ_INT(decode_rc("368100"), AN_EMALFORMED);          /* non-minimal length */
}

static void test_decode_bad_values(void)
{
	CHECK_EQ_INT(decode_rc("3600"), AN_EMALFORMED);           /* empty dns4 */
	CHECK_EQ_INT(decode_rc("3603612f62"), AN_EMALFORMED);     /* "a/b" */
	CHECK_EQ_INT(decode_rc("3603610062"), AN_EMALFORMED);     /* NUL inside */
	CHECK_EQ_INT(decode_rc("a50303130100"), AN_EMALFORMED);   /* not a peer ID */
	CHECK_EQ_INT(decode_rc("a50300"), AN_EMALFORMED);         /* empty peer ID */
	CHECK_EQ_INT(decode_rc("d203031220aa"), AN_EMALFORMED);   /* certhash cut short */
}

static void test_decode_over_cap(void)
{
	uint8_t in[AN_MULTIADDR_MAX + 2];
	struct an_multiaddr ma;
	for (size_t i = 0; i < sizeof in; i += 2) {
		in[i] = 0xdd; /* ws */
		in[i + 1] = 0x03;
	}
	CHECK_EQ_INT(an_multiaddr_from_bytes(in, AN_MULTIADDR_MAX, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_from_bytes(in, sizeof in, &ma), AN_ETOOBIG);
}

static void test_format_longest(void)
{
	uint8_t in[AN_MULTIADDR_MAX];
	struct an_multiaddr ma;
	static char text[AN_MULTIADDR_TEXT_MAX];
	for (size_t i = 0; i < sizeof in; i += 2) {
		in[i] = 0x98; /* webrtc-direct: 2 bytes, 14 characters */
		in[i + 1] = 0x02;
	}
	CHECK_EQ_INT(an_multiaddr_from_bytes(in, sizeof in, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_format(&ma, text, sizeof text), 0);
	CHECK_EQ_INT(strlen(text), 256 * 14);
	CHECK_EQ_INT(an_multiaddr_format(&ma, text, 256 * 14), AN_ETOOBIG);
}

static void test_iterate_components(void)
{
	struct an_multiaddr ma;
	struct an_ma_iter it;
	struct an_ma_component c;
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001/p2p/" PEERID_B58, &ma), 0);
	an_ma_iter_init(&it, &ma);
	CHECK_EQ_INT(an_ma_next(&it, &c), 1);
	CHECK_EQ_INT(c.code, AN_MA_IP4);
	CHECK_EQ_INT(c.len, 4);
	CHECK_EQ_INT(c.value[0], 127);
	CHECK_EQ_INT(c.raw_len, 5);
	CHECK_EQ_INT(an_ma_next(&it, &c), 1);
	CHECK_EQ_INT(c.code, AN_MA_TCP);
	CHECK_EQ_INT(c.value[0] << 8 | c.value[1], 4001);
	CHECK_EQ_INT(an_ma_next(&it, &c), 1);
	CHECK_EQ_INT(c.code, AN_MA_P2P);
	CHECK_EQ_INT(c.len, 38);
	CHECK_EQ_INT(c.raw_len, 41);
	CHECK_EQ_INT(an_ma_next(&it, &c), 0);
	CHECK_EQ_STR(an_ma_proto_name(AN_MA_P2P), "p2p");
	CHECK(an_ma_proto_name(400) == NULL);
}

static void test_append_checks_values(void)
{
	struct an_multiaddr ma;
	const uint8_t ip[4] = { 1, 2, 3, 4 };
	an_multiaddr_init(&ma);
	CHECK_EQ_INT(an_multiaddr_append(&ma, AN_MA_IP4, ip, 3), AN_EMALFORMED);
	CHECK_EQ_INT(an_multiaddr_append(&ma, 400, ip, 4), AN_EMALFORMED);
	CHECK_EQ_INT(an_multiaddr_append(&ma, AN_MA_DNS4, (const uint8_t *)"a/b", 3), AN_EMALFORMED);
	CHECK_EQ_INT(ma.len, 0);
	CHECK_EQ_INT(an_multiaddr_append(&ma, AN_MA_IP4, ip, 4), 0);
	CHECK_EQ_INT(an_multiaddr_append(&ma, AN_MA_WS, NULL, 0), 0);
	CHECK_EQ_INT(ma.len, 7);
}

static void test_append_at_cap(void)
{
	struct an_multiaddr ma;
	an_multiaddr_init(&ma);
	for (int i = 0; i < AN_MULTIADDR_MAX / 2; i++)
		CHECK_EQ_INT(an_multiaddr_append(&ma, AN_MA_WS, NULL, 0), 0);
	CHECK_EQ_INT(an_multiaddr_append(&ma, AN_MA_WS, NULL, 0), AN_ETOOBIG);
	CHECK_EQ_INT(ma.len, AN_MULTIADDR_MAX);
}

static void test_split_and_append_p2p(void)
{
	struct an_multiaddr ma, rest, back;
	struct an_peerid id;
	char text[AN_MULTIADDR_TEXT_MAX];
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001/p2p/" PEERID_B58, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_split_p2p(&ma, &rest, &id), 0);
	CHECK_EQ_INT(an_multiaddr_format(&rest, text, sizeof text), 0);
	CHECK_EQ_STR(text, "/ip4/127.0.0.1/tcp/4001");
	CHECK_EQ_INT(id.len, 38);
	back = rest;
	CHECK_EQ_INT(an_multiaddr_append_p2p(&back, &id), 0);
	CHECK(an_multiaddr_equal(&back, &ma));
	/* in place */
	CHECK_EQ_INT(an_multiaddr_split_p2p(&ma, &ma, &id), 0);
	CHECK(an_multiaddr_equal(&ma, &rest));
}

static void test_split_without_p2p(void)
{
	struct an_multiaddr ma, rest;
	struct an_peerid id;
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001", &ma), 0);
	CHECK_EQ_INT(an_multiaddr_split_p2p(&ma, &rest, &id), AN_ENOTFOUND);
	CHECK(an_multiaddr_equal(&ma, &rest));
	/* a p2p that is not last is not a trailing one */
	CHECK_EQ_INT(an_multiaddr_parse("/p2p/" PEERID_B58 "/p2p-circuit", &ma), 0);
	CHECK_EQ_INT(an_multiaddr_split_p2p(&ma, &rest, &id), AN_ENOTFOUND);
}

static void test_relay_address(void)
{
	struct an_multiaddr ma, rest;
	struct an_peerid target;
	char text[AN_MULTIADDR_TEXT_MAX];
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/1.2.3.4/tcp/4001/p2p/" QM_B58 "/p2p-circuit/p2p/"
					PEERID_B58, &ma), 0);
	CHECK(an_multiaddr_is_circuit(&ma));
	CHECK_EQ_INT(an_multiaddr_split_p2p(&ma, &rest, &target), 0);
	CHECK_EQ_INT(an_multiaddr_format(&rest, text, sizeof text), 0);
	CHECK_EQ_STR(text, "/ip4/1.2.3.4/tcp/4001/p2p/" QM_B58 "/p2p-circuit");
	CHECK_EQ_INT(an_peerid_format(&target, text, sizeof text), 0);
	CHECK_EQ_STR(text, PEERID_B58);
	CHECK(an_multiaddr_is_circuit(&rest));
}

static void test_not_circuit(void)
{
	struct an_multiaddr ma;
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/1.2.3.4/tcp/4001/p2p/" PEERID_B58, &ma), 0);
	CHECK(!an_multiaddr_is_circuit(&ma));
	CHECK(an_multiaddr_has(&ma, AN_MA_TCP));
	CHECK(!an_multiaddr_has(&ma, AN_MA_UDP));
}

static void test_to_sockaddr_ip4(void)
{
	struct an_multiaddr ma;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	CHECK_EQ_INT(an_multiaddr_parse("/ip4/127.0.0.1/tcp/4001/p2p/" PEERID_B58, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_to_sockaddr(&ma, &ss, &len), 0);
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	CHECK_EQ_INT(len, sizeof *sin);
	CHECK_EQ_INT(sin->sin_family, AF_INET);
	CHECK_EQ_INT(ntohs(sin->sin_port), 4001);
	CHECK(sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
}

static void test_to_sockaddr_ip6(void)
{
	struct an_multiaddr ma;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	CHECK_EQ_INT(an_multiaddr_parse("/ip6/::1/tcp/80", &ma), 0);
	CHECK_EQ_INT(an_multiaddr_to_sockaddr(&ma, &ss, &len), 0);
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
	CHECK_EQ_INT(len, sizeof *sin6);
	CHECK_EQ_INT(sin6->sin6_family, AF_INET6);
	CHECK_EQ_INT(ntohs(sin6->sin6_port), 80);
	CHECK(memcmp(&sin6->sin6_addr, &in6addr_loopback, 16) == 0);
	CHECK_EQ_INT(sin6->sin6_scope_id, 0);
}

static void test_to_sockaddr_zone(void)
{
	struct an_multiaddr ma;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	unsigned lo = if_nametoindex("lo");
	CHECK(lo != 0);
	CHECK_EQ_INT(an_multiaddr_parse("/ip6zone/lo/ip6/fe80::1/tcp/80/p2p/" PEERID_B58, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_to_sockaddr(&ma, &ss, &len), 0);
	CHECK_EQ_INT(((const struct sockaddr_in6 *)&ss)->sin6_scope_id, lo);
	CHECK_EQ_INT(an_multiaddr_parse("/ip6zone/no-such-if0/ip6/fe80::1/tcp/80", &ma), 0);
	CHECK_EQ_INT(an_multiaddr_to_sockaddr(&ma, &ss, &len), -ENODEV);
}

static void test_to_sockaddr_not_tcp(void)
{
	static const char *const texts[] = {
		"/dns4/example.com/tcp/80",
		"/ip4/1.2.3.4/udp/80",
		"/ip4/1.2.3.4/tcp/80/ws",
		"/ip4/1.2.3.4",
		"/tcp/80",
		"/ip4/1.2.3.4/tcp/1/p2p/" PEERID_B58 "/p2p-circuit/p2p/" PEERID_B58,
		"/ip6zone/lo/ip4/1.2.3.4/tcp/1",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct an_multiaddr ma;
		struct sockaddr_storage ss;
		socklen_t len;
		CHECK_EQ_INT(an_multiaddr_parse(texts[i], &ma), 0);
		CHECK_EQ_INT(an_multiaddr_to_sockaddr(&ma, &ss, &len), AN_ENOPROTO);
	}
}

static void test_from_sockaddr(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(4001) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct an_multiaddr ma;
	char text[AN_MULTIADDR_TEXT_MAX];
	inet_pton(AF_INET, "10.0.0.7", &sin.sin_addr);
	CHECK_EQ_INT(an_multiaddr_from_sockaddr((struct sockaddr *)&sin, sizeof sin, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_format(&ma, text, sizeof text), 0);
	CHECK_EQ_STR(text, "/ip4/10.0.0.7/tcp/4001");
	inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr);
	CHECK_EQ_INT(an_multiaddr_from_sockaddr((struct sockaddr *)&sin6, sizeof sin6, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_format(&ma, text, sizeof text), 0);
	CHECK_EQ_STR(text, "/ip6/2001:db8::5/tcp/443");
}

static void test_from_sockaddr_v4mapped(void)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(1) };
	struct an_multiaddr ma;
	char text[AN_MULTIADDR_TEXT_MAX];
	inet_pton(AF_INET6, "::ffff:192.0.2.1", &sin6.sin6_addr);
	CHECK_EQ_INT(an_multiaddr_from_sockaddr((struct sockaddr *)&sin6, sizeof sin6, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_format(&ma, text, sizeof text), 0);
	CHECK_EQ_STR(text, "/ip4/192.0.2.1/tcp/1");
}

static void test_from_sockaddr_zone_roundtrip(void)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(9) };
	struct sockaddr_storage ss;
	socklen_t len;
	struct an_multiaddr ma;
	char text[AN_MULTIADDR_TEXT_MAX];
	inet_pton(AF_INET6, "fe80::2", &sin6.sin6_addr);
	sin6.sin6_scope_id = if_nametoindex("lo");
	CHECK_EQ_INT(an_multiaddr_from_sockaddr((struct sockaddr *)&sin6, sizeof sin6, &ma), 0);
	CHECK_EQ_INT(an_multiaddr_format(&ma, text, sizeof text), 0);
	CHECK_EQ_STR(text, "/ip6zone/lo/ip6/fe80::2/tcp/9");
	CHECK_EQ_INT(an_multiaddr_to_sockaddr(&ma, &ss, &len), 0);
	CHECK(memcmp(&ss, &sin6, sizeof sin6) == 0);
}

static void test_from_sockaddr_errors(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct an_multiaddr ma;
	CHECK_EQ_INT(an_multiaddr_from_sockaddr((struct sockaddr *)&sun, sizeof sun, &ma),
		     -EAFNOSUPPORT);
	CHECK_EQ_INT(an_multiaddr_from_sockaddr((struct sockaddr *)&sin, 4, &ma), AN_EMALFORMED);
}

static enum an_ma_scope scope_of(const char *text)
{
	struct an_multiaddr ma;
	if (an_multiaddr_parse(text, &ma) < 0)
		return (enum an_ma_scope)-1;
	return an_multiaddr_scope(&ma);
}

static void test_scope_loopback(void)
{
	CHECK_EQ_INT(scope_of("/ip4/127.0.0.1/tcp/1"), AN_MA_SCOPE_LOOPBACK);
	CHECK_EQ_INT(scope_of("/ip4/127.255.0.9"), AN_MA_SCOPE_LOOPBACK);
	CHECK_EQ_INT(scope_of("/ip6/::1/tcp/1"), AN_MA_SCOPE_LOOPBACK);
	CHECK_EQ_INT(scope_of("/ip6/::ffff:127.0.0.1"), AN_MA_SCOPE_LOOPBACK);
}

static void test_scope_private(void)
{
	static const char *const texts[] = {
		"/ip4/10.1.2.3", "/ip4/172.16.0.1", "/ip4/172.31.255.255", "/ip4/192.168.1.1",
		"/ip4/100.64.0.1", "/ip4/169.254.1.1", "/ip4/0.0.0.0", "/ip4/198.18.0.1",
		"/ip4/198.19.255.1", "/ip4/192.0.2.1", "/ip4/203.0.113.9", "/ip4/224.0.0.1",
		"/ip4/255.255.255.255", "/ip6/::", "/ip6/fe80::1", "/ip6/fd00::1", "/ip6/ff02::1",
		"/ip6/2001:db8::1", "/ip6/::ffff:10.0.0.1",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		CHECK_EQ_INT(scope_of(texts[i]), AN_MA_SCOPE_PRIVATE);
		if (scope_of(texts[i]) != AN_MA_SCOPE_PRIVATE)
			printf("#   %s\n", texts[i]);
	}
}

static void test_scope_public(void)
{
	static const char *const texts[] = {
		"/ip4/8.8.8.8/tcp/1", "/ip4/172.32.0.1", "/ip4/172.15.255.255", "/ip4/100.128.0.1",
		"/ip4/198.20.0.1", "/ip4/1.1.1.1", "/ip6/2606:4700::1111", "/ip6/::ffff:8.8.8.8",
		"/ip4/139.178.91.71/tcp/4001/p2p/" PEERID_B58 "/p2p-circuit",
	};
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		CHECK_EQ_INT(scope_of(texts[i]), AN_MA_SCOPE_PUBLIC);
		if (scope_of(texts[i]) != AN_MA_SCOPE_PUBLIC)
			printf("#   %s\n", texts[i]);
	}
}

static void test_scope_unknown_without_ip(void)
{
	CHECK_EQ_INT(scope_of("/dns4/example.com/tcp/1"), AN_MA_SCOPE_UNKNOWN);
	CHECK_EQ_INT(scope_of("/memory/x"), AN_MA_SCOPE_UNKNOWN);
}

int main(void)
{
	RUN(test_vectors_parse);
	RUN(test_vectors_decode_and_format);
	RUN(test_ipfs_alias_prints_p2p);
	RUN(test_p2p_cid_text_accepted);
	RUN(test_certhash_other_multibases);
	RUN(test_trailing_slash_accepted);
	RUN(test_parse_bad_structure);
	RUN(test_parse_unknown_protocol);
	RUN(test_parse_bad_ips);
	RUN(test_parse_bad_ports);
	RUN(test_parse_bad_peer_ids);
	RUN(test_parse_bad_certhash);
	RUN(test_parse_overlong);
	RUN(test_decode_unknown_codes);
	RUN(test_decode_bad_structure);
	RUN(test_decode_bad_values);
	RUN(test_decode_over_cap);
	RUN(test_format_longest);
	RUN(test_iterate_components);
	RUN(test_append_checks_values);
	RUN(test_append_at_cap);
	RUN(test_split_and_append_p2p);
	RUN(test_split_without_p2p);
	RUN(test_relay_address);
	RUN(test_not_circuit);
	RUN(test_to_sockaddr_ip4);
	RUN(test_to_sockaddr_ip6);
	RUN(test_to_sockaddr_zone);
	RUN(test_to_sockaddr_not_tcp);
	RUN(test_from_sockaddr);
	RUN(test_from_sockaddr_v4mapped);
	RUN(test_from_sockaddr_zone_roundtrip);
	RUN(test_from_sockaddr_errors);
	RUN(test_scope_loopback);
	RUN(test_scope_private);
	RUN(test_scope_public);
	RUN(test_scope_unknown_without_ip);
	return check_done();
}
