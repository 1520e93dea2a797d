/*
 * dcutr_service.c - DCUtR hole punching on a host: B's driver and A's
 * handler, one struct punch per attempt on A and per upgrade on B.
 */
#include "relay/dcutr_service.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "encoding/multiaddr.h"
#include "relay/dcutr.h"
#include "util/buf.h"
#include "util/error.h"

#define PEER_ADDRS_MAX 8 /* of the peer's addresses, the TCP ones we dial */

enum punch_phase {
	PH_CONNECT,  /* B: CONNECT sent, waiting for A's; A: waiting for B's */
	PH_SYNC,     /* A: CONNECT answered, waiting for SYNC */
	PH_WAIT,     /* B: SYNC sent, waiting RTT/2 before dialing */
	PH_DIALING   /* dials out; polling for a direct connection */
};

struct punch {
	struct an_dcutr_service *svc; /* NULL once the service is gone */
	struct punch *next;
	bool initiator;               /* B */
	bool done;                    /* reported (or abandoned) */
	int refs;                     /* the service's list, the stream, each dial */
	int attempt;
	enum punch_phase phase;
	struct an_host_conn *relayed; /* referenced until done */
	struct an_peerid peer;
	struct an_stream *stream;     /* borrowed while open */
	struct an_buf in;             /* capped at one LP frame */
	uint64_t sent_ms;             /* B: when CONNECT went out */
	ev_timer deadline, delay, poll;
	size_t naddrs;
	char addrs[PEER_ADDRS_MAX][AN_HOST_ADDR_TEXT_MAX];
};

struct an_dcutr_service {
	struct an_host *h;
	struct an_dcutr_config cfg;
	struct punch *punches;
	size_t nextra;
	char extra[AN_DCUTR_MAX_EXTRA_ADDRS][AN_HOST_ADDR_TEXT_MAX];
};

static void punch_unref(struct punch *p)
{
	if (--p->refs > 0)
		return;
	an_buf_free(&p->in);
	free(p);
}

static struct ev_loop *punch_loop(struct punch *p)
{
	return an_host_loop(p->svc->h);
}

static void punch_stop_timers(struct punch *p)
{
	struct ev_loop *loop = punch_loop(p);
	ev_timer_stop(loop, &p->deadline);
	ev_timer_stop(loop, &p->delay);
	ev_timer_stop(loop, &p->poll);
}

/* Drop the stream without waiting for it (its on_close releases its ref). */
static void punch_drop_stream(struct punch *p)
{
	struct an_stream *s = p->stream;
	p->stream = NULL;
	if (s)
		an_stream_reset(s);
}

/* Leave the service's list and drop its ref; p may be freed. */
static void punch_unlink(struct punch *p)
{
	struct an_dcutr_service *svc = p->svc;
	for (struct punch **pp = &svc->punches; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->next = NULL;
	punch_unref(p);
}

/* The one end of a punch: report (direct or err), release everything. */
static void punch_finish(struct punch *p, struct an_host_conn *direct, int err)
{
	if (p->done)
		return;
	p->done = true;
	struct an_dcutr_service *svc = p->svc;
	punch_stop_timers(p);
	p->refs++; /* p stays ours through the report */
	punch_drop_stream(p);
	struct an_host_conn *relayed = p->relayed;
	p->relayed = NULL;
	punch_unlink(p);
	if (svc->cfg.report)
		svc->cfg.report(svc->cfg.arg, &p->peer, direct, err);
	an_host_conn_unref(relayed);
	p->svc = NULL;
	punch_unref(p);
}

/* An established direct connection to p's peer, or NULL. */
static struct an_host_conn *find_direct(struct punch *p)
{
	struct an_host_conn *conns[AN_HOST_DEFAULT_MAX_CONNS];
	size_t n = an_host_conns(p->svc->h, conns, AN_HOST_DEFAULT_MAX_CONNS);
	for (size_t i = 0; i < n; i++)
		if (!an_host_conn_relayed(conns[i]) &&
		    an_peerid_equal(an_host_conn_peer(conns[i]), &p->peer))
			return conns[i];
	return NULL;
}

static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct punch *p = w->data;
	struct an_host_conn *c = find_direct(p);
	if (c)
		punch_finish(p, c, 0);
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct punch *p = arg;
	if (err == 0 && c) {
		if (!an_peerid_equal(an_host_conn_peer(c), &p->peer))
			an_host_conn_close(c); /* someone else answers at that address */
		else if (p->svc && !p->done && !an_host_conn_relayed(c))
			punch_finish(p, c, 0);
	}
	/* failures: the peer's dial or another address may still work; the
	 * deadline ends the attempt */
	punch_unref(p);
}

