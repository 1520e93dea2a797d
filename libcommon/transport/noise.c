#include "transport/noise.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <sodium.h>

#include "encoding/protobuf.h"
#include "util/error.h"

/* Exactly 32 bytes, so h = the name itself (Noise spec 5.2 InitializeSymmetric). */
static const char protocol_name[] = "Noise_XX_25519_ChaChaPoly_SHA256";
static const char sig_prefix[] = "noise-libp2p-static-key:";
static const char *const default_muxers[] = { AN_NOISE_DEFAULT_MUXER };

#define PROLOGUE_MAX 256
#define DH_LEN 32
#define HASH_LEN 32

enum noise_state { ST_HANDSHAKE = 0, ST_ESTABLISHED, ST_FAILED };

struct cipher {
	uint8_t k[32];
	uint64_t n;
	bool has_key;
};

/*
 * Handshake state, in its own sodium_malloc() block (guard pages, mlocked):
 * it holds the static and ephemeral secrets and the chaining key.  Freed
 * (zeroed by sodium_free) as soon as the handshake ends or fails, so an
 * established session keeps none of it.
 */
struct handshake {
	/* SymmetricState (h stays in struct an_noise: it outlives the handshake) */
	struct cipher hs;   /* handshake CipherState */
	uint8_t ck[HASH_LEN];

	uint8_t s_sk[DH_LEN], s_pk[DH_LEN];
	uint8_t s_sig[64];  /* the identity's signature over s_pk, when has_sig */
	bool has_sig;
	uint8_t e_sk[DH_LEN], e_pk[DH_LEN];
	bool e_ready;       /* a spare's ephemeral pair, made ahead (handshake_take) */
	uint8_t rs[DH_LEN], re[DH_LEN];

	uint8_t prologue[PROLOGUE_MAX];
	size_t prologue_len;

	bool has_expected;
	struct an_peerid expected;
	char muxers[AN_NOISE_MUXERS_MAX][AN_NOISE_MUXER_ID_MAX + 1];
	size_t n_muxers;
};

/* The two CipherStates of Split(): all an established session needs. */
struct keys {
	struct cipher tx, rx;
};

/*
 * Ordinary heap: nothing secret.  The handshake hash h is a transcript hash
 * of public messages (channel binding), not key material.
 */
struct an_noise {
	enum an_noise_role role;
	enum noise_state state;
	int error;
	bool initialized;   /* symmetric state set up (deferred for the prologue hook) */
	bool started;
	unsigned msg;       /* handshake messages processed so far (0..3) */

	uint8_t h[HASH_LEN];
	struct handshake *x; /* sodium_malloc; NULL once established or failed */
	struct keys *keys;   /* a slot of the key slabs below; NULL once failed */

	const struct an_privkey *identity; /* borrowed until established */

	struct an_pubkey remote_key;
	struct an_peerid remote_peer;
	bool has_muxer;
	char muxer[AN_NOISE_MUXER_ID_MAX + 1];
	char reason[AN_NOISE_REASON_MAX];
};

/*
 * Transport keys of every session of the process, in shared slabs of
 * SLAB_SLOTS fixed slots.  A sodium_malloc() block per session costs three
 * resident pages (the size page, the canary and data page, 12 KB with the
 * old whole-state block) whatever its size; a daemon with 100 connections
 * paid 1.2 MB for 9 KB of keys.  One slab is one sodium_malloc() block whose
 * data fits in one page (SLAB_SLOTS * 96 bytes + the 16-byte canary <= 4096),
 * so ~40 sessions cost two resident pages, still mlocked, guarded and zeroed
 * on free.  A slot is wiped when released; an empty slab is unmapped.  The
 * lock is there because libcommon does not forbid hosts in two threads.
 */
#define SLAB_SLOTS 40

struct slab {
	struct keys *slots; /* sodium_malloc(SLAB_SLOTS * sizeof(struct keys)) */
	uint64_t used;      /* bit i: slots[i] is taken */
	unsigned n_used;
	struct slab *next;
};

static struct slab *slabs;
static pthread_mutex_t slab_lock = PTHREAD_MUTEX_INITIALIZER;

/* A zeroed slot, or NULL (out of memory).  sodium_init() must have run. */
static struct keys *keys_alloc(void)
{
	struct keys *k = NULL;
	struct slab *s;

	pthread_mutex_lock(&slab_lock);
	for (s = slabs; s && s->n_used == SLAB_SLOTS; s = s->next)
		;
	if (!s) {
		if (!(s = calloc(1, sizeof *s)))
			goto out;
		if (!(s->slots = sodium_malloc(SLAB_SLOTS * sizeof(struct keys)))) {
			free(s);
			goto out;
		}
		s->next = slabs;
		slabs = s;
	}
	for (unsigned i = 0; i < SLAB_SLOTS; i++) {
		if (!(s->used & (UINT64_C(1) << i))) {
			s->used |= UINT64_C(1) << i;
			s->n_used++;
			k = &s->slots[i];
			break;
		}
	}
out:
	pthread_mutex_unlock(&slab_lock);
	if (k)
		memset(k, 0, sizeof *k);
	return k;
}

