/* version.h - the toolkit's version, as AC_INIT in configure.ac names it
 * (tests/bats/usage.bats checks that the two agree). */
#ifndef AN_CLI_VERSION_H
#define AN_CLI_VERSION_H

#define AN_VERSION "0.1.0"

#endif