/* Dial every address the peer sent (without /p2p: see the header). */
static void punch_dial(struct punch *p)
{
	p->phase = PH_DIALING;
	for (size_t i = 0; i < p->naddrs && !p->done; i++) {
		p->refs++;
		if (an_host_dial(p->svc->h, p->addrs[i], p->svc->cfg.attempt_ms, dial_cb, p) < 0)
			punch_unref(p);
	}
	if (!p->done)
		ev_timer_start(punch_loop(p), &p->poll);
}

static void delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	punch_dial(w->data);
}

/* Our listen port for family (the first of the host's addresses), or 0. */
static in_port_t our_port(struct an_host *h, sa_family_t family)
{
	const char *addrs[AN_HOST_MAX_ANNOUNCE + AN_HOST_MAX_LISTENERS];
	size_t n = an_host_addrs(h, addrs, sizeof(addrs) / sizeof(addrs[0]));
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t sl;
		struct an_peerid id;
		bool has_id;
		if (an_host_maddr_split(addrs[i], &ss, &sl, &id, &has_id) < 0 || ss.ss_family != family)
			continue;
		if (family == AF_INET)
			return ((struct sockaddr_in *)&ss)->sin_port;
		return ((struct sockaddr_in6 *)&ss)->sin6_port;
	}
	return 0;
}

/*
 * One SYN with a small TTL from our listen port to text (see prime_ttl in
 * the header).  The socket is closed at once: closing in SYN_SENT sends
 * nothing, and A's SYN then finds our listener.  Best effort: errors are
 * ignored (the attempt's deadline tells).
 */
static void prime_one(struct punch *p, const char *text)
{
	struct sockaddr_storage ss, local;
	socklen_t sl;
	struct an_peerid id;
	bool has_id;
	int one = 1, ttl = p->svc->cfg.prime_ttl;
	if (an_host_maddr_split(text, &ss, &sl, &id, &has_id) < 0)
		return;
	in_port_t port = our_port(p->svc->h, ss.ss_family);
	if (!port)
		return;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	memset(&local, 0, sizeof(local));
	local.ss_family = ss.ss_family;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = port;
	else
		((struct sockaddr_in6 *)&local)->sin6_port = port;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0 &&
	    (ss.ss_family == AF_INET ? setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl))
				     : setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl))) == 0 &&
	    bind(fd, (struct sockaddr *)&local, ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
									: sizeof(struct sockaddr_in6)) == 0)
		(void)connect(fd, (struct sockaddr *)&ss, sl); /* the SYN leaves here */
	close(fd);
}

static int punch_start_attempt(struct punch *p);

/* This attempt failed with err: B tries again while it may, else the end. */
static void punch_attempt_failed(struct punch *p, int err)
{
	if (p->done)
		return;
	if (p->initiator && p->attempt < p->svc->cfg.attempts && an_host_conn_alive(p->relayed)) {
		punch_stop_timers(p);
		punch_drop_stream(p);
		int rc = punch_start_attempt(p);
		if (rc == 0)
			return;
		err = rc;
	}
	if (!an_host_conn_alive(p->relayed) && err == -ETIMEDOUT)
		err = AN_ECLOSED;
	punch_finish(p, NULL, err);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	punch_attempt_failed(w->data, -ETIMEDOUT);
}