/* NULL-safe: wipe k and give its slot back. */
static void keys_free(struct keys *k)
{
	struct slab **pp, *s;

	if (!k)
		return;
	sodium_memzero(k, sizeof *k);
	pthread_mutex_lock(&slab_lock);
	for (pp = &slabs; (s = *pp); pp = &s->next) {
		if ((uintptr_t)k >= (uintptr_t)s->slots &&
		    (uintptr_t)k < (uintptr_t)(s->slots + SLAB_SLOTS)) {
			s->used &= ~(UINT64_C(1) << (k - s->slots));
			/* the last slab stays: a process that makes one connection
			   after another would map and unmap it every time */
			if (--s->n_used == 0 && (pp != &slabs || s->next)) {
				*pp = s->next;
				sodium_free(s->slots);
				free(s);
			}
			break;
		}
	}
	pthread_mutex_unlock(&slab_lock);
}

/*
 * One static key per identity for the whole process.  noise-libp2p lets a
 * node keep its static X25519 key across connections (js-libp2p keeps one
 * per node); making one per connection cost an X25519 base-point
 * multiplication and an identity signature on both sides of every
 * handshake.  Entries are keyed by the identity's encoded public key, so a
 * freed identity whose memory is reused cannot pick up another's key.  They
 * live in one sodium_malloc() block (guarded, mlocked) for the life of the
 * process, under slab_lock; the oldest entry gives way when all are taken
 * (a process normally has one identity).
 */
#define STATIC_CACHE 4

struct static_key {
	uint8_t id[AN_PUBKEY_PB_MAX];
	size_t id_len; /* 0: entry unused */
	uint8_t sk[DH_LEN], pk[DH_LEN];
	uint8_t sig[64];
};

static struct static_key *static_keys; /* sodium_malloc(STATIC_CACHE entries) */
static unsigned static_next;           /* the entry to replace next */

/*
 * The static key pair of identity (made and signed on first use) into
 * x->s_sk, s_pk and s_sig.  Negative (out of memory, a key that cannot
 * sign): the caller makes a key of its own instead.
 */
static int static_key_get(const struct an_privkey *identity, struct handshake *x)
{
	struct an_pubkey pub;
	struct an_buf id;
	uint8_t msg[sizeof sig_prefix - 1 + DH_LEN];
	struct static_key *e = NULL;
	int rc;

	an_buf_init(&id, AN_PUBKEY_PB_MAX);
	an_privkey_public(identity, &pub);
	if ((rc = an_pubkey_encode(&pub, &id)) < 0) {
		an_buf_free(&id);
		return rc;
	}
	pthread_mutex_lock(&slab_lock);
	if (!static_keys) {
		static_keys = sodium_malloc(STATIC_CACHE * sizeof *static_keys);
		if (!static_keys) {
			rc = -ENOMEM;
			goto out;
		}
		memset(static_keys, 0, STATIC_CACHE * sizeof *static_keys);
	}
	for (unsigned i = 0; i < STATIC_CACHE && !e; i++)
		if (static_keys[i].id_len == id.len && memcmp(static_keys[i].id, id.data, id.len) == 0)
			e = &static_keys[i];
	if (!e) {
		struct static_key *fresh = &static_keys[static_next];
		sodium_memzero(fresh, sizeof *fresh);
		crypto_box_keypair(fresh->pk, fresh->sk);
		memcpy(msg, sig_prefix, sizeof sig_prefix - 1);
		memcpy(msg + sizeof sig_prefix - 1, fresh->pk, DH_LEN);
		if ((rc = an_privkey_sign(identity, msg, sizeof msg, fresh->sig)) < 0) {
			sodium_memzero(fresh, sizeof *fresh);
			goto out;
		}
		memcpy(fresh->id, id.data, id.len);
		fresh->id_len = id.len;
		static_next = (static_next + 1) % STATIC_CACHE;
		e = fresh;
	}
	memcpy(x->s_sk, e->sk, DH_LEN);
	memcpy(x->s_pk, e->pk, DH_LEN);
	memcpy(x->s_sig, e->sig, sizeof x->s_sig);
	x->has_sig = true;
	rc = 0;
out:
	pthread_mutex_unlock(&slab_lock);
	an_buf_free(&id);
	return rc;
}

/*
 * Spare handshake blocks.  A sodium_malloc() costs six system calls (mmap,
 * three mprotect, madvise, mlock) and a sodium_free() four: every
 * connection paid ten before its first message and ten after its last.  A
 * finished handshake's block is wiped and kept here instead (at most
 * SPARE_MAX), and an_noise_prepare() - which the host calls when its loop
 * is about to wait - gives each spare a fresh ephemeral key pair, so the
 * next handshake does not make one (an X25519 base-point multiplication,
 * ~32 us here) while its peer waits.  A spare's pair is used by one
 * handshake only and wiped with the block; it is as fresh as one made on
 * the spot, only made earlier, and it sits in the same guarded, mlocked
 * memory.  Under slab_lock, like the slabs.
 */
#define SPARE_MAX 4

static struct handshake *spares[SPARE_MAX];
static unsigned n_spares, n_unready;

/* A zeroed block with an ephemeral pair in it, or NULL (out of memory). */
static struct handshake *handshake_take(void)
{
	struct handshake *x = NULL;
	pthread_mutex_lock(&slab_lock);
	if (n_spares) {
		x = spares[--n_spares];
		if (!x->e_ready)
			n_unready--;
	}
	pthread_mutex_unlock(&slab_lock);
	if (!x) {
		if (!(x = sodium_malloc(sizeof *x)))
			return NULL;
		memset(x, 0, sizeof *x);
	}
	if (!x->e_ready)
		crypto_box_keypair(x->e_pk, x->e_sk);
	x->e_ready = false; /* taken: never handed out again */
	return x;
}

