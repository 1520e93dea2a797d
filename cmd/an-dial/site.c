/* site.c - an-dial's host, name backend and site cache (see dial.h). */
#include "dial.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "relay/relay_dial.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/error.h"

enum site_state { S_NEW, S_RESOLVING, S_CONNECTING, S_READY, S_FAILED };

static char refused_mark;
#define REFUSED ((struct site *)(void *)&refused_mark) /* a wait in dial.refused */

#define ADDR_TEXT (AN_RECORD_ADDR_MAX + AN_PEERID_TEXT_MAX + 8)

struct site {
	struct site *next;
	struct dial *d;
	struct an_name name;
	char peerhash[AN_PEERHASH_LEN + 1]; /* resolved (a bare name's from its pin) */
	char root_name[AN_RECORD_FQDN_MAX + 1]; /* its root record's name, once resolved */
	char why[DIAL_WHY_MAX];             /* detail of the failure (S_FAILED) */
	enum site_state state;
	ev_tstamp resolved_at, failed_at;
	int err;
	bool have_publisher;
	struct an_peerid publisher;
	char peer_text[AN_PEERID_TEXT_MAX];
	char addrs[AN_RECORD_ADDRS_MAX][ADDR_TEXT];
	size_t n_addrs, next_addr;
	struct an_host_conn *conn; /* referenced while held */
	struct site_wait *waiters;
	bool orphan;               /* dial_free ran while its dial was under way */
	bool await_node;           /* resolving: waits for the node being opened */
	struct an_resolve_op *rop;
	ev_timer kick; /* delivers results from the loop */
};

static void debug_log(void *arg, const char *msg)
{
	(void)arg;
	if (getenv("AN_DEBUG"))
		cli_warn("%s", msg);
}

/* Waits refused without a site (cache full, out of memory): AN_ELIMIT. */
static void refuse_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct dial *d = (struct dial *)((char *)t - offsetof(struct dial, refuse_kick));
	struct site_wait *w;
	(void)loop;
	(void)revents;
	while ((w = d->refused)) {
		d->refused = w->next;
		w->next = NULL;
		w->site = NULL;
		w->cb(w, AN_ELIMIT, NULL);
	}
}

int dial_init(struct dial *d, const struct dial_cfg *cfg)
{
	struct an_host_config hc = {0};
	int rc;
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->loop = ev_default_loop(0);
	ev_timer_init(&d->refuse_kick, refuse_cb, 0., 0.);
	rc = cfg->keyfile ? an_privkey_load(cfg->keyfile, &d->key) : an_privkey_generate(&d->key);
	if (rc < 0) {
		cli_warn("unable to load key '%s': %s", cfg->keyfile ? cfg->keyfile : "", an_strerror(rc));
		return rc;
	}
	hc.key = d->key;
	hc.agent_version = "an-dial/0.1.0";
	hc.log = debug_log;
	rc = an_host_new(d->loop, &hc, &d->host);
	if (rc == 0)
		rc = an_ping_service_register(d->host);
	if (rc == 0)
		rc = an_identify_service_register(d->host);
	if (rc < 0)
		cli_warn("unable to start a host: %s", an_strerror(rc));
	return rc;
}

static bool busy(enum site_state st)
{
	return st == S_RESOLVING || st == S_CONNECTING;
}

/* Every state change goes through here: d->n_busy counts the lookups under way. */
static void set_state(struct site *s, enum site_state st)
{
	if (busy(s->state) && !busy(st))
		s->d->n_busy--;
	else if (!busy(s->state) && busy(st))
		s->d->n_busy++;
	s->state = st;
}

static void site_free(struct site *s)
{
	set_state(s, S_NEW);
	ev_timer_stop(s->d->loop, &s->kick);
	an_resolve_cancel(s->rop);
	if (s->conn)
		an_host_conn_unref(s->conn);
	free(s);
}

