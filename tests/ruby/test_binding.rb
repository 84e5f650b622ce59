# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# Unit tests of the Ruby binding (minitest, Debian's ruby-minitest), run
# by ctest with CBSHM_LIBRARY set to the build's libcbshm.so.1.

$LOAD_PATH.unshift File.expand_path("../../bindings/ruby/lib", __dir__)
require "minitest/autorun"
require "minitest/mock"
require "rbconfig"
require "pathname"
require "tempfile"
require "cbshm"

class DownstreamDown < StandardError; end

module Fixture
  YAML = <<~Y
    breakers:
      - name: api
        failure_threshold: 3
        open_timeout: 30s
      - name: quick
        failure_threshold: 1
        open_timeout: 200ms
  Y

  @serial = 0
  def self.next_name
    @serial += 1
    "/cbshm-rb-#{Process.pid}-#{@serial}"
  end

  def setup
    @seg = Fixture.next_name
    assert_equal 3, Cbshm.apply(YAML, segment: @seg) # created, two breakers added
    @segment = Cbshm::Segment.new(@seg)
    @api = @segment.breaker("api", failure_exceptions: [DownstreamDown])
  end

  def teardown
    @api.close
    @segment.close
    Cbshm.destroy(@seg)
  end

  def down
    raise DownstreamDown, "refused"
  end

  def trip(breaker = @api, times = 3)
    times.times { assert_raises(DownstreamDown) { breaker.acquire { down } } }
  end
end

class TestCalls < Minitest::Test
  include Fixture

  def test_acquire_returns_the_blocks_value_and_counts_a_success
    assert_equal 5, @api.acquire { 2 + 3 }
    assert_equal 6, @api.run { 6 }
    snap = @api.snapshot
    assert_equal 2, snap.successes
    assert_equal :closed, snap.state
    assert_equal :closed, @api.state
  end

  def test_failure_exceptions_count_and_others_are_ignored_and_propagate
    assert_raises(DownstreamDown) { @api.acquire { down } }
    assert_raises(KeyError) { @api.acquire { raise KeyError, "not a downstream problem" } }
    assert_raises(Interrupt) { @api.acquire { raise Interrupt } }
    snap = @api.snapshot
    assert_equal [1, 2, 0], [snap.failures, snap.ignored, snap.successes]
  end

  def test_a_block_left_by_throw_or_break_is_recorded_once_as_ignored
    catch(:out) { @api.acquire { throw :out } }
    [1].each { @api.acquire { break } }
    assert_equal [2, 0, 0], [@api.snapshot.ignored, @api.snapshot.successes, @api.snapshot.failures]
  end

  def test_failure_if_judges_values
    b = @segment.breaker("api", failure_if: ->(status) { status >= 500 })
    b.acquire { 503 }
    b.acquire { 200 }
    assert_equal [1, 1], [b.snapshot.failures, b.snapshot.successes]
    b.close
  end

  def test_failure_exceptions_must_be_classes_or_modules
    # "IOError" raised TypeError from inside acquire, in place of the
    # block's IOError, at its first exception.
    ["IOError", nil, :timeout].each do |bad|
      e = assert_raises(ArgumentError) { @segment.breaker("quick", failure_exceptions: [bad]) }
      assert_match(/failure_exceptions must be classes or modules, not #{Regexp.escape(bad.inspect)}/,
                   e.message)
      assert_raises(ArgumentError) { Cbshm.open_breaker(@seg, "quick", failure_exceptions: [bad]) }
    end
    b = @segment.breaker("quick", failure_exceptions: [Comparable, DownstreamDown])
    assert_raises(DownstreamDown) { b.acquire { down } }
    assert_equal 1, b.snapshot.failures
    b.close
  end

  def test_acquire_needs_a_block
    e = assert_raises(ArgumentError) { @api.acquire }
    assert_match(/breaker api: acquire needs a block/, e.message)
  end

  def test_a_tripped_breaker_raises_open_circuit_without_running_the_block
    trip
    ran = false
    e = assert_raises(Cbshm::OpenCircuitError) { @api.acquire { ran = true } }
    refute ran, "the block ran in an open breaker"
    assert_equal "api", e.name
    assert_equal :open, e.reason
    assert_in_delta 30.0, e.retry_after, 1.0
    assert_equal(-30_800, e.code)
    assert_equal "CBSHM_EREJECTED", e.errname
    assert_equal "breaker api: call rejected by the circuit breaker", e.message
    assert_kind_of Cbshm::Error, e
    snap = @api.snapshot
    assert_equal [:open, 1, 1, 3], [snap.state, snap.trips, snap.rejections, snap.failures]
    assert_in_delta 30.0, snap.retry_after, 1.0
  end

  def test_an_open_period_ends_with_one_probe_that_closes_on_success
    quick = @segment.breaker("quick", failure_exceptions: [DownstreamDown])
    trip(quick, 1)
    assert_raises(Cbshm::OpenCircuitError) { quick.acquire { :no } }
    sleep 0.25
    probe = quick.allow # the one probe of this open period
    e = assert_raises(Cbshm::OpenCircuitError) { quick.acquire { :no } }
    assert_equal :probes_busy, e.reason
    assert_equal :half_open, quick.state
    probe.success
    assert_equal :closed, quick.state
    quick.close
  end

  def test_a_failure_with_retry_after_opens_for_that_long
    t = @api.allow
    t.failure(retry_after: 120)
    e = assert_raises(Cbshm::OpenCircuitError) { @api.acquire { :no } }
    assert_in_delta 120.0, e.retry_after, 2.0
  end

  def test_modes_and_reset
    @segment.set_mode("api", :forced_open)
    e = assert_raises(Cbshm::OpenCircuitError) { @api.acquire { :no } }
    assert_equal :forced_open, e.reason
    assert_equal 0.0, e.retry_after
    @segment.set_mode("api", :normal)
    trip
    @segment.reset("api")
    assert_equal [:closed, 0], [@api.state, @api.snapshot.failures]
    assert_raises(ArgumentError) { @segment.set_mode("api", :sideways) }
  end
