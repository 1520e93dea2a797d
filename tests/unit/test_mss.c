/* Unit tests for multistream-select 1.0 against hand-written wire bytes (digest section 4). */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "transport/mss.h"
#include "util/error.h"

/* "/multistream/1.0.0\n" with its 1-byte length (0x13 = 19). */
#define HDR "\x13/multistream/1.0.0\n"
#define NOISE "\x07/noise\n"
#define YAMUX "\x0d/yamux/1.0.0\n"
#define NA "\x03na\n"
#define LS "\x03ls\n"

static const char *const dial_protos[] = { "/yamux/1.0.0", "/noise" };
static const char *const listen_protos[] = { "/noise", "/ipfs/ping/1.0.0" };

static int feed(struct an_mss *m, const char *bytes, size_t len, size_t *used, struct an_buf *out)
{
	return an_mss_recv(m, (const uint8_t *)bytes, len, used, out);
}

static void test_dialer_start_pipelines_header_and_proposal(void)
{
	struct an_mss m;
	struct an_buf out;
	static const char want[] = HDR YAMUX;

	an_buf_init(&out, 4096);
	CHECK_EQ_INT(an_mss_dialer_init(&m, dial_protos, 2), 0);
	CHECK_EQ_INT(an_mss_start(&m, &out), 0);
	CHECK_EQ_INT(out.len, sizeof want - 1);
	CHECK_EQ_MEM(out.data, want, sizeof want - 1);
	an_buf_free(&out);
}

static void test_dialer_selects_on_echo_and_leaves_next_layer_bytes(void)
{
	struct an_mss m;
	struct an_buf out;
	static const char in[] = HDR YAMUX "\x00\x01rest";
	size_t used;

	an_buf_init(&out, 4096);
	an_mss_dialer_init(&m, dial_protos, 2);
	an_mss_start(&m, &out);
	an_buf_reset(&out);
	CHECK_EQ_INT(feed(&m, in, sizeof in - 1, &used, &out), 1);
	CHECK_EQ_INT(used, sizeof(HDR YAMUX) - 1);
	CHECK_EQ_STR(an_mss_selected(&m), "/yamux/1.0.0");
	CHECK_EQ_INT(out.len, 0);
	an_buf_free(&out);
}

static void test_dialer_tries_next_after_na(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;

	an_buf_init(&out, 4096);
	an_mss_dialer_init(&m, dial_protos, 2);
	an_mss_start(&m, &out);
	an_buf_reset(&out);
	CHECK_EQ_INT(feed(&m, HDR NA, sizeof(HDR NA) - 1, &used, &out), 0);
	CHECK_EQ_INT(used, sizeof(HDR NA) - 1);
	CHECK_EQ_INT(out.len, sizeof NOISE - 1);
	CHECK_EQ_MEM(out.data, NOISE, sizeof NOISE - 1);
	CHECK(an_mss_selected(&m) == NULL);
	CHECK_EQ_INT(feed(&m, NOISE, sizeof NOISE - 1, &used, &out), 1);
	CHECK_EQ_STR(an_mss_selected(&m), "/noise");
	an_buf_free(&out);
}

static void test_dialer_fails_when_every_proposal_refused(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;

	an_buf_init(&out, 4096);
	an_mss_dialer_init(&m, dial_protos, 2);
	an_mss_start(&m, &out);
	CHECK_EQ_INT(feed(&m, HDR NA NA, sizeof(HDR NA NA) - 1, &used, &out), AN_ENOPROTO);
	CHECK(an_mss_reason(&m)[0] != 0);
	an_buf_free(&out);
}

static void test_dialer_byte_at_a_time(void)
{
	struct an_mss m;
	struct an_buf out;
	static const char in[] = HDR NOISE;
	size_t have = 0, pending = 0, used;
	int rc = 0;
	static const char *const one[] = { "/noise" };

	an_buf_init(&out, 4096);
	an_mss_dialer_init(&m, one, 1);
	an_mss_start(&m, &out);
	/* The caller keeps unconsumed bytes and presents them again with one more. */
	while (have < sizeof in - 1 && rc == 0) {
		have++;
		rc = feed(&m, in + pending, have - pending, &used, &out);
		pending += used;
	}
	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_INT(have, sizeof in - 1);
	CHECK_EQ_INT(pending, sizeof in - 1);
	an_buf_free(&out);
}

