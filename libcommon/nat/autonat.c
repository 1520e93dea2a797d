/*
 * autonat.c - AutoNAT v1 and v2 client and server on a host (see autonat.h).
 */
#include "nat/autonat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/protobuf.h"
#include "nat/autonat_msg.h"
#include "transport/identify.h"
#include "util/buf.h"
#include "util/error.h"

#define IN_MAX (AN_AUTONAT_MSG_MAX + 16) /* one frame and its prefix */
#define DIAL_BACK_MS 5000
#define SERVE_PER_PEER 2

struct cidr {
	uint8_t ip[16]; /* IPv4 as ::ffff:a.b.c.d */
	int bits;
};

struct peer_slot {
	bool used;
	struct an_peerid id;
	uint64_t window_ms; /* start of its minute */
	int count;          /* requests in that minute */
	int active;
	uint64_t last_ms;
};

struct server_slot {
	struct an_peerid id;
	uint64_t asked_ms;
	bool identified; /* its observedAddr of us is a candidate already */
};

struct serve;
struct probe;
struct dialback;

struct an_autonat {
	struct an_host *h;
	struct an_autonat_config cfg;
	size_t nallow;
	struct cidr allow[AN_AUTONAT_MAX_ALLOW];
	struct an_reach reach;
	ev_timer tick;
	/* server */
	struct serve *serving;
	size_t nserving;
	uint64_t global_window_ms;
	int global_count;
	struct peer_slot peers[AN_AUTONAT_PEER_SLOTS];
	/* client */
	struct probe *probe;
	struct dialback *dialbacks;
	struct server_slot servers[AN_AUTONAT_SERVER_SLOTS];
	size_t next_conn;
};

