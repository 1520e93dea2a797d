#include "record/record.h"

#include "crypto/peerid.h"
#include "encoding/base58.h"
#include "encoding/multiaddr.h"
#include "record/jcs.h"
#include "util/error.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SIG_PREFIX "ed25519="
#define SIG_TEXT_LEN (sizeof SIG_PREFIX - 1 + 128)
/* Bytes ,"signature":"ed25519=<128>" add to the canonical form of the rest. */
#define SIG_MEMBER_LEN (1 + 11 + 1 + 2 + SIG_TEXT_LEN)

static int fail(struct an_record_error *e, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct an_record_error *e, int code, const char *field, const char *fmt, ...)
{
	if (e) {
		snprintf(e->field, sizeof e->field, "%s", field);
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->message, sizeof e->message, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* ---- names, times, keys ---- */

static bool label_valid(const char *s, size_t n)
{
	if (n < 1 || n > AN_RECORD_LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

bool an_record_fqdn_valid(const char *s)
{
	size_t len = strlen(s);
	if (len < 1 || len > AN_RECORD_FQDN_MAX)
		return false;
	const char *p = s;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!label_valid(p, n))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

int an_record_parse_name(const char *s, bool allow_bare, char peerhash[17],
			 char fqdn[AN_RECORD_FQDN_MAX + 1])
{
	if (strncmp(s, "an://", 5) != 0)
		return AN_EFIELD;
	s += 5;
	const char *at = strchr(s, '@');
	peerhash[0] = 0;
	if (at) {
		if (at - s != 16)
			return AN_EFIELD;
		memcpy(peerhash, s, 16);
		peerhash[16] = 0;
		if (!an_peerhash_valid(peerhash))
			return AN_EFIELD;
		s = at + 1;
	} else if (!allow_bare) {
		return AN_EFIELD;
	}
	if (strlen(s) > AN_RECORD_FQDN_MAX || !an_record_fqdn_valid(s))
		return AN_EFIELD;
	strcpy(fqdn, s);
	return 0;
}

static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int an_record_parse_time(const char *s, int64_t *t)
{
	/* Hand-parsed: it runs several times per record on the verify path. */
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (strlen(s) != AN_RECORD_TIME_LEN || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z')
		return AN_EFIELD;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    se < 0 || se > 59 || d > mdays[mo - 1])
		return AN_EFIELD;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return AN_EFIELD;
	*t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

void an_record_format_time(int64_t t, char out[AN_RECORD_TIME_LEN + 1])
{
	time_t v = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&v, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
		strcpy(out, "9999-12-31T23:59:59Z");
		return;
	}
	char tmp[64];
	snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	memcpy(out, tmp, AN_RECORD_TIME_LEN);
	out[AN_RECORD_TIME_LEN] = 0;
}

int an_record_did(const char *lookup, char out[AN_RECORD_DID_MAX])
{
	uint8_t h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const uint8_t *)lookup, strlen(lookup));
	memcpy(out, "dns:", 4);
	return an_base58_encode(h, 16, out + 4, AN_RECORD_DID_MAX - 4);
}

int an_record_dht_key(const char *peerhash, const char *fqdn, struct an_buf *out)
{
	int rc = an_buf_append(out, "/an/", 4);
	if (rc == 0)
		rc = an_buf_append(out, peerhash, strlen(peerhash));
	if (rc == 0)
		rc = an_buf_putc(out, '@');
	if (rc == 0)
		rc = an_buf_append(out, fqdn, strlen(fqdn));
	return rc;
}

int an_record_name_key(const char *fqdn, uint8_t key[34])
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)"/an-name/", 9);
	crypto_hash_sha256_update(&st, (const uint8_t *)fqdn, strlen(fqdn));
	key[0] = 0x12;
	key[1] = 0x20;
	crypto_hash_sha256_final(&st, key + 2);
	return 0;
}

/*
 * The Ed25519 publisher of a peer ID text, with its peer hash.  Only the
 * base58btc form of an identity multihash is accepted: every Ed25519 peer
 * ID starts "12D3KooW", and base58 has one spelling per byte string, so the
 * text is canonical once it decodes.
 */
static int publisher_parse(const char *text, struct an_pubkey *pub, char peerhash[17],
			   struct an_record_error *e)
{
	/*
	 * Streams of records mostly come from one publisher: remember the last
	 * key parsed (per thread) and skip the base58 decode and hash.
	 */
	static _Thread_local char last_text[AN_PEERID_TEXT_MAX];
	static _Thread_local struct an_pubkey last_pub;
	static _Thread_local char last_hash[17];
	if (last_text[0] && strcmp(text, last_text) == 0) {
		*pub = last_pub;
		memcpy(peerhash, last_hash, 17);
		return 0;
	}
	struct an_peerid id;
	if (strncmp(text, "12D3KooW", 8) != 0 || an_peerid_parse(text, &id) != 0) {
		if (text[0] == 'Q' && text[1] == 'm')
			return fail(e, AN_EKEYTYPE, "publisherPublicKey",
				    "not an Ed25519 peer ID (only Ed25519 publishers are accepted)");
		return fail(e, AN_EFIELD, "publisherPublicKey", "not a base58btc Ed25519 peer ID");
	}
	if (an_peerid_pubkey(&id, pub) != 0 || pub->type != AN_KEY_ED25519)
		return fail(e, AN_EKEYTYPE, "publisherPublicKey",
			    "not an Ed25519 peer ID (only Ed25519 publishers are accepted)");
	if (an_peerhash(&id, peerhash) != 0)
		return fail(e, AN_EFIELD, "publisherPublicKey", "no peer hash");
	if (strlen(text) < sizeof last_text) {
		strcpy(last_text, text);
		last_pub = *pub;
		memcpy(last_hash, peerhash, 17);
	}
	return 0;
}

