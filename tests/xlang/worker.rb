# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# The Ruby worker of the cross-language test (test_across_languages.py):
#
#   ruby worker.rb SEGMENT BREAKER CALLS success|failure
#
# opens BREAKER with Cbshm.open_breaker (the library CBSHM_LIBRARY names),
# says "ready", waits for a line on stdin (the test's "go"), makes CALLS calls through breaker.run { } that each return or raise
# DownstreamDown (the breaker's failure exception), and prints
# "ok=N failed=N rejected=N". Exits 2 when the breaker runs unguarded: a
# cross-language test must never pass on fail-open.

$LOAD_PATH.unshift File.expand_path("../../bindings/ruby/lib", __dir__)
require "cbshm"

class DownstreamDown < StandardError; end

unless ARGV.size == 4 && ARGV[2].match?(/\A[0-9]+\z/) && %w[success failure].include?(ARGV[3])
  warn "usage: worker.rb SEGMENT BREAKER CALLS success|failure"
  exit 2
end
segment, name, calls, outcome = ARGV[0], ARGV[1], Integer(ARGV[2], 10), ARGV[3]

breaker = Cbshm.open_breaker(segment, name, failure_exceptions: [DownstreamDown])
if (err = breaker.error)
  warn "worker.rb: breaker #{name} unguarded: #{err.message}"
  exit 2
end

puts "ready" # then the test's "go": every worker starts at once
$stdout.flush
$stdin.gets
counts = { ok: 0, failed: 0, rejected: 0 }
calls.times do
  breaker.run { raise DownstreamDown, "down" if outcome == "failure" }
  counts[:ok] += 1
rescue DownstreamDown
  counts[:failed] += 1
rescue Cbshm::OpenCircuitError
  counts[:rejected] += 1
end
puts "ok=#{counts[:ok]} failed=#{counts[:failed]} rejected=#{counts[:rejected]}"