static void alog(struct an_autonat *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void alog(struct an_autonat *a, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (!a->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->cfg.log(a->cfg.log_arg, msg);
}

static uint64_t now_ms(struct an_autonat *a)
{
	return an_host_now_ms(a->h);
}

/* ---- addresses ---- */

/* sa's IP as 16 bytes (IPv4 mapped); false for other families. */
static bool ip16(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return true;
	}
	return false;
}

static bool in_prefix(const uint8_t ip[16], const uint8_t net[16], int bits)
{
	int full = bits / 8, rest = bits % 8;
	if (memcmp(ip, net, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (ip[full] & mask) == (net[full] & mask);
}

static bool v4_mapped(const uint8_t ip[16])
{
	static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(ip, pre, 12) == 0;
}

/* IANA special-purpose IPv4 blocks (and js's private list): never public. */
static const struct {
	uint8_t a, b, c, d;
	int bits;
} v4_special[] = {
	{0, 0, 0, 0, 8},       {10, 0, 0, 0, 8},      {100, 64, 0, 0, 10},  {127, 0, 0, 0, 8},
	{169, 254, 0, 0, 16},  {172, 16, 0, 0, 12},   {192, 0, 0, 0, 24},   {192, 0, 2, 0, 24},
	{192, 31, 196, 0, 24}, {192, 52, 193, 0, 24}, {192, 88, 99, 0, 24}, {192, 168, 0, 0, 16},
	{192, 175, 48, 0, 24}, {198, 18, 0, 0, 15},   {198, 51, 100, 0, 24}, {203, 0, 113, 0, 24},
	{224, 0, 0, 0, 4},     {240, 0, 0, 0, 4},
};

static bool ip16_public(const uint8_t ip[16])
{
	if (v4_mapped(ip)) {
		for (size_t i = 0; i < sizeof(v4_special) / sizeof(v4_special[0]); i++) {
			uint8_t net[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
			net[12] = v4_special[i].a;
			net[13] = v4_special[i].b;
			net[14] = v4_special[i].c;
			net[15] = v4_special[i].d;
			if (in_prefix(ip, net, 96 + v4_special[i].bits))
				return false;
		}
		return true;
	}
	static const uint8_t doc[16] = {0x20, 0x01, 0x0d, 0xb8};
	if ((ip[0] & 0xe0) != 0x20) /* global unicast is 2000::/3 */
		return false;
	return !in_prefix(ip, doc, 32);
}

bool an_autonat_ip_public(const struct sockaddr *sa)
{
	uint8_t ip[16];
	return ip16(sa, ip) && ip16_public(ip);
}

static bool ip16_allowed(const struct an_autonat *a, const uint8_t ip[16])
{
	if (ip16_public(ip))
		return true;
	for (size_t i = 0; i < a->nallow; i++)
		if (in_prefix(ip, a->allow[i].ip, a->allow[i].bits))
			return true;
	return false;
}

bool an_autonat_addr_allowed(const struct an_autonat *a, const struct sockaddr *sa)
{
	uint8_t ip[16];
	return ip16(sa, ip) && ip16_allowed(a, ip);
}

static int parse_cidr(const char *s, size_t len, struct cidr *out)
{
	char text[64];
	char *slash;
	int max;
	if (len == 0 || len >= sizeof(text))
		return AN_EMALFORMED;
	memcpy(text, s, len);
	text[len] = 0;
	slash = strchr(text, '/');
	if (slash)
		*slash = 0;
	struct in_addr v4;
	struct in6_addr v6;
	if (inet_pton(AF_INET, text, &v4) == 1) {
		memset(out->ip, 0, 10);
		out->ip[10] = out->ip[11] = 0xff;
		memcpy(out->ip + 12, &v4, 4);
		max = 32;
	} else if (inet_pton(AF_INET6, text, &v6) == 1) {
		memcpy(out->ip, &v6, 16);
		max = 128;
	} else {
		return AN_EMALFORMED;
	}
	int bits = max;
	if (slash) {
		char *end;
		long v = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || v < 0 || v > max)
			return AN_EMALFORMED;
		bits = (int)v;
	}
	out->bits = bits + (max == 32 ? 96 : 0);
	return 0;
}

int an_autonat_set_allow(struct an_autonat *a, const char *list)
{
	struct cidr tmp[AN_AUTONAT_MAX_ALLOW];
	size_t n = 0;
	const char *p = list ? list : "";
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len && (*p == ' ')) {
			p++;
			len--;
		}
		while (len && p[len - 1] == ' ')
			len--;
		if (len) {
			if (n == AN_AUTONAT_MAX_ALLOW)
				return AN_ELIMIT;
			int rc = parse_cidr(p, len, &tmp[n]);
			if (rc < 0)
				return rc;
			n++;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	memcpy(a->allow, tmp, n * sizeof(tmp[0]));
	a->nallow = n;
	return 0;
}

/*
 * A binary multiaddr a server may dial: plain TCP, without /p2p (text,
 * cap AN_HOST_ADDR_TEXT_MAX), its sockaddr.  False for anything else.
 */
static bool tcp_addr(const uint8_t *bin, size_t len, char *text, struct sockaddr_storage *ss)
{
	socklen_t sl;
	struct an_peerid id;
	bool has_id;
	if (an_host_maddr_format(bin, len, text, AN_HOST_ADDR_TEXT_MAX) < 0)
		return false;
	if (an_host_maddr_split(text, ss, &sl, &id, &has_id) < 0)
		return false;
	char *p2p = strstr(text, "/p2p/");
	if (p2p)
		*p2p = 0;
	return true;
}

/* ---- reachability ---- */

static void record(struct an_autonat *a, const char *addr, bool dialed, const char *how)
{
	enum an_reach_state before = an_reach_overall(&a->reach);
	int rc = an_reach_result(&a->reach, addr, dialed, now_ms(a));
	if (rc < 0)
		return;
	if (rc == 1) {
		const struct an_reach_addr *e = an_reach_find(&a->reach, addr);
		alog(a, "autonat: %s is %s (%s)", addr, an_reach_name(e->state), how);
		if (a->cfg.on_change)
			a->cfg.on_change(a->cfg.change_arg, addr, e->state);
	}
	enum an_reach_state after = an_reach_overall(&a->reach);
	if (after != before) {
		alog(a, "autonat: reachability %s", an_reach_name(after));
		if (a->cfg.on_change)
			a->cfg.on_change(a->cfg.change_arg, NULL, after);
	}
}

enum an_reach_state an_autonat_reachability(const struct an_autonat *a)
{
	return an_reach_overall(&a->reach);
}

const struct an_reach *an_autonat_table(const struct an_autonat *a)
{
	return &a->reach;
}

/* Add text (a TCP multiaddr without /p2p) as a candidate if it is worth asking about. */
static void candidate(struct an_autonat *a, const char *text, bool observed)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct an_peerid id;
	bool has_id;
	uint8_t ip[16];
	if (an_host_maddr_split(text, &ss, &sl, &id, &has_id) < 0 || has_id)
		return;
	if (!ip16((struct sockaddr *)&ss, ip) || !ip16_allowed(a, ip))
		return;
	uint16_t port = ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						: ((struct sockaddr_in6 *)&ss)->sin6_port;
	if (port == 0)
		return;
	(void)an_reach_add(&a->reach, text, observed, now_ms(a));
}

/* ---- server ---- */

enum serve_phase { SV_REQUEST, SV_DATA, SV_DIALING, SV_ANSWERED };

struct serve {
	struct an_autonat *a; /* NULL once finished */
	struct serve *next;
	int refs;
	bool v2;
	bool finished;
	bool counted;         /* holds a per-peer active slot */
	enum serve_phase phase;
	struct an_stream *stream;
	struct an_peerid peer;
	uint8_t observed_ip[16];
	struct an_buf in;
	ev_timer deadline;
	/* v2 */
	uint64_t nonce;
	uint32_t idx;
	uint64_t need, got;
	int dial_status;
	struct an_host_conn *back;
	struct an_stream *back_stream;
	struct an_buf back_in;
	bool back_answered;
	/* the addresses to dial (v2: one), in order */
	size_t ndial, idial;
	char dial[AN_AUTONAT_MAX_ADDRS][AN_HOST_ADDR_TEXT_MAX];
};

static struct ev_loop *aloop(struct an_autonat *a)
{
	return an_host_loop(a->h);
}

static void serve_unref(struct serve *s)
{
	if (--s->refs > 0)
		return;
	an_buf_free(&s->in);
	an_buf_free(&s->back_in);
	free(s);
}

static struct peer_slot *peer_slot(struct an_autonat *a, const struct an_peerid *id, bool create)
{
	struct peer_slot *free_slot = NULL, *oldest = NULL;
	for (size_t i = 0; i < AN_AUTONAT_PEER_SLOTS; i++) {
		struct peer_slot *p = &a->peers[i];
		if (p->used && an_peerid_equal(&p->id, id))
			return p;
		if (!p->used) {
			if (!free_slot)
				free_slot = p;
		} else if (p->active == 0 && (!oldest || p->last_ms < oldest->last_ms)) {
			oldest = p;
		}
	}
	if (!create)
		return NULL;
	struct peer_slot *p = free_slot ? free_slot : oldest;
	if (!p)
		return NULL; /* every slot busy: the table stays bounded */
	memset(p, 0, sizeof(*p));
	p->used = true;
	p->id = *id;
	return p;
}

static void serve_release(struct serve *s, struct an_autonat *a)
{
	if (!s->counted)
		return;
	s->counted = false;
	struct peer_slot *p = peer_slot(a, &s->peer, false);
	if (p && p->active > 0)
		p->active--;
}

/* End s: unlink, stop, drop the dial-back; reset the stream when asked. */
static void serve_finish(struct serve *s, bool reset)
{
	struct an_autonat *a = s->a;
	if (s->finished)
		return;
	s->finished = true;
	ev_timer_stop(aloop(a), &s->deadline);
	serve_release(s, a);
	for (struct serve **pp = &a->serving; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			a->nserving--;
			break;
		}
	}
	if (s->back_stream) {
		struct an_stream *bs = s->back_stream;
		s->back_stream = NULL;
		an_stream_reset(bs);
	}
	if (s->back) {
		an_host_conn_close(s->back);
		an_host_conn_unref(s->back);
		s->back = NULL;
	}
	if (reset && s->stream) {
		struct an_stream *st = s->stream;
		s->stream = NULL;
		an_stream_reset(st);
	}
	s->a = NULL;
	serve_unref(s); /* the list's; callers hold their own */
}

static void serve_write(struct serve *s, int rc, struct an_buf *b)
{
	if (rc == 0 && s->stream)
		rc = an_stream_write(s->stream, b->data, b->len);
	an_buf_free(b);
	if (rc < 0)
		serve_finish(s, true);
}

static void serve_answer_v2(struct serve *s, uint32_t status, uint32_t dial_status)
{
	struct an_autonat2_msg m;
	struct an_buf b;
	an_autonat2_init(&m, AN_AUTONAT2_DIAL_RESPONSE);
	m.status = status;
	m.addr_idx = s->idx;
	m.dial_status = dial_status;
	an_buf_init(&b, IN_MAX);
	s->phase = SV_ANSWERED;
	serve_release(s, s->a);
	serve_write(s, an_autonat2_encode(&m, &b), &b);
	if (!s->finished && s->stream)
		an_stream_close_write(s->stream);
}

static void serve_answer_v1(struct serve *s, uint32_t status, const char *text, const char *addr)
{
	struct an_autonat1_msg m;
	struct an_buf b;
	uint8_t bin[AN_HOST_ADDR_TEXT_MAX];
	size_t blen = 0;
	an_autonat1_init(&m, AN_AUTONAT1_DIAL_RESPONSE);
	m.has_response = true;
	m.status = status;
	m.status_text.p = (const uint8_t *)text;
	m.status_text.len = strlen(text);
	if (addr && an_host_maddr_encode(addr, bin, sizeof(bin), &blen) == 0) {
		m.addr.p = bin;
		m.addr.len = blen;
	}
	an_buf_init(&b, IN_MAX);
	s->phase = SV_ANSWERED;
	serve_release(s, s->a);
	serve_write(s, an_autonat1_encode(&m, &b), &b);
	if (!s->finished && s->stream)
		an_stream_close_write(s->stream);
}

static void serve_dial_next(struct serve *s);

/* The dial-back (v2) or the check (v1) ended: dialed says whether it reached the peer. */
static void serve_dialed(struct serve *s, int dial_status)
{
	if (s->back_stream) {
		struct an_stream *bs = s->back_stream;
		s->back_stream = NULL;
		an_stream_reset(bs);
	}
	if (s->back) {
		an_host_conn_close(s->back);
		an_host_conn_unref(s->back);
		s->back = NULL;
	}
	if (s->v2) {
		serve_answer_v2(s, AN_AUTONAT2_OK, (uint32_t)dial_status);
		return;
	}
	if (dial_status == AN_AUTONAT2_DIAL_OK) {
		serve_answer_v1(s, AN_AUTONAT1_OK, "", s->dial[s->idial]);
		return;
	}
	s->idial++;
	if (s->idial < s->ndial)
		serve_dial_next(s);
	else
		serve_answer_v1(s, AN_AUTONAT1_E_DIAL_ERROR, "dial failed", s->dial[0]);
}

/* the dial-back stream (server side, outbound on the new connection) */
static void back_open(struct an_stream *st, void *arg)
{
	struct serve *s = arg;
	struct an_buf b;
	an_buf_init(&b, 64);
	if (an_autonat2_dial_back_encode(s->nonce, &b) < 0 || an_stream_write(st, b.data, b.len) < 0)
		an_stream_reset(st);
	else
		an_stream_close_write(st);
	an_buf_free(&b);
}

static void back_data(struct an_stream *st, const uint8_t *p, size_t n, void *arg)
{
	struct serve *s = arg;
	const uint8_t *msg;
	size_t mlen, used;
	uint32_t status;
	if (s->finished || s->back_stream != st)
		return;
	s->refs++;
	int rc = an_buf_append(&s->back_in, p, n);
	if (rc == 0)
		rc = an_lp_get(s->back_in.data, s->back_in.len, 64, &msg, &mlen, &used);
	if (rc == 0 && an_autonat2_dial_back_response_decode(msg, mlen, &status) == 0 && status == 0)
		serve_dialed(s, AN_AUTONAT2_DIAL_OK);
	else if (rc != AN_EAGAIN)
		serve_dialed(s, AN_AUTONAT2_E_DIAL_BACK_ERROR);
	serve_unref(s);
}

static void back_eof(struct an_stream *st, void *arg)
{
	struct serve *s = arg;
	if (!s->finished && s->back_stream == st) {
		s->refs++;
		serve_dialed(s, AN_AUTONAT2_E_DIAL_BACK_ERROR);
		serve_unref(s);
	}
}

static void back_close(struct an_stream *st, int err, void *arg)
{
	(void)err;
	struct serve *s = arg;
	if (!s->finished && s->back_stream == st) {
		s->back_stream = NULL;
		serve_dialed(s, AN_AUTONAT2_E_DIAL_BACK_ERROR);
	}
	serve_unref(s); /* the back stream's */
}

static const struct an_stream_handler back_handler = {
	.on_open = back_open, .on_data = back_data, .on_eof = back_eof, .on_close = back_close};

static void serve_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct serve *s = arg;
	if (s->finished || s->phase != SV_DIALING) {
		if (err == 0 && c && s->finished)
			an_host_conn_close(c);
		serve_unref(s);
		return;
	}
	if (err < 0 || !c) {
		serve_dialed(s, AN_AUTONAT2_E_DIAL_ERROR);
		serve_unref(s);
		return;
	}
	an_host_conn_ref(c);
	s->back = c;
	if (!s->v2) {
		/* v1 has no nonce: the peer that answered must be the requester */
		bool same = an_peerid_equal(an_host_conn_peer(c), &s->peer);
		serve_dialed(s, same ? AN_AUTONAT2_DIAL_OK : AN_AUTONAT2_E_DIAL_ERROR);
		serve_unref(s);
		return;
	}
	s->refs++;
	an_buf_free(&s->back_in);
	an_buf_init(&s->back_in, 64);
	if (an_host_stream_open(c, AN_AUTONAT2_PROTO_BACK, &back_handler, s, &s->back_stream) < 0) {
		s->back_stream = NULL;
		serve_unref(s);
		serve_dialed(s, AN_AUTONAT2_E_DIAL_BACK_ERROR);
	}
	serve_unref(s);
}