/* Our addresses as one CONNECT frame onto the stream. */
static int send_connect(struct punch *p)
{
	struct an_dcutr_service *svc = p->svc;
	const char *addrs[AN_HOST_MAX_ANNOUNCE + AN_HOST_MAX_LISTENERS];
	size_t n = an_host_addrs(svc->h, addrs, sizeof(addrs) / sizeof(addrs[0]));
	uint8_t bins[AN_DCUTR_MAX_ADDRS][AN_MULTIADDR_MAX];
	struct an_dcutr_msg m;
	struct an_buf out;
	int rc;
	an_dcutr_msg_init(&m, AN_DCUTR_CONNECT);
	an_buf_init(&out, AN_DCUTR_MSG_MAX + 8);
	for (size_t i = 0; i < n + svc->nextra && m.naddrs < AN_DCUTR_MAX_ADDRS; i++) {
		const char *t = i < n ? addrs[i] : svc->extra[i - n];
		size_t len;
		if (an_host_maddr_encode(t, bins[m.naddrs], AN_MULTIADDR_MAX, &len) < 0)
			continue;
		struct an_dcutr_addr a = {bins[m.naddrs], len};
		if (!an_dcutr_addr_tcp(&a))
			continue;
		an_dcutr_msg_add_addr(&m, a.p, a.len);
	}
	if (m.naddrs == 0) {
		rc = -EADDRNOTAVAIL; /* nothing to punch to: not listening */
		goto out;
	}
	if ((rc = an_dcutr_msg_encode(&m, &out)) < 0)
		goto out;
	rc = an_stream_write(p->stream, out.data, out.len);
out:
	an_buf_free(&out);
	return rc;
}

static int send_sync(struct punch *p)
{
	struct an_dcutr_msg m;
	struct an_buf out;
	an_dcutr_msg_init(&m, AN_DCUTR_SYNC);
	an_buf_init(&out, 16);
	int rc = an_dcutr_msg_encode(&m, &out);
	if (rc == 0)
		rc = an_stream_write(p->stream, out.data, out.len);
	an_buf_free(&out);
	return rc;
}

/* The TCP addresses of a CONNECT into p->addrs; AN_EPROTO when none. */
static int take_addrs(struct punch *p, const struct an_dcutr_msg *m)
{
	p->naddrs = 0;
	for (size_t i = 0; i < m->naddrs && p->naddrs < PEER_ADDRS_MAX; i++) {
		char *t = p->addrs[p->naddrs];
		if (!an_dcutr_addr_tcp(&m->addrs[i]) ||
		    an_host_maddr_format(m->addrs[i].p, m->addrs[i].len, t, AN_HOST_ADDR_TEXT_MAX) < 0)
			continue;
		char *id = strstr(t, "/p2p/");
		if (id)
			*id = '\0';
		p->naddrs++;
	}
	return p->naddrs ? 0 : AN_EPROTO;
}

/* One whole message m arrived on p's stream. */
static int punch_message(struct punch *p, const struct an_dcutr_msg *m)
{
	int rc;
	if (p->initiator) {
		if (p->phase != PH_CONNECT || m->type != AN_DCUTR_CONNECT)
			return AN_EPROTO;
		if ((rc = take_addrs(p, m)) < 0)
			return rc;
		uint64_t now = an_host_now_ms(p->svc->h);
		double rtt_s = (double)(now - p->sent_ms) / 1000.0;
		if (p->svc->cfg.prime_ttl > 0)
			for (size_t i = 0; i < p->naddrs; i++)
				prime_one(p, p->addrs[i]);
		if ((rc = send_sync(p)) < 0)
			return rc;
		an_stream_close_write(p->stream);
		if (p->svc->cfg.prime_ttl > 0) { /* no dial: wait for A's */
			p->phase = PH_DIALING;
			ev_timer_start(punch_loop(p), &p->poll);
			return 0;
		}
		p->phase = PH_WAIT;
		ev_timer_set(&p->delay, rtt_s / 2, 0);
		ev_timer_start(punch_loop(p), &p->delay);
		return 0;
	}
	if (p->phase == PH_CONNECT) {
		if (m->type != AN_DCUTR_CONNECT)
			return AN_EPROTO;
		if ((rc = take_addrs(p, m)) < 0 || (rc = send_connect(p)) < 0)
			return rc;
		p->phase = PH_SYNC;
		return 0;
	}
	if (p->phase == PH_SYNC && m->type == AN_DCUTR_SYNC) {
		an_stream_close_write(p->stream);
		punch_dial(p);
		return 0;
	}
	return AN_EPROTO;
}