/* ---- field checks ---- */

/* True if v holds a number JCS cannot carry exactly (the fast pass, no paths). */
static bool has_huge_number(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v) > AN_RECORD_INT_MAX || json_integer_value(v) < -AN_RECORD_INT_MAX;
	if (json_is_real(v))
		return json_real_value(v) > 9007199254740991.0 || json_real_value(v) < -9007199254740991.0;
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (has_huge_number(json_array_get(v, i)))
				return true;
	} else if (json_is_object(v)) {
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)v, key, val)
			if (has_huge_number(val))
				return true;
	}
	return false;
}

/* Walk v for numbers JCS cannot carry exactly; names the first one's path. */
static int check_numbers(const json_t *v, char *path, size_t len, size_t cap, struct an_record_error *e)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i > AN_RECORD_INT_MAX || i < -AN_RECORD_INT_MAX)
			return fail(e, AN_ETOOBIG, len ? path : "", "huge number (beyond 2^53-1)");
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d > 9007199254740991.0 || d < -9007199254740991.0)
			return fail(e, AN_ETOOBIG, len ? path : "", "huge number (beyond 2^53-1)");
		return 0;
	}
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++) {
			int n = snprintf(path + len, cap - len, "[%zu]", i);
			size_t nl = len + (n > 0 && (size_t)n < cap - len ? (size_t)n : 0);
			int rc = check_numbers(json_array_get(v, i), path, nl, cap, e);
			path[len] = 0;
			if (rc)
				return rc;
		}
		return 0;
	}
	if (json_is_object(v)) {
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)v, key, val) {
			int n = snprintf(path + len, cap - len, "%s%s", len ? "." : "", key);
			size_t nl = n > 0 && (size_t)n < cap - len ? len + (size_t)n : cap - 1;
			int rc = check_numbers(val, path, nl, cap, e);
			path[len] = 0;
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int get_string(const json_t *obj, const char *key, const char *field, bool required,
		      const char **out, struct an_record_error *e)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v)
		return required ? fail(e, AN_EFIELD, field, "missing") : 0;
	if (!json_is_string(v))
		return fail(e, AN_EFIELD, field, "not a string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return fail(e, AN_EFIELD, field, "contains NUL");
	*out = json_string_value(v);
	return 0;
}

static int get_uint(const json_t *obj, const char *key, const char *field, int64_t min,
		    int64_t max, int64_t *out, struct an_record_error *e)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return fail(e, AN_EFIELD, field, "missing");
	if (!json_is_integer(v))
		return fail(e, AN_EFIELD, field, "not an integer");
	json_int_t i = json_integer_value(v);
	if (i > AN_RECORD_INT_MAX)
		return fail(e, AN_ETOOBIG, field, "huge number (beyond 2^53-1)");
	if (i < min || i > max)
		return fail(e, AN_EFIELD, field, "%lld out of range %" PRId64 "..%" PRId64,
			    (long long)i, min, max);
	*out = (int64_t)i;
	return 0;
}

static int get_time(const json_t *obj, const char *key, const char *field, int64_t *out,
		    struct an_record_error *e)
{
	const char *s;
	int rc = get_string(obj, key, field, true, &s, e);
	if (rc)
		return rc;
	if (an_record_parse_time(s, out) != 0)
		return fail(e, AN_EFIELD, field, "not an RFC 3339 UTC time like 2026-11-23T20:00:00Z");
	return 0;
}

/*
 * A multiaddr we can parse, written in its canonical text form (what
 * an_multiaddr_format prints), so every verifier reads the same address.
 */
static bool multiaddr_valid(const char *s)
{
	struct an_multiaddr ma;
	char back[AN_MULTIADDR_TEXT_MAX];
	if (strlen(s) > AN_RECORD_ADDR_MAX || an_multiaddr_parse(s, &ma) != 0 ||
	    an_multiaddr_format(&ma, back, sizeof back) != 0)
		return false;
	return strcmp(back, s) == 0;
}

static int check_multiaddrs(const json_t *rec, bool required, struct an_record_error *e)
{
	json_t *a = json_object_get(rec, "multiaddrs");
	if (!a)
		return required ? fail(e, AN_EFIELD, "multiaddrs", "missing (an A record needs an address)") : 0;
	if (!json_is_array(a))
		return fail(e, AN_EFIELD, "multiaddrs", "not an array");
	if (json_array_size(a) > AN_RECORD_ADDRS_MAX)
		return fail(e, AN_EFIELD, "multiaddrs", "more than %d addresses", AN_RECORD_ADDRS_MAX);
	if (required && json_array_size(a) == 0)
		return fail(e, AN_EFIELD, "multiaddrs", "empty (an A record needs an address)");
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *v = json_array_get(a, i);
		char field[48];
		snprintf(field, sizeof field, "multiaddrs[%zu]", i);
		if (!json_is_string(v))
			return fail(e, AN_EFIELD, field, "not a string");
		if (!multiaddr_valid(json_string_value(v)) ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return fail(e, AN_EFIELD, field, "not a canonical multiaddr of at most %d characters",
				    AN_RECORD_ADDR_MAX);
	}
	return 0;
}