static void serve_dial_next(struct serve *s)
{
	s->phase = SV_DIALING;
	s->refs++;
	int rc = an_host_dial_ex(s->a->h, s->dial[s->idial], DIAL_BACK_MS, AN_HOST_DIAL_FRESH,
				 serve_dial_cb, s);
	if (rc < 0) {
		serve_unref(s);
		serve_dialed(s, AN_AUTONAT2_E_DIAL_ERROR);
	}
}

/* Is a request from s's peer allowed now?  Counts it when it is. */
static bool serve_admit(struct an_autonat *a, struct serve *s)
{
	uint64_t now = now_ms(a);
	int glim = a->cfg.server_global_per_min ? a->cfg.server_global_per_min
						: AN_AUTONAT_DEFAULT_GLOBAL_PER_MIN;
	int plim = a->cfg.server_peer_per_min ? a->cfg.server_peer_per_min
					      : AN_AUTONAT_DEFAULT_PEER_PER_MIN;
	if (now >= a->global_window_ms + 60000) {
		a->global_window_ms = now;
		a->global_count = 0;
	}
	if (glim > 0 && a->global_count >= glim)
		return false;
	struct peer_slot *p = peer_slot(a, &s->peer, true);
	if (!p)
		return false;
	if (now >= p->window_ms + 60000) {
		p->window_ms = now;
		p->count = 0;
	}
	p->last_ms = now;
	if ((plim > 0 && p->count >= plim) || p->active >= SERVE_PER_PEER)
		return false;
	p->count++;
	p->active++;
	a->global_count++;
	s->counted = true;
	return true;
}