void dial_free(struct dial *d)
{
	struct site *s, *next, *orphans = NULL;
	/* sites first: their connections are the host's; a site whose dial is
	 * under way waits for the host to end it (its callback is always called) */
	for (s = d->sites; s; s = next) {
		next = s->next;
		if (s->state == S_CONNECTING) {
			s->orphan = true;
			s->waiters = NULL;
			ev_timer_stop(d->loop, &s->kick);
			s->next = orphans;
			orphans = s;
			continue;
		}
		site_free(s);
	}
	d->sites = NULL;
	d->n_sites = 0;
	ev_timer_stop(d->loop, &d->refuse_kick);
	d->refused = NULL;
	if (d->node)
		an_node_close(d->node);
	d->node = NULL;
	if (d->host) {
		an_host_shutdown(d->host, 500);
		ev_run(d->loop, 0);
	}
	an_host_free(d->host);
	for (s = orphans; s; s = next) {
		next = s->next;
		site_free(s);
	}
	an_privkey_free(d->key);
	d->host = NULL;
	d->key = NULL;
}

static struct site *site_find(struct dial *d, const struct an_name *name)
{
	for (struct site *s = d->sites; s; s = s->next)
		if (strcmp(s->name.peerhash, name->peerhash) == 0 && strcmp(s->name.fqdn, name->fqdn) == 0)
			return s;
	return NULL;
}

static void why(struct site *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(struct site *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
}

/* The site drops its connection (another request may still hold the stream). */
static void drop_conn(struct site *s)
{
	if (s->conn)
		an_host_conn_unref(s->conn);
	s->conn = NULL;
}

/*
 * A ready site about to be handed out: a pin for another peer hash (maybe
 * written since it was resolved) refuses it; a waiter's intent pins its
 * root name on first use.
 */
static void pins_apply(struct site *s)
{
	struct dial *d = s->d;
	json_t *pins = NULL;
	bool want = false;
	char err[DIAL_WHY_MAX] = "";
	int rc;
	for (struct site_wait *w = s->waiters; w; w = w->next)
		want = want || w->pin;
	rc = an_pins_load(d->cfg.statedir, &pins, err, sizeof(err));
	if (rc == 0 && !d->cfg.repin)
		rc = an_pins_check(pins, s->name.fqdn, s->root_name, s->peerhash, err, sizeof(err));
	json_decref(pins);
	if (rc == 0 && want && s->root_name[0]) {
		rc = an_pins_set(d->cfg.statedir, s->root_name, s->peerhash, d->cfg.repin, NULL, err,
				 sizeof(err));
		if (rc == AN_ELIMIT) {
			cli_warn("%s", err); /* shown, not pinned */
			rc = 0;
		}
	}
	if (rc < 0) {
		drop_conn(s);
		set_state(s, S_FAILED);
		s->err = rc;
		s->failed_at = ev_now(d->loop);
		why(s, "%s", err[0] ? err : an_strerror(rc));
	}
}

static void deliver(struct site *s)
{
	struct site_wait *w;
	if (s->state == S_READY && s->waiters)
		pins_apply(s);
	while ((w = s->waiters)) {
		s->waiters = w->next;
		w->next = NULL;
		w->site = NULL;
		if (s->state == S_READY) {
			w->why[0] = 0;
			w->cb(w, 0, s->conn);
		} else {
			snprintf(w->why, sizeof(w->why), "%s", s->why);
			w->cb(w, s->err ? s->err : AN_ECLOSED, NULL);
		}
	}
}

static void kick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct site *s = (struct site *)((char *)t - offsetof(struct site, kick));
	if (s->state == S_READY || s->state == S_FAILED)
		deliver(s);
}

static void kick(struct site *s)
{
	ev_timer_stop(s->d->loop, &s->kick);
	ev_timer_set(&s->kick, 0., 0.);
	ev_timer_start(s->d->loop, &s->kick);
}

static void fail(struct site *s, int err)
{
	set_state(s, S_FAILED);
	s->err = err;
	s->failed_at = ev_now(s->d->loop);
	kick(s);
}

static void try_next_addr(struct site *s);

