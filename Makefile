# cdrflow - one non-recursive Makefile.
#
#   make                 build every program into $(BUILD)/
#   make check           unit tests (cmocka) + end-to-end shell tests + fuzz corpus replay
#   make check-asan      the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make fuzz            libFuzzer targets (clang) in build-fuzz/
#   make bench           benchmarks (not part of check)
#   make CC=clang        any C17 compiler; warnings are errors
#
# Variables: BUILD (output dir), SANITIZE (e.g. address,undefined), OPT.

BUILD    ?= build
CC       ?= cc
OPT      ?= -O2
PKG      ?= pkg-config
SANITIZE ?=

# libwebsockets, jansson, libcurl: the Yeastar source (collector/ysnode.c, lib/yeastar.c)
PKGS      := yaml-0.1 openssl liblzma libpq libwebsockets jansson libcurl
PKG_CFLAGS := $(shell $(PKG) --cflags $(PKGS))
PKG_LIBS   := $(shell $(PKG) --libs $(PKGS))
# the ETL's Kamailio source reads MySQL/MariaDB too (etl/kamdb.c): libmariadb
MARIADB_CFLAGS := $(shell $(PKG) --cflags libmariadb)
MARIADB_LIBS   := $(shell $(PKG) --libs libmariadb)

WARN   := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
          -Wpointer-arith -Wformat=2 -Wvla -Wno-format-nonliteral
# snprintf truncation is deliberate everywhere we use it (gcc only warns)
CC_IS_CLANG := $(shell $(CC) --version 2>/dev/null | grep -q clang && echo 1)
ifneq ($(CC_IS_CLANG),1)
WARN   += -Wno-format-truncation
endif
CFLAGS += -std=c17 $(OPT) -g $(WARN) -D_GNU_SOURCE -Ilib -Icollector $(PKG_CFLAGS) -pthread
LDLIBS += $(PKG_LIBS) -lcsv -pthread
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CFLAGS  += -DCDRFLOW_VERSION='"$(VERSION)"'
# installed data (report templates): the programs' default search path
PREFIX ?= /usr/local
DATADIR ?= $(PREFIX)/share/cdrflow
CFLAGS  += -DCDRFLOW_DATADIR='"$(DATADIR)"'

