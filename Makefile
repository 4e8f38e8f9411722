# The two commands a newcomer needs: `make run` and `make test`.
# Both install missing Debian packages first (scripts/install-deps), then build.
BUILD ?= build
JOBS ?= $(shell nproc)
STREAMSCORE = $(BUILD)/streamscore
# Warnings are errors when CI is set (.ci/run sets it; so do most CI services): a dropped
# Status or a new warning fails CI. Locally they stay warnings unless WERROR=ON.
WERROR ?= $(if $(CI),ON,OFF)

.PHONY: all deps build run test sanitize bench bench-compressed bench-http bench-kafka bench-scale bench-takeover fuzz format format-check clean

all: build

deps:
	@bash scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTREAMSCORE_WERROR=$(WERROR) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The main job on embedded defaults (scripts/demo.sh): generate a history, train a
# model on it, activate it, then run the daemon on the built-in generator (1M records)
# into RocksDB under ./data, scoring every customer whose features change, and print a
# summary with the top customers and their scores. Builds only the binary it runs;
# starts from a fresh state each time.
run: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTREAMSCORE_WERROR=$(WERROR) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target streamscore
	@bash scripts/demo.sh $(STREAMSCORE)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j 2

bench: build
	@bash bench/run.sh $(BUILD)

# Only the compressed-log part of the benchmark (also run by `make bench`, which generates
# its log): replay of the bench log plain vs .zst vs .gz vs a .zst object in s3rver.
bench-compressed: build
	@bash bench/compressed.sh $(BUILD)

# Only the HTTP part of the benchmark (also run by `make bench`): GET /v1/customers/{id}
# at 10,000 requests/s against a daemon that ingests.
bench-http: build
	@bash bench/http.sh $(BUILD)

# Only the Kafka part of the benchmark (also run by `make bench`).
bench-kafka: build
	@bash bench/kafka.sh $(BUILD)

# Only the scale-out part of the benchmark (also run by `make bench`): a backfill in
# parts into one DynamoDB table (dynalite), --max-writes-per-sec per part.
bench-scale: build
	@bash bench/scale.sh $(BUILD)

# Only the takeover part of the benchmark (also run by `make bench`): taking one partition
# of a shared DynamoDB table over, with the table 1, 10 and 100 times the partition.
bench-takeover: build
	@bash bench/takeover.sh $(BUILD)

# Every test again (unit and e2e), built with AddressSanitizer and UndefinedBehaviorSanitizer; any
# report fails the run (scripts/ubsan.supp lists the one report inside CAF's own headers).
# GCC's -Wmaybe-uninitialized misfires inside libstdc++'s <regex> at -O1 with the
# sanitizers' instrumentation, so that one warning is off here (the Release build keeps it).
sanitize: deps
	@cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSTREAMSCORE_WERROR=$(WERROR) \
	  -DCMAKE_CXX_FLAGS="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -Wno-maybe-uninitialized" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
	@cmake --build build-sanitize -j $(JOBS)
	@cd build-sanitize && ASAN_OPTIONS=detect_leaks=1 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$(CURDIR)/scripts/ubsan.supp \
	  ctest --output-on-failure -j 2

# libFuzzer on the event parser, the config loader and the HTTP request path (clang, ASan, UBSan), each for
# FUZZ_SECONDS on a copy of its seed corpus in tests/fuzz/corpus/. A crash stops the
# run and leaves the input as build-fuzz/crash-*; turn it into a regression test.
# CI runs a fixed number of inputs from a fixed seed (FUZZ_RUNS, FUZZ_SEED), so that its
# result does not depend on the machine's speed.
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= -1
FUZZ_SEED ?= 0
fuzz: deps
	@CXX=clang++ CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTREAMSCORE_FUZZ=ON -DSTREAMSCORE_WERROR=$(WERROR) >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_event_parser fuzz_config fuzz_http
	@for t in event_parser config http; do \
	  mkdir -p build-fuzz/corpus-$$t && cp -n tests/fuzz/corpus/$$t/* build-fuzz/corpus-$$t/; \
	  echo "fuzz: $$t"; \
	  (cd build-fuzz && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    ./fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -runs=$(FUZZ_RUNS) -seed=$(FUZZ_SEED) \
	      -print_final_stats=1 corpus-$$t > fuzz-$$t.log 2>&1) \
	    || { tail -n 40 build-fuzz/fuzz-$$t.log; exit 1; }; \
	  grep -E "^Done|stat::number_of_executed_units" build-fuzz/fuzz-$$t.log; \
	done

# The code style (.clang-format): `make format` rewrites the tree, `make format-check`
# (run first by .ci/run) lists every file that differs and fails.
FORMAT_FILES = $(shell git ls-files '*.cpp' '*.hpp')
format: deps
	@clang-format -i $(FORMAT_FILES)
format-check: deps
	@clang-format --dry-run --Werror $(FORMAT_FILES) 2>&1 | grep -E "^[^ ].*: (error|warning)" | cut -d: -f1 | sort -u | \
	  { files=$$(cat); if [ -n "$$files" ]; then echo "format-check: not formatted (run make format):"; echo "$$files"; exit 1; fi; }

clean:
	rm -rf $(BUILD) build-fuzz build-sanitize