end

class TestTickets < Minitest::Test
  include Fixture

  def test_each_outcome_is_recorded_exactly_once
    @api.allow.success
    @api.allow.failure
    @api.allow.ignored
    @api.allow.success(duration: 0.01)
    snap = @api.snapshot
    assert_equal [2, 1, 1], [snap.successes, snap.failures, snap.ignored]
    t = @api.allow
    t.success
    assert t.recorded?
    e = assert_raises(Cbshm::Error) { t.failure }
    assert_equal "CBSHM_EINVAL", e.errname
    assert_match(/ticket recorded twice/, e.message)
    assert_equal [3, 1], [@api.snapshot.successes, @api.snapshot.failures]
    assert_raises(ArgumentError) { @api.allow.record(:maybe) }
  end

  def test_a_bad_duration_leaves_the_ticket_to_be_recorded
    t = @api.allow
    [Float::NAN, "0.5", nil.to_a, Complex(1, 1)].each do |bad|
      e = assert_raises(ArgumentError) { t.success(duration: bad) }
      assert_match(/duration must be a number of seconds/, e.message)
      assert_raises(ArgumentError) { t.failure(retry_after: bad) }
    end
    refute t.recorded?
    assert_equal 0, @api.snapshot.requests
    t.success(duration: 0.01)
    assert_equal 1, @api.snapshot.successes
  end

  def test_durations_past_what_uint64_holds_are_its_most
    seg = Fixture.next_name
    Cbshm.apply("breakers:\n  - name: slow\n    slow_call_duration: 1s\n", segment: seg)
    s = Cbshm::Segment.new(seg)
    b = s.breaker("slow")
    b.allow.success(duration: Float::INFINITY) # FloatDomainError, the ticket spent
    b.allow.success(duration: 1e30) # RangeError from Fiddle, the ticket spent
    assert_equal [2, 2], [b.snapshot.successes, b.snapshot.slow_calls]
    b.allow.failure(retry_after: Float::INFINITY)
    e = assert_raises(Cbshm::OpenCircuitError) { b.allow }
    assert_in_delta 86_400.0, e.retry_after, 5.0 # open_timeout_max
  ensure
    b&.close
    s&.close
    Cbshm.destroy(seg)
  end

  def test_an_open_breaker_refuses_a_ticket
    trip
    assert_raises(Cbshm::OpenCircuitError) { @api.allow }
  end
end

class TestSnapshot < Minitest::Test
  include Fixture

  def test_a_snapshot_is_a_frozen_struct_of_the_counters_and_settings
    @api.acquire { :ok }
    snap = @api.snapshot
    assert_kind_of Cbshm::Snapshot, snap
    assert snap.frozen?
    assert_equal "api", snap.name
    assert_equal :normal, snap.mode
    assert_equal 3, snap.settings[:failure_threshold]
    assert_equal 30_000, snap.settings[:open_timeout_ms]
    assert_equal 1, snap.settings[:half_open_max_calls]
    assert_equal 1, snap.requests
    members = %i[name index generation state mode settings requests successes failures ignored
                 rejections trips probes_reclaimed slow_calls consecutive_failures
                 half_open_successes probes_in_flight failing_workers open_until_ns
                 last_transition_ns time_in_state_ns current_open_ms window_calls
                 window_failures window_slow_calls window_failure_rate window_slow_rate
                 mode_until_ns bulkhead_limit bulkhead_in_flight bulkhead_rejections
                 bulkhead_reclaimed bulkhead_waits mode_cause]
    assert_equal members, Cbshm::Snapshot.members
    assert_operator snap.taken_ns, :<=, Cbshm.now
    assert_equal 0.0, snap.retry_after
    assert_equal snap.to_h, @segment.snapshot("api").to_h.merge(time_in_state_ns: snap.time_in_state_ns)
  end

  def test_a_scribbled_state_runs_blocks_unguarded_and_says_corrupt
    # State 3 in the breaker's control word (cbshm.h has 0, 1, 2): the
    # block runs (fail-open) and #error says why; #state raises rather
    # than say nil, which means unguarded. The C library rejected the call
    # as if open, with no error, and #state was nil.
    ctl_at = 4096 + @segment.snapshot("api").index * slot_bytes
    File.open("/dev/shm#{@seg}", "r+b") do |f|
      f.seek(ctl_at)
      ctl = f.read(8).unpack1("Q<")
      f.seek(ctl_at)
      f.write([(ctl & ~3) | 3].pack("Q<"))
    end
    assert_equal :ran, @api.acquire { :ran }
    assert_equal "CBSHM_ECORRUPT", @api.error&.errname
    e = assert_raises(Cbshm::Error) { @api.state }
    assert_equal "breaker api: state: value 3: segment is corrupt", e.message
  end

  # The header's slot_bytes (layout.h: magic 8, layout_version 4,
  # header_bytes 4, abi_fingerprint 8, segment_bytes 8, capacity 4, then it).
  def slot_bytes
    File.binread("/dev/shm#{@seg}", 40).unpack1("L<", offset: 36)
  end

  def test_a_snapshot_of_no_such_breaker_raises
    e = assert_raises(Cbshm::Error) { @segment.snapshot("nope") }
    assert_equal "CBSHM_ENOBREAKER", e.errname
    assert_equal "breaker nope: no such breaker", e.message
  end
