/*
 * Unit tests for libcommon/crypto/key: RFC 8032 Ed25519 vectors, the libp2p
 * PrivateKey / PublicKey protobufs (peer-ids spec test vectors), every decode
 * error, and signature checks of the four key types.
 *
 * The RSA, ECDSA and secp256k1 signatures below were made by another
 * implementation, node 20's crypto module (OpenSSL), with the private keys of
 * the peer-ids spec test vectors, over the message "alternet key test vector":
 *   crypto.sign('sha256', msg, key)   (RSA: PKCS#1 v1.5; EC: DER (r, s))
 */
#include "check.h"
#include "fixtures.h"

#include "crypto/key.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char test_msg[] = "alternet key test vector";

static const char rsa_sig[] =
	"83cef5be7eb68b17e7c28f3c98c352aced82ab1c8877eb552c86b0ec10c5739fd24669fc14ccfeaf8ae80144bb8cfcd4"
	"0c51e54936a9b2c4ecf05af807fd6bf2a97db7a589a06d16d604053d4cdaaa380f00b0513963cf4aec58a7622b5e7a72"
	"83a24ccad811b8c98ade1b636e42877789f7760afc29f19e41b74a87ce27bfb7d2507a66852b3326b91c854fd23cd2ab"
	"d327c176dff3c64b76fb846205839b98f052e7fc360e0c550c78111d1629f4887235663db3ce2e5d29be2ba77c3696ff"
	"77fb52738b0e50529aaf96c718ca78ba51e01273d2b4c7e5f282e01d8fad72f5e9592670ceddef3888ebb7f8d87025d9"
	"94ab58f997b4c9ae176b14cf977236ef2dcf04047302762a041c10176d11a400ece79c1d27151d3b975b4517792c84dc"
	"74a1d89c4c000250559e0e52b3de282091a442ee17d4c6f2c5eec8211eb671e781b4b3bf868cda40959a98d1d750f7d9"
	"c79476496b4017cf7d4153e690aa56e02178f6f840098d958a154d48988685b3119955bcafaa069266c6a915c9794598"
	"a60a32d864378d3673d24520beddce929d88bdad31803eeb2dbfaa67f565147bdbf05b0106857066f4801548b6e37301"
	"02a67258d02bd77e9ed3341005bb0e3a24a79d250869e9d41e9aeaf252c7f336deff9cbd89dd1cc620b868bc90c63234"
	"75b091cfc0d51af0ad36ebe0210f1170ab14737f990c143589a08b48f4a8d188";
static const char ecdsa_sig[] =
	"304502203e119c519c60b69ea9b028c781a70ff10f3fcfb80559bf2d303f677cbc9ec711022100e81661fc4526b8abf7"
	"778c60c9940c74b04eaf785023a4b3cdcaf1167a663d30";
static const char secp256k1_sig[] =
	"3046022100cb3ea7f9bd8321cf68e972b2d22bc64aac221f6e371cab534863f3ea77832ace022100b262ba1a53d39700"
	"5014a42680f3c6f4ee0c18e1b73b4be28d8c5ca28d3737a4";

/* RFC 8032 section 7.1, TEST 1-3: secret key (seed), public key, message, signature. */
static const struct {
	const char *seed, *pub, *msg, *sig;
} rfc8032[] = {
	{ "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
	  "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b" },
	{ "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	  "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
	  "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00" },
	{ "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	  "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
	  "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a" },
};

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	int n = check_unhex(hex, out, cap);
	if (n < 0) {
		printf("# bad test vector %.20s...\n", hex);
		exit(1);
	}
	return (size_t)n;
}

/* A PrivateKey protobuf with Data = seed || pub (the libsodium secret key). */
static size_t privkey_pb(const uint8_t *data, size_t datalen, uint8_t *out)
{
	out[0] = 0x08;
	out[1] = 0x01;
	out[2] = 0x12;
	out[3] = (uint8_t)datalen;
	memcpy(out + 4, data, datalen);
	return 4 + datalen;
}

