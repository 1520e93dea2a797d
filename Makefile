# Alternet toolkit: one non-recursive Makefile over autoconf's config.mk.
#
#   make            build libcommon.a and every program into $(BUILDDIR)
#   make check      install missing dependencies, build, run every test
#   make demo       run the main job on the embedded default (loopback)
#   make install    PREFIX=/usr/local DESTDIR= ; programs, man pages, completions, units
#   make scale      100-node DHT scale and fault tests only (also in make check)
#   make fuzz       the libFuzzer campaign: FUZZ_SECONDS (600) per harness
#   make bench      benchmarks under bench/
#   make sim        the DHT simulator (sim/); make sim-run prints its figures
#
# Sources are found by layout, so adding a module or a program needs no edit
# here: libcommon/<layer>/<module>.c, cmd/an-<name>.c (+ cmd/an-<name>/*.c),
# tests/unit/test_<what>.c, tests/tools/<name>.c, fuzz/fuzz_<what>.c.

BUILDDIR ?= build
-include config.mk

# A fresh checkout has no config.mk: install what is missing and configure.
config.mk: configure.ac config.mk.in tools/install-deps
	tools/install-deps build
	autoreconf -fi
	./configure

PREFIX ?= $(prefix)
DESTDIR ?=
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man
COMPLETIONDIR = $(PREFIX)/share/bash-completion/completions
ZSHCOMPLETIONDIR = $(PREFIX)/share/zsh/vendor-completions
FISHCOMPLETIONDIR = $(PREFIX)/share/fish/vendor_completions.d
# Debian 12 keeps units in /lib/systemd/system: the package sets it so.
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

CFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2
ifeq ($(SAN),1)
SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
endif
ifeq ($(FUZZ),1)
CC = clang
SAN_FLAGS = -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DAN_FUZZING
endif
ALL_CPPFLAGS = -D_GNU_SOURCE -Ilibcommon -Icmd/common $(DEP_CFLAGS) $(CPPFLAGS)
ALL_CFLAGS = -std=c11 $(WARNINGS) $(CFLAGS) $(SAN_FLAGS)
ALL_LDFLAGS = $(SAN_FLAGS) $(LDFLAGS)
LIBS = $(DEP_LIBS) -lm

