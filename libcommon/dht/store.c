/*
 * store.c - the DHT record and provider store over LMDB.
 *
 * On-disk layout (all integers little-endian; FORMAT_VERSION in meta):
 *
 *   records    key bytes -> [u8 1][u8 flags][u8 from_len][u8 0]
 *                           [i64 time_received][i64 expires]
 *                           [i64 replicated][i64 republished]
 *                           [from: 64 bytes, zero-padded][value bytes]
 *   providers  [u8 key_len][key][provider peer ID] ->
 *                           [i64 expires][u8 naddrs]([u16 len][addr])*
 *   pins       key bytes -> [i64 time pinned]
 *   meta       "version" -> u32; "bytes" -> u64 (record keys + values)
 *
 * The provider key puts the record key first, length-prefixed, so the
 * providers of one key are one contiguous range of the B-tree.
 */
#include "dht/store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"

#define FORMAT_VERSION 1u
#define HDR_LEN 100
#define HDR_FROM_OFF 36
#define PROV_KEY_MAX (1 + AN_STORE_PROVIDER_KEY_MAX + AN_PEERID_MAX)
#define PROV_CLAIM_LEN 10 /* [u8 verified][u8 work][i64 first seen], after the addrs */
#define PROV_VAL_MAX (9 + AN_STORE_PROVIDER_ADDRS_MAX * (2 + AN_MULTIADDR_MAX) + PROV_CLAIM_LEN)

/* NULL-safe closers (LMDB's own NULL checks differ across versions). */
static void txn_abort(MDB_txn *txn)
{
	if (txn)
		mdb_txn_abort(txn);
}

static void cursor_close(MDB_cursor *c)
{
	if (c)
		mdb_cursor_close(c);
}

struct an_store {
	MDB_env *env;
	MDB_dbi records, providers, pins, meta;
	struct an_store_config cfg;
};

/* A record header, decoded. */
struct hdr {
	unsigned flags;
	int64_t received, expires, replicated, republished;
	size_t from_len;
	uint8_t from[AN_PEERID_MAX];
};

/* LMDB's codes (positive errno values or MDB_* below -30000) into ours. */
static int mdb_code(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return AN_ENOTFOUND;
	case MDB_MAP_FULL:
	case MDB_READERS_FULL:
	case MDB_DBS_FULL:
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:
	case MDB_MAP_RESIZED:
		return AN_ELIMIT;
	case MDB_BAD_VALSIZE:
		return AN_ETOOBIG;
	case MDB_INVALID:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE:
		return AN_EMALFORMED;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

static void put_i64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(u >> (8 * i));
}

static int64_t get_i64(const uint8_t *p)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)p[i] << (8 * i);
	return (int64_t)u;
}

static void hdr_encode(const struct hdr *h, uint8_t out[HDR_LEN])
{
	memset(out, 0, HDR_LEN);
	out[0] = 1;
	out[1] = (uint8_t)h->flags;
	out[2] = (uint8_t)h->from_len;
	put_i64(out + 4, h->received);
	put_i64(out + 12, h->expires);
	put_i64(out + 20, h->replicated);
	put_i64(out + 28, h->republished);
	memcpy(out + HDR_FROM_OFF, h->from, h->from_len);
}

/* Decode v's header; the value follows it.  AN_EMALFORMED if v is not ours. */
static int hdr_decode(const MDB_val *v, struct hdr *h)
{
	const uint8_t *p = v->mv_data;
	if (v->mv_size < HDR_LEN || p[0] != 1 || p[2] > AN_PEERID_MAX)
		return AN_EMALFORMED;
	h->flags = p[1];
	h->from_len = p[2];
	h->received = get_i64(p + 4);
	h->expires = get_i64(p + 12);
	h->replicated = get_i64(p + 20);
	h->republished = get_i64(p + 28);
	memcpy(h->from, p + HDR_FROM_OFF, h->from_len);
	return 0;
}

static int meta_bytes(MDB_txn *txn, MDB_dbi meta, uint64_t *bytes)
{
	MDB_val k = { 5, (void *)"bytes" }, v;
	int rc = mdb_get(txn, meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*bytes = 0;
		return 0;
	}
	if (rc)
		return mdb_code(rc);
	if (v.mv_size != 8)
		return AN_EMALFORMED;
	*bytes = (uint64_t)get_i64(v.mv_data);
	return 0;
}

/* Add delta (may be negative) to the byte count. */
static int meta_bytes_add(MDB_txn *txn, MDB_dbi meta, int64_t delta)
{
	uint64_t cur;
	uint8_t buf[8];
	MDB_val k = { 5, (void *)"bytes" }, v = { 8, buf };
	int rc = meta_bytes(txn, meta, &cur);
	if (rc)
		return rc;
	if (delta < 0 && (uint64_t)-delta > cur)
		cur = 0; /* never wrap: a count is only a bound */
	else
		cur += (uint64_t)delta;
	put_i64(buf, (int64_t)cur);
	return mdb_code(mdb_put(txn, meta, &k, &v, 0));
}

