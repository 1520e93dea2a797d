#include "cli.h"
#include "version.h"

#include "record/record.h"
#include "util/error.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *cli_progname = "an";
const char *cli_command;

void cli_init(const char *argv0)
{
	if (argv0 && *argv0) {
		const char *slash = strrchr(argv0, '/');
		cli_progname = slash ? slash + 1 : argv0;
	}
}

static bool log_timestamps;

void cli_log_timestamps(void)
{
	log_timestamps = true;
}

static void vwarn(const char *fmt, va_list ap)
{
	if (log_timestamps) {
		char t[AN_RECORD_TIME_LEN + 1];
		an_record_format_time((int64_t)time(NULL), t);
		fprintf(stderr, "%s ", t);
	}
	fprintf(stderr, "%s: ", cli_progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void cli_die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(cli_finish(status));
}

int cli_exit_status(int err)
{
	switch (an_error_class(err)) {
	case AN_CLASS_OK:
		return AN_EXIT_OK;
	case AN_CLASS_NEGATIVE:
		return AN_EXIT_NEGATIVE;
	case AN_CLASS_DATA:
		return AN_EXIT_DATA;
	default:
		return AN_EXIT_SYSTEM;
	}
}

int cli_kad_err(int err, size_t peers)
{
	if (err == -ENOENT)
		err = AN_ENOTFOUND;
	if (err == AN_ENOTFOUND && peers == 0)
		err = -EHOSTUNREACH;
	return err;
}

const char *cli_strerror(int err)
{
	switch (err) {
	case AN_ENOTFOUND:
		return "not found";
	case -EHOSTUNREACH:
		return "no peer reachable (bootstrap peers down or none configured: --bootstrap, "
		       "$AN_BOOTSTRAP, STATEDIR/config)";
	case -ETIMEDOUT:
		return "timed out before any peer answered";
	default:
		return an_strerror(err);
	}
}

void cli_version(void)
{
	printf("%s %s\n", cli_progname, AN_VERSION);
	exit(cli_finish(AN_EXIT_OK));
}

void cli_usage(const char *text, int status)
{
	if (status == AN_EXIT_OK)
		fputs(text, stdout);
	else
		fprintf(stderr, "Try '%s%s%s --help' for more information.\n", cli_progname,
			cli_command ? " " : "", cli_command ? cli_command : "");
	exit(cli_finish(status));
}

void cli_usage_error(const char *usage_text, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	cli_usage(usage_text, AN_EXIT_USAGE);
}

void cli_bad_option(int c, char *const argv[], const char *usage_text)
{
	/*
	 * getopt moves optind past a long option (and past a short one only
	 * when it ends its cluster), and sets optopt for short options and for
	 * long ones that have a short twin, so the text tells them apart.
	 */
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;
	if (arg && strncmp(arg, "--", 2) == 0 && arg[2]) {
		int len = (int)strcspn(arg, "=");
		cli_warn(c == ':' ? "option '%.*s' needs a value" : "unknown option '%.*s'", len, arg);
	} else {
		cli_warn(c == ':' ? "option '-%c' needs a value" : "unknown option '-%c'", optopt);
	}
	cli_usage(usage_text, AN_EXIT_USAGE);
}

void cli_opt_append(const char **list, int *n, int max, const char *arg, const char *what,
		    const char *usage_text)
{
	if (*n >= max)
		cli_usage_error(usage_text, "too many %s", what);
	list[(*n)++] = arg;
}

const char *cli_protocol_opt(const char *arg, const char *usage_text)
{
	if (arg[0] != '/')
		cli_usage_error(usage_text, "invalid protocol ID '%s'", arg);
	return arg;
}

static bool format_text;
static bool text_written;

int cli_set_format(const char *arg)
{
	if (strcmp(arg, "json") == 0)
		format_text = false;
	else if (strcmp(arg, "text") == 0)
		format_text = true;
	else
		return -EINVAL;
	return 0;
}

static void text_scalar(const json_t *v)
{
	if (json_is_string(v)) {
		fputs(json_string_value(v), stdout);
	} else {
		char *t = json_dumps(v, JSON_ENCODE_ANY);
		if (t)
			fputs(t, stdout);
		free(t);
	}
}

/* v as "key: value" lines, nested members as prefix.key, arrays of scalars on one line. */
static void text_value(const char *prefix, const json_t *v, int depth)
{
	char key[512];
	const char *k;
	json_t *m;
	size_t i;
	bool scalars = true;
	if (depth > 16)
		return;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, m) {
			snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", k);
			text_value(key, m, depth + 1);
		}
		return;
	}
	json_array_foreach(v, i, m)
		if (json_is_object(m) || json_is_array(m))
			scalars = false;
	if (!scalars) {
		json_array_foreach(v, i, m) {
			snprintf(key, sizeof(key), "%s[%zu]", prefix, i);
			text_value(key, m, depth + 1);
		}
		return;
	}
	printf("%s: ", prefix[0] ? prefix : "value");
	if (json_is_array(v)) {
		json_array_foreach(v, i, m) {
			if (i)
				putchar(' ');
			text_scalar(m);
		}
	} else {
		text_scalar(v);
	}
	putchar('\n');
}

int cli_print_json(const json_t *v)
{
	if (format_text) {
		if (text_written)
			putchar('\n');
		text_written = true;
		text_value("", v, 0);
		return ferror(stdout) ? -EIO : 0;
	}
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return -ENOMEM;
	int rc = (fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF) ? -EIO : 0;
	free(s);
	return rc;
}

int cli_finish(int status)
{
	int failed = fflush(stdout) != 0 || ferror(stdout);
	if (fclose(stdout) != 0)
		failed = 1;
	if (failed && errno != EPIPE) {
		fprintf(stderr, "%s: error writing standard output: %s\n", cli_progname, strerror(errno));
		return AN_EXIT_SYSTEM;
	}
	return failed ? AN_EXIT_SYSTEM : status;
}

int cli_parse_time(const char *s, int64_t *t)
{
	char base[32];
	size_t n = strlen(s);
	int hh, mm, sign;
	/* YYYY-MM-DDTHH:MM:SS then Z or +HH:MM / -HH:MM */
	if (n == 20 && (s[19] == 'Z' || s[19] == 'z')) {
		memcpy(base, s, 19);
		hh = mm = sign = 0;
	} else if (n == 25 && (s[19] == '+' || s[19] == '-') && s[22] == ':' &&
		   strspn(s + 20, "0123456789") == 2 && strspn(s + 23, "0123456789") == 2) {
		memcpy(base, s, 19);
		hh = (s[20] - '0') * 10 + (s[21] - '0');
		mm = (s[23] - '0') * 10 + (s[24] - '0');
		sign = s[19] == '+' ? 1 : -1;
		if (hh > 23 || mm > 59)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	base[19] = 'Z';
	base[20] = 0;
	if (an_record_parse_time(base, t) != 0)
		return -EINVAL;
	*t -= sign * (int64_t)(hh * 3600 + mm * 60); /* local time minus its offset is UTC */
	return 0;
}

int cli_parse_duration_ms(const char *s, long long *ms)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	double mult = 1000;
	if (*end == 0 || !strcmp(end, "s"))
		mult = 1000;
	else if (!strcmp(end, "ms"))
		mult = 1;
	else if (!strcmp(end, "m"))
		mult = 60000;
	else if (!strcmp(end, "h"))
		mult = 3600000;
	else if (!strcmp(end, "d"))
		mult = 86400000;
	else
		return -EINVAL;
	double r = v * mult;
	if (r > 1e15)
		return -EINVAL;
	*ms = (long long)r;
	return 0;
}
