/*
 * an-hostile: a libp2p peer that misbehaves on purpose, for the hostile
 * live peer tests (tests/bats/hostile-live.bats) and tools/soak.
 *
 * It dials the victim with a real Noise + yamux session (a circuit address
 * RELAY/p2p/R/p2p-circuit/p2p/T goes through the relay, for DCUtR, which
 * only runs on relayed connections), opens one or more streams of the
 * scenario's protocol, sends one chosen misbehaviour and watches what the
 * victim does to the stream and to the connection until the stream ends
 * or --timeout passes.  Then one JSON line:
 *
 *   {"scenario","protocol","streams","sent","received","stream":
 *    "reset|closed|eof|open|refused|lost|failed","status","connection":
 *    "open|closed","pingAfter","ms"}
 *
 * "stream" is the first stream's fate: reset by the victim, closed (the
 * victim finished its side, we then finished ours), open at the deadline,
 * refused (multistream-select "na"), lost (the connection went), failed
 * (anything else).  "status" is what the victim answered, decoded where the
 * protocol has one: a relay status number, the HTTP status of a route
 * response, "message" for a kad or DCUtR reply.  For several streams
 * (--count) "outcomes" counts every fate.  flood-tcp is raw TCP instead:
 * --count sockets that connect and then say nothing (or half a multistream
 * header), held to the deadline.
 *
 * Exit 0 when the scenario ran (whatever the victim did), 2 usage, 4 when
 * the victim could not be reached at all.  Every wait has a deadline.
 */
#include "cli.h"

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "encoding/protobuf.h"
#include "encoding/varint.h"
#include "record/record.h"
#include "relay/circuit.h"
#include "relay/dcutr.h"
#include "relay/relay_dial.h"
#include "route/client.h"
#include "route/route.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/buf.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROTO_KAD "/an/kad/1.0.0"
#define PROTO_HOP "/libp2p/circuit/relay/0.2.0/hop"
#define PROTO_STOP "/libp2p/circuit/relay/0.2.0/stop"
#define PROTO_ROUTE "/an/route/1.0.0"
#define MAX_STREAMS 1024
#define MAX_FLOOD 1024
#define PAYLOAD_MAX (8u << 20) /* the fixed part of a payload */
#define KEEP_MAX 4096          /* received bytes kept to decode the answer */
#define CHUNK (64 * 1024)

static const char USAGE[] =
	"Usage: an-hostile --dial MULTIADDR --scenario NAME [options]\n"
	"\n"
	"Connect to MULTIADDR/p2p/ID (or a relay circuit address) and misbehave\n"
	"once; print one JSON line with what the victim did to the stream and\n"
	"the connection.\n"
	"\n"
	"Options:\n"
	"  --dial MULTIADDR     the victim (with /p2p/ID)\n"
	"  --scenario NAME      the misbehaviour (below)\n"
	"  --source IP          dial from IP (listen there; dials bind the listen port)\n"
	"  --timeout SECS       watch the victim this long (default 12)\n"
	"  --count N            streams (bulk scenarios) or sockets (flood-tcp)\n"
	"  --host FQDN          route scenarios: the site's name\n"
	"  --protocol ID        override the scenario's protocol (e.g. /ipfs/kad/1.0.0)\n"
	"  --target PEERID      hop-connect-hold: the peer to open circuits to\n"
	"  --key FILE           our identity (default: ephemeral)\n"
	"  --help               this text\n"
	"\n"
	"Scenarios:\n"
	"  kad-len-overlong     a 10-byte varint length prefix (2^63)\n"
	"  kad-len-huge         length prefix 2^63-1\n"
	"  kad-len-over-cap     length prefix one byte over the 4 MiB cap, then 64 KiB\n"
	"  kad-truncated        half a message, then silence\n"
	"  kad-wire-types       type as a byte string, key as a varint\n"
	"  kad-dup-fields       FIND_NODE with type and key each twice\n"
	"  kad-nested-lie       PUT_VALUE whose record's length runs past the message\n"
	"  kad-bad-type         message type 99\n"
	"  kad-pipeline         2000 FIND_NODE requests in one write, replies unread\n"
	"  kad-mem              --count streams (default 64) each 4 MiB of one request, held\n"
	"  id-push-addrs        identify push with 10000 listen addresses\n"
	"  id-push-bigkey       identify push with a 1 MB public key\n"
	"  id-push-other-key    identify push carrying another peer's key\n"
	"  id-push-truncated    half an identify push, then FIN\n"
	"  id-junk              1 MB of junk on an identify request stream\n"
	"  id-reply-addrs       answer the victim's identify with 10000 listen addresses\n"
	"  id-reply-bigkey      answer the victim's identify with a 1 MB public key\n"
	"  id-reply-other-key   answer the victim's identify with another peer's key\n"
	"  id-reply-silent      never answer the victim's identify\n"
	"  hop-connect-first    relay CONNECT before any RESERVE\n"
	"  hop-status-first     relay STATUS as the first message\n"
	"  hop-malformed        relay message with a broken protobuf\n"
	"  hop-over-cap         relay length prefix over 4096\n"
	"  hop-truncated        half a relay message, then silence\n"
	"  hop-connect-hold     --count (default 4) circuits to --target, held silent\n"
	"  stop-unsolicited     STOP CONNECT from a peer that is not our relay\n"
	"  dcutr-sync-first     DCUtR SYNC before CONNECT\n"
	"  dcutr-connect-1000   DCUtR CONNECT with 1000 addresses\n"
	"  dcutr-over-cap       DCUtR length prefix over 4096\n"
	"  route-long-header    route request with a 1 MB header line\n"
	"  route-body-over      a body longer than its Content-Length\n"
	"  route-pipelined      a whole request, then junk after it\n"
	"  route-slow-head      a route line, then silence\n"
	"  route-junk           binary junk instead of a route line\n"
	"  streams-abandon      --count (default 300) kad streams opened, never written\n"
	"  flood-tcp            --count (default 200) raw TCP sockets that never handshake\n";