static int check_signature_text(const char *s, uint8_t sig[64], struct an_record_error *e)
{
	if (strlen(s) != SIG_TEXT_LEN || strncmp(s, SIG_PREFIX, sizeof SIG_PREFIX - 1) != 0)
		return fail(e, AN_EFIELD, "signature", "not \"ed25519=\" and 128 hex digits");
	const char *hex = s + sizeof SIG_PREFIX - 1;
	for (size_t i = 0; i < 128; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return fail(e, AN_EFIELD, "signature", "not lowercase hex");
	if (sig && sodium_hex2bin(sig, 64, hex, 128, NULL, NULL, NULL) != 0)
		return fail(e, AN_EFIELD, "signature", "not lowercase hex");
	return 0;
}

static bool is_type(const char *t)
{
	return !strcmp(t, "root") || !strcmp(t, "A") || !strcmp(t, "CNAME") || !strcmp(t, "TXT");
}

int an_record_digest(const json_t *rec, uint8_t digest[32])
{
	struct an_buf b;
	an_buf_init(&b, AN_RECORD_MAX);
	int rc = an_jcs_serialize_without(rec, "signature", &b);
	if (rc == 0) {
		crypto_hash_sha256_state st;
		crypto_hash_sha256_init(&st);
		crypto_hash_sha256_update(&st, (const uint8_t *)AN_RECORD_DOMAIN, sizeof AN_RECORD_DOMAIN);
		crypto_hash_sha256_update(&st, b.data, b.len);
		crypto_hash_sha256_final(&st, digest);
	}
	an_buf_free(&b);
	return rc;
}

int an_record_serialize(const json_t *rec, struct an_buf *out)
{
	return an_jcs_serialize(rec, out);
}

/* ---- verification ---- */

struct parsed {
	const char *type, *lookup, *fqdn_root, *signature;
	char peerhash[17];
	char fqdn[AN_RECORD_FQDN_MAX + 1];
	struct an_pubkey pub;
	bool is_root;
	int64_t stamp, expires;
};

static int check_version(const json_t *rec, struct an_record_error *e)
{
	const char *v;
	int rc = get_string(rec, "version", "version", true, &v, e);
	if (rc)
		return rc;
	unsigned maj, min, pat;
	char tail;
	if (strcmp(v, AN_RECORD_VERSION) == 0) /* the common case, without sscanf */
		return 0;
	if (sscanf(v, "%u.%u.%u%c", &maj, &min, &pat, &tail) != 3 || v[0] < '0' || v[0] > '9')
		return fail(e, AN_EFIELD, "version", "not MAJOR.MINOR.PATCH");
	if (maj != 1)
		return fail(e, AN_EFIELD, "version", "major version %u not supported (1 is)", maj);
	return 0;
}

static int check_dns(const json_t *rec, const struct parsed *p, struct an_record_error *e)
{
	json_t *dns = json_object_get(rec, "dns");
	if (!dns)
		return fail(e, AN_EFIELD, "dns", "missing");
	if (!json_is_object(dns))
		return fail(e, AN_EFIELD, "dns", "not an object");
	const char *name, *proto;
	int rc = get_string(dns, "name", "dns.name", true, &name, e);
	if (rc == 0)
		rc = get_string(dns, "protocol", "dns.protocol", true, &proto, e);
	if (rc)
		return rc;
	if (strcmp(proto, "an") != 0)
		return fail(e, AN_EFIELD, "dns.protocol", "not \"an\"");
	json_t *isroot = json_object_get(dns, "isRoot");
	if (!isroot)
		return fail(e, AN_EFIELD, "dns.isRoot", "missing");
	if (!json_is_boolean(isroot))
		return fail(e, AN_EFIELD, "dns.isRoot", "not a boolean");
	if (json_is_true(isroot) != p->is_root)
		return fail(e, AN_EMISMATCH, "dns.isRoot", "does not match type \"%s\"", p->type);
	if (p->is_root) {
		if (strcmp(name, p->fqdn) != 0)
			return fail(e, AN_EMISMATCH, "dns.name", "does not match the name in lookup");
	} else {
		size_t n = strlen(name);
		if (!strchr(p->fqdn, '.'))
			return fail(e, AN_EFIELD, "lookup", "a subdomain name needs at least two labels");
		/* One label only: "a" for a.b.mysite, never "a.b" (an-record(5)). */
		if (n == 0 || strchr(name, '.') || strncmp(name, p->fqdn, n) != 0 || p->fqdn[n] != '.')
			return fail(e, AN_EMISMATCH, "dns.name", "is not the leftmost label of the name in lookup");
	}
	return 0;
}

static int check_type_fields(const json_t *rec, const struct parsed *p, struct an_record_error *e)
{
	const char *s;
	bool cname = !strcmp(p->type, "CNAME"), txt = !strcmp(p->type, "TXT");
	int rc = check_multiaddrs(rec, !strcmp(p->type, "A"), e);
	if (rc)
		return rc;
	rc = get_string(rec, "target", "target", cname, &s, e);
	if (rc)
		return rc;
	if (s && !cname)
		return fail(e, AN_EFIELD, "target", "only CNAME records have a target");
	if (s) {
		char ph[17], fq[AN_RECORD_FQDN_MAX + 1];
		if (an_record_parse_name(s, false, ph, fq) != 0)
			return fail(e, AN_EFIELD, "target", "not an an://<peerHash>@<name>");
	}
	rc = get_string(rec, "text", "text", txt, &s, e);
	if (rc)
		return rc;
	if (s && !txt)
		return fail(e, AN_EFIELD, "text", "only TXT records have text");
	if (s && strlen(s) > AN_RECORD_TEXT_MAX)
		return fail(e, AN_EFIELD, "text", "longer than %d bytes", AN_RECORD_TEXT_MAX);
	return 0;
}

static int check_root_ref(const json_t *rec, const struct parsed *p, const json_t **ref,
			  struct an_record_error *e)
{
	json_t *r = json_object_get(rec, "root");
	*ref = NULL;
	if (p->is_root) {
		if (r)
			return fail(e, AN_EFIELD, "root", "a root record has no root reference");
		return 0;
	}
	if (!r)
		return fail(e, AN_EFIELD, "root", "missing (a subdomain references its root record)");
	if (!json_is_array(r) || json_array_size(r) != 1 || !json_is_object(json_array_get(r, 0)))
		return fail(e, AN_EFIELD, "root", "not an array of one object");
	const json_t *o = json_array_get(r, 0);
	const char *s;
	int rc = get_string(o, "target", "root[0].target", true, &s, e);
	if (rc == 0 && strncmp(s, "dns:", 4) != 0)
		rc = fail(e, AN_EFIELD, "root[0].target", "not a did");
	if (rc == 0)
		rc = get_string(o, "context", "root[0].context", true, &s, e);
	if (rc == 0 && !an_record_fqdn_valid(s))
		rc = fail(e, AN_EFIELD, "root[0].context", "not a name");
	if (rc == 0)
		rc = get_string(o, "signature", "root[0].signature", true, &s, e);
	if (rc == 0 && check_signature_text(s, NULL, NULL) != 0)
		rc = fail(e, AN_EFIELD, "root[0].signature", "not \"ed25519=\" and 128 hex digits");
	if (rc == 0) {
		size_t cl = strlen(json_string_value(json_object_get(o, "context")));
		size_t fl = strlen(p->fqdn);
		if (fl <= cl + 1 || strcmp(p->fqdn + fl - cl, json_string_value(json_object_get(o, "context"))) ||
		    p->fqdn[fl - cl - 1] != '.')
			rc = fail(e, AN_EMISMATCH, "root[0].context", "the name in lookup is not under it");
	}
	*ref = o;
	return rc;
}

/* Everything but the signature, the clock and the root: the record's own shape. */
static int check_shape(const json_t *rec, struct parsed *p, const json_t **ref,
		       struct an_record_error *e)
{
	char path[64] = "";
	int rc;
	memset(p, 0, sizeof *p);
	if (!json_is_object(rec))
		return fail(e, AN_EMALFORMED, "", "not a JSON object");
	if (has_huge_number(rec) && (rc = check_numbers(rec, path, 0, sizeof path, e)) != 0)
		return rc;
	if ((rc = check_version(rec, e)) != 0)
		return rc;
	if ((rc = get_string(rec, "type", "type", true, &p->type, e)) != 0)
		return rc;
	if (!is_type(p->type))
		return fail(e, AN_EFIELD, "type", "not root, A, CNAME or TXT");
	p->is_root = !strcmp(p->type, "root");

	const char *pk;
	char ph[17];
	if ((rc = get_string(rec, "publisherPublicKey", "publisherPublicKey", true, &pk, e)) != 0 ||
	    (rc = publisher_parse(pk, &p->pub, ph, e)) != 0)
		return rc;
	if ((rc = get_string(rec, "lookup", "lookup", true, &p->lookup, e)) != 0)
		return rc;
	if (an_record_parse_name(p->lookup, false, p->peerhash, p->fqdn) != 0)
		return fail(e, AN_EFIELD, "lookup", "not an://<peerHash>@<name> (lowercase LDH labels)");
	if (strcmp(p->peerhash, ph) != 0)
		return fail(e, AN_EMISMATCH, "lookup", "peer hash %s is not that of publisherPublicKey (%s)",
			    p->peerhash, ph);

	const char *did;
	char want[AN_RECORD_DID_MAX];
	if ((rc = get_string(rec, "did", "did", true, &did, e)) != 0)
		return rc;
	if (an_record_did(p->lookup, want) != 0 || strcmp(did, want) != 0)
		return fail(e, AN_EMISMATCH, "did", "is not the did of lookup (%s)", want);

	if ((rc = check_dns(rec, p, e)) != 0 || (rc = check_type_fields(rec, p, e)) != 0 ||
	    (rc = check_root_ref(rec, p, ref, e)) != 0)
		return rc;

	json_t *ttl = json_object_get(rec, "ttl");
	int64_t n;
	if (!ttl)
		return fail(e, AN_EFIELD, "ttl", "missing");
	if (!json_is_object(ttl))
		return fail(e, AN_EFIELD, "ttl", "not an object");
	if ((rc = get_uint(ttl, "timesRepublished", "ttl.timesRepublished", 0, AN_RECORD_INT_MAX, &n, e)) ||
	    (rc = get_time(ttl, "timestampRepublished", "ttl.timestampRepublished", &p->stamp, e)) ||
	    (rc = get_uint(ttl, "timeToLive", "ttl.timeToLive", 1, AN_RECORD_VALID_MAX, &n, e)) ||
	    (rc = get_time(rec, "expires", "expires", &p->expires, e)) ||
	    (rc = get_uint(rec, "seq", "seq", 0, AN_RECORD_INT_MAX, &n, e)))
		return rc;
	if (p->expires <= p->stamp)
		return fail(e, AN_EFIELD, "expires", "not after ttl.timestampRepublished");
	if (p->expires - p->stamp > AN_RECORD_VALID_MAX)
		return fail(e, AN_EFIELD, "expires", "more than %d days after ttl.timestampRepublished",
			    AN_RECORD_VALID_MAX / 86400);
	return 0;
}

/*
 * The signature text, the canonical form (into scratch, reset first) and the
 * digest the signature covers.
 */
static int check_digest(const json_t *rec, struct an_buf *scratch, uint8_t sig[64], uint8_t digest[32],
			struct an_record_error *e)
{
	const char *s;
	int rc = get_string(rec, "signature", "signature", true, &s, e);
	if (rc == 0)
		rc = check_signature_text(s, sig, e);
	if (rc)
		return rc;
	an_buf_reset(scratch);
	rc = an_jcs_serialize_without(rec, "signature", scratch);
	/* The cap is checked here, not by the buffer: scratch may be larger. */
	if (rc == AN_ETOOBIG || (rc == 0 && scratch->len > AN_RECORD_MAX - SIG_MEMBER_LEN))
		return fail(e, AN_ETOOBIG, "", "record over %d bytes in canonical form", AN_RECORD_MAX);
	if (rc)
		return fail(e, rc, "", "no canonical form: %s", an_strerror(rc));
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)AN_RECORD_DOMAIN, sizeof AN_RECORD_DOMAIN);
	crypto_hash_sha256_update(&st, scratch->data, scratch->len);
	crypto_hash_sha256_final(&st, digest);
	return 0;
}

