/*
 * ceiling: what this host can carry on one encrypted loopback TCP stream
 * with no protocol around it - the yardstick for the C single-stream
 * throughput (bench/transport.sh).  It does exactly the work the Noise
 * transport cannot avoid, with the same sizes, and nothing else:
 *
 *   sender process    seals 65519-byte plaintexts with ChaCha20-Poly1305
 *                     (libsodium, IETF: a 96-bit nonce of 4 zero bytes and a
 *                     64-bit little-endian counter, as Noise does) into
 *                     65535-byte messages, puts the 2-byte big-endian length
 *                     in front and writes each frame with one write() (our
 *                     host, too, sends about one frame per send() in this
 *                     benchmark);
 *   receiver process  reads at most AN_CONN_READ_MAX bytes per read() into a
 *                     buffer of AN_CONN_RAW_IN_MAX (the sizes of
 *                     transport/conn.h), opens every whole frame into a
 *                     plaintext buffer and moves the partial frame left at
 *                     the end to the front when a full read no longer fits
 *                     (as conn.c does).
 *
 * One TCP connection on loopback with TCP_NODELAY on both ends (as the host
 * sets), default socket buffers, blocking sockets (no event loop: that is
 * the transport's own overhead).  Sender and receiver are two processes,
 * as the throughput benchmark's dialer and listener are.  Left out, because
 * they are protocol, not crypto or TCP: yamux framing and flow control,
 * multistream, the copy of the application's bytes into the message being
 * built and out of the receive buffer, and the event loop.  Gbit/s of
 * plaintext from the go signal to the last frame opened.
 *
 *   ceiling [--mib 256] [--runs 3]
 *
 * Prints one JSON line:
 *   {"bench":"ceiling","mib":..,"runs":..,"frame":65519,"readMax":..,
 *    "gbps":median,"gbpsBest":..}
 * Exit 0, 2 on usage, 4 on a socket error or a frame that fails to open.
 */
#include "transport/conn.h"
#include "transport/noise.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PLAIN_MAX AN_NOISE_PLAINTEXT_MAX /* 65519: 65535-byte messages minus the tag */
#define TAG AN_NOISE_TAG_LEN
#define FRAME_MAX (2 + PLAIN_MAX + TAG)
#define READ_MAX AN_CONN_READ_MAX
#define RECV_BUF AN_CONN_RAW_IN_MAX
#define MAX_RUNS 100

static const char USAGE[] = "usage: ceiling [--mib N] [--runs R]\n";

static unsigned char key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];

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

/* The sender process: wait for the go byte, send total plaintext bytes. */
static int send_all(int fd, int go, long long total)
{
	static unsigned char plain[PLAIN_MAX], frame[FRAME_MAX];
	unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES], b;
	randombytes_buf(plain, sizeof(plain));
	if (read(go, &b, 1) != 1)
		return -1;
	uint64_t n = 0;
	for (long long left = total; left > 0; n++) {
		size_t len = left < PLAIN_MAX ? (size_t)left : PLAIN_MAX;
		unsigned long long clen;
		nonce_of(n, nonce);
		crypto_aead_chacha20poly1305_ietf_encrypt(frame + 2, &clen, plain, len, NULL, 0, NULL, nonce,
							  key);
		frame[0] = (unsigned char)(clen >> 8);
		frame[1] = (unsigned char)clen;
		size_t off = 0, flen = 2 + (size_t)clen;
		while (off < flen) {
			ssize_t w = write(fd, frame + off, flen - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			off += (size_t)w;
		}
		left -= (long long)len;
	}
	shutdown(fd, SHUT_WR);
	return 0;
}

/* Read and open frames until total plaintext bytes arrived; 0 or -1. */
static int receive(int fd, long long total)
{
	static unsigned char buf[RECV_BUF], plain[PLAIN_MAX];
	unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	size_t head = 0, have = 0; /* unopened bytes: buf[head..have) */
	uint64_t n = 0;
	long long got = 0;
	while (got < total) {
		if (sizeof(buf) - have < READ_MAX && head > 0) {
			memmove(buf, buf + head, have - head);
			have -= head;
			head = 0;
		}
		size_t room = sizeof(buf) - have < READ_MAX ? sizeof(buf) - have : READ_MAX;
		ssize_t r = read(fd, buf + have, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		have += (size_t)r;
		while (have - head >= 2) {
			size_t clen = (size_t)buf[head] << 8 | buf[head + 1];
			if (clen < TAG)
				return -1;
			if (have - head - 2 < clen)
				break;
			unsigned long long plen;
			nonce_of(n++, nonce);
			if (crypto_aead_chacha20poly1305_ietf_decrypt(plain, &plen, NULL, buf + head + 2, clen,
								      NULL, 0, nonce, key) != 0)
				return -1;
			got += (long long)plen;
			head += 2 + clen;
		}
		if (head == have)
			head = have = 0;
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

/* One run: seconds, or a negative value on failure. */
static double run_once(long long total)
{
	int a, b, go[2];
	if (tcp_pair(&a, &b) < 0) {
		perror("ceiling: loopback socket pair");
		return -1;
	}
	if (pipe(go) < 0) {
		perror("ceiling: pipe");
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("ceiling: fork");
		return -1;
	}
	if (pid == 0) {
		close(b);
		close(go[1]);
		_exit(send_all(a, go[0], total) == 0 ? 0 : 4);
	}
	close(a);
	close(go[0]);
	double t0 = now_s();
	int rc = write(go[1], "g", 1) == 1 ? receive(b, total) : -1;
	double secs = now_s() - t0;
	close(b); /* unblocks a sender stuck on a failed receiver */
	close(go[1]);
	int status = 0;
	waitpid(pid, &status, 0);
	if (rc < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	return secs;
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
		double secs = run_once(total);
		if (secs <= 0) {
			fprintf(stderr, "ceiling: run %ld failed (socket error, short read or bad frame)\n",
				i + 1);
			return 4;
		}
		gbps[i] = (double)total * 8 / 1e9 / secs;
		best = gbps[i] > best ? gbps[i] : best;
	}
	qsort(gbps, (size_t)runs, sizeof(gbps[0]), cmp_double);
	printf("{\"bench\":\"ceiling\",\"mib\":%ld,\"runs\":%ld,\"frame\":%d,\"readMax\":%d,\"gbps\":%.3f,"
	       "\"gbpsBest\":%.3f}\n",
	       mib, runs, PLAIN_MAX, READ_MAX, gbps[(runs - 1) / 2], best);
	return fflush(stdout) == 0 ? 0 : 4;
}
