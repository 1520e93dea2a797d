/*
 * libFuzzer harness for the libp2p TLS certificate checks (crypto/tls_cert.h):
 * arbitrary bytes as the extension's SignedKey (our strict DER parser): a
 * parsed one must re-encode to exactly the same bytes; and as a whole
 * certificate (GnuTLS's X.509 parser, then our extension walk, SignedKey,
 * PublicKey and signature checks), which must refuse cleanly or name a peer.
 */
#include "crypto/tls_cert.h"
#include "util/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *pk, *sig;
	size_t pl, sl, n;
	static uint8_t out[AN_TLS_SIGNED_KEY_MAX + 16];
	if (an_tls_signed_key_parse(data, size, &pk, &pl, &sig, &sl) == 0) {
		if (pk < data || pk + pl > data + size || sig < data || sig + sl > data + size)
			abort();
		if (an_tls_signed_key_encode(pk, pl, sig, sl, out, sizeof(out), &n) < 0 || n != size ||
		    memcmp(out, data, size) != 0)
			abort(); /* strict DER: one encoding per value */
	}
	struct an_peerid id;
	char why[AN_TLS_REASON_MAX];
	int rc = an_tls_cert_verify(data, size, 1796688000, NULL, NULL, &id, why, sizeof(why));
	if (rc < 0 && why[0] == '\0' && rc != -ENOMEM)
		abort(); /* every refusal says why */
	return 0;
}
