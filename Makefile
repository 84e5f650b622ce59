# SPDX-License-Identifier: MIT
# Drives CMake. `make`, `make install` and `make package` build and install
# and never run apt-get. `make deps` installs the Debian packages the build
# and the tests need (scripts/deps.sh); `make check`, `make demo` and
# `make fuzz` run it before they configure, so on a fresh Debian machine
# the README's two commands do all the set-up. CBSHM_NO_DEPS=1 skips it.
PRESET ?= dev
BUILD  := build/$(PRESET)
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
DEPS   := CBSHM_NO_DEPS='$(CBSHM_NO_DEPS)' sh scripts/deps.sh

# The packages are built from a tree of their own, configured for /usr
# (so GNUInstallDirs picks the multiarch library directory) with Debian's
# hardening flags and without the tests: cmake/package-cache.cmake.
PACKAGE_BUILD ?= build/package-tree
PACKAGES      ?= build/packages

.PHONY: all deps configure build check demo bench fleet-bench fuzz stress install package clean

all: build

deps:
	@$(DEPS)

# Only the goals that promise a ready machine install packages; as a
# prerequisite of configure, deps comes first under make -j too.
configure: $(if $(filter check demo,$(MAKECMDGOALS)),deps)
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

# The fleet's Redis traffic for 10, 1,000 and 10,000 hosts x 100 breakers
# (bench/fleet_sim.c): it starts its own redis-server on a free loopback
# port and stops it after; about a minute. FLEET_SIM_ARGS adds options.
fleet-bench: build
	$(BUILD)/bench/fleet_sim --redis-server /usr/bin/redis-server --hosts 10,1000,10000 $(FLEET_SIM_ARGS)

FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j$(JOBS)
	sh tests/fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

stress: build
	$(BUILD)/tests/killstorm --kills 10000 --workers 8 --max-seconds 1800

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

package:
	@cmake -S . -B $(PACKAGE_BUILD) -C cmake/package-cache.cmake >/dev/null
	@cmake --build $(PACKAGE_BUILD) -j$(JOBS)
	@cd $(PACKAGE_BUILD) && cpack -B $(abspath $(PACKAGES)) >/dev/null
	@rm -rf $(PACKAGES)/_CPack_Packages
	@ls $(PACKAGES)/*.deb

clean:
	rm -rf build