/* Wipe x and keep it as a spare, or free it when there are enough. */
static void handshake_give(struct handshake *x)
{
	sodium_memzero(x, sizeof *x);
	pthread_mutex_lock(&slab_lock);
	if (n_spares < SPARE_MAX) {
		spares[n_spares++] = x;
		n_unready++;
		x = NULL;
	}
	pthread_mutex_unlock(&slab_lock);
	sodium_free(x); /* NULL-safe */
}

bool an_noise_prepare(void)
{
	struct handshake *x = NULL;
	if (!__atomic_load_n(&n_unready, __ATOMIC_RELAXED))
		return false;
	pthread_mutex_lock(&slab_lock);
	for (unsigned i = 0; i < n_spares && !x; i++)
		if (!spares[i]->e_ready)
			x = spares[i];
	if (x) {
		crypto_box_keypair(x->e_pk, x->e_sk);
		x->e_ready = true;
		n_unready--;
	}
	pthread_mutex_unlock(&slab_lock);
	return x != NULL;
}

/* Give the handshake block back (wiped).  NULL-safe on n->x. */
static void drop_handshake(struct an_noise *n)
{
	if (n->x) {
		handshake_give(n->x);
		n->x = NULL;
	}
}

static void wipe_handshake_secrets(struct an_noise *n)
{
	sodium_memzero(n->x->s_sk, sizeof n->x->s_sk);
	sodium_memzero(n->x->e_sk, sizeof n->x->e_sk);
	sodium_memzero(&n->x->hs, sizeof n->x->hs);
	sodium_memzero(n->x->ck, sizeof n->x->ck);
}

static int fail(struct an_noise *n, int err, const char *why)
{
	if (n->state != ST_FAILED) {
		n->state = ST_FAILED;
		n->error = err;
		snprintf(n->reason, sizeof n->reason, "%s", why);
		/* A failed session is dead: drop every key now, not at free. */
		drop_handshake(n);
		keys_free(n->keys);
		n->keys = NULL;
	}
	return n->error;
}

void an_noise_config_init(struct an_noise_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->role = AN_NOISE_INITIATOR;
	cfg->muxers = default_muxers;
	cfg->n_muxers = 1;
}

int an_noise_new(const struct an_noise_config *cfg, struct an_noise **out)
{
	struct an_noise *n;

	*out = NULL;
	if (!cfg->identity || cfg->n_muxers > AN_NOISE_MUXERS_MAX || (cfg->n_muxers && !cfg->muxers))
		return -EINVAL;
	if (cfg->role != AN_NOISE_INITIATOR && cfg->role != AN_NOISE_RESPONDER)
		return -EINVAL;
	for (size_t i = 0; i < cfg->n_muxers; i++) {
		size_t l = cfg->muxers[i] ? strlen(cfg->muxers[i]) : 0;
		if (l == 0 || l > AN_NOISE_MUXER_ID_MAX)
			return -EINVAL;
	}
	if (sodium_init() < 0)
		return -ENOMEM;
	if (!(n = calloc(1, sizeof *n)))
		return -ENOMEM;
	n->x = handshake_take(); /* zeroed, with its ephemeral pair */
	/* The transport keys' slot is taken now so that Split() cannot fail. */
	n->keys = keys_alloc();
	if (!n->x || !n->keys) {
		an_noise_free(n);
		return -ENOMEM;
	}
	n->role = cfg->role;
	n->identity = cfg->identity;
	if (cfg->expected_remote) {
		n->x->has_expected = true;
		n->x->expected = *cfg->expected_remote;
	}
	for (size_t i = 0; i < cfg->n_muxers; i++)
		memcpy(n->x->muxers[i], cfg->muxers[i], strlen(cfg->muxers[i]) + 1);
	n->x->n_muxers = cfg->n_muxers;
	/* The identity's static key, shared by its handshakes (static_key_get). */
	if (static_key_get(cfg->identity, n->x) < 0)
		crypto_box_keypair(n->x->s_pk, n->x->s_sk);
	*out = n;
	return 0;
}

void an_noise_free(struct an_noise *n)
{
	if (!n)
		return;
	drop_handshake(n); /* wiped before it is kept or unmapped */
	keys_free(n->keys);
	free(n);
}

/* ---- Noise primitives (Noise spec sections 4 and 5) ---- */

static void hmac(const uint8_t *key, size_t klen, const uint8_t *a, size_t alen, const uint8_t *b,
		 size_t blen, uint8_t out[HASH_LEN])
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, klen);
	crypto_auth_hmacsha256_update(&st, a, alen);
	if (blen)
		crypto_auth_hmacsha256_update(&st, b, blen);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof st);
}

/* HKDF with two outputs: t = HMAC(ck, ikm); o1 = HMAC(t, 1); o2 = HMAC(t, o1 || 2). */
static void hkdf2(const uint8_t ck[HASH_LEN], const uint8_t *ikm, size_t ikm_len,
		  uint8_t o1[HASH_LEN], uint8_t o2[HASH_LEN])
{
	uint8_t t[HASH_LEN];
	const uint8_t one = 1, two = 2;

	hmac(ck, HASH_LEN, ikm, ikm_len, NULL, 0, t);
	hmac(t, HASH_LEN, &one, 1, NULL, 0, o1);
	hmac(t, HASH_LEN, o1, HASH_LEN, &two, 1, o2);
	sodium_memzero(t, sizeof t);
}

