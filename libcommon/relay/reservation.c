/*
 * reservation.c - keeping relay reservations and accepting circuits (see
 * reservation.h).
 *
 * One struct relay per relay, each with a state, its connection (a
 * reference) and two timers: "next" (the next attempt, or the refresh)
 * and "check" (is the connection still alive).  A dial or RESERVE under
 * way holds the relay (busy); an_rsv_free orphans a busy relay (r NULL)
 * and the step's callback frees it.
 */
#include "relay/reservation.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/multiaddr.h"
#include "relay/relay_dial.h"
#include "util/error.h"

enum rstate { R_WAIT, R_DIALING, R_RESERVING, R_RESERVED };

struct relay {
	struct an_rsv *r;   /* NULL once orphaned by an_rsv_free */
	size_t idx;
	char addr[AN_HOST_ADDR_TEXT_MAX];
	struct an_peerid id;
	enum rstate state;
	bool busy;          /* a dial or RESERVE callback is due */
	bool settled;       /* the first attempt was answered */
	bool active;        /* a reservation is live */
	struct an_host_conn *conn;
	ev_timer next, check;
	int backoff_ms;
	uint64_t expire;
	size_t naddrs;
	char addrs[AN_RELAY_MAX_ADDRS][AN_HOST_ADDR_TEXT_MAX];
};

struct an_rsv {
	struct an_host *h;
	struct an_rsv_config cfg;
	struct an_relay_stop_service stop;
	struct relay *relays[AN_RSV_MAX_RELAYS];
	size_t n;
	bool stopped;
};

static struct ev_loop *loop_of(const struct relay *rl)
{
	return an_host_loop(rl->r->h);
}

static void report(struct relay *rl, enum an_rsv_event ev, int err, uint32_t status, int retry_ms)
{
	struct an_rsv *r = rl->r;
	struct an_rsv_report rep = {.event = ev, .relay = rl->idx, .relay_addr = rl->addr,
				    .err = err, .status = status, .expire = rl->expire,
				    .retry_ms = retry_ms};
	if (r && !r->stopped && r->cfg.report)
		r->cfg.report(r->cfg.arg, &rep);
}

static void drop_conn(struct relay *rl)
{
	if (rl->conn)
		an_host_conn_unref(rl->conn);
	rl->conn = NULL;
	rl->active = false;
	rl->naddrs = 0;
}

/* Try again after the backoff (which then doubles). */
static void retry(struct relay *rl, enum an_rsv_event ev, int err, uint32_t status)
{
	struct an_rsv *r = rl->r;
	int wait = rl->backoff_ms;
	drop_conn(rl);
	rl->state = R_WAIT;
	rl->settled = true;
	rl->backoff_ms = wait >= r->cfg.retry_max_ms / 2 ? r->cfg.retry_max_ms : wait * 2;
	ev_timer_stop(loop_of(rl), &rl->check);
	ev_timer_stop(loop_of(rl), &rl->next);
	ev_timer_set(&rl->next, wait / 1000.0, 0.);
	ev_timer_start(loop_of(rl), &rl->next);
	report(rl, ev, err, status, wait);
}

/*
 * A dial or RESERVE of rl's was answered: rl is no longer busy.  Whether
 * the answer is still wanted: not once an_rsv_stop ran, nor once an_rsv_free
 * orphaned rl (freed here, so the caller must not touch it).
 */
static bool answer_wanted(struct relay *rl)
{
	rl->busy = false;
	if (!rl->r) {
		free(rl);
		return false;
	}
	return !rl->r->stopped;
}

static void reserve_cb(void *arg, int err, const struct an_relay_reservation_info *info);

static void send_reserve(struct relay *rl)
{
	int rc = an_relay_reserve(rl->conn, rl->r->cfg.timeout_ms, reserve_cb, rl);
	if (rc < 0) {
		retry(rl, AN_RSV_FAILED, rc, 0);
		return;
	}
	rl->busy = true;
	rl->state = rl->state == R_RESERVED ? R_RESERVED : R_RESERVING;
}

