/*
 * libFuzzer harness for multistream-select: the first byte picks the machine
 * (even: listener, odd: dialer) and the input chunking (the next byte is the
 * largest chunk handed over at once); the rest is what the peer sends.
 * Checks the contract: used never exceeds the bytes offered, a selected
 * protocol is one we offered or accepted, and the output stays bounded.
 */
#include "transport/mss.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const protos[] = { "/noise", "/yamux/1.0.0", "/ipfs/ping/1.0.0" };

static bool accept_an(void *ctx, const char *proto)
{
	(void)ctx;
	return strncmp(proto, "/an/", 4) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct an_mss m;
	struct an_buf out;
	size_t pos = 0, have, chunk;
	int rc = 0;

	if (size < 2)
		return 0;
	bool dialer = data[0] & 1;
	chunk = data[1] ? data[1] : 1;
	data += 2;
	size -= 2;
	an_buf_init(&out, 64 * 1024);
	if (dialer)
		an_mss_dialer_init(&m, protos, 3);
	else
		an_mss_listener_init(&m, protos, 3, accept_an, NULL);
	if (an_mss_start(&m, &out) < 0)
		abort();
	/* The caller's view: bytes arrive chunk by chunk, unconsumed ones stay. */
	have = 0;
	while (rc == 0 && have < size) {
		size_t used = 0;
		have = have + chunk < size ? have + chunk : size;
		rc = an_mss_recv(&m, data + pos, have - pos, &used, &out);
		if (used > have - pos)
			abort();
		pos += used;
		if (out.len > 32 * 1024)
			an_buf_reset(&out);
	}
	if (rc == 1) {
		const char *sel = an_mss_selected(&m);
		if (!sel || sel[0] != '/')
			abort();
		if (dialer) {
			bool ours = false;
			for (size_t i = 0; i < 3; i++)
				ours |= strcmp(sel, protos[i]) == 0;
			if (!ours)
				abort();
		}
	} else if (rc < 0 && rc != AN_EPROTO && rc != AN_ENOPROTO) {
		abort();
	}
	an_buf_free(&out);
	return 0;
}
