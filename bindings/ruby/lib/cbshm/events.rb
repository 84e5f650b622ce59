# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Cbshm
  # One record of the segment's event ring (cbshm_events_read), frozen: a
  # state change (#kind :state; #old, #new :closed, :open, :half_open), a
  # mode change (:mode; :normal, :forced_open, ...), a reset (:reset;
  # #old the state before, #new :closed), or a bulkhead that started or
  # stopped rejecting calls (:bulkhead; :admitting, :full; #cause
  # "bulkhead"). #time_ns is CLOCK_MONOTONIC ns
  # (Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond); Cbshm.now
  # reads the coarse one and may be a tick behind it); #wall_time seconds since the epoch (a Float), nil when the
  # writer did not stamp it; #cause the library's word ("failures",
  # "probe_failed", "operator", ...: cbctl(1) EVENTS).
  Event = Struct.new(:seq, :time_ns, :wall_time, :pid, :kind, :name, :old, :new, :cause,
                     keyword_init: true) do
    def self.from_c(bytes)
      seq, time_ns, pid, kind, old, new, cause, name, wall_ns = bytes.unpack(Native::EVENT_PACK)
      what = "event #{seq}"
      kind = Snapshot.member(Native::EVENT_KINDS, kind, "#{what}: kind")
      words = { mode: Native::MODES, bulkhead: Native::BULKHEAD_STATES }.fetch(kind, Native::STATES)
      new(seq: seq, time_ns: time_ns, wall_time: wall_ns.zero? ? nil : wall_ns / 1e9, pid: pid,
          kind: kind, name: name.force_encoding(Encoding::UTF_8).scrub.freeze,
          old: Snapshot.member(words, old, "#{what}: from"),
          new: Snapshot.member(words, new, "#{what}: to"),
          cause: Native.cbshm_event_cause_name(cause).to_s.freeze).freeze
    end
  end

  # Segment#events: the ring's records from a cursor on, oldest first.
  # Enumerable; #each goes on from where the last one stopped. #cursor is
  # the sequence number of the next record to read; #lost how many were
  # overwritten before this reader came to them (the ring keeps the last
  # 1024); #skipped how many were scribbled and left out.
  #
  # The ring never blocks and has no wake-up: with follow: true, #each
  # polls every 0.05 s and returns once none came for `timeout` seconds
  # (nil: never).
  class EventReader
    include Enumerable

    BATCH = 64 # records per cbshm_events_read
    POLL_INTERVAL = 0.05

    attr_reader :cursor, :lost, :skipped, :follow, :timeout

    # [events, next cursor, lost, skipped] from cursor on, at most BATCH.
    def self.read(handle, cursor)
      out = Fiddle::Pointer.malloc(Native::Event.size * BATCH, Fiddle::RUBY_FREE)
      at = Fiddle::Pointer.malloc(8, Fiddle::RUBY_FREE)
      at[0, 8] = [cursor].pack("Q")
      got = Fiddle::Pointer.malloc(Fiddle::SIZEOF_SIZE_T, Fiddle::RUBY_FREE)
      lost = Fiddle::Pointer.malloc(8, Fiddle::RUBY_FREE)
      rc = Native.cbshm_events_read(handle, at, out, BATCH, got, lost)
      # CBSHM_ECORRUPT: a record with a scribbled name was left out; the
      # rest, cursor and lost are written as for 0.
      skipped = rc == Native::ECORRUPT ? 1 : 0
      Cbshm.check(rc, "events") unless rc == Native::ECORRUPT
      events = []
      got[0, Fiddle::SIZEOF_SIZE_T].unpack1("J").times do |i|
        events << Event.from_c(out[i * Native::Event.size, Native::Event.size])
      rescue Error
        skipped += 1 # a kind, state or mode outside the library's words
      end
      [events, at[0, 8].unpack1("Q"), lost[0, 8].unpack1("Q"), skipped]
    end

    def initialize(segment, start, follow, timeout)
      @cursor = if start == :now
                  Native::EVENTS_NOW
                elsif start.is_a?(Integer) && start.between?(0, Native::EVENTS_NOW - 1)
                  start
                else
                  # Fiddle would cut 2**64 to 0, and read the ring from its oldest.
                  raise ArgumentError, "start must be a sequence number (0 to 2**64 - 2) or :now, " \
                                       "not #{start.inspect}"
                end
      unless timeout.nil? || (timeout.is_a?(Numeric) && timeout >= 0)
        raise ArgumentError, "timeout must be a number of seconds or nil, not #{timeout.inspect}"
      end

      @segment = segment
      @follow = follow
      @timeout = timeout
      @lost = 0
      @skipped = 0
    end

    def inspect
      "#<Cbshm::EventReader #{@segment.name} at #{@cursor}, lost #{@lost}, skipped #{@skipped}>"
    end

    def each
      return enum_for(:each) unless block_given?

      quiet_since = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      loop do
        batch = fill
        if batch.empty?
          break unless @follow
          break if @timeout && Process.clock_gettime(Process::CLOCK_MONOTONIC) - quiet_since >= @timeout

          sleep POLL_INTERVAL
          next
        end
        batch.each { |e| yield e }
        quiet_since = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      end
      self
    end

    private

    def fill
      events, @cursor, lost, skipped = @segment.send(:read_events, @cursor)
      @lost += lost
      @skipped += skipped
      events
    rescue Error, SystemCallError
      # A late segment not attached yet: a follower waits for it.
      raise unless @follow && @segment.late?

      []
    end
  end

  # The callbacks of one Segment and the cursor they share. It holds the
  # segment's Mapping, not the Segment: the helper thread must not keep
  # the Segment from being collected, and it ends when the mapping is
  # closed.
  class Listeners
    # Every Listeners, for the child after fork, under its object_id: a
    # WeakMap's iteration yields keys already collected before Ruby 3.2
    # (bug #18586), whose instance variables are other objects by then
    # (the child's fork raised NoMethodError); an Integer key is never
    # collected, and a lookup returns only a value still alive.
    @all = ObjectSpace::WeakMap.new

    class << self
      def register(listeners)
        @all[listeners.object_id] = listeners
      end

      # A child of fork() has only the thread that forked: each Listeners
      # whose helper thread ran in the parent starts the child's own.
      def after_fork_in_child
        @all.keys.each { |id| @all[id]&.after_fork_in_child }
      end
    end

    def initialize(mapping, name)
      @mapping = mapping
      @name = name
      @callbacks = []
      @cursor = nil
      @lock = Mutex.new
      @thread = nil
      @listening = false
      @wake = ConditionVariable.new
      @wake_lock = Mutex.new
      @interval = 0.25
      Listeners.register(self)
    end

    # kinds: nil (every kind) or an Array of :state, :mode, :reset,
    # :bulkhead; name: nil (every breaker) or a breaker's name. Returns a lambda that
    # removes the callback.
    def add(callback, name, kinds)
      unless kinds.nil?
        kinds = Array(kinds).map(&:to_sym)
        bad = kinds - Native::EVENT_KINDS
        raise ArgumentError, "kinds must be among #{Native::EVENT_KINDS.join(", ")}, not #{bad.inspect}" unless
          bad.empty?
      end
      entry = [callback, name&.to_s, kinds&.freeze].freeze
      @lock.synchronize do
        # Only what comes from now on: poll_events after this sees every
        # change made after this call returned. A late segment not
        # attached yet starts at the first poll that can read it.
        @cursor ||= begin
          read(Native::EVENTS_NOW)[1]
        rescue Error, SystemCallError
          nil
        end
        @callbacks << entry
      end
      -> { @lock.synchronize { @callbacks.delete_if { |e| e.equal?(entry) } } && nil }
    end

    # Hands the events since the last poll to the callbacks; returns how
    # many were read. A listener that raises is reported with warn, and
    # the others still hear the event.
    def poll
      events, lost, callbacks = @lock.synchronize do
        got, @cursor, lost, = read(@cursor || Native::EVENTS_NOW)
        [got, lost, @callbacks.dup]
      end
      warn "cbshm: segment #{@name}: #{lost} events were overwritten before they were read" if lost.positive?
      events.each do |event|
        callbacks.each do |callback, name, kinds|
          next unless (name.nil? || name == event.name) && (kinds.nil? || kinds.include?(event.kind))

          begin
            callback.call(event)
          rescue StandardError => e
            # One listener's bug must not stop the others, or the thread.
            warn "cbshm: listener #{callback.inspect} failed on #{event.kind} event #{event.seq} " \
                 "of #{event.name}: #{e.class}: #{e.message}"
          end
        end
      end
      events.size
    end

    def start(interval)
      unless interval.is_a?(Numeric) && interval.positive?
        raise ArgumentError, "interval must be a positive number of seconds, not #{interval.inspect}"
      end

      @interval = interval
      @listening = true
      return if @thread&.alive?

      @thread = Thread.new { run }
      @thread.name = "cbshm-listener"
    end

    def stop
      @listening = false
      @wake_lock.synchronize { @wake.signal }
      thread = @thread
      @thread = nil
      thread.join if thread && thread != Thread.current
    end

    def after_fork_in_child
      # Locks a parent thread held at fork() would stay held.
      @lock = Mutex.new
      @wake = ConditionVariable.new
      @wake_lock = Mutex.new
      @thread = nil
      start(@interval) if @listening && @mapping.handle
    end

    private

    def read(cursor)
      @mapping.with_handle { |h| EventReader.read(h, cursor) }
    end

    def run
      while @listening
        @wake_lock.synchronize { @wake.wait(@wake_lock, @interval) }
        break unless @listening

        # Releases a collected Segment's mapping: then the loop ends.
        Mapping.release_collected
        break if @mapping.handle.nil?

        begin
          poll
        rescue IOError
          break # closed meanwhile
        rescue Error, SystemCallError
          # Not attached yet (a late segment before `cbctl apply`): it may
          # be by the next poll, and deploy order must not matter.
          next
        end
      end
    end
  end

  # Process._fork (Ruby 3.1) runs for every fork: Kernel#fork,
  # Process.fork, IO.popen("-"), a server's own. The child's listener
  # threads restart there, with no hook for the application to call.
  module ForkHook
    def _fork
      pid = super
      Listeners.after_fork_in_child if pid.zero?
      pid
    end
  end
  Process.singleton_class.prepend(ForkHook) if Process.respond_to?(:_fork)
end