struct scenario {
	const char *name;
	const char *proto;
	int (*build)(struct an_buf *pre, size_t *filler, uint8_t *fill, struct an_buf *post);
	bool fin;       /* FIN after the payload */
	int streams;    /* default stream count */
	bool pause;     /* do not read replies */
	bool reply;     /* answer the victim's identify request instead of opening a stream */
};

static struct {
	const char *dial, *scenario, *source, *host, *protocol, *key, *target;
	double timeout;
	long count;
} O;

static struct ev_loop *loop;
static struct an_host *host;
static struct an_host_conn *conn;
static const struct scenario *sc;
static ev_timer deadline_timer, hard_timer;
static double t0;
static int exit_status;
static bool reported, finishing;

/* What one stream did. */
enum fate { F_PENDING, F_RESET, F_CLOSED, F_OPEN, F_REFUSED, F_LOST, F_FAILED, F_NFATES };
static const char *const fate_name[] = {"pending", "reset", "closed", "open", "refused", "lost", "failed"};

struct hstream {
	struct an_stream *s;
	size_t pre_off, post_off;
	uint64_t filler_left;
	uint64_t sent, recv;
	bool done_writing, eof, we_reset, finished, opened;
	enum fate fate;
};

static struct hstream hs[MAX_STREAMS];
static int n_streams, n_finished, n_settled;
static struct an_buf pre, post;
static size_t filler;
static uint8_t fill_byte;
static struct an_buf keep; /* the first stream's answer, capped */
static struct an_privkey *other_key;
static bool built;

/* ------------------------------------------------------------ payloads */

static int put_raw_varint(struct an_buf *b, uint64_t v)
{
	uint8_t tmp[10];
	return an_buf_append(b, tmp, an_varint_encode(v, tmp));
}

/* LP-frame the protobuf in body onto out. */
static int frame(struct an_buf *out, struct an_buf *body)
{
	int rc = an_lp_put(out, body->data, body->len);
	an_buf_free(body);
	return rc;
}

static int b_kad_len_overlong(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	/* 2^63: nine continuation bytes then 0x01, one byte longer than the 9 allowed */
	static const uint8_t v[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x08, 0x04};
	return an_buf_append(p, v, sizeof(v));
}

static int b_kad_len_huge(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)q;
	int rc = put_raw_varint(p, (UINT64_C(1) << 63) - 1);
	*f = 4096, *fb = 0;
	return rc;
}

static int b_kad_len_over_cap(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)q;
	int rc = put_raw_varint(p, (4u << 20) + 1);
	*f = CHUNK, *fb = 0;
	return rc;
}

static int b_kad_truncated(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_buf m;
	an_buf_init(&m, 256);
	int rc = an_pb_put_varint(&m, 1, 4);
	if (rc == 0)
		rc = an_pb_put_bytes(&m, 2, "0123456789abcdef0123456789abcdef", 32);
	if (rc == 0)
		rc = put_raw_varint(p, m.len);
	if (rc == 0)
		rc = an_buf_append(p, m.data, m.len / 2);
	an_buf_free(&m);
	return rc;
}

static int b_kad_wire_types(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_buf m;
	an_buf_init(&m, 256);
	int rc = an_pb_put_bytes(&m, 1, "\x04", 1); /* type: LEN instead of varint */
	if (rc == 0)
		rc = an_pb_put_varint(&m, 2, 12345); /* key: varint instead of bytes */
	return rc ? rc : frame(p, &m);
}

static int b_kad_dup_fields(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_buf m;
	an_buf_init(&m, 256);
	int rc = an_pb_put_varint(&m, 1, 4);
	if (rc == 0)
		rc = an_pb_put_bytes(&m, 2, "first-key", 9);
	if (rc == 0)
		rc = an_pb_put_varint(&m, 1, 1); /* GET_VALUE now */
	if (rc == 0)
		rc = an_pb_put_bytes(&m, 2, "/an/second-key", 14);
	if (rc == 0)
		rc = an_pb_put_varint(&m, 1, 4); /* and FIND_NODE again */
	return rc ? rc : frame(p, &m);
}