static void serve_request_v2(struct serve *s, const struct an_autonat2_msg *m)
{
	struct an_autonat *a = s->a;
	struct sockaddr_storage ss;
	uint8_t ip[16];

	if (m->kind != AN_AUTONAT2_DIAL_REQUEST) {
		serve_finish(s, true);
		return;
	}
	s->nonce = m->nonce;
	if (!serve_admit(a, s)) {
		alog(a, "autonat: request rejected (rate limit)");
		serve_answer_v2(s, AN_AUTONAT2_E_REQUEST_REJECTED, 0);
		return;
	}
	for (size_t i = 0; i < m->naddrs; i++) {
		if (!tcp_addr(m->addrs[i].p, m->addrs[i].len, s->dial[0], &ss))
			continue;
		if (!ip16((struct sockaddr *)&ss, ip) || !ip16_allowed(a, ip))
			continue;
		s->idx = (uint32_t)i;
		s->ndial = 1;
		s->idial = 0;
		if (memcmp(ip, s->observed_ip, 16) != 0) {
			/* another IP than the one we see: the client pays in data first */
			struct an_autonat2_msg req;
			struct an_buf b;
			an_autonat2_init(&req, AN_AUTONAT2_DIAL_DATA_REQUEST);
			req.addr_idx = s->idx;
			req.num_bytes = AN_AUTONAT_DIAL_DATA_MIN +
					randombytes_uniform(AN_AUTONAT_DIAL_DATA_MAX - AN_AUTONAT_DIAL_DATA_MIN + 1);
			s->need = req.num_bytes;
			s->phase = SV_DATA;
			an_buf_init(&b, IN_MAX);
			serve_write(s, an_autonat2_encode(&req, &b), &b);
			return;
		}
		serve_dial_next(s);
		return;
	}
	serve_answer_v2(s, AN_AUTONAT2_E_DIAL_REFUSED, 0);
}

static void serve_data_v2(struct serve *s, const struct an_autonat2_msg *m)
{
	if (m->kind != AN_AUTONAT2_DIAL_DATA_RESPONSE || m->data.len > AN_AUTONAT_DATA_CHUNK * 2) {
		serve_finish(s, true);
		return;
	}
	s->got += m->data.len;
	if (s->got >= s->need)
		serve_dial_next(s);
}

static void serve_request_v1(struct serve *s, const struct an_autonat1_msg *m)
{
	struct an_autonat *a = s->a;
	struct sockaddr_storage ss;
	uint8_t ip[16];
	struct an_peerid id;

	if (m->type != AN_AUTONAT1_DIAL || !m->has_dial || !m->has_peer ||
	    an_peerid_from_bytes(m->peer_id.p, m->peer_id.len, &id) < 0) {
		serve_answer_v1(s, AN_AUTONAT1_E_BAD_REQUEST, "bad request", NULL);
		return;
	}
	if (!an_peerid_equal(&id, &s->peer)) {
		serve_answer_v1(s, AN_AUTONAT1_E_BAD_REQUEST, "peer id mismatch", NULL);
		return;
	}
	if (!serve_admit(a, s)) {
		alog(a, "autonat: request rejected (rate limit)");
		serve_answer_v1(s, AN_AUTONAT1_E_DIAL_REFUSED, "rate limited", NULL);
		return;
	}
	s->ndial = 0;
	for (size_t i = 0; i < m->naddrs && s->ndial < AN_AUTONAT_MAX_ADDRS; i++) {
		if (!tcp_addr(m->addrs[i].p, m->addrs[i].len, s->dial[s->ndial], &ss))
			continue;
		if (!ip16((struct sockaddr *)&ss, ip) || !ip16_allowed(a, ip) ||
		    memcmp(ip, s->observed_ip, 16) != 0)
			continue;
		s->ndial++;
	}
	if (s->ndial == 0) {
		serve_answer_v1(s, AN_AUTONAT1_E_DIAL_REFUSED, "no dialable addresses", NULL);
		return;
	}
	s->idial = 0;
	serve_dial_next(s);
}