static void mix_hash(struct an_noise *n, const uint8_t *p, size_t len)
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, n->h, HASH_LEN);
	crypto_hash_sha256_update(&st, p, len);
	crypto_hash_sha256_final(&st, n->h);
}

static void mix_key(struct an_noise *n, const uint8_t ikm[DH_LEN])
{
	uint8_t ck[HASH_LEN];
	hkdf2(n->x->ck, ikm, DH_LEN, ck, n->x->hs.k);
	memcpy(n->x->ck, ck, HASH_LEN);
	sodium_memzero(ck, sizeof ck);
	n->x->hs.n = 0;
	n->x->hs.has_key = true;
}

static void nonce12(uint64_t v, uint8_t out[12])
{
	memset(out, 0, 4);
	for (int i = 0; i < 8; i++)
		out[4 + i] = (uint8_t)(v >> (8 * i));
}

/* EncryptWithAd into dst (len + 16 bytes); AN_ELIMIT at n = 2^64-1 (never wraps). */
static int cipher_encrypt(struct cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *p,
			  size_t len, uint8_t *dst)
{
	uint8_t nonce[12];
	unsigned long long clen;

	if (c->n == UINT64_MAX)
		return AN_ELIMIT;
	nonce12(c->n, nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt(dst, &clen, p, len, ad, adlen, NULL, nonce, c->k);
	c->n++;
	return 0;
}

/* DecryptWithAd of ct (len >= 16) into dst (len - 16 bytes). */
static int cipher_decrypt(struct cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
			  size_t len, uint8_t *dst)
{
	uint8_t nonce[12];
	unsigned long long plen;

	if (c->n == UINT64_MAX)
		return AN_ELIMIT;
	if (len < AN_NOISE_TAG_LEN)
		return AN_EPROTO;
	nonce12(c->n, nonce);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(dst, &plen, NULL, ct, len, ad, adlen, nonce,
						      c->k) != 0)
		return AN_EPROTO;
	c->n++;
	return 0;
}

/* EncryptAndHash appended to msg. */
static int encrypt_and_hash(struct an_noise *n, const uint8_t *p, size_t len, struct an_buf *msg)
{
	uint8_t *dst;
	size_t clen = len + (n->x->hs.has_key ? AN_NOISE_TAG_LEN : 0);
	int rc = an_buf_reserve(msg, clen, &dst);

	if (rc < 0)
		return rc;
	if (n->x->hs.has_key) {
		if ((rc = cipher_encrypt(&n->x->hs, n->h, HASH_LEN, p, len, dst)) < 0)
			return rc;
	} else if (len) {
		memcpy(dst, p, len);
	}
	mix_hash(n, dst, clen);
	msg->len += clen;
	msg->data[msg->len] = 0;
	return 0;
}

/* DecryptAndHash of ct[0..len) appended to plain. */
static int decrypt_and_hash(struct an_noise *n, const uint8_t *ct, size_t len, struct an_buf *plain)
{
	uint8_t *dst;
	size_t plen;
	int rc;

	if (n->x->hs.has_key && len < AN_NOISE_TAG_LEN)
		return AN_EPROTO;
	plen = n->x->hs.has_key ? len - AN_NOISE_TAG_LEN : len;
	if ((rc = an_buf_reserve(plain, plen, &dst)) < 0)
		return rc;
	if (n->x->hs.has_key) {
		if ((rc = cipher_decrypt(&n->x->hs, n->h, HASH_LEN, ct, len, dst)) < 0)
			return rc;
	} else if (len) {
		memcpy(dst, ct, len);
	}
	mix_hash(n, ct, len);
	plain->len += plen;
	plain->data[plain->len] = 0;
	return 0;
}

/* MixKey(DH(sk, pk)); an all-zero shared secret (low-order point) is fatal. */
static int mix_dh(struct an_noise *n, const uint8_t sk[DH_LEN], const uint8_t pk[DH_LEN])
{
	uint8_t shared[DH_LEN];
	int rc = 0;

	if (crypto_scalarmult(shared, sk, pk) != 0)
		rc = AN_EPROTO;
	else
		mix_key(n, shared);
	sodium_memzero(shared, sizeof shared);
	return rc;
}

static void ensure_initialized(struct an_noise *n)
{
	if (n->initialized)
		return;
	memcpy(n->h, protocol_name, HASH_LEN);
	memcpy(n->x->ck, n->h, HASH_LEN);
	/* MixHash(prologue) even when it is empty (js and rust do). */
	mix_hash(n, n->x->prologue, n->x->prologue_len);
	n->initialized = true;
}

/* Split(): initiator sends with k1 and receives with k2; the responder the reverse. */
static void split(struct an_noise *n)
{
	uint8_t k1[HASH_LEN], k2[HASH_LEN];
	static const uint8_t empty[1];

	hkdf2(n->x->ck, empty, 0, k1, k2);
	memcpy(n->role == AN_NOISE_INITIATOR ? n->keys->tx.k : n->keys->rx.k, k1, 32);
	memcpy(n->role == AN_NOISE_INITIATOR ? n->keys->rx.k : n->keys->tx.k, k2, 32);
	n->keys->tx.n = n->keys->rx.n = 0;
	n->keys->tx.has_key = n->keys->rx.has_key = true;
	sodium_memzero(k1, sizeof k1);
	sodium_memzero(k2, sizeof k2);
	/* The block itself goes when the caller is done with rs and the muxer
	   list (the responder still checks the payload of message 3). */
	wipe_handshake_secrets(n);
	n->identity = NULL;
	n->state = ST_ESTABLISHED;
}