static int check_time(const struct parsed *p, int64_t now, struct an_record_error *e)
{
	char t[AN_RECORD_TIME_LEN + 1];
	if (now >= p->expires) {
		an_record_format_time(p->expires, t);
		return fail(e, AN_EEXPIRED, "expires", "expired at %s", t);
	}
	if (p->stamp > now + AN_RECORD_SKEW) {
		an_record_format_time(p->stamp, t);
		return fail(e, AN_ENOTYET, "ttl.timestampRepublished", "not valid yet (signed for %s)", t);
	}
	return 0;
}

static int check_against_root(const json_t *ref, const struct parsed *p, const json_t *root,
			      int64_t now, unsigned flags, struct an_record_error *e)
{
	struct parsed rp;
	const json_t *rref;
	struct an_record_error re;
	int rc;
	if (!root)
		return fail(e, AN_EROOT, "root", "the root record %s (%s) was not given",
			    json_string_value(json_object_get(ref, "target")),
			    json_string_value(json_object_get(ref, "context")));
	if (flags & AN_RECORD_ROOT_VERIFIED)
		rc = check_shape(root, &rp, &rref, &re);
	else {
		rc = an_record_verify(root, NULL, now, 0, &re);
		if (rc == 0)
			rc = check_shape(root, &rp, &rref, &re);
	}
	if (rc)
		return fail(e, AN_EROOT, "root", "the root record is not valid: %s%s%s", re.field,
			    re.field[0] ? ": " : "", re.message);
	if (!rp.is_root)
		return fail(e, AN_EROOT, "root", "the given root record is of type %s", rp.type);
	if (!an_pubkey_equal(&rp.pub, &p->pub))
		return fail(e, AN_EROOT, "publisherPublicKey", "not the publisher of the root record");
	if (strcmp(json_string_value(json_object_get(ref, "target")),
		   json_string_value(json_object_get(root, "did"))) != 0)
		return fail(e, AN_EROOT, "root[0].target", "does not match the root record's did");
	if (strcmp(json_string_value(json_object_get(ref, "context")), rp.fqdn) != 0)
		return fail(e, AN_EROOT, "root[0].context", "does not match the root record's name");
	if (strcmp(json_string_value(json_object_get(ref, "signature")),
		   json_string_value(json_object_get(root, "signature"))) != 0)
		return fail(e, AN_EROOT, "root[0].signature", "does not match the root record");
	return 0;
}