static void serve_open(struct an_stream *st, void *arg)
{
	(void)st;
	(void)arg;
}

static void serve_data(struct an_stream *st, const uint8_t *p, size_t n, void *arg)
{
	(void)arg;
	struct serve *s = an_stream_user(st);
	if (!s || s->finished)
		return;
	if (s->phase != SV_REQUEST && s->phase != SV_DATA)
		return; /* nothing more is expected: dropped */
	s->refs++; /* s outlives a reset of its stream in here */
	/* bytes go in by what the frame buffer holds (yamux may hand us 256 KiB of dial data) */
	while (!s->finished && (s->phase == SV_REQUEST || s->phase == SV_DATA)) {
		const uint8_t *msg;
		size_t mlen, used;
		size_t take = s->in.max - s->in.len;
		if (take > n)
			take = n;
		if (take && an_buf_append(&s->in, p, take) < 0) {
			serve_finish(s, true);
			break;
		}
		p += take;
		n -= take;
		int rc = an_lp_get(s->in.data, s->in.len, AN_AUTONAT_MSG_MAX, &msg, &mlen, &used);
		if (rc == AN_EAGAIN && n == 0)
			break;
		if (rc == AN_EAGAIN) {
			serve_finish(s, true); /* a full buffer without a frame */
			break;
		}
		if (rc < 0) {
			serve_finish(s, true);
			break;
		}
		if (s->v2) {
			struct an_autonat2_msg m;
			if (an_autonat2_decode(msg, mlen, &m) < 0)
				serve_finish(s, true);
			else if (s->phase == SV_REQUEST)
				serve_request_v2(s, &m);
			else
				serve_data_v2(s, &m);
		} else {
			struct an_autonat1_msg m;
			if (an_autonat1_decode(msg, mlen, &m) < 0)
				serve_finish(s, true);
			else
				serve_request_v1(s, &m);
		}
		if (!s->finished)
			an_buf_consume(&s->in, used);
	}
	serve_unref(s);
}

static void serve_eof(struct an_stream *st, void *arg)
{
	(void)arg;
	struct serve *s = an_stream_user(st);
	if (s && !s->finished && (s->phase == SV_REQUEST || s->phase == SV_DATA)) {
		s->refs++;
		serve_finish(s, true); /* the request never came whole */
		serve_unref(s);
	}
}

static void serve_close(struct an_stream *st, int err, void *arg)
{
	(void)err;
	(void)arg;
	struct serve *s = an_stream_user(st);
	if (!s)
		return;
	an_stream_set_user(st, NULL);
	s->stream = NULL;
	if (!s->finished)
		serve_finish(s, false);
	serve_unref(s);
}

static void serve_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct serve *s = w->data;
	if (s->a)
		alog(s->a, "autonat: request timed out");
	s->refs++;
	serve_finish(s, true);
	serve_unref(s);
}

static void serve_start(struct an_stream *st, bool v2, struct an_autonat *a)
{
	struct an_host_conn *c = an_stream_conn(st);
	struct an_host_addr_key key;
	if (an_host_conn_relayed(c) || !an_host_conn_addr_key(c, &key) ||
	    a->nserving >= AN_AUTONAT_MAX_SERVING) {
		/* never over a relay (the spec); bounded state */
		an_stream_reset(st);
		return;
	}
	struct serve *s = calloc(1, sizeof(*s));
	if (!s) {
		an_stream_reset(st);
		return;
	}
	s->a = a;
	s->v2 = v2;
	s->refs = 2; /* the list and the stream */
	s->stream = st;
	s->peer = *an_host_conn_peer(c);
	memcpy(s->observed_ip, key.ip, 16);
	an_buf_init(&s->in, IN_MAX);
	an_buf_init(&s->back_in, 64);
	ev_timer_init(&s->deadline, serve_deadline,
		      (a->cfg.timeout_ms ? a->cfg.timeout_ms : AN_AUTONAT_DEFAULT_TIMEOUT_MS) / 1000.0, 0);
	s->deadline.data = s;
	ev_timer_start(aloop(a), &s->deadline);
	s->next = a->serving;
	a->serving = s;
	a->nserving++;
	an_stream_set_user(st, s);
}

static void serve_open_v2(struct an_stream *st, void *arg)
{
	serve_open(st, arg);
	serve_start(st, true, arg);
}

static void serve_open_v1(struct an_stream *st, void *arg)
{
	serve_open(st, arg);
	serve_start(st, false, arg);
}

static const struct an_stream_handler serve_v2_handler = {
	.on_open = serve_open_v2, .on_data = serve_data, .on_eof = serve_eof, .on_close = serve_close};
static const struct an_stream_handler serve_v1_handler = {
	.on_open = serve_open_v1, .on_data = serve_data, .on_eof = serve_eof, .on_close = serve_close};

size_t an_autonat_serving(const struct an_autonat *a)
{
	return a->nserving;
}

/* ---- client ---- */

enum probe_phase { PR_IDENTIFY, PR_V2, PR_V1 };

struct probe {
	struct an_autonat *a; /* NULL once done */
	int refs;
	bool done;
	enum probe_phase phase;
	struct an_host_conn *conn; /* referenced until done */
	struct an_peerid server;
	struct an_stream *stream;
	struct an_buf in;
	ev_timer deadline;
	char addr[AN_REACH_TEXT_MAX];
	uint8_t bin[AN_HOST_ADDR_TEXT_MAX];
	size_t binlen;
	uint64_t nonce;
	bool nonce_seen;
	bool paid;
};

static void probe_unref(struct probe *p)
{
	if (--p->refs > 0)
		return;
	an_buf_free(&p->in);
	free(p);
}

static void probe_finish(struct probe *p)
{
	struct an_autonat *a = p->a;
	if (p->done)
		return;
	p->done = true;
	ev_timer_stop(aloop(a), &p->deadline);
	if (a->probe == p)
		a->probe = NULL;
	if (p->stream) {
		struct an_stream *st = p->stream;
		p->stream = NULL;
		an_stream_reset(st);
	}
	an_host_conn_unref(p->conn);
	p->conn = NULL;
	p->a = NULL;
	probe_unref(p);
}

