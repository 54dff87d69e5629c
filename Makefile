# beanstalkd on LMDB. `make` builds, `make check` runs every test (plain and
# under ASan+UBSan), `make run` starts the daemon on 127.0.0.1:11300.

CC      ?= cc
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DESTDIR ?=

WARN     = -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Isrc -Ischema -Imigrate
LIBS     = -levent -llmdb
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# Stock beanstalkd 1.12 (Debian's package): the yardstick for tests and
# benchmarks, never a dependency.
STOCK ?= /usr/bin/beanstalkd

# Build dependencies from Debian; installed by `make deps` only when missing.
DEB_BUILD = liblmdb-dev libevent-dev libcmocka-dev
DEB_TEST  = python3 lmdb-utils fiu-utils

CORE = util heap job tube queue buf parse proto stats
STORE = store store_env journal crc32c migrate
SERVER = conn server gather net options metrics
DAEMON_OBJS = $(addprefix build/obj/,$(addsuffix .o,$(CORE) $(STORE) $(SERVER) main))
CORE_OBJS   = $(addprefix build/obj/,$(addsuffix .o,$(CORE)))
ASAN_DAEMON_OBJS = $(addprefix build/asan/,$(addsuffix .o,$(CORE) $(STORE) $(SERVER) main))
ASAN_CORE_OBJS   = $(addprefix build/asan/,$(addsuffix .o,$(CORE)))

UNIT_TESTS = test_heap test_parse test_queue test_proto test_binlog test_gather
UNIT_BINS  = $(addprefix build/tests/,$(UNIT_TESTS))
ASAN_UNIT_BINS = $(addprefix build/asan-tests/,$(UNIT_TESTS))

