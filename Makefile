# Drives CMake. `make check` and `make demo` first install what is missing
# (scripts/deps.sh), so both work on a fresh Debian machine.
PRESET ?= dev
BUILD  := build/$(PRESET)
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps configure build check demo bench fuzz stress install package clean

all: build

deps:
	@sh scripts/deps.sh

configure: deps
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

check: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 300

demo: build
	$(BUILD)/examples/prefork_demo config/example.yaml

bench: build
	$(BUILD)/bench/bench_hotpath
	$(BUILD)/bench/bench_table $(BUILD)/cbctl/cbctl

FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j$(JOBS)
	sh tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

stress: build
	$(BUILD)/tests/killstorm --kills 10000 --workers 8 --max-seconds 1800

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

package: build
	cd $(BUILD) && cpack -B $(CURDIR)/build/packages
	@ls build/packages/*.deb

clean:
	rm -rf build