int an_record_check_begin(const json_t *rec, struct an_buf *scratch, struct an_record_check *c)
{
	struct parsed p;
	struct an_buf local;
	int rc;
	memset(c, 0, sizeof *c);
	an_buf_init(&local, AN_RECORD_MAX);
	if (!scratch)
		scratch = &local;
	else if (scratch->max < AN_RECORD_MAX)
		scratch->max = AN_RECORD_MAX;
	rc = check_shape(rec, &p, &c->ref, &c->e);
	if (rc == 0)
		rc = check_digest(rec, scratch, c->sig, c->digest, &c->e);
	an_buf_free(&local);
	c->pub = p.pub;
	c->is_root = p.is_root;
	c->stamp = p.stamp;
	c->expires = p.expires;
	c->rc = rc;
	return rc;
}

int an_record_check_signature(const struct an_record_check *c)
{
	return an_pubkey_verify(&c->pub, c->digest, sizeof c->digest, c->sig, sizeof c->sig) == 0 ? 0
											: AN_EBADSIG;
}

int an_record_check_end(const json_t *rec, const struct an_record_check *c, int sig_rc,
			const json_t *root, int64_t now, unsigned flags, struct an_record_error *e)
{
	struct parsed p;
	int rc = c->rc;
	(void)rec;
	if (rc) {
		if (e)
			*e = c->e;
		return rc;
	}
	memset(&p, 0, sizeof p);
	p.pub = c->pub;
	p.is_root = c->is_root;
	p.stamp = c->stamp;
	p.expires = c->expires;
	if (sig_rc)
		rc = fail(e, AN_EBADSIG, "signature", "does not verify with publisherPublicKey");
	if (rc == 0)
		rc = check_time(&p, now, e);
	if (rc == 0 && !p.is_root)
		rc = check_against_root(c->ref, &p, root, now, flags, e);
	if (rc == 0 && e)
		e->field[0] = e->message[0] = 0;
	return rc;
}