static bool we_write(const struct an_noise *n)
{
	/* Message 0 and 2 are the initiator's, message 1 the responder's. */
	return (n->msg % 2 == 0) == (n->role == AN_NOISE_INITIATOR);
}

/*
 * WriteMessage for XX message n->msg: tokens appended to msg, then payload.
 * Any failure leaves the symmetric state half-updated: callers fail the
 * session on it.
 */
static int write_message(struct an_noise *n, const uint8_t *payload, size_t len, struct an_buf *msg)
{
	int rc;

	switch (n->msg) {
	case 0: /* -> e */
		if ((rc = an_buf_append(msg, n->x->e_pk, DH_LEN)) < 0)
			return rc;
		mix_hash(n, n->x->e_pk, DH_LEN);
		break;
	case 1: /* <- e, ee, s, es */
		if ((rc = an_buf_append(msg, n->x->e_pk, DH_LEN)) < 0)
			return rc;
		mix_hash(n, n->x->e_pk, DH_LEN);
		if ((rc = mix_dh(n, n->x->e_sk, n->x->re)) < 0 ||
		    (rc = encrypt_and_hash(n, n->x->s_pk, DH_LEN, msg)) < 0 ||
		    (rc = mix_dh(n, n->x->s_sk, n->x->re)) < 0)
			return rc;
		break;
	case 2: /* -> s, se */
		if ((rc = encrypt_and_hash(n, n->x->s_pk, DH_LEN, msg)) < 0 ||
		    (rc = mix_dh(n, n->x->s_sk, n->x->re)) < 0)
			return rc;
		break;
	default:
		return -EINVAL;
	}
	if ((rc = encrypt_and_hash(n, payload, len, msg)) < 0)
		return rc;
	n->msg++;
	if (n->msg == 3)
		split(n);
	return 0;
}

/* ReadMessage for XX message n->msg from m[0..len); the payload is appended to payload. */
static int read_message(struct an_noise *n, const uint8_t *m, size_t len, struct an_buf *payload)
{
	struct an_buf s;
	int rc;

	switch (n->msg) {
	case 0: /* -> e */
		if (len < DH_LEN)
			return AN_EPROTO;
		memcpy(n->x->re, m, DH_LEN);
		mix_hash(n, n->x->re, DH_LEN);
		m += DH_LEN, len -= DH_LEN;
		break;
	case 1: /* <- e, ee, s, es */
		if (len < 2 * DH_LEN + AN_NOISE_TAG_LEN)
			return AN_EPROTO;
		memcpy(n->x->re, m, DH_LEN);
		mix_hash(n, n->x->re, DH_LEN);
		m += DH_LEN, len -= DH_LEN;
		if ((rc = mix_dh(n, n->x->e_sk, n->x->re)) < 0)
			return rc;
		an_buf_init(&s, DH_LEN);
		rc = decrypt_and_hash(n, m, DH_LEN + AN_NOISE_TAG_LEN, &s);
		if (rc == 0)
			memcpy(n->x->rs, s.data, DH_LEN);
		an_buf_free(&s);
		if (rc < 0)
			return rc;
		m += DH_LEN + AN_NOISE_TAG_LEN, len -= DH_LEN + AN_NOISE_TAG_LEN;
		if ((rc = mix_dh(n, n->x->e_sk, n->x->rs)) < 0)
			return rc;
		break;
	case 2: /* -> s, se */
		if (len < DH_LEN + AN_NOISE_TAG_LEN)
			return AN_EPROTO;
		an_buf_init(&s, DH_LEN);
		rc = decrypt_and_hash(n, m, DH_LEN + AN_NOISE_TAG_LEN, &s);
		if (rc == 0)
			memcpy(n->x->rs, s.data, DH_LEN);
		an_buf_free(&s);
		if (rc < 0)
			return rc;
		m += DH_LEN + AN_NOISE_TAG_LEN, len -= DH_LEN + AN_NOISE_TAG_LEN;
		if ((rc = mix_dh(n, n->x->e_sk, n->x->rs)) < 0)
			return rc;
		break;
	default:
		return -EINVAL;
	}
	if ((rc = decrypt_and_hash(n, m, len, payload)) < 0)
		return rc;
	n->msg++;
	if (n->msg == 3)
		split(n);
	return 0;
}

/* ---- the libp2p handshake payload ---- */

/* The payload with sig, the identity's signature over the static key (NULL: sign now). */
static int payload_encode(const struct an_privkey *id, const uint8_t static_pub[32],
			  const uint8_t *given_sig, const char *const *muxers, size_t n,
			  struct an_buf *out)
{
	struct an_pubkey pub;
	struct an_buf key, ext;
	uint8_t msg[sizeof sig_prefix - 1 + DH_LEN], sig[64];
	int rc;

