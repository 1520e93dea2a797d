/* an-keygen: create and inspect Alternet (libp2p Ed25519) identities. */
#include "cli.h"

#include "crypto/key.h"
#include "crypto/peerid.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/init.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
	"Usage: an-keygen [-f] -k KEYFILE\n"
	"       an-keygen -y -k KEYFILE\n"
	"\n"
	"Create an Ed25519 identity in KEYFILE (libp2p PrivateKey protobuf, mode 0600),\n"
	"or with -y show the identity of an existing key file.  Prints one JSON line:\n"
	"peerId, peerHash, publicKey, keyType, cid.\n"
	"\n"
	"Options:\n"
	"  -k, --key KEYFILE  the secret key file\n"
	"  -f, --force        overwrite an existing KEYFILE\n"
	"  -y, --show         read KEYFILE and print its identity; create nothing\n"
	"  -h, --help         show this help\n"
	"      --version      print the version and exit\n"
	"\n"
	"Exit status: 0 ok, 2 usage, 3 bad key file, 4 system error.\n";

static void usage(FILE *f, int status)
{
	(void)f;
	cli_usage(USAGE, status);
}

struct options {
	const char *keyfile;
	bool force;
	bool show;
};

static void parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "force", no_argument, NULL, 'f' },
		{ "show", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	/* Our own messages, in the one format, named by basename (not argv[0]). */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":k:fyh", longopts, NULL)) != -1) {
		switch (c) {
		case 'k':
			/* a secret key never goes to a terminal or a pipe, nor to a file named "-" */
			if (strcmp(optarg, "-") == 0)
				cli_usage_error(USAGE, "-k needs a key file: '-' (standard output) is refused for a secret key");
			o->keyfile = optarg;
			break;
		case 'f':
			o->force = true;
			break;
		case 'y':
			o->show = true;
			break;
		case 'V':
			cli_version();
		case 'h':
			usage(stdout, AN_EXIT_OK);
			break;
		default:
			cli_bad_option(c, argv, USAGE);
		}
	}
	if (optind != argc) {
		cli_warn("unexpected argument '%s'", argv[optind]);
		usage(stderr, AN_EXIT_USAGE);
	}
	if (!o->keyfile) {
		cli_warn("a key file is required (-k KEYFILE)");
		usage(stderr, AN_EXIT_USAGE);
	}
	if (o->show && o->force) {
		cli_warn("-f and -y exclude each other");
		usage(stderr, AN_EXIT_USAGE);
	}
}

/* Report a failure to load or save the key file; returns the exit status. */
static int key_error(const char *path, int err, bool creating)
{
	if (err == -ELOOP) {
		cli_warn("refusing key file %s: it is a symbolic link", path);
		return AN_EXIT_DATA;
	}
	if (err == -EINVAL && !creating) {
		cli_warn("refusing key file %s: not a regular file", path);
		return AN_EXIT_DATA;
	}
	if (err == AN_EKEYPERM) {
		cli_warn("refusing key file %s: it is accessible by group or others (chmod 600 %s)", path,
			 path);
		return AN_EXIT_DATA;
	}
	if (err == -EEXIST && creating) {
		cli_warn("unable to create %s: %s (use -f to overwrite)", path, an_strerror(err));
		return AN_EXIT_SYSTEM;
	}
	if (an_error_class(err) == AN_CLASS_DATA) {
		cli_warn("invalid key file %s: %s", path, an_strerror(err));
		return AN_EXIT_DATA;
	}
	cli_warn("unable to %s %s: %s", creating ? "create" : "open", path, an_strerror(err));
	return cli_exit_status(err);
}

/* The JSON line describing the identity of k (new reference, NULL on error). */
static json_t *identity_json(const struct an_privkey *k)
{
	struct an_pubkey pub;
	struct an_peerid id;
	struct an_buf pb;
	char text[AN_PEERID_TEXT_MAX], cid[AN_PEERID_TEXT_MAX], hash[AN_PEERHASH_LEN + 1];
	char b64[sodium_base64_ENCODED_LEN(AN_PUBKEY_PB_MAX, sodium_base64_VARIANT_ORIGINAL)];
	json_t *v = NULL;

	an_buf_init(&pb, AN_PUBKEY_PB_MAX);
	an_privkey_public(k, &pub);
	if (an_peerid_from_pubkey(&pub, &id) < 0 || an_peerid_format(&id, text, sizeof text) < 0 ||
	    an_peerid_format_cid(&id, cid, sizeof cid) < 0 || an_peerhash(&id, hash) < 0 ||
	    an_pubkey_encode(&pub, &pb) < 0)
		goto out;
	sodium_bin2base64(b64, sizeof b64, pb.data, pb.len, sodium_base64_VARIANT_ORIGINAL);
	v = json_pack("{s:s, s:s, s:s, s:s, s:s}", "peerId", text, "peerHash", hash, "publicKey", b64,
		      "keyType", an_key_type_name(pub.type), "cid", cid);
out:
	an_buf_free(&pb);
	return v;
}

static int run(const struct options *o)
{
	struct an_privkey *k = NULL;
	json_t *v = NULL;
	int status = AN_EXIT_OK, rc;

	if (o->show) {
		rc = an_privkey_load(o->keyfile, &k);
		if (rc < 0) {
			status = key_error(o->keyfile, rc, false);
			goto out;
		}
	} else {
		rc = an_privkey_generate(&k);
		if (rc == 0)
			rc = an_privkey_save(k, o->keyfile, o->force);
		if (rc < 0) {
			status = key_error(o->keyfile, rc, true);
			goto out;
		}
	}
	v = identity_json(k);
	if (!v) {
		cli_warn("unable to describe the key: %s", an_strerror(-ENOMEM));
		status = AN_EXIT_SYSTEM;
		goto out;
	}
	if (cli_print_json(v) < 0)
		status = AN_EXIT_SYSTEM;
out:
	json_decref(v);
	an_privkey_free(k);
	return status;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };

	cli_init(argv[0]);
	an_global_init();
	parse(argc, argv, &o);
	if (sodium_init() < 0)
		cli_die(AN_EXIT_SYSTEM, "unable to initialise libsodium");
	return cli_finish(run(&o));
}
