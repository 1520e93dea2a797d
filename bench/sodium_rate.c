/*
 * sodium_rate: libsodium's raw Ed25519 sign and verify rate on this machine,
 * the yardstick bench/records.sh holds an-sign and an-verify against.
 * Signs and verifies 32-byte messages (what a record signature covers: a
 * SHA-256 digest).  Prints one JSON line: {"sign_per_s":..,"verify_per_s":..}.
 *
 *   sodium_rate [N]   (default 20000 operations each)
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20000;
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	unsigned char msg[32], sig[64];
	if (n <= 0 || n > 100000000 || sodium_init() < 0)
		return 2;
	crypto_sign_keypair(pk, sk);
	randombytes_buf(msg, sizeof msg);

	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		msg[0] = (unsigned char)i;
		crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
	}
	double t1 = now_s();
	long bad = 0;
	for (long i = 0; i < n; i++)
		bad += crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0;
	double t2 = now_s();
	if (bad)
		return 1;
	printf("{\"sign_per_s\":%.0f,\"verify_per_s\":%.0f}\n", n / (t1 - t0), n / (t2 - t1));
	return 0;
}