static void reserve_cb(void *arg, int err, const struct an_relay_reservation_info *info)
{
	struct relay *rl = arg;
	bool was_active;
	if (!answer_wanted(rl))
		return;
	if (err == 0 && info->status != AN_RELAY_OK) {
		retry(rl, AN_RSV_FAILED, AN_EPROTO, info->status);
		return;
	}
	if (err < 0) {
		retry(rl, rl->conn && !an_host_conn_alive(rl->conn) ? AN_RSV_LOST : AN_RSV_FAILED, err, 0);
		return;
	}
	was_active = rl->active;
	rl->active = rl->settled = true;
	rl->state = R_RESERVED;
	rl->backoff_ms = rl->r->cfg.retry_min_ms;
	rl->expire = info->expire;
	rl->naddrs = 0;
	for (size_t i = 0; i < info->naddrs && i < AN_RELAY_MAX_ADDRS; i++) {
		int n = snprintf(rl->addrs[rl->naddrs], sizeof(rl->addrs[0]), "%s/p2p-circuit",
				 info->addrs[i]);
		if (n > 0 && (size_t)n < sizeof(rl->addrs[0]))
			rl->naddrs++;
	}
	/* Refresh at three quarters of the slot's remaining life (at least 1 s on). */
	double left = (double)info->expire - ev_now(loop_of(rl));
	ev_timer_stop(loop_of(rl), &rl->next);
	ev_timer_set(&rl->next, left > 4 ? left * 3 / 4 : 1, 0.);
	ev_timer_start(loop_of(rl), &rl->next);
	report(rl, was_active ? AN_RSV_REFRESHED : AN_RSV_RESERVED, 0, 0, 0);
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct relay *rl = arg;
	if (!answer_wanted(rl))
		return;
	if (err < 0) {
		retry(rl, AN_RSV_FAILED, err, 0);
		return;
	}
	an_host_conn_ref(c);
	rl->conn = c;
	ev_timer_stop(loop_of(rl), &rl->check);
	ev_timer_set(&rl->check, rl->r->cfg.check_ms / 1000.0, rl->r->cfg.check_ms / 1000.0);
	ev_timer_start(loop_of(rl), &rl->check);
	send_reserve(rl);
}

static void start_dial(struct relay *rl)
{
	int rc = an_host_dial(rl->r->h, rl->addr, rl->r->cfg.timeout_ms, dial_cb, rl);
	if (rc < 0) {
		retry(rl, AN_RSV_FAILED, rc, 0);
		return;
	}
	rl->busy = true;
	rl->state = R_DIALING;
}

/* The next attempt, or the refresh of a live reservation. */
static void next_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct relay *rl = (struct relay *)((char *)w - offsetof(struct relay, next));
	if (rl->r->stopped || rl->busy)
		return;
	if (rl->conn && an_host_conn_alive(rl->conn))
		send_reserve(rl);
	else
		start_dial(rl);
}

static void check_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	struct relay *rl = (struct relay *)((char *)w - offsetof(struct relay, check));
	if (rl->r->stopped || rl->busy || !rl->conn || an_host_conn_alive(rl->conn))
		return;
	/* the relay went away (restart, network): start over right after a backoff */
	retry(rl, AN_RSV_LOST, AN_ECLOSED, 0);
}

/* ---- circuits ---- */

static bool accept_cb(void *arg, struct an_stream *s, const struct an_peerid *src,
		      const struct an_relay_limit *limit, const struct an_stream_handler **handler,
		      void **handler_arg)
{
	(void)limit;
	struct an_rsv *r = arg;
	struct an_host_conn *rc = an_stream_conn(s);
	const struct an_peerid *relay = an_host_conn_peer(rc);
	char name[AN_HOST_ADDR_TEXT_MAX];
	bool ours = false;
	for (size_t i = 0; i < r->n && !ours; i++)
		ours = an_peerid_equal(&r->relays[i]->id, relay);
	if (!ours || an_host_conn_relayed(rc) || an_relay_circuit_name(rc, name, sizeof(name)) < 0)
		return false;
	return an_host_conn_over_stream(r->h, s, false, src, name, r->cfg.timeout_ms, NULL, NULL,
					handler, handler_arg) == 0;
}

/* ---- API ---- */