static int b_kad_nested_lie(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	/* PUT_VALUE, key, then record (field 3) announcing 200 bytes holding 6:
	 * the record's own key field claims 100 bytes inside it */
	static const uint8_t rec[] = {0x1a, 0xc8, 0x01, 0x0a, 0x64, 'a', 'b', 'c', 'd'};
	struct an_buf m;
	an_buf_init(&m, 256);
	int rc = an_pb_put_varint(&m, 1, 0);
	if (rc == 0)
		rc = an_pb_put_bytes(&m, 2, "/an/x", 5);
	if (rc == 0)
		rc = an_buf_append(&m, rec, sizeof(rec));
	return rc ? rc : frame(p, &m);
}

static int b_kad_bad_type(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_buf m;
	an_buf_init(&m, 256);
	int rc = an_pb_put_varint(&m, 1, 99);
	if (rc == 0)
		rc = an_pb_put_bytes(&m, 2, "key", 3);
	return rc ? rc : frame(p, &m);
}

static int b_kad_pipeline(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	uint8_t target[32];
	int rc = 0;
	for (int i = 0; i < 2000 && rc == 0; i++) {
		struct an_buf m;
		an_buf_init(&m, 256);
		randombytes_buf(target, sizeof(target));
		rc = an_pb_put_varint(&m, 1, 4);
		if (rc == 0)
			rc = an_pb_put_bytes(&m, 2, target, sizeof(target));
		rc = rc ? rc : frame(p, &m);
	}
	return rc;
}

/* One request the size of the cap, never finished: the victim buffers it. */
static int b_kad_mem(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)q;
	int rc = put_raw_varint(p, 4u << 20);
	*f = (4u << 20) - 1, *fb = 0;
	return rc;
}

/* An identify message with the fields given; addrs copies of one address. */
static int identify_msg(struct an_buf *out, const uint8_t *key, size_t key_len, int n_addrs)
{
	static const uint8_t addr[] = {0x04, 198, 18, 0, 1, 0x06, 0x0f, 0xa1}; /* /ip4/198.18.0.1/tcp/4001 */
	struct an_buf m;
	int rc = 0;
	an_buf_init(&m, 2u << 20);
	if (key)
		rc = an_pb_put_bytes(&m, 1, key, key_len);
	for (int i = 0; i < n_addrs && rc == 0; i++)
		rc = an_pb_put_bytes(&m, 2, addr, sizeof(addr));
	if (rc == 0)
		rc = an_pb_put_string(&m, 3, PROTO_KAD);
	if (rc == 0)
		rc = an_pb_put_string(&m, 6, "an-hostile");
	return rc ? (an_buf_free(&m), rc) : frame(out, &m);
}

static int b_id_push_addrs(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	return identify_msg(p, NULL, 0, 10000);
}

static int b_id_push_bigkey(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	size_t n = 1000 * 1000;
	uint8_t *k = calloc(1, n);
	if (!k)
		return -ENOMEM;
	k[0] = 0x08, k[1] = 0x01, k[2] = 0x12; /* PublicKey{type Ed25519, data ...} */
	int rc = identify_msg(p, k, n, 1);
	free(k);
	return rc;
}

static int b_id_push_other_key(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_pubkey pk;
	struct an_buf enc;
	int rc = an_privkey_generate(&other_key);
	if (rc < 0)
		return rc;
	an_privkey_public(other_key, &pk);
	an_buf_init(&enc, 1024);
	rc = an_pubkey_encode(&pk, &enc);
	if (rc == 0)
		rc = identify_msg(p, enc.data, enc.len, 2);
	an_buf_free(&enc);
	return rc;
}

static int b_id_push_truncated(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_buf m;
	an_buf_init(&m, 4096);
	int rc = identify_msg(&m, NULL, 0, 4);
	if (rc == 0)
		rc = an_buf_append(p, m.data, m.len / 2);
	an_buf_free(&m);
	return rc;
}

static int b_id_junk(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)p, (void)q;
	*f = 1000 * 1000, *fb = 0xff;
	return 0;
}

static int relay_msg(struct an_buf *out, enum an_relay_kind kind, int type, bool peer)
{
	struct an_relay_msg m;
	struct an_privkey *k = NULL;
	struct an_pubkey pk;
	int rc = 0;
	an_relay_msg_init(&m, kind, type);
	if (peer) { /* some peer nobody reserved for */
		rc = an_privkey_generate(&k);
		if (rc == 0) {
			an_privkey_public(k, &pk);
			rc = an_peerid_from_pubkey(&pk, &m.peer.id);
		}
		m.peer.present = m.peer.has_id = true;
	}
	if (kind == AN_RELAY_HOP && type == AN_HOP_STATUS)
		m.has_status = true, m.status = AN_RELAY_OK;
	if (rc == 0)
		rc = an_relay_msg_encode(&m, out);
	an_privkey_free(k);
	return rc;
}

static int b_hop_connect_first(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	return relay_msg(p, AN_RELAY_HOP, AN_HOP_CONNECT, true);
}

static int b_hop_status_first(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	return relay_msg(p, AN_RELAY_HOP, AN_HOP_STATUS, false);
}

