/*
 * an-sybil: one process that plays a group of hostile kad nodes ground to
 * be the closest to chosen record keys (issue 16), for tests/bats/sybil.bats
 * and tests/scale/dht-scale.bats.
 *
 * Identities: one libp2p host per identity, all in one libev loop, each
 * listening on a port of its own on --listen (default 127.0.0.2).  The host
 * API holds one key per host; what a cheap attacker has is many keys on one
 * address, which is what this is.  Every host serves ping, identify (so an
 * honest node that meets it sees the kad protocol and takes it into its
 * routing table) and kad.
 *
 * Phases:
 * 1. scout (with --bootstrap): a client host on --listen, with a throwaway
 *    key and no kad served, runs a FIND_NODE lookup for every target key
 *    with the daemons' own lookup machine (dht/lookup.h) and keeps the
 *    honest peers closest to each key; one "scout" line per key;
 * 2. grind: random Ed25519 keys until --ids peer IDs per target are closer
 *    to it (XOR of SHA-256 positions, dht/distance.h) than the closest
 *    honest peer the scout found and share at least --bits leading bits
 *    with it; each key tried against every target that still needs IDs;
 *    bounded by --grind-max keys and --grind-time; one "ground" line per
 *    target (generations: keys tried when its last ID was found);
 * 3. join: every identity listens and dials up to --dial-max honest peers,
 *    those the scout found closest to its key first, then the bootstrap
 *    peers, --dial-par dials at a time (an honest node takes 32 handshakes
 *    at once from one address); one "sybil" line per identity, then
 *    "ready" with the dial counts;
 * 4. serve until SIGTERM or SIGINT or --runtime, then a "stats" line and
 *    exit 0 (SIGUSR1 prints a "stats" line at any time).
 *
 * Behaviours:
 *   PUT_VALUE      --put echo (default): the request echoed back, as a node
 *                  that stored it answers, and nothing stored; reset: the
 *                  stream reset, as a node that refuses the record;
 *                  selective: echoed and kept, but returned only to the peer
 *                  that put it (a publisher's read-back passes, nobody
 *                  else gets it; the last HELD_MAX records of the group)
 *   GET_VALUE      no record, or the --stale record of that key (an older
 *                  signed version: a server of stale records), or what
 *                  --put selective keeps, to its putter
 *   closer peers   of GET_VALUE, FIND_NODE and GET_PROVIDERS: --closer group
 *                  (default), the group's own identities closest to the
 *                  key (k of them, never the answering one); none: nothing
 *   GET_PROVIDERS  no providers; ADD_PROVIDER dropped; PING echoed
 *
 * Bounds: --runtime (default 600 s), --max-streams inbound kad streams open
 * at once over the group (past it a new one is reset), 10 s of silence per
 * inbound stream, 64 KiB per request, at most 1024 identities and 64
 * targets.  Lines on stdout are JSON; the exit status is 0 when it ran, 1
 * when no identity could be ground, 2 usage, 4 when it could not listen.
 */
#include "cli.h"

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "dht/distance.h"
#include "dht/kad_msg.h"
#include "dht/lookup.h"
#include "encoding/multiaddr.h"
#include "encoding/protobuf.h"
#include "record/jsonstream.h"
#include "record/record.h"
#include "transport/host.h"
#include "transport/identify.h"
#include "transport/ping.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/init.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define TARGETS_MAX 64
#define IDS_MAX 1024      /* identities in all */
#define BOOT_MAX 128
#define HONEST_KEEP 20    /* honest peers kept per target from the scout */
#define K 20              /* closer peers per answer */
#define STALE_MAX 64
#define HELD_MAX 4096
#define STALE_FILE_MAX (1u << 20)
#define REQ_MAX (64u << 10)
#define IDLE_S 10.0
#define KEY_TEXT_MAX 600
#define ADDR_TEXT_MAX (AN_MULTIADDR_TEXT_MAX + AN_PEERID_TEXT_MAX + 8)

static const char USAGE[] =
	"Usage: an-sybil --target KEY [--target KEY]... [options]\n"
	"\n"
	"Play a group of hostile kad nodes whose peer IDs are ground to be the\n"
	"closest to each KEY (/an/PEERHASH@NAME, an://PEERHASH@NAME or\n"
	"PEERHASH@NAME, as an-dht takes it).  JSON lines on stdout.\n"
	"\n"
	"Options:\n"
	"  --target KEY       a record key to sit on (repeatable, up to 64)\n"
	"  --ids N            identities per key (default 20)\n"
	"  --listen IP        the group's address (default 127.0.0.2)\n"
	"  --bootstrap MADDR  an honest peer with /p2p/ID (repeatable): scouted, dialed\n"
	"  --bits N           every ID shares at least N leading bits with its key (default 0)\n"
	"  --no-scout         do not look up the honest peers closest to the keys\n"
	"  --scout-time SECS  deadline of the scout's lookups (default 15)\n"
	"  --grind-max N      keys generated at most (default 10000000)\n"
	"  --grind-time SECS  grinding time at most (default 60)\n"
	"  --dial-max N       honest peers each identity dials (default 20)\n"
	"  --dial-par N       dials at a time (default 16)\n"
	"  --put MODE         PUT_VALUE: echo (default), reset, or selective\n"
	"  --closer MODE      closer peers: group (default) or none\n"
	"  --stale FILE       signed records (JSON lines) GET_VALUE returns for their keys\n"
	"  --protocol ID      kad protocol (default /an/kad/1.0.0)\n"
	"  --max-streams N    inbound kad streams open at once (default 1024)\n"
	"  --runtime SECS     exit after this long (default 600)\n"
	"  --help             this text\n";

