/*
 * resolve.h - Alternet names to verified records, with peer hashes pinned
 * on first use: what an-resolve prints and what an-dial dials.
 *
 * A name is an://PEERHASH@FQDN, PEERHASH@FQDN or a bare FQDN (a full
 * base58 peer ID is accepted for PEERHASH).  Resolving PEERHASH@FQDN gets
 * the root record (the shortest suffix of FQDN held as a root record under
 * /an/PEERHASH@suffix), then, for a subdomain, the subdomain's record
 * checked against that root.  Records are validated by the node (the
 * daemon or the in-process one) before they reach us.
 *
 * Pins: STATEDIR/pins.json, {"<name>":"<peer hash>",...}, like SSH's
 * known_hosts.  A pin decides exactly its own name, and the subdomains
 * resolved through it as their root record; never a name that has a root
 * record of its own (a pin on "com" says nothing about PH@bank.com when
 * PH publishes a root "bank.com").  Resolving PH@FQDN is refused with
 * AN_EPINNED when FQDN, or the root name its record hangs from, is pinned
 * to another peer hash, unless the caller repins.  A bare FQDN resolves
 * through its own pin only.  Pins are written only when the caller asks
 * (AN_RESOLVE_PIN: first use, AN_RESOLVE_REPIN, an_pins_set): a program
 * pins only on a person's intent.  At most AN_PINS_ENTRIES_MAX pins: a
 * full file takes no new pin (none is ever evicted - that would drop a
 * protection silently).  pins.json is written 0600, and a pins.json or
 * state directory that others may write is refused (the message says
 * which), since whoever can write it decides where names go.
 *
 * Nothing here prints or exits.
 */
#ifndef AN_CLI_RESOLVE_H
#define AN_CLI_RESOLVE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "crypto/peerid.h"
#include "node.h"
#include "record/record.h"

#define AN_PINS_MAX (1 << 20)      /* bytes of pins.json */
#define AN_PINS_ENTRIES_MAX 4096   /* names in pins.json */

/* A parsed name.  peerhash "" for a bare name. */
struct an_name {
	char peerhash[AN_PEERHASH_LEN + 1];
	char fqdn[AN_RECORD_FQDN_MAX + 1];
	bool has_id;          /* the name carried a full peer ID */
	struct an_peerid id;  /* that ID when has_id */
};

/*
 * Parse "an://PH@FQDN", "PH@FQDN" or (allow_bare) "FQDN", each optionally
 * followed by a path that is ignored here (the caller splits it off).
 * PH may be a 16-character peer hash or a base58 peer ID.  0 or
 * AN_EMALFORMED.
 */
int an_name_parse(const char *s, bool allow_bare, struct an_name *out);

/* ---- pins ---- */

/*
 * STATEDIR/pins.json as an object (*out new; an empty one if missing or
 * not JSON).  0, or AN_EKEYPERM when the file or its directory may be
 * written by group or others, or is not a regular file of ours (err/errcap,
 * may be NULL, say which).
 */
int an_pins_load(const char *statedir, json_t **out, char *err, size_t errcap);

/*
 * Write pins atomically (a 0600 temporary file renamed), refused with
 * AN_EKEYPERM when the directory may be written by others.  0 or a code,
 * err/errcap (may be NULL) say why.
 */
int an_pins_save(const char *statedir, const json_t *pins, char *err, size_t errcap);

/* The peer hash pinned for exactly fqdn (borrowed from pins), NULL if none. */
const char *an_pins_find(const json_t *pins, const char *fqdn);

/*
 * Pin name to peerhash.  replace: also over another peer hash (else that
 * is AN_EPINNED).  AN_ELIMIT when AN_PINS_ENTRIES_MAX names are pinned.
 * *changed (may be NULL) true if the file was written.  0 or a code,
 * err/errcap (may be NULL) say why.
 */
int an_pins_set(const char *statedir, const char *name, const char *peerhash, bool replace,
		bool *changed, char *err, size_t errcap);

/* Remove name's pin: 0, AN_ENOTFOUND if it had none, or a code (err says why). */
int an_pins_unset(const char *statedir, const char *name, char *err, size_t errcap);

/* ---- resolution ---- */

/* A resolved name.  init with an_resolved_init, free with an_resolved_free. */
struct an_resolved {
	struct an_name name;  /* peerhash filled in from the pin for a bare name */
	json_t *record;       /* new: the name's verified record */
	json_t *root;         /* new: its root record for a subdomain, else NULL */
	struct an_peerid publisher; /* from the record's publisherPublicKey */
	char root_name[AN_RECORD_FQDN_MAX + 1]; /* the root record's name */
	bool pinned_now;      /* this resolution wrote a pin */
	char why[512];        /* on an error: what failed, for people */
};

void an_resolved_init(struct an_resolved *r);
void an_resolved_free(struct an_resolved *r);

/*
 * The record's multiaddrs (the subdomain's, else the root's), borrowed
 * from r; returns the count and fills up to max.
 */
size_t an_resolved_addrs(const struct an_resolved *r, const char **out, size_t max);

/* Callback of an asynchronous resolve: err 0 and r filled (owned by the
 * resolve; borrowed for the call, steal its fields by setting them NULL),
 * or AN_ENOTFOUND, AN_EPINNED, AN_EMISMATCH, -ETIMEDOUT, ... with r->why
 * saying what failed ("" if nothing more than the code). */
typedef void (*an_resolve_fn)(void *arg, int err, struct an_resolved *r);

struct an_resolve_op;

/* flags of an_resolve_start */
#define AN_RESOLVE_PIN 1   /* pin the root name on first use */
#define AN_RESOLVE_REPIN 2 /* accept and pin a peer hash other than the pinned one */

/*
 * Start resolving name (copied) on n (borrowed, must outlive the op).
 * statedir (borrowed) holds pins.json; flags AN_RESOLVE_*.  A bare name
 * without a pin is AN_ENOTFOUND (list its claimants with
 * an_node_providers).  A conflict with the exact name's pin is reported
 * synchronously (AN_EPINNED, done never called); one with the root's pin,
 * known once the root record is found, through done.  Otherwise done is
 * called exactly once from the loop unless the op is cancelled.  *op (may
 * be NULL).  err/errcap (may be NULL) get a message for synchronous errors.
 */
int an_resolve_start(struct an_node *n, const char *statedir, const struct an_name *name,
		     unsigned flags, int timeout_ms, an_resolve_fn done, void *arg,
		     struct an_resolve_op **op, char *err, size_t errcap);

/* Cancel: done is never called.  NULL-safe; not after done ran. */
void an_resolve_cancel(struct an_resolve_op *op);

/* Blocking form: runs n's loop until the answer.  *out filled on 0. */
int an_resolve(struct an_node *n, const char *statedir, const struct an_name *name, unsigned flags,
	       int timeout_ms, struct an_resolved *out, char *err, size_t errcap);

/*
 * The pin that refuses name (resolved under peerhash, its root record
 * named root, "" if not known yet): 0 if none, else AN_EPINNED with the
 * message in err/errcap.
 */
int an_pins_check(const json_t *pins, const char *fqdn, const char *root, const char *peerhash,
		  char *err, size_t errcap);

#endif
