/*
 * reach.c - the reachability tracker (see reach.h).
 */
#include "nat/reach.h"

#include <errno.h>
#include <string.h>

#include "util/error.h"

void an_reach_init(struct an_reach *r, int min_confidence)
{
	memset(r, 0, sizeof(*r));
	r->min_confidence = min_confidence > 0 ? min_confidence : AN_REACH_DEFAULT_CONFIDENCE;
}

static struct an_reach_addr *find(struct an_reach *r, const char *text)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->a[i].text, text) == 0)
			return &r->a[i];
	return NULL;
}

const struct an_reach_addr *an_reach_find(const struct an_reach *r, const char *text)
{
	return find((struct an_reach *)r, text);
}

int an_reach_add(struct an_reach *r, const char *text, bool observed, uint64_t now_ms)
{
	size_t len = text ? strlen(text) : 0;
	if (len == 0 || len >= AN_REACH_TEXT_MAX)
		return -EINVAL;
	struct an_reach_addr *e = find(r, text);
	if (e) {
		if (!observed)
			e->observed = false;
		e->seen_ms = now_ms;
		return 0;
	}
	if (r->n < AN_REACH_MAX_ADDRS) {
		e = &r->a[r->n++];
	} else {
		/* our own addresses may also replace observed ones */
		for (size_t i = 0; i < r->n; i++) {
			struct an_reach_addr *c = &r->a[i];
			if (!c->observed || c->state == AN_REACH_PUBLIC)
				continue;
			if (!e || c->seen_ms < e->seen_ms)
				e = c;
		}
		if (!e)
			return AN_ELIMIT;
	}
	memset(e, 0, sizeof(*e));
	memcpy(e->text, text, len + 1);
	e->observed = observed;
	e->seen_ms = now_ms;
	return 0;
}

static enum an_reach_state judge(const struct an_reach_addr *e, int minc)
{
	int s = 0, f = 0;
	for (unsigned i = 0; i < e->n; i++) {
		if (e->outcomes & (1u << i))
			s++;
		else
			f++;
	}
	if (s - f >= minc)
		return AN_REACH_PUBLIC;
	if (f - s >= minc)
		return AN_REACH_PRIVATE;
	return AN_REACH_UNKNOWN;
}

int an_reach_result(struct an_reach *r, const char *text, bool dialed, uint64_t now_ms)
{
	struct an_reach_addr *e = text ? find(r, text) : NULL;
	if (!e)
		return AN_ENOTFOUND;
	e->outcomes = (uint8_t)(((e->outcomes << 1) | (dialed ? 1u : 0u)) & ((1u << AN_REACH_WINDOW) - 1));
	if (e->n < AN_REACH_WINDOW)
		e->n++;
	e->seen_ms = now_ms;
	enum an_reach_state s = judge(e, r->min_confidence);
	if (s == e->state)
		return 0;
	e->state = s;
	return 1;
}

enum an_reach_state an_reach_overall(const struct an_reach *r)
{
	bool priv = false;
	for (size_t i = 0; i < r->n; i++) {
		if (r->a[i].state == AN_REACH_PUBLIC)
			return AN_REACH_PUBLIC;
		if (r->a[i].state == AN_REACH_PRIVATE)
			priv = true;
	}
	return priv ? AN_REACH_PRIVATE : AN_REACH_UNKNOWN;
}

static bool due(const struct an_reach_addr *e, uint64_t now_ms, uint64_t wait_ms)
{
	return e->probed_ms == 0 || now_ms >= e->probed_ms + wait_ms;
}

static struct an_reach_addr *pick(struct an_reach *r, uint64_t now_ms, uint64_t gap_ms,
				  uint64_t reprobe_ms)
{
	struct an_reach_addr *best = NULL;
	for (size_t i = 0; i < r->n; i++) {
		struct an_reach_addr *e = &r->a[i];
		if (e->n >= (unsigned)r->min_confidence + 1 && e->state != AN_REACH_UNKNOWN)
			continue;
		if (!due(e, now_ms, gap_ms))
			continue;
		if (!best || e->probes < best->probes)
			best = e;
	}
	for (size_t i = 0; !best && i < r->n; i++)
		if (due(&r->a[i], now_ms, reprobe_ms))
			best = &r->a[i];
	return best;
}

const struct an_reach_addr *an_reach_next(struct an_reach *r, uint64_t now_ms, uint64_t gap_ms,
					  uint64_t reprobe_ms)
{
	struct an_reach_addr *best = pick(r, now_ms, gap_ms, reprobe_ms);
	if (best) {
		best->probed_ms = now_ms ? now_ms : 1;
		best->probes++;
	}
	return best;
}

bool an_reach_due(const struct an_reach *r, uint64_t now_ms, uint64_t gap_ms, uint64_t reprobe_ms)
{
	return pick((struct an_reach *)r, now_ms, gap_ms, reprobe_ms) != NULL;
}

const char *an_reach_name(enum an_reach_state s)
{
	switch (s) {
	case AN_REACH_PUBLIC:
		return "public";
	case AN_REACH_PRIVATE:
		return "private";
	default:
		return "unknown";
	}
}