static int b_hop_malformed(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	/* type CONNECT, then a peer (field 2) whose length runs past the end */
	static const uint8_t m[] = {0x07, 0x08, 0x01, 0x12, 0x7f, 0x0a, 0x02, 0x00};
	return an_buf_append(p, m, sizeof(m));
}

static int b_over_4096(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)q;
	int rc = put_raw_varint(p, 4097);
	*f = 4097, *fb = 0x08;
	return rc;
}

static int b_hop_truncated(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_buf m;
	an_buf_init(&m, 4096);
	int rc = relay_msg(&m, AN_RELAY_HOP, AN_HOP_CONNECT, true);
	if (rc == 0)
		rc = an_buf_append(p, m.data, m.len / 2);
	an_buf_free(&m);
	return rc;
}

/* A real CONNECT to --target: the circuit is set up, then we say nothing. */
static int b_hop_connect_hold(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_relay_msg m;
	an_relay_msg_init(&m, AN_RELAY_HOP, AN_HOP_CONNECT);
	m.peer.present = m.peer.has_id = true;
	if (!O.target || an_peerid_parse(O.target, &m.peer.id) < 0)
		return AN_EMALFORMED;
	return an_relay_msg_encode(&m, p);
}

static int b_stop_unsolicited(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	return relay_msg(p, AN_RELAY_STOP, AN_STOP_CONNECT, true);
}

static int b_dcutr_sync_first(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_dcutr_msg m;
	an_dcutr_msg_init(&m, AN_DCUTR_SYNC);
	return an_dcutr_msg_encode(&m, p);
}

static int b_dcutr_connect_1000(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	/* the codec stops at 16 addresses: write the protobuf by hand */
	struct an_buf m;
	uint8_t addr[] = {0x04, 127, 0, 0, 3, 0x06, 0, 0};
	int rc;
	an_buf_init(&m, 64 * 1024);
	rc = an_pb_put_varint(&m, 1, AN_DCUTR_CONNECT);
	for (int i = 0; i < 1000 && rc == 0; i++) {
		addr[6] = (uint8_t)(1 + i / 256), addr[7] = (uint8_t)i;
		rc = an_pb_put_bytes(&m, 2, addr, sizeof(addr));
	}
	return rc ? (an_buf_free(&m), rc) : frame(p, &m);
}

/* The route line and head of a request to --host on the dialed peer. */
static int route_head(struct an_buf *out, const char *method, enum an_route_framing framing,
		      uint64_t length)
{
	char ph[AN_PEERHASH_LEN + 1];
	int rc = an_peerhash(an_host_conn_peer(conn), ph);
	if (rc < 0)
		return rc;
	return an_route_client_head(out, ph, O.host ? O.host : "example.test", method, "/", NULL, 0,
				    framing, length);
}

static int b_route_long_header(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	char ph[AN_PEERHASH_LEN + 1], did[AN_RECORD_DID_MAX], lookup[300];
	int rc = an_peerhash(an_host_conn_peer(conn), ph);
	snprintf(lookup, sizeof(lookup), "an://%s@%s", ph, O.host ? O.host : "example.test");
	if (rc == 0)
		rc = an_record_did(lookup, did);
	if (rc < 0)
		return rc;
	char line[600];
	int n = snprintf(line, sizeof(line), "AN-ROUTE/1.0 %s %s\r\nGET / HTTP/1.1\r\nHost: %s\r\nX-Big: ",
			 did, O.host ? O.host : "example.test", O.host ? O.host : "example.test");
	rc = an_buf_append(p, line, (size_t)n);
	*f = 1000 * 1000, *fb = 'a';
	return rc ? rc : an_buf_append(q, "\r\n\r\n", 4);
}

static int b_route_body_over(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)q;
	int rc = route_head(p, "POST", AN_ROUTE_BODY_LENGTH, 5);
	*f = 4096, *fb = 'b';
	return rc;
}

static int b_route_pipelined(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	int rc = route_head(p, "GET", AN_ROUTE_BODY_NONE, 0);
	if (rc == 0)
		rc = route_head(p, "GET", AN_ROUTE_BODY_NONE, 0);
	return rc ? rc : an_buf_append(p, "\x00\x01junk\r\n\r\n", 10);
}

static int b_route_slow_head(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)f, (void)fb, (void)q;
	struct an_buf h;
	an_buf_init(&h, 32 * 1024);
	int rc = route_head(&h, "GET", AN_ROUTE_BODY_NONE, 0);
	if (rc == 0) { /* the route line only */
		const uint8_t *nl = memchr(h.data, '\n', h.len);
		rc = nl ? an_buf_append(p, h.data, (size_t)(nl - h.data) + 1) : AN_EMALFORMED;
	}
	an_buf_free(&h);
	return rc;
}

static int b_route_junk(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)q;
	int rc = an_buf_append(p, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
	*f = 20000, *fb = 0;
	return rc;
}

static int b_nothing(struct an_buf *p, size_t *f, uint8_t *fb, struct an_buf *q)
{
	(void)p, (void)f, (void)fb, (void)q;
	return 0;
}

