#include "record/jcs.h"

#include "util/error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int an_jcs_compare_keys(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	size_t i = 0;
	while (i < n && a[i] == b[i])
		i++;
	if (i == n)
		return alen < blen ? -1 : alen > blen ? 1 : 0;
	/*
	 * Both strings share everything before i, so they sit on the same
	 * character boundary: either both bytes are lead bytes or both are
	 * continuation bytes of characters with the same lead byte.  Byte
	 * order is code point order, which is UTF-16 order except that
	 * supplementary characters (lead F0..F4, surrogates D800..DBFF in
	 * UTF-16) sort before U+E000..U+FFFF (lead EE, EF).
	 */
	unsigned ca = (unsigned char)a[i], cb = (unsigned char)b[i];
	if ((ca == 0xEE || ca == 0xEF) && cb >= 0xF0)
		return 1;
	if ((cb == 0xEE || cb == 0xEF) && ca >= 0xF0)
		return -1;
	return ca < cb ? -1 : 1;
}

int an_jcs_format_double(double d, char out[AN_JCS_NUMBER_MAX])
{
	if (!isfinite(d))
		return AN_EMALFORMED;
	if (d == 0) { /* both +0 and -0 */
		strcpy(out, "0");
		return 0;
	}
	char *p = out;
	if (d < 0) {
		*p++ = '-';
		d = -d;
	}
	/*
	 * Shortest digits that read back as d: %.Ne is correctly rounded, so
	 * the first precision that round-trips gives the closest shortest
	 * digit string, which is what Number::toString asks for.
	 */
	char tmp[40];
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	char digits[20];
	int k = 0;
	const char *s = tmp;
	for (; *s && *s != 'e'; s++)
		if (*s >= '0' && *s <= '9')
			digits[k++] = *s;
	while (k > 1 && digits[k - 1] == '0')
		k--;
	int e = atoi(s + 1);
	int n = e + 1; /* d = 0.digits * 10^n */

	if (k <= n && n <= 21) {
		memcpy(p, digits, (size_t)k);
		p += k;
		for (int i = 0; i < n - k; i++)
			*p++ = '0';
	} else if (0 < n && n <= 21) {
		memcpy(p, digits, (size_t)n);
		p += n;
		*p++ = '.';
		memcpy(p, digits + n, (size_t)(k - n));
		p += k - n;
	} else if (-6 < n && n <= 0) {
		*p++ = '0';
		*p++ = '.';
		for (int i = 0; i < -n; i++)
			*p++ = '0';
		memcpy(p, digits, (size_t)k);
		p += k;
	} else {
		*p++ = digits[0];
		if (k > 1) {
			*p++ = '.';
			memcpy(p, digits + 1, (size_t)(k - 1));
			p += k - 1;
		}
		p += sprintf(p, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
	}
	*p = 0;
	return 0;
}

static int put_string(const char *s, size_t len, struct an_buf *out)
{
	int rc = an_buf_putc(out, '"');
	size_t run = 0; /* start of the pending literal run */
	for (size_t i = 0; rc == 0 && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		rc = an_buf_append(out, s + run, i - run);
		run = i + 1;
		char esc[8];
		switch (c) {
		case '"': strcpy(esc, "\\\""); break;
		case '\\': strcpy(esc, "\\\\"); break;
		case '\b': strcpy(esc, "\\b"); break;
		case '\f': strcpy(esc, "\\f"); break;
		case '\n': strcpy(esc, "\\n"); break;
		case '\r': strcpy(esc, "\\r"); break;
		case '\t': strcpy(esc, "\\t"); break;
		default: snprintf(esc, sizeof esc, "\\u%04x", c); break;
		}
		if (rc == 0)
			rc = an_buf_append(out, esc, strlen(esc));
	}
	if (rc == 0)
		rc = an_buf_append(out, s + run, len - run);
	if (rc == 0)
		rc = an_buf_putc(out, '"');
	return rc;
}

struct member {
	const char *key;
	size_t len;
	json_t *value;
};

/*
 * Insertion sort: objects are small (the cap on a record bounds them) and
 * the records we read were mostly written canonically, i.e. already sorted,
 * where this is one comparison per member and qsort is several.
 */
static void members_sort(struct member *m, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct member x = m[i];
		size_t j = i;
		while (j > 0 && an_jcs_compare_keys(m[j - 1].key, m[j - 1].len, x.key, x.len) > 0) {
			m[j] = m[j - 1];
			j--;
		}
		m[j] = x;
	}
}