HEADERS = $(wildcard src/*.h schema/*.h migrate/*.h)

.PHONY: all check check-unit check-protocol check-store check-durability check-tools check-asan check-reference run deps install clean bench

all: beanstalkd bsdump bsimport bsbench

# The tools reach the store only through the store layer's offline API.
TOOL_OBJS = $(addprefix build/obj/,store_offline.o store_env.o migrate.o util.o) build/obj/tools/binlog.o build/obj/tools/toolutil.o

build/obj/tools/%.o: tools/%.c tools/binlog.h tools/toolutil.h $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itools -c -o $@ $<

bsdump: build/obj/tools/bsdump.o $(TOOL_OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ -llmdb

bsimport: build/obj/tools/bsimport.o $(TOOL_OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ -llmdb

build/binlogcat: build/obj/tools/binlogcat.o build/obj/tools/binlog.o
	$(CC) $(ALL_CFLAGS) -o $@ $^

beanstalkd: $(DAEMON_OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

build/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/obj/%.o: migrate/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

build/asan/%.o: migrate/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 -c -o $@ $<

build/asan/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 -c -o $@ $<

build/asan/beanstalkd: $(ASAN_DAEMON_OBJS)
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $^ $(LIBS)

build/tests/%: tests/unit/%.c $(CORE_OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE_OBJS) -lcmocka

# The binlog codec's test links the codec instead of the core.
build/tests/test_binlog: tests/unit/test_binlog.c build/obj/tools/binlog.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ -lcmocka

# Commit gathering's test runs a real libevent loop.
build/tests/test_gather: tests/unit/test_gather.c build/obj/gather.o build/obj/util.o $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< build/obj/gather.o build/obj/util.o -levent -lcmocka

build/asan-tests/test_gather: tests/unit/test_gather.c build/asan/gather.o build/asan/util.o $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $< build/asan/gather.o build/asan/util.o -levent -lcmocka

build/asan/tools/binlog.o: tools/binlog.c tools/binlog.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 -c -o $@ $<

build/asan-tests/test_binlog: tests/unit/test_binlog.c build/asan/tools/binlog.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $^ -lcmocka

build/asan-tests/%: tests/unit/%.c $(ASAN_CORE_OBJS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $< $(ASAN_CORE_OBJS) -lcmocka

bsbench: tools/bsbench.c
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -o $@ $< -lpthread

# ---- tests ----

check: deps all
	@$(MAKE) --no-print-directory check-unit check-protocol check-store check-durability check-tools check-hostile check-asan check-reference

# The protocol tests run against stock beanstalkd too, when it is installed,
# so a test that the reference fails is caught as a wrong test.
check-reference:
	@if [ -x $(STOCK) ]; then \
	  BEANSTALKD=$(STOCK) BS_REFERENCE=1 python3 tests/protocol/run.py; \
	else echo "check-reference: $(STOCK) not installed, skipped"; fi

check-unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do echo "== $$t"; $$t || exit 1; done

check-protocol: beanstalkd
	BEANSTALKD=$(CURDIR)/beanstalkd python3 tests/protocol/run.py

# The whole protocol suite again with a durable store, in its default
# (sync every turn) and interval modes.
check-store: beanstalkd
	BS_STORE_ARGS="" BEANSTALKD=$(CURDIR)/beanstalkd python3 tests/protocol/run.py
	BS_STORE_ARGS="-f 20" BEANSTALKD=$(CURDIR)/beanstalkd python3 tests/protocol/run.py

# Restarts, crashes, power cuts, I/O errors, schema versions.
check-durability: beanstalkd
	BEANSTALKD=$(CURDIR)/beanstalkd python3 tests/durability/run.py

# bsdump, bsimport and the legacy binlog codec against the real samples.
check-tools: beanstalkd bsdump bsimport build/binlogcat
	python3 tests/tools/run.py

check-asan: build/asan/beanstalkd $(ASAN_UNIT_BINS)
	@for t in $(ASAN_UNIT_BINS); do echo "== $$t (asan)"; $$t || exit 1; done
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	BEANSTALKD=$(CURDIR)/build/asan/beanstalkd BS_SANITIZED=1 python3 tests/protocol/run.py
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 BS_STORE_ARGS="" \
	BEANSTALKD=$(CURDIR)/build/asan/beanstalkd BS_SANITIZED=1 python3 tests/protocol/run.py


# ---- running ----

deps:
	@missing=""; for p in $(DEB_BUILD) $(DEB_TEST); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

run: deps beanstalkd
	./beanstalkd -l 127.0.0.1 -p 11300 -b ./data

# Speed against stock beanstalkd, alternating runs, ratios printed: memory
# mode; then our zero-loss store with 50 producers against stock's -b -f 0
# and against stock's -b default (-f 50); then RAM per job and start-up;
# then many tubes and idle connections against one tube; then a million
# delayed jobs (idle CPU, CPU per ripened job).
bench: all
	tools/bench.sh ./beanstalkd $(STOCK)
	BENCH_WORKLOADS=put BENCH_CLIENT_ARGS="-c 50" BENCH_SERVER_ARGS="-b -f 0" \
	  tools/bench.sh ./beanstalkd $(STOCK)
	BENCH_WORKLOADS=put BENCH_CLIENT_ARGS="-c 50" BENCH_SERVER_ARGS="-b" \
	  tools/bench.sh ./beanstalkd $(STOCK)
	python3 tools/bench_store.py ./beanstalkd $(STOCK)
	tools/bench_scale.sh ./beanstalkd $(STOCK)
	python3 tools/bench_delayed.py ./beanstalkd $(STOCK)

# systemd units (tools/systemd/, with @BINDIR@ replaced by the installed
# daemon's directory) and the sysusers.d file that creates their user.
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
SYSUSERS_DIR     ?= $(PREFIX)/lib/sysusers.d

install: beanstalkd bsdump bsimport
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 beanstalkd bsdump bsimport $(DESTDIR)$(BINDIR)/
	install -m 644 docs/beanstalkd.1 docs/bsdump.1 docs/bsimport.1 $(DESTDIR)$(MANDIR)/man1/
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(SYSUSERS_DIR)
	sed 's|@BINDIR@|$(BINDIR)|g' tools/systemd/beanstalkd.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/beanstalkd.service
	chmod 644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/beanstalkd.service
	install -m 644 tools/systemd/beanstalkd.socket $(DESTDIR)$(SYSTEMD_UNIT_DIR)/
	install -m 644 tools/systemd/beanstalkd.sysusers $(DESTDIR)$(SYSUSERS_DIR)/beanstalkd.conf

clean:
	rm -rf build beanstalkd bsbench bsdump bsimport

include tests/hostile/hostile.mk
include tests/clients/clients.mk
include tests/clients/node/node.mk
include tests/fuzz/fuzz.mk
