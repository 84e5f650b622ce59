# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Cbshm
  # One admitted call of the two-step API (allow, then record): for
  # evented code that cannot wrap the call in a block. Record it exactly
  # once - #success, #failure or #ignored; a second time raises
  # Cbshm::Error (CBSHM_EINVAL). A ticket never recorded holds its
  # bulkhead slot until the breaker's slot_timeout, a probe's lease until
  # probe_timeout. In a forked child a ticket its parent admitted records
  # nothing: the call is the parent's (fork without a block goes on
  # through the parent's blocks, and their ensure would give the parent's
  # slot back while its call ran).
  class Ticket
    def initialize(breaker, guarded)
      @breaker = breaker
      @ticket = guarded ? Native.buffer(Native::Ticket) : nil
      @recorded = false
      @pid = Process.pid
    end

    # The C ticket, for Breaker#allow to fill.
    attr_reader :ticket

    def recorded?
      @recorded
    end

    # outcome: :success, :failure or :ignored; duration: seconds, if the
    # caller measured it (else the time since admission counts).
    def record(outcome, duration: nil)
      value = Native::OUTCOMES.fetch(outcome) do
        raise ArgumentError, "outcome must be :success, :failure or :ignored, not #{outcome.inspect}"
      end
      ns = duration.nil? ? nil : Ticket.nanoseconds(duration, "duration", 0, Native::NS_MAX - 1)
      take
      return if @ticket.nil? || @pid != Process.pid # unguarded, or the parent's call

      h = @breaker.handle_for_record
      return if h.nil?

      rc = if ns.nil?
             Native.cbshm_record(h, @ticket, value)
           else
             Native.cbshm_record_timed(h, @ticket, value, ns)
           end
      Cbshm.check(rc, "breaker #{@breaker.name}")
    end

    def success(duration: nil)
      record(:success, duration: duration)
    end

    # retry_after: seconds the downstream asked for (a 429 or 503 with
    # Retry-After): the breaker opens at once for at least that long.
    def failure(duration: nil, retry_after: nil)
      return record(:failure, duration: duration) if retry_after.nil?

      ns = Ticket.nanoseconds(retry_after, "retry_after", 1, Native::NS_MAX)
      return record(:failure, duration: duration) if retry_after <= 0

      take
      return if @ticket.nil? || @pid != Process.pid

      h = @breaker.handle_for_record
      return if h.nil?

      Cbshm.check(Native.cbshm_record_retry_after(h, @ticket, Native::OUTCOMES[:failure], ns),
                  "breaker #{@breaker.name}")
    end

    # Seconds as the C side's uint64 nanoseconds, within least..most.
    # Checked before the ticket is taken: a bad value leaves it to be
    # recorded (a probe's lease stayed taken until probe_timeout). Past
    # what uint64 holds, and infinity, is the most; a String is refused
    # (String#* made it a string of a billion copies).
    def self.nanoseconds(seconds, what, least, most)
      raise ArgumentError, "#{what} must be a number of seconds, not #{seconds.inspect}" unless
        seconds.is_a?(Numeric) && seconds.real? && !(seconds.is_a?(Float) && seconds.nan?)

      ns = seconds * 1_000_000_000
      return most if ns >= most

      [ns.to_i, least].max
    end

    def ignored(duration: nil)
      record(:ignored, duration: duration)
    end

    private

    def take
      raise Error.new(Native::EINVAL, "breaker #{@breaker.name}: ticket recorded twice") if @recorded

      @recorded = true
    end
  end

  # A breaker shared by every process attached to its segment.
  #
  # Outcomes: a block that returns is a success, unless failure_if (a
  # callable given the block's value) says otherwise; an exception that
  # is_a? one of failure_exceptions (default [StandardError]) is a
  # failure; any other (Interrupt, SystemExit, an exception outside the
  # list) and a block left by throw, break or return say nothing about the
  # downstream: ignored, and the exception propagates unchanged.
  #
  # Made by Cbshm.open_breaker or Segment#breaker. A breaker without a
  # handle (open_breaker could not have its segment) runs blocks
  # unguarded, or, with fail_closed: true, raises #error at each call.
  class Breaker
    attr_reader :name, :segment, :failure_exceptions, :failure_if

    def initialize(name, segment, handle, failure_exceptions: [StandardError], failure_if: nil,
                   fail_closed: false, error: 0, mapping: nil)
      @name = name.to_s
      @segment = segment
      @failure_exceptions = Array(failure_exceptions).freeze
      # Checked here, not at the first exception: is_a? with anything but
      # a class or module raised TypeError from inside acquire, in place
      # of the block's exception.
      @failure_exceptions.each do |k|
        next if k.is_a?(Module)

        raise ArgumentError, "breaker #{@name}: failure_exceptions must be classes or modules, " \
                             "not #{k.inspect}"
      end
      @failure_if = failure_if
      @fail_closed = fail_closed
      @error_code = error
      @handle = handle
      @closed = false
      return unless mapping && handle

      @release = mapping.adopt(@name, handle)
      ObjectSpace.define_finalizer(self, Mapping.finalizer(@release))
    end

    def inspect
      where = @segment ? @segment.name : "no segment"
      how = if @closed then "closed"
            elsif @handle.nil? then "unguarded"
            else "attached"
            end
      "#<Cbshm::Breaker #{@name} in #{where}, #{how}>"
    end

    # The last problem the breaker met (a Cbshm::Error, or a
    # SystemCallError for a system error), or nil: why calls run unguarded.
    def error
      code = @error_code.nonzero? || (@handle ? Native.cbshm_breaker_error(@handle) : 0)
      code.zero? ? nil : Cbshm.error_for(code, "breaker #{@name}")
    end

    # Admits a call: returns a Ticket to record, or raises
    # OpenCircuitError (BulkheadFullError when the bulkhead has every slot
    # held). With a bulkhead and max_wait > 0 it may block the calling
    # thread up to max_wait waiting for a slot (in the C library, without
    # the GVL: other threads run; in a Fiber scheduler or an event loop,
    # the whole loop waits - give such breakers max_wait 0).
    def allow
      h = handle
      if h.nil?
        raise Cbshm.error_for(@error_code.nonzero? || Native::EINVAL, "breaker #{@name}") if @fail_closed

        return Ticket.new(self, false)
      end
      t = Ticket.new(self, true)
      rc = Native.cbshm_allow(h, t.ticket)
      raise rejection if rc == Native::EREJECTED

      Cbshm.check(rc, "breaker #{@name}")
      t
    end

    # Runs the block if the breaker admits it and returns its value;
    # raises OpenCircuitError (the block does not run) when it does not.
    # Semian's name; #run is the same.
    def acquire
      raise ArgumentError, "breaker #{@name}: acquire needs a block" unless block_given?

      ticket = allow
      outcome = :ignored # left by throw, break or return: says nothing
      begin
        result = yield
        outcome = @failure_if&.call(result) ? :failure : :success
        result
      rescue Exception => e # rubocop:disable Lint/RescueException -- judged, then re-raised
        outcome = failure?(e) ? :failure : :ignored
        raise
      ensure
        ticket.record(outcome) unless ticket.recorded?
      end
    end
    alias run acquire

    def failure?(exception)
      @failure_exceptions.any? { |k| exception.is_a?(k) }
    end

    # The shared state, settings and counters (a frozen Snapshot); nil
    # while unguarded (#error says why). Raises Cbshm::Error
    # CBSHM_ECORRUPT for a scribbled breaker: it is attached, and nil would
    # say it is not.
    def snapshot
      return nil if @handle.nil? || @closed || @segment.nil?

      @segment.snapshot(@name)
    rescue Error => e
      raise if e.code == Native::ECORRUPT

      nil # not attached (yet)
    end

    # :closed, :open or :half_open; nil while unguarded; raises as
    # #snapshot does.
    def state
      snapshot&.state
    end

    def closed?
      @closed
    end

    # Segment#on_state_change for this breaker's changes only; returns a
    # lambda that removes it. Raises #error when the breaker has no
    # segment to hear them from.
    def on_state_change(&block)
      raise Cbshm.error_for(@error_code.nonzero? || Native::ENOSEG, "breaker #{@name}") if @segment.nil?

      @segment.on_state_change(name: @name, &block)
    end

    # Releases the handle; the breaker refuses calls after it (IOError).
    # Not while another thread is inside one of its calls.
    def close
      return if @closed

      @closed = true
      @handle = nil
      return unless @release

      ObjectSpace.undefine_finalizer(self)
      @release.call
      Mapping.release_collected
    end

    # The handle a ticket records on (nil once closed: nothing to record).
    def handle_for_record
      @handle
    end

    private

    def handle
      raise IOError, "breaker #{@name} is closed" if @closed

      @handle
    end

    # Asked in the thread that was refused: the library keeps a
    # bulkhead's refusal per thread.
    def rejection
      r = Native.buffer(Native::Rejection)
      if @handle && Native.cbshm_breaker_rejection(@handle, r).zero?
        why, retry_after_ns = r[0, 16].unpack("l x4 Q")
        reason = Native::REFUSALS.fetch(why, :open)
        return BulkheadFullError.new(@name, retry_after_ns / 1e9) if reason == :bulkhead_full

        return OpenCircuitError.new(@name, reason, retry_after_ns / 1e9)
      end
      OpenCircuitError.new(@name, :open, 0.0)
    end
  end
end