static const struct an_stream_handler probe_handler;

static int probe_send(struct probe *p)
{
	struct an_buf b;
	int rc;
	an_buf_init(&b, IN_MAX);
	if (p->phase == PR_V2) {
		struct an_autonat2_msg m;
		an_autonat2_init(&m, AN_AUTONAT2_DIAL_REQUEST);
		m.naddrs = 1;
		m.addrs[0].p = p->bin;
		m.addrs[0].len = p->binlen;
		m.nonce = p->nonce;
		rc = an_autonat2_encode(&m, &b);
	} else {
		struct an_autonat1_msg m;
		const struct an_peerid *self = an_host_peer_id(p->a->h);
		an_autonat1_init(&m, AN_AUTONAT1_DIAL);
		m.has_dial = m.has_peer = true;
		m.peer_id.p = self->bytes;
		m.peer_id.len = self->len;
		m.naddrs = 1;
		m.addrs[0].p = p->bin;
		m.addrs[0].len = p->binlen;
		rc = an_autonat1_encode(&m, &b);
	}
	if (rc == 0)
		rc = an_stream_write(p->stream, b.data, b.len);
	an_buf_free(&b);
	return rc;
}

static int probe_open_stream(struct probe *p)
{
	const char *proto = p->phase == PR_V2 ? AN_AUTONAT2_PROTO_REQUEST : AN_AUTONAT1_PROTOCOL;
	an_buf_free(&p->in);
	an_buf_init(&p->in, IN_MAX);
	p->refs++;
	int rc = an_host_stream_open(p->conn, proto, &probe_handler, p, &p->stream);
	if (rc < 0) {
		p->stream = NULL;
		probe_unref(p);
	}
	return rc;
}

static void probe_pay(struct probe *p, const struct an_autonat2_msg *m)
{
	static const uint8_t zeros[AN_AUTONAT_DATA_CHUNK];
	if (p->paid || m->addr_idx != 0 || m->num_bytes > AN_AUTONAT_DIAL_DATA_ACCEPT) {
		alog(p->a, "autonat: refused to send %llu bytes of dial data",
		     (unsigned long long)m->num_bytes);
		probe_finish(p);
		return;
	}
	p->paid = true;
	struct an_buf b;
	struct an_autonat2_msg d;
	an_autonat2_init(&d, AN_AUTONAT2_DIAL_DATA_RESPONSE);
	d.data.p = zeros;
	d.data.len = sizeof(zeros);
	an_buf_init(&b, IN_MAX);
	int rc = an_autonat2_encode(&d, &b);
	for (uint64_t sent = 0; rc == 0 && sent < m->num_bytes; sent += sizeof(zeros))
		rc = an_stream_write(p->stream, b.data, b.len);
	an_buf_free(&b);
	if (rc < 0)
		probe_finish(p);
}

static void probe_answer_v2(struct probe *p, const struct an_autonat2_msg *m)
{
	char server[128];
	char how[192];
	if (an_peerid_format(&p->server, server, sizeof(server)) < 0)
		snprintf(server, sizeof(server), "?");
	snprintf(how, sizeof(how), "v2 by %s", server);
	if (m->status == AN_AUTONAT2_OK && m->addr_idx == 0) {
		if (m->dial_status == AN_AUTONAT2_DIAL_OK && p->nonce_seen)
			record(p->a, p->addr, true, how);
		else if (m->dial_status == AN_AUTONAT2_E_DIAL_ERROR)
			record(p->a, p->addr, false, how);
		else if (m->dial_status == AN_AUTONAT2_E_DIAL_BACK_ERROR && p->nonce_seen)
			record(p->a, p->addr, true, how); /* go: the nonce came, so it is reachable */
	}
	probe_finish(p);
}

static void probe_answer_v1(struct probe *p, const struct an_autonat1_msg *m)
{
	char server[128];
	char how[192];
	if (an_peerid_format(&p->server, server, sizeof(server)) < 0)
		snprintf(server, sizeof(server), "?");
	snprintf(how, sizeof(how), "v1 by %s", server);
	if (m->type == AN_AUTONAT1_DIAL_RESPONSE && m->has_response) {
		if (m->status == AN_AUTONAT1_OK)
			record(p->a, p->addr, true, how);
		else if (m->status == AN_AUTONAT1_E_DIAL_ERROR)
			record(p->a, p->addr, false, how);
	}
	probe_finish(p);
}

static void probe_open(struct an_stream *st, void *arg)
{
	struct probe *p = arg;
	if (p->done || p->stream != st)
		return;
	if (probe_send(p) < 0) {
		p->refs++;
		probe_finish(p);
		probe_unref(p);
	}
}

static void probe_data(struct an_stream *st, const uint8_t *d, size_t n, void *arg)
{
	struct probe *p = arg;
	if (p->done || p->stream != st)
		return;
	p->refs++;
	while (!p->done) {
		const uint8_t *msg;
		size_t mlen, used;
		size_t take = p->in.max - p->in.len;
		if (take > n)
			take = n;
		if (take && an_buf_append(&p->in, d, take) < 0) {
			probe_finish(p);
			break;
		}
		d += take;
		n -= take;
		int rc = an_lp_get(p->in.data, p->in.len, AN_AUTONAT_MSG_MAX, &msg, &mlen, &used);
		if (rc == AN_EAGAIN && n == 0)
			break;
		if (rc == AN_EAGAIN) {
			probe_finish(p);
			break;
		}
		if (rc < 0) {
			probe_finish(p);
			break;
		}
		if (p->phase == PR_V2) {
			struct an_autonat2_msg m;
			if (an_autonat2_decode(msg, mlen, &m) < 0)
				probe_finish(p);
			else if (m.kind == AN_AUTONAT2_DIAL_DATA_REQUEST)
				probe_pay(p, &m);
			else if (m.kind == AN_AUTONAT2_DIAL_RESPONSE)
				probe_answer_v2(p, &m);
			else
				probe_finish(p);
		} else {
			struct an_autonat1_msg m;
			if (an_autonat1_decode(msg, mlen, &m) < 0)
				probe_finish(p);
			else
				probe_answer_v1(p, &m);
		}
		if (!p->done)
			an_buf_consume(&p->in, used);
	}
	probe_unref(p);
}

