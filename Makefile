# Thin wrapper over CMake: `make run` and `make test` install what is missing, build and go.
BUILD      ?= build
TEST_BUILD ?= build-test
BENCH_BUILD ?= build-bench
JOBS       ?= $(shell nproc)
LISTEN     ?= 127.0.0.1:50051
HTTP       ?= 127.0.0.1:8080
ADMIN      ?= 127.0.0.1:8081
FLOWS      ?= examples/flows.json
STORE      ?= memory:
FUZZ_SECONDS ?= 300

.PHONY: all build run test bench gen deps clean fuzz

all: build

deps:
	scripts/install-deps.sh build

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAF_TESTS=OFF >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Starts appflowd in the foreground with the demo flows (gRPC on LISTEN, AWS REST-JSON on
# HTTP, the emulator control API on ADMIN, flows kept in STORE); Ctrl-C stops it.
run: build
	$(BUILD)/appflowd --grpc-listen $(LISTEN) --http-listen $(HTTP) --admin-listen $(ADMIN) \
	  --flows $(FLOWS) --store '$(STORE)'

# Every test, under AddressSanitizer + UndefinedBehaviorSanitizer, then the concurrency tests
# under ThreadSanitizer. The optimised build comes first: some warnings (and so -Werror
# failures) only show with optimisation on.
test: build
	@echo "make test: test packages and the ASan+UBSan build from $$(date -u +%T)"
	scripts/install-deps.sh test
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DAF_SANITIZE=ON >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	@echo "make test: ctest from $$(date -u +%T)"
	cd $(TEST_BUILD) && ctest --output-on-failure --timeout 600 -j $(JOBS)
	@echo "make test: ThreadSanitizer from $$(date -u +%T)"
	JOBS=$(JOBS) tests/tsan/run.sh
	@echo "make test: fuzzing from $$(date -u +%T)"
	JOBS=$(JOBS) fuzz/run.sh 20
	@echo "make test: done at $$(date -u +%T)"

# Each fuzz target (fuzz/) for FUZZ_SECONDS, built with clang and libFuzzer in build-fuzz/;
# make test runs the same for 20 s each. A crash's input is saved under build-fuzz/crashes/.
fuzz:
	scripts/install-deps.sh test && fuzz/run.sh $(FUZZ_SECONDS)

# Every benchmark in Release mode, on loopback, one after another (not part of make test; takes
# several minutes). BENCH_ARGS=--quick for short runs. Results: bench/results/, bench/RESULTS.md.
bench:
	scripts/install-deps.sh bench
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DAF_TESTS=OFF -DAF_BENCH=ON >/dev/null
	cmake --build $(BENCH_BUILD) -j $(JOBS)
	/usr/bin/python3 bench/run.py $(BENCH_BUILD) $(BENCH_ARGS)

# Regenerates gen/ from proto/: run it after changing a proto, and commit the result
# (the test lint.gen_fresh fails until you do).
gen: deps
	scripts/gen.sh gen

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(BENCH_BUILD) build-tsan build-fuzz
