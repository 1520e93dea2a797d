/* Unit tests for libcommon/record/jcs: the RFC 8785 examples and vectors. */
#include "check.h"

#include "record/jcs.h"
#include "util/buf.h"
#include "util/error.h"

#include <stdint.h>
#include <string.h>

/* Canonical form of the JSON text in, or NULL (static buffer). */
static const char *canon(const char *in)
{
	static char result[4096];
	json_error_t jerr;
	json_t *v = json_loads(in, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v)
		return NULL;
	struct an_buf b;
	an_buf_init(&b, sizeof result - 1);
	int rc = an_jcs_serialize(v, &b);
	json_decref(v);
	if (rc) {
		an_buf_free(&b);
		return NULL;
	}
	memcpy(result, b.data, b.len + 1);
	an_buf_free(&b);
	return result;
}

static const char *num_of_bits(uint64_t bits)
{
	static char out[AN_JCS_NUMBER_MAX];
	double d;
	memcpy(&d, &bits, sizeof d);
	if (an_jcs_format_double(d, out) != 0)
		return "error";
	return out;
}

/* RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text. */
static void test_appendix_b_numbers(void)
{
	static const struct {
		uint64_t bits;
		const char *text;
	} v[] = {
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
		CHECK_EQ_STR(num_of_bits(v[i].bits), v[i].text);
}

static void test_nan_and_infinity_refused(void)
{
	CHECK_EQ_STR(num_of_bits(0x7fffffffffffffff), "error");
	CHECK_EQ_STR(num_of_bits(0x7ff0000000000000), "error");
	CHECK_EQ_STR(num_of_bits(0xfff0000000000000), "error");
}

/* RFC 8785 section 3.2.2: the combined example. */
static void test_rfc_example(void)
{
	const char *in = "{\n  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, "
			 "0.000000000000000000000000001],\n"
			 "  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
			 "  \"literals\": [null, true, false]\n}";
	CHECK_EQ_STR(canon(in), "{\"literals\":[null,true,false],"
				"\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
				"\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

/* RFC 8785 section 3.2.3: member names sort by UTF-16 code units. */
static void test_rfc_sort_example(void)
{
	const char *in = "{\"\\u20ac\": \"Euro Sign\", \"\\r\": \"Carriage Return\", "
			 "\"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\", \"1\": \"One\", "
			 "\"\\ud83d\\ude00\": \"Emoji: Grinning Face\", \"\\u0080\": \"Control\", "
			 "\"\\u00f6\": \"Latin Small Letter O With Diaeresis\"}";
	CHECK_EQ_STR(canon(in), "{\"\\r\":\"Carriage Return\",\"1\":\"One\","
				"\"\xc2\x80\":\"Control\",\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
				"\"\xe2\x82\xac\":\"Euro Sign\",\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
				"\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

static void test_key_compare_surrogates(void)
{
	/* U+FB33 (EF AC B3) sorts after U+1F600 (F0 9F 98 80) in UTF-16 order. */
	CHECK(an_jcs_compare_keys("\xef\xac\xb3", 3, "\xf0\x9f\x98\x80", 4) > 0);
	CHECK(an_jcs_compare_keys("\xf0\x9f\x98\x80", 4, "\xef\xac\xb3", 3) < 0);
	/* ...but U+D7FF-range (ED) sorts before it, as in code point order. */
	CHECK(an_jcs_compare_keys("\xed\x9f\xbf", 3, "\xf0\x9f\x98\x80", 4) < 0);
	CHECK(an_jcs_compare_keys("ab", 2, "abc", 3) < 0);
	CHECK(an_jcs_compare_keys("abc", 3, "abc", 3) == 0);
}

static void test_nested_and_whitespace(void)
{
	CHECK_EQ_STR(canon(" { \"b\" : [ 1 , { \"z\":1, \"a\" : \"x\" } ] , \"a\" : { } } "),
		     "{\"a\":{},\"b\":[1,{\"a\":\"x\",\"z\":1}]}");
	CHECK_EQ_STR(canon("[]"), "[]");
	CHECK_EQ_STR(canon("\"\\u007f\\u2028\\u001f\""), "\"\x7f\xe2\x80\xa8\\u001f\"");
}

static void test_integers(void)
{
	CHECK_EQ_STR(canon("[0, -0, 1.0, -7, 9007199254740991, 100e-2]"),
		     "[0,0,1,-7,9007199254740991,1]");
	/* Beyond 2^53-1 an integer has no exact double: refused, not rounded. */
	CHECK(canon("[9007199254740992]") == NULL);
	CHECK(canon("[-9007199254740992]") == NULL);
}

static void test_skip_member(void)
{
	json_t *v = json_loads("{\"signature\":\"x\",\"b\":1,\"a\":2}", 0, NULL);
	struct an_buf b;
	an_buf_init(&b, 100);
	CHECK_EQ_INT(an_jcs_serialize_without(v, "signature", &b), 0);
	CHECK_EQ_STR((char *)b.data, "{\"a\":2,\"b\":1}");
	an_buf_free(&b);
	an_buf_init(&b, 100);
	CHECK_EQ_INT(an_jcs_serialize_without(json_array_get(v, 0), "x", &b), AN_EMALFORMED);
	an_buf_free(&b);
	json_decref(v);
}

static void test_cap(void)
{
	json_t *v = json_loads("{\"key\":\"a long enough value\"}", 0, NULL);
	struct an_buf b;
	an_buf_init(&b, 10);
	CHECK_EQ_INT(an_jcs_serialize(v, &b), AN_ETOOBIG);
	an_buf_free(&b);
	json_decref(v);
}

static void test_many_members(void)
{
	/* More members than the on-stack table: the heap path sorts too. */
	json_t *v = json_object();
	char key[16];
	for (int i = 99; i >= 0; i--) {
		snprintf(key, sizeof key, "k%02d", i);
		json_object_set_new(v, key, json_integer(i));
	}
	struct an_buf b;
	an_buf_init(&b, 4096);
	CHECK_EQ_INT(an_jcs_serialize(v, &b), 0);
	CHECK(strncmp((char *)b.data, "{\"k00\":0,\"k01\":1,", 17) == 0);
	CHECK(strstr((char *)b.data, "\"k98\":98,\"k99\":99}") != NULL);
	an_buf_free(&b);
	json_decref(v);
}

int main(void)
{
	RUN(test_appendix_b_numbers);
	RUN(test_nan_and_infinity_refused);
	RUN(test_rfc_example);
	RUN(test_rfc_sort_example);
	RUN(test_key_compare_surrogates);
	RUN(test_nested_and_whitespace);
	RUN(test_integers);
	RUN(test_skip_member);
	RUN(test_cap);
	RUN(test_many_members);
	return check_done();
}
