/*
 * cli.h - what every program in cmd/ shares: the exit-code table, the one
 * message format, JSON lines on stdout and the check of stdout at exit.
 * Only cmd/ prints or exits; libcommon returns codes.
 */
#ifndef AN_CLI_H
#define AN_CLI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The exit-code table of every program (DESIGN.md, every man page). */
enum an_exit {
	AN_EXIT_OK = 0,       /* ok */
	AN_EXIT_NEGATIVE = 1, /* a negative answer: bad signature, not found */
	AN_EXIT_USAGE = 2,    /* usage error */
	AN_EXIT_DATA = 3,     /* bad input data */
	AN_EXIT_SYSTEM = 4    /* system or network error, timeout, daemon unreachable */
};

/* Set the program name used in messages (basename of argv0). */
void cli_init(const char *argv0);
extern const char *cli_progname;
/* The subcommand being run (an-dht put), for the usage hint; NULL: none. */
extern const char *cli_command;

/*
 * Long-running programs call this once ready: from then on every message
 * is a log line that starts with its UTC time, "2026-12-07T21:00:00Z
 * an-dht: ...".  Messages before (usage, startup errors) have none.
 */
void cli_log_timestamps(void);

/* "an-sign: <message>" on stderr, newline added (with the time once cli_log_timestamps ran). */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cli_warn, then exit with status. */
_Noreturn void cli_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --version: "an-dht 0.1.0" (AN_VERSION) on stdout, exit 0. */
_Noreturn void cli_version(void);

/* The exit status for a libcommon error code (0 for 0). */
int cli_exit_status(int err);

/*
 * A DHT operation's outcome in our vocabulary.  The kad layer reports
 * -ENOENT when peers answered and none had the key (or none stored it),
 * -EHOSTUNREACH when no peer was reachable and -ETIMEDOUT when the
 * deadline passed before any peer answered.  -ENOENT becomes AN_ENOTFOUND
 * (exit 1, a "no"); a not-found from a node whose routing table is empty
 * (peers 0) is -EHOSTUNREACH, since nobody was asked (exit 4).
 */
int cli_kad_err(int err, size_t peers);

/*
 * Static text for err, for people: the network causes named the way a user
 * can act on them ("no peer reachable ...", "timed out ..."), else
 * an_strerror(err).
 */
const char *cli_strerror(int err);

/*
 * Print usage text to stdout and exit 0 (for --help); for misuse, one hint
 * line on stderr ("Try 'an-dht put --help'.": the message before it said
 * what was wrong) and exit AN_EXIT_USAGE.
 */
_Noreturn void cli_usage(const char *text, int status);

/*
 * A misuse: the message as cli_warn prints it, then the hint of cli_usage
 * on stderr, exit AN_EXIT_USAGE.
 */
_Noreturn void cli_usage_error(const char *usage_text, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * For getopt_long's ':' (an option without its value; the optstring must
 * start with ':') or '?' (an unknown option) result c: name the option on
 * stderr, print the usage there and exit AN_EXIT_USAGE.
 */
_Noreturn void cli_bad_option(int c, char *const argv[], const char *usage_text);

/*
 * For a repeatable option: append arg (borrowed, usually optarg) to list,
 * which holds *n of at most max entries.  When list is full: "too many
 * WHAT" (what: e.g. "--listen addresses"), the usage on stderr, exit
 * AN_EXIT_USAGE.
 */
void cli_opt_append(const char **list, int *n, int max, const char *arg, const char *what,
		    const char *usage_text);

/*
 * A --protocol value: arg when it starts with '/' (a protocol ID), else
 * "invalid protocol ID", the usage on stderr, exit AN_EXIT_USAGE.
 */
const char *cli_protocol_opt(const char *arg, const char *usage_text);

/*
 * --format: "json" (the default, whatever stdout is) or "text".  0, or
 * -EINVAL for another word.  With text, cli_print_json writes each value
 * as "key: value" lines (nested members as a.b, arrays of words on one
 * line), values separated by an empty line: for people, not for pipes.
 */
int cli_set_format(const char *arg);

/* Write v as one compact JSON line to stdout (or as text, see cli_set_format).  0 or -errno. */
int cli_print_json(const json_t *v);

/*
 * Flush and close stdout, reporting a write error (full disk, closed pipe).
 * Returns status unchanged when stdout is fine, else AN_EXIT_SYSTEM.
 */
int cli_finish(int status);

/*
 * Parse an RFC 3339 time in UTC, "2026-11-23T20:00:00Z", or with a numeric
 * offset, "2026-11-23T21:00:00+01:00" (converted to UTC), into seconds
 * since the epoch.  Returns 0 or -EINVAL.
 */
int cli_parse_time(const char *s, int64_t *t);

/*
 * Parse a duration such as "10", "10s", "500ms", "2m", "48h" into
 * milliseconds.  Returns 0 or -EINVAL.
 */
int cli_parse_duration_ms(const char *s, long long *ms);

#endif
