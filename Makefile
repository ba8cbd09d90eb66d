# vigil — GNU make build.
#
#   make            build/libvigil.a, build/libvigil.so* (src/*.c but the
#                   simulator) and build/vigil (agent/main.c linked against
#                   build/libvigil-agent.a: every other agent/*.c)
#   make install    PREFIX=/usr/local DESTDIR= LIBDIR=$(PREFIX)/lib: header,
#                   libraries, vigil.pc, the vigil binary, man pages, systemd unit
#   make uninstall  the same files removed
#   make deb        build/vigil_<version>_<arch>.deb (dpkg-deb)
#   make tests      build/tests/test_*  (one per tests/unit/test_*.c)
#   make asan       the same library + agent in build-asan/ with ASan+UBSan
#   make asan-tests build-asan/tests/test_*
#   make sim-benches build/sim_bench, build/sim_falsepos (bench/sim_*.c)
#   make test       deps, all of the above, then tests/run.sh
#   make run        deps, build, then scripts/demo.sh
#   make clean
#
# Sources are found by wildcard, so new files are picked up automatically.
# Each test binary is built from exactly one tests/unit/test_*.c and linked
# against the agent archive and the internal archive (below), not the
# installed library; the linker takes only the objects a test uses.
#
# libvigil-agent.a holds the agent and CLI (agent/*.c but main.c), so unit
# tests can link the agent's modules; build/vigil is main.o + that archive.
#
# Three archives are built from the library objects:
#   libvigil-internal.a  every object as compiled; tests, benchmarks and the
#                        daemon use internal symbols (swim_*, wire_*, ...)
#   libvigil-sim.a       the deterministic network simulator (src/sim.c),
#                        for tests and benchmarks only; never installed
#   libvigil.a           what is installed: one relocatable object in which
#                        every symbol not marked VIGIL_API is made local, so
#                        a program linking it statically sees only vigil_*
#                        (swim_new, for one, would clash with Tarantool's)
# and libvigil.so.$(ABI) exports only VIGIL_API functions (hidden visibility).

CC      ?= cc
AR      ?= ar
LD      ?= ld
OBJCOPY ?= objcopy

# The version lives in include/vigil.h only (VIGIL_VERSION_*); the soname
# carries the major number, which changes exactly when the ABI breaks
# (docs/ABI.md).
vigil_ver = $(shell sed -n 's/^\#define VIGIL_VERSION_$(1)  *\([0-9][0-9]*\).*/\1/p' include/vigil.h)
VERSION := $(call vigil_ver,MAJOR).$(call vigil_ver,MINOR).$(call vigil_ver,PATCH)
ABI     := $(call vigil_ver,MAJOR)
SO_NAME := libvigil.so.$(ABI)
SO_REAL := libvigil.so.$(VERSION)

WARN       := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror
INCS       := -Iinclude -Isrc
OPT        := -O2 -g
ASAN_OPT   := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=all
# Library objects go into a shared library too, hence -fPIC; nothing but
# the VIGIL_API functions of include/vigil.h is visible outside it.
LIB_FLAGS  := -fPIC -fvisibility=hidden
CFLAGS     := $(WARN) $(OPT) $(INCS)
ASAN_FLAGS := $(WARN) $(ASAN_OPT) $(INCS)
# libvigil's libraries: msgpack-c, libcrypto (AES-GCM), jansson (config),
# libdeflate (the packets' CRC-32, with carry-less multiply: a fifth of
# zlib's time, and unlike ISA-L it ships a static library for the daemon).
# RE2 (Go's regexp syntax, linear-time matching) evaluates every filter,
# through a small C++ shim (src/goregex.cc); hence libstdc++.
LDLIBS     := -lmsgpackc -lcrypto -ljansson -ldeflate -lre2 -lstdc++ -lm
# Tests and fuzz targets check CRCs against zlib's, an independent one.
TEST_LDLIBS := $(LDLIBS) -lz
# The daemon is linked statically by default, like serf's Go binary: a
# dynamically linked vigil spends ~3.5 MiB of its ~4 MiB RSS on pages of
# libc and libcrypto it barely uses (docs/BENCHMARKS.md).  STATIC=0 links
# dynamically.  Tests and the ASan build always link dynamically.
STATIC     ?= 1
AGENT_LINK := $(if $(filter 1,$(STATIC)),-static)