/* The last /p2p/ of addr (a circuit address names the relay first), or NULL. */
static const char *last_p2p(const char *addr)
{
	const char *last = NULL;
	for (const char *p = addr; (p = strstr(p, "/p2p/")); p++)
		last = p;
	return last;
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	struct site *s = arg;
	(void)h;
	if (s->orphan) {
		/* the program is ending (dial_free) */
		if (err == 0)
			an_host_conn_close(c);
		return;
	}
	if (err == 0 && !s->have_publisher) {
		/* --connect-to without a peer ID: the peer must hash to the URL's peer hash */
		char hash[AN_PEERHASH_LEN + 1];
		const struct an_peerid *id = an_host_conn_peer(c);
		if (an_peerhash(id, hash) < 0 || strcmp(hash, s->name.peerhash) != 0) {
			why(s, "the peer at '%s' is not %s", s->addrs[s->next_addr - 1], s->name.peerhash);
			an_host_conn_close(c);
			err = AN_EMISMATCH;
		}
	}
	if (err < 0) {
		s->err = err;
		why(s, "unable to connect to '%s': %s", s->addrs[s->next_addr - 1],
		    err == AN_EMISMATCH ? "the peer does not hold the publisher's key" : an_strerror(err));
		if (s->d->cfg.verbose || s->next_addr < s->n_addrs)
			cli_warn("%s", s->why);
		try_next_addr(s);
		return;
	}
	if (s->d->cfg.verbose)
		cli_warn("connected %s: %s", an_host_conn_relayed(c) ? "through a relay" : "directly",
			 s->addrs[s->next_addr - 1]);
	an_host_conn_ref(c);
	s->conn = c;
	set_state(s, S_READY);
	kick(s);
}

static void try_next_addr(struct site *s)
{
	while (s->next_addr < s->n_addrs) {
		const char *a = s->addrs[s->next_addr++];
		if (s->d->cfg.verbose)
			cli_warn("trying %s", a);
		int rc = an_relay_dial(s->d->host, a, s->d->cfg.timeout_ms, dial_cb, s);
		if (rc == 0)
			return;
		s->err = rc;
		why(s, "unable to connect to '%s': %s", a, an_strerror(rc));
		if (s->d->cfg.verbose || s->next_addr < s->n_addrs)
			cli_warn("%s", s->why);
	}
	if (s->n_addrs == 0) {
		why(s, "the record has no address");
		s->err = AN_ENOTFOUND;
	}
	fail(s, s->err ? s->err : AN_ENOTFOUND);
}

/*
 * Add addr with /p2p/<publisher> (an address naming another peer is
 * skipped; a circuit address must end in the publisher's).
 */
static void add_addr(struct site *s, const char *addr)
{
	const char *p2p = last_p2p(addr);
	if (s->n_addrs >= AN_RECORD_ADDRS_MAX)
		return;
	if (p2p && an_relay_addr_is_circuit(addr) && strstr(p2p, "/p2p-circuit"))
		p2p = NULL; /* RELAYADDR/p2p/RELAY/p2p-circuit: the target comes next */
	if (p2p) {
		if (s->have_publisher && strcmp(p2p + 5, s->peer_text) != 0)
			return;
		snprintf(s->addrs[s->n_addrs++], ADDR_TEXT, "%s", addr);
	} else if (s->have_publisher) {
		snprintf(s->addrs[s->n_addrs++], ADDR_TEXT, "%s/p2p/%s", addr, s->peer_text);
	} else {
		snprintf(s->addrs[s->n_addrs++], ADDR_TEXT, "%s", addr);
	}
}

static void connect_start(struct site *s)
{
	set_state(s, S_CONNECTING);
	s->next_addr = 0;
	s->err = 0;
	try_next_addr(s);
}

static void resolved(void *arg, int err, struct an_resolved *r)
{
	struct site *s = arg;
	const char *addrs[AN_RECORD_ADDRS_MAX];
	s->rop = NULL;
	if (err < 0) {
		if (r && r->why[0])
			why(s, "%s", r->why);
		else
			why(s, "'%s@%s': %s", s->name.peerhash, s->name.fqdn,
			    cli_strerror(err));
		fail(s, err);
		return;
	}
	memcpy(s->root_name, r->root_name, sizeof(s->root_name));
	s->publisher = r->publisher;
	s->have_publisher = true;
	memcpy(s->peerhash, r->name.peerhash, sizeof(s->peerhash));
	an_peerid_format(&s->publisher, s->peer_text, sizeof(s->peer_text));
	s->resolved_at = ev_now(s->d->loop);
	s->n_addrs = 0;
	size_t n = an_resolved_addrs(r, addrs, AN_RECORD_ADDRS_MAX);
	/* direct addresses first, then the circuits through relays (slower, limited) */
	for (size_t i = 0; i < n; i++)
		if (!an_relay_addr_is_circuit(addrs[i]))
			add_addr(s, addrs[i]);
	for (size_t i = 0; i < n; i++)
		if (an_relay_addr_is_circuit(addrs[i]))
			add_addr(s, addrs[i]);
	connect_start(s);
}