static struct {
	const char *targets[TARGETS_MAX];
	int n_targets;
	const char *boot[BOOT_MAX];
	int n_boot;
	long ids, bits, grind_max, dial_max, dial_par, max_streams;
	double scout_time, grind_time, runtime;
	const char *listen, *put, *closer, *stale, *protocol;
	bool no_scout;
} O;

struct honest {
	struct an_peerid id;
	char addr[ADDR_TEXT_MAX]; /* with /p2p/ */
};

struct target {
	char text[KEY_TEXT_MAX]; /* the record key */
	size_t key_len;
	struct an_kad_id pos;
	/* scout */
	struct an_lookup *l;
	ev_timer timer;
	bool done;
	size_t n_honest;
	struct honest honest[HONEST_KEEP];
	struct an_kad_id honest_best; /* distance of the closest honest peer */
	bool have_honest;
	/* grind */
	long found;
	long long generations;
};

struct sybil {
	struct an_privkey *key;
	struct an_host *h;
	struct an_peerid id;
	char id_text[AN_PEERID_TEXT_MAX];
	struct an_kad_id pos;
	struct an_multiaddr ma;
	char addr[ADDR_TEXT_MAX];
	int target;
	unsigned cpl;
};

struct stale {
	char key[KEY_TEXT_MAX];
	struct an_buf value;
};

static struct ev_loop *loop;
static struct target targets[TARGETS_MAX];
static struct sybil *sybils;
static size_t n_sybils;
static struct stale stales[STALE_MAX];
static size_t n_stales;

/* --put selective: a record kept for the one peer that put it */
struct held {
	struct an_peerid putter;
	struct an_buf key, value;
};
static struct held held[HELD_MAX];
static size_t n_held, held_next;
static struct an_host *scout;
static struct an_privkey *scout_key;
static bool scouting;
static ev_timer scout_deadline, runtime_timer;
static ev_signal sig_term, sig_int, sig_usr1;
static int exit_status;
static double t_start;

static struct {
	long long put, get, find_node, get_providers, add_provider, ping, streams, refused, malformed;
	long long read_back; /* --put selective: records returned to their putter */
	long long dials, dials_ok;
	long open_streams;
} S;

static double now_s(void)
{
	return ev_time();
}

static uint64_t loop_ms(void)
{
	return (uint64_t)(ev_now(loop) * 1000.0);
}

static void emit(json_t *o)
{
	if (o) {
		cli_print_json(o);
		fflush(stdout);
		json_decref(o);
	}
}

static void emit_stats(void)
{
	emit(json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "event", "stats", "ids",
		       (json_int_t)n_sybils, "put", (json_int_t)S.put, "get", (json_int_t)S.get, "findNode",
		       (json_int_t)S.find_node, "getProviders", (json_int_t)S.get_providers, "addProvider",
		       (json_int_t)S.add_provider, "ping", (json_int_t)S.ping, "streams",
		       (json_int_t)S.streams, "refused", (json_int_t)S.refused, "malformed",
		       (json_int_t)S.malformed, "readBack", (json_int_t)S.read_back));
}

/* KEY: "/ns/..." as is, "an://h@name" or "h@name" as its /an/ key (an-dht's forms). */
static int parse_key(const char *arg, char *out, size_t cap)
{
	char ph[AN_PEERHASH_LEN + 1], fqdn[AN_RECORD_FQDN_MAX + 1], lookup[KEY_TEXT_MAX];
	struct an_buf k;
	int rc;
	if (arg[0] == '/') {
		if (strlen(arg) >= cap)
			return AN_ETOOBIG;
		strcpy(out, arg);
		return 0;
	}
	snprintf(lookup, sizeof(lookup), "%s%s", strncmp(arg, "an://", 5) ? "an://" : "", arg);
	rc = an_record_parse_name(lookup, false, ph, fqdn);
	if (rc < 0)
		return rc;
	an_buf_init(&k, cap - 1);
	rc = an_record_dht_key(ph, fqdn, &k);
	if (rc == 0)
		snprintf(out, cap, "%.*s", (int)k.len, (const char *)k.data);
	an_buf_free(&k);
	return rc;
}

static void stop(void)
{
	ev_break(loop, EVBREAK_ALL);
}

/* ------------------------------------------------------------------ scout */

/* One FIND_NODE of the scout: a dial, a stream, one request and its answer. */
struct sreq {
	struct sreq *next, *prev;
	struct target *t;
	struct an_peerid peer;
	struct an_stream *s;
	struct an_buf in;
	struct an_buf out;
	bool finished, dialing;
};

static struct sreq *sreqs;

static void scout_pump(struct target *t);
static void scout_end(void);

static void sreq_maybe_free(struct sreq *r)
{
	if (r->dialing || r->s)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else if (sreqs == r)
		sreqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	an_buf_free(&r->in);
	an_buf_free(&r->out);
	free(r);
}

/* The request ended: the lookup hears of it (unless the scout is over). */
static void sreq_finish(struct sreq *r, const struct an_kad_msg *m)
{
	struct target *t = r->t;
	if (r->finished)
		return;
	r->finished = true;
	if (!scouting || t->done)
		return;
	if (!m || an_lookup_response(t->l, loop_ms(), &r->peer, m) < 0)
		an_lookup_failure(t->l, loop_ms(), &r->peer);
	scout_pump(t);
}