end

# max_concurrent_calls: calls in flight host-wide, at most; a call past it
# is refused as the breaker's other refusals are, with its own reason.
class TestBulkhead < Minitest::Test
  YAML = <<~Y
    breakers:
      - name: pool
        max_concurrent_calls: 2
      - name: patient
        max_concurrent_calls: 1
        max_wait: 5s
      - name: plain
  Y

  def setup
    @seg = Fixture.next_name
    Cbshm.apply(YAML, segment: @seg)
    @segment = Cbshm::Segment.new(@seg)
    @pool = @segment.breaker("pool")
  end

  def teardown
    @pool.close
    @segment.close
    Cbshm.destroy(@seg)
  end

  def test_a_full_bulkhead_raises_bulkhead_full_until_a_slot_is_given_back
    held = @pool.allow
    ran = false
    e = nil
    snap = @pool.acquire do # the second call in flight, as a block
      e = assert_raises(Cbshm::BulkheadFullError) { @pool.acquire { ran = true } }
      @pool.snapshot
    end
    refute ran, "the block ran past the bulkhead's limit"
    assert_kind_of Cbshm::OpenCircuitError, e # rescue OpenCircuitError catches it
    assert_equal ["pool", :bulkhead_full, 0.0, "CBSHM_EREJECTED"],
                 [e.name, e.reason, e.retry_after, e.errname]
    assert_equal "breaker pool: call rejected by the circuit breaker", e.message
    assert_equal [2, 2, 1, 1], [snap.bulkhead_limit, snap.bulkhead_in_flight, snap.bulkhead_rejections,
                                snap.rejections]
    assert_equal 2, snap.settings[:max_concurrent_calls]
    assert_equal 7, @pool.acquire { 7 } # the block gave its slot back
    held.success
    snap = @pool.snapshot
    assert_equal [0, 1, 3], [snap.bulkhead_in_flight, snap.bulkhead_rejections, snap.successes]
  end

  def test_a_breaker_without_a_bulkhead_shows_zero_figures
    snap = @segment.snapshot("plain")
    assert_equal [0, 0, 0, 0, 0], [snap.bulkhead_limit, snap.bulkhead_in_flight, snap.bulkhead_rejections,
                                   snap.bulkhead_reclaimed, snap.bulkhead_waits]
  end

  def test_with_max_wait_a_call_waits_for_a_slot_another_thread_gives_back
    patient = @segment.breaker("patient")
    held = patient.allow
    # The waiting call sleeps in the library without the GVL: the other
    # thread runs and gives the slot back.
    giver = Thread.new do
      sleep 0.2
      held.success
    end
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_equal :in, patient.acquire { :in }
    waited = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
    giver.join # the slot goes back before its success is counted
    assert_operator waited, :>, 0.15
    assert_operator waited, :<, 4
    snap = patient.snapshot
    assert_equal [1, 0, 2], [snap.bulkhead_waits, snap.bulkhead_rejections, snap.successes]
  ensure
    patient&.close
  end

  def in_flight
    @pool.snapshot.bulkhead_in_flight
  end

  # Semian releases its ticket in an ensure: so here, whatever leaves the block.
  def test_whatever_leaves_a_block_gives_its_slot_back
    leavers = {
      "StandardError" => -> { raise "down" },
      "Interrupt" => -> { raise Interrupt },
      "SystemExit" => -> { exit 3 },
      "throw" => -> { throw :out },
      "Timeout::Error" => -> { Timeout.timeout(0.01) { sleep 1 } }
    }
    leavers.each do |what, leave|
      catch(:out) do
        @pool.acquire { leave.call }
      rescue Exception # rubocop:disable Lint/RescueException -- each one, on purpose
        nil
      end
      assert_equal 0, in_flight, what
    end
    @pool.acquire { break }
    killed = Thread.new { @pool.acquire { sleep 30 } }
    sleep 0.05 until in_flight == 1
    killed.kill.join
    assert_equal 0, in_flight, "break, then Thread#kill"
  end

  # The child's copy of the parent's ticket is the parent's call, still
  # running: a child that leaves the block (fork without a block goes on
  # through the parent's frames) records nothing for it.
  def test_a_forked_child_leaving_a_block_does_not_give_the_parents_slot_back
    pid = :parent
    begin
      @pool.acquire do
        pid = fork
        next if pid.nil? # the child leaves the block

        Process.wait(pid)
        assert_equal 1, in_flight
        assert_equal 0, @pool.snapshot.successes
      end
    ensure
      exit!(0) if pid.nil?
    end
    assert_equal [0, 1], [in_flight, @pool.snapshot.successes]
  end

  def test_a_bulkhead_that_fills_is_an_event_of_its_own_kind
    heard = []
    @segment.on_event(kinds: [:bulkhead]) { |ev| heard << ev }
    @segment.on_state_change { |ev| heard << ev } # hears no bulkhead event
    held = @pool.allow
    second = @pool.allow
    assert_raises(Cbshm::BulkheadFullError) { @pool.allow }
    held.success
    second.success
    events = @segment.events.to_a
    assert_equal [[:bulkhead, "pool", :admitting, :full, "bulkhead"]],
                 events.map { |ev| [ev.kind, ev.name, ev.old, ev.new, ev.cause] }
    assert_equal 1, @segment.poll_events
    assert_equal events, heard
  end