static int node_open(struct dial *d, char *why, size_t whycap)
{
	struct an_node_options o = {0};
	char err[256] = "";
	if (d->node)
		return 0;
	o.statedir = d->cfg.statedir;
	o.bootstrap = d->cfg.bootstrap;
	o.n_bootstrap = d->cfg.n_bootstrap;
	o.protocol = d->cfg.protocol;
	o.timeout_ms = d->cfg.timeout_ms;
	o.host = d->host;
	o.log = debug_log;
	int rc = an_node_open(&o, &d->node, err, sizeof(err));
	if (rc < 0)
		snprintf(why, whycap, "unable to start a node: %s", err[0] ? err : an_strerror(rc));
	return rc;
}

/* Resolve s's name on the open node. */
static void lookup_start(struct site *s)
{
	struct dial *d = s->d;
	char err[DIAL_WHY_MAX] = "";
	int rc = an_resolve_start(d->node, d->cfg.statedir, &s->name, d->cfg.repin ? AN_RESOLVE_REPIN : 0,
				  d->cfg.timeout_ms, resolved, s, &s->rop, err, sizeof(err));
	if (rc < 0) {
		why(s, "%s", err[0] ? err : an_strerror(rc));
		fail(s, rc);
	}
}

static void resolve_start(struct site *s)
{
	struct dial *d = s->d;
	char err[DIAL_WHY_MAX] = "";
	int rc;
	set_state(s, S_RESOLVING);
	if (d->cfg.connect_to) {
		s->n_addrs = 0;
		s->have_publisher = s->name.has_id;
		if (s->have_publisher) {
			s->publisher = s->name.id;
			an_peerid_format(&s->publisher, s->peer_text, sizeof(s->peer_text));
		}
		const char *p2p = last_p2p(d->cfg.connect_to);
		if (p2p && strstr(p2p, "/p2p-circuit"))
			p2p = NULL; /* a circuit without its target: the URL's peer follows */
		if (p2p) {
			struct an_peerid id;
			char hash[AN_PEERHASH_LEN + 1];
			if (an_peerid_parse(p2p + 5, &id) < 0 || an_peerhash(&id, hash) < 0 ||
			    strcmp(hash, s->name.peerhash) != 0) {
				why(s, "--connect-to '%s' names a peer other than %s", d->cfg.connect_to,
				    s->name.peerhash);
				fail(s, AN_EMISMATCH);
				return;
			}
			s->publisher = id;
			s->have_publisher = true;
			an_peerid_format(&id, s->peer_text, sizeof(s->peer_text));
			snprintf(s->addrs[s->n_addrs++], ADDR_TEXT, "%s", d->cfg.connect_to);
		} else {
			add_addr(s, d->cfg.connect_to);
		}
		s->resolved_at = ev_now(d->loop);
		connect_start(s);
		return;
	}
	if (d->node_opening) {
		/* the node is being opened (its bootstrap runs the loop, so other
		 * requests arrive meanwhile): this one starts once it is open */
		s->await_node = true;
		return;
	}
	if (!d->node) {
		d->node_opening = true;
		rc = node_open(d, err, sizeof(err));
		d->node_opening = false;
		for (struct site *t = d->sites; t; t = t->next) {
			if (!t->await_node)
				continue;
			t->await_node = false;
			if (rc < 0) {
				why(t, "%s", err[0] ? err : an_strerror(rc));
				fail(t, rc);
			} else {
				lookup_start(t);
			}
		}
		if (rc < 0) {
			why(s, "%s", err[0] ? err : an_strerror(rc));
			fail(s, rc);
			return;
		}
	}
	lookup_start(s);
}