static const struct scenario scenarios[] = {
	{"kad-len-overlong", PROTO_KAD, b_kad_len_overlong, false, 1, false, false},
	{"kad-len-huge", PROTO_KAD, b_kad_len_huge, false, 1, false, false},
	{"kad-len-over-cap", PROTO_KAD, b_kad_len_over_cap, false, 1, false, false},
	{"kad-truncated", PROTO_KAD, b_kad_truncated, false, 1, false, false},
	{"kad-wire-types", PROTO_KAD, b_kad_wire_types, false, 1, false, false},
	{"kad-dup-fields", PROTO_KAD, b_kad_dup_fields, true, 1, false, false},
	{"kad-nested-lie", PROTO_KAD, b_kad_nested_lie, false, 1, false, false},
	{"kad-bad-type", PROTO_KAD, b_kad_bad_type, false, 1, false, false},
	{"kad-pipeline", PROTO_KAD, b_kad_pipeline, false, 1, true, false},
	{"kad-mem", PROTO_KAD, b_kad_mem, false, 64, false, false},
	{"id-push-addrs", AN_IDENTIFY_PUSH_PROTOCOL, b_id_push_addrs, true, 1, false, false},
	{"id-push-bigkey", AN_IDENTIFY_PUSH_PROTOCOL, b_id_push_bigkey, true, 1, false, false},
	{"id-push-other-key", AN_IDENTIFY_PUSH_PROTOCOL, b_id_push_other_key, true, 1, false, false},
	{"id-push-truncated", AN_IDENTIFY_PUSH_PROTOCOL, b_id_push_truncated, true, 1, false, false},
	{"id-junk", AN_IDENTIFY_PROTOCOL, b_id_junk, false, 1, false, false},
	{"hop-connect-first", PROTO_HOP, b_hop_connect_first, false, 1, false, false},
	{"hop-status-first", PROTO_HOP, b_hop_status_first, false, 1, false, false},
	{"hop-malformed", PROTO_HOP, b_hop_malformed, false, 1, false, false},
	{"hop-over-cap", PROTO_HOP, b_over_4096, false, 1, false, false},
	{"hop-truncated", PROTO_HOP, b_hop_truncated, false, 1, false, false},
	{"hop-connect-hold", PROTO_HOP, b_hop_connect_hold, false, 4, false, false},
	{"stop-unsolicited", PROTO_STOP, b_stop_unsolicited, false, 1, false, false},
	{"dcutr-sync-first", AN_DCUTR_PROTOCOL, b_dcutr_sync_first, false, 1, false, false},
	{"dcutr-connect-1000", AN_DCUTR_PROTOCOL, b_dcutr_connect_1000, false, 1, false, false},
	{"dcutr-over-cap", AN_DCUTR_PROTOCOL, b_over_4096, false, 1, false, false},
	{"route-long-header", PROTO_ROUTE, b_route_long_header, false, 1, false, false},
	{"route-body-over", PROTO_ROUTE, b_route_body_over, false, 1, false, false},
	{"route-pipelined", PROTO_ROUTE, b_route_pipelined, false, 1, false, false},
	{"route-slow-head", PROTO_ROUTE, b_route_slow_head, false, 1, false, false},
	{"route-junk", PROTO_ROUTE, b_route_junk, false, 1, false, false},
	{"id-reply-addrs", AN_IDENTIFY_PROTOCOL, b_id_push_addrs, true, 1, false, true},
	{"id-reply-bigkey", AN_IDENTIFY_PROTOCOL, b_id_push_bigkey, true, 1, false, true},
	{"id-reply-other-key", AN_IDENTIFY_PROTOCOL, b_id_push_other_key, true, 1, false, true},
	{"id-reply-silent", AN_IDENTIFY_PROTOCOL, b_nothing, false, 1, false, true},
	{"streams-abandon", PROTO_KAD, b_nothing, false, 300, false, false},
	{"flood-tcp", NULL, NULL, false, 200, false, false},
};

/* ------------------------------------------------------------ reporting */

static double now_ms(void)
{
	return ev_time() * 1000.0;
}

static json_t *decode_status(void)
{
	if (!keep.len)
		return json_null();
	const char *p = O.protocol ? O.protocol : sc->proto;
	if (!strcmp(p, PROTO_HOP) || !strcmp(p, PROTO_STOP)) {
		struct an_relay_msg m;
		size_t used;
		enum an_relay_kind kind = strcmp(p, PROTO_HOP) ? AN_RELAY_STOP : AN_RELAY_HOP;
		if (an_relay_msg_read(kind, keep.data, keep.len, &m, &used) == 0 && m.has_status)
			return json_integer(m.status);
		return json_string("undecodable");
	}
	if (!strcmp(p, PROTO_ROUTE)) {
		int st;
		if (sscanf((const char *)keep.data, "HTTP/1.1 %3d", &st) == 1)
			return json_integer(st);
		return json_string("undecodable");
	}
	return json_string("message");
}

