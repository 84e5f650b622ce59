# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# The Ruby binding as a gem: `gem build cbshm.gemspec`. Pure Ruby over
# Fiddle (Ruby's standard library), so it builds no extension and needs
# nothing at run time but libcbshm.so.1 (the libcbshm1 package, or
# CBSHM_LIBRARY). The version is the C library's.
require_relative "lib/cbshm/version"

Gem::Specification.new do |s|
  s.name = "cbshm"
  s.version = Cbshm::VERSION
  s.summary = "Host-wide circuit breakers in POSIX shared memory, for prefork servers " \
              "(Unicorn, Puma cluster mode)"
  s.description = "A Fiddle binding of libcbshm: one breaker table per host that every " \
                  "worker process shares, with a Semian-like API (acquire, OpenCircuitError)."
  s.authors = ["libcbshm maintainers"]
  s.license = "MIT"
  s.files = Dir[File.join(__dir__, "lib", "**", "*.rb")].map { |f| f.delete_prefix("#{__dir__}/") }
  s.require_paths = ["lib"]
  s.required_ruby_version = ">= 3.0"
  s.requirements << "libcbshm.so.1 (Debian: libcbshm1)"
  s.add_runtime_dependency "fiddle", ">= 1.0"
end