static void test_dialer_rejects_missing_header(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;
	static const char *const one[] = { "/noise" };

	an_buf_init(&out, 4096);
	an_mss_dialer_init(&m, one, 1);
	an_mss_start(&m, &out);
	CHECK_EQ_INT(feed(&m, NOISE, sizeof NOISE - 1, &used, &out), AN_EPROTO);
	CHECK_EQ_INT(feed(&m, HDR, sizeof HDR - 1, &used, &out), AN_EPROTO); /* sticky */
	CHECK_EQ_INT(used, 0);
	an_buf_free(&out);
}

static void test_dialer_rejects_other_answer(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;
	static const char *const one[] = { "/noise" };

	an_buf_init(&out, 4096);
	an_mss_dialer_init(&m, one, 1);
	an_mss_start(&m, &out);
	CHECK_EQ_INT(feed(&m, HDR YAMUX, sizeof(HDR YAMUX) - 1, &used, &out), AN_EPROTO);
	an_buf_free(&out);
}

static void test_init_rejects_bad_ids(void)
{
	struct an_mss m;
	static const char *const no_slash[] = { "noise" };
	static const char *const empty[] = { "" };
	static const char *const newline[] = { "/a\nb" };
	static char longid[AN_MSS_PROTO_MAX + 2];
	const char *const too_long[] = { longid };

	memset(longid, 'a', sizeof longid - 1);
	longid[0] = '/';
	CHECK_EQ_INT(an_mss_dialer_init(&m, no_slash, 1), -EINVAL);
	CHECK_EQ_INT(an_mss_dialer_init(&m, empty, 1), -EINVAL);
	CHECK_EQ_INT(an_mss_dialer_init(&m, newline, 1), -EINVAL);
	CHECK_EQ_INT(an_mss_dialer_init(&m, too_long, 1), -EINVAL);
	CHECK_EQ_INT(an_mss_dialer_init(&m, dial_protos, 0), -EINVAL);
	CHECK_EQ_INT(an_mss_listener_init(&m, no_slash, 1, NULL, NULL), -EINVAL);
}

/* rust V1Lazy: header + /noise + the first Noise message in one flight. */
static void test_listener_leaves_pipelined_noise_bytes(void)
{
	struct an_mss m;
	struct an_buf out;
	static const char in[] = HDR NOISE "\x00\x20" "0123456789abcdef0123456789abcdef";
	static const char want[] = HDR NOISE;
	size_t used;

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(an_mss_start(&m, &out), 0);
	CHECK_EQ_INT(out.len, 0);
	CHECK_EQ_INT(feed(&m, in, sizeof in - 1, &used, &out), 1);
	CHECK_EQ_INT(used, sizeof(HDR NOISE) - 1);
	CHECK_EQ_STR(an_mss_selected(&m), "/noise");
	CHECK_EQ_INT(out.len, sizeof want - 1);
	CHECK_EQ_MEM(out.data, want, sizeof want - 1);
	an_buf_free(&out);
}

/* K10: a lazily proposed protocol we lack: "na" is in out even though the next bytes fail. */
static void test_listener_refuses_lazy_proposal_with_na(void)
{
	struct an_mss m;
	struct an_buf out;
	static const char in[] = HDR YAMUX "\x00\x0c" "yamux-frame!";
	static const char want[] = HDR NA;
	size_t used;

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(feed(&m, in, sizeof in - 1, &used, &out), AN_EPROTO);
	CHECK_EQ_INT(out.len, sizeof want - 1);
	CHECK_EQ_MEM(out.data, want, sizeof want - 1);
	an_buf_free(&out);
}

