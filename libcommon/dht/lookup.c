#include "dht/lookup.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

struct an_lookup {
	struct an_lookup_config cfg;
	struct an_peerid self;
	uint8_t *key;
	size_t key_len;
	struct an_kad_id target;
	struct an_buf request; /* the encoded request, same for every peer */

	/* Every known peer, sorted by distance to the target (closest first). */
	struct an_lookup_peer **peers;
	size_t npeers;

	struct an_lookup_peer **providers; /* GET_PROVIDERS results, arrival order */
	size_t nproviders;

	uint8_t *best;       /* GET_VALUE: best valid value (owned) */
	size_t best_len;
	uint8_t best_hash[32];
	bool has_best;

	bool started;
	bool finished;
	unsigned next_path; /* round-robin start for fairness between paths */
};

static void peer_fill(struct an_lookup_peer *p, const struct an_peerid *id,
		      const struct an_kad_id *target, const struct an_multiaddr *addrs,
		      size_t naddrs, unsigned group_flags)
{
	memset(p, 0, sizeof(*p));
	p->id = *id;
	an_kad_id_from_peer(id, &p->kad);
	an_kad_distance(&p->kad, target, &p->dist);
	if (naddrs > AN_LOOKUP_ADDRS_MAX)
		naddrs = AN_LOOKUP_ADDRS_MAX;
	if (naddrs)
		memcpy(p->addrs, addrs, naddrs * sizeof(addrs[0]));
	p->naddrs = naddrs;
	an_rt_group_of(naddrs ? &addrs[0] : NULL, group_flags, &p->group);
}

int an_lookup_new(struct an_lookup **out, const struct an_lookup_config *cfg,
		  const struct an_peerid *self, const uint8_t *key, size_t key_len)
{
	struct an_lookup *l = NULL;
	struct an_kad_msg req;
	int rc;

	*out = NULL;
	if (cfg->kind != AN_LOOKUP_FIND_NODE && cfg->kind != AN_LOOKUP_GET_VALUE &&
	    cfg->kind != AN_LOOKUP_GET_PROVIDERS)
		return -EINVAL;
	if (cfg->paths > AN_LOOKUP_PATHS_MAX || !key_len)
		return -EINVAL;
	if (cfg->kind == AN_LOOKUP_GET_VALUE && (!cfg->validate || !cfg->compare))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->cfg = *cfg;
	if (!l->cfg.k)
		l->cfg.k = AN_LOOKUP_K_DEFAULT;
	if (!l->cfg.alpha)
		l->cfg.alpha = AN_LOOKUP_ALPHA_DEFAULT;
	if (!l->cfg.paths)
		l->cfg.paths = AN_LOOKUP_PATHS_DEFAULT;
	if (!l->cfg.request_timeout_ms)
		l->cfg.request_timeout_ms = AN_LOOKUP_TIMEOUT_DEFAULT;
	if (!l->cfg.quorum)
		l->cfg.quorum = AN_LOOKUP_QUORUM_DEFAULT;
	if (!l->cfg.max_providers)
		l->cfg.max_providers = AN_LOOKUP_PROVIDERS_DEFAULT;
	if (!l->cfg.max_candidates)
		l->cfg.max_candidates = AN_LOOKUP_CANDIDATES_DEFAULT;
	if (!l->cfg.max_value)
		l->cfg.max_value = AN_LOOKUP_VALUE_MAX_DEFAULT;
	l->self = *self;
	l->key = malloc(key_len);
	if (!l->key) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(l->key, key, key_len);
	l->key_len = key_len;
	an_kad_id_from_key(key, key_len, &l->target);

	an_kad_msg_init(&req);
	req.type = (enum an_kad_type)cfg->kind;
	req.has_key = true;
	req.key.p = l->key;
	req.key.len = key_len;
	an_buf_init(&l->request, AN_KAD_MSG_SEND_MAX);
	rc = an_kad_msg_encode(&req, &l->request);
	if (rc < 0)
		goto out;
	*out = l;
	l = NULL;
out:
	an_lookup_free(l);
	return rc;
}

void an_lookup_free(struct an_lookup *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->npeers; i++)
		free(l->peers[i]);
	free(l->peers);
	for (size_t i = 0; i < l->nproviders; i++)
		free(l->providers[i]);
	free(l->providers);
	free(l->best);
	free(l->key);
	an_buf_free(&l->request);
	free(l);
}

