# The two commands a newcomer needs: `make run` and `make test`.
# Both install missing Debian packages first (scripts/install-deps), then build.
BUILD ?= build
JOBS ?= $(shell nproc)
STREAMSCORE = $(BUILD)/streamscore

.PHONY: all deps build run test bench clean

all: build

deps:
	@bash scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The main job on embedded defaults: the daemon with the built-in generator
# (1M events over 45 simulated days) into RocksDB under ./data, then a summary with
# the top customers. The demo starts from a fresh state each time.
run: build
	@rm -rf data/state data/dead-letter.jsonl
	$(STREAMSCORE) run --set source.kind=generator --set source.events=1000000 \
	  --set state.path=data/state --set dead_letter.path=data/dead-letter.jsonl

test: build
	@cd $(BUILD) && ctest --output-on-failure -j 2

bench: build
	@bash bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD)