static void test_listener_answers_na_then_accepts(void)
{
	struct an_mss m;
	struct an_buf out;
	static const char want[] = HDR NA NOISE;
	size_t used;

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(feed(&m, HDR YAMUX, sizeof(HDR YAMUX) - 1, &used, &out), 0);
	CHECK_EQ_INT(feed(&m, NOISE, sizeof NOISE - 1, &used, &out), 1);
	CHECK_EQ_INT(out.len, sizeof want - 1);
	CHECK_EQ_MEM(out.data, want, sizeof want - 1);
	an_buf_free(&out);
}

static void test_listener_sends_header_once(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used, headers = 0;

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	feed(&m, HDR, sizeof HDR - 1, &used, &out);
	feed(&m, YAMUX, sizeof YAMUX - 1, &used, &out);
	feed(&m, HDR, sizeof HDR - 1, &used, &out); /* a second header is just a proposal */
	for (size_t i = 0; i + sizeof HDR - 1 <= out.len; i++)
		if (memcmp(out.data + i, HDR, sizeof HDR - 1) == 0)
			headers++;
	CHECK_EQ_INT(headers, 1);
	an_buf_free(&out);
}

static void test_listener_ls_lists_protocols(void)
{
	struct an_mss m;
	struct an_buf out;
	/* body: "\x07/noise\n" (8) + "\x11/ipfs/ping/1.0.0\n" (18) + "\n" (1) = 27 = 0x1b */
	static const char want[] = HDR "\x1b\x07/noise\n\x11/ipfs/ping/1.0.0\n\n";
	size_t used;

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(feed(&m, HDR LS, sizeof(HDR LS) - 1, &used, &out), 0);
	CHECK_EQ_INT(out.len, sizeof want - 1);
	CHECK_EQ_MEM(out.data, want, sizeof want - 1);
	an_buf_free(&out);
}

static void test_listener_refuses_simultaneous_connect(void)
{
	struct an_mss m;
	struct an_buf out;
	static const char in[] = HDR "\x1d/libp2p/simultaneous-connect\n";
	static const char want[] = HDR NA;
	size_t used;

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(feed(&m, in, sizeof in - 1, &used, &out), 0);
	CHECK_EQ_INT(used, sizeof in - 1);
	CHECK_EQ_INT(out.len, sizeof want - 1);
	CHECK_EQ_MEM(out.data, want, sizeof want - 1);
	an_buf_free(&out);
}

static void test_listener_bounds_rejections(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;
	int rc = 0, i;

	an_buf_init(&out, 65536);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	feed(&m, HDR, sizeof HDR - 1, &used, &out);
	for (i = 0; i < AN_MSS_MAX_REJECTS + 5 && rc == 0; i++)
		rc = feed(&m, YAMUX, sizeof YAMUX - 1, &used, &out);
	CHECK_EQ_INT(rc, AN_EPROTO);
	CHECK_EQ_INT(i, AN_MSS_MAX_REJECTS + 1);
	an_buf_free(&out);
}

static void test_listener_rejects_oversized_message(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;
	/* length 1025 = 0x81 0x08: refused on sight, before the body arrives */
	static const char in[] = HDR "\x81\x08/x";

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(feed(&m, in, sizeof in - 1, &used, &out), AN_EPROTO);
	an_buf_free(&out);
}

static void test_listener_rejects_long_length_prefix(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;
	static const char in[] = HDR "\x83\x80\x00";

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(feed(&m, in, sizeof in - 1, &used, &out), AN_EPROTO);
	an_buf_free(&out);
}

static void test_listener_rejects_missing_newline(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;
	static const char in[] = HDR "\x07/noisex";

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(feed(&m, in, sizeof in - 1, &used, &out), AN_EPROTO);
	an_buf_free(&out);
}

static void test_listener_rejects_missing_header(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(feed(&m, NOISE, sizeof NOISE - 1, &used, &out), AN_EPROTO);
	CHECK_EQ_INT(out.len, 0);
	an_buf_free(&out);
}