	an_buf_init(&key, AN_PUBKEY_PB_MAX);
	an_buf_init(&ext, AN_NOISE_MUXERS_MAX * (AN_NOISE_MUXER_ID_MAX + 3));
	an_privkey_public(id, &pub);
	if ((rc = an_pubkey_encode(&pub, &key)) < 0)
		goto out;
	if (given_sig) {
		memcpy(sig, given_sig, sizeof sig);
	} else {
		memcpy(msg, sig_prefix, sizeof sig_prefix - 1);
		memcpy(msg + sizeof sig_prefix - 1, static_pub, DH_LEN);
		if ((rc = an_privkey_sign(id, msg, sizeof msg, sig)) < 0)
			goto out;
	}
	for (size_t i = 0; i < n; i++)
		if ((rc = an_pb_put_string(&ext, 2, muxers[i])) < 0)
			goto out;
	if ((rc = an_pb_put_bytes(out, 1, key.data, key.len)) < 0 ||
	    (rc = an_pb_put_bytes(out, 2, sig, sizeof sig)) < 0)
		goto out;
	if (n && (rc = an_pb_put_bytes(out, 4, ext.data, ext.len)) < 0)
		goto out;
out:
	an_buf_free(&key);
	an_buf_free(&ext);
	return rc;
}

int an_noise_payload_encode(const struct an_privkey *id, const uint8_t static_pub[32],
			    const char *const *muxers, size_t n, struct an_buf *out)
{
	return payload_encode(id, static_pub, NULL, muxers, n, out);
}

int an_noise_payload_decode(const uint8_t *p, size_t len, struct an_noise_payload *out)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	const uint8_t *key = NULL;
	size_t key_len = 0;
	int rc;

	memset(out, 0, sizeof *out);
	an_pb_reader_init(&r, p, len);
	while ((rc = an_pb_next(&r, &f)) == 1) {
		if (f.number != 1 && f.number != 2 && f.number != 4)
			continue;
		if (f.wire != AN_PB_LEN)
			return AN_EPROTO;
		if (f.number == 1) {
			key = f.data;
			key_len = f.len;
		} else if (f.number == 2) {
			out->sig = f.data;
			out->sig_len = f.len;
		} else {
			out->extensions = f.data;
			out->extensions_len = f.len;
		}
	}
	if (rc < 0)
		return AN_EPROTO;
	if (!key || !out->sig)
		return AN_EPROTO;
	if (out->extensions) {
		an_pb_reader_init(&r, out->extensions, out->extensions_len);
		while ((rc = an_pb_next(&r, &f)) == 1) {
			if (f.number == 1 || f.number == 2) {
				if (f.wire != AN_PB_LEN)
					return AN_EPROTO;
				if (f.number == 2)
					out->n_muxers++;
			}
		}
		if (rc < 0)
			return AN_EPROTO;
	}
	return an_pubkey_decode(key, key_len, &out->key);
}

int an_noise_payload_verify(const struct an_noise_payload *pl, const uint8_t remote_static[32])
{
	uint8_t msg[sizeof sig_prefix - 1 + DH_LEN];

	memcpy(msg, sig_prefix, sizeof sig_prefix - 1);
	memcpy(msg + sizeof sig_prefix - 1, remote_static, DH_LEN);
	return an_pubkey_verify(&pl->key, msg, sizeof msg, pl->sig, pl->sig_len);
}

/* Is s[0..len) in the remote's stream_muxers list? */
static bool remote_lists(const struct an_noise_payload *pl, const char *s)
{
	struct an_pb_reader r;
	struct an_pb_field f;
	size_t l = strlen(s);

	an_pb_reader_init(&r, pl->extensions, pl->extensions_len);
	while (an_pb_next(&r, &f) == 1)
		if (f.number == 2 && f.len == l && memcmp(f.data, s, l) == 0)
			return true;
	return false;
}

static int local_index(const struct an_noise *n, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < n->x->n_muxers; i++)
		if (strlen(n->x->muxers[i]) == len && memcmp(n->x->muxers[i], p, len) == 0)
			return (int)i;
	return -1;
}

/*
 * Spec rule (inlined-muxer-negotiation.md): the first entry of the
 * initiator's list that both support; only when both lists are non-empty.
 */
static int pick_muxer(struct an_noise *n, const struct an_noise_payload *pl)
{
	int pick = -1;

	if (n->x->n_muxers == 0 || pl->n_muxers == 0)
		return 0;
	if (n->role == AN_NOISE_INITIATOR) {
		for (size_t i = 0; i < n->x->n_muxers && pick < 0; i++)
			if (remote_lists(pl, n->x->muxers[i]))
				pick = (int)i;
	} else {
		struct an_pb_reader r;
		struct an_pb_field f;
		an_pb_reader_init(&r, pl->extensions, pl->extensions_len);
		while (pick < 0 && an_pb_next(&r, &f) == 1)
			if (f.number == 2)
				pick = local_index(n, f.data, f.len);
	}
	if (pick < 0)
		return fail(n, AN_ENOPROTO, "early muxer negotiation found no common muxer");
	memcpy(n->muxer, n->x->muxers[pick], strlen(n->x->muxers[pick]) + 1);
	n->has_muxer = true;
	return 0;
}

/* Authenticate the remote from its decrypted payload (rs already known). */
static int accept_payload(struct an_noise *n, const uint8_t *p, size_t len)
{
	struct an_noise_payload pl;
	int rc = an_noise_payload_decode(p, len, &pl);

	if (rc == AN_EKEYTYPE)
		return fail(n, rc, "remote identity key type not supported");
	if (rc < 0)
		return fail(n, AN_EPROTO, "malformed handshake payload");
	rc = an_noise_payload_verify(&pl, n->x->rs);
	if (rc == AN_EKEYTYPE)
		return fail(n, rc, "remote identity key cannot verify signatures");
	if (rc < 0)
		return fail(n, AN_EBADSIG, "identity signature over the static key does not verify");
	if ((rc = an_peerid_from_pubkey(&pl.key, &n->remote_peer)) < 0)
		return fail(n, AN_EPROTO, "cannot derive the remote peer ID");
	if (n->x->has_expected && !an_peerid_equal(&n->x->expected, &n->remote_peer))
		return fail(n, AN_EMISMATCH, "remote peer is not the one dialed");
	n->remote_key = pl.key;
	return pick_muxer(n, &pl);
}