SIM_SRCS   := src/sim.c
LIB_SRCS   := $(filter-out $(SIM_SRCS),$(sort $(wildcard src/*.c)))
LIB_CXX_SRCS := $(sort $(wildcard src/*.cc))
# C++ is compiled with the C flags of its variant, C++17 instead of C11.
CXX_STD    := -std=c++17
AGENT_SRCS := $(sort $(wildcard agent/*.c))
TEST_SRCS  := $(sort $(wildcard tests/unit/test_*.c))

.DEFAULT_GOAL := all
.PHONY: all asan tests asan-tests sim-benches test run clean deps FORCE \
	install uninstall deb

# $(1) = output directory, $(2) = compile/link flags, $(3) = extra daemon link flags
define variant
$(1)_LIB_OBJS   := $$(LIB_SRCS:%.c=$(1)/%.o) $$(LIB_CXX_SRCS:%.cc=$(1)/%.o)
$(1)_SIM_OBJS   := $$(SIM_SRCS:%.c=$(1)/%.o)
$(1)_AGENT_OBJS := $$(AGENT_SRCS:%.c=$(1)/%.o)
$(1)_AGENT_MAIN := $(1)/agent/main.o
$(1)_AGENT_LIB_OBJS := $$(filter-out $$($(1)_AGENT_MAIN),$$($(1)_AGENT_OBJS))
$(1)_TEST_OBJS  := $$(TEST_SRCS:%.c=$(1)/%.o)
$(1)_TESTS      := $$(patsubst tests/unit/%.c,$(1)/tests/%,$$(TEST_SRCS))
$(1)_AGENT      := $$(if $$(AGENT_SRCS),$(1)/vigil)

# The object lists are recorded so that deleting a source relinks.
$(1)/.lib-objs: FORCE
	@mkdir -p $$(@D)
	@echo '$$($(1)_LIB_OBJS)' | cmp -s - $$@ || echo '$$($(1)_LIB_OBJS)' > $$@

$(1)/.agent-objs: FORCE
	@mkdir -p $$(@D)
	@echo '$$($(1)_AGENT_OBJS)' | cmp -s - $$@ || echo '$$($(1)_AGENT_OBJS)' > $$@

$(1)/libvigil-internal.a: $$($(1)_LIB_OBJS) $(1)/.lib-objs
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(AR) rcs $$@ $$($(1)_LIB_OBJS)

$(1)/libvigil-sim.a: $$($(1)_SIM_OBJS)
	@rm -f $$@
	$$(AR) rcs $$@ $$^

# ld -r joins the objects (resolving their references to each other), then
# objcopy makes every hidden symbol local: only VIGIL_API ones stay global.
$(1)/libvigil.a: $$($(1)_LIB_OBJS) $(1)/.lib-objs
	@rm -f $$@ $(1)/libvigil-all.o
	$$(LD) -r -o $(1)/libvigil-all.o $$($(1)_LIB_OBJS)
	$$(OBJCOPY) --localize-hidden $(1)/libvigil-all.o
	$$(AR) rcs $$@ $(1)/libvigil-all.o

$(1)/$$(SO_REAL): $$($(1)_LIB_OBJS) $(1)/.lib-objs
	$$(CC) $(2) -shared -Wl,-soname,$$(SO_NAME) -Wl,--no-undefined $$(LDFLAGS) \
		-o $$@ $$($(1)_LIB_OBJS) $$(LDLIBS)
	ln -sf $$(SO_REAL) $(1)/$$(SO_NAME)
	ln -sf $$(SO_NAME) $(1)/libvigil.so

$(1)/libvigil-agent.a: $$($(1)_AGENT_LIB_OBJS) $(1)/.agent-objs
	@rm -f $$@
	$$(AR) rcs $$@ $$($(1)_AGENT_LIB_OBJS)

$(1)/vigil: $$($(1)_AGENT_MAIN) $(1)/libvigil-agent.a $(1)/libvigil-internal.a
	@rm -f $$@
	$$(CC) $(2) $(3) $$(LDFLAGS) -o $$@ $$($(1)_AGENT_MAIN) $(1)/libvigil-agent.a \
		$(1)/libvigil-internal.a $$(LDLIBS) \
		2>&1 | { grep -v 'statically linked applications requires at runtime\|in function' >&2 || true; }; \
		test -x $$@

$(1)/src/%.o: src/%.c
	@mkdir -p $$(@D)
	$$(CC) $(2) $$(LIB_FLAGS) $$(CPPFLAGS) -MMD -MP -c -o $$@ $$<

$(1)/src/%.o: src/%.cc
	@mkdir -p $$(@D)
	$$(CXX) $$(filter-out -std=c11,$(2)) $(CXX_STD) $$(LIB_FLAGS) $$(CPPFLAGS) -MMD -MP -c -o $$@ $$<

$(1)/agent/%.o: agent/%.c
	@mkdir -p $$(@D)
	$$(CC) $(2) $$(CPPFLAGS) -MMD -MP -c -o $$@ $$<

$(1)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $$(@D)
	$$(CC) $(2) -Itests/unit -Iagent $$(CPPFLAGS) -MMD -MP -c -o $$@ $$<

$(1)/tests/test_%: $(1)/tests/unit/test_%.o $(1)/libvigil-agent.a $(1)/libvigil-sim.a \
		$(1)/libvigil-internal.a
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$< $(1)/libvigil-agent.a $(1)/libvigil-sim.a \
		$(1)/libvigil-internal.a $$(TEST_LDLIBS)

-include $$($(1)_LIB_OBJS:.o=.d) $$($(1)_SIM_OBJS:.o=.d) $$($(1)_AGENT_OBJS:.o=.d) \
	$$($(1)_TEST_OBJS:.o=.d)
endef

$(eval $(call variant,build,$(CFLAGS),$(AGENT_LINK)))
$(eval $(call variant,build-asan,$(ASAN_FLAGS)))

# Keep test objects around (they are intermediate in the pattern chain).
.SECONDARY: $(build_TEST_OBJS) $(build-asan_TEST_OBJS)

# Examples are built against the installed form of the library (public
# header only, localized archive) so they keep compiling as users build them.
EXAMPLES := $(patsubst examples/%.c,build/examples/%,$(sort $(wildcard examples/*.c)))
build/examples/%: examples/%.c include/vigil.h build/libvigil.a
	@mkdir -p $(@D)
	$(CC) $(WARN) $(OPT) -Iinclude $(LDFLAGS) -o $@ $< build/libvigil.a $(LDLIBS)

all: build/libvigil.a build/$(SO_REAL) $(build_AGENT) $(EXAMPLES)
tests: $(build_TESTS)
asan: build-asan/libvigil-internal.a $(build-asan_AGENT)
asan-tests: $(build-asan_TESTS)

# Simulator benchmarks (docs/BENCHMARKS.md), one program per bench/sim_*.c.
SIM_BENCHES := $(patsubst bench/%.c,build/%,$(sort $(wildcard bench/sim_*.c)))
sim-benches: $(SIM_BENCHES)
build/sim_%: bench/sim_%.c build/libvigil-sim.a build/libvigil-internal.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< build/libvigil-sim.a build/libvigil-internal.a $(LDLIBS)

FORCE:

deps:
	@scripts/deps.sh

# deps first, then everything on every CPU, then the runner.  The fuzz
# targets are built here too, so building them does not count against the
# fuzz smoke script's time limit in tests/run.sh.
NPROC := $(shell nproc 2>/dev/null || echo 1)
test:
	@scripts/deps.sh
	$(MAKE) --no-print-directory -j$(NPROC) all tests asan asan-tests sim-benches fuzz
	tests/run.sh

run:
	@scripts/deps.sh
	$(MAKE) --no-print-directory all
	scripts/demo.sh

clean:
	rm -rf build build-asan

# install, uninstall, vigil.pc and the Debian package.
include packaging/install.mk

# ---------------------------------------------------------------- fuzz ----
# libFuzzer targets (docs/FUZZING.md).  Everything below belongs to the fuzz
# harness; the rest of the Makefile does not depend on it.
#
#   make fuzz         build-fuzz/fuzz_<name> for every fuzz/fuzz_<name>.c
#   make fuzz-seeds   regenerate the seed files in fuzz/corpus/<name>/
#   make fuzz-smoke   short bounded run of every target + regression replay
#   make fuzz-clean   rm -rf build-fuzz
#
# The library (src/*.c) and the few agent parsers the targets need are
# compiled with clang, coverage and ASan+UBSan into build-fuzz/.

FUZZ_CC     ?= clang
FUZZ_DIR    := build-fuzz
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -std=c11 -D_GNU_SOURCE \
               -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -Iinclude -Isrc
FUZZ_SRCS    := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_TARGETS := $(patsubst fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_SRCS))
FUZZ_CXX    ?= clang++
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_DIR)/%.o) $(LIB_CXX_SRCS:%.cc=$(FUZZ_DIR)/%.o) \
                 $(SIM_SRCS:%.c=$(FUZZ_DIR)/%.o)
# Agent files some targets link (only those that exist are used): the
# config and flag parsers, msgpack, and mDNS discovery with its DNS codec
# (fuzz_mdns).
FUZZ_AGENT_OBJS := $(patsubst %.c,$(FUZZ_DIR)/%.o,\
                   $(wildcard agent/config.c agent/flags.c agent/mp.c \
                              agent/discover.c agent/dns_wire.c))
FUZZ_LDLIBS := $(TEST_LDLIBS)

.PHONY: fuzz fuzz-seeds fuzz-smoke fuzz-clean

fuzz: $(FUZZ_TARGETS)

# LZW's inner loop is nothing but comparisons of codes against table sizes,
# none of them against input magic: with libFuzzer's comparison tracing
# (trace-cmp) its callbacks took 73 % of fuzz_lzw's time.  Without it the
# target runs 3.4x faster with the same coverage (docs/FUZZING.md); edge
# coverage and ASan+UBSan are unchanged.
FUZZ_COV_src/lzw := -fno-sanitize-coverage=trace-cmp

$(FUZZ_DIR)/src/%.o: src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_COV_src/$*) -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/src/%.o: src/%.cc
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(filter-out -std=c11,$(FUZZ_CFLAGS)) $(CXX_STD) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/agent/%.o: agent/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/.lib-objs: FORCE
	@mkdir -p $(@D)
	@echo '$(FUZZ_LIB_OBJS)' | cmp -s - $@ || echo '$(FUZZ_LIB_OBJS)' > $@

$(FUZZ_DIR)/libvigil-fuzz.a: $(FUZZ_LIB_OBJS) $(FUZZ_AGENT_OBJS) $(FUZZ_DIR)/.lib-objs
	@rm -f $@
	$(AR) rcs $@ $(FUZZ_LIB_OBJS) $(FUZZ_AGENT_OBJS)

$(FUZZ_DIR)/fuzz/%.o: fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Iagent -Itests/unit -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/fuzz/fuzz_%.o $(FUZZ_DIR)/libvigil-fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libvigil-fuzz.a \
		$(FUZZ_LDLIBS)

# fuzz_rpc_dispatch runs agent/rpc.c on a real agent, so it also links the
# other agent objects (not main.c: its main() would clash with libFuzzer's;
# the FUZZ_AGENT_OBJS are in the archive already), and it fences the
# network and fixes vigil's random seed with --wrap (see the comment at the
# top of fuzz/fuzz_rpc_dispatch.c).
# Only this target; the others link as above.
FUZZ_RPC_OBJS := $(filter-out $(FUZZ_AGENT_OBJS) $(FUZZ_DIR)/agent/main.o,\
                 $(AGENT_SRCS:%.c=$(FUZZ_DIR)/%.o))
FUZZ_RPC_WRAP := -Wl,--wrap=connect,--wrap=sendto,--wrap=getaddrinfo,--wrap=getrandom

$(FUZZ_DIR)/fuzz_rpc_dispatch: $(FUZZ_DIR)/fuzz/fuzz_rpc_dispatch.o $(FUZZ_RPC_OBJS) \
		$(FUZZ_DIR)/libvigil-fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_RPC_WRAP) -o $@ $< $(FUZZ_RPC_OBJS) \
		$(FUZZ_DIR)/libvigil-fuzz.a $(FUZZ_LDLIBS)

# The seed generator is an ordinary program (no libFuzzer main).
$(FUZZ_DIR)/gen_seeds: $(FUZZ_DIR)/fuzz/gen_seeds.o $(FUZZ_DIR)/libvigil-fuzz.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -o $@ $< \
		$(FUZZ_DIR)/libvigil-fuzz.a $(FUZZ_LDLIBS)

$(FUZZ_DIR)/fuzz/gen_seeds.o: fuzz/gen_seeds.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Iagent -Itests/unit -MMD -MP -c -o $@ $<

fuzz-seeds: $(FUZZ_DIR)/gen_seeds
	$(FUZZ_DIR)/gen_seeds fuzz/corpus

fuzz-smoke:
	tests/fuzz-smoke/run.sh

fuzz-clean:
	rm -rf $(FUZZ_DIR)

clean: fuzz-clean

.SECONDARY: $(FUZZ_SRCS:%.c=$(FUZZ_DIR)/%.o) $(FUZZ_DIR)/fuzz/gen_seeds.o

-include $(wildcard $(FUZZ_DIR)/src/*.d $(FUZZ_DIR)/agent/*.d $(FUZZ_DIR)/fuzz/*.d)
# ------------------------------------------------------------ end fuzz ----
