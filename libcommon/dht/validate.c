/*
 * validate.c - DHT record validators and selectors by namespace.
 */
#include "dht/validate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "util/error.h"

static int fail(struct an_record_error *e, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct an_record_error *e, int code, const char *field, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		snprintf(e->field, sizeof e->field, "%s", field);
		va_start(ap, fmt);
		vsnprintf(e->message, sizeof e->message, fmt, ap);
		va_end(ap);
	}
	return code;
}

/*
 * js kad-dht: the key must split on '/' into at least three parts, the
 * first empty; the namespace is the second.  "/an/x" and "/pk/x" qualify,
 * "/an" and "an/x" do not.
 */
enum an_validate_ns an_validate_namespace(const uint8_t *key, size_t key_len)
{
	if (key_len > 4 && key[0] == '/' && key[3] == '/') {
		if (key[1] == 'a' && key[2] == 'n')
			return AN_NS_AN;
		if (key[1] == 'p' && key[2] == 'k')
			return AN_NS_PK;
	}
	return AN_NS_UNKNOWN;
}

/* The namespace text of key for messages ("" when there is none). */
static void namespace_text(const uint8_t *key, size_t key_len, char out[32])
{
	size_t n = 0;
	if (key_len > 0 && key[0] == '/')
		for (size_t i = 1; i < key_len && key[i] != '/' && n < 31; i++)
			out[n++] = (key[i] >= 0x20 && key[i] < 0x7f) ? (char)key[i] : '?';
	out[n] = 0;
}

static json_t *parse_json(const uint8_t *val, size_t val_len, struct an_record_error *e, int *rc)
{
	json_error_t jerr;
	json_t *rec = json_loadb((const char *)val, val_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!rec)
		*rc = fail(e, AN_EMALFORMED, "", "not a JSON record: %s", jerr.text);
	else if (!json_is_object(rec)) {
		json_decref(rec);
		rec = NULL;
		*rc = fail(e, AN_EMALFORMED, "", "not a JSON object");
	}
	return rec;
}

/* Is rec's lookup exactly "an://<peerhash>@<fqdn>"? */
static bool lookup_is(const json_t *rec, const char *peerhash, const char *fqdn)
{
	char ph[17], name[AN_RECORD_FQDN_MAX + 1];
	const char *lookup = json_string_value(json_object_get(rec, "lookup"));
	return lookup && an_record_parse_name(lookup, false, ph, name) == 0 &&
	       strcmp(ph, peerhash) == 0 && strcmp(name, fqdn) == 0;
}

/*
 * The root record a subdomain rec refers to: ctx->root when it is the
 * record of that name, else the value get_root finds under the root's key.
 * *owned is set when the result is new (the caller decrefs it).
 */
static int find_root(const struct an_validate_ctx *ctx, const json_t *rec, const char *peerhash,
		     const json_t **root, json_t **owned, struct an_record_error *e)
{
	const json_t *ref = json_array_get(json_object_get(rec, "root"), 0);
	const char *context = json_string_value(json_object_get(ref, "context"));
	struct an_buf key, val;
	int rc = 0;
	*root = NULL;
	*owned = NULL;
	if (!context || !an_record_fqdn_valid(context))
		return 0; /* an_record_verify names the bad field */
	if (ctx->root && lookup_is(ctx->root, peerhash, context)) {
		*root = ctx->root;
		return 0;
	}
	if (!ctx->get_root)
		return 0; /* an_record_verify reports the missing root */
	an_buf_init(&key, AN_VALIDATE_KEY_MAX);
	an_buf_init(&val, AN_VALIDATE_AN_VALUE_MAX);
	rc = an_record_dht_key(peerhash, context, &key);
	if (rc)
		goto out;
	rc = ctx->get_root(ctx->arg, key.data, key.len, &val);
	if (rc == AN_ENOTFOUND) {
		rc = fail(e, AN_EROOT, "root", "the root record %s is not held: put it first",
			  (const char *)key.data);
		goto out;
	}
	if (rc)
		goto out;
	*owned = parse_json(val.data, val.len, e, &rc);
	if (!*owned) {
		rc = fail(e, AN_EROOT, "root", "the held root record %s does not parse",
			  (const char *)key.data);
		goto out;
	}
	*root = *owned;
out:
	an_buf_free(&key);
	an_buf_free(&val);
	return rc;
}