/* ---- framed handshake ---- */

static int put_frame(struct an_buf *out, const uint8_t *m, size_t len)
{
	uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };
	size_t before = out->len;
	int rc;

	if (len > AN_NOISE_MSG_MAX)
		return AN_ETOOBIG;
	if ((rc = an_buf_append(out, hdr, 2)) < 0 || (rc = an_buf_append(out, m, len)) < 0) {
		out->len = before;
		if (out->data)
			out->data[before] = 0;
	}
	return rc;
}

/* Write our next handshake message (with the libp2p payload unless it is message 1). */
static int send_handshake(struct an_noise *n, struct an_buf *out)
{
	struct an_buf msg, payload;
	int rc;

	an_buf_init(&msg, AN_NOISE_MSG_MAX);
	an_buf_init(&payload, AN_NOISE_MSG_MAX);
	if (n->msg > 0) { /* message 1 carries no payload */
		const char *list[AN_NOISE_MUXERS_MAX];
		for (size_t i = 0; i < n->x->n_muxers; i++)
			list[i] = n->x->muxers[i];
		if ((rc = payload_encode(n->identity, n->x->s_pk, n->x->has_sig ? n->x->s_sig : NULL,
					 list, n->x->n_muxers, &payload)) < 0)
			goto out;
	}
	if ((rc = write_message(n, payload.data, payload.len, &msg)) < 0)
		goto out;
	rc = put_frame(out, msg.data, msg.len);
out:
	an_buf_free(&msg);
	an_buf_free(&payload);
	if (rc < 0)
		return fail(n, rc, "cannot write handshake message");
	return 0;
}

int an_noise_start(struct an_noise *n, struct an_buf *out)
{
	if (n->state == ST_FAILED)
		return n->error;
	if (n->started || n->msg != 0)
		return -EINVAL;
	ensure_initialized(n);
	n->started = true;
	if (n->role != AN_NOISE_INITIATOR)
		return 0;
	return send_handshake(n, out);
}

/* Read one framed handshake message at in[0..len): 1 consumed (*used set), 0 incomplete, <0. */
static int recv_one(struct an_noise *n, const uint8_t *in, size_t len, size_t *used,
		    struct an_buf *out)
{
	struct an_buf payload;
	size_t flen;
	int rc;

	if (len < 2)
		return 0;
	flen = (size_t)in[0] << 8 | in[1];
	if (len - 2 < flen)
		return 0;
	/* XX: message 1 is exactly e (32 bytes); rust refuses a payload there. */
	if (n->msg == 0 && flen != DH_LEN)
		return fail(n, AN_EPROTO, "handshake message 1 is not 32 bytes");
	an_buf_init(&payload, AN_NOISE_MSG_MAX);
	rc = read_message(n, in + 2, flen, &payload);
	if (rc < 0) {
		an_buf_free(&payload);
		return fail(n, rc == AN_ELIMIT ? rc : AN_EPROTO,
			    "handshake message does not decrypt or is malformed");
	}
	*used = 2 + flen;
	if (n->msg >= 2) /* messages 2 and 3 carry the payload */
		rc = accept_payload(n, payload.data, payload.len);
	an_buf_free(&payload);
	if (rc < 0)
		return rc;
	if (n->state != ST_ESTABLISHED && (rc = send_handshake(n, out)) < 0)
		return rc;
	return 1;
}

int an_noise_recv(struct an_noise *n, const uint8_t *in, size_t len, size_t *used,
		  struct an_buf *out)
{
	size_t pos = 0, u = 0;
	int rc = 0;

	*used = 0;
	if (n->state == ST_FAILED)
		return n->error;
	if (n->state == ST_ESTABLISHED)
		return 1;
	ensure_initialized(n);
	n->started = true;
	if (we_write(n))
		return -EINVAL; /* initiator that never called an_noise_start */
	/* Every whole frame present is handled, so no caller waits for bytes it holds. */
	while (n->state == ST_HANDSHAKE && (rc = recv_one(n, in + pos, len - pos, &u, out)) == 1)
		pos += u;
	*used = pos;
	if (rc < 0)
		return rc;
	if (n->state != ST_ESTABLISHED)
		return 0;
	drop_handshake(n); /* keep only the transport keys */
	return 1;
}

bool an_noise_established(const struct an_noise *n)
{
	return n->state == ST_ESTABLISHED;
}

/* ---- transport ---- */