static bool accept_kad(void *ctx, const char *proto)
{
	(*(int *)ctx)++;
	return strcmp(proto, "/an/kad/1.0.0") == 0;
}

static void test_listener_predicate_accepts(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;
	int calls = 0;
	static const char in[] = HDR "\x0e/an/kad/1.0.0\n";

	an_buf_init(&out, 4096);
	an_mss_listener_init(&m, NULL, 0, accept_kad, &calls);
	CHECK_EQ_INT(feed(&m, in, sizeof in - 1, &used, &out), 1);
	CHECK_EQ_STR(an_mss_selected(&m), "/an/kad/1.0.0");
	CHECK_EQ_INT(calls, 1);
	an_buf_free(&out);
}

static void test_listener_out_full_is_retryable(void)
{
	struct an_mss m;
	struct an_buf out;
	size_t used;

	an_buf_init(&out, 10); /* too small for the header answer */
	an_mss_listener_init(&m, listen_protos, 2, NULL, NULL);
	CHECK_EQ_INT(feed(&m, HDR NOISE, sizeof(HDR NOISE) - 1, &used, &out), AN_ETOOBIG);
	CHECK_EQ_INT(used, 0);
	out.max = 4096;
	CHECK_EQ_INT(feed(&m, HDR NOISE, sizeof(HDR NOISE) - 1, &used, &out), 1);
	CHECK_EQ_INT(used, sizeof(HDR NOISE) - 1);
	an_buf_free(&out);
}

static void test_dialer_and_listener_in_memory(void)
{
	struct an_mss d, l;
	struct an_buf d_out, l_out;
	size_t used;
	int rd = 0, rl = 0;
	static const char *const offer[] = { "/mplex/6.7.0", "/yamux/1.0.0" };
	static const char *const have[] = { "/yamux/1.0.0" };

	an_buf_init(&d_out, 4096);
	an_buf_init(&l_out, 4096);
	an_mss_dialer_init(&d, offer, 2);
	an_mss_listener_init(&l, have, 1, NULL, NULL);
	an_mss_start(&d, &d_out);
	for (int round = 0; round < 10 && (rd != 1 || rl != 1); round++) {
		rl = an_mss_recv(&l, d_out.data, d_out.len, &used, &l_out);
		an_buf_consume(&d_out, used);
		rd = an_mss_recv(&d, l_out.data, l_out.len, &used, &d_out);
		an_buf_consume(&l_out, used);
	}
	CHECK_EQ_INT(rd, 1);
	CHECK_EQ_INT(rl, 1);
	CHECK_EQ_STR(an_mss_selected(&d), "/yamux/1.0.0");
	CHECK_EQ_STR(an_mss_selected(&l), "/yamux/1.0.0");
	an_buf_free(&d_out);
	an_buf_free(&l_out);
}

int main(void)
{
	RUN(test_dialer_start_pipelines_header_and_proposal);
	RUN(test_dialer_selects_on_echo_and_leaves_next_layer_bytes);
	RUN(test_dialer_tries_next_after_na);
	RUN(test_dialer_fails_when_every_proposal_refused);
	RUN(test_dialer_byte_at_a_time);
	RUN(test_dialer_rejects_missing_header);
	RUN(test_dialer_rejects_other_answer);
	RUN(test_init_rejects_bad_ids);
	RUN(test_listener_leaves_pipelined_noise_bytes);
	RUN(test_listener_refuses_lazy_proposal_with_na);
	RUN(test_listener_answers_na_then_accepts);
	RUN(test_listener_sends_header_once);
	RUN(test_listener_ls_lists_protocols);
	RUN(test_listener_refuses_simultaneous_connect);
	RUN(test_listener_bounds_rejections);
	RUN(test_listener_rejects_oversized_message);
	RUN(test_listener_rejects_long_length_prefix);
	RUN(test_listener_rejects_missing_newline);
	RUN(test_listener_rejects_missing_header);
	RUN(test_listener_predicate_accepts);
	RUN(test_listener_out_full_is_retryable);
	RUN(test_dialer_and_listener_in_memory);
	return check_done();
}