static void config_defaults(struct an_store_config *c)
{
	if (!c->map_size)
		c->map_size = AN_STORE_MAP_SIZE_DEFAULT;
	if (!c->max_records)
		c->max_records = AN_STORE_MAX_RECORDS_DEFAULT;
	if (!c->max_bytes)
		c->max_bytes = AN_STORE_MAX_BYTES_DEFAULT;
	if (!c->max_providers)
		c->max_providers = AN_STORE_MAX_PROVIDERS_DEFAULT;
	if (!c->max_providers_per_key)
		c->max_providers_per_key = AN_STORE_PROVIDERS_PER_KEY_DEFAULT;
	if (c->replicate_interval <= 0)
		c->replicate_interval = AN_STORE_REPLICATE_DEFAULT;
	if (c->republish_interval <= 0)
		c->republish_interval = AN_STORE_REPUBLISH_DEFAULT;
	if (c->provider_ttl <= 0)
		c->provider_ttl = AN_STORE_PROVIDER_TTL_DEFAULT;
	if (c->record_ttl <= 0)
		c->record_ttl = AN_STORE_RECORD_TTL_DEFAULT;
}

/* Open the databases and check (or write) the format version. */
static int open_dbs(struct an_store *s)
{
	MDB_txn *txn = NULL;
	MDB_val k = { 7, (void *)"version" }, v;
	uint8_t ver[4] = { FORMAT_VERSION & 0xff, 0, 0, 0 };
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return mdb_code(rc);
	if ((rc = mdb_dbi_open(txn, "records", MDB_CREATE, &s->records)) ||
	    (rc = mdb_dbi_open(txn, "providers", MDB_CREATE, &s->providers)) ||
	    (rc = mdb_dbi_open(txn, "pins", MDB_CREATE, &s->pins)) ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta))) {
		rc = mdb_code(rc);
		goto out;
	}
	rc = mdb_get(txn, s->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		v.mv_size = 4;
		v.mv_data = ver;
		rc = mdb_code(mdb_put(txn, s->meta, &k, &v, 0));
	} else if (rc == 0) {
		rc = (v.mv_size == 4 && memcmp(v.mv_data, ver, 4) == 0) ? 0 : AN_EMALFORMED;
	} else
		rc = mdb_code(rc);
	if (rc)
		goto out;
	rc = mdb_code(mdb_txn_commit(txn));
	txn = NULL;
out:
	txn_abort(txn);
	return rc;
}