static struct an_lookup_peer *find_peer(const struct an_lookup *l, const struct an_peerid *id)
{
	for (size_t i = 0; i < l->npeers; i++)
		if (an_peerid_equal(&l->peers[i]->id, id))
			return l->peers[i];
	return NULL;
}

/* Insert p (steals it) keeping l->peers sorted by distance. */
static int insert_peer(struct an_lookup *l, struct an_lookup_peer *p)
{
	size_t pos;
	struct an_lookup_peer **np = realloc(l->peers, (l->npeers + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	l->peers = np;
	pos = l->npeers;
	while (pos > 0 && an_kad_id_cmp(&p->dist, &l->peers[pos - 1]->dist) < 0) {
		l->peers[pos] = l->peers[pos - 1];
		pos--;
	}
	l->peers[pos] = p;
	l->npeers++;
	return 0;
}

int an_lookup_seed(struct an_lookup *l, const struct an_peerid *id,
		   const struct an_multiaddr *addrs, size_t naddrs)
{
	struct an_lookup_peer *p;
	int rc;

	if (l->started)
		return -EALREADY;
	if (an_peerid_equal(id, &l->self) || find_peer(l, id))
		return 0;
	if (l->npeers >= l->cfg.max_candidates)
		return AN_ELIMIT;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	peer_fill(p, id, &l->target, addrs, naddrs, l->cfg.group_flags);
	rc = insert_peer(l, p);
	if (rc < 0)
		free(p);
	return rc;
}

/*
 * The view of one path: among its k closest non-failed peers, how many are
 * in flight, the first not yet contacted (or NULL), and the distance of the
 * k-th (the bar a newcomer must beat; NULL while fewer than k).
 */
struct path_view {
	size_t waiting;
	size_t in_window;
	struct an_lookup_peer *next;
	const struct an_lookup_peer *kth;
};

/* Would p be one too many of its group among win[0..n)? */
static bool subnet_full(const struct an_lookup *l, const struct an_lookup_peer *p,
			struct an_lookup_peer *const *win, size_t n)
{
	size_t same = 0;
	if (!l->cfg.max_per_subnet || !p->group.kind)
		return false;
	for (size_t i = 0; i < n; i++)
		same += an_rt_group_equal(&win[i]->group, &p->group);
	return same >= l->cfg.max_per_subnet;
}

static void path_view(const struct an_lookup *l, unsigned path, struct path_view *v)
{
	struct an_lookup_peer *win[AN_RT_K_MAX * 2];
	size_t nwin = 0, idle = 0;
	memset(v, 0, sizeof(*v));
	for (size_t i = 0; i < l->npeers && v->in_window < l->cfg.k; i++) {
		struct an_lookup_peer *p = l->peers[i];
		if (p->path != path || p->state == AN_LOOKUP_PEER_FAILED)
			continue;
		if (subnet_full(l, p, win, nwin))
			continue; /* waits outside the window */
		if (nwin < sizeof(win) / sizeof(win[0]))
			win[nwin++] = p;
		if (p->idle && idle < l->cfg.max_idle) {
			idle++;
			continue; /* answered, no progress: the next candidate takes its place */
		}
		v->in_window++;
		if (p->state == AN_LOOKUP_PEER_WAITING)
			v->waiting++;
		else if (p->state == AN_LOOKUP_PEER_NEW && !v->next)
			v->next = p;
		if (v->in_window == l->cfg.k)
			v->kth = p;
	}
}

static size_t path_inflight(const struct an_lookup *l, unsigned path)
{
	size_t n = 0;
	for (size_t i = 0; i < l->npeers; i++)
		if (l->peers[i]->path == path && l->peers[i]->state == AN_LOOKUP_PEER_WAITING)
			n++;
	return n;
}

static void start(struct an_lookup *l)
{
	/* Deal the seeds (sorted by distance) round-robin to the paths. */
	for (size_t i = 0; i < l->npeers; i++)
		l->peers[i]->path = (unsigned)(i % l->cfg.paths);
	l->started = true;
}

static bool early_exit(const struct an_lookup *l)
{
	if (l->cfg.kind == AN_LOOKUP_GET_VALUE && l->has_best) {
		size_t count = 0;
		for (size_t i = 0; i < l->npeers; i++) {
			const struct an_lookup_peer *p = l->peers[i];
			bool dup = false;
			if (p->record != AN_LOOKUP_REC_BEST)
				continue;
			for (size_t j = 0; l->cfg.quorum_subnets && j < i && !dup; j++)
				dup = l->peers[j]->record == AN_LOOKUP_REC_BEST &&
				      an_rt_group_equal(&l->peers[j]->group, &p->group);
			count += !dup;
		}
		return count >= l->cfg.quorum;
	}
	if (l->cfg.kind == AN_LOOKUP_GET_PROVIDERS)
		return l->nproviders >= l->cfg.max_providers;
	return false;
}

static void fill_request(const struct an_lookup *l, const struct an_lookup_peer *p,
			 struct an_lookup_request *req)
{
	req->peer = p->id;
	req->addrs = p->addrs;
	req->naddrs = p->naddrs;
	req->msg = l->request.data;
	req->msg_len = l->request.len;
	req->path = p->path;
}

int an_lookup_next_request(struct an_lookup *l, uint64_t now_ms, struct an_lookup_request *req)
{
	bool all_finished = true;

	memset(req, 0, sizeof(*req));
	if (!l->started)
		start(l);
	if (l->finished)
		return AN_LOOKUP_DONE;
	/* Timeouts first: each is reported once, so the host can drop the stream. */
	for (size_t i = 0; i < l->npeers; i++) {
		struct an_lookup_peer *p = l->peers[i];
		if (p->state == AN_LOOKUP_PEER_WAITING && now_ms >= p->deadline_ms) {
			p->state = AN_LOOKUP_PEER_FAILED;
			p->timed_out = true;
			fill_request(l, p, req);
			return AN_LOOKUP_TIMEOUT;
		}
	}
	if (early_exit(l)) {
		l->finished = true;
		return AN_LOOKUP_DONE;
	}
	for (size_t n = 0; n < l->cfg.paths; n++) {
		unsigned path = (unsigned)((l->next_path + n) % l->cfg.paths);
		struct path_view v;
		path_view(l, path, &v);
		if (v.next || v.waiting)
			all_finished = false;
		if (v.next && path_inflight(l, path) < l->cfg.alpha) {
			v.next->state = AN_LOOKUP_PEER_WAITING;
			v.next->deadline_ms = now_ms + l->cfg.request_timeout_ms;
			l->next_path = (path + 1) % (unsigned)l->cfg.paths;
			fill_request(l, v.next, req);
			return AN_LOOKUP_REQUEST;
		}
	}
	if (all_finished) {
		l->finished = true;
		return AN_LOOKUP_DONE;
	}
	return AN_LOOKUP_WAIT;
}

uint64_t an_lookup_next_deadline(const struct an_lookup *l)
{
	uint64_t d = UINT64_MAX;
	for (size_t i = 0; i < l->npeers; i++)
		if (l->peers[i]->state == AN_LOOKUP_PEER_WAITING && l->peers[i]->deadline_ms < d)
			d = l->peers[i]->deadline_ms;
	return d;
}

static struct an_lookup_peer *waiting_peer(struct an_lookup *l, const struct an_peerid *peer)
{
	struct an_lookup_peer *p = find_peer(l, peer);
	if (!p || p->state != AN_LOOKUP_PEER_WAITING || l->finished)
		return NULL;
	return p;
}

int an_lookup_failure(struct an_lookup *l, uint64_t now_ms, const struct an_peerid *peer)
{
	(void)now_ms;
	struct an_lookup_peer *p = waiting_peer(l, peer);
	if (!p)
		return AN_ENOTFOUND;
	p->state = AN_LOOKUP_PEER_FAILED;
	return 0;
}

int an_lookup_failure_timeout(struct an_lookup *l, uint64_t now_ms, const struct an_peerid *peer)
{
	(void)now_ms;
	struct an_lookup_peer *p = waiting_peer(l, peer);
	if (!p)
		return AN_ENOTFOUND;
	p->state = AN_LOOKUP_PEER_FAILED;
	p->timed_out = true;
	return 0;
}

/* A closer peer from a response on path: join the path if it could enter its k closest. */
static int learn_peer(struct an_lookup *l, unsigned path, const struct an_kad_peer *kp)
{
	struct an_multiaddr addrs[AN_LOOKUP_ADDRS_MAX];
	struct an_lookup_peer *p;
	struct path_view v;
	size_t naddrs = 0;
	int rc;

	if (an_peerid_equal(&kp->id, &l->self) || find_peer(l, &kp->id))
		return 0; /* ourselves, or known to some path already: disjointness */
	if (l->npeers >= l->cfg.max_candidates)
		return 0;
	for (size_t i = 0; i < kp->naddrs && naddrs < AN_LOOKUP_ADDRS_MAX; i++)
		if (an_multiaddr_from_bytes(kp->addrs[i].p, kp->addrs[i].len, &addrs[naddrs]) == 0)
			naddrs++;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	peer_fill(p, &kp->id, &l->target, addrs, naddrs, l->cfg.group_flags);
	p->path = path;
	path_view(l, path, &v);
	if (v.kth && an_kad_id_cmp(&p->dist, &v.kth->dist) >= 0) {
		free(p);
		return 0; /* could never be among the path's k closest */
	}
	rc = insert_peer(l, p);
	if (rc < 0)
		free(p);
	return rc;
}

static int add_provider(struct an_lookup *l, const struct an_kad_peer *kp)
{
	struct an_multiaddr addrs[AN_LOOKUP_ADDRS_MAX];
	struct an_lookup_peer *p, **np;
	size_t naddrs = 0;

	if (l->nproviders >= l->cfg.max_providers)
		return 0;
	for (size_t i = 0; i < l->nproviders; i++)
		if (an_peerid_equal(&l->providers[i]->id, &kp->id))
			return 0;
	for (size_t i = 0; i < kp->naddrs && naddrs < AN_LOOKUP_ADDRS_MAX; i++)
		if (an_multiaddr_from_bytes(kp->addrs[i].p, kp->addrs[i].len, &addrs[naddrs]) == 0)
			naddrs++;
	np = realloc(l->providers, (l->nproviders + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	l->providers = np;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	peer_fill(p, &kp->id, &l->target, addrs, naddrs, l->cfg.group_flags);
	p->state = AN_LOOKUP_PEER_SUCCEEDED;
	l->providers[l->nproviders++] = p;
	return 0;
}

/* GET_VALUE: judge the record peer p returned. */
static int take_record(struct an_lookup *l, struct an_lookup_peer *p, const struct an_kad_record *r)
{
	uint8_t hash[32];
	int cmp;

	/* js rejects a record whose key is not the one asked for. */
	if (r->key.len != l->key_len || memcmp(r->key.p, l->key, l->key_len) != 0 ||
	    r->value.len > l->cfg.max_value ||
	    l->cfg.validate(l->cfg.arg, l->key, l->key_len, r->value.p, r->value.len) != 0) {
		p->record = AN_LOOKUP_REC_INVALID;
		return 0;
	}
	crypto_hash_sha256(hash, r->value.p, r->value.len);
	memcpy(p->value_hash, hash, sizeof(hash));
	if (l->has_best && memcmp(hash, l->best_hash, sizeof(hash)) == 0) {
		p->record = AN_LOOKUP_REC_BEST;
		return 0;
	}
	cmp = l->has_best ? l->cfg.compare(l->cfg.arg, l->key, l->key_len, r->value.p,
					   r->value.len, l->best, l->best_len) :
			    1;
	if (cmp <= 0) {
		/* Worse, or as good but different: the first one seen stays. */
		p->record = AN_LOOKUP_REC_OUTDATED;
		return 0;
	}
	uint8_t *copy = malloc(r->value.len ? r->value.len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, r->value.p, r->value.len);
	free(l->best);
	l->best = copy;
	l->best_len = r->value.len;
	memcpy(l->best_hash, hash, sizeof(hash));
	l->has_best = true;
	for (size_t i = 0; i < l->npeers; i++)
		if (l->peers[i]->record == AN_LOOKUP_REC_BEST)
			l->peers[i]->record = AN_LOOKUP_REC_OUTDATED;
	p->record = AN_LOOKUP_REC_BEST;
	return 0;
}

int an_lookup_response(struct an_lookup *l, uint64_t now_ms, const struct an_peerid *peer,
		       const struct an_kad_msg *msg)
{
	(void)now_ms;
	struct an_lookup_peer *p = waiting_peer(l, peer);
	size_t ncloser;
	unsigned path;
	int rc = 0;

	if (!p)
		return AN_ENOTFOUND;
	if ((int)msg->type != (int)l->cfg.kind) {
		p->state = AN_LOOKUP_PEER_FAILED;
		return AN_EPROTO;
	}
	p->state = AN_LOOKUP_PEER_SUCCEEDED;
	path = p->path;
	if (l->cfg.kind == AN_LOOKUP_GET_VALUE && msg->has_record) {
		rc = take_record(l, p, &msg->record);
		if (rc < 0)
			return rc;
	}
	if (l->cfg.kind == AN_LOOKUP_GET_PROVIDERS) {
		for (size_t i = 0; i < msg->nproviders; i++) {
			rc = add_provider(l, &msg->providers[i]);
			if (rc < 0)
				return rc;
		}
	}
	/* Nobody has a reason to send more than k closer peers: ignore the rest. */
	ncloser = msg->ncloser < l->cfg.k ? msg->ncloser : l->cfg.k;
	size_t before = l->npeers;
	for (size_t i = 0; i < ncloser; i++) {
		rc = learn_peer(l, path, &msg->closer[i]);
		if (rc < 0)
			return rc;
	}
	/* No record, no provider, nobody new: no progress (max_idle). */
	p->idle = l->npeers == before && p->record == AN_LOOKUP_REC_NONE && !msg->nproviders;
	return 0;
}

bool an_lookup_done(const struct an_lookup *l)
{
	return l->finished;
}

const struct an_kad_id *an_lookup_target(const struct an_lookup *l)
{
	return &l->target;
}

size_t an_lookup_closest(const struct an_lookup *l, const struct an_lookup_peer **out, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < l->npeers && k < n; i++)
		if (l->peers[i]->state == AN_LOOKUP_PEER_SUCCEEDED)
			out[k++] = l->peers[i];
	return k;
}

int an_lookup_value(const struct an_lookup *l, const uint8_t **val, size_t *len, size_t *count)
{
	size_t c = 0;
	if (!l->has_best)
		return AN_ENOTFOUND;
	for (size_t i = 0; i < l->npeers; i++)
		c += l->peers[i]->record == AN_LOOKUP_REC_BEST;
	*val = l->best;
	*len = l->best_len;
	if (count)
		*count = c;
	return 0;
}

size_t an_lookup_corrections(const struct an_lookup *l, const struct an_lookup_peer **out,
			     size_t n)
{
	size_t k = 0, answered = 0;
	if (!l->has_best)
		return 0;
	for (size_t i = 0; i < l->npeers && k < n; i++) {
		const struct an_lookup_peer *p = l->peers[i];
		if (p->state != AN_LOOKUP_PEER_SUCCEEDED)
			continue;
		answered++;
		if (p->record == AN_LOOKUP_REC_OUTDATED || p->record == AN_LOOKUP_REC_INVALID ||
		    (p->record == AN_LOOKUP_REC_NONE && answered <= l->cfg.k))
			out[k++] = p;
	}
	return k;
}

size_t an_lookup_lacking(const struct an_lookup *l, const struct an_lookup_peer **out, size_t n)
{
	size_t k = 0;
	if (!l->has_best)
		return 0;
	for (size_t i = 0; i < l->npeers && k < n; i++) {
		const struct an_lookup_peer *p = l->peers[i];
		if (p->state == AN_LOOKUP_PEER_SUCCEEDED && p->record != AN_LOOKUP_REC_BEST)
			out[k++] = p;
	}
	return k;
}

size_t an_lookup_providers(const struct an_lookup *l, const struct an_lookup_peer **out,
			   size_t n)
{
	size_t k = 0;
	for (; k < l->nproviders && k < n; k++)
		out[k] = l->providers[k];
	return k;
}

int an_lookup_reach(const struct an_lookup *l)
{
	bool timed_out = false;
	for (size_t i = 0; i < l->npeers; i++) {
		if (l->peers[i]->state == AN_LOOKUP_PEER_SUCCEEDED)
			return 0;
		if (l->peers[i]->timed_out)
			timed_out = true;
	}
	return timed_out ? -ETIMEDOUT : -EHOSTUNREACH;
}

size_t an_lookup_peers(const struct an_lookup *l, const struct an_lookup_peer **out, size_t n)
{
	size_t k = 0;
	for (; k < l->npeers && k < n; k++)
		out[k] = l->peers[k];
	return k;
}