static void sreq_data(struct an_stream *s, const uint8_t *p, size_t len, void *arg)
{
	struct sreq *r = arg;
	const uint8_t *msg;
	size_t msg_len, used;
	struct an_kad_msg m;
	int rc;
	if (r->finished)
		return;
	if (an_buf_append(&r->in, p, len) < 0) {
		sreq_finish(r, NULL);
		an_stream_reset(s);
		return;
	}
	rc = an_lp_get(r->in.data, r->in.len, AN_KAD_MSG_MAX_DEFAULT, &msg, &msg_len, &used);
	if (rc == AN_EAGAIN)
		return;
	if (rc == 0)
		rc = an_kad_msg_decode(msg, msg_len, AN_KAD_MSG_MAX_DEFAULT, &m);
	if (rc < 0) {
		sreq_finish(r, NULL);
		an_stream_reset(s);
		return;
	}
	sreq_finish(r, &m);
	an_kad_msg_free(&m);
	an_stream_close_write(s);
}

static void sreq_eof(struct an_stream *s, void *arg)
{
	sreq_finish(arg, NULL);
	an_stream_close_write(s);
}

static void sreq_close(struct an_stream *s, int err, void *arg)
{
	(void)s, (void)err;
	struct sreq *r = arg;
	r->s = NULL;
	sreq_finish(r, NULL);
	sreq_maybe_free(r);
}

static const struct an_stream_handler sreq_handler = {
	.on_data = sreq_data, .on_eof = sreq_eof, .on_close = sreq_close};

static void sreq_dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h;
	struct sreq *r = arg;
	r->dialing = false;
	if (err < 0 || r->finished || !scouting) {
		sreq_finish(r, NULL);
		sreq_maybe_free(r);
		return;
	}
	if (an_host_stream_open(c, O.protocol, &sreq_handler, r, &r->s) < 0) {
		r->s = NULL;
		sreq_finish(r, NULL);
		sreq_maybe_free(r);
		return;
	}
	if (an_stream_write(r->s, r->out.data, r->out.len) < 0)
		an_stream_reset(r->s); /* sreq_close finishes and frees r */
}

static void sreq_start(struct target *t, const struct an_lookup_request *req)
{
	struct sreq *r = calloc(1, sizeof(*r));
	char ma[AN_MULTIADDR_TEXT_MAX], id[AN_PEERID_TEXT_MAX], text[ADDR_TEXT_MAX];
	if (!r)
		goto fail;
	r->t = t;
	r->peer = req->peer;
	an_buf_init(&r->in, AN_KAD_MSG_MAX_DEFAULT + 16);
	an_buf_init(&r->out, AN_KAD_MSG_SEND_MAX + 16);
	r->next = sreqs;
	if (sreqs)
		sreqs->prev = r;
	sreqs = r;
	if (req->naddrs == 0 || an_multiaddr_format(&req->addrs[0], ma, sizeof(ma)) < 0 ||
	    an_peerid_format(&req->peer, id, sizeof(id)) < 0 ||
	    an_lp_put(&r->out, req->msg, req->msg_len) < 0)
		goto fail;
	snprintf(text, sizeof(text), "%s/p2p/%s", ma, id);
	r->dialing = true;
	if (an_host_dial(scout, text, 5000, sreq_dial_cb, r) < 0) {
		r->dialing = false;
		goto fail;
	}
	return;
fail:
	/* the lookup hears of the failure from the loop, not from inside its own call */
	if (r) {
		r->finished = true;
		sreq_maybe_free(r);
	}
	an_lookup_failure(t->l, loop_ms(), &req->peer);
}

/* A request the lookup gave up on (timed out): forget its answer. */
static void sreq_abandon(struct target *t, const struct an_peerid *peer)
{
	for (struct sreq *r = sreqs; r; r = r->next)
		if (r->t == t && !r->finished && an_peerid_equal(&r->peer, peer)) {
			r->finished = true;
			if (r->s)
				an_stream_reset(r->s); /* may free r */
			return;
		}
}

/* What the lookup of t found so far: the closest honest peers that answered. */
static void target_collect(struct target *t)
{
	const struct an_lookup_peer *p[HONEST_KEEP];
	size_t n = t->l ? an_lookup_closest(t->l, p, HONEST_KEEP) : 0;
	char ma[AN_MULTIADDR_TEXT_MAX], id[AN_PEERID_TEXT_MAX];
	t->n_honest = 0;
	for (size_t i = 0; i < n; i++) {
		struct honest *hp = &t->honest[t->n_honest];
		if (!t->have_honest || an_kad_id_cmp(&p[i]->dist, &t->honest_best) < 0) {
			t->honest_best = p[i]->dist;
			t->have_honest = true;
		}
		if (p[i]->naddrs == 0 || an_multiaddr_format(&p[i]->addrs[0], ma, sizeof(ma)) < 0 ||
		    an_peerid_format(&p[i]->id, id, sizeof(id)) < 0)
			continue;
		hp->id = p[i]->id;
		snprintf(hp->addr, sizeof(hp->addr), "%s/p2p/%s", ma, id);
		t->n_honest++;
	}
}

static void target_done(struct target *t)
{
	if (t->done)
		return;
	t->done = true;
	ev_timer_stop(loop, &t->timer);
	target_collect(t);
	for (int i = 0; i < O.n_targets; i++)
		if (!targets[i].done)
			return;
	scout_end();
}

static void target_timer_cb(struct ev_loop *lp, ev_timer *w, int revents)
{
	(void)lp, (void)revents;
	scout_pump(w->data);
}