end

class TestFork < Minitest::Test
  include Fixture

  def test_a_handle_opened_before_fork_works_in_the_child
    pid = fork do
      3.times do
        @api.acquire { down }
      rescue DownstreamDown
        nil
      end
      exit!(@api.state == :open ? 0 : 1)
    end
    _, status = Process.wait2(pid)
    assert status.success?, "the child saw no trip"
    # The child's failures tripped the breaker the parent holds.
    assert_equal [:open, 3], [@api.state, @api.snapshot.failures]
    assert_raises(Cbshm::OpenCircuitError) { @api.acquire { :no } }
  end

  def test_a_breaker_from_open_breaker_before_fork_is_shared_with_the_children
    b = Cbshm.open_breaker(@seg, "api", failure_exceptions: [DownstreamDown])
    pids = Array.new(3) do
      fork do
        b.acquire { down }
      rescue DownstreamDown
        exit!(0)
      end
    end
    pids.each { |pid| assert Process.wait2(pid)[1].success? }
    assert_equal [:open, 1], [b.state, b.snapshot.trips]
    b.close
  end
end

class TestEvents < Minitest::Test
  include Fixture

  def test_events_are_the_rings_records_in_order_with_kinds_old_new_and_cause
    before = Time.now.to_f
    trip
    @segment.set_mode("api", :forced_closed)
    @segment.reset("api")
    events = @segment.events.to_a
    assert_equal [[:state, "api", :closed, :open, "failures"],
                  [:mode, "api", :normal, :forced_closed, "operator"],
                  [:reset, "api", :open, :closed, "operator"]],
                 events.map { |e| [e.kind, e.name, e.old, e.new, e.cause] }
    assert_equal [0, 1, 2], events.map(&:seq)
    assert(events.all? { |e| e.pid == Process.pid && e.frozen? && e.is_a?(Cbshm::Event) })
    assert_operator events[0].wall_time, :>=, before - 0.02
    assert_operator events[0].wall_time, :<=, Time.now.to_f + 0.02
    # CLOCK_MONOTONIC itself: Cbshm.now, the coarse one, may lag it by a tick.
    assert_operator events[2].time_ns, :<=, Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
    assert_equal [2], @segment.events(start: 2).map(&:seq)
  end

  def test_start_now_reads_only_what_comes_next
    trip
    reader = @segment.events(start: :now)
    assert_equal [], reader.to_a
    assert_equal 1, reader.cursor
    @segment.reset("api")
    assert_equal [[:reset, 1]], reader.map { |e| [e.kind, e.seq] } # goes on from its cursor
  end

  def test_a_start_that_is_no_sequence_number_is_refused
    # Fiddle would cut 2**64 to 0 and read the ring from its oldest.
    [-1, 2**64, 2**64 - 1, 2**70, true, "now", "later", 1.5, nil].each do |start|
      e = assert_raises(ArgumentError) { @segment.events(start: start) }
      assert_match(/start must be a sequence number .* or :now, not #{Regexp.escape(start.inspect)}/, e.message)
    end
    assert_raises(ArgumentError) { @segment.events(follow: true, timeout: "5") }
  end

  def test_follow_waits_for_the_next_event_and_gives_up_after_its_timeout
    reader = @segment.events(start: :now, follow: true, timeout: 5)
    writer = Thread.new do
      sleep 0.2
      3.times { @api.allow.failure }
    end
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    e = reader.first
    writer.join
    assert_equal ["api", :open], [e.name, e.new]
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0, :>, 0.15
    quiet = @segment.events(start: :now, follow: true, timeout: 0.2)
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_equal [], quiet.to_a
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0, :>=, 0.2
  end

  def test_a_reader_that_falls_behind_the_ring_says_how_many_it_lost
    1100.times do # the ring keeps the last 1024
      @segment.set_mode("api", :forced_open)
      @segment.set_mode("api", :normal)
    end
    reader = @segment.events
    events = reader.to_a
    assert_equal 1024, events.size
    assert_equal 2200 - 1024, reader.lost
    assert_equal 2200 - 1024, events[0].seq
    assert_equal 0, reader.skipped
  end

  def test_a_scribbled_record_is_skipped_and_counted_not_a_wrong_symbol
    trip
    @segment.reset("api")
    # struct cbshm_header (layout.h): events_count at 92, the ring's
    # offset at 96; a record is 128 bytes, its `what` word (kind | from <<
    # 8 | to << 16 | cause << 24) at 24. Record 0 gets from = 3 (cbshm.h
    # has states 0..2), record 1 to = 9. (A kind past reset the library
    # reads as a state change itself.)
    File.open("/dev/shm#{@seg}", "r+b") do |f|
      ring = f.pread(8, 96).unpack1("Q<")
      f.pwrite([3].pack("C"), ring + 24 + 1)
      f.pwrite([9].pack("C"), ring + 128 + 24 + 2)
    end
    reader = @segment.events
    assert_equal [], reader.to_a
    assert_equal [2, 2], [reader.skipped, reader.cursor]
    heard = []
    @segment.on_event { |e| heard << e }
    @segment.set_mode("api", :disabled)
    assert_equal 1, @segment.poll_events
    assert_equal [[:mode, :normal, :disabled]], heard.map { |e| [e.kind, e.old, e.new] }
  end
end

class TestListing < Minitest::Test
  include Fixture

  def test_breakers_lists_a_snapshot_of_each_in_table_order
    trip
    snaps = @segment.breakers
    assert_equal %w[api quick], snaps.map(&:name)
    assert(snaps.all? { |s| s.is_a?(Cbshm::Snapshot) && s.frozen? })
    assert_equal [:open, 3, 1], [snaps[0].state, snaps[0].failures, snaps[0].trips]
    assert_equal 1, snaps[1].settings[:failure_threshold]
    assert_in_delta 30.0, snaps[0].retry_after, 1.0
  end

  def test_a_scribbled_slot_raises_corrupt_with_the_other_snapshots
    ctl_at = 4096 + @segment.snapshot("api").index * slot_bytes
    File.open("/dev/shm#{@seg}", "r+b") do |f|
      ctl = f.pread(8, ctl_at).unpack1("Q<")
      f.pwrite([(ctl & ~3) | 3].pack("Q<"), ctl_at) # state 3
      e = assert_raises(Cbshm::Error) { @segment.breakers }
      assert_equal "CBSHM_ECORRUPT", e.errname
      assert_equal %w[quick], e.snapshots.map(&:name)
      f.pwrite([ctl].pack("Q<"), ctl_at)
    end
    assert_equal %w[api quick], @segment.breakers.map(&:name)
  end

  def test_an_exception_in_the_walk_stops_it_and_is_raised_not_swallowed
    # Raised through foreach's C frames it would skip the library's
    # clean-up; rescued and dropped, the listing came back short.
    seen = 0
    interrupted = lambda do |_ptr|
      seen += 1
      raise Interrupt
    end
    Cbshm::Snapshot.stub(:from_c, interrupted) do
      assert_raises(Interrupt) { @segment.breakers }
    end
    assert_equal 1, seen, "the walk went on after the exception"
    assert_equal 2, @segment.breakers.size
  end

  def test_an_exception_in_the_walk_does_not_leak_the_table_copy
    # Let through the C frames (Fiddle longjmps), it skipped foreach's
    # free of its copy of the table: some 15 MB over 3000 walks here.
    rss_kb = -> { File.read("/proc/self/status")[/VmRSS:\s+(\d+)/, 1].to_i }
    Cbshm::Snapshot.stub(:from_c, ->(_) { raise Interrupt }) do
      walk = lambda do |times|
        times.times do
          @segment.breakers
        rescue Interrupt
          nil
        end
      end
      walk.call(200)
      GC.start
      before = rss_kb.call
      walk.call(3000)
      GC.start
      assert_operator rss_kb.call - before, :<, 5000, "kB the process grew by over 3000 interrupted walks"
    end
  end

  def slot_bytes
    File.binread("/dev/shm#{@seg}", 40).unpack1("L<", offset: 36)
  end
end

class TestListeners < Minitest::Test
  include Fixture

  def test_on_state_change_hears_state_changes_and_resets_from_poll_events
    states = []
    modes = []
    @segment.on_state_change { |e| states << [e.kind, e.name, e.old, e.new] }
    @segment.on_event(kinds: [:mode]) { |e| modes << [e.old, e.new] }
    assert_equal 0, @segment.poll_events
    trip
    @segment.set_mode("api", :forced_closed)
    @segment.reset("api")
    assert_equal 3, @segment.poll_events
    assert_equal [[:state, "api", :closed, :open], [:reset, "api", :open, :closed]], states
    assert_equal [%i[normal forced_closed]], modes
    assert_equal 0, @segment.poll_events
  end

  def test_a_listener_hears_only_what_comes_after_it_is_added
    trip
    heard = []
    @segment.on_event { |e| heard << e.seq }
    @segment.reset("api")
    @segment.poll_events
    assert_equal [1], heard
  end

  def test_a_breaker_and_a_name_hear_only_their_own_changes
    api_heard = []
    quick_heard = []
    @api.on_state_change { |e| api_heard << e.name }
    @segment.on_event(name: "quick") { |e| quick_heard << e.kind }
    quick = @segment.breaker("quick", failure_exceptions: [DownstreamDown])
    trip(quick, 1)
    @segment.set_mode("quick", :disabled)
    trip
    @segment.poll_events
    assert_equal %w[api], api_heard
    assert_equal %i[state mode], quick_heard
    quick.close
    assert_raises(ArgumentError) { @segment.on_event(kinds: [:sideways]) { nil } }
    assert_raises(ArgumentError) { @segment.on_state_change }
  end

  def test_the_callable_returned_removes_the_listener
    heard = []
    remove = @segment.on_state_change { |e| heard << e.seq }
    @segment.on_event { |e| heard << -e.seq }
    trip
    @segment.poll_events
    remove.call
    remove.call # a second time: nothing left to remove
    @segment.reset("api")
    assert_equal 1, @segment.poll_events
    assert_equal [0, 0, -1], heard.sort_by(&:abs)
  end

  def test_a_raising_listener_is_warned_about_and_the_others_still_run
    heard = []
    @segment.on_state_change { raise "listener bug" }
    @segment.on_state_change { |e| heard << e.new }
    trip
    _, err = capture_io { assert_equal 1, @segment.poll_events }
    assert_match(/cbshm: listener .* failed on state event 0 of api: RuntimeError: listener bug/, err)
    assert_equal [:open], heard
  end

  def test_a_poll_that_fell_behind_the_ring_warns_how_many_events_were_lost
    heard = 0
    @segment.on_event { heard += 1 }
    1100.times do # the ring keeps the last 1024
      @segment.set_mode("api", :forced_open)
      @segment.set_mode("api", :normal)
    end
    _, err = capture_io { 16.times { @segment.poll_events } }
    assert_equal "cbshm: segment #{@seg}: 1176 events were overwritten before they were read\n", err
    assert_equal 1024, heard
  end

  def test_listen_polls_from_one_helper_thread_and_survives_a_raising_listener
    heard = Queue.new
    @segment.on_state_change { raise "listener bug" }
    @segment.on_state_change { |e| heard << [e.new, Thread.current.name] }
    @segment.listen(interval: 0.02)
    @segment.listen(interval: 0.02) # once: still one thread
    assert_equal 1, Thread.list.count { |t| t.name == "cbshm-listener" }
    _, err = capture_io do
      trip
      assert_equal [:open, "cbshm-listener"], pop_within(heard, 5)
      @segment.reset("api")
      assert_equal [:closed, "cbshm-listener"], pop_within(heard, 5)
    end
    assert_equal 2, err.scan("listener bug").size
    @segment.stop_listening
    assert_equal 0, Thread.list.count { |t| t.name == "cbshm-listener" && t.alive? }
  end

  def test_listeners_set_up_before_the_segment_hear_it_once_applied
    seg = Fixture.next_name
    late = Cbshm::Segment.new(seg, late: true)
    heard = Queue.new
    late.on_state_change { |e| heard << [e.name, e.new] }
    late.listen(interval: 0.02)
    reader = late.events(follow: true, timeout: 5)
    Cbshm.apply(Fixture::YAML, segment: seg)
    # Listeners hear what comes after the first poll that reads the
    # segment: wait for it here rather than guess how long the thread takes.
    attached = false
    50.times do
      late.poll_events
      attached = true
      break
    rescue Cbshm::Error, SystemCallError
      sleep 0.1
    end
    assert attached, "the late segment did not attach within 5 s"
    now = Cbshm::Segment.new(seg)
    api = now.breaker("api", failure_exceptions: [DownstreamDown])
    trip(api)
    assert_equal ["api", :open], pop_within(heard, 5)
    assert_equal %i[state open], reader.first.then { |e| [e.kind, e.new] }
    api.close
    now.close
    late.close
    Cbshm.destroy(seg)
  end

  def test_a_forked_child_runs_its_own_listener_thread
    # Ruby threads do not survive fork(): Process._fork starts the child's.
    @segment.on_state_change { nil }
    @segment.listen(interval: 0.02)
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      heard = Queue.new
      @segment.on_state_change { |e| heard << e.new }
      3.times { @api.allow.failure }
      writer.write(pop_within(heard, 5) == :open ? "y" : "n")
      exit!(0)
    end
    writer.close
    answer = reader.read
    Process.wait(pid)
    assert_equal "y", answer
  end

  def test_closing_the_segment_ends_its_listener_thread
    @segment.on_state_change { nil }
    @segment.listen(interval: 0.02)
    thread = Thread.list.find { |t| t.name == "cbshm-listener" }
    @api.close
    @segment.close
    refute thread.alive?
    @api = @segment = nil
  end

  def teardown
    if @segment
      super
    else
      Cbshm.destroy(@seg)
    end
  end

  # The queue's next item, or nil after `seconds` (Queue#pop(timeout:)
  # is Ruby 3.2's).
  def pop_within(queue, seconds)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    while queue.empty?
      return nil if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.01
    end
    queue.pop
  end
end

class TestFailOpen < Minitest::Test
  def test_a_missing_segment_runs_blocks_unguarded_and_says_why
    b = Cbshm.open_breaker(Fixture.next_name, "api")
    e = b.error
    assert_kind_of Cbshm::Error, e
    assert_equal "CBSHM_ENOSEG", e.errname
    assert_equal 7, b.acquire { 7 }
    t = b.allow
    t.failure # nothing to record, once
    assert_raises(Cbshm::Error) { t.failure }
    assert_nil b.state
    assert_nil b.snapshot
    b.close
  end

  def test_a_breaker_opened_before_its_segment_attaches_once_applied
    seg = Fixture.next_name
    b = Cbshm.open_breaker(seg, "api", failure_exceptions: [DownstreamDown])
    refute_nil b.error
    Cbshm.apply(Fixture::YAML, segment: seg)
    deadline = Time.now + 5
    sleep 0.05 while b.acquire { b.error } && Time.now < deadline
    assert_nil b.error
    3.times { assert_raises(DownstreamDown) { b.acquire { raise DownstreamDown } } }
    assert_raises(Cbshm::OpenCircuitError) { b.acquire { :no } }
    b.close
  ensure
    Cbshm.destroy(seg)
  end

  def test_fail_closed_raises_the_problem_instead_of_running_the_block
    b = Cbshm.open_breaker(Fixture.next_name, "api", fail_closed: true)
    ran = false
    e = assert_raises(Cbshm::Error) { b.acquire { ran = true } }
    refute ran
    assert_equal "CBSHM_ENOSEG", e.errname
    assert_raises(Cbshm::Error) { b.allow }
  end

  def test_an_unknown_breaker_in_an_existing_segment_is_unguarded_too
    seg = Fixture.next_name
    Cbshm.apply(Fixture::YAML, segment: seg)
    b = Cbshm.open_breaker(seg, "nope")
    assert_equal "CBSHM_ENOBREAKER", b.error.errname
    assert_equal :ran, b.acquire { :ran }
    b.close
  ensure
    Cbshm.destroy(seg)
  end

  def test_breakers_from_open_breaker_share_one_segment_per_name
    seg = Fixture.next_name
    Cbshm.apply(Fixture::YAML, segment: seg)
    a = Cbshm.open_breaker(seg, "api")
    q = Cbshm.open_breaker(seg, "quick")
    assert_same a.segment, q.segment
    a.close
    q.close
  ensure
    Cbshm.destroy(seg)
  end

  def test_a_closed_breaker_refuses_calls
    seg = Fixture.next_name
    Cbshm.apply(Fixture::YAML, segment: seg)
    b = Cbshm.open_breaker(seg, "api")
    b.close
    ran = false
    assert_raises(IOError) { b.acquire { ran = true } }
    refute ran
  ensure
    Cbshm.destroy(seg)
  end

  def test_closing_a_segment_with_open_breakers_raises_instead_of_crashing
    seg = Fixture.next_name
    Cbshm.apply(Fixture::YAML, segment: seg)
    s = Cbshm::Segment.new(seg)
    b = s.breaker("api")
    e = assert_raises(Cbshm::Error) { s.close }
    assert_match(/1 breaker still open \(api\)/, e.message)
    b.close
    s.close
    assert s.closed?
  ensure
    Cbshm.destroy(seg)
  end
end

class TestCollection < Minitest::Test
  include Fixture

  def mappings
    File.readlines("/proc/self/maps").count { |l| l.include?("/dev/shm#{@seg}") }
  end

  def drop_some(count)
    count.times { Cbshm::Segment.new(@seg).breaker("quick") }
  end

  # Ruby runs a finalizer that fires after a Fiddle call (when a busy
  # worker collects) where Monitor#synchronize raises ThreadError: every
  # dropped breaker and segment leaked its handle and mapping, and -w
  # printed "Exception in finalizer".
  def test_breakers_and_segments_collected_during_calls_are_released
    before = mappings
    drop_some(20)
    assert_equal before + 20, mappings
    warnings = Tempfile.new("stderr")
    saved = $stderr.dup
    $stderr.reopen(warnings)
    begin
      # No GC.start, which runs finalizers as a method would: the
      # collections the calls' own allocations bring.
      gcs = GC.count
      @api.acquire { :ok } while GC.count < gcs + 3
      20_000.times { @api.acquire { :ok } } # the deferred finalizers' turn
    ensure
      $stderr.reopen(saved)
    end
    Cbshm::Segment.new(@seg).close # the next open and close release what was found
    assert_equal 0, File.read(warnings.path).scan(/Exception in finalizer/).size, "finalizers that raised"
    assert_operator mappings, :<=, before + 2, "mappings still there: #{mappings - before}"
  ensure
    warnings&.close!
  end
end

class TestErrors < Minitest::Test
  def yaml_file(text)
    f = Tempfile.new(["breakers", ".yaml"])
    f.write(text)
    f.close
    f
  end

  def test_a_rejected_file_names_file_line_and_column
    f = yaml_file("breakers:\n  - name: api\n    open_timeout: 5\n")
    e = assert_raises(Cbshm::ConfigError) { Cbshm.apply(f.path, segment: Fixture.next_name) }
    assert_equal [f.path, 3, 19, "breakers[0].open_timeout"], [e.file, e.line, e.column, e.key]
    assert_equal "#{f.path}:3:19: breakers[0].open_timeout: duration '5' needs a unit " \
                 "(ms, s, m or h)", e.message
    assert_equal "CBSHM_ECONFIG", e.errname
  end

  def test_rejected_yaml_text_is_named_by_its_label
    e = assert_raises(Cbshm::ConfigError) { Cbshm.apply("breakers:\n  - nmae: api\n") }
    assert_equal ["<yaml>", 2], [e.file, e.line]
    assert_match(/\A<yaml>:2:\d+: /, e.message)
  end

  def test_apply_of_neither_a_path_nor_yaml_is_a_type_error
    e = assert_raises(TypeError) { Cbshm.apply(42) } # NoMethodError: undefined method `to_str'
    assert_equal "Cbshm.apply: a path or YAML text, not 42", e.message
  end

  # A count as it is, a share with the CBSHM_FLEET_SHARE bit over its
  # hundredths: the C struct's value.
  def test_a_snapshot_reports_fleet_open_hosts_as_a_count_or_a_share
    seg = Fixture.next_name
    Cbshm.apply("breakers:\n  - name: two\n    fleet_open_hosts: 2\n" \
                "  - name: third\n    fleet_open_hosts: 0.34\n", segment: seg)
    segment = Cbshm::Segment.new(seg)
    assert_equal 2, segment.snapshot("two").settings[:fleet_open_hosts]
    assert_equal 0x80000000 | 34, segment.snapshot("third").settings[:fleet_open_hosts]
    segment.close
  ensure
    Cbshm.destroy(seg)
  end

  def test_apply_takes_a_pathname_and_reconciles
    seg = Fixture.next_name
    f = yaml_file(Fixture::YAML)
    assert_equal 3, Cbshm.apply(Pathname.new(f.path), segment: seg)
    assert_equal 0, Cbshm.apply(f.path, segment: seg)
    Cbshm.destroy(seg)
  end

  def test_a_system_error_is_the_matching_system_call_error
    e = assert_raises(Errno::ENOENT) { Cbshm.apply("/nonexistent/breakers.yaml") }
    assert_match %r{/nonexistent/breakers.yaml}, e.message
    e = assert_raises(Errno::EISDIR) { Cbshm.apply("/tmp") }
    assert_equal Errno::EISDIR::Errno, e.errno
    assert_kind_of Errno::EACCES, Cbshm.error_for(-13, "segment /x")
  end

  def test_segment_errors_carry_the_library_message
    e = assert_raises(Cbshm::Error) { Cbshm::Segment.new(Fixture.next_name) }
    assert_equal "CBSHM_ENOSEG", e.errname
    assert_match(/: segment does not exist\z/, e.message)
    e = assert_raises(Cbshm::Error) { Cbshm::Segment.new("no-slash") }
    assert_equal "CBSHM_EBADNAME", e.errname
    e = assert_raises(Cbshm::Error) { Cbshm.destroy("/with\0nul") }
    assert_equal "CBSHM_EBADNAME", e.errname
  end

  def test_version_is_the_libraries
    assert_equal Cbshm::VERSION, Cbshm.version
    assert_equal ENV.fetch("CBSHM_LIBRARY"), Cbshm::Native::LIBRARY_PATH
  end

  def test_a_library_that_is_not_libcbshm_is_a_clear_load_error
    lib = File.expand_path("../../bindings/ruby/lib", __dir__)
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    skip "no #{libc}" unless File.exist?(libc)
    out = IO.popen({ "CBSHM_LIBRARY" => libc },
                   [RbConfig.ruby, "-I", lib, "-e",
                    "begin; require 'cbshm'; rescue LoadError => e; puts e.class, e.message; end"],
                   err: %i[child out], &:read)
    assert_match %r{\ACbshm::LibraryError\ncbshm: #{libc} is not libcbshm: }, out
  end

  def test_a_library_that_does_not_load_is_a_clear_load_error
    lib = File.expand_path("../../bindings/ruby/lib", __dir__)
    out = IO.popen({ "CBSHM_LIBRARY" => "/nonexistent/libcbshm.so.1" },
                   [RbConfig.ruby, "-I", lib, "-e",
                    "begin; require 'cbshm'; rescue LoadError => e; puts e.class, e.message; end"],
                   &:read)
    assert_match %r{\ACbshm::LibraryError\ncbshm: cannot load CBSHM_LIBRARY=/nonexistent/libcbshm.so.1: },
                 out
  end
end