static void test_rfc8032_vectors(void)
{
	for (size_t i = 0; i < sizeof rfc8032 / sizeof rfc8032[0]; i++) {
		uint8_t data[64], pb[68], msg[8], sig[64], want[64];
		struct an_privkey *k = NULL;
		struct an_pubkey pub;
		size_t mlen;

		unhex(rfc8032[i].seed, data, 32);
		unhex(rfc8032[i].pub, data + 32, 32);
		mlen = unhex(rfc8032[i].msg, msg, sizeof msg);
		unhex(rfc8032[i].sig, want, sizeof want);
		CHECK_EQ_INT(an_privkey_decode(pb, privkey_pb(data, 64, pb), &k), 0);
		if (!k)
			continue;
		CHECK_EQ_INT(an_privkey_sign(k, msg, mlen, sig), 0);
		CHECK_EQ_MEM(sig, want, 64);
		an_privkey_public(k, &pub);
		CHECK_EQ_INT(pub.type, AN_KEY_ED25519);
		CHECK_EQ_INT(pub.len, 32);
		CHECK_EQ_MEM(pub.data, data + 32, 32);
		CHECK_EQ_INT(an_pubkey_verify(&pub, msg, mlen, want, 64), 0);
		an_privkey_free(k);
	}
}

static void test_ed25519_verify_rejects_changes(void)
{
	uint8_t data[64], pb[68], msg[2], sig[64];
	struct an_privkey *k = NULL;
	struct an_pubkey pub;

	unhex(rfc8032[2].seed, data, 32);
	unhex(rfc8032[2].pub, data + 32, 32);
	unhex(rfc8032[2].msg, msg, sizeof msg);
	unhex(rfc8032[2].sig, sig, sizeof sig);
	CHECK_EQ_INT(an_privkey_decode(pb, privkey_pb(data, 64, pb), &k), 0);
	if (!k)
		return;
	an_privkey_public(k, &pub);
	msg[1] ^= 1;
	CHECK_EQ_INT(an_pubkey_verify(&pub, msg, 2, sig, 64), AN_EBADSIG);
	msg[1] ^= 1;
	sig[10] ^= 0x80;
	CHECK_EQ_INT(an_pubkey_verify(&pub, msg, 2, sig, 64), AN_EBADSIG);
	sig[10] ^= 0x80;
	CHECK_EQ_INT(an_pubkey_verify(&pub, msg, 2, sig, 63), AN_EBADSIG);
	CHECK_EQ_INT(an_pubkey_verify(&pub, msg, 2, sig, 64), 0);
	an_privkey_free(k);
}

static void test_privkey_spec_vector_roundtrip(void)
{
	uint8_t pb[68], pubpb[36], *enc = NULL;
	size_t len = unhex(ed25519_priv_pb, pb, sizeof pb), enclen = 0;
	struct an_privkey *k = NULL;
	struct an_pubkey pub;
	struct an_buf b;

	unhex(ed25519_pub_pb, pubpb, sizeof pubpb);
	CHECK_EQ_INT(an_privkey_decode(pb, len, &k), 0);
	if (!k)
		return;
	CHECK_EQ_INT(an_privkey_encode(k, &enc, &enclen), 0);
	CHECK_EQ_INT(enclen, len);
	if (enc)
		CHECK_EQ_MEM(enc, pb, len);
	an_privkey_public(k, &pub);
	an_buf_init(&b, AN_PUBKEY_PB_MAX);
	CHECK_EQ_INT(an_pubkey_encode(&pub, &b), 0);
	CHECK_EQ_INT(b.len, sizeof pubpb);
	CHECK_EQ_MEM(b.data, pubpb, sizeof pubpb);
	an_buf_free(&b);
	sodium_free(enc);
	an_privkey_free(k);
}