LIB_SRC := $(sort $(wildcard libcommon/*/*.c))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILDDIR)/%.o)
LIB := $(BUILDDIR)/libcommon.a

CLI_SRC := $(sort $(wildcard cmd/common/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILDDIR)/%.o)

PROGRAMS := $(sort $(patsubst cmd/%.c,%,$(wildcard cmd/an-*.c)))
PROGRAM_BINS := $(PROGRAMS:%=$(BUILDDIR)/bin/%)

UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILDDIR)/tests/%)

# Test-only programs (interop peers, load generators): tests/tools/<name>.c.
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))
TOOL_BINS := $(TOOL_SRC:tests/tools/%.c=$(BUILDDIR)/tests/tools/%)

FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRC:fuzz/%.c=$(BUILDDIR)/fuzz/%)

BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRC:bench/%.c=$(BUILDDIR)/bench/%)

# The DHT simulator: sim/*.c linked into one program over libcommon.a.
SIM_SRC := $(sort $(wildcard sim/*.c))
SIM_BIN := $(BUILDDIR)/sim/dhtsim

MANPAGES := $(sort $(wildcard man/*.[1-8]))
COMPLETIONS := $(sort $(wildcard completions/an-*))
# zsh and fish completions are written from each program's --help at build
# time (tools/gen-completions), so they cannot drift from it.
SHELL_COMPLETIONS := $(BUILDDIR)/completions/.stamp
UNITS := $(sort $(wildcard systemd/*.service systemd/*.timer))

.PHONY: all programs unit-tests test-tools scale fuzzers benches check demo install uninstall \
        completions \
        clean distclean fuzz bench lint-man soak sim sim-run
.DEFAULT_GOAL := all
# Keep object files make would treat as intermediate (fuzz, bench, tests).
.SECONDARY:
all: programs unit-tests test-tools
programs: $(PROGRAM_BINS)
unit-tests: $(UNIT_BINS)
test-tools: $(TOOL_BINS)
fuzzers: $(FUZZ_BINS)
benches: $(PROGRAM_BINS) $(TOOL_BINS) $(BENCH_BINS)
sim: $(SIM_BIN)

$(BUILDDIR)/%.o: %.c config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

# Each program: cmd/an-<name>.c plus anything under cmd/an-<name>/.
define program_rule
$(BUILDDIR)/bin/$(1): $(BUILDDIR)/cmd/$(1).o $(patsubst %.c,$(BUILDDIR)/%.o,$(wildcard cmd/$(1)/*.c)) $(CLI_OBJ) $(LIB)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

$(BUILDDIR)/tests/tools/%: $(BUILDDIR)/tests/tools/%.o $(CLI_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILDDIR)/tests/%: $(BUILDDIR)/tests/unit/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILDDIR)/fuzz/%: $(BUILDDIR)/fuzz/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

$(BUILDDIR)/bench/%: $(BUILDDIR)/bench/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(SIM_BIN): $(SIM_SRC:%.c=$(BUILDDIR)/%.o) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

-include $(shell find $(BUILDDIR) -name '*.d' 2>/dev/null)

# The whole test suite: the test dependencies first (it stops at once, saying
# what to install, when Node.js >= 20 is missing), then the normal build, the
# sanitizer build (unit tests, programs and test tools: a core set of bats
# files runs against it too), the fuzzers, and tools/run-tests.
check:
	tools/install-deps test
	$(MAKE) all
	$(MAKE) BUILDDIR=build-san SAN=1 CFLAGS="-O1 -g -Werror" unit-tests programs test-tools
	$(MAKE) BUILDDIR=build-fuzz FUZZ=1 fuzzers
	tools/run-tests

demo: programs
	tools/install-deps demo
	tools/demo

# Scale and fault tests (100 daemons, kill 30%; bounded, about 3 minutes),
# on their own; make check runs them with the other bats suites.
scale: programs
	tools/install-deps test
	SUITES=bats BATS_FILES="$(wildcard tests/scale/*.bats)" tools/run-tests

FUZZ_SECONDS ?= 600
fuzz:
	$(MAKE) BUILDDIR=build-fuzz FUZZ=1 fuzzers
	tools/run-fuzz $(FUZZ_SECONDS)

bench: benches
	tools/install-deps bench
	tools/run-bench

# The DHT simulator's figures (bench/README.md "DHT simulator"): minutes.
sim-run: sim
	BUILDDIR=$(BUILDDIR) tools/run-sim

# The sanitizer soak: the ASan+UBSan programs under mixed and hostile load
# for SOAK_SECONDS; fails on any sanitizer report or a server that died.
SOAK_SECONDS ?= 600
soak:
	$(MAKE) BUILDDIR=build-san SAN=1 CFLAGS="-O1 -g -Werror" programs test-tools
	tools/soak $(SOAK_SECONDS)

lint-man:
	mandoc -Tlint -W warning $(MANPAGES)

completions: $(SHELL_COMPLETIONS)
$(SHELL_COMPLETIONS): $(PROGRAM_BINS) tools/gen-completions tools/gen-completions.awk
	tools/gen-completions $(BUILDDIR)/bin $(BUILDDIR)/completions
	touch $@

# Programs, man pages, bash, zsh and fish completions, and the systemd units
# (their /usr/bin/ paths made $(BINDIR)/; installed, not enabled).
install: programs completions
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(COMPLETIONDIR) $(DESTDIR)$(ZSHCOMPLETIONDIR) \
		$(DESTDIR)$(FISHCOMPLETIONDIR) $(DESTDIR)$(SYSTEMDUNITDIR)
	install -m 0755 $(PROGRAM_BINS) $(DESTDIR)$(BINDIR)
	for m in $(MANPAGES); do \
		s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s; done
	install -m 0644 $(COMPLETIONS) $(DESTDIR)$(COMPLETIONDIR)
	install -m 0644 $(PROGRAMS:%=$(BUILDDIR)/completions/zsh/_%) $(DESTDIR)$(ZSHCOMPLETIONDIR)
	install -m 0644 $(PROGRAMS:%=$(BUILDDIR)/completions/fish/%.fish) $(DESTDIR)$(FISHCOMPLETIONDIR)
	for u in $(UNITS); do \
		sed 's|/usr/bin/|$(BINDIR)/|g' $$u >$(DESTDIR)$(SYSTEMDUNITDIR)/$${u#systemd/} && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$${u#systemd/} || exit 1; done

uninstall:
	rm -f $(PROGRAMS:%=$(DESTDIR)$(BINDIR)/%) $(COMPLETIONS:completions/%=$(DESTDIR)$(COMPLETIONDIR)/%)
	rm -f $(PROGRAMS:%=$(DESTDIR)$(ZSHCOMPLETIONDIR)/_%) $(PROGRAMS:%=$(DESTDIR)$(FISHCOMPLETIONDIR)/%.fish)
	rm -f $(UNITS:systemd/%=$(DESTDIR)$(SYSTEMDUNITDIR)/%)
	for m in $(MANPAGES); do s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m#man/}; done

clean:
	rm -rf build build-san build-fuzz

distclean: clean
	rm -rf config.mk config.log config.status configure autom4te.cache aclocal.m4