static int validate_an(const struct an_validate_ctx *ctx, const uint8_t *key, size_t key_len,
		       const uint8_t *val, size_t val_len, struct an_validate_info *info,
		       struct an_record_error *e)
{
	char peerhash[17], fqdn[AN_RECORD_FQDN_MAX + 1];
	const char *lookup, *type, *s;
	const json_t *root = NULL;
	json_t *rec = NULL, *owned_root = NULL;
	struct an_buf own;
	int64_t exp = 0, root_exp = 0;
	int rc = 0;

	an_buf_init(&own, AN_VALIDATE_KEY_MAX);
	if (val_len > AN_VALIDATE_AN_VALUE_MAX) {
		rc = fail(e, AN_ETOOBIG, "", "record of %zu bytes, over the %d-byte limit", val_len,
			  AN_RECORD_MAX);
		goto out;
	}
	rec = parse_json(val, val_len, e, &rc);
	if (!rec)
		goto out;
	/*
	 * The key check comes before the signature, so a valid record sent
	 * under another name costs no Ed25519 work; a lookup that does not
	 * parse is left to an_record_verify, which names the field.
	 */
	lookup = json_string_value(json_object_get(rec, "lookup"));
	if (lookup && an_record_parse_name(lookup, false, peerhash, fqdn) == 0) {
		rc = an_record_dht_key(peerhash, fqdn, &own);
		if (rc)
			goto out;
		if (own.len != key_len || memcmp(own.data, key, key_len) != 0) {
			rc = fail(e, AN_EMISMATCH, "lookup",
				  "the record of %s is not for this key", (const char *)own.data);
			goto out;
		}
		type = json_string_value(json_object_get(rec, "type"));
		if (type && strcmp(type, "root") != 0) {
			rc = find_root(ctx, rec, peerhash, &root, &owned_root, e);
			if (rc)
				goto out;
		}
	}
	rc = an_record_verify(rec, root, ctx->now, 0, e);
	if (rc)
		goto out;
	/* Both parse: an_record_verify checked them. */
	if ((s = json_string_value(json_object_get(rec, "expires"))))
		an_record_parse_time(s, &exp);
	if (root && (s = json_string_value(json_object_get(root, "expires"))) &&
	    an_record_parse_time(s, &root_exp) == 0 && root_exp < exp)
		exp = root_exp;
	if (info) {
		info->ns = AN_NS_AN;
		info->is_root = root == NULL;
		info->seq = (uint64_t)json_integer_value(json_object_get(rec, "seq"));
		info->expires = exp;
	}
out:
	json_decref(rec);
	json_decref(owned_root);
	an_buf_free(&own);
	return rc;
}

static int validate_pk(const uint8_t *key, size_t key_len, const uint8_t *val, size_t val_len,
		       struct an_validate_info *info, struct an_record_error *e)
{
	struct an_pubkey pub;
	struct an_peerid claimed, actual;
	int rc;
	if (val_len > AN_VALIDATE_PK_VALUE_MAX)
		return fail(e, AN_ETOOBIG, "", "public key of %zu bytes, over the %d-byte limit",
			    val_len, AN_PUBKEY_PB_MAX);
	rc = an_peerid_from_bytes(key + 4, key_len - 4, &claimed);
	if (rc)
		return fail(e, AN_EMALFORMED, "key", "the key does not end in a peer ID multihash");
	rc = an_pubkey_decode(val, val_len, &pub);
	if (rc)
		return fail(e, rc == AN_EKEYTYPE ? AN_EKEYTYPE : AN_EMALFORMED, "",
			    "not a PublicKey protobuf: %s", an_strerror(rc));
	rc = an_peerid_from_pubkey(&pub, &actual);
	if (rc)
		return fail(e, rc, "", "no peer ID for the key: %s", an_strerror(rc));
	if (!an_peerid_equal(&claimed, &actual))
		return fail(e, AN_EMISMATCH, "key", "the public key is not that of the key's peer ID");
	if (info) {
		memset(info, 0, sizeof *info);
		info->ns = AN_NS_PK;
	}
	return 0;
}