static void punch_data(struct punch *p, const uint8_t *d, size_t n)
{
	if (p->done || p->phase == PH_WAIT || p->phase == PH_DIALING)
		return; /* nothing more is expected; ignore */
	int rc = an_buf_append(&p->in, d, n);
	while (rc == 0 && p->in.len && !p->done && p->phase != PH_DIALING && p->phase != PH_WAIT) {
		struct an_dcutr_msg m;
		size_t used;
		rc = an_dcutr_msg_read(p->in.data, p->in.len, &m, &used);
		if (rc == AN_EAGAIN)
			return;
		if (rc == 0) {
			rc = punch_message(p, &m);
			an_buf_consume(&p->in, used);
		}
	}
	if (rc < 0)
		punch_attempt_failed(p, rc == AN_ETOOBIG || rc == AN_EMALFORMED ||
					rc == AN_ETRUNCATED || rc == AN_EFIELD ? AN_EPROTO : rc);
}

/* The stream ended: early (before the dials) it ends the attempt. */
static void punch_stream_closed(struct punch *p, struct an_stream *s, int err)
{
	if (p->stream == s) {
		p->stream = NULL;
		if (p->svc && !p->done && (p->phase == PH_CONNECT || p->phase == PH_SYNC))
			punch_attempt_failed(p, err ? err : AN_ECLOSED);
	}
	punch_unref(p);
}

/* ---- B: outbound streams, arg is the punch ---- */

static void out_open(struct an_stream *s, void *arg)
{
	struct punch *p = arg;
	if (p->stream != s || p->done)
		return;
	int rc = send_connect(p);
	p->sent_ms = an_host_now_ms(p->svc->h);
	if (rc < 0)
		punch_attempt_failed(p, rc);
}

static void out_data(struct an_stream *s, const uint8_t *d, size_t n, void *arg)
{
	struct punch *p = arg;
	if (p->stream == s)
		punch_data(p, d, n);
}

static void out_close(struct an_stream *s, int err, void *arg)
{
	punch_stream_closed(arg, s, err);
}

static const struct an_stream_handler out_handler = {
	.on_open = out_open, .on_data = out_data, .on_close = out_close};

static void punch_init_timers(struct punch *p)
{
	ev_timer_init(&p->deadline, deadline_cb, 0, 0);
	ev_timer_init(&p->delay, delay_cb, 0, 0);
	ev_timer_init(&p->poll, poll_cb, AN_DCUTR_POLL_MS / 1000.0, AN_DCUTR_POLL_MS / 1000.0);
	p->deadline.data = p->delay.data = p->poll.data = p;
}

/* A new punch on relayed (referenced), in svc's list (its one ref). */
static struct punch *punch_new(struct an_dcutr_service *svc, struct an_host_conn *relayed,
			       bool initiator)
{
	struct punch *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->svc = svc;
	p->initiator = initiator;
	p->refs = 1;
	p->peer = *an_host_conn_peer(relayed);
	p->relayed = relayed;
	an_host_conn_ref(relayed);
	an_buf_init(&p->in, AN_DCUTR_MSG_MAX + 8);
	punch_init_timers(p);
	p->next = svc->punches;
	svc->punches = p;
	return p;
}

static int punch_start_attempt(struct punch *p)
{
	struct an_stream *s = NULL;
	p->attempt++;
	p->phase = PH_CONNECT;
	an_buf_reset(&p->in);
	p->refs++; /* the stream's, released by out_close */
	int rc = an_host_stream_open(p->relayed, AN_DCUTR_PROTOCOL, &out_handler, p, &s);
	if (rc < 0) {
		p->refs--;
		return rc;
	}
	p->stream = s;
	ev_timer_set(&p->deadline, p->svc->cfg.attempt_ms / 1000.0, 0);
	ev_timer_start(punch_loop(p), &p->deadline);
	return 0;
}

/* ---- A: inbound streams, arg is the service, the punch is the user ---- */

