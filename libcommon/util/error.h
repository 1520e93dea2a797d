/*
 * error.h - the one error vocabulary of libcommon.
 *
 * Every libcommon function that can fail returns 0 on success or a negative
 * code: either -errno (a system error, e.g. -ENOENT) or one of the AN_E*
 * codes below, which sit far below the errno range.  an_strerror() names both.
 * Programs in cmd/ turn a code into an exit status with an_error_class().
 */
#ifndef AN_UTIL_ERROR_H
#define AN_UTIL_ERROR_H

enum an_error {
	AN_OK = 0,
	AN_EBASE = -10000,
	/* bad input data (exit 3) */
	AN_EMALFORMED = AN_EBASE - 1,   /* data does not parse */
	AN_ETOOBIG = AN_EBASE - 2,      /* input over its documented cap */
	AN_ETRUNCATED = AN_EBASE - 3,   /* input ends early */
	AN_EKEYTYPE = AN_EBASE - 4,     /* key type not supported for this use */
	AN_EKEYPERM = AN_EBASE - 5,     /* secret key file readable by others */
	AN_EFIELD = AN_EBASE - 6,       /* a field is missing or of the wrong type */
	AN_EDIRPERM = AN_EBASE - 7,     /* private directory writable by others or not ours */
	/* negative answers (exit 1) */
	AN_EBADSIG = AN_EBASE - 20,     /* signature does not verify */
	AN_EEXPIRED = AN_EBASE - 21,    /* past its validity */
	AN_ENOTYET = AN_EBASE - 22,     /* not valid yet */
	AN_EMISMATCH = AN_EBASE - 23,   /* key does not match the claimed identity */
	AN_ENOTFOUND = AN_EBASE - 24,   /* no such record, peer or name */
	AN_EROOT = AN_EBASE - 25,       /* subdomain's root missing or not matching */
	AN_ESTALE = AN_EBASE - 26,      /* older than what we already hold */
	AN_EPINNED = AN_EBASE - 27,     /* answer differs from the pinned peer hash */
	/* protocol and network (exit 4) */
	AN_EPROTO = AN_EBASE - 40,      /* peer violated the protocol */
	AN_ENOPROTO = AN_EBASE - 41,    /* peer does not support the protocol */
	AN_ECLOSED = AN_EBASE - 42,     /* connection or stream closed */
	AN_ERESET = AN_EBASE - 43,      /* stream reset by peer */
	AN_ELIMIT = AN_EBASE - 44,      /* a configured resource limit was hit */
	AN_EAGAIN = AN_EBASE - 45,      /* not enough input yet; call again with more */
	AN_ELAST = AN_EBASE - 46
};

/* What an error means to a caller deciding an exit status. */
enum an_error_class {
	AN_CLASS_OK = 0,
	AN_CLASS_NEGATIVE = 1, /* a "no": bad signature, not found */
	AN_CLASS_DATA = 3,     /* malformed input */
	AN_CLASS_SYSTEM = 4    /* system, network, timeout */
};

/* Static, never NULL: a description of err (negative errno or AN_E*). */
const char *an_strerror(int err);

/* The class of err; 0 is AN_CLASS_OK. */
enum an_error_class an_error_class(int err);

#endif