int an_record_verify(const json_t *rec, const json_t *root, int64_t now, unsigned flags,
		     struct an_record_error *e)
{
	struct an_record_check c;
	int rc = an_record_check_begin(rec, NULL, &c);
	return an_record_check_end(rec, &c, rc == 0 ? an_record_check_signature(&c) : 0, root, now,
				   flags, e);
}

/* ---- selection ---- */

int an_record_compare(const json_t *a, const json_t *b)
{
	json_t *sa = json_object_get(a, "seq"), *sb = json_object_get(b, "seq");
	long long qa = json_is_integer(sa) ? json_integer_value(sa) : -1;
	long long qb = json_is_integer(sb) ? json_integer_value(sb) : -1;
	if (qa != qb)
		return qa > qb ? 1 : -1;
	int64_t ea = -1, eb = -1;
	const char *s;
	if ((s = json_string_value(json_object_get(a, "expires"))) && an_record_parse_time(s, &ea))
		ea = -1;
	if ((s = json_string_value(json_object_get(b, "expires"))) && an_record_parse_time(s, &eb))
		eb = -1;
	return ea > eb ? 1 : ea < eb ? -1 : 0;
}

/* ---- signing ---- */

static int set_new(json_t *obj, const char *key, json_t *v)
{
	if (!v || json_object_set_new(obj, key, v) != 0)
		return -ENOMEM;
	return 0;
}

static int set_str(json_t *obj, const char *key, const char *s, const char *field, struct an_record_error *e)
{
	json_t *v = json_string(s);
	if (!v)
		return fail(e, AN_EFIELD, field, "not valid UTF-8");
	return set_new(obj, key, v);
}

static int sign_names(json_t *rec, const struct an_record_sign_opts *o, const char *pid,
		      const char *myhash, char fqdn[AN_RECORD_FQDN_MAX + 1], struct an_record_error *e)
{
	const char *s;
	char ph[17] = "";
	int rc = get_string(rec, "publisherPublicKey", "publisherPublicKey", false, &s, e);
	if (rc)
		return rc;
	if (s && strcmp(s, pid) != 0)
		return fail(e, AN_EMISMATCH, "publisherPublicKey", "is %s, not the signing key's %s", s, pid);
	if ((rc = get_string(rec, "lookup", "lookup", false, &s, e)) != 0)
		return rc;
	if (s && an_record_parse_name(s, true, ph, fqdn) != 0)
		return fail(e, AN_EFIELD, "lookup", "not an://[<peerHash>@]<name> (lowercase LDH labels)");
	if (ph[0] && strcmp(ph, myhash) != 0)
		return fail(e, AN_EMISMATCH, "lookup", "peer hash %s is not the signing key's %s", ph, myhash);
	if (o->name) {
		size_t n = strlen(o->name);
		if (n > AN_RECORD_FQDN_MAX)
			return fail(e, AN_EFIELD, "dns.name", "longer than %d characters", AN_RECORD_FQDN_MAX);
		for (size_t i = 0; i <= n; i++)
			fqdn[i] = (o->name[i] >= 'A' && o->name[i] <= 'Z') ? (char)(o->name[i] + 32) : o->name[i];
		if (n && fqdn[n - 1] == '.')
			fqdn[n - 1] = 0; /* "mysite." is "mysite" */
		if (!an_record_fqdn_valid(fqdn))
			return fail(e, AN_EFIELD, "dns.name", "\"%s\" is not a name of LDH labels of 1-63 characters", o->name);
	} else if (!s) {
		return fail(e, AN_EFIELD, "lookup", "missing: give a name (--name)");
	}
	char lookup[5 + 16 + 1 + AN_RECORD_FQDN_MAX + 1], did[AN_RECORD_DID_MAX];
	snprintf(lookup, sizeof lookup, "an://%s@%s", myhash, fqdn);
	if ((rc = an_record_did(lookup, did)) != 0)
		return rc;
	if ((rc = set_str(rec, "did", did, "did", e)) || (rc = set_str(rec, "publisherPublicKey", pid, "publisherPublicKey", e)) ||
	    (rc = set_str(rec, "lookup", lookup, "lookup", e)))
		return rc;
	return 0;
}