int an_validate(const struct an_validate_ctx *ctx, const uint8_t *key, size_t key_len,
		const uint8_t *val, size_t val_len, struct an_validate_info *info,
		struct an_record_error *e)
{
	char ns[32];
	if (e)
		e->field[0] = e->message[0] = 0;
	if (key_len > AN_VALIDATE_KEY_MAX)
		return fail(e, AN_ETOOBIG, "key", "key of %zu bytes, over the %d-byte limit", key_len,
			    AN_VALIDATE_KEY_MAX);
	switch (an_validate_namespace(key, key_len)) {
	case AN_NS_AN:
		return validate_an(ctx, key, key_len, val, val_len, info, e);
	case AN_NS_PK:
		return validate_pk(key, key_len, val, val_len, info, e);
	case AN_NS_UNKNOWN:
		break;
	}
	namespace_text(key, key_len, ns);
	return fail(e, AN_ENOPROTO, "key", "no validator for namespace \"%s\"", ns);
}

int an_validate_compare(const uint8_t *key, size_t key_len, const uint8_t *a, size_t a_len,
			const uint8_t *b, size_t b_len)
{
	json_t *ra, *rb;
	int rc;
	if (an_validate_namespace(key, key_len) != AN_NS_AN)
		return 0;
	/* json_loadb refuses oversized input quickly enough; cap anyway. */
	ra = a_len <= AN_VALIDATE_AN_VALUE_MAX ? json_loadb((const char *)a, a_len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	rb = b_len <= AN_VALIDATE_AN_VALUE_MAX ? json_loadb((const char *)b, b_len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	if (ra && rb)
		rc = an_record_compare(ra, rb);
	else
		rc = ra ? 1 : rb ? -1 : 0;
	json_decref(ra);
	json_decref(rb);
	return rc;
}

int an_validate_select(const uint8_t *key, size_t key_len, const struct an_validate_value *vals,
		       size_t n, size_t *best)
{
	if (n == 0)
		return -EINVAL;
	*best = 0;
	switch (an_validate_namespace(key, key_len)) {
	case AN_NS_PK:
		return 0;
	case AN_NS_AN:
		for (size_t i = 1; i < n; i++)
			if (an_validate_compare(key, key_len, vals[i].data, vals[i].len,
						vals[*best].data, vals[*best].len) > 0)
				*best = i;
		return 0;
	case AN_NS_UNKNOWN:
		break;
	}
	return AN_ENOPROTO;
}

int an_validate_cb(void *arg, const uint8_t *key, size_t key_len, const uint8_t *val,
		   size_t val_len)
{
	return an_validate(arg, key, key_len, val, val_len, NULL, NULL);
}

int an_validate_compare_cb(void *arg, const uint8_t *key, size_t key_len, const uint8_t *a,
			   size_t a_len, const uint8_t *b, size_t b_len)
{
	(void)arg;
	return an_validate_compare(key, key_len, a, a_len, b, b_len);
}

int an_validate_name_key(const uint8_t *key, size_t key_len, uint8_t out[34])
{
	char text[AN_VALIDATE_KEY_MAX + 8], peerhash[17], fqdn[AN_RECORD_FQDN_MAX + 1];
	if (an_validate_namespace(key, key_len) != AN_NS_AN || key_len > AN_VALIDATE_KEY_MAX ||
	    memchr(key, 0, key_len))
		return AN_EMALFORMED;
	/* "/an/<ph>@<fqdn>" is the lookup "an://<ph>@<fqdn>" with another prefix. */
	memcpy(text, "an://", 5);
	memcpy(text + 5, key + 4, key_len - 4);
	text[5 + key_len - 4] = 0;
	if (an_record_parse_name(text, false, peerhash, fqdn) != 0)
		return AN_EMALFORMED;
	return an_record_name_key(fqdn, out);
}