static void test_privkey_generate_roundtrip(void)
{
	struct an_privkey *k = NULL, *k2 = NULL;
	struct an_pubkey a, b;
	uint8_t *enc = NULL, sig[64];
	size_t len = 0;

	CHECK_EQ_INT(an_privkey_generate(&k), 0);
	if (!k)
		return;
	CHECK_EQ_INT(an_privkey_encode(k, &enc, &len), 0);
	CHECK_EQ_INT(len, 68);
	CHECK_EQ_INT(an_privkey_decode(enc, len, &k2), 0);
	if (k2) {
		an_privkey_public(k, &a);
		an_privkey_public(k2, &b);
		CHECK(an_pubkey_equal(&a, &b));
		CHECK_EQ_INT(an_privkey_sign(k2, (const uint8_t *)"x", 1, sig), 0);
		CHECK_EQ_INT(an_pubkey_verify(&a, (const uint8_t *)"x", 1, sig, 64), 0);
	}
	sodium_free(enc);
	an_privkey_free(k);
	an_privkey_free(k2);
}

static void test_privkey_legacy_96(void)
{
	uint8_t pb[68], legacy[100], data[96];
	size_t len = unhex(ed25519_priv_pb, pb, sizeof pb);
	struct an_privkey *k = NULL;
	struct an_pubkey pub;

	memcpy(data, pb + 4, 64);
	memcpy(data + 64, pb + 36, 32);
	CHECK_EQ_INT(len, 68);
	CHECK_EQ_INT(an_privkey_decode(legacy, privkey_pb(data, 96, legacy), &k), 0);
	if (k) {
		an_privkey_public(k, &pub);
		CHECK_EQ_MEM(pub.data, pb + 36, 32);
		an_privkey_free(k);
	}
	/* The two public halves must agree. */
	data[95] ^= 1;
	k = NULL;
	CHECK_EQ_INT(an_privkey_decode(legacy, privkey_pb(data, 96, legacy), &k), AN_EMALFORMED);
	CHECK(k == NULL);
}

static void test_privkey_decode_errors(void)
{
	uint8_t pb[80], good[68];
	size_t len = unhex(ed25519_priv_pb, good, sizeof good);
	struct an_privkey *k = NULL;

	/* Public half not derived from the seed. */
	memcpy(pb, good, len);
	pb[67] ^= 1;
	CHECK_EQ_INT(an_privkey_decode(pb, len, &k), AN_EMALFORMED);
	/* Truncated: every proper prefix fails, none succeeds. */
	for (size_t n = 0; n < len; n++)
		CHECK(an_privkey_decode(good, n, &k) < 0);
	CHECK_EQ_INT(an_privkey_decode(good, 40, &k), AN_ETRUNCATED);
	CHECK_EQ_INT(an_privkey_decode(good, 0, &k), AN_EMALFORMED);
	/* Trailing field. */
	memcpy(pb, good, len);
	pb[len] = 0x18;
	pb[len + 1] = 0x01;
	CHECK_EQ_INT(an_privkey_decode(pb, len + 2, &k), AN_EMALFORMED);
	/* Duplicate type field. */
	pb[0] = 0x08;
	pb[1] = 0x01;
	memcpy(pb + 2, good, len);
	CHECK_EQ_INT(an_privkey_decode(pb, len + 2, &k), AN_EMALFORMED);
	/* Wrong wire type for Type. */
	memcpy(pb, good, len);
	pb[0] = 0x0a;
	CHECK(an_privkey_decode(pb, len, &k) < 0);
	/* Data missing. */
	CHECK_EQ_INT(an_privkey_decode(good, 2, &k), AN_EMALFORMED);
	/* Type missing. */
	CHECK_EQ_INT(an_privkey_decode(good + 2, len - 2, &k), AN_EMALFORMED);
	/* Other key types are not private keys we hold. */
	memcpy(pb, good, len);
	pb[1] = AN_KEY_SECP256K1;
	CHECK_EQ_INT(an_privkey_decode(pb, len, &k), AN_EKEYTYPE);
	pb[1] = AN_KEY_RSA;
	CHECK_EQ_INT(an_privkey_decode(pb, len, &k), AN_EKEYTYPE);
	/* Data of a length other than 64 or 96. */
	memcpy(pb, good, 36);
	pb[3] = 32;
	CHECK_EQ_INT(an_privkey_decode(pb, 36, &k), AN_EMALFORMED);
	CHECK(k == NULL);
}