static int sign_dns(json_t *rec, bool is_root, const char *fqdn, struct an_record_error *e)
{
	json_t *dns = json_object_get(rec, "dns");
	if (dns && !json_is_object(dns))
		return fail(e, AN_EFIELD, "dns", "not an object");
	if (!dns) {
		if (set_new(rec, "dns", json_object()) != 0)
			return -ENOMEM;
		dns = json_object_get(rec, "dns");
	}
	char name[AN_RECORD_FQDN_MAX + 1];
	strcpy(name, fqdn);
	if (!is_root) {
		char *dot = strchr(name, '.');
		if (!dot)
			return fail(e, AN_EFIELD, "dns.name",
				    "\"%s\" has one label: a subdomain is <label>.<root name>", fqdn);
		*dot = 0;
	}
	if (set_new(dns, "name", json_string(name)) || set_new(dns, "protocol", json_string("an")) ||
	    set_new(dns, "isRoot", json_boolean(is_root)))
		return -ENOMEM;
	return 0;
}

static int sign_fields(json_t *rec, const struct an_record_sign_opts *o, struct an_record_error *e)
{
	int rc;
	if (o->naddrs > 0) {
		if (o->naddrs > AN_RECORD_ADDRS_MAX)
			return fail(e, AN_EFIELD, "multiaddrs", "more than %d addresses", AN_RECORD_ADDRS_MAX);
		json_t *a = json_array();
		if (!a)
			return -ENOMEM;
		for (size_t i = 0; i < o->naddrs; i++) {
			if (!multiaddr_valid(o->addrs[i])) {
				json_decref(a);
				return fail(e, AN_EFIELD, "multiaddrs", "\"%s\" is not a canonical multiaddr of at most %d characters",
					    o->addrs[i], AN_RECORD_ADDR_MAX);
			}
			json_array_append_new(a, json_string(o->addrs[i]));
		}
		if ((rc = set_new(rec, "multiaddrs", a)) != 0)
			return rc;
	}
	if (o->target && (rc = set_str(rec, "target", o->target, "target", e)) != 0)
		return rc;
	if (o->text && (rc = set_str(rec, "text", o->text, "text", e)) != 0)
		return rc;
	return 0;
}

static int sign_root_ref(json_t *rec, bool is_root, const struct an_pubkey *pub, const char *fqdn,
			 const struct an_record_sign_opts *o, struct an_record_error *e)
{
	if (is_root) {
		if (o->root)
			return fail(e, AN_EFIELD, "root", "a root record takes no --root");
		if (json_object_get(rec, "root"))
			return fail(e, AN_EFIELD, "root", "a root record has no root reference");
		return 0;
	}
	if (!o->root)
		return json_object_get(rec, "root") ? 0
			: fail(e, AN_EROOT, "root", "a subdomain record needs its root record (--root)");
	struct an_record_error re;
	struct parsed rp;
	const json_t *ref;
	int rc = an_record_verify(o->root, NULL, o->now, 0, &re);
	if (rc == 0)
		rc = check_shape(o->root, &rp, &ref, &re);
	if (rc)
		return fail(e, AN_EROOT, "root", "the root record is not valid: %s%s%s", re.field,
			    re.field[0] ? ": " : "", re.message);
	if (!rp.is_root)
		return fail(e, AN_EROOT, "root", "the root record is of type %s", rp.type);
	if (!an_pubkey_equal(&rp.pub, pub))
		return fail(e, AN_EROOT, "root", "the root record has another publisher");
	size_t fl = strlen(fqdn), rl = strlen(rp.fqdn);
	if (fl <= rl + 1 || strcmp(fqdn + fl - rl, rp.fqdn) != 0 || fqdn[fl - rl - 1] != '.')
		return fail(e, AN_EROOT, "dns.name", "\"%s\" is not under the root name \"%s\"", fqdn, rp.fqdn);
	json_t *r = json_pack("[{s:O, s:s, s:O}]", "target", json_object_get(o->root, "did"),
			      "context", rp.fqdn, "signature", json_object_get(o->root, "signature"));
	return set_new(rec, "root", r);
}