int an_store_open(struct an_store **out, const char *dir, const struct an_store_config *cfg)
{
	struct an_store *s;
	int dead, rc;
	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	if (cfg)
		s->cfg = *cfg;
	config_defaults(&s->cfg);
	rc = mdb_env_create(&s->env);
	if (rc) {
		s->env = NULL;
		rc = mdb_code(rc);
		goto out;
	}
	if ((rc = mdb_env_set_maxdbs(s->env, 4)) || (rc = mdb_env_set_mapsize(s->env, s->cfg.map_size))) {
		rc = mdb_code(rc);
		goto out;
	}
	/*
	 * MDB_NOTLS: read transactions are not tied to a thread (the daemon
	 * may hand work to helper threads).  Sync on commit by default, so a
	 * power cut keeps what was acknowledged; a killed process keeps it in
	 * any case, since committed pages are in the OS page cache.
	 */
	rc = mdb_env_open(s->env, dir, MDB_NOTLS | (s->cfg.nosync ? MDB_NOSYNC : 0), 0600);
	if (rc) {
		rc = mdb_code(rc);
		goto out;
	}
	/* Reader slots of processes killed mid-read would pin old pages forever. */
	mdb_reader_check(s->env, &dead);
	rc = open_dbs(s);
out:
	if (rc) {
		an_store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void an_store_close(struct an_store *s)
{
	if (!s)
		return;
	if (s->env)
		mdb_env_close(s->env);
	free(s);
}

const struct an_store_config *an_store_config(const struct an_store *s)
{
	return &s->cfg;
}

/* ---- records ---- */

void an_store_record_init(struct an_store_record *r)
{
	memset(r, 0, sizeof *r);
	an_buf_init(&r->key, AN_VALIDATE_KEY_MAX);
	an_buf_init(&r->value, AN_VALIDATE_AN_VALUE_MAX > AN_VALIDATE_PK_VALUE_MAX
				       ? AN_VALIDATE_AN_VALUE_MAX
				       : AN_VALIDATE_PK_VALUE_MAX);
}

void an_store_record_free(struct an_store_record *r)
{
	if (!r)
		return;
	an_buf_free(&r->key);
	an_buf_free(&r->value);
}

static bool is_pinned(struct an_store *s, MDB_txn *txn, const MDB_val *key)
{
	MDB_val v;
	return mdb_get(txn, s->pins, (MDB_val *)key, &v) == 0;
}

/* Fill r from a stored key/value pair. */
static int record_fill(struct an_store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v,
		       struct an_store_record *r)
{
	struct hdr h;
	int rc = hdr_decode(v, &h);
	if (rc)
		return rc;
	an_buf_reset(&r->key);
	an_buf_reset(&r->value);
	if ((rc = an_buf_append(&r->key, k->mv_data, k->mv_size)) ||
	    (rc = an_buf_append(&r->value, (const uint8_t *)v->mv_data + HDR_LEN, v->mv_size - HDR_LEN)))
		return rc;
	r->flags = h.flags & AN_STORE_OURS;
	if (is_pinned(s, txn, k))
		r->flags |= AN_STORE_PINNED;
	r->time_received = h.received;
	r->expires = h.expires;
	r->replicated = h.replicated;
	r->republished = h.republished;
	r->has_from = h.from_len > 0;
	memset(&r->from, 0, sizeof r->from);
	if (r->has_from) {
		r->from.len = h.from_len;
		memcpy(r->from.bytes, h.from, h.from_len);
	}
	return 0;
}

/* get_root for the validator: a live value under key in the current write txn. */
struct root_get {
	struct an_store *s;
	MDB_txn *txn;
	int64_t now;
};

static int root_get(void *arg, const uint8_t *key, size_t key_len, struct an_buf *out)
{
	struct root_get *g = arg;
	MDB_val k = { key_len, (void *)key }, v;
	struct hdr h;
	int rc = mdb_get(g->txn, g->s->records, &k, &v);
	if (rc)
		return mdb_code(rc);
	if ((rc = hdr_decode(&v, &h)))
		return rc;
	if (h.expires <= g->now)
		return AN_ENOTFOUND;
	return an_buf_append(out, (const uint8_t *)v.mv_data + HDR_LEN, v.mv_size - HDR_LEN);
}

/*
 * Delete expired records (not our own) and providers in txn, at most max
 * of each (0: all); *removed counts them.
 */
static int sweep_txn(struct an_store *s, MDB_txn *txn, int64_t now, size_t max, size_t *removed)
{
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct hdr h;
	size_t n = 0;
	int64_t freed = 0;
	int rc = mdb_cursor_open(txn, s->records, &c);
	if (rc)
		return mdb_code(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && (!max || n < max);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (hdr_decode(&v, &h) == 0 && (h.expires > now || (h.flags & AN_STORE_OURS)))
			continue;
		/* An expired record, or one we cannot read: neither is ever served. */
		freed += (int64_t)(k.mv_size + v.mv_size - HDR_LEN);
		if ((rc = mdb_cursor_del(c, 0)))
			goto out;
		n++;
	}
	cursor_close(c);
	c = NULL;
	if (rc && rc != MDB_NOTFOUND)
		goto out;
	if ((rc = meta_bytes_add(txn, s->meta, -freed)))
		goto out_code;
	rc = mdb_cursor_open(txn, s->providers, &c);
	if (rc)
		goto out;
	size_t np = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && (!max || np < max);
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (v.mv_size >= 9 && get_i64(v.mv_data) > now)
			continue;
		if ((rc = mdb_cursor_del(c, 0)))
			goto out;
		np++;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	n += np;
out:
	rc = mdb_code(rc);
out_code:
	cursor_close(c);
	if (removed)
		*removed = n;
	return rc;
}

/* Is the store full for a new key of add bytes? */
static int full(struct an_store *s, MDB_txn *txn, size_t add, bool *is_full)
{
	MDB_stat st;
	uint64_t bytes;
	int rc = mdb_stat(txn, s->records, &st);
	if (rc)
		return mdb_code(rc);
	if ((rc = meta_bytes(txn, s->meta, &bytes)))
		return rc;
	*is_full = st.ms_entries >= s->cfg.max_records || bytes + add > s->cfg.max_bytes;
	return 0;
}

static int fail(struct an_record_error *e, int code, const char *field, const char *msg)
{
	if (e) {
		snprintf(e->field, sizeof e->field, "%s", field);
		snprintf(e->message, sizeof e->message, "%s", msg);
	}
	return code;
}

int an_store_put(struct an_store *s, const struct an_store_put *p, int64_t now,
		 enum an_store_outcome *outcome, struct an_record_error *e)
{
	struct root_get g = { s, NULL, now };
	struct an_validate_ctx ctx = { .now = now, .root = p->root, .get_root = root_get, .arg = &g };
	struct an_validate_info info;
	MDB_txn *txn = NULL;
	MDB_val k = { p->key_len, (void *)p->key }, v;
	struct hdr h, old;
	bool have = false, is_full;
	enum an_store_outcome res = AN_STORE_NEW;
	int64_t delta;
	int rc;

	if (e)
		e->field[0] = e->message[0] = 0;
	if (p->from && p->from->len > AN_PEERID_MAX)
		return fail(e, AN_EMALFORMED, "from", "sender peer ID too long");
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return mdb_code(rc);
	g.txn = txn;
	rc = an_validate(&ctx, p->key, p->key_len, p->value, p->value_len, &info, e);
	if (rc)
		goto out;
	if (info.ns != AN_NS_AN)
		info.expires = now + s->cfg.record_ttl;

	rc = mdb_get(txn, s->records, &k, &v);
	if (rc == 0) {
		if ((rc = hdr_decode(&v, &old)) == 0 && old.expires > now) {
			have = true;
			int cmp = an_validate_compare(p->key, p->key_len, p->value, p->value_len,
						      (const uint8_t *)v.mv_data + HDR_LEN,
						      v.mv_size - HDR_LEN);
			if (cmp < 0) {
				rc = fail(e, AN_ESTALE, "seq", "older than the record held (lower seq or earlier expiry)");
				goto out;
			}
			res = cmp == 0 ? AN_STORE_UNCHANGED : AN_STORE_REPLACED;
		} else if (rc == 0 && (old.flags & AN_STORE_OURS)) {
			/* An expired own record is only a template: anything valid beats it. */
			have = true;
			res = AN_STORE_REPLACED;
		}
		delta = (int64_t)p->value_len - (int64_t)(v.mv_size - HDR_LEN);
		if (!have) {
			memset(&old, 0, sizeof old);
			rc = 0;
		}
	} else if (rc == MDB_NOTFOUND) {
		memset(&old, 0, sizeof old);
		delta = (int64_t)(p->key_len + p->value_len);
		rc = 0;
	} else {
		rc = mdb_code(rc);
		goto out;
	}

	if (res == AN_STORE_UNCHANGED) {
		/* Same record: only a new OURS flag is worth a write. */
		if ((old.flags | p->flags) == old.flags)
			goto out;
		h = old;
		h.flags |= p->flags & AN_STORE_OURS;
		delta = 0;
	} else {
		if (res == AN_STORE_NEW && !(p->flags & AN_STORE_OURS) && !is_pinned(s, txn, &k)) {
			/* Size policy (store.h): new keys from others only while there is room. */
			if ((rc = full(s, txn, p->key_len + p->value_len, &is_full)))
				goto out;
			if (is_full && ((rc = sweep_txn(s, txn, now, 0, NULL)) ||
					(rc = full(s, txn, p->key_len + p->value_len, &is_full))))
				goto out;
			if (is_full) {
				rc = fail(e, AN_ELIMIT, "", "the record store is full");
				goto out;
			}
			/* The sweep may have removed the expired record under this key. */
			if (mdb_get(txn, s->records, &k, &v) == MDB_NOTFOUND)
				delta = (int64_t)(p->key_len + p->value_len);
		}
		memset(&h, 0, sizeof h);
		h.flags = (have ? old.flags : 0) | (p->flags & AN_STORE_OURS);
		h.received = now;
		h.expires = info.expires;
		/* The sender just put it to the closest peers; the owner just signed it. */
		h.replicated = now;
		h.republished = now;
		if (p->from) {
			h.from_len = p->from->len;
			memcpy(h.from, p->from->bytes, p->from->len);
		}
	}
	v.mv_size = HDR_LEN + (res == AN_STORE_UNCHANGED ? v.mv_size - HDR_LEN : p->value_len);
	{
		/* Copy before the put: LMDB may move the page the old value is on. */
		uint8_t *val = malloc(v.mv_size);
		if (!val) {
			rc = -ENOMEM;
			goto out;
		}
		hdr_encode(&h, val);
		if (res == AN_STORE_UNCHANGED)
			memcpy(val + HDR_LEN, (const uint8_t *)v.mv_data + HDR_LEN, v.mv_size - HDR_LEN);
		else
			memcpy(val + HDR_LEN, p->value, p->value_len);
		v.mv_data = val;
		rc = mdb_put(txn, s->records, &k, &v, 0);
		free(val);
	}
	if (rc) {
		rc = mdb_code(rc);
		if (rc == AN_ELIMIT)
			fail(e, rc, "", "the record store's map is full");
		goto out;
	}
	if (delta && (rc = meta_bytes_add(txn, s->meta, delta)))
		goto out;
	rc = mdb_code(mdb_txn_commit(txn));
	txn = NULL;
out:
	txn_abort(txn);
	if (rc == 0 && outcome)
		*outcome = res;
	return rc;
}

/* Delete key in its own write txn if it is still expired and not ours. */
static int delete_expired(struct an_store *s, const MDB_val *key, int64_t now)
{
	MDB_txn *txn = NULL;
	MDB_val k = *key, v;
	struct hdr h;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return mdb_code(rc);
	rc = mdb_get(txn, s->records, &k, &v);
	if (rc == 0 && hdr_decode(&v, &h) == 0 && (h.expires > now || (h.flags & AN_STORE_OURS))) {
		txn_abort(txn);
		return 0;
	}
	if (rc == 0) {
		int64_t freed = (int64_t)(k.mv_size + v.mv_size - HDR_LEN);
		rc = mdb_del(txn, s->records, &k, NULL);
		if (rc == 0)
			rc = meta_bytes_add(txn, s->meta, -freed);
		else
			rc = mdb_code(rc);
		if (rc == 0)
			rc = mdb_code(mdb_txn_commit(txn));
		else
			txn_abort(txn);
		return rc;
	}
	txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : mdb_code(rc);
}

int an_store_get(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now,
		 struct an_store_record *r)
{
	MDB_txn *txn = NULL;
	MDB_val k = { key_len, (void *)key }, v;
	struct hdr h;
	bool expired = false;
	int rc;
	if (key_len == 0 || key_len > AN_VALIDATE_KEY_MAX)
		return AN_ENOTFOUND;
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_code(rc);
	rc = mdb_get(txn, s->records, &k, &v);
	if (rc) {
		rc = mdb_code(rc);
		goto out;
	}
	if ((rc = hdr_decode(&v, &h)))
		goto out;
	if (h.expires <= now) {
		expired = !(h.flags & AN_STORE_OURS);
		rc = AN_ENOTFOUND;
		goto out;
	}
	rc = record_fill(s, txn, &k, &v, r);
out:
	txn_abort(txn);
	if (expired) {
		/* Lazily, as js does on GET; the sweep gets the rest. */
		int drc = delete_expired(s, &k, now);
		if (drc)
			rc = drc;
	}
	return rc;
}

int an_store_del(struct an_store *s, const uint8_t *key, size_t key_len)
{
	MDB_txn *txn = NULL;
	MDB_val k = { key_len, (void *)key }, v;
	int rc;
	if (key_len == 0 || key_len > AN_VALIDATE_KEY_MAX)
		return AN_ENOTFOUND;
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return mdb_code(rc);
	rc = mdb_get(txn, s->records, &k, &v);
	if (rc) {
		rc = mdb_code(rc);
		goto out;
	}
	int64_t freed = (int64_t)(k.mv_size + v.mv_size) - HDR_LEN;
	if ((rc = mdb_code(mdb_del(txn, s->records, &k, NULL))) ||
	    (rc = meta_bytes_add(txn, s->meta, -freed)))
		goto out;
	rc = mdb_code(mdb_txn_commit(txn));
	txn = NULL;
out:
	txn_abort(txn);
	return rc;
}

static bool passes(struct an_store *s, MDB_txn *txn, const MDB_val *k, const struct hdr *h,
		   enum an_store_filter filter, int64_t now)
{
	bool live = h->expires > now;
	switch (filter) {
	case AN_STORE_ALL:
		return live;
	case AN_STORE_REPLICATE_DUE:
		return live && h->replicated + s->cfg.replicate_interval <= now;
	case AN_STORE_REPUBLISH_DUE:
		if (h->republished + s->cfg.republish_interval > now)
			return false;
		return (h->flags & AN_STORE_OURS) || (live && is_pinned(s, txn, k));
	}
	return false;
}

/* Position c on the first key after after[0..len) (the first key if len is 0). */
static int cursor_after(MDB_cursor *c, const uint8_t *after, size_t len, MDB_val *k, MDB_val *v)
{
	int rc;
	if (len == 0)
		return mdb_cursor_get(c, k, v, MDB_FIRST);
	k->mv_size = len;
	k->mv_data = (void *)after;
	rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (rc == 0 && k->mv_size == len && memcmp(k->mv_data, after, len) == 0)
		rc = mdb_cursor_get(c, k, v, MDB_NEXT);
	return rc;
}

int an_store_next(struct an_store *s, enum an_store_filter filter, int64_t now,
		  struct an_store_record *r)
{
	uint8_t after[AN_VALIDATE_KEY_MAX];
	size_t after_len = r->key.len <= sizeof after ? r->key.len : sizeof after;
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	struct hdr h;
	int rc;
	if (after_len)
		memcpy(after, r->key.data, after_len);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_code(rc);
	if ((rc = mdb_cursor_open(txn, s->records, &c))) {
		rc = mdb_code(rc);
		goto out;
	}
	for (rc = cursor_after(c, after, after_len, &k, &v); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
		if (hdr_decode(&v, &h) == 0 && passes(s, txn, &k, &h, filter, now))
			break;
	rc = rc ? mdb_code(rc) : record_fill(s, txn, &k, &v, r);
out:
	cursor_close(c);
	txn_abort(txn);
	return rc;
}

/* Set one time field (byte offset off in the header) of key's record to now. */
static int mark(struct an_store *s, const uint8_t *key, size_t key_len, size_t off, int64_t now)
{
	MDB_txn *txn = NULL;
	MDB_val k = { key_len, (void *)key }, v;
	uint8_t *copy = NULL;
	int rc;
	if (key_len == 0 || key_len > AN_VALIDATE_KEY_MAX)
		return AN_ENOTFOUND;
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return mdb_code(rc);
	if ((rc = mdb_code(mdb_get(txn, s->records, &k, &v))))
		goto out;
	if (v.mv_size < HDR_LEN) {
		rc = AN_EMALFORMED;
		goto out;
	}
	/* Data from mdb_get is read-only: write a changed copy. */
	copy = malloc(v.mv_size);
	if (!copy) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(copy, v.mv_data, v.mv_size);
	put_i64(copy + off, now);
	v.mv_data = copy;
	if ((rc = mdb_code(mdb_put(txn, s->records, &k, &v, 0))))
		goto out;
	rc = mdb_code(mdb_txn_commit(txn));
	txn = NULL;
out:
	txn_abort(txn);
	free(copy);
	return rc;
}

int an_store_mark_replicated(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now)
{
	return mark(s, key, key_len, 20, now);
}

int an_store_mark_republished(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now)
{
	return mark(s, key, key_len, 28, now);
}

int an_store_sweep(struct an_store *s, int64_t now, size_t max, size_t *removed)
{
	MDB_txn *txn = NULL;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (removed)
		*removed = 0;
	if (rc)
		return mdb_code(rc);
	rc = sweep_txn(s, txn, now, max, removed);
	if (rc == 0)
		rc = mdb_code(mdb_txn_commit(txn));
	else
		txn_abort(txn);
	return rc;
}

int an_store_stat(struct an_store *s, size_t *records, size_t *bytes)
{
	MDB_txn *txn = NULL;
	MDB_stat st;
	uint64_t b = 0;
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_code(rc);
	rc = mdb_code(mdb_stat(txn, s->records, &st));
	if (rc == 0)
		rc = meta_bytes(txn, s->meta, &b);
	txn_abort(txn);
	if (rc)
		return rc;
	if (records)
		*records = st.ms_entries;
	if (bytes)
		*bytes = (size_t)b;
	return 0;
}

/* ---- pins ---- */

int an_store_pin(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now)
{
	MDB_txn *txn = NULL;
	uint8_t t[8];
	MDB_val k = { key_len, (void *)key }, v = { 8, t };
	int rc;
	if (key_len > AN_VALIDATE_KEY_MAX)
		return AN_ETOOBIG;
	if (an_validate_namespace(key, key_len) == AN_NS_UNKNOWN)
		return AN_ENOPROTO;
	put_i64(t, now);
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return mdb_code(rc);
	rc = mdb_put(txn, s->pins, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST) {
		txn_abort(txn);
		return 0;
	}
	if (rc) {
		txn_abort(txn);
		return mdb_code(rc);
	}
	return mdb_code(mdb_txn_commit(txn));
}

int an_store_unpin(struct an_store *s, const uint8_t *key, size_t key_len)
{
	MDB_txn *txn = NULL;
	MDB_val k = { key_len, (void *)key };
	int rc;
	if (key_len == 0 || key_len > AN_VALIDATE_KEY_MAX)
		return AN_ENOTFOUND;
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return mdb_code(rc);
	rc = mdb_del(txn, s->pins, &k, NULL);
	if (rc) {
		txn_abort(txn);
		return mdb_code(rc);
	}
	return mdb_code(mdb_txn_commit(txn));
}

int an_store_pin_next(struct an_store *s, struct an_buf *key)
{
	uint8_t after[AN_VALIDATE_KEY_MAX];
	size_t after_len = key->len <= sizeof after ? key->len : sizeof after;
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	int rc;
	if (after_len)
		memcpy(after, key->data, after_len);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_code(rc);
	rc = mdb_cursor_open(txn, s->pins, &c);
	if (rc == 0)
		rc = cursor_after(c, after, after_len, &k, &v);
	rc = mdb_code(rc);
	if (rc == 0) {
		an_buf_reset(key);
		rc = an_buf_append(key, k.mv_data, k.mv_size);
	}
	cursor_close(c);
	txn_abort(txn);
	return rc;
}

/* ---- providers ---- */

/* [u8 key_len][key], the prefix of every provider entry of key. */
static size_t prov_prefix(const uint8_t *key, size_t key_len, uint8_t *out)
{
	out[0] = (uint8_t)key_len;
	memcpy(out + 1, key, key_len);
	return 1 + key_len;
}

static int prov_decode(const MDB_val *k, const MDB_val *v, size_t prefix_len,
		       struct an_store_provider *p)
{
	const uint8_t *d = v->mv_data;
	size_t off = 9, idlen = k->mv_size - prefix_len;
	if (v->mv_size < 9 || idlen == 0 || idlen > AN_PEERID_MAX || d[8] > AN_STORE_PROVIDER_ADDRS_MAX)
		return AN_EMALFORMED;
	memset(p, 0, sizeof *p);
	p->id.len = idlen;
	memcpy(p->id.bytes, (const uint8_t *)k->mv_data + prefix_len, idlen);
	p->expires = get_i64(d);
	for (size_t i = 0; i < d[8]; i++) {
		size_t n;
		if (off + 2 > v->mv_size)
			return AN_EMALFORMED;
		n = (size_t)d[off] | (size_t)d[off + 1] << 8;
		off += 2;
		if (n > AN_MULTIADDR_MAX || off + n > v->mv_size)
			return AN_EMALFORMED;
		p->addrs[i].len = n;
		memcpy(p->addrs[i].bytes, d + off, n);
		off += n;
	}
	p->naddrs = d[8];
	/* Entries written before claims have no trailer: unverified, first seen 0. */
	if (off + PROV_CLAIM_LEN == v->mv_size) {
		p->verified = d[off] == 1;
		p->work = d[off + 1];
		p->first_seen = get_i64(d + off + 2);
	}
	return 0;
}

/* a ranks before b: verified claims first, then the oldest. */
static bool prov_before(const struct an_store_provider *a, const struct an_store_provider *b)
{
	if (a->verified != b->verified)
		return a->verified;
	return a->first_seen < b->first_seen;
}

int an_store_provider_add(struct an_store *s, const uint8_t *key, size_t key_len,
			  const struct an_peerid *id, const struct an_multiaddr *addrs, size_t naddrs,
			  int64_t now)
{
	return an_store_provider_claim(s, key, key_len, id, addrs, naddrs, false, 0, now);
}

int an_store_provider_claim(struct an_store *s, const uint8_t *key, size_t key_len,
			    const struct an_peerid *id, const struct an_multiaddr *addrs,
			    size_t naddrs, bool verified, unsigned work, int64_t now)
{
	uint8_t kb[PROV_KEY_MAX], vb[PROV_VAL_MAX], victim[PROV_KEY_MAX];
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	MDB_stat st;
	size_t plen, vlen = 9, live = 0, victim_len = 0;
	int64_t first_seen = now, victim_seen = 0;
	struct an_store_provider old;
	int rc;
	if (key_len == 0 || key_len > AN_STORE_PROVIDER_KEY_MAX || an_multihash_check(key, key_len))
		return AN_EMALFORMED;
	if (id->len == 0 || id->len > AN_PEERID_MAX)
		return AN_EMALFORMED;
	if (naddrs > AN_STORE_PROVIDER_ADDRS_MAX)
		naddrs = AN_STORE_PROVIDER_ADDRS_MAX;
	if (work > 255)
		work = 255;
	plen = prov_prefix(key, key_len, kb);
	memcpy(kb + plen, id->bytes, id->len);
	put_i64(vb, now + s->cfg.provider_ttl);
	vb[8] = (uint8_t)naddrs;
	for (size_t i = 0; i < naddrs; i++) {
		if (addrs[i].len > AN_MULTIADDR_MAX)
			return AN_ETOOBIG;
		vb[vlen] = (uint8_t)addrs[i].len;
		vb[vlen + 1] = (uint8_t)(addrs[i].len >> 8);
		memcpy(vb + vlen + 2, addrs[i].bytes, addrs[i].len);
		vlen += 2 + addrs[i].len;
	}
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc)
		return mdb_code(rc);
	k.mv_size = plen + id->len;
	k.mv_data = kb;
	rc = mdb_get(txn, s->providers, &k, &v);
	if (rc == 0 && (v.mv_size < 9 || get_i64(v.mv_data) <= now)) {
		/* A lapsed entry comes back as a newcomer. */
		if ((rc = mdb_del(txn, s->providers, &k, NULL)))
			goto out;
		rc = MDB_NOTFOUND;
	}
	if (rc == 0) {
		/* A refresh: a verified claim stays verified and keeps the time it
		   was first verified; an unverified entry keeps its first-seen time. */
		if (prov_decode(&k, &v, plen, &old) == 0) {
			if (old.verified && !verified) {
				verified = true;
				work = old.work;
				first_seen = old.first_seen;
			} else if (old.verified == verified) {
				first_seen = old.first_seen;
			}
		}
	} else if (rc == MDB_NOTFOUND) {
		/* A newcomer: count the key's live providers, dropping dead ones,
		   and note the youngest unverified one. */
		if ((rc = mdb_cursor_open(txn, s->providers, &c)))
			goto out;
		k.mv_size = plen;
		for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		     rc == 0 && k.mv_size > plen && memcmp(k.mv_data, kb, plen) == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			if (v.mv_size >= 9 && get_i64(v.mv_data) > now) {
				live++;
				if (prov_decode(&k, &v, plen, &old) == 0 && !old.verified &&
				    k.mv_size <= sizeof(victim) &&
				    (victim_len == 0 || old.first_seen >= victim_seen)) {
					victim_len = k.mv_size;
					memcpy(victim, k.mv_data, k.mv_size);
					victim_seen = old.first_seen;
				}
			} else if ((rc = mdb_cursor_del(c, 0))) {
				goto out;
			}
		}
		if (rc && rc != MDB_NOTFOUND)
			goto out;
		cursor_close(c);
		c = NULL;
		if (live >= s->cfg.max_providers_per_key) {
			/* Full: only a verified claim gets in, in place of the youngest
			   unverified provider; verified claimants are never displaced. */
			if (!verified || victim_len == 0) {
				txn_abort(txn);
				return AN_ELIMIT;
			}
			k.mv_size = victim_len;
			k.mv_data = victim;
			if ((rc = mdb_del(txn, s->providers, &k, NULL)))
				goto out;
		}
		if ((rc = mdb_stat(txn, s->providers, &st)))
			goto out;
		if (st.ms_entries >= s->cfg.max_providers) {
			if ((rc = sweep_txn(s, txn, now, 0, NULL)))
				goto out_code;
			if ((rc = mdb_stat(txn, s->providers, &st)))
				goto out;
			if (st.ms_entries >= s->cfg.max_providers) {
				txn_abort(txn);
				return AN_ELIMIT;
			}
		}
	} else {
		goto out;
	}
	vb[vlen] = verified ? 1 : 0;
	vb[vlen + 1] = (uint8_t)work;
	put_i64(vb + vlen + 2, first_seen);
	vlen += PROV_CLAIM_LEN;
	k.mv_size = plen + id->len;
	k.mv_data = kb;
	v.mv_size = vlen;
	v.mv_data = vb;
	if ((rc = mdb_put(txn, s->providers, &k, &v, 0)))
		goto out;
	rc = mdb_txn_commit(txn);
	txn = NULL;
out:
	rc = mdb_code(rc);
out_code:
	cursor_close(c);
	txn_abort(txn);
	return rc;
}

int an_store_providers_get(struct an_store *s, const uint8_t *key, size_t key_len, int64_t now,
			   struct an_store_provider *out, size_t max, size_t *n)
{
	uint8_t kb[1 + AN_STORE_PROVIDER_KEY_MAX];
	MDB_txn *txn = NULL;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	size_t plen;
	int rc;
	*n = 0;
	if (key_len == 0 || key_len > AN_STORE_PROVIDER_KEY_MAX)
		return 0;
	plen = prov_prefix(key, key_len, kb);
	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_code(rc);
	if ((rc = mdb_cursor_open(txn, s->providers, &c)))
		goto out;
	k.mv_size = plen;
	k.mv_data = kb;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > plen && memcmp(k.mv_data, kb, plen) == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		struct an_store_provider p;
		size_t at;
		if (v.mv_size < 9 || get_i64(v.mv_data) <= now)
			continue;
		if (prov_decode(&k, &v, plen, &p) != 0)
			continue;
		/* Insert in rank order; past max, the last ranked falls off. */
		for (at = *n; at > 0 && prov_before(&p, &out[at - 1]); at--)
			;
		if (at >= max)
			continue;
		if (*n < max)
			(*n)++;
		memmove(&out[at + 1], &out[at], (*n - 1 - at) * sizeof(out[0]));
		out[at] = p;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	cursor_close(c);
	txn_abort(txn);
	return mdb_code(rc);
}
