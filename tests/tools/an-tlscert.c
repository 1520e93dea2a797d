/*
 * an-tlscert: the libp2p TLS certificate code (crypto/tls_cert.h) from the
 * shell, for tests/interop/tls.bats's vectors against js-libp2p.
 *
 *   an-tlscert make
 *       a certificate for a fresh Ed25519 host key: one JSON line
 *       {"der": HEX, "peerId": ID}
 *   an-tlscert verify HEX [PEERID]
 *       check a certificate (DER as hex) now, against PEERID if given:
 *       {"peerId": ID} and exit 0, or {"error": CODE, "reason": ...} and 1
 *
 * Exit 2 on bad usage, 4 when a certificate cannot be made.
 */
#include "crypto/key.h"
#include "crypto/peerid.h"
#include "crypto/tls_cert.h"
#include "util/error.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char USAGE[] = "Usage: an-tlscert make\n       an-tlscert verify HEX [PEERID]\n";

static int make(void)
{
	struct an_privkey *k = NULL;
	struct an_tls_cert *c = NULL;
	struct an_pubkey pk;
	struct an_peerid id;
	char idt[AN_PEERID_TEXT_MAX];
	int rc = an_privkey_generate(&k);
	if (rc == 0)
		rc = an_tls_cert_new(k, time(NULL), &c);
	if (rc < 0) {
		fprintf(stderr, "an-tlscert: unable to make a certificate: %s\n", an_strerror(rc));
		an_privkey_free(k);
		return 4;
	}
	size_t len;
	const uint8_t *der = an_tls_cert_der(c, &len);
	char *hex = malloc(2 * len + 1);
	if (!hex) {
		an_tls_cert_free(c);
		an_privkey_free(k);
		return 4;
	}
	sodium_bin2hex(hex, 2 * len + 1, der, len);
	an_privkey_public(k, &pk);
	an_peerid_from_pubkey(&pk, &id);
	an_peerid_format(&id, idt, sizeof(idt));
	printf("{\"der\":\"%s\",\"peerId\":\"%s\"}\n", hex, idt);
	free(hex);
	an_tls_cert_free(c);
	an_privkey_free(k);
	return 0;
}

static int verify(const char *hex, const char *want)
{
	static uint8_t der[AN_TLS_CERT_DER_MAX];
	size_t len = 0;
	struct an_peerid expected, id;
	char why[AN_TLS_REASON_MAX], idt[AN_PEERID_TEXT_MAX];
	if (sodium_hex2bin(der, sizeof(der), hex, strlen(hex), NULL, &len, NULL) < 0) {
		fprintf(stderr, "an-tlscert: not a certificate in hex\n");
		return 2;
	}
	if (want && an_peerid_parse(want, &expected) < 0) {
		fprintf(stderr, "an-tlscert: invalid peer ID '%s'\n", want);
		return 2;
	}
	int rc = an_tls_cert_verify(der, len, time(NULL), want ? &expected : NULL, NULL, &id, why,
				    sizeof(why));
	if (rc < 0) {
		printf("{\"error\":\"%s\",\"reason\":\"%s\"}\n", an_strerror(rc), why);
		return 1;
	}
	an_peerid_format(&id, idt, sizeof(idt));
	printf("{\"peerId\":\"%s\"}\n", idt);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;
	if (sodium_init() < 0)
		return 4;
	if (argc == 2 && strcmp(argv[1], "make") == 0)
		rc = make();
	else if ((argc == 3 || argc == 4) && strcmp(argv[1], "verify") == 0)
		rc = verify(argv[2], argc == 4 ? argv[3] : NULL);
	else
		fputs(USAGE, stderr);
	if (fflush(stdout) != 0 || ferror(stdout))
		return 4;
	return rc;
}