static void scout_pump(struct target *t)
{
	struct an_lookup_request req;
	uint64_t now, d;
	if (!scouting || t->done)
		return;
	for (;;) {
		now = loop_ms();
		switch (an_lookup_next_request(t->l, now, &req)) {
		case AN_LOOKUP_REQUEST:
			sreq_start(t, &req);
			continue;
		case AN_LOOKUP_TIMEOUT:
			sreq_abandon(t, &req.peer);
			continue;
		case AN_LOOKUP_DONE:
			target_done(t);
			return;
		default:
			d = an_lookup_next_deadline(t->l);
			ev_timer_stop(loop, &t->timer);
			if (d != UINT64_MAX) {
				ev_timer_set(&t->timer, d > now ? (double)(d - now) / 1000.0 + 0.001 : 0.001, 0);
				ev_timer_start(loop, &t->timer);
			}
			return;
		}
	}
}

static void scout_deadline_cb(struct ev_loop *lp, ev_timer *w, int revents)
{
	(void)lp, (void)w, (void)revents;
	for (int i = 0; i < O.n_targets; i++)
		if (!targets[i].done) {
			targets[i].done = true;
			ev_timer_stop(loop, &targets[i].timer);
			target_collect(&targets[i]);
		}
	scout_end();
}

/* Start a FIND_NODE lookup per target, seeded with the bootstrap peers. */
static int scout_start(void)
{
	struct an_host_config hc = {0};
	char ma[128];
	int rc = an_privkey_generate(&scout_key);
	hc.key = scout_key;
	hc.agent_version = "an-sybil/0.1.0";
	if (rc == 0)
		rc = an_host_new(loop, &hc, &scout);
	if (rc == 0)
		rc = an_ping_service_register(scout);
	if (rc == 0)
		rc = an_identify_service_register(scout);
	snprintf(ma, sizeof(ma), "/ip%c/%s/tcp/0", strchr(O.listen, ':') ? '6' : '4', O.listen);
	if (rc == 0)
		rc = an_host_listen(scout, ma); /* dials bind it: the scout comes from --listen too */
	if (rc < 0)
		return rc;
	scouting = true;
	for (int i = 0; i < O.n_targets; i++) {
		struct target *t = &targets[i];
		struct an_lookup_config lc = {.kind = AN_LOOKUP_FIND_NODE, .k = K};
		rc = an_lookup_new(&t->l, &lc, an_host_peer_id(scout), (const uint8_t *)t->text,
				   t->key_len);
		if (rc < 0)
			return rc;
		for (int b = 0; b < O.n_boot; b++) {
			struct an_multiaddr m, rest;
			struct an_peerid id;
			if (an_multiaddr_parse(O.boot[b], &m) == 0 &&
			    an_multiaddr_split_p2p(&m, &rest, &id) == 0)
				an_lookup_seed(t->l, &id, &rest, 1);
		}
		ev_timer_init(&t->timer, target_timer_cb, 0, 0);
		t->timer.data = t;
	}
	ev_timer_init(&scout_deadline, scout_deadline_cb, O.scout_time, 0);
	ev_timer_start(loop, &scout_deadline);
	for (int i = 0; i < O.n_targets; i++)
		scout_pump(&targets[i]);
	return 0;
}

static void scout_report(void)
{
	for (int i = 0; i < O.n_targets; i++) {
		struct target *t = &targets[i];
		struct an_kad_id zero = {{0}};
		emit(json_pack("{s:s,s:s,s:I,s:i}", "event", "scout", "key", t->text, "honest",
			       (json_int_t)t->n_honest, "closestCpl",
			       t->have_honest ? (int)an_kad_cpl(&zero, &t->honest_best) : -1));
	}
}

/* ------------------------------------------------------------------ grind */

/* Keys until every target has its IDs or a bound is reached; 0 or -ENOMEM. */
static int grind(void)
{
	struct an_pubkey pub = {.type = AN_KEY_ED25519, .len = crypto_sign_PUBLICKEYBYTES};
	uint8_t seed[32], sk[crypto_sign_SECRETKEYBYTES], pb[4 + crypto_sign_SECRETKEYBYTES];
	long long gens = 0;
	size_t want = (size_t)O.ids * (size_t)O.n_targets, got = 0;
	double t0 = now_s();
	int rc = 0;
	sybils = calloc(want, sizeof(*sybils));
	if (!sybils)
		return -ENOMEM;
	while (got < want && gens < O.grind_max) {
		struct an_peerid id;
		struct an_kad_id pos, d;
		if ((gens & 1023) == 0 && gens && now_s() - t0 > O.grind_time)
			break;
		gens++;
		randombytes_buf(seed, sizeof(seed));
		crypto_sign_seed_keypair(pub.data, sk, seed);
		if (an_peerid_from_pubkey(&pub, &id) < 0)
			continue;
		an_kad_id_from_peer(&id, &pos);
		for (int i = 0; i < O.n_targets; i++) {
			struct target *t = &targets[i];
			struct sybil *sy = &sybils[n_sybils];
			unsigned cpl;
			if (t->found >= O.ids)
				continue;
			cpl = an_kad_cpl(&t->pos, &pos);
			an_kad_distance(&t->pos, &pos, &d);
			if ((long)cpl < O.bits || (t->have_honest && an_kad_id_cmp(&d, &t->honest_best) >= 0))
				continue;
			/* a PrivateKey protobuf: Type = Ed25519, Data = seed || public */
			pb[0] = 0x08, pb[1] = 0x01, pb[2] = 0x12, pb[3] = 0x40;
			memcpy(pb + 4, sk, sizeof(sk));
			rc = an_privkey_decode(pb, sizeof(pb), &sy->key);
			sodium_memzero(pb, sizeof(pb));
			if (rc < 0)
				goto out;
			sy->id = id;
			sy->pos = pos;
			sy->target = i;
			sy->cpl = cpl;
			an_peerid_format(&id, sy->id_text, sizeof(sy->id_text));
			n_sybils++;
			got++;
			if (++t->found == O.ids)
				t->generations = gens;
			break;
		}
	}
out:
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(seed, sizeof(seed));
	for (int i = 0; i < O.n_targets; i++) {
		struct target *t = &targets[i];
		emit(json_pack("{s:s,s:s,s:I,s:I,s:I,s:b}", "event", "ground", "key", t->text, "ids",
			       (json_int_t)t->found, "generations",
			       (json_int_t)(t->found == O.ids ? t->generations : gens), "ms",
			       (json_int_t)((now_s() - t0) * 1000), "scouted", t->have_honest));
	}
	return rc;
}