/* ping: 1 the connection answered a ping afterwards, 0 it did not, -1 not tried */
static void report(int ping)
{
	if (reported)
		return;
	reported = true;
	uint64_t sent = 0, recv = 0;
	int counts[F_NFATES] = {0};
	for (int i = 0; i < n_streams; i++) {
		struct hstream *x = &hs[i];
		if (x->fate == F_PENDING)
			x->fate = x->s ? F_OPEN : F_FAILED;
		counts[x->fate]++;
		sent += x->sent;
		recv += x->recv;
	}
	json_t *o = json_pack("{s:s,s:s,s:i,s:I,s:I,s:s}", "scenario", sc->name, "protocol",
			      O.protocol ? O.protocol : sc->proto, "streams", n_streams, "sent",
			      (json_int_t)sent, "received", (json_int_t)recv, "stream",
			      n_streams ? fate_name[hs[0].fate] : "failed");
	json_object_set_new(o, "status", decode_status());
	if (n_streams > 1) {
		json_t *c = json_object();
		for (int f = F_RESET; f < F_NFATES; f++)
			if (counts[f])
				json_object_set_new(c, fate_name[f], json_integer(counts[f]));
		json_object_set_new(o, "outcomes", c);
	}
	json_object_set_new(o, "connection", json_string(an_host_conn_alive(conn) ? "open" : "closed"));
	json_object_set_new(o, "pingAfter", ping < 0 ? json_null() : json_boolean(ping));
	json_object_set_new(o, "ms", json_integer((json_int_t)(now_ms() - t0)));
	cli_print_json(o);
	fflush(stdout);
	json_decref(o);
}

/* The connection answered a ping (or did not): that was the last check. */
static void ping_cb(void *arg, int err, uint64_t rtt)
{
	(void)arg, (void)rtt;
	report(err == 0);
	an_host_shutdown(host, 500);
}

static void finish(void)
{
	if (finishing)
		return;
	finishing = true;
	ev_timer_stop(loop, &deadline_timer);
	for (int i = 0; i < n_streams; i++)
		if (hs[i].fate == F_PENDING && hs[i].s)
			hs[i].fate = F_OPEN;
	/* reset what is still open (its fate is recorded), then ping */
	for (int i = 0; i < n_streams; i++)
		if (hs[i].s && !hs[i].finished) {
			hs[i].we_reset = true;
			an_stream_reset(hs[i].s);
		}
	if (!an_host_conn_alive(conn) || an_ping_once(conn, 3000, ping_cb, NULL) < 0)
		ping_cb(NULL, AN_ECLOSED, 0);
}

static void deadline_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)l, (void)w, (void)revents;
	finish();
}

static void hard_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	(void)w, (void)revents;
	cli_warn("hard deadline reached");
	exit_status = AN_EXIT_SYSTEM;
	ev_break(l, EVBREAK_ALL);
}

/* ------------------------------------------------------------ streams */

static void pump(struct hstream *x)
{
	static uint8_t block[CHUNK];
	while (!x->done_writing && x->s && an_stream_queued(x->s) < AN_STREAM_QUEUE_HIGH) {
		const uint8_t *p;
		size_t n;
		if (x->pre_off < pre.len) {
			p = pre.data + x->pre_off;
			n = pre.len - x->pre_off > CHUNK ? CHUNK : pre.len - x->pre_off;
			x->pre_off += n;
		} else if (x->filler_left) {
			n = x->filler_left > CHUNK ? CHUNK : (size_t)x->filler_left;
			memset(block, fill_byte, n);
			p = block;
			x->filler_left -= n;
		} else if (x->post_off < post.len) {
			p = post.data + x->post_off;
			n = post.len - x->post_off > CHUNK ? CHUNK : post.len - x->post_off;
			x->post_off += n;
		} else {
			x->done_writing = true;
			if (sc->fin)
				an_stream_close_write(x->s);
			return;
		}
		if (n == 0)
			continue;
		if (an_stream_write(x->s, p, n) < 0) {
			x->done_writing = true; /* the victim ended it; on_close says how */
			return;
		}
		x->sent += n;
	}
}

/* One more stream opened or refused: once all are, say so (a test's cue). */
static void settled(void)
{
	if (++n_settled == n_streams && n_streams > 1)
		cli_warn("%d streams settled", n_streams);
}

static void s_open(struct an_stream *s, void *arg)
{
	struct hstream *x = arg;
	x->s = s;
	x->opened = true;
	settled();
	if (sc->pause)
		an_stream_pause(s, true);
	pump(x);
}

static void s_writable(struct an_stream *s, void *arg)
{
	(void)s;
	pump(arg);
}

static void s_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)s;
	struct hstream *x = arg;
	x->recv += n;
	if (x == &hs[0] && keep.len < KEEP_MAX)
		an_buf_append(&keep, p, n < KEEP_MAX - keep.len ? n : KEEP_MAX - keep.len);
}

static void s_eof(struct an_stream *s, void *arg)
{
	struct hstream *x = arg;
	x->eof = true;
	if (sc->reply)
		return; /* the victim's request ends with its FIN: our answer goes on */
	/* the victim is done: finish ours too, the fate is "closed" unless it resets */
	x->done_writing = true;
	an_stream_close_write(s);
}