static void in_open(struct an_stream *s, void *arg)
{
	struct an_dcutr_service *svc = arg;
	struct an_host_conn *c = an_stream_conn(s);
	if (!an_host_conn_relayed(c)) { /* a direct connection needs no punch */
		an_stream_reset(s);
		return;
	}
	struct punch *p = punch_new(svc, c, false);
	if (!p) {
		an_stream_reset(s);
		return;
	}
	p->attempt = 1;
	p->refs++; /* the stream's */
	p->stream = s;
	an_stream_set_user(s, p);
	ev_timer_set(&p->deadline, svc->cfg.attempt_ms / 1000.0, 0);
	ev_timer_start(punch_loop(p), &p->deadline);
}

static void in_data(struct an_stream *s, const uint8_t *d, size_t n, void *arg)
{
	(void)arg;
	struct punch *p = an_stream_user(s);
	if (p && p->stream == s)
		punch_data(p, d, n);
}

static void in_close(struct an_stream *s, int err, void *arg)
{
	(void)arg;
	struct punch *p = an_stream_user(s);
	if (p)
		punch_stream_closed(p, s, err);
}

static const struct an_stream_handler in_handler = {
	.on_open = in_open, .on_data = in_data, .on_close = in_close};

/* ---- public ---- */

int an_dcutr_service_new(struct an_host *h, const struct an_dcutr_config *cfg,
			 struct an_dcutr_service **out)
{
	struct an_dcutr_service *s = calloc(1, sizeof(*s));
	int rc;
	if (!s)
		return -ENOMEM;
	s->h = h;
	if (cfg)
		s->cfg = *cfg;
	if (s->cfg.attempts <= 0)
		s->cfg.attempts = AN_DCUTR_DEFAULT_ATTEMPTS;
	if (s->cfg.attempt_ms <= 0)
		s->cfg.attempt_ms = AN_DCUTR_DEFAULT_ATTEMPT_MS;
	if ((rc = an_host_handle(h, AN_DCUTR_PROTOCOL, &in_handler, s)) < 0) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void an_dcutr_service_free(struct an_dcutr_service *s)
{
	if (!s)
		return;
	an_host_unhandle(s->h, AN_DCUTR_PROTOCOL);
	while (s->punches) {
		struct punch *p = s->punches;
		s->punches = p->next;
		p->next = NULL;
		p->done = true; /* no report */
		punch_stop_timers(p);
		struct an_stream *st = p->stream;
		p->stream = NULL;
		an_host_conn_unref(p->relayed);
		p->relayed = NULL;
		p->svc = NULL; /* pending dials and streams find no service */
		if (st)
			an_stream_reset(st); /* its on_close drops the stream's ref */
		punch_unref(p);      /* the list's */
	}
	free(s);
}

int an_dcutr_service_add_addr(struct an_dcutr_service *s, const char *maddr)
{
	uint8_t bin[AN_MULTIADDR_MAX];
	size_t len;
	if (s->nextra >= AN_DCUTR_MAX_EXTRA_ADDRS)
		return AN_ELIMIT;
	if (strlen(maddr) >= AN_HOST_ADDR_TEXT_MAX ||
	    an_host_maddr_encode(maddr, bin, sizeof(bin), &len) < 0)
		return AN_EMALFORMED;
	struct an_dcutr_addr a = {bin, len};
	if (!an_dcutr_addr_tcp(&a))
		return AN_EMALFORMED;
	memcpy(s->extra[s->nextra++], maddr, strlen(maddr) + 1);
	return 0;
}

int an_dcutr_upgrade(struct an_dcutr_service *s, struct an_host_conn *relayed)
{
	if (!an_host_conn_relayed(relayed))
		return -EINVAL;
	if (!an_host_conn_alive(relayed))
		return AN_ECLOSED;
	struct punch *p = punch_new(s, relayed, true);
	if (!p)
		return -ENOMEM;
	int rc = punch_start_attempt(p);
	if (rc < 0) {
		p->done = true;
		an_host_conn_unref(p->relayed);
		p->relayed = NULL;
		punch_unlink(p);
	}
	return rc;
}

size_t an_dcutr_active(const struct an_dcutr_service *s)
{
	size_t n = 0;
	for (const struct punch *p = s->punches; p; p = p->next)
		n++;
	return n;
}