/* ------------------------------------------------------------------ serve */

struct kin {
	struct sybil *sy;
	struct an_stream *s;
	struct an_buf in;
	ev_timer idle;
};

static struct an_kad_id cmp_dist_pos;

static int cmp_dist(const void *a, const void *b)
{
	const struct sybil *x = *(struct sybil *const *)a, *y = *(struct sybil *const *)b;
	return an_kad_closer(&cmp_dist_pos, &x->pos, &y->pos);
}

/* The group's K identities closest to key into m's closer peers (never self). */
static int add_closer(struct an_kad_msg *m, const struct sybil *self, const struct an_kad_bytes *key)
{
	static struct sybil *order[IDS_MAX];
	size_t n = 0;
	int rc = 0;
	if (strcmp(O.closer, "group") != 0 || !key->len)
		return 0;
	an_kad_id_from_key(key->p, key->len, &cmp_dist_pos);
	for (size_t i = 0; i < n_sybils; i++)
		if (&sybils[i] != self && sybils[i].h)
			order[n++] = &sybils[i];
	qsort(order, n, sizeof(order[0]), cmp_dist);
	for (size_t i = 0; i < n && i < K && rc == 0; i++)
		rc = an_kad_msg_add_peer_ma(m, false, &order[i]->id, &order[i]->ma, 1, AN_KAD_CAN_CONNECT);
	return rc;
}

static struct held *held_find(const struct an_kad_bytes *key, const struct an_peerid *putter)
{
	for (size_t i = 0; i < n_held; i++)
		if (held[i].key.len == key->len && !memcmp(held[i].key.data, key->p, key->len) &&
		    an_peerid_equal(&held[i].putter, putter))
			return &held[i];
	return NULL;
}

/* Keep req's record for putter (the oldest kept one goes when full). */
static void held_put(const struct an_kad_msg *req, const struct an_peerid *putter)
{
	struct held *h = held_find(&req->key, putter);
	if (!req->has_record || !req->key.len)
		return;
	if (!h) {
		h = &held[held_next];
		held_next = (held_next + 1) % HELD_MAX;
		if (n_held < HELD_MAX)
			n_held++;
		an_buf_free(&h->key);
		an_buf_init(&h->key, KEY_TEXT_MAX);
		if (an_buf_append(&h->key, req->key.p, req->key.len) < 0)
			return;
		h->putter = *putter;
	}
	an_buf_free(&h->value);
	an_buf_init(&h->value, REQ_MAX);
	an_buf_append(&h->value, req->record.value.p, req->record.value.len);
}

static const struct stale *stale_find(const struct an_kad_bytes *key)
{
	for (size_t i = 0; i < n_stales; i++)
		if (strlen(stales[i].key) == key->len && !memcmp(stales[i].key, key->p, key->len))
			return &stales[i];
	return NULL;
}

/*
 * The answer to req into out (a protobuf, not framed): 1 with an answer, 0
 * for none (ADD_PROVIDER), a negative code to reset the stream.
 */
static int answer(struct sybil *sy, const struct an_peerid *from, const struct an_kad_msg *req,
		  struct an_buf *out)
{
	struct an_kad_msg m;
	char when[AN_KAD_TIME_LEN + 1];
	const struct stale *st;
	const struct held *h;
	int rc = 0;
	switch (req->type) {
	case AN_KAD_PUT_VALUE:
		S.put++;
		if (strcmp(O.put, "reset") == 0)
			return AN_EPROTO;
		if (strcmp(O.put, "selective") == 0 && from)
			held_put(req, from);
		/* the echo a storing node sends, so the publisher counts us */
		rc = an_kad_msg_encode(req, out);
		return rc < 0 ? rc : 1;
	case AN_KAD_ADD_PROVIDER:
		S.add_provider++;
		return 0;
	case AN_KAD_PING:
		S.ping++;
		rc = an_kad_msg_encode(req, out);
		return rc < 0 ? rc : 1;
	case AN_KAD_GET_VALUE:
		S.get++;
		break;
	case AN_KAD_FIND_NODE:
		S.find_node++;
		break;
	case AN_KAD_GET_PROVIDERS:
		S.get_providers++;
		break;
	default:
		return AN_EPROTO;
	}
	an_kad_msg_init(&m);
	m.type = req->type;
	m.has_key = req->has_key;
	m.key = req->key;
	if (req->type == AN_KAD_GET_VALUE && an_kad_time_format((int64_t)time(NULL), 0, when) == 0) {
		if (from && (h = held_find(&req->key, from))) {
			S.read_back++;
			m.has_record = true;
			m.record.value.p = h->value.data;
			m.record.value.len = h->value.len;
		} else if ((st = stale_find(&req->key))) {
			m.has_record = true;
			m.record.value.p = st->value.data;
			m.record.value.len = st->value.len;
		}
		m.record.key = req->key;
		m.record.time_received.p = (const uint8_t *)when;
		m.record.time_received.len = strlen(when);
	}
	rc = add_closer(&m, sy, &req->key);
	if (rc == 0)
		rc = an_kad_msg_encode(&m, out);
	an_kad_msg_free(&m);
	return rc < 0 ? rc : 1;
}

