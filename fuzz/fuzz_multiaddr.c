/*
 * libFuzzer harness: the input as a binary multiaddr (decode -> text ->
 * parse must give back the same bytes) and as text (parse -> format ->
 * parse must be stable).  Exercises the helpers on whatever decodes.
 */
#include "encoding/multiaddr.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char text[AN_MULTIADDR_TEXT_MAX];
static char text2[AN_MULTIADDR_TEXT_MAX];

static void exercise(const struct an_multiaddr *ma)
{
	struct an_multiaddr rest;
	struct an_peerid id;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct an_ma_iter it;
	struct an_ma_component c;
	size_t total = 0;
	int rc;

	an_ma_iter_init(&it, ma);
	while ((rc = an_ma_next(&it, &c)) == 1)
		total += c.raw_len;
	if (rc != 0 || total != ma->len)
		abort();
	if (an_multiaddr_split_p2p(ma, &rest, &id) == 0) {
		if (an_multiaddr_append_p2p(&rest, &id) != 0 || !an_multiaddr_equal(&rest, ma))
			abort();
	}
	(void)an_multiaddr_to_sockaddr(ma, &ss, &sslen);
	(void)an_multiaddr_scope(ma);
	(void)an_multiaddr_is_circuit(ma);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct an_multiaddr ma, back;
	char *s;

	if (an_multiaddr_from_bytes(data, size, &ma) == 0) {
		if (an_multiaddr_format(&ma, text, sizeof text) != 0)
			abort();
		if (an_multiaddr_parse(text, &back) != 0 || !an_multiaddr_equal(&ma, &back))
			abort();
		exercise(&ma);
	}

	if (size >= AN_MULTIADDR_TEXT_MAX + 8)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	if (an_multiaddr_parse(s, &ma) == 0) {
		if (an_multiaddr_format(&ma, text, sizeof text) != 0)
			abort();
		if (an_multiaddr_parse(text, &back) != 0 || !an_multiaddr_equal(&ma, &back))
			abort();
		if (an_multiaddr_format(&back, text2, sizeof text2) != 0 || strcmp(text, text2) != 0)
			abort();
		exercise(&ma);
	}
	free(s);
	return 0;
}