static char tmpdir[] = "/tmp/an-test-key.XXXXXX";

static void test_privkey_save_load(void)
{
	char path[64];
	struct an_privkey *k = NULL, *k2 = NULL;
	struct an_pubkey a, b;
	struct stat st;

	snprintf(path, sizeof path, "%s/id.key", tmpdir);
	CHECK_EQ_INT(an_privkey_generate(&k), 0);
	if (!k)
		return;
	CHECK_EQ_INT(an_privkey_save(k, path, false), 0);
	CHECK_EQ_INT(stat(path, &st), 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	CHECK_EQ_INT(st.st_size, 68);
	CHECK_EQ_INT(an_privkey_save(k, path, false), -EEXIST);
	CHECK_EQ_INT(an_privkey_save(k, path, true), 0);
	CHECK_EQ_INT(an_privkey_load(path, &k2), 0);
	if (k2) {
		an_privkey_public(k, &a);
		an_privkey_public(k2, &b);
		CHECK(an_pubkey_equal(&a, &b));
	}
	CHECK_EQ_INT(chmod(path, 0644), 0);
	CHECK_EQ_INT(an_privkey_load(path, &k2), AN_EKEYPERM);
	unlink(path);
	CHECK_EQ_INT(an_privkey_load(path, &k2), -ENOENT);
	an_privkey_free(k);
	an_privkey_free(k2);
}

static void test_privkey_load_oversized(void)
{
	char path[64];
	struct an_privkey *k = NULL;
	static uint8_t big[AN_PRIVKEY_FILE_MAX + 1];
	int fd;

	snprintf(path, sizeof path, "%s/big.key", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ_INT(write(fd, big, sizeof big), sizeof big);
	close(fd);
	CHECK_EQ_INT(an_privkey_load(path, &k), AN_ETOOBIG);
	CHECK(k == NULL);
	unlink(path);
}

static void test_pubkey_decode_ed25519(void)
{
	uint8_t pb[36];
	size_t len = unhex(ed25519_pub_pb, pb, sizeof pb);
	struct an_pubkey k;

	CHECK_EQ_INT(an_pubkey_decode(pb, len, &k), 0);
	CHECK_EQ_INT(k.type, AN_KEY_ED25519);
	CHECK_EQ_INT(k.len, 32);
	CHECK_EQ_MEM(k.data, pb + 4, 32);
	CHECK_EQ_STR(an_key_type_name(k.type), "ed25519");
}

/* Decode, then encode again: the spec vectors are deterministic encodings. */
static void pubkey_roundtrip(const char *hex, enum an_key_type type, size_t datalen)
{
	uint8_t pb[AN_PUBKEY_PB_MAX];
	size_t len = unhex(hex, pb, sizeof pb);
	struct an_pubkey k;
	struct an_buf b;

	CHECK_EQ_INT(an_pubkey_decode(pb, len, &k), 0);
	CHECK_EQ_INT(k.type, type);
	CHECK_EQ_INT(k.len, datalen);
	an_buf_init(&b, AN_PUBKEY_PB_MAX);
	CHECK_EQ_INT(an_pubkey_encode(&k, &b), 0);
	CHECK_EQ_INT(b.len, len);
	if (b.len == len)
		CHECK_EQ_MEM(b.data, pb, len);
	an_buf_free(&b);
}

static void test_pubkey_roundtrip_all_types(void)
{
	pubkey_roundtrip(ed25519_pub_pb, AN_KEY_ED25519, 32);
	pubkey_roundtrip(rsa_pub_pb, AN_KEY_RSA, 550);
	pubkey_roundtrip(secp256k1_pub_pb, AN_KEY_SECP256K1, 33);
	pubkey_roundtrip(ecdsa_pub_pb, AN_KEY_ECDSA, 91);
}

static void test_pubkey_decode_errors(void)
{
	uint8_t good[36], pb[AN_PUBKEY_PB_MAX + 16];
	size_t len = unhex(ed25519_pub_pb, good, sizeof good);
	struct an_pubkey k;

	for (size_t n = 0; n < len; n++)
		CHECK(an_pubkey_decode(good, n, &k) < 0);
	CHECK_EQ_INT(an_pubkey_decode(good, 20, &k), AN_ETRUNCATED);
	/* Unknown key type. */
	memcpy(pb, good, len);
	pb[1] = 4;
	CHECK_EQ_INT(an_pubkey_decode(pb, len, &k), AN_EKEYTYPE);
	/* Ed25519 key of the wrong size. */
	memcpy(pb, good, len);
	pb[3] = 31;
	CHECK_EQ_INT(an_pubkey_decode(pb, len - 1, &k), AN_EMALFORMED);
	/* Non-deterministic: Data before Type. */
	memcpy(pb, good + 2, len - 2);
	memcpy(pb + len - 2, good, 2);
	CHECK_EQ_INT(an_pubkey_decode(pb, len, &k), AN_EMALFORMED);
	/* Non-deterministic: a non-minimal varint for the type (0x81 0x00). */
	pb[0] = 0x08;
	pb[1] = 0x81;
	pb[2] = 0x00;
	memcpy(pb + 3, good + 2, len - 2);
	CHECK(an_pubkey_decode(pb, len + 1, &k) < 0);
	/* An unknown extra field. */
	memcpy(pb, good, len);
	pb[len] = 0x18;
	pb[len + 1] = 0x00;
	CHECK_EQ_INT(an_pubkey_decode(pb, len + 2, &k), AN_EMALFORMED);
	/* Data longer than AN_PUBKEY_DATA_MAX (RSA type, 1101 bytes). */
	pb[0] = 0x08;
	pb[1] = 0x00;
	pb[2] = 0x12;
	pb[3] = 0x80 | ((AN_PUBKEY_DATA_MAX + 1) & 0x7f);
	pb[4] = (AN_PUBKEY_DATA_MAX + 1) >> 7;
	memset(pb + 5, 0x30, AN_PUBKEY_DATA_MAX + 1);
	CHECK_EQ_INT(an_pubkey_decode(pb, 5 + AN_PUBKEY_DATA_MAX + 1, &k), AN_ETOOBIG);
	/* secp256k1 that is not a compressed point. */
	pb[1] = 0x02;
	pb[3] = 33;
	pb[4] = 0x04;
	CHECK_EQ_INT(an_pubkey_decode(pb, 4 + 33, &k), AN_EMALFORMED);
}

static void verify_vector(const char *pubhex, const char *sighex, int expect_ok)
{
	uint8_t pb[AN_PUBKEY_PB_MAX], sig[600], msg[sizeof test_msg];
	size_t len = unhex(pubhex, pb, sizeof pb), siglen = unhex(sighex, sig, sizeof sig);
	struct an_pubkey k;
	size_t mlen = sizeof test_msg - 1;

	memcpy(msg, test_msg, mlen);
	CHECK_EQ_INT(an_pubkey_decode(pb, len, &k), 0);
	CHECK_EQ_INT(an_pubkey_verify(&k, msg, mlen, sig, siglen), expect_ok);
	/* A changed message is refused. */
	msg[0] ^= 1;
	CHECK_EQ_INT(an_pubkey_verify(&k, msg, mlen, sig, siglen), expect_ok == 0 ? AN_EBADSIG : expect_ok);
	msg[0] ^= 1;
	/* A changed signature is refused. */
	sig[siglen - 3] ^= 0x04;
	CHECK_EQ_INT(an_pubkey_verify(&k, msg, mlen, sig, siglen), expect_ok == 0 ? AN_EBADSIG : expect_ok);
}

static void test_verify_rsa(void)
{
	verify_vector(rsa_pub_pb, rsa_sig, 0);
}

static void test_verify_ecdsa(void)
{
	verify_vector(ecdsa_pub_pb, ecdsa_sig, 0);
}

static void test_verify_secp256k1(void)
{
	verify_vector(secp256k1_pub_pb, secp256k1_sig, 0);
}

static void test_verify_wrong_key(void)
{
	uint8_t pb[AN_PUBKEY_PB_MAX], sig[100];
	size_t len = unhex(secp256k1_pub_pb, pb, sizeof pb), siglen = unhex(ecdsa_sig, sig, sizeof sig);
	struct an_pubkey k;

	/* The ECDSA signature does not verify under the secp256k1 key. */
	CHECK_EQ_INT(an_pubkey_decode(pb, len, &k), 0);
	CHECK_EQ_INT(an_pubkey_verify(&k, (const uint8_t *)test_msg, sizeof test_msg - 1, sig, siglen),
		     AN_EBADSIG);
	/* An ECDSA "key" that is not a P-256 SPKI cannot be used. */
	len = unhex(ecdsa_pub_pb, pb, sizeof pb);
	CHECK_EQ_INT(an_pubkey_decode(pb, len, &k), 0);
	k.data[20] ^= 1; /* the curve OID */
	CHECK_EQ_INT(an_pubkey_verify(&k, (const uint8_t *)test_msg, sizeof test_msg - 1, sig, siglen),
		     AN_EKEYTYPE);
}

static void test_pubkey_equal(void)
{
	uint8_t pb[36];
	size_t len = unhex(ed25519_pub_pb, pb, sizeof pb);
	struct an_pubkey a, b;

	CHECK_EQ_INT(an_pubkey_decode(pb, len, &a), 0);
	CHECK_EQ_INT(an_pubkey_decode(pb, len, &b), 0);
	CHECK(an_pubkey_equal(&a, &b));
	b.data[31] ^= 1;
	CHECK(!an_pubkey_equal(&a, &b));
	b.data[31] ^= 1;
	b.type = AN_KEY_SECP256K1;
	CHECK(!an_pubkey_equal(&a, &b));
}

static void test_key_type_names(void)
{
	CHECK_EQ_STR(an_key_type_name(AN_KEY_RSA), "rsa");
	CHECK_EQ_STR(an_key_type_name(AN_KEY_ED25519), "ed25519");
	CHECK_EQ_STR(an_key_type_name(AN_KEY_SECP256K1), "secp256k1");
	CHECK_EQ_STR(an_key_type_name(AN_KEY_ECDSA), "ecdsa");
}

int main(void)
{
	if (sodium_init() < 0 || !mkdtemp(tmpdir))
		return 1;
	RUN(test_rfc8032_vectors);
	RUN(test_ed25519_verify_rejects_changes);
	RUN(test_privkey_spec_vector_roundtrip);
	RUN(test_privkey_generate_roundtrip);
	RUN(test_privkey_legacy_96);
	RUN(test_privkey_decode_errors);
	RUN(test_privkey_save_load);
	RUN(test_privkey_load_oversized);
	RUN(test_pubkey_decode_ed25519);
	RUN(test_pubkey_roundtrip_all_types);
	RUN(test_pubkey_decode_errors);
	RUN(test_verify_rsa);
	RUN(test_verify_ecdsa);
	RUN(test_verify_secp256k1);
	RUN(test_verify_wrong_key);
	RUN(test_pubkey_equal);
	RUN(test_key_type_names);
	rmdir(tmpdir);
	return check_done();
}
