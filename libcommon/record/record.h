/*
 * record.h - Alternet name records: build, sign, re-sign, verify, select.
 *
 * The format is specified in man/an-record.5; this header is its contract in
 * code.  A record is a jansson object (new / borrowed / steals as jansson
 * says).  In short:
 *
 *   { "did": "dns:<base58btc(SHA-256(lookup)[0..16))>",
 *     "type": "root" | "A" | "CNAME" | "TXT",
 *     "publisherPublicKey": "12D3KooW...",          Ed25519 peer IDs only
 *     "lookup": "an://<peerHash>@<fqdn>",
 *     "dns": { "name": <fqdn (root) or leftmost label>, "protocol": "an", "isRoot": bool },
 *     "multiaddrs": [ "/ip4/.../tcp/4001", ... ],     root, A (required for A)
 *     "target": "an://<peerHash>@<fqdn>",             CNAME only
 *     "text": "...",                                  TXT only
 *     "root": [ { "target": <root did>, "context": <root fqdn>,
 *                 "signature": <root signature> } ],   every type but root
 *     "ttl": { "timesRepublished": n, "timestampRepublished": "2026-11-23T20:00:00Z",
 *              "timeToLive": seconds },
 *     "expires": "2026-11-25T20:00:00Z", "seq": n, "version": "1.0.0",
 *     "signature": "ed25519=<128 lowercase hex>" }
 *
 * Signature: Ed25519 over SHA-256("alternet-record-v1\0" || JCS(record
 * without "signature")).  Unknown members are kept and signed but carry no
 * meaning.  Times are whole seconds since the epoch (int64_t) throughout.
 */
#ifndef AN_RECORD_RECORD_H
#define AN_RECORD_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"
#include "util/buf.h"

#define AN_RECORD_VERSION "1.0.0"      /* what we write; major 1 is what we read */
#define AN_RECORD_MAX 8192             /* canonical bytes of a whole record, signature included */
#define AN_RECORD_STREAM_MAX 65536     /* one JSON value read from a stream, before parsing */
#define AN_RECORD_ADDRS_MAX 16         /* multiaddrs per record */
#define AN_RECORD_ADDR_MAX 256         /* characters per multiaddr */
#define AN_RECORD_TEXT_MAX 4096        /* bytes of a TXT record's text */
#define AN_RECORD_FQDN_MAX 253         /* characters of a name */
#define AN_RECORD_LABEL_MAX 63         /* characters of a label */
#define AN_RECORD_INT_MAX 9007199254740991LL /* 2^53-1: seq, counters, seconds */
#define AN_RECORD_VALID_DEFAULT (48 * 3600)  /* expires - timestampRepublished */
#define AN_RECORD_VALID_MAX (30 * 86400)     /* longest validity accepted */
#define AN_RECORD_TTL_DEFAULT 86400          /* ttl.timeToLive: republish interval */
#define AN_RECORD_SKEW 300                   /* clock skew allowed for "not yet valid" */
#define AN_RECORD_DOMAIN "alternet-record-v1" /* signature domain separator (NUL follows) */
#define AN_RECORD_DID_MAX 40                  /* "dns:" + base58 of 16 bytes + NUL */
#define AN_RECORD_TIME_LEN 20                 /* "YYYY-MM-DDTHH:MM:SSZ" */

/* What failed: the field ("ttl.expires", "root[0].signature", "" for the whole) and why. */
struct an_record_error {
	char field[64];
	char message[192];
};

/* Options of an_record_sign; zero-initialise, then set what is wanted. */
struct an_record_sign_opts {
	int64_t now;                /* signing time (timestampRepublished) */
	const char *name;           /* fqdn; NULL: keep the record's lookup name */
	const char *type;           /* "root", "A", "CNAME", "TXT"; NULL: keep */
	const char *const *addrs;   /* borrowed; when naddrs > 0 they replace multiaddrs */
	size_t naddrs;
	const char *target;         /* CNAME target; NULL: keep */
	const char *text;           /* TXT text; NULL: keep */
	const json_t *root;         /* borrowed signed root record (subdomains); NULL: keep root[] */
	bool has_seq;               /* set seq to seq */
	uint64_t seq;
	bool bump_seq;              /* seq + 1 (after has_seq) */
	bool resign;                /* the record is a signed one being republished: timesRepublished + 1 */
	int64_t valid_secs;         /* expires = now + valid_secs; 0: AN_RECORD_VALID_DEFAULT */
	int64_t ttl_secs;           /* ttl.timeToLive; 0: keep, else AN_RECORD_TTL_DEFAULT */
};

/*
 * Complete and sign rec (borrowed, modified in place) with k: fills or
 * recomputes did, publisherPublicKey, lookup, dns, root[], ttl, expires,
 * seq, version and signature from o and the fields already there; keeps
 * unknown members.  A subdomain's root record (o->root) must verify at
 * o->now and be signed by the same key.  Returns 0, or AN_EFIELD /
 * AN_ETOOBIG / AN_EMALFORMED (bad input, e filled), AN_EMISMATCH (the record
 * names another publisher), AN_EROOT, -ENOMEM.
 */
int an_record_sign(json_t *rec, const struct an_privkey *k, const struct an_record_sign_opts *o,
		   struct an_record_error *e);

