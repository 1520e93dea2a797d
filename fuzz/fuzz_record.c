/*
 * fuzz_record: the record stream splitter, jansson with our flags, and
 * an_record_verify (with the first valid root record of the input serving
 * later subdomains), plus canonical serialization of whatever parsed.
 */
#include "record/jcs.h"
#include "record/jsonstream.h"
#include "record/record.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NOW 1795467600 /* 2026-11-23T21:00:00Z, inside the seeds' validity */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fds[2];
	if (size > 65536 || pipe(fds) != 0)
		return 0;
	/* A pipe holds 64 KiB: the whole input fits before anyone reads. */
	if (write(fds[1], data, size) != (ssize_t)size) {
		close(fds[0]);
		close(fds[1]);
		return 0;
	}
	close(fds[1]);
	struct an_json_stream in;
	an_json_stream_init(&in, fds[0], 16384);
	json_t *rec, *root = NULL;
	char err[128];
	for (int n = 0; n < 64 && an_json_stream_next(&in, &rec, err, sizeof err) > 0; n++) {
		struct an_record_error e;
		struct an_buf b;
		int rc = an_record_verify(rec, root, NOW, 0, &e);
		const char *type = json_string_value(json_object_get(rec, "type"));
		if (rc == 0 && !root && type && !strcmp(type, "root"))
			root = json_incref(rec);
		an_buf_init(&b, 16384);
		an_record_serialize(rec, &b);
		an_buf_free(&b);
		an_record_compare(rec, root ? root : rec);
		json_decref(rec);
	}
	json_decref(root);
	an_json_stream_free(&in);
	close(fds[0]);
	return 0;
}
