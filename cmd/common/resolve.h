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
 * Pins: STATEDIR/pins.json, {"<root name>":"<peer hash>",...}.  The first
 * answer for a root name pins its peer hash; a name (or a subdomain of a
 * name) pinned to another peer hash is refused with AN_EPINNED unless the
 * caller repins.  A bare name resolves through its pin.
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

#define AN_PINS_MAX (1 << 20) /* bytes of pins.json */

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

/* STATEDIR/pins.json as an object (new; an empty one if missing or bad). */
json_t *an_pins_load(const char *statedir);

/* Write pins atomically (temporary file renamed).  0 or -errno. */
int an_pins_save(const char *statedir, const json_t *pins);

/*
 * The pinned peer hash for fqdn or a name it is a subdomain of (borrowed
 * from pins), NULL if none; *at (may be NULL) is the pinned name
 * (borrowed from fqdn).
 */
const char *an_pins_find(const json_t *pins, const char *fqdn, const char **at);

/* ---- resolution ---- */

/* A resolved name.  init with an_resolved_init, free with an_resolved_free. */
struct an_resolved {
	struct an_name name;  /* peerhash filled in from the pin for a bare name */
	json_t *record;       /* new: the name's verified record */
	json_t *root;         /* new: its root record for a subdomain, else NULL */
	struct an_peerid publisher; /* from the record's publisherPublicKey */
	bool pinned_now;      /* this resolution wrote a pin */
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
 * or AN_ENOTFOUND, AN_EPINNED, AN_EMISMATCH, -ETIMEDOUT, ... */
typedef void (*an_resolve_fn)(void *arg, int err, struct an_resolved *r);

struct an_resolve_op;

/*
 * Start resolving name (copied) on n (borrowed, must outlive the op).
 * statedir (borrowed) holds pins.json; repin: accept and pin a peer hash
 * other than the pinned one.  A bare name without a pin is AN_ENOTFOUND
 * (list its claimants with an_node_providers).  Pin conflicts are
 * reported synchronously (AN_EPINNED, done never called); otherwise done
 * is called exactly once from the loop unless the op is cancelled.
 * *op (may be NULL).  err/errcap (may be NULL) get a message for
 * synchronous errors.
 */
int an_resolve_start(struct an_node *n, const char *statedir, const struct an_name *name,
		     bool repin, int timeout_ms, an_resolve_fn done, void *arg,
		     struct an_resolve_op **op, char *err, size_t errcap);

/* Cancel: done is never called.  NULL-safe; not after done ran. */
void an_resolve_cancel(struct an_resolve_op *op);

/* Blocking form: runs n's loop until the answer.  *out filled on 0. */
int an_resolve(struct an_node *n, const char *statedir, const struct an_name *name, bool repin,
	       int timeout_ms, struct an_resolved *out, char *err, size_t errcap);

#endif
