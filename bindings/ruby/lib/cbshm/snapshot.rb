# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Cbshm
  # One breaker as the library copied it (cbshm_snapshot): consistent,
  # from one moment, frozen. Counters since the breaker was created or
  # reset; *_ns times on CLOCK_MONOTONIC (Cbshm.now); #state and #mode are
  # symbols (:closed, :open, :half_open; :normal, :forced_open,
  # :forced_closed, :disabled); #settings a Hash by the JSON key of the
  # README's table (:open_timeout_ms => 30000) in the C struct's units.
  # The bulkhead_* figures are 0 without a bulkhead: the limit in force
  # (a concurrency_quota's, from the live workers), slots held now, calls
  # it rejected (in #rejections too), slots taken back from dead holders
  # or after slot_timeout, calls that waited (max_wait) and got in.
  Snapshot = Struct.new(:name, :index, :generation, :state, :mode, :settings,
                        *Native::SNAPSHOT_FIGURES.map(&:first), keyword_init: true) do
    # When the copy was taken (CLOCK_MONOTONIC ns).
    def taken_ns
      last_transition_ns + time_in_state_ns
    end

    # Seconds, from when the copy was taken, until an open breaker admits
    # a probe; 0.0 when it is not open or the time has come.
    def retry_after
      return 0.0 if state != :open || open_until_ns <= taken_ns

      (open_until_ns - taken_ns) / 1e9
    end

    def self.from_c(ptr)
      name, index, generation, state, mode, _settings, *figures =
        ptr[0, Native::Snapshot.size].unpack(Native::SNAPSHOT_PACK)
      name = name.force_encoding(Encoding::UTF_8).scrub
      new(name: name.freeze, index: index, generation: generation,
          state: member(Native::STATES, state, "breaker #{name}: state"),
          mode: member(Native::MODES, mode, "breaker #{name}: mode"),
          settings: Native.setting_values(ptr + 80).freeze,
          **Native::SNAPSHOT_FIGURES.map(&:first).zip(figures).to_h).freeze
    end

    # Values come from shared memory that a worker can write: one outside
    # the enum is a scribbled segment, said as the library says it.
    def self.member(table, value, what)
      raise Error.new(Native::ECORRUPT, "#{what}: value #{value}") unless value.between?(0, table.size - 1)

      table[value]
    end
  end
end