static int sign_times(json_t *rec, const struct an_record_sign_opts *o, struct an_record_error *e)
{
	json_t *ttl = json_object_get(rec, "ttl");
	int64_t times = 0, live = AN_RECORD_TTL_DEFAULT, seq = 0, valid;
	int rc;
	if (ttl && !json_is_object(ttl))
		return fail(e, AN_EFIELD, "ttl", "not an object");
	if (!ttl) {
		if (set_new(rec, "ttl", json_object()) != 0)
			return -ENOMEM;
		ttl = json_object_get(rec, "ttl");
	}
	if (json_object_get(ttl, "timesRepublished") &&
	    (rc = get_uint(ttl, "timesRepublished", "ttl.timesRepublished", 0, AN_RECORD_INT_MAX - 1, &times, e)))
		return rc;
	if (json_object_get(ttl, "timeToLive") &&
	    (rc = get_uint(ttl, "timeToLive", "ttl.timeToLive", 1, AN_RECORD_VALID_MAX, &live, e)))
		return rc;
	if (json_object_get(rec, "seq") && (rc = get_uint(rec, "seq", "seq", 0, AN_RECORD_INT_MAX, &seq, e)))
		return rc;
	if (o->resign)
		times++;
	if (o->ttl_secs) {
		if (o->ttl_secs < 1 || o->ttl_secs > AN_RECORD_VALID_MAX)
			return fail(e, AN_EFIELD, "ttl.timeToLive", "not between 1 s and %d days", AN_RECORD_VALID_MAX / 86400);
		live = o->ttl_secs;
	}
	if (o->has_seq) {
		if (o->seq > (uint64_t)AN_RECORD_INT_MAX)
			return fail(e, AN_ETOOBIG, "seq", "huge number (beyond 2^53-1)");
		seq = (int64_t)o->seq;
	}
	if (o->bump_seq) {
		if (seq >= AN_RECORD_INT_MAX)
			return fail(e, AN_ETOOBIG, "seq", "cannot be bumped past 2^53-1");
		seq++;
	}
	valid = o->valid_secs ? o->valid_secs : AN_RECORD_VALID_DEFAULT;
	if (valid < 1 || valid > AN_RECORD_VALID_MAX)
		return fail(e, AN_EFIELD, "expires", "validity not between 1 s and %d days", AN_RECORD_VALID_MAX / 86400);
	char stamp[AN_RECORD_TIME_LEN + 1], exp[AN_RECORD_TIME_LEN + 1];
	an_record_format_time(o->now, stamp);
	an_record_format_time(o->now + valid, exp);
	if (set_new(ttl, "timesRepublished", json_integer(times)) ||
	    set_new(ttl, "timestampRepublished", json_string(stamp)) ||
	    set_new(ttl, "timeToLive", json_integer(live)) || set_new(rec, "expires", json_string(exp)) ||
	    set_new(rec, "seq", json_integer(seq)))
		return -ENOMEM;
	return 0;
}

int an_record_sign(json_t *rec, const struct an_privkey *k, const struct an_record_sign_opts *o,
		   struct an_record_error *e)
{
	char path[64] = "", pid[AN_PEERID_TEXT_MAX], myhash[17], fqdn[AN_RECORD_FQDN_MAX + 1] = "";
	struct an_pubkey pub;
	struct an_peerid id;
	const char *type;
	int rc;

	if (!json_is_object(rec))
		return fail(e, AN_EMALFORMED, "", "not a JSON object");
	if ((rc = check_numbers(rec, path, 0, sizeof path, e)) != 0)
		return rc;
	if (o->resign && !json_object_get(rec, "signature"))
		return fail(e, AN_EFIELD, "signature", "missing: re-signing needs a signed record");
	an_privkey_public(k, &pub);
	if ((rc = an_peerid_from_pubkey(&pub, &id)) || (rc = an_peerid_format(&id, pid, sizeof pid)) ||
	    (rc = an_peerhash(&id, myhash)))
		return fail(e, rc, "", "signing key: %s", an_strerror(rc));
	if (o->type && (rc = set_str(rec, "type", o->type, "type", e)) != 0)
		return rc;
	if ((rc = get_string(rec, "type", "type", true, &type, e)) != 0)
		return rc;
	if (!is_type(type))
		return fail(e, AN_EFIELD, "type", "\"%s\" is not root, A, CNAME or TXT", type);
	bool is_root = !strcmp(type, "root");

	json_t *ver = json_object_get(rec, "version");
	if (ver && (rc = check_version(rec, e)) != 0)
		return rc;
	if (!ver && set_new(rec, "version", json_string(AN_RECORD_VERSION)) != 0)
		return -ENOMEM;
	if ((rc = sign_names(rec, o, pid, myhash, fqdn, e)) || (rc = sign_dns(rec, is_root, fqdn, e)) ||
	    (rc = sign_fields(rec, o, e)) || (rc = sign_root_ref(rec, is_root, &pub, fqdn, o, e)) ||
	    (rc = sign_times(rec, o, e)))
		return rc;
	json_object_del(rec, "signature");

	/* The same checks a verifier makes, so we never sign what it refuses. */
	struct parsed p;
	const json_t *ref;
	if ((rc = check_shape(rec, &p, &ref, e)) != 0)
		return rc;

	struct an_buf b;
	uint8_t digest[32], sig[64];
	char text[SIG_TEXT_LEN + 1];
	an_buf_init(&b, AN_RECORD_MAX - SIG_MEMBER_LEN);
	rc = an_jcs_serialize(rec, &b);
	if (rc == 0) {
		crypto_hash_sha256_state st;
		crypto_hash_sha256_init(&st);
		crypto_hash_sha256_update(&st, (const uint8_t *)AN_RECORD_DOMAIN, sizeof AN_RECORD_DOMAIN);
		crypto_hash_sha256_update(&st, b.data, b.len);
		crypto_hash_sha256_final(&st, digest);
	}
	an_buf_free(&b);
	if (rc == AN_ETOOBIG)
		return fail(e, rc, "", "record over %d bytes in canonical form", AN_RECORD_MAX);
	if (rc)
		return fail(e, rc, "", "no canonical form: %s", an_strerror(rc));
	if ((rc = an_privkey_sign(k, digest, sizeof digest, sig)) != 0)
		return fail(e, rc, "signature", "signing failed: %s", an_strerror(rc));
	memcpy(text, SIG_PREFIX, sizeof SIG_PREFIX - 1);
	sodium_bin2hex(text + sizeof SIG_PREFIX - 1, 129, sig, sizeof sig);
	return set_new(rec, "signature", json_string(text));
}