/* Flags of an_record_verify. */
#define AN_RECORD_ROOT_VERIFIED 0x1 /* root was already verified by the caller: only match it */

/*
 * Verify rec (borrowed) at time now: every field's type and limits, the
 * peer hash and did, the signature, the validity window, and for a
 * subdomain its reference to root (borrowed; may be NULL, which fails a
 * subdomain with AN_EROOT).  root itself is verified too unless flags has
 * AN_RECORD_ROOT_VERIFIED.  Returns 0 or, with e naming field and reason:
 *   AN_EMALFORMED (not an object), AN_ETOOBIG (a huge number, a record over
 *   AN_RECORD_MAX), AN_EFIELD (missing, mistyped or out-of-range field),
 *   AN_EKEYTYPE (publisher key not Ed25519), AN_EMISMATCH (peer hash, did or
 *   names inconsistent), AN_EBADSIG, AN_EEXPIRED, AN_ENOTYET, AN_EROOT.
 */
int an_record_verify(const json_t *rec, const json_t *root, int64_t now, unsigned flags,
		     struct an_record_error *e);

/*
 * an_record_verify in three steps, so the Ed25519 check (most of the cost)
 * can run on another thread while the caller parses the next records:
 *
 *   an_record_check_begin      every field, the canonical form and its digest
 *   an_record_check_signature  the Ed25519 check alone: reads only c, no JSON
 *   an_record_check_end        the signature's result, the clock, the root
 *
 * an_record_verify(rec, root, now, flags, e) is exactly begin, signature
 * (when begin left c->rc at 0), end.  begin and end use jansson on rec and
 * root; keep them on one thread (jansson reference counts are not shared
 * across threads here).  signature may run on any thread.
 */
struct an_record_check {
	int rc;                   /* 0: the signature is still to check; else begin's verdict */
	struct an_record_error e; /* begin's reason when rc != 0 */
	struct an_pubkey pub;     /* the publisher */
	uint8_t digest[32];       /* what the signature covers */
	uint8_t sig[64];
	/* The rest is private to record.c. */
	bool is_root;
	int64_t stamp, expires;
	const json_t *ref;        /* borrowed from rec: root[0] of a subdomain */
};

/*
 * Check rec (borrowed; it must outlive c) up to its signature and fill c.
 * scratch (borrowed, may be NULL) is a buffer reused for the canonical form
 * across calls, so a stream of records does not allocate one each; its cap
 * is raised to AN_RECORD_MAX if lower.  Returns c->rc.
 */
int an_record_check_begin(const json_t *rec, struct an_buf *scratch, struct an_record_check *c);

/* The Ed25519 check of c (borrowed): 0 or AN_EBADSIG.  Thread-safe. */
int an_record_check_signature(const struct an_record_check *c);

/*
 * Finish what begin started: sig_rc is an_record_check_signature's result
 * (ignored when c->rc != 0), root, now and flags as for an_record_verify.
 * Returns what an_record_verify returns, with e filled the same way.
 */
int an_record_check_end(const json_t *rec, const struct an_record_check *c, int sig_rc,
			const json_t *root, int64_t now, unsigned flags, struct an_record_error *e);

/*
 * Append the canonical (JCS) form of the whole record to out: what an-sign
 * writes and what a DHT stores.  0 or an an_jcs_serialize error.
 */
int an_record_serialize(const json_t *rec, struct an_buf *out);

/* SHA-256("alternet-record-v1\0" || JCS(rec without signature)) into digest. */
int an_record_digest(const json_t *rec, uint8_t digest[32]);

/*
 * Which of two verified records of the same name wins: >0 a, <0 b, 0 tie.
 * Highest seq, then the latest expires.  Fields that do not parse lose.
 */
int an_record_compare(const json_t *a, const json_t *b);

/* DHT key "/an/<peerHash>@<fqdn>" appended to out (no NUL counted). */
int an_record_dht_key(const char *peerhash, const char *fqdn, struct an_buf *out);

/* Bare-name provider key: the sha2-256 multihash (0x12 0x20 digest) of "/an-name/<fqdn>". */
int an_record_name_key(const char *fqdn, uint8_t key[34]);

/* did of a lookup string: "dns:" + base58btc of the first 16 bytes of its SHA-256. */
int an_record_did(const char *lookup, char out[AN_RECORD_DID_MAX]);

/*
 * Split "an://<peerHash>@<fqdn>" (no path) into its parts; peerhash is ""
 * when allow_bare and the '@' part is missing.  0 or AN_EFIELD.
 */
int an_record_parse_name(const char *s, bool allow_bare, char peerhash[17], char fqdn[AN_RECORD_FQDN_MAX + 1]);

/* True if s is a lowercase LDH name within the label and length limits. */
bool an_record_fqdn_valid(const char *s);

/* Parse "YYYY-MM-DDTHH:MM:SSZ" exactly (UTC, whole seconds).  0 or AN_EFIELD. */
int an_record_parse_time(const char *s, int64_t *t);

/* Format t as "YYYY-MM-DDTHH:MM:SSZ" (room for AN_RECORD_TIME_LEN + 1). */
void an_record_format_time(int64_t t, char out[AN_RECORD_TIME_LEN + 1]);

#endif