static int put_value(const json_t *v, struct an_buf *out);

static int put_object(const json_t *obj, const char *skip, struct an_buf *out)
{
	struct member small[32], *m = small;
	size_t n = json_object_size(obj), count = 0, skiplen = skip ? strlen(skip) : 0;
	int rc = 0;
	if (n > sizeof small / sizeof small[0]) {
		m = calloc(n, sizeof *m);
		if (!m)
			return -ENOMEM;
	}
	for (void *it = json_object_iter((json_t *)obj); it && count < n;
	     it = json_object_iter_next((json_t *)obj, it)) {
		const char *key = json_object_iter_key(it);
		size_t len = json_object_iter_key_len(it);
		if (skip && skiplen == len && memcmp(skip, key, len) == 0)
			continue;
		m[count].key = key;
		m[count].len = len;
		m[count].value = json_object_iter_value(it);
		count++;
	}
	members_sort(m, count);
	rc = an_buf_putc(out, '{');
	for (size_t i = 0; rc == 0 && i < count; i++) {
		if (i)
			rc = an_buf_putc(out, ',');
		if (rc == 0)
			rc = put_string(m[i].key, m[i].len, out);
		if (rc == 0)
			rc = an_buf_putc(out, ':');
		if (rc == 0)
			rc = put_value(m[i].value, out);
	}
	if (rc == 0)
		rc = an_buf_putc(out, '}');
	if (m != small)
		free(m);
	return rc;
}

static int put_value(const json_t *v, struct an_buf *out)
{
	char num[AN_JCS_NUMBER_MAX];
	int rc = 0;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return put_object(v, NULL, out);
	case JSON_ARRAY:
		rc = an_buf_putc(out, '[');
		for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
			if (i)
				rc = an_buf_putc(out, ',');
			if (rc == 0)
				rc = put_value(json_array_get(v, i), out);
		}
		return rc ? rc : an_buf_putc(out, ']');
	case JSON_STRING:
		return put_string(json_string_value(v), json_string_length(v), out);
	case JSON_INTEGER: {
		json_int_t i = json_integer_value(v);
		if (i > AN_JCS_INT_MAX || i < -AN_JCS_INT_MAX)
			return AN_ETOOBIG;
		/* By hand: snprintf was a visible share of a record's serialization. */
		char *p = num + sizeof num;
		unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
		do
			*--p = (char)('0' + u % 10);
		while ((u /= 10) != 0);
		if (i < 0)
			*--p = '-';
		return an_buf_append(out, p, (size_t)(num + sizeof num - p));
	}
	case JSON_REAL:
		rc = an_jcs_format_double(json_real_value(v), num);
		return rc ? rc : an_buf_append(out, num, strlen(num));
	case JSON_TRUE:
		return an_buf_append(out, "true", 4);
	case JSON_FALSE:
		return an_buf_append(out, "false", 5);
	case JSON_NULL:
		return an_buf_append(out, "null", 4);
	}
	return AN_EMALFORMED;
}

int an_jcs_serialize(const json_t *v, struct an_buf *out)
{
	if (!v)
		return AN_EMALFORMED;
	return put_value(v, out);
}

int an_jcs_serialize_without(const json_t *obj, const char *skip, struct an_buf *out)
{
	if (!json_is_object(obj))
		return AN_EMALFORMED;
	return put_object(obj, skip, out);
}
