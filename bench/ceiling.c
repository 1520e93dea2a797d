/*
 * ceiling: what this host can carry on one encrypted loopback TCP stream
 * with no protocol around it - the yardstick for the C single-stream
 * throughput (bench/transport.sh).  A sender thread seals 65519-byte
 * plaintext frames with ChaCha20-Poly1305 (libsodium, IETF: a 96-bit nonce
 * of 4 zero bytes and a 64-bit little-endian counter, as Noise does), puts
 * the 2-byte big-endian length in front (Noise transport framing: 65519 +
 * 16-byte tag = 65535) and writes them to a loopback TCP socket; the
 * receiver thread reads, splits the frames and opens every one.  Gbit/s of
 * plaintext from the first write to the last frame opened.
 *
 *   ceiling [--mib 256] [--runs 3]
 *
 * Prints one JSON line:
 *   {"bench":"ceiling","mib":..,"runs":..,"frame":65519,"gbps":median,"gbpsBest":..}
 * Exit 0, 2 on usage, 4 on a socket error or a frame that fails to open.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PLAIN_MAX 65519 /* Noise: 65535-byte messages minus the 16-byte tag */
#define TAG crypto_aead_chacha20poly1305_ietf_ABYTES
#define FRAME_MAX (2 + PLAIN_MAX + TAG)
#define RECV_BUF (1024 * 1024)
#define MAX_RUNS 100

static const char USAGE[] = "usage: ceiling [--mib N] [--runs R]\n";

static unsigned char key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];

struct sender {
	int fd;
	long long total;
	int err;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nonce_of(uint64_t n, unsigned char out[crypto_aead_chacha20poly1305_ietf_NPUBBYTES])
{
	memset(out, 0, 4);
	for (int i = 0; i < 8; i++)
		out[4 + i] = (unsigned char)(n >> (8 * i));
}

static void *send_main(void *arg)
{
	struct sender *s = arg;
	static unsigned char plain[PLAIN_MAX], frame[FRAME_MAX];
	unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	randombytes_buf(plain, sizeof(plain));
	uint64_t n = 0;
	for (long long left = s->total; left > 0; n++) {
		size_t len = left < PLAIN_MAX ? (size_t)left : PLAIN_MAX;
		unsigned long long clen;
		nonce_of(n, nonce);
		crypto_aead_chacha20poly1305_ietf_encrypt(frame + 2, &clen, plain, len, NULL, 0, NULL, nonce,
							  key);
		frame[0] = (unsigned char)(clen >> 8);
		frame[1] = (unsigned char)clen;
		size_t off = 0, flen = 2 + (size_t)clen;
		while (off < flen) {
			ssize_t w = write(s->fd, frame + off, flen - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				s->err = errno ? errno : EPIPE;
				return NULL;
			}
			off += (size_t)w;
		}
		left -= (long long)len;
	}
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

/* Read and open frames until total plaintext bytes arrived; 0 or -1. */
static int receive(int fd, long long total)
{
	static unsigned char buf[RECV_BUF], plain[PLAIN_MAX];
	unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	size_t have = 0;
	uint64_t n = 0;
	long long got = 0;
	while (got < total) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		have += (size_t)r;
		size_t off = 0;
		while (have - off >= 2) {
			size_t clen = (size_t)buf[off] << 8 | buf[off + 1];
			if (clen < TAG)
				return -1;
			if (have - off - 2 < clen)
				break;
			unsigned long long plen;
			nonce_of(n++, nonce);
			if (crypto_aead_chacha20poly1305_ietf_decrypt(plain, &plen, NULL, buf + off + 2, clen,
								      NULL, 0, nonce, key) != 0)
				return -1;
			got += (long long)plen;
			off += 2 + clen;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	return 0;
}

/* A connected loopback TCP pair: *a (sender side) and *b (receiver side). */
static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int one = 1, rc = -1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*a = *b = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sl) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
		goto out;
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sl) < 0)
		goto out;
	*b = accept(l, NULL, NULL);
	if (*b < 0)
		goto out;
	/* the host sets TCP_NODELAY on every connection; so do we */
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = 0;
out:
	if (l >= 0)
		close(l);
	return rc;
}

static int cmp_double(const void *x, const void *y)
{
	double p = *(const double *)x, q = *(const double *)y;
	return p < q ? -1 : p > q;
}

static long parse_count(const char *s, const char *name, long max)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 1 || v > max) {
		fprintf(stderr, "ceiling: invalid --%s '%s'\n%s", name, s, USAGE);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"mib", required_argument, NULL, 'm'},
						 {"runs", required_argument, NULL, 'r'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	long mib = 256, runs = 3;
	double gbps[MAX_RUNS], best = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm': mib = parse_count(optarg, "mib", 1L << 20); break;
		case 'r': runs = parse_count(optarg, "runs", MAX_RUNS); break;
		case 'h': fputs(USAGE, stdout); return 0;
		default: fputs(USAGE, stderr); return 2;
		}
	}
	if (optind != argc) {
		fputs(USAGE, stderr);
		return 2;
	}
	if (sodium_init() < 0)
		return 4;
	signal(SIGPIPE, SIG_IGN);
	crypto_aead_chacha20poly1305_ietf_keygen(key);
	long long total = (long long)mib * 1024 * 1024;
	for (long i = 0; i < runs; i++) {
		int a, b;
		if (tcp_pair(&a, &b) < 0) {
			perror("ceiling: loopback socket pair");
			return 4;
		}
		struct sender s = {.fd = a, .total = total};
		pthread_t th;
		double t0 = now_s();
		if (pthread_create(&th, NULL, send_main, &s) != 0) {
			fputs("ceiling: unable to start the sender thread\n", stderr);
			return 4;
		}
		int rc = receive(b, total);
		double secs = now_s() - t0;
		close(b); /* unblocks a sender stuck on a failed receiver */
		pthread_join(th, NULL);
		close(a);
		if (rc < 0 || s.err) {
			fprintf(stderr, "ceiling: run %ld failed (%s)\n", i + 1,
				s.err ? strerror(s.err) : "short read or bad frame");
			return 4;
		}
		gbps[i] = (double)total * 8 / 1e9 / secs;
		best = gbps[i] > best ? gbps[i] : best;
	}
	qsort(gbps, (size_t)runs, sizeof(gbps[0]), cmp_double);
	printf("{\"bench\":\"ceiling\",\"mib\":%ld,\"runs\":%ld,\"frame\":%d,\"gbps\":%.3f,\"gbpsBest\":%.3f}\n",
	       mib, runs, PLAIN_MAX, gbps[(runs - 1) / 2], best);
	return fflush(stdout) == 0 ? 0 : 4;
}