int an_rsv_new(struct an_host *h, const struct an_rsv_config *cfg, struct an_rsv **out)
{
	struct an_rsv *r = calloc(1, sizeof(*r));
	int rc;
	if (!r)
		return -ENOMEM;
	r->h = h;
	if (cfg)
		r->cfg = *cfg;
	if (r->cfg.timeout_ms <= 0)
		r->cfg.timeout_ms = 10000;
	if (r->cfg.retry_min_ms <= 0)
		r->cfg.retry_min_ms = AN_RSV_DEFAULT_RETRY_MIN_MS;
	if (r->cfg.retry_max_ms < r->cfg.retry_min_ms)
		r->cfg.retry_max_ms = r->cfg.retry_min_ms > AN_RSV_DEFAULT_RETRY_MAX_MS
					      ? r->cfg.retry_min_ms : AN_RSV_DEFAULT_RETRY_MAX_MS;
	if (r->cfg.check_ms <= 0)
		r->cfg.check_ms = AN_RSV_DEFAULT_CHECK_MS;
	r->stop.accept = accept_cb;
	r->stop.arg = r;
	r->stop.timeout_ms = r->cfg.timeout_ms;
	if ((rc = an_relay_stop_serve(h, &r->stop)) < 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int an_rsv_add(struct an_rsv *r, const char *maddr)
{
	struct an_multiaddr ma, rest;
	struct relay *rl;
	if (r->n >= AN_RSV_MAX_RELAYS)
		return AN_ELIMIT;
	if (strlen(maddr) >= AN_HOST_ADDR_TEXT_MAX || an_relay_addr_is_circuit(maddr) ||
	    an_multiaddr_parse(maddr, &ma) < 0)
		return AN_EMALFORMED;
	if (!(rl = calloc(1, sizeof(*rl))))
		return -ENOMEM;
	if (an_multiaddr_split_p2p(&ma, &rest, &rl->id) < 0) {
		free(rl);
		return AN_EMALFORMED;
	}
	rl->r = r;
	rl->idx = r->n;
	snprintf(rl->addr, sizeof(rl->addr), "%s", maddr);
	rl->backoff_ms = r->cfg.retry_min_ms;
	ev_timer_init(&rl->next, next_cb, 0., 0.);
	ev_timer_init(&rl->check, check_cb, 1., 1.);
	ev_timer_start(an_host_loop(r->h), &rl->next); /* the first attempt, from the loop */
	r->relays[r->n++] = rl;
	return 0;
}

void an_rsv_stop(struct an_rsv *r)
{
	if (!r)
		return;
	r->stopped = true;
	for (size_t i = 0; i < r->n; i++) {
		ev_timer_stop(an_host_loop(r->h), &r->relays[i]->next);
		ev_timer_stop(an_host_loop(r->h), &r->relays[i]->check);
	}
}

void an_rsv_free(struct an_rsv *r)
{
	if (!r)
		return;
	an_rsv_stop(r);
	an_relay_stop_unserve(r->h, &r->stop);
	for (size_t i = 0; i < r->n; i++) {
		struct relay *rl = r->relays[i];
		drop_conn(rl);
		if (rl->busy)
			rl->r = NULL; /* the pending callback frees it */
		else
			free(rl);
	}
	free(r);
}

size_t an_rsv_count(const struct an_rsv *r)
{
	return r ? r->n : 0;
}

/* A reservation is live while unexpired and its connection is up. */
static bool live(const struct relay *rl)
{
	return rl->active && rl->conn && an_host_conn_alive(rl->conn) &&
	       (double)rl->expire > ev_now(an_host_loop(rl->r->h));
}

size_t an_rsv_active(const struct an_rsv *r)
{
	size_t k = 0;
	for (size_t i = 0; r && i < r->n; i++)
		k += live(r->relays[i]);
	return k;
}

bool an_rsv_settled(const struct an_rsv *r)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (!r->relays[i]->settled)
			return false;
	return true;
}

size_t an_rsv_addrs(const struct an_rsv *r, const char **out, size_t max)
{
	size_t k = 0;
	for (size_t i = 0; r && i < r->n; i++) {
		const struct relay *rl = r->relays[i];
		if (!live(rl))
			continue;
		for (size_t j = 0; j < rl->naddrs && k < max; j++)
			out[k++] = rl->addrs[j];
	}
	return k;
}