static void kin_idle(struct ev_loop *lp, ev_timer *w, int revents)
{
	(void)revents;
	struct kin *b = w->data;
	ev_timer_stop(lp, w);
	an_stream_reset(b->s);
}

static void kin_open(struct an_stream *s, void *arg)
{
	struct kin *b;
	S.streams++;
	if (S.open_streams >= O.max_streams || !(b = calloc(1, sizeof(*b)))) {
		S.refused++;
		an_stream_reset(s);
		return;
	}
	b->sy = arg;
	b->s = s;
	an_buf_init(&b->in, REQ_MAX);
	ev_timer_init(&b->idle, kin_idle, IDLE_S, IDLE_S);
	b->idle.data = b;
	ev_timer_start(loop, &b->idle);
	S.open_streams++;
	an_stream_set_user(s, b);
}

static void kin_data(struct an_stream *s, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	struct kin *b = an_stream_user(s);
	if (!b)
		return;
	if (an_buf_append(&b->in, p, len) < 0) {
		S.malformed++;
		an_stream_reset(s);
		return;
	}
	for (;;) {
		const uint8_t *msg;
		size_t msg_len, used;
		struct an_kad_msg req;
		struct an_buf resp, framed;
		int rc = an_lp_get(b->in.data, b->in.len, REQ_MAX, &msg, &msg_len, &used);
		if (rc == AN_EAGAIN)
			return;
		if (rc == 0)
			rc = an_kad_msg_decode(msg, msg_len, REQ_MAX, &req);
		if (rc < 0) {
			S.malformed++;
			an_stream_reset(s);
			return;
		}
		ev_timer_again(loop, &b->idle);
		an_buf_init(&resp, AN_KAD_MSG_MAX_DEFAULT);
		an_buf_init(&framed, AN_KAD_MSG_MAX_DEFAULT + 16);
		rc = answer(b->sy, an_host_conn_peer(an_stream_conn(s)), &req, &resp);
		an_kad_msg_free(&req);
		if (rc > 0)
			rc = an_lp_put(&framed, resp.data, resp.len);
		if (rc == 0 && framed.len)
			rc = an_stream_write(s, framed.data, framed.len);
		an_buf_free(&resp);
		an_buf_free(&framed);
		if (rc < 0) {
			an_stream_reset(s);
			return;
		}
		an_buf_consume(&b->in, used);
	}
}

static void kin_eof(struct an_stream *s, void *arg)
{
	(void)arg;
	an_stream_close_write(s);
}

static void kin_close(struct an_stream *s, int err, void *arg)
{
	(void)arg, (void)err;
	struct kin *b = an_stream_user(s);
	if (!b)
		return;
	ev_timer_stop(loop, &b->idle);
	an_buf_free(&b->in);
	free(b);
	S.open_streams--;
	an_stream_set_user(s, NULL);
}

static const struct an_stream_handler kin_handler = {
	.on_open = kin_open, .on_data = kin_data, .on_eof = kin_eof, .on_close = kin_close};

/* ------------------------------------------------------------------- join */

struct dial_job {
	struct sybil *sy;
	char addr[ADDR_TEXT_MAX];
};

static struct dial_job *jobs;
static size_t n_jobs, next_job, jobs_left;
static long in_flight;
static bool was_ready;

static void dial_next(void);

static void ready(void)
{
	if (was_ready)
		return;
	was_ready = true;
	emit(json_pack("{s:s,s:I,s:I,s:I,s:I}", "event", "ready", "ids", (json_int_t)n_sybils,
		       "dials", (json_int_t)S.dials, "connected", (json_int_t)S.dials_ok, "ms",
		       (json_int_t)((now_s() - t_start) * 1000)));
}

static void dial_cb(struct an_host *h, struct an_host_conn *c, int err, void *arg)
{
	(void)h, (void)c, (void)arg;
	if (err == 0)
		S.dials_ok++;
	in_flight--;
	jobs_left--;
	dial_next();
}

static void dial_next(void)
{
	while (next_job < n_jobs && in_flight < O.dial_par) {
		struct dial_job *j = &jobs[next_job++];
		S.dials++;
		if (an_host_dial(j->sy->h, j->addr, 10000, dial_cb, NULL) < 0)
			jobs_left--;
		else
			in_flight++;
	}
	if (jobs_left == 0)
		ready();
}

