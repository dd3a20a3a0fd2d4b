# herald: the commands a developer and CI use.
#   make run            install deps, build Release, serve on the embedded defaults
#   make test           install deps, build, run every test through ctest
#   make build          build only (build/herald)
#   make test-sanitize  ASan+UBSan build of the unit tests, run them
#   make fuzz           build the libFuzzer targets with clang, run each for FUZZ_SECONDS
#   make bench          run the benchmarks (see docs/benchmarks.md)
#   make format         clang-format every source file

BUILD_DIR     ?= build
JOBS          ?= 2
BUILD_TYPE    ?= Release
FUZZ_SECONDS  ?= 60
SERVE_ARGS    ?= --demo
GENERATOR     := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
CTEST_ARGS    ?=

.PHONY: all deps configure build run test test-sanitize fuzz bench format clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: $(BUILD_DIR)/CMakeCache.txt

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The demo is on by default; `make run SERVE_ARGS=` serves without it.
run: deps build
	@echo "herald: serving with the demo (simulated devices and campaigns); without it: make run SERVE_ARGS="
	./$(BUILD_DIR)/herald serve $(SERVE_ARGS)

test: deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

test-sanitize: deps
	cmake -S . -B build-sanitize $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_SANITIZE=ON
	cmake --build build-sanitize -j $(JOBS)
	cd build-sanitize && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) -L unit

fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B build-fuzz $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target mqtt_codec_fuzz
	rm -rf build-fuzz/corpus-mqtt && cp -r tests/fuzz/mqtt_codec_corpus build-fuzz/corpus-mqtt
	./build-fuzz/src/mqtt/mqtt_codec_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/corpus-mqtt
	cmake --build build-fuzz -j $(JOBS) --target segment_fuzz
	rm -rf build-fuzz/corpus-segment && cp -r tests/fuzz/segment_corpus build-fuzz/corpus-segment
	./build-fuzz/src/profile/segment_fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/corpus-segment

bench: deps build
	bash bench/mqtt_vs_mosquitto.sh
	bash bench/ingest_vs_redis.sh

format:
	find src bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) build-sanitize build-fuzz