LIB_SRC := $(wildcard lib/*.c)
COLLECTOR_SRC := $(wildcard collector/*.c)
ETL_SRC := $(wildcard etl/*.c)
SQL_SRC := $(sort $(wildcard sql/[0-9]*.sql))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
COLLECTOR_OBJ := $(COLLECTOR_SRC:%.c=$(BUILD)/%.o)
COLLECTOR_LIBOBJ := $(filter-out $(BUILD)/collector/main.o,$(COLLECTOR_OBJ))
ETL_OBJ := $(ETL_SRC:%.c=$(BUILD)/%.o) $(BUILD)/etl/migrations.o
ETL_LIBOBJ := $(filter-out $(BUILD)/etl/main.o,$(ETL_OBJ))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_REPLAY := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/tests/%-replay)
# targets on the ETL (tests/fuzz/etl) and on the output writers and file
# parsers of report/ and query/ (tests/fuzz/report): their own flags and objects
FUZZ_ETL_SRC := $(wildcard tests/fuzz/etl/fuzz_*.c)
FUZZ_REPORT_SRC := $(wildcard tests/fuzz/report/fuzz_*.c)
FUZZ_ETL_REPLAY := $(FUZZ_ETL_SRC:tests/fuzz/etl/%.c=$(BUILD)/tests/%-replay)
FUZZ_REPORT_REPLAY := $(FUZZ_REPORT_SRC:tests/fuzz/report/%.c=$(BUILD)/tests/%-replay)
FUZZ_REPLAY += $(FUZZ_ETL_REPLAY) $(FUZZ_REPORT_REPLAY)

PROGRAMS := $(BUILD)/cdrflow-collector $(BUILD)/cdrflow-etl
PROGRAMS += $(BUILD)/cdrflow-report
PROGRAMS += $(BUILD)/cdrflow-query $(BUILD)/cdrflow
TOOLS    := $(BUILD)/tests/tcpcopy $(BUILD)/tests/report-render-demo
TOOLS    += $(BUILD)/tests/bench-rating
TOOLS    += $(BUILD)/tests/fraud-sync
TOOLS    += $(BUILD)/tests/deliver
TOOLS    += $(BUILD)/tests/retention-run

all: $(PROGRAMS)

# Rebuild everything when the flags change (git's GIT-CFLAGS trick).
$(BUILD)/.flags: FORCE
	@mkdir -p $(@D)
	@echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $@ || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $@

$(BUILD)/%.o: %.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcdrflow.a: $(LIB_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

# The collector does not link libcurl: collector/ysnode.c loads it at run
# time when a Yeastar source is configured (it maps some thirty libraries,
# 4 MB resident, into a daemon that may only read AMI).
COLLECTOR_LIBS := $(shell $(PKG) --libs yaml-0.1 openssl liblzma libwebsockets jansson) -pthread

$(BUILD)/cdrflow-collector: $(COLLECTOR_OBJ) $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(COLLECTOR_LIBS)

# The list of migrations, kept like .flags: a migration removed (a branch
# switched, an experiment dropped) must not stay embedded in the binary.
$(BUILD)/.sql-list: FORCE
	@mkdir -p $(@D)
	@echo '$(SQL_SRC)' | cmp -s - $@ || echo '$(SQL_SRC)' > $@

$(BUILD)/etl/migrations.c: $(SQL_SRC) $(BUILD)/.sql-list scripts/embed-sql.sh
	@mkdir -p $(@D)
	@scripts/embed-sql.sh $@ $(SQL_SRC)

$(BUILD)/etl/migrations.o: $(BUILD)/etl/migrations.c $(BUILD)/.flags
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -Ietl -c $< -o $@

$(BUILD)/etl/kamdb.o: etl/kamdb.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(MARIADB_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/cdrflow-etl: $(ETL_OBJ) $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MARIADB_LIBS)

# ---------------------------------------------------------------- analyst CLI, dispatcher
QUERY_SRC := $(wildcard query/*.c)
QUERY_OBJ := $(QUERY_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/cdrflow-query: $(QUERY_OBJ) $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/cdrflow: $(BUILD)/tools/cdrflow.o $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# ---------------------------------------------------------------- report rendering, delivery
# report/*.c -> $(BUILD)/libreport.a (templates, queries, writers: rendering);
# report/delivery/*.c -> $(BUILD)/libdelivery.a (mail, webhook, outbox,
# alerts, hmac).  Each is compiled with its own include path only, so
# neither can include the other's headers; cdrflow-report's main.c and
# handoff.c (the program, in neither library) join them.  The collector and
# the ETL pull in neither cairo nor libcurl.
REPORT_PKGS   := xlsxwriter cairo cairo-pdf cairo-svg pangocairo fontconfig
REPORT_CFLAGS := $(shell $(PKG) --cflags $(REPORT_PKGS)) -Ireport
REPORT_LIBS   := $(shell $(PKG) --libs $(REPORT_PKGS)) -lm
REPORT_SRC    := $(wildcard report/*.c)
REPORT_OBJ    := $(REPORT_SRC:%.c=$(BUILD)/%.o)
REPORT_OBJ    := $(filter-out $(BUILD)/report/main.o $(BUILD)/report/handoff.o,$(REPORT_OBJ))

DELIVERY_PKGS   := libcurl
DELIVERY_CFLAGS := $(shell $(PKG) --cflags $(DELIVERY_PKGS)) -Ireport/delivery
DELIVERY_LIBS   := $(shell $(PKG) --libs $(DELIVERY_PKGS))
DELIVERY_SRC    := $(wildcard report/delivery/*.c)
DELIVERY_OBJ    := $(DELIVERY_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/report/%.o: report/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(REPORT_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/report/delivery/%.o: report/delivery/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(DELIVERY_CFLAGS) -MMD -MP -c $< -o $@

# the program: both include paths
$(BUILD)/report/main.o $(BUILD)/report/handoff.o: $(BUILD)/report/%.o: report/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(REPORT_CFLAGS) $(DELIVERY_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libreport.a: $(REPORT_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/libdelivery.a: $(DELIVERY_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/cdrflow-report: $(BUILD)/report/main.o $(BUILD)/report/handoff.o $(BUILD)/libreport.a $(BUILD)/libdelivery.a $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(REPORT_LIBS) $(DELIVERY_LIBS) $(LDLIBS)

# ---------------------------------------------------------------- tests
CMOCKA_LIBS := $(shell $(PKG) --libs cmocka 2>/dev/null || echo -lcmocka)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(BUILD)/tests/unit/testutil.o $(COLLECTOR_LIBOBJ) $(BUILD)/libcdrflow.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

# the ETL's pieces are tested on their own (its config.h would clash with the collector's)
ETL_UNIT := $(BUILD)/tests/test_etl $(BUILD)/tests/test_cdr
$(ETL_UNIT): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/tests/unit/testutil.o $(ETL_LIBOBJ) $(BUILD)/libcdrflow.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS) $(MARIADB_LIBS)

$(ETL_UNIT:$(BUILD)/tests/%=$(BUILD)/tests/unit/%.o): $(BUILD)/tests/unit/%.o: tests/unit/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(subst -Icollector,-Ietl,$(CFLAGS)) -MMD -MP -c $< -o $@

# the report writers: their own flags and libraries
$(BUILD)/tests/test_report: $(BUILD)/tests/unit/test_report.o $(BUILD)/tests/unit/testutil.o $(BUILD)/libreport.a $(BUILD)/libcdrflow.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(REPORT_LIBS) $(LDLIBS)

$(BUILD)/tests/test_delivery: $(BUILD)/tests/unit/test_delivery.o $(BUILD)/tests/unit/testutil.o $(BUILD)/libdelivery.a $(BUILD)/libcdrflow.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(DELIVERY_LIBS) $(LDLIBS)

$(BUILD)/tests/unit/test_report.o $(BUILD)/tests/report/report-render-demo.o: $(BUILD)/tests/%.o: tests/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(REPORT_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/unit/test_delivery.o: tests/unit/test_delivery.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(DELIVERY_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/report-render-demo: $(BUILD)/tests/report/report-render-demo.o $(BUILD)/libreport.a $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(REPORT_LIBS) $(LDLIBS)

# delivery (mail, webhook, spool, alerts) driven from the command line: tests/t/t5100
$(BUILD)/tests/delivery/deliver.o: tests/delivery/deliver.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(DELIVERY_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/deliver: $(BUILD)/tests/delivery/deliver.o $(BUILD)/libdelivery.a $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(DELIVERY_LIBS) $(LDLIBS)

# Fuzz targets built without libFuzzer: a main() that replays the corpus.
$(BUILD)/tests/fuzz_%-replay: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay_main.o $(COLLECTOR_LIBOBJ) $(BUILD)/libcdrflow.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/fuzz/etl/%.o: tests/fuzz/etl/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(subst -Icollector,-Ietl,$(CFLAGS)) -MMD -MP -c $< -o $@

$(BUILD)/tests/fuzz/report/%.o: tests/fuzz/report/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(REPORT_CFLAGS) $(DELIVERY_CFLAGS) -Iquery -MMD -MP -c $< -o $@

$(FUZZ_ETL_REPLAY): $(BUILD)/tests/%-replay: $(BUILD)/tests/fuzz/etl/%.o $(BUILD)/tests/fuzz/replay_main.o $(ETL_LIBOBJ) $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MARIADB_LIBS)

$(FUZZ_REPORT_REPLAY): $(BUILD)/tests/%-replay: $(BUILD)/tests/fuzz/report/%.o $(BUILD)/tests/fuzz/replay_main.o $(BUILD)/query/qout.o $(BUILD)/libreport.a $(BUILD)/libdelivery.a $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(REPORT_LIBS) $(DELIVERY_LIBS) $(LDLIBS)

$(BUILD)/tests/fuzz/replay_main.o: tests/fuzz/replay_main.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/tcpcopy: $(BUILD)/tests/bench/tcpcopy.o $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/bench-rating: $(BUILD)/tests/bench/bench-rating.o $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# test drivers built with the ETL's own objects and include path
$(BUILD)/tests/fraud/fraud-sync.o $(BUILD)/tests/rollup/retention-run.o: $(BUILD)/tests/%.o: tests/%.c $(BUILD)/.flags
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(subst -Icollector,-Ietl,$(CFLAGS)) -MMD -MP -c $< -o $@

$(BUILD)/tests/fraud-sync: $(BUILD)/tests/fraud/fraud-sync.o $(ETL_LIBOBJ) $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MARIADB_LIBS)

$(BUILD)/tests/retention-run: $(BUILD)/tests/rollup/retention-run.o $(ETL_LIBOBJ) $(BUILD)/libcdrflow.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(MARIADB_LIBS)

test-programs: $(PROGRAMS) $(UNIT_BIN) $(FUZZ_REPLAY) $(TOOLS)

check: test-programs
	BUILD=$(BUILD) tests/run-tests.sh

check-unit: test-programs
	BUILD=$(BUILD) tests/run-tests.sh --unit-only

check-asan:
	$(MAKE) BUILD=build-asan SANITIZE=address,undefined OPT=-O1 check

# libFuzzer builds (clang only)
FUZZ_BUILD := build-fuzz
fuzz:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang SANITIZE=address,undefined,fuzzer-no-link OPT=-O1 $(FUZZ_BUILD)/libcdrflow.a $(filter-out %/main.o,$(COLLECTOR_SRC:%.c=$(FUZZ_BUILD)/%.o))
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  echo "clang $$f -> $(FUZZ_BUILD)/$$n"; \
	  clang -std=c17 -g -O1 -D_GNU_SOURCE -Ilib -Icollector -fsanitize=address,undefined,fuzzer $$f $(filter-out %/main.o,$(COLLECTOR_SRC:%.c=$(FUZZ_BUILD)/%.o)) $(FUZZ_BUILD)/libcdrflow.a $(LDLIBS) -o $(FUZZ_BUILD)/$$n || exit 1; done
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang SANITIZE=address,undefined,fuzzer-no-link OPT=-O1 $(FUZZ_BUILD)/libreport.a $(FUZZ_BUILD)/libdelivery.a $(FUZZ_BUILD)/query/qout.o $(filter-out %/main.o,$(ETL_SRC:%.c=$(FUZZ_BUILD)/%.o)) $(FUZZ_BUILD)/etl/migrations.o
	@for f in $(FUZZ_ETL_SRC); do n=$$(basename $$f .c); \
	  echo "clang $$f -> $(FUZZ_BUILD)/$$n"; \
	  clang -std=c17 -g -O1 -D_GNU_SOURCE -Ilib -Ietl $(PKG_CFLAGS) -fsanitize=address,undefined,fuzzer $$f $(filter-out %/main.o,$(ETL_SRC:%.c=$(FUZZ_BUILD)/%.o)) $(FUZZ_BUILD)/etl/migrations.o $(FUZZ_BUILD)/libcdrflow.a $(LDLIBS) $(MARIADB_LIBS) -o $(FUZZ_BUILD)/$$n || exit 1; done
	@for f in $(FUZZ_REPORT_SRC); do n=$$(basename $$f .c); \
	  echo "clang $$f -> $(FUZZ_BUILD)/$$n"; \
	  clang -std=c17 -g -O1 -D_GNU_SOURCE -Ilib -Iquery $(PKG_CFLAGS) $(REPORT_CFLAGS) $(DELIVERY_CFLAGS) -fsanitize=address,undefined,fuzzer $$f $(FUZZ_BUILD)/query/qout.o $(FUZZ_BUILD)/libreport.a $(FUZZ_BUILD)/libdelivery.a $(FUZZ_BUILD)/libcdrflow.a $(REPORT_LIBS) $(DELIVERY_LIBS) $(LDLIBS) -o $(FUZZ_BUILD)/$$n || exit 1; done
	@echo "run e.g.: $(FUZZ_BUILD)/fuzz_ami tests/fuzz/corpus/ami -max_total_time=60"

bench: $(PROGRAMS) $(TOOLS)
	BUILD=$(BUILD) tests/bench/bench-all.sh

clean:
	rm -rf build build-asan build-fuzz

install: $(PROGRAMS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(DATADIR)/templates
	install -m 755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 templates/*.yaml $(DESTDIR)$(DATADIR)/templates/

.PHONY: all check check-unit check-asan fuzz bench clean install test-programs FORCE
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