/* Start every identity's host, print it, queue its dials. */
static int join(void)
{
	char ma[128];
	int rc = 0;
	snprintf(ma, sizeof(ma), "/ip%c/%s/tcp/0", strchr(O.listen, ':') ? '6' : '4', O.listen);
	jobs = calloc(n_sybils * (size_t)O.dial_max + 1, sizeof(*jobs));
	if (!jobs)
		return -ENOMEM;
	for (size_t i = 0; i < n_sybils; i++) {
		struct sybil *sy = &sybils[i];
		struct target *t = &targets[sy->target];
		struct an_host_config hc = {0};
		const char *addrs[1];
		long dialed = 0;
		hc.key = sy->key;
		hc.agent_version = "an-sybil/0.1.0";
		rc = an_host_new(loop, &hc, &sy->h);
		if (rc == 0)
			rc = an_ping_service_register(sy->h);
		if (rc == 0)
			rc = an_identify_service_register(sy->h);
		if (rc == 0)
			rc = an_host_handle(sy->h, O.protocol, &kin_handler, sy);
		if (rc == 0)
			rc = an_host_listen(sy->h, ma);
		if (rc == 0 && an_host_addrs(sy->h, addrs, 1) != 1)
			rc = AN_ENOTFOUND;
		if (rc == 0)
			rc = an_multiaddr_parse(addrs[0], &sy->ma);
		if (rc < 0)
			return rc;
		snprintf(sy->addr, sizeof(sy->addr), "%s/p2p/%s", addrs[0], sy->id_text);
		emit(json_pack("{s:s,s:s,s:s,s:s,s:i}", "event", "sybil", "peerId", sy->id_text, "addr",
			       sy->addr, "key", t->text, "cpl", (int)sy->cpl));
		for (size_t j = 0; j < t->n_honest && dialed < O.dial_max; j++, dialed++) {
			jobs[n_jobs].sy = sy;
			snprintf(jobs[n_jobs++].addr, ADDR_TEXT_MAX, "%s", t->honest[j].addr);
		}
		for (int b = 0; b < O.n_boot && dialed < O.dial_max; b++) {
			bool dup = false;
			for (size_t j = 0; j < t->n_honest; j++)
				dup |= strstr(O.boot[b], t->honest[j].addr) != NULL ||
				       strstr(t->honest[j].addr, O.boot[b]) != NULL;
			if (dup)
				continue;
			jobs[n_jobs].sy = sy;
			snprintf(jobs[n_jobs++].addr, ADDR_TEXT_MAX, "%s", O.boot[b]);
			dialed++;
		}
	}
	jobs_left = n_jobs;
	dial_next();
	return 0;
}

static void scout_end(void)
{
	int rc;
	if (!scouting)
		return;
	scouting = false;
	ev_timer_stop(loop, &scout_deadline);
	scout_report();
	rc = grind();
	if (rc == 0 && n_sybils == 0) {
		cli_warn("no identity ground within the bounds");
		exit_status = AN_EXIT_NEGATIVE;
		stop();
		return;
	}
	if (rc == 0)
		rc = join();
	if (rc < 0) {
		cli_warn("unable to start the group: %s", an_strerror(rc));
		exit_status = cli_exit_status(rc) ? cli_exit_status(rc) : AN_EXIT_SYSTEM;
		stop();
	}
}

/* ------------------------------------------------------------------- main */

static int load_stale(const char *path)
{
	struct an_json_stream st;
	json_t *rec;
	char err[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	if (fd < 0)
		return -errno;
	an_json_stream_init(&st, fd, STALE_FILE_MAX);
	while ((rc = an_json_stream_next(&st, &rec, err, sizeof(err))) > 0) {
		struct stale *s = &stales[n_stales];
		const char *lookup = json_string_value(json_object_get(rec, "lookup"));
		if (n_stales >= STALE_MAX) {
			json_decref(rec);
			rc = AN_ELIMIT;
			break;
		}
		an_buf_init(&s->value, AN_KAD_MSG_SEND_MAX);
		rc = lookup ? parse_key(lookup, s->key, sizeof(s->key)) : AN_EFIELD;
		if (rc == 0)
			rc = an_record_serialize(rec, &s->value);
		json_decref(rec);
		if (rc < 0) {
			an_buf_free(&s->value);
			break;
		}
		n_stales++;
	}
	an_json_stream_free(&st);
	close(fd);
	return rc < 0 ? rc : 0;
}

static void on_signal(struct ev_loop *lp, ev_signal *w, int revents)
{
	(void)lp, (void)revents;
	if (w->signum == SIGUSR1)
		emit_stats();
	else
		stop();
}

static void runtime_cb(struct ev_loop *lp, ev_timer *w, int revents)
{
	(void)lp, (void)w, (void)revents;
	stop();
}

static long parse_long(const char *s, const char *what, long min, long max)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		cli_usage_error(USAGE, "invalid %s '%s'", what, s);
	return v;
}

