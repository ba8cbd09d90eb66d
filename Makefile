# vigil — GNU make build.
#
#   make            build/libvigil.a (src/*.c) and build/vigil (agent/*.c)
#   make tests      build/tests/test_*  (one per tests/unit/test_*.c)
#   make asan       the same library + agent in build-asan/ with ASan+UBSan
#   make asan-tests build-asan/tests/test_*
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
LDLIBS     := -lmsgpackc -lcrypto -ljansson -lz -lm

LIB_SRCS   := $(sort $(wildcard src/*.c))
AGENT_SRCS := $(sort $(wildcard agent/*.c))
TEST_SRCS  := $(sort $(wildcard tests/unit/test_*.c))

.DEFAULT_GOAL := all
.PHONY: all asan tests asan-tests test run clean deps FORCE

# $(1) = output directory, $(2) = compile/link flags
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
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$($(1)_AGENT_OBJS) $(1)/libvigil.a $$(LDLIBS)

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
	$$(CC) $(2) $$(LDFLAGS) -o $$@ $$< $(1)/libvigil.a $$(LDLIBS)

-include $$($(1)_LIB_OBJS:.o=.d) $$($(1)_AGENT_OBJS:.o=.d) $$($(1)_TEST_OBJS:.o=.d)
endef

$(eval $(call variant,build,$(CFLAGS)))
$(eval $(call variant,build-asan,$(ASAN_FLAGS)))

# Keep test objects around (they are intermediate in the pattern chain).
.SECONDARY: $(build_TEST_OBJS) $(build-asan_TEST_OBJS)

all: build/libvigil.a $(build_AGENT)
tests: $(build_TESTS)
asan: build-asan/libvigil.a $(build-asan_AGENT)
asan-tests: $(build-asan_TESTS)

FORCE:

deps:
	@scripts/deps.sh

# deps first, then everything (in parallel under -jN), then the runner.
test:
	@scripts/deps.sh
	$(MAKE) --no-print-directory all tests asan asan-tests
	tests/run.sh

run:
	@scripts/deps.sh
	$(MAKE) --no-print-directory all
	scripts/demo.sh

clean:
	rm -rf build build-asan