static void s_close(struct an_stream *s, int err, void *arg)
{
	(void)s;
	struct hstream *x = arg;
	x->s = NULL;
	x->finished = true;
	if (!x->opened)
		settled();
	if (x->fate == F_PENDING) {
		if (x->we_reset)
			x->fate = F_OPEN;
		else if (err == AN_ERESET)
			x->fate = F_RESET;
		else if (err == 0)
			x->fate = F_CLOSED;
		else if (err == AN_ENOPROTO)
			x->fate = F_REFUSED;
		else if (err == AN_ECLOSED)
			x->fate = F_LOST;
		else
			x->fate = F_FAILED;
	}
	if (++n_finished == n_streams)
		finish();
}

static const struct an_stream_handler s_handler = {
	.on_open = s_open, .on_data = s_data, .on_eof = s_eof, .on_close = s_close,
	.on_writable = s_writable};

/* Build the payload once (the victim's identify request may come before dial_cb). */
static int build(void)
{
	if (built)
		return 0;
	built = true;
	return sc->build(&pre, &filler, &fill_byte, &post);
}

/* The victim opened its identify request to us: the scenario's answer. */
static void reply_open(struct an_stream *s, void *arg)
{
	struct hstream *x = arg;
	if (x->s || x->finished || build() < 0) { /* one answer per run */
		an_stream_reset(s);
		return;
	}
	an_stream_set_user(s, x);
	x->filler_left = filler;
	s_open(s, x);
}

static void reply_data(struct an_stream *s, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	if (an_stream_user(s))
		s_data(s, p, n, an_stream_user(s));
}

static void reply_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	if (an_stream_user(s))
		s_eof(s, an_stream_user(s));
}

static void reply_close(struct an_stream *s, int err, void *arg)
{
	(void)arg;
	if (an_stream_user(s))
		s_close(s, err, an_stream_user(s));
}

static void reply_writable(struct an_stream *s, void *arg)
{
	(void)arg;
	if (an_stream_user(s))
		s_writable(s, an_stream_user(s));
}

static const struct an_stream_handler reply_handler = {
	.on_open = reply_open, .on_data = reply_data, .on_eof = reply_eof, .on_close = reply_close,
	.on_writable = reply_writable};

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h, (void)arg;
	if (err < 0) {
		cli_warn("unable to connect to '%s': %s", O.dial, an_strerror(err));
		exit_status = AN_EXIT_SYSTEM;
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	an_host_conn_ref(c);
	conn = c;
	int rc = build();
	if (rc < 0) {
		cli_warn("unable to build scenario '%s': %s", sc->name, an_strerror(rc));
		exit_status = AN_EXIT_SYSTEM;
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	n_streams = O.count > 0 ? (int)O.count : sc->streams;
	t0 = now_ms();
	for (int i = 0; i < n_streams && !sc->reply; i++) {
		hs[i].filler_left = filler;
		rc = an_host_stream_open(c, O.protocol ? O.protocol : sc->proto, &s_handler, &hs[i], NULL);
		if (rc < 0) { /* over the victim's or our own limit: no on_close follows */
			hs[i].fate = rc == AN_ELIMIT ? F_REFUSED : F_FAILED;
			hs[i].finished = true;
			n_finished++;
			settled();
		}
	}
	ev_timer_init(&deadline_timer, deadline_cb, O.timeout, 0);
	ev_timer_start(loop, &deadline_timer);
	if (n_finished == n_streams)
		finish();
}

/* ------------------------------------------------------------ flood-tcp */

/* --count sockets from --source that never finish a handshake; held to the deadline. */
static int flood(void)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct an_peerid id;
	bool has_id;
	static struct pollfd fds[MAX_FLOOD];
	int n = O.count > 0 ? (int)O.count : sc->streams, connected = 0, closed = 0, failed = 0;
	int rc = an_host_maddr_split(O.dial, &ss, &sl, &id, &has_id);
	if (rc < 0)
		cli_die(AN_EXIT_USAGE, "bad --dial '%s': %s", O.dial, an_strerror(rc));
	double start = ev_time();
	for (int i = 0; i < n; i++) {
		int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		fds[i].fd = -1;
		if (fd < 0) {
			failed++;
			continue;
		}
		if (O.source && ss.ss_family == AF_INET) {
			struct sockaddr_in src = {.sin_family = AF_INET};
			if (inet_pton(AF_INET, O.source, &src.sin_addr) != 1 ||
			    bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
				close(fd);
				cli_die(AN_EXIT_USAGE, "cannot bind --source '%s'", O.source);
			}
		}
		if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
			close(fd);
			failed++;
			continue;
		}
		connected++;
		/* every other socket sends half a multistream header, then stalls */
		if (i % 2 && write(fd, "\x13/multistream/1.0", 18) < 0)
			failed++;
		fds[i].fd = fd;
		fds[i].events = POLLIN;
	}
	/* the test's cue that the flood is on (stdout keeps its one line) */
	cli_warn("%d sockets connected", connected);
	/* read until the deadline: a victim that gives up on a socket closes it */
	char buf[4096];
	for (;;) {
		double left = O.timeout - (ev_time() - start);
		if (left <= 0)
			break;
		int r = poll(fds, (nfds_t)n, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 0; r > 0 && i < n; i++) {
			if (fds[i].fd < 0 || !fds[i].revents)
				continue;
			ssize_t k = read(fds[i].fd, buf, sizeof(buf));
			if (k <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				closed++;
			}
		}
	}
	for (int i = 0; i < n; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	json_t *o = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:I}", "scenario", sc->name, "sockets", n,
			      "connected", connected, "closedByVictim", closed, "open",
			      connected - closed, "failed", failed, "ms",
			      (json_int_t)((ev_time() - start) * 1000));
	cli_print_json(o);
	json_decref(o);
	return cli_finish(connected ? AN_EXIT_OK : AN_EXIT_SYSTEM);
}