/* Make room for a site: free the least recently used one nobody waits on. */
static int evict_one(struct dial *d)
{
	struct site **victim = NULL;
	for (struct site **pp = &d->sites; *pp; pp = &(*pp)->next)
		if (!(*pp)->waiters && !busy((*pp)->state))
			victim = pp;
	if (!victim)
		return AN_ELIMIT;
	struct site *s = *victim;
	*victim = s->next;
	d->n_sites--;
	site_free(s);
	return 0;
}

/* Answer w from the loop with err: a site refused, not cached as failed. */
static void refuse(struct site *s, int err, const char *text)
{
	drop_conn(s);
	fail(s, err);
	s->failed_at = ev_now(s->d->loop) - DIAL_FAIL_CACHE_S; /* the next request tries again */
	why(s, "%s", text);
}

void site_get(struct dial *d, const struct an_name *name, struct site_wait *w)
{
	struct site **pp, *s = NULL;
	ev_tstamp now = ev_now(d->loop);
	for (pp = &d->sites; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->name.peerhash, name->peerhash) == 0 &&
		    strcmp((*pp)->name.fqdn, name->fqdn) == 0) {
			s = *pp;
			*pp = s->next; /* to the front: most recently used */
			d->n_sites--;
			break;
		}
	w->why[0] = 0;
	w->dial = d;
	if (!s) {
		if (d->n_sites >= DIAL_SITES_MAX)
			evict_one(d);
		s = d->n_sites < DIAL_SITES_MAX ? calloc(1, sizeof(*s)) : NULL;
		if (!s) {
			/* no site to deliver from: answered from the loop by refuse_cb */
			snprintf(w->why, sizeof(w->why), "%s",
				 d->n_sites < DIAL_SITES_MAX ? an_strerror(-ENOMEM)
							     : "too many sites are open at once: try again");
			w->site = REFUSED;
			w->next = d->refused;
			d->refused = w;
			ev_timer_stop(d->loop, &d->refuse_kick);
			ev_timer_set(&d->refuse_kick, 0., 0.);
			ev_timer_start(d->loop, &d->refuse_kick);
			return;
		}
		s->d = d;
		s->name = *name;
		memcpy(s->peerhash, name->peerhash, sizeof(s->peerhash));
		ev_timer_init(&s->kick, kick_cb, 0., 0.);
	}
	s->next = d->sites;
	d->sites = s;
	d->n_sites++;
	w->site = s;
	w->next = s->waiters;
	s->waiters = w;
	switch (s->state) {
	case S_RESOLVING:
	case S_CONNECTING:
		return; /* joins the waiters */
	case S_FAILED:
		if (now - s->failed_at < DIAL_FAIL_CACHE_S) {
			kick(s);
			return;
		}
		break;
	case S_READY:
		if (s->conn && an_host_conn_alive(s->conn) && now - s->resolved_at < DIAL_RECORD_CACHE_S) {
			kick(s);
			return;
		}
		drop_conn(s);
		if (now - s->resolved_at < DIAL_RECORD_CACHE_S) {
			if (d->n_busy >= DIAL_LOOKUPS_MAX) {
				refuse(s, AN_ELIMIT, "too many sites are being opened at once: try again");
				return;
			}
			connect_start(s); /* same record, new connection */
			return;
		}
		break;
	case S_NEW:
		break;
	}
	if (d->n_busy >= DIAL_LOOKUPS_MAX) {
		refuse(s, AN_ELIMIT, "too many sites are being opened at once: try again");
		return;
	}
	s->why[0] = 0;
	resolve_start(s);
}

void site_wait_cancel(struct site_wait *w)
{
	struct site *s = w->site;
	if (!s)
		return;
	if (s == REFUSED) {
		struct dial *d = w->dial;
		for (struct site_wait **pp = &d->refused; *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				break;
			}
		w->site = NULL;
		w->next = NULL;
		return;
	}
	for (struct site_wait **pp = &s->waiters; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	w->site = NULL;
	w->next = NULL;
}

void site_forget(struct dial *d, const struct an_name *name)
{
	struct site *s = site_find(d, name);
	if (s && s->state == S_READY) {
		drop_conn(s);
		set_state(s, S_NEW);
	}
}

const char *site_peerhash(struct dial *d, const struct an_name *name)
{
	struct site *s = site_find(d, name);
	return s && s->peerhash[0] ? s->peerhash : name->peerhash;
}
