# vigil — GNU make build.
#
#   make            build/libvigil.a (src/*.c) and build/vigil (agent/*.c)
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
# against libvigil.a.

CC      ?= cc
AR      ?= ar

WARN       := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror
INCS       := -Iinclude -Isrc
OPT        := -O2 -g
ASAN_OPT   := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=all
CFLAGS     := $(WARN) $(OPT) $(INCS)
ASAN_FLAGS := $(WARN) $(ASAN_OPT) $(INCS)
# libvigil's libraries: msgpack-c, libcrypto (AES-GCM), jansson (config),
# libdeflate (the packets' CRC-32, with carry-less multiply: a fifth of
# zlib's time, and unlike ISA-L it ships a static library for the daemon).
LDLIBS     := -lmsgpackc -lcrypto -ljansson -ldeflate -lm
# Tests and fuzz targets check CRCs against zlib's, an independent one.
TEST_LDLIBS := $(LDLIBS) -lz
# The daemon is linked statically by default, like serf's Go binary: a
# dynamically linked vigil spends ~3.5 MiB of its ~4 MiB RSS on pages of
# libc and libcrypto it barely uses (docs/BENCHMARKS.md).  STATIC=0 links
# dynamically.  Tests and the ASan build always link dynamically.
STATIC     ?= 1
AGENT_LINK := $(if $(filter 1,$(STATIC)),-static)

LIB_SRCS   := $(sort $(wildcard src/*.c))
AGENT_SRCS := $(sort $(wildcard agent/*.c))
TEST_SRCS  := $(sort $(wildcard tests/unit/test_*.c))

.DEFAULT_GOAL := all
.PHONY: all asan tests asan-tests sim-benches test run clean deps FORCE

# $(1) = output directory, $(2) = compile/link flags, $(3) = extra daemon link flags
define variant
$(1)_LIB_OBJS   := $$(LIB_SRCS:%.c=$(1)/%.o)
$(1)_AGENT_OBJS := $$(AGENT_SRCS:%.c=$(1)/%.o)
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

$(1)/libvigil.a: $$($(1)_LIB_OBJS) $(1)/.lib-objs
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(AR) rcs $$@ $$($(1)_LIB_OBJS)

$(1)/vigil: $$($(1)_AGENT_OBJS) $(1)/libvigil.a $(1)/.agent-objs
	@rm -f $$@
	$$(CC) $(2) $(3) $$(LDFLAGS) -o $$@ $$($(1)_AGENT_OBJS) $(1)/libvigil.a $$(LDLIBS) \
		2>&1 | { grep -v 'statically linked applications requires at runtime\|in function' >&2 || true; }; \
		test -x $$@

$(1)/src/%.o: src/%.c
	@mkdir -p $$(@D)
	$$(CC) $(2) $$(CPPFLAGS) -MMD -MP -c -o $$@ $$<

$(1)/agent/%.o: agent/%.c
	@mkdir -p $$(@D)
	$$(CC) $(2) $$(CPPFLAGS) -MMD -MP -c -o $$@ $$<

$(1)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $$(@D)
	$$(CC) $(2) -Itests/unit $$(CPPFLAGS) -MMD -MP -c -o $$@ $$<

$(1)/tests/test_%: $(1)/tests/unit/test_%.o $(1)/libvigil.a
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$< $(1)/libvigil.a $$(TEST_LDLIBS)

-include $$($(1)_LIB_OBJS:.o=.d) $$($(1)_AGENT_OBJS:.o=.d) $$($(1)_TEST_OBJS:.o=.d)
endef

$(eval $(call variant,build,$(CFLAGS),$(AGENT_LINK)))
$(eval $(call variant,build-asan,$(ASAN_FLAGS)))

# Keep test objects around (they are intermediate in the pattern chain).
.SECONDARY: $(build_TEST_OBJS) $(build-asan_TEST_OBJS)

all: build/libvigil.a $(build_AGENT)
tests: $(build_TESTS)
asan: build-asan/libvigil.a $(build-asan_AGENT)
asan-tests: $(build-asan_TESTS)

# Simulator benchmarks (docs/BENCHMARKS.md), one program per bench/sim_*.c.
SIM_BENCHES := $(patsubst bench/%.c,build/%,$(sort $(wildcard bench/sim_*.c)))
sim-benches: $(SIM_BENCHES)
build/sim_%: bench/sim_%.c build/libvigil.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< build/libvigil.a $(LDLIBS)

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
               -Iinclude -Isrc
FUZZ_SRCS    := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_TARGETS := $(patsubst fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_SRCS))
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_DIR)/%.o)
# Agent files some targets link (only those that exist are used).
FUZZ_AGENT_OBJS := $(patsubst %.c,$(FUZZ_DIR)/%.o,\
                   $(wildcard agent/config.c agent/flags.c agent/mp.c))
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
# config, flags and mp are in the archive already), and it fences the
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