static void probe_eof(struct an_stream *st, void *arg)
{
	struct probe *p = arg;
	if (!p->done && p->stream == st)
		probe_finish(p); /* no answer: no information */
}

static void probe_close(struct an_stream *st, int err, void *arg)
{
	struct probe *p = arg;
	if (!p->done && p->stream == st) {
		p->stream = NULL;
		if (err == AN_ENOPROTO && p->phase == PR_V2) {
			p->phase = PR_V1; /* a v1-only peer */
			if (probe_open_stream(p) < 0)
				probe_finish(p);
		} else {
			probe_finish(p);
		}
	}
	probe_unref(p);
}

static const struct an_stream_handler probe_handler = {
	.on_open = probe_open, .on_data = probe_data, .on_eof = probe_eof, .on_close = probe_close};

static void probe_go(struct probe *p);
static uint64_t addr_gap(const struct an_autonat *a);
static uint64_t reprobe(const struct an_autonat *a);

static void probe_identified(void *arg, int err, const struct an_identify *m)
{
	struct probe *p = arg;
	if (p->done) {
		probe_unref(p);
		return;
	}
	struct an_autonat *a = p->a;
	char text[AN_HOST_ADDR_TEXT_MAX];
	struct sockaddr_storage ss;
	if (err == 0 && (m->present & AN_IDENTIFY_HAS_OBSERVED) &&
	    tcp_addr(m->observed_addr.data, m->observed_addr.len, text, &ss))
		candidate(a, text, true);
	probe_go(p);
	probe_unref(p); /* the identify request's */
}

/* Ask about the next address, or end p. */
static void probe_go(struct probe *p)
{
	struct an_autonat *a = p->a;
	const struct an_reach_addr *e = an_reach_next(&a->reach, now_ms(a), addr_gap(a), reprobe(a));
	if (!e || an_host_maddr_encode(e->text, p->bin, sizeof(p->bin), &p->binlen) < 0) {
		probe_finish(p);
		return;
	}
	snprintf(p->addr, sizeof(p->addr), "%s", e->text);
	randombytes_buf(&p->nonce, sizeof(p->nonce));
	if (p->nonce == 0)
		p->nonce = 1;
	p->phase = a->cfg.no_v2 ? PR_V1 : PR_V2;
	if (probe_open_stream(p) < 0)
		probe_finish(p);
}

static void probe_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	probe_finish(w->data);
}

bool an_autonat_probing(const struct an_autonat *a)
{
	return a->probe != NULL;
}

/* c's peer's slot when it was not asked in the last gap (remembered as asked now), else NULL. */
static struct server_slot *server_due(struct an_autonat *a, const struct an_peerid *id, uint64_t now,
				      uint64_t gap)
{
	struct server_slot *oldest = NULL;
	for (size_t i = 0; i < AN_AUTONAT_SERVER_SLOTS; i++) {
		struct server_slot *s = &a->servers[i];
		if (s->id.len && an_peerid_equal(&s->id, id)) {
			if (now < s->asked_ms + gap)
				return NULL;
			s->asked_ms = now;
			return s;
		}
		if (!oldest || s->asked_ms < oldest->asked_ms)
			oldest = s;
	}
	memset(oldest, 0, sizeof(*oldest));
	oldest->id = *id;
	oldest->asked_ms = now;
	return oldest;
}

static uint64_t addr_gap(const struct an_autonat *a)
{
	return (uint64_t)(a->cfg.server_gap_ms ? a->cfg.server_gap_ms : AN_AUTONAT_DEFAULT_SERVER_GAP_MS) / 4;
}

static uint64_t reprobe(const struct an_autonat *a)
{
	return (uint64_t)(a->cfg.reprobe_ms ? a->cfg.reprobe_ms : AN_AUTONAT_DEFAULT_REPROBE_MS);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct an_autonat *a = w->data;
	if (a->probe)
		return;
	uint64_t now = now_ms(a);
	const char *addrs[AN_HOST_MAX_ANNOUNCE + AN_HOST_MAX_LISTENERS];
	size_t na = an_host_addrs(a->h, addrs, sizeof(addrs) / sizeof(addrs[0]));
	for (size_t i = 0; i < na; i++)
		candidate(a, addrs[i], false);
	struct an_host_conn *conns[AN_HOST_DEFAULT_MAX_CONNS];
	size_t nc = an_host_conns(a->h, conns, AN_HOST_DEFAULT_MAX_CONNS);
	uint64_t gap = (uint64_t)(a->cfg.server_gap_ms ? a->cfg.server_gap_ms
						   : AN_AUTONAT_DEFAULT_SERVER_GAP_MS);
	for (size_t k = 0; k < nc; k++) {
		struct an_host_conn *c = conns[(a->next_conn + k) % nc];
		if (an_host_conn_relayed(c) || !an_host_conn_alive(c))
			continue;
		/* a server we know our observed address from is asked only when an address is due */
		bool due = an_reach_due(&a->reach, now, addr_gap(a), reprobe(a));
		struct server_slot *slot = NULL;
		for (size_t i = 0; i < AN_AUTONAT_SERVER_SLOTS && !due; i++)
			if (a->servers[i].identified && an_peerid_equal(&a->servers[i].id, an_host_conn_peer(c)))
				slot = &a->servers[i];
		if (slot)
			continue;
		slot = server_due(a, an_host_conn_peer(c), now, gap);
		if (!slot)
			continue;
		bool identified = slot->identified;
		slot->identified = true;
		a->next_conn = (a->next_conn + k + 1) % nc;
		struct probe *p = calloc(1, sizeof(*p));
		if (!p)
			return;
		p->a = a;
		p->refs = 2; /* a->probe, the identify request */
		p->conn = c;
		an_host_conn_ref(c);
		p->server = *an_host_conn_peer(c);
		an_buf_init(&p->in, IN_MAX);
		ev_timer_init(&p->deadline, probe_deadline,
			      (a->cfg.timeout_ms ? a->cfg.timeout_ms : AN_AUTONAT_DEFAULT_TIMEOUT_MS) / 1000.0, 0);
		p->deadline.data = p;
		ev_timer_start(aloop(a), &p->deadline);
		a->probe = p;
		if (identified) {
			p->refs--; /* no identify request */
			probe_go(p);
		} else if (an_identify_request(c, AN_IDENTIFY_TIMEOUT_MS, probe_identified, p) < 0) {
			probe_unref(p);
			probe_finish(p);
		}
		return;
	}
}