static double parse_secs(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || end == s || !(v > 0) || v > 86400)
		cli_usage_error(USAGE, "invalid %s '%s'", what, s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"target", required_argument, NULL, 'T'},
		{"ids", required_argument, NULL, 'n'},
		{"listen", required_argument, NULL, 'l'},
		{"bootstrap", required_argument, NULL, 'b'},
		{"bits", required_argument, NULL, 'B'},
		{"no-scout", no_argument, NULL, 'N'},
		{"scout-time", required_argument, NULL, 'S'},
		{"grind-max", required_argument, NULL, 'g'},
		{"grind-time", required_argument, NULL, 'G'},
		{"dial-max", required_argument, NULL, 'd'},
		{"dial-par", required_argument, NULL, 'D'},
		{"put", required_argument, NULL, 'p'},
		{"closer", required_argument, NULL, 'c'},
		{"stale", required_argument, NULL, 's'},
		{"protocol", required_argument, NULL, 'P'},
		{"max-streams", required_argument, NULL, 'm'},
		{"runtime", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, rc;
	struct rlimit rl;
	cli_init(argv[0]);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	O.ids = 20, O.bits = 0, O.grind_max = 10000000, O.dial_max = 20, O.dial_par = 16;
	O.max_streams = 1024, O.scout_time = 15, O.grind_time = 60, O.runtime = 600;
	O.listen = "127.0.0.2", O.put = "echo", O.closer = "group", O.protocol = "/an/kad/1.0.0";
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'T':
			cli_opt_append(O.targets, &O.n_targets, TARGETS_MAX, optarg, "--target keys", USAGE);
			break;
		case 'n': O.ids = parse_long(optarg, "--ids", 1, IDS_MAX); break;
		case 'l': O.listen = optarg; break;
		case 'b':
			cli_opt_append(O.boot, &O.n_boot, BOOT_MAX, optarg, "--bootstrap peers", USAGE);
			break;
		case 'B': O.bits = parse_long(optarg, "--bits", 0, 32); break;
		case 'N': O.no_scout = true; break;
		case 'S': O.scout_time = parse_secs(optarg, "--scout-time"); break;
		case 'g': O.grind_max = parse_long(optarg, "--grind-max", 1, 1000000000); break;
		case 'G': O.grind_time = parse_secs(optarg, "--grind-time"); break;
		case 'd': O.dial_max = parse_long(optarg, "--dial-max", 0, BOOT_MAX); break;
		case 'D': O.dial_par = parse_long(optarg, "--dial-par", 1, 256); break;
		case 'p': O.put = optarg; break;
		case 'c': O.closer = optarg; break;
		case 's': O.stale = optarg; break;
		case 'P': O.protocol = cli_protocol_opt(optarg, USAGE); break;
		case 'm': O.max_streams = parse_long(optarg, "--max-streams", 1, 65536); break;
		case 'r': O.runtime = parse_secs(optarg, "--runtime"); break;
		case 'h': cli_usage(USAGE, AN_EXIT_OK);
		default: cli_bad_option(c, argv, USAGE);
		}
	}
	if (optind != argc || O.n_targets == 0)
		cli_usage_error(USAGE, "at least one --target is required");
	if (strcmp(O.put, "echo") && strcmp(O.put, "reset") && strcmp(O.put, "selective"))
		cli_usage_error(USAGE, "invalid --put '%s'", O.put);
	if (strcmp(O.closer, "group") && strcmp(O.closer, "none"))
		cli_usage_error(USAGE, "invalid --closer '%s'", O.closer);
	if ((long long)O.ids * O.n_targets > IDS_MAX)
		cli_usage_error(USAGE, "--ids times the targets is over %d", IDS_MAX);
	for (int i = 0; i < O.n_targets; i++) {
		rc = parse_key(O.targets[i], targets[i].text, sizeof(targets[i].text));
		if (rc < 0)
			cli_usage_error(USAGE, "invalid --target '%s': %s", O.targets[i], an_strerror(rc));
		targets[i].key_len = strlen(targets[i].text);
		an_kad_id_from_key((const uint8_t *)targets[i].text, targets[i].key_len, &targets[i].pos);
	}
	for (int b = 0; b < O.n_boot; b++) {
		struct an_multiaddr m, rest;
		struct an_peerid id;
		if (an_multiaddr_parse(O.boot[b], &m) < 0 || an_multiaddr_split_p2p(&m, &rest, &id) < 0)
			cli_usage_error(USAGE, "invalid --bootstrap '%s' (a multiaddr with /p2p/ID)", O.boot[b]);
	}
	if (O.stale && (rc = load_stale(O.stale)) < 0)
		cli_die(AN_EXIT_DATA, "unable to read --stale '%s': %s", O.stale, an_strerror(rc));
	/* one descriptor per listener and per connection: take what we may */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	an_global_init();
	loop = ev_default_loop(0);
	t_start = now_s();
	ev_signal_init(&sig_term, on_signal, SIGTERM);
	ev_signal_init(&sig_int, on_signal, SIGINT);
	ev_signal_init(&sig_usr1, on_signal, SIGUSR1);
	ev_signal_start(loop, &sig_term);
	ev_signal_start(loop, &sig_int);
	ev_signal_start(loop, &sig_usr1);
	ev_timer_init(&runtime_timer, runtime_cb, O.runtime, 0);
	ev_timer_start(loop, &runtime_timer);
	if (O.n_boot && !O.no_scout) {
		rc = scout_start();
		if (rc < 0)
			cli_die(AN_EXIT_SYSTEM, "unable to scout from %s: %s", O.listen, an_strerror(rc));
	} else {
		scouting = true;
		scout_end();
	}
	if (!exit_status)
		ev_run(loop, 0);
	if (!exit_status)
		emit_stats();
	for (size_t i = 0; i < n_sybils; i++)
		an_host_free(sybils[i].h);
	an_host_free(scout);
	while (sreqs) { /* what the hosts did not close */
		struct sreq *r = sreqs;
		r->dialing = false, r->s = NULL;
		sreq_maybe_free(r);
	}
	for (int i = 0; i < O.n_targets; i++)
		an_lookup_free(targets[i].l);
	for (size_t i = 0; i < n_sybils; i++)
		an_privkey_free(sybils[i].key);
	for (size_t i = 0; i < n_stales; i++)
		an_buf_free(&stales[i].value);
	for (size_t i = 0; i < n_held; i++) {
		an_buf_free(&held[i].key);
		an_buf_free(&held[i].value);
	}
	free(sybils);
	free(jobs);
	an_privkey_free(scout_key);
	return cli_finish(exit_status);
}