/* ------------------------------------------------------------ main */

static void on_signal(struct ev_loop *l, ev_signal *w, int revents)
{
	(void)l, (void)w, (void)revents;
	an_host_shutdown(host, 500);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dial", required_argument, NULL, 'd'},
		{"scenario", required_argument, NULL, 'S'},
		{"source", required_argument, NULL, 'f'},
		{"timeout", required_argument, NULL, 't'},
		{"count", required_argument, NULL, 'n'},
		{"host", required_argument, NULL, 'H'},
		{"protocol", required_argument, NULL, 'P'},
		{"key", required_argument, NULL, 'k'},
		{"target", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	char *end;
	cli_init(argv[0]);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	O.timeout = 12;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': O.dial = optarg; break;
		case 'S': O.scenario = optarg; break;
		case 'f': O.source = optarg; break;
		case 't':
			O.timeout = strtod(optarg, &end);
			if (*end || end == optarg || O.timeout <= 0 || O.timeout > 3600)
				cli_usage_error(USAGE, "invalid --timeout '%s'", optarg);
			break;
		case 'n':
			O.count = strtol(optarg, &end, 10);
			if (*end || end == optarg || O.count < 1 || O.count > MAX_STREAMS)
				cli_usage_error(USAGE, "invalid --count '%s'", optarg);
			break;
		case 'H': O.host = optarg; break;
		case 'P': O.protocol = cli_protocol_opt(optarg, USAGE); break;
		case 'k': O.key = optarg; break;
		case 'T': O.target = optarg; break;
		case 'h': cli_usage(USAGE, AN_EXIT_OK);
		default: cli_bad_option(c, argv, USAGE);
		}
	}
	if (optind != argc || !O.dial || !O.scenario)
		cli_usage_error(USAGE, "--dial and --scenario are required");
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]) && !sc; i++)
		if (!strcmp(scenarios[i].name, O.scenario))
			sc = &scenarios[i];
	if (!sc)
		cli_usage_error(USAGE, "unknown scenario '%s'", O.scenario);
	if (!sc->build)
		return flood();

	struct an_privkey *key = NULL;
	int rc = O.key ? an_privkey_load(O.key, &key) : an_privkey_generate(&key);
	if (rc < 0)
		cli_die(cli_exit_status(rc), "unable to load key '%s': %s", O.key ? O.key : "", an_strerror(rc));
	loop = ev_default_loop(0);
	struct an_host_config cfg = {.key = key, .agent_version = "an-hostile/0.1.0"};
	cfg.limits.max_streams_per_conn = 2 * MAX_STREAMS;
	an_buf_init(&pre, PAYLOAD_MAX);
	an_buf_init(&post, PAYLOAD_MAX);
	an_buf_init(&keep, KEEP_MAX);
	rc = an_host_new(loop, &cfg, &host);
	if (rc == 0)
		rc = an_ping_service_register(host);
	if (rc == 0)
		rc = an_identify_service_register(host);
	if (rc == 0 && sc->reply) /* replaces the identify responder */
		rc = an_host_handle(host, AN_IDENTIFY_PROTOCOL, &reply_handler, &hs[0]);
	if (rc == 0 && O.source) {
		/* dials bind our listen address and port: the victim sees O.source */
		char ma[128];
		snprintf(ma, sizeof(ma), "/ip4/%s/tcp/0", O.source);
		rc = an_host_listen(host, ma);
	}
	if (rc < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to start: %s", an_strerror(rc));
	ev_signal sigterm;
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_start(loop, &sigterm);
	ev_timer_init(&hard_timer, hard_cb, O.timeout + 25, 0);
	ev_timer_start(loop, &hard_timer);
	rc = an_relay_dial(host, O.dial, 10000, dial_cb, NULL);
	if (rc < 0)
		cli_die(AN_EXIT_USAGE, "bad --dial '%s': %s", O.dial, an_strerror(rc));
	ev_run(loop, 0);
	if (conn && exit_status == 0)
		report(-1); /* shut down by a signal before the end */
	if (conn)
		an_host_conn_unref(conn);
	an_host_free(host);
	an_privkey_free(key);
	an_privkey_free(other_key);
	an_buf_free(&pre);
	an_buf_free(&post);
	an_buf_free(&keep);
	return cli_finish(exit_status);
}