/* the client's dial-back handler: DialBack{nonce} in, DialBackResponse{OK} out */
struct dialback {
	struct dialback *next; /* the service's list, so its end can reset us */
	struct an_stream *stream;
	struct an_buf in;
	bool answered;
};

static void db_open(struct an_stream *st, void *arg)
{
	struct an_autonat *a = arg;
	struct dialback *d = calloc(1, sizeof(*d));
	if (!d) {
		an_stream_reset(st);
		return;
	}
	an_buf_init(&d->in, 64);
	d->stream = st;
	d->next = a->dialbacks;
	a->dialbacks = d;
	an_stream_set_user(st, d);
}

static void db_data(struct an_stream *st, const uint8_t *p, size_t n, void *arg)
{
	struct an_autonat *a = arg;
	struct dialback *d = an_stream_user(st);
	const uint8_t *msg;
	size_t mlen, used;
	uint64_t nonce;
	if (!d || d->answered)
		return;
	if (an_buf_append(&d->in, p, n) < 0) {
		an_stream_reset(st);
		return;
	}
	int rc = an_lp_get(d->in.data, d->in.len, 64, &msg, &mlen, &used);
	if (rc == AN_EAGAIN)
		return;
	if (rc < 0 || an_autonat2_dial_back_decode(msg, mlen, &nonce) < 0 || !a->probe ||
	    a->probe->phase != PR_V2 || nonce != a->probe->nonce) {
		an_stream_reset(st);
		return;
	}
	a->probe->nonce_seen = true;
	d->answered = true;
	struct an_buf b;
	an_buf_init(&b, 16);
	if (an_autonat2_dial_back_response_encode(0, &b) == 0 && an_stream_write(st, b.data, b.len) == 0)
		an_stream_close_write(st);
	else
		an_stream_reset(st);
	an_buf_free(&b);
}

static void db_eof(struct an_stream *st, void *arg)
{
	(void)arg;
	struct dialback *d = an_stream_user(st);
	if (d && !d->answered)
		an_stream_reset(st);
}

static void db_close(struct an_stream *st, int err, void *arg)
{
	(void)err;
	struct an_autonat *a = arg;
	struct dialback *d = an_stream_user(st);
	an_stream_set_user(st, NULL);
	if (d) {
		for (struct dialback **pp = &a->dialbacks; *pp; pp = &(*pp)->next) {
			if (*pp == d) {
				*pp = d->next;
				break;
			}
		}
		an_buf_free(&d->in);
		free(d);
	}
}

static const struct an_stream_handler db_handler = {
	.on_open = db_open, .on_data = db_data, .on_eof = db_eof, .on_close = db_close};

/* ---- lifecycle ---- */

int an_autonat_new(struct an_host *h, const struct an_autonat_config *cfg, struct an_autonat **out)
{
	struct an_autonat *a = calloc(1, sizeof(*a));
	int rc;
	if (!a)
		return -ENOMEM;
	a->h = h;
	if (cfg)
		a->cfg = *cfg;
	rc = an_autonat_set_allow(a, a->cfg.allow);
	a->cfg.allow = NULL;
	an_reach_init(&a->reach, a->cfg.min_confidence);
	if (rc == 0 && !a->cfg.no_server) {
		rc = an_host_handle(h, AN_AUTONAT2_PROTO_REQUEST, &serve_v2_handler, a);
		if (rc == 0)
			rc = an_host_handle(h, AN_AUTONAT1_PROTOCOL, &serve_v1_handler, a);
	}
	if (rc == 0 && !a->cfg.no_client)
		rc = an_host_handle(h, AN_AUTONAT2_PROTO_BACK, &db_handler, a);
	if (rc < 0) {
		an_autonat_free(a);
		return rc;
	}
	if (!a->cfg.no_client) {
		double every = (a->cfg.probe_ms ? a->cfg.probe_ms : AN_AUTONAT_DEFAULT_PROBE_MS) / 1000.0;
		ev_timer_init(&a->tick, tick_cb, every, every);
		a->tick.data = a;
		ev_timer_start(an_host_loop(h), &a->tick);
	}
	*out = a;
	return 0;
}

void an_autonat_free(struct an_autonat *a)
{
	if (!a)
		return;
	ev_timer_stop(an_host_loop(a->h), &a->tick);
	an_host_unhandle(a->h, AN_AUTONAT2_PROTO_REQUEST);
	an_host_unhandle(a->h, AN_AUTONAT1_PROTOCOL);
	an_host_unhandle(a->h, AN_AUTONAT2_PROTO_BACK);
	if (a->probe)
		probe_finish(a->probe);
	while (a->dialbacks)
		an_stream_reset(a->dialbacks->stream); /* db_close unlinks it */
	while (a->serving) {
		struct serve *s = a->serving;
		if (s->stream)
			an_stream_set_user(s->stream, NULL);
		struct an_stream *st = s->stream;
		s->stream = NULL;
		serve_finish(s, false);
		if (st) {
			an_stream_reset(st);
			serve_unref(s); /* the stream's ref: its on_close no longer finds s */
		}
	}
	free(a);
}
