# libFuzzer harnesses; the comment at the top of each tests/fuzz/*.c says
# what it feeds and what it checks.
# Included from the top-level Makefile; everything builds under build/fuzz/
# with clang and ASan+UBSan, apart from the regular objects.
#
#   make fuzz         each harness for FUZZ_SECONDS (60) on a working copy of
#                     its seed corpus (build/fuzz/corpus/<harness>)
#   make check-fuzz   each harness for FUZZ_CHECK_SECONDS (15), then every
#                     reproducer in tests/fuzz/regressions/<harness>/ once;
#                     fails on any crash, leak or undefined behaviour
#
# clang and its runtime (libFuzzer, the sanitizers) come from Debian and are
# installed by `make fuzz-deps` only when missing.

FUZZ_CC            ?= clang-14
FUZZ_SECONDS       ?= 60
FUZZ_CHECK_SECONDS ?= 15
FUZZ_ARGS          ?=

# clang-14 only recommends libclang-rt-14-dev, which holds libFuzzer and the
# sanitizer runtimes: name both. fuzz_store links LMDB.
DEB_FUZZ = clang-14 libclang-rt-14-dev liblmdb-dev

FUZZ_SAN    = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -g -O1 $(FUZZ_SAN) -Isrc -Ischema -Imigrate -Itools

FUZZ_HARNESSES = fuzz_proto fuzz_binlog fuzz_record fuzz_store
FUZZ_BINS      = $(addprefix build/fuzz/,$(FUZZ_HARNESSES))

# What each harness links besides itself.
FUZZ_PROTO_OBJS  = $(addprefix build/fuzz/obj/,$(addsuffix .o,$(CORE)))
FUZZ_BINLOG_OBJS = build/fuzz/obj/tools/binlog.o
FUZZ_RECORD_OBJS = $(addprefix build/fuzz/obj/,journal.o buf.o crc32c.o)
FUZZ_STORE_OBJS  = $(addprefix build/fuzz/obj/,$(addsuffix .o,$(CORE) $(STORE) store_offline))

.PHONY: fuzz check-fuzz fuzz-deps fuzz-build

fuzz-deps:
	@missing=""; for p in $(DEB_FUZZ); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

fuzz-build: $(FUZZ_BINS)

# The library code gets the sanitizers and libFuzzer's coverage hooks, but
# not libFuzzer's main.
build/fuzz/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/obj/tools/%.o: tools/%.c tools/binlog.h tools/toolutil.h $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/fuzz_proto: tests/fuzz/fuzz_proto.c $(FUZZ_PROTO_OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_PROTO_OBJS)

build/fuzz/fuzz_binlog: tests/fuzz/fuzz_binlog.c tests/fuzz/scratch.h $(FUZZ_BINLOG_OBJS) tools/binlog.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_BINLOG_OBJS)

build/fuzz/fuzz_record: tests/fuzz/fuzz_record.c $(FUZZ_RECORD_OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_RECORD_OBJS)

build/fuzz/fuzz_store: tests/fuzz/fuzz_store.c tests/fuzz/scratch.h $(FUZZ_STORE_OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_STORE_OBJS) -llmdb

build/fuzz/obj/%.o: migrate/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# Each harness for $(1) seconds on build/fuzz/corpus/<h>, a working copy
# that the seeds of tests/fuzz/corpus/<h> are copied into first (libFuzzer
# writes into and reduces the corpus it is given; the seeds stay as they
# are). A crash is written to build/fuzz/crashes/<h>/; the other harnesses
# still run, and the target fails at the end.
define fuzz_run
	@failed=""; for h in $(FUZZ_HARNESSES); do \
	  mkdir -p build/fuzz/corpus/$$h build/fuzz/crashes/$$h; \
	  cp -n tests/fuzz/corpus/$$h/* build/fuzz/corpus/$$h/; \
	  dict=""; [ -f tests/fuzz/$$h.dict ] && dict="-dict=tests/fuzz/$$h.dict"; \
	  echo "== $$h for $(1) s"; \
	  TMPDIR=$${TMPDIR:-/tmp} build/fuzz/$$h -max_total_time=$(1) -timeout=10 \
	    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 $$dict \
	    -artifact_prefix=build/fuzz/crashes/$$h/ $(FUZZ_ARGS) \
	    build/fuzz/corpus/$$h \
	    || failed="$$failed $$h"; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz: crash in:$$failed (reproducers in build/fuzz/crashes/)"; exit 1; fi
endef

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	$(call fuzz_run,$(FUZZ_SECONDS))

# Every reproducer once (libFuzzer runs files given by name and stops at the
# first failure), then a short fuzzing run of each harness; fails at the end
# if either found anything.
check-fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	@rm -f build/fuzz/regressions-failed; for h in $(FUZZ_HARNESSES); do \
	  files=$$(find tests/fuzz/regressions/$$h -type f ! -name '*.md' 2>/dev/null | sort); \
	  [ -n "$$files" ] || continue; \
	  echo "== $$h: $$(echo "$$files" | wc -l) regression inputs"; \
	  TMPDIR=$${TMPDIR:-/tmp} build/fuzz/$$h $$files >build/fuzz/$$h.regress.log 2>&1 \
	    || { grep -E 'Running:|fuzz_[a-z]*:|runtime error|ERROR|SUMMARY' build/fuzz/$$h.regress.log; \
	         echo "$$h" >>build/fuzz/regressions-failed; }; \
	done
	$(call fuzz_run,$(FUZZ_CHECK_SECONDS))
	@if [ -s build/fuzz/regressions-failed ]; then \
	  echo "check-fuzz: regression inputs fail in: $$(tr '\n' ' ' <build/fuzz/regressions-failed)"; exit 1; fi
