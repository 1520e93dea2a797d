/*
 * validate.h - DHT record validators and selectors, keyed by namespace.
 *
 * A DHT record key is "/<namespace>/<rest>" (js kad-dht splits it the same
 * way: at least three '/'-separated parts, the namespace is the second).
 * Two namespaces are known; every other one is refused (AN_ENOPROTO), as
 * js and go kad-dht do (digest section 10, pitfall K1):
 *
 *   /an/<peerHash>@<fqdn>   value: an Alternet name record (man/an-record.5),
 *                           JSON text of at most AN_RECORD_MAX bytes.  It must
 *                           verify at `now` (an_record_verify: fields,
 *                           signature, peer hash, validity window) and the key
 *                           must be the record's own DHT key
 *                           (an_record_dht_key of its lookup): nobody can
 *                           store a valid record under another name.  A
 *                           subdomain record verifies only together with its
 *                           root record (see "Subdomains" below).
 *                           Selection: highest seq, then the latest expires
 *                           (an_record_compare); a value that does not parse
 *                           loses.
 *   /pk/<binary multihash>  value: a PublicKey protobuf whose peer ID equals
 *                           the multihash (js's built-in pk validator).
 *                           Selection: the first value (js selects index 0).
 *
 * The value bytes are kept as received: canonical (JCS) form is what
 * an-sign writes and what the size limit is measured on, but JSON with
 * other spacing that verifies is accepted too (the signature covers the
 * canonical form, so spacing changes nothing a reader relies on).  The
 * bytes may not exceed AN_RECORD_MAX either way.
 *
 * Subdomains: a subdomain record's validity depends on its root record
 * (same publisher, referenced by did, name and signature).  The validator
 * takes the root from ctx->root when the caller passes one along (an-dht
 * put sending a root and its subdomains together), else asks ctx->get_root
 * for the value stored under the root's DHT key "/an/<peerHash>@<context>".
 * A subdomain whose root is unknown is refused (AN_EROOT).  A storing node
 * does not go and fetch the root from the network: that would turn every
 * incoming PUT into outgoing lookups (an amplification a hostile peer could
 * drive) and make validation asynchronous.  Instead whoever sends a
 * subdomain sends its root first to the same peers (a root is an ordinary
 * valid record under its own key, so any node may hold it): the publisher
 * puts the root, then the subdomain, to the subdomain key's closest peers;
 * a storing node re-replicating a subdomain sends the root it holds first;
 * a resolver fetches the root before the subdomain and passes it as
 * ctx->root.  Expiry: a subdomain is only valid while its root is, so its
 * stored expiry is the earlier of the two (info.expires).
 *
 * Sans-I/O: no clock (ctx->now), no network, no database here; the store
 * (dht/store.h) supplies get_root.
 */
#ifndef AN_DHT_VALIDATE_H
#define AN_DHT_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/record.h"

#define AN_VALIDATE_KEY_MAX 511         /* bytes of a record key: LMDB's default key limit */
#define AN_VALIDATE_AN_VALUE_MAX AN_RECORD_MAX
#define AN_VALIDATE_PK_VALUE_MAX AN_PUBKEY_PB_MAX

enum an_validate_ns {
	AN_NS_UNKNOWN = 0,
	AN_NS_AN,  /* "/an/..." */
	AN_NS_PK   /* "/pk/..." */
};

/*
 * Fetch the value stored under key (borrowed) into out (borrowed, appended
 * to; its cap bounds the read).  0, AN_ENOTFOUND, or another negative code.
 * Used to find a subdomain's root record.
 */
typedef int (*an_validate_get_fn)(void *arg, const uint8_t *key, size_t key_len, struct an_buf *out);

/* How to validate; zero-initialise, then set now (and optionally the rest). */
struct an_validate_ctx {
	int64_t now;                 /* seconds since the epoch */
	const json_t *root;          /* borrowed; a root record passed along, or NULL */
	an_validate_get_fn get_root; /* NULL: only ctx->root is consulted */
	void *arg;                   /* passed to get_root */
};

/* What a valid value says about itself (filled by an_validate on success). */
struct an_validate_info {
	enum an_validate_ns ns;
	bool is_root;     /* an: a root record */
	uint64_t seq;     /* an: its seq */
	int64_t expires;  /* an: end of validity, for a subdomain the earlier of
	                     its own and its root's; pk: 0 (no validity of its own) */
};

/* The namespace of key (borrowed): AN_NS_UNKNOWN if it has none we serve. */
enum an_validate_ns an_validate_namespace(const uint8_t *key, size_t key_len);

/*
 * Validate val (borrowed) for key (borrowed) under ctx (borrowed).  Returns
 * 0 and fills info (may be NULL), or a negative code with e (may be NULL)
 * naming field and reason:
 *   AN_ENOPROTO   namespace not served ("no validator for namespace ...")
 *   AN_ETOOBIG    key or value over its cap
 *   AN_EMALFORMED value does not parse (not JSON, not a PublicKey protobuf)
 *   AN_EMISMATCH  key is not the record's own key / the key's peer ID
 *   any an_record_verify code (AN_EFIELD, AN_EBADSIG, AN_EEXPIRED,
 *   AN_ENOTYET, AN_EROOT, AN_EKEYTYPE, ...); -ENOMEM.
 */
int an_validate(const struct an_validate_ctx *ctx, const uint8_t *key, size_t key_len,
		const uint8_t *val, size_t val_len, struct an_validate_info *info,
		struct an_record_error *e);

/*
 * Which of two values (both borrowed, both already valid for key) is
 * better: > 0 a, < 0 b, 0 neither (a tie; keep the one already held).  an:
 * an_record_compare (a value that does not parse loses); pk and unknown
 * namespaces: 0.
 */
int an_validate_compare(const uint8_t *key, size_t key_len, const uint8_t *a, size_t a_len,
			const uint8_t *b, size_t b_len);

/* One candidate value for an_validate_select (borrowed). */
struct an_validate_value {
	const uint8_t *data;
	size_t len;
};

/*
 * The selector: index of the best of n (>= 1) values for key into *best
 * (the first of equals wins, so pk selects index 0).  Values are expected
 * to have passed an_validate.  0, -EINVAL when n is 0, AN_ENOPROTO for an
 * unknown namespace.
 */
int an_validate_select(const uint8_t *key, size_t key_len, const struct an_validate_value *vals,
		       size_t n, size_t *best);

/*
 * Adapters with the shapes of dht/lookup.h's an_lookup_validate_fn and
 * an_lookup_compare_fn: arg is a struct an_validate_ctx * (borrowed, its
 * now kept current by the caller).  The reason of a failure is not
 * reported; call an_validate for it.
 */
int an_validate_cb(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
		   size_t val_len);
int an_validate_compare_cb(void *arg, const uint8_t *key, size_t key_len, const uint8_t *a,
			   size_t a_len, const uint8_t *b, size_t b_len);

/*
 * The bare-name provider key (sha2-256 multihash of "/an-name/<fqdn>",
 * an_record_name_key) of the /an/ record key (borrowed): a publisher
 * announces itself as provider of it when it publishes the name.  0 or
 * AN_EMALFORMED if key is not an /an/<peerHash>@<fqdn> key.
 */
int an_validate_name_key(const uint8_t *key, size_t key_len, uint8_t out[34]);

#endif
