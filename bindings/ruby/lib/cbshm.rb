# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# libcbshm for Ruby: circuit breakers that every worker process on the
# host shares (Unicorn, Puma in cluster mode, any prefork server), over
# the C library with Fiddle (Ruby's standard library: no extension to
# build).
#
#   require "cbshm"
#
#   payments = Cbshm.open_breaker("/cbshm", "payments-api",
#                                 failure_exceptions: [SystemCallError, Timeout::Error])
#   begin
#     payments.acquire { post_payment(order) }
#   rescue Cbshm::OpenCircuitError => e
#     [503, { "Retry-After" => e.retry_after.ceil.to_s }, ["try later"]]
#   end
#
#   t = payments.allow          # evented code: admit now, record later
#   ... t.success / t.failure / t.ignored, exactly once
#
# A breaker with a bulkhead (max_concurrent_calls) refuses a call past
# its limit with Cbshm::BulkheadFullError, an OpenCircuitError of reason
# :bulkhead_full; with max_wait it blocks the calling thread (not the
# others: the GVL is let go) up to that long for a slot.
#
# Outcomes: a block that returns is a success (unless failure_if says
# otherwise); an exception in failure_exceptions is a failure; any other
# is ignored and propagates unchanged.
#
# Handles survive fork(): open breakers in the master (preload_app) or in
# each worker (after_fork, on_worker_boot); both work. Fail-open as in C:
# open_breaker never raises for a missing or foreign segment or an
# unknown breaker - the breaker runs blocks unguarded and says why in
# #error - unless opened with fail_closed: true. Deploy order does not
# matter: such a breaker attaches by itself (at most every 0.25 s) once
# its segment and breaker appear.
#
# The library is the one CBSHM_LIBRARY names, else the installed
# libcbshm.so.1 (the libcbshm1 package).
require_relative "cbshm/version"
require_relative "cbshm/native"
require_relative "cbshm/errors"
require_relative "cbshm/snapshot"
require_relative "cbshm/events"
require_relative "cbshm/breaker"
require_relative "cbshm/segment"
require_relative "cbshm/provision"

module Cbshm
  # The C library's version string.
  def self.version
    Native.cbshm_version.to_s
  end

  # The library's clock (CLOCK_MONOTONIC ns): what Snapshot times are on.
  def self.now
    Native.cbshm_now_ns
  end
end