int an_noise_encrypt(struct an_noise *n, const uint8_t *p, size_t len, struct an_buf *out)
{
	size_t frames, total, before = out->len;
	int rc;

	if (n->state == ST_FAILED)
		return n->error;
	if (n->state != ST_ESTABLISHED)
		return -EINVAL;
	if (len == 0)
		return 0;
	frames = (len + AN_NOISE_PLAINTEXT_MAX - 1) / AN_NOISE_PLAINTEXT_MAX;
	total = len + frames * (2 + AN_NOISE_TAG_LEN);
	if (total < len || out->len > out->max || total > out->max - out->len)
		return AN_ETOOBIG;
	if (n->keys->tx.n > UINT64_MAX - frames) /* nonces n .. n+frames-1 must stay below 2^64-1 */
		return fail(n, AN_ELIMIT, "send nonce limit reached");
	if ((rc = an_buf_reserve(out, total, NULL)) < 0)
		return rc;
	while (len) {
		size_t chunk = len < AN_NOISE_PLAINTEXT_MAX ? len : AN_NOISE_PLAINTEXT_MAX;
		size_t mlen = chunk + AN_NOISE_TAG_LEN;
		uint8_t *dst = out->data + out->len;

		dst[0] = (uint8_t)(mlen >> 8);
		dst[1] = (uint8_t)mlen;
		if ((rc = cipher_encrypt(&n->keys->tx, NULL, 0, p, chunk, dst + 2)) < 0) {
			out->len = before;
			return fail(n, rc, "send nonce limit reached");
		}
		out->len += 2 + mlen;
		p += chunk;
		len -= chunk;
	}
	out->data[out->len] = 0;
	return 0;
}

int an_noise_decrypt(struct an_noise *n, const uint8_t *in, size_t len, size_t *used,
		     struct an_buf *plain)
{
	size_t pos = 0;
	int rc = 0;

	*used = 0;
	if (n->state == ST_FAILED)
		return n->error;
	if (n->state != ST_ESTABLISHED)
		return -EINVAL;
	while (len - pos >= 2) {
		size_t mlen = (size_t)in[pos] << 8 | in[pos + 1];
		size_t plen;
		uint8_t *dst;

		if (mlen < AN_NOISE_TAG_LEN) {
			rc = fail(n, AN_EPROTO, "transport frame shorter than its tag");
			break;
		}
		if (len - pos - 2 < mlen)
			break;
		plen = mlen - AN_NOISE_TAG_LEN;
		if (plain->len > plain->max || plen > plain->max - plain->len) {
			if (plain->len == 0)
				rc = AN_ETOOBIG;
			break;
		}
		if ((rc = an_buf_reserve(plain, plen, &dst)) < 0)
			break;
		rc = cipher_decrypt(&n->keys->rx, NULL, 0, in + pos + 2, mlen, dst);
		if (rc < 0) {
			rc = fail(n, rc, rc == AN_ELIMIT ? "receive nonce limit reached"
							 : "transport frame fails authentication");
			break;
		}
		plain->len += plen;
		plain->data[plain->len] = 0;
		pos += 2 + mlen;
	}
	*used = pos;
	return rc < 0 ? rc : 0;
}

/* ---- getters ---- */

const struct an_pubkey *an_noise_remote_key(const struct an_noise *n)
{
	return n->state == ST_ESTABLISHED ? &n->remote_key : NULL;
}

const struct an_peerid *an_noise_remote_peer(const struct an_noise *n)
{
	return n->state == ST_ESTABLISHED ? &n->remote_peer : NULL;
}

const char *an_noise_muxer(const struct an_noise *n)
{
	return n->state == ST_ESTABLISHED && n->has_muxer ? n->muxer : NULL;
}

int an_noise_handshake_hash(const struct an_noise *n, uint8_t out[32])
{
	if (n->state != ST_ESTABLISHED)
		return -EINVAL;
	memcpy(out, n->h, HASH_LEN);
	return 0;
}

const char *an_noise_reason(const struct an_noise *n)
{
	return n->reason;
}

/* ---- test hooks ---- */

int an_noise_set_keys_for_test(struct an_noise *n, const uint8_t *static_sk,
			       const uint8_t *ephemeral_sk)
{
	if (n->msg != 0 || n->state != ST_HANDSHAKE)
		return -EINVAL;
	if (static_sk) {
		memcpy(n->x->s_sk, static_sk, DH_LEN);
		crypto_scalarmult_base(n->x->s_pk, n->x->s_sk);
		n->x->has_sig = false; /* the cached signature is for the shared key */
	}
	if (ephemeral_sk) {
		memcpy(n->x->e_sk, ephemeral_sk, DH_LEN);
		crypto_scalarmult_base(n->x->e_pk, n->x->e_sk);
	}
	return 0;
}

int an_noise_set_prologue_for_test(struct an_noise *n, const uint8_t *p, size_t len)
{
	if (n->initialized || n->state != ST_HANDSHAKE || len > PROLOGUE_MAX)
		return -EINVAL;
	if (len)
		memcpy(n->x->prologue, p, len);
	n->x->prologue_len = len;
	return 0;
}

/* After a raw message: drop the handshake block once established, as an_noise_recv does. */
static int raw_done(struct an_noise *n, int rc)
{
	if (rc == 0 && n->state == ST_ESTABLISHED)
		drop_handshake(n);
	return rc;
}

int an_noise_write_raw_for_test(struct an_noise *n, const uint8_t *payload, size_t len,
				struct an_buf *msg)
{
	if (n->state != ST_HANDSHAKE || !we_write(n))
		return -EINVAL;
	ensure_initialized(n);
	return raw_done(n, write_message(n, payload, len, msg));
}

int an_noise_read_raw_for_test(struct an_noise *n, const uint8_t *msg, size_t len,
			       struct an_buf *payload)
{
	if (n->state != ST_HANDSHAKE || we_write(n))
		return -EINVAL;
	ensure_initialized(n);
	return raw_done(n, read_message(n, msg, len, payload));
}

void an_noise_set_nonces_for_test(struct an_noise *n, uint64_t send, uint64_t recv)
{
	if (!n->keys)
		return;
	n->keys->tx.n = send;
	n->keys->rx.n = recv;
}
