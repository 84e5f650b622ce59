# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "monitor"

module Cbshm
  # The C segment handle and the breaker handles taken from it.
  # cbshm_close() wants every breaker handle of a segment released first;
  # the garbage collector finalizes objects in whatever order it finds
  # them, so the handle lives here, shared by the Segment and its
  # breakers, and is closed when the last of them lets go - never before
  # a breaker. A Monitor, not a Mutex: a release may run in a thread that
  # is inside one of these sections already.
  #
  # Finalizers do not release anything themselves: Ruby runs them where
  # a Mutex or Monitor raises ThreadError ("can't be called from trap
  # context" - after a Fiddle call, which is when a busy worker
  # collects), so every handle the collector found was leaked, with its
  # mapping. They queue the release (Thread::Queue may be pushed to
  # there); the next open or close of a segment or breaker does it.
  class Mapping
    attr_reader :handle

    PENDING = Thread::Queue.new

    # Runs the releases finalizers queued. Not inside a Mapping's lock.
    def self.release_collected
      until PENDING.empty?
        begin
          job = PENDING.pop(true)
        rescue ThreadError # emptied by another thread meanwhile
          break
        end
        job.call
      end
    end

    # A finalizer that queues job (a proc) for release_collected.
    def self.finalizer(job)
      ->(*) { PENDING << job }
    end

    def initialize(handle)
      @handle = handle
      @live = {} # breaker handle => breaker name
      @closing = false
      @lock = Monitor.new
    end

    def live_names
      @lock.synchronize { @live.values.sort }
    end

    # Registers a breaker handle; the proc releases it, once.
    def adopt(name, breaker_handle)
      @lock.synchronize { @live[breaker_handle] = name }
      released = false
      lambda do |*|
        last = @lock.synchronize do
          next false if released

          released = true
          Native.cbshm_breaker_release(breaker_handle)
          @live.delete(breaker_handle)
          @closing && @live.empty?
        end
        detach if last
      end
    end

    def close
      detach if @lock.synchronize { @closing = true; @live.empty? }
    end

    # Yields the handle with the lock held, so that a close in another
    # thread (the listener thread's segment) waits for the call to end;
    # IOError once closed.
    def with_handle
      @lock.synchronize do
        raise IOError, "segment is closed" if @handle.nil?

        yield @handle
      end
    end

    private

    def detach
      h = @lock.synchronize { @handle.tap { @handle = nil } }
      Native.cbshm_close(h) if h
    end
  end

  # A segment attached to this process: its breakers, snapshots, modes.
  #
  # name: "/name" (nil: $CBSHM_SEGMENT, else /cbshm). Raises Cbshm::Error
  # (or a SystemCallError: Errno::EACCES, ...) when it cannot attach,
  # unless late: true: then the segment attaches by itself once it exists
  # and this process may map it (CBSHM_LATE), and its breakers run calls
  # fail-open until it does. read_only: true is an observer's view
  # (CBSHM_READ_ONLY). Handles survive fork: a Segment made in a Unicorn
  # or Puma master works in every worker.
  class Segment
    attr_reader :name

    def initialize(name = nil, fail_closed: false, late: false, read_only: false)
      @name = name || Native.cbshm_default_segment.to_s
      @fail_closed = fail_closed
      @late = late
      flags = (fail_closed ? Native::FAIL_CLOSED : 0) | (late ? Native::LATE : 0) |
              (read_only ? Native::READ_ONLY : 0)
      Mapping.release_collected
      out = Native.out_pointer
      Cbshm.check(Native.cbshm_open(Native.cstr(@name, "segment"), flags, out), "segment #{@name}")
      @mapping = Mapping.new(Native.pointee(out))
      @listeners = Listeners.new(@mapping, @name)
      ObjectSpace.define_finalizer(self, Segment.finalizer(@mapping))
    end

    def self.finalizer(mapping)
      Mapping.finalizer(mapping.method(:close))
    end

    def inspect
      "#<Cbshm::Segment #{@name}#{closed? ? ", closed" : ""}>"
    end

    def closed?
      @mapping.handle.nil?
    end

    # Opened with late: true (CBSHM_LATE): it may not be attached yet.
    def late?
      @late
    end

    # The breaker `name`; raises Cbshm::Error when there is none (on a
    # late: true segment it gives a breaker that attaches once it is
    # there). options: failure_exceptions:, failure_if:, fail_closed:.
    def breaker(name, **options)
      Mapping.release_collected
      out = Native.out_pointer
      Cbshm.check(Native.cbshm_breaker_get(handle, Native.cstr(name, "breaker"), out), "breaker #{name}")
      Breaker.new(name, self, Native.pointee(out), mapping: @mapping,
                                                   **{ fail_closed: @fail_closed }.merge(options))
    end

    def snapshot(name)
      buf = Native.buffer(Native::Snapshot)
      Cbshm.check(Native.cbshm_snapshot(handle, Native.cstr(name, "breaker"), buf), "breaker #{name}")
      Snapshot.from_c(buf)
    end

    # A Snapshot of every breaker, in table order: one walk of the table
    # (cbshm_foreach). A scribbled slot is left out, and raises
    # Cbshm::Error CBSHM_ECORRUPT after the walk, with the others in
    # its #snapshots.
    def breakers
      got = []
      corrupt = nil
      stopped = nil
      visit = Fiddle::Closure::BlockCaller.new(Fiddle::TYPE_INT,
                                               [Fiddle::TYPE_VOIDP, Fiddle::TYPE_VOIDP]) do |_ctx, snap|
        # Copied here: the struct is the library's, for this call only.
        got << Snapshot.from_c(Fiddle::Pointer.new(snap.to_i, Native::Snapshot.size))
        0
      rescue Error => e
        corrupt ||= e # a state or mode outside the enums: the others go on
        0
      rescue Exception => e # rubocop:disable Lint/RescueException -- re-raised after the walk
        # Raised through the C frames, it would skip the library's
        # clean-up (the table copy leaks); stop the walk and raise it
        # once foreach has returned.
        stopped = e
        1
      end
      rc = Native.cbshm_foreach(handle, visit, nil)
      raise stopped if stopped

      rc = corrupt.code if rc.zero? && corrupt
      return got if rc.zero?

      e = Cbshm.error_for(rc, "segment #{@name}")
      e.snapshots = got if e.respond_to?(:snapshots=)
      raise e
    end

    # The event ring's records as a Cbshm::EventReader (Enumerable of
    # Event). start: 0, the oldest the ring holds (it keeps the last
    # 1024), a sequence number, or :now (only what comes next). follow:
    # false stops at the last one; follow: true waits for more, polling
    # every 0.05 s (the ring has no wake-up), and stops once none came for
    # `timeout` seconds (nil: never).
    #
    #   segment.events.each { |e| puts "#{e.name} #{e.old} -> #{e.new} (#{e.cause})" }
    def events(start: 0, follow: false, timeout: nil)
      handle
      EventReader.new(self, start, follow, timeout)
    end

    # Calls the block with each Event to come (of breaker `name` and of
    # `kinds` - :state, :mode, :reset - when given); returns a lambda that
    # removes it. Blocks run from #poll_events, in the thread that calls
    # it, or from the thread #listen starts: after the change, never
    # inside a breaker call.
    def on_event(kinds: nil, name: nil, &block)
      raise ArgumentError, "on_event needs a block" unless block

      @listeners.add(block, name, kinds)
    end

    # on_event for state changes and resets: event.old and event.new are
    # states.
    def on_state_change(name: nil, &block)
      raise ArgumentError, "on_state_change needs a block" unless block

      @listeners.add(block, name, %i[state reset])
    end

    # Hands the events that came since the last poll to the listeners;
    # returns how many events were read.
    def poll_events
      handle
      @listeners.poll
    end

    # Starts one thread that polls every `interval` seconds (once; a
    # forked child starts its own by itself). #stop_listening ends it.
    def listen(interval: 0.25)
      handle
      @listeners.start(interval)
    end

    def stop_listening
      @listeners.stop
    end

    # mode: :normal, :forced_open, :forced_closed or :disabled; with
    # for_seconds:, the breaker returns to normal by itself then.
    def set_mode(name, mode, for_seconds: nil)
      value = Native::MODES.index(mode.to_sym) or
        raise ArgumentError, "mode must be one of #{Native::MODES.join(", ")}, not #{mode.inspect}"
      c_name = Native.cstr(name, "breaker")
      rc = if for_seconds
             Native.cbshm_set_mode_for(handle, c_name, value, [(for_seconds * 1000).round, 1].max)
           else
             Native.cbshm_set_mode(handle, c_name, value)
           end
      Cbshm.check(rc, "breaker #{name}")
    end

    def reset(name)
      Cbshm.check(Native.cbshm_reset(handle, Native.cstr(name, "breaker")), "breaker #{name}")
    end

    # Detaches. Raises Cbshm::Error (CBSHM_EINVAL) while breakers taken
    # from it are open - close them first: the C library would crash.
    def close
      return if closed?

      Mapping.release_collected
      names = @mapping.live_names
      unless names.empty?
        raise Error.new(Native::EINVAL, "segment #{@name}: #{names.size} breaker" \
                                        "#{names.size == 1 ? "" : "s"} still open (#{names.join(", ")})")
      end
      stop_listening
      Cbshm.forget_shared(self)
      ObjectSpace.undefine_finalizer(self)
      @mapping.close
    end

    private

    def handle
      @mapping.handle or raise IOError, "segment #{@name} is closed"
    end

    # For EventReader: [events, next cursor, lost, skipped].
    def read_events(cursor)
      @mapping.with_handle { |h| EventReader.read(h, cursor) }
    rescue IOError
      raise IOError, "segment #{@name} is closed"
    end
  end

  @shared = {}
  # A Mutex that a thread of the parent held at fork() is released in the
  # child: Ruby abandons the locks of the threads fork() left behind.
  @shared_lock = Mutex.new

  class << self
    # The Segment open_breaker uses for `name`: made once per process
    # (late: true), then shared by every breaker opened on it.
    def shared_segment(name, fail_closed)
      key = [name || Native.cbshm_default_segment.to_s, fail_closed]
      @shared_lock.synchronize do
        @shared[key] ||= Segment.new(key[0], fail_closed: fail_closed, late: true)
      end
    end

    def forget_shared(segment)
      @shared_lock.synchronize { @shared.delete_if { |_, s| s.equal?(segment) } }
    end

    # A breaker that never fails to open (Semian's habit and the C
    # library's): when the segment or the breaker cannot be had, calls run
    # unguarded (fail-open) and #error says why - or, with fail_closed:
    # true, every call raises that error instead. The segment and breaker
    # may come later: the breaker attaches by itself (at most every 0.25 s)
    # once they are there and this process may map them. Every breaker
    # opened so shares one Segment (one mapping) per segment name.
    #
    #   payments = Cbshm.open_breaker("/cbshm", "payments-api",
    #                                 failure_exceptions: [Net::OpenTimeout, SocketError])
    #   payments.acquire { http.post(...) }
    def open_breaker(segment, name, fail_closed: false, **options)
      begin
        seg = shared_segment(segment, fail_closed)
      rescue Error, SystemCallError => e
        return Breaker.new(name, nil, nil, error: code_of(e), fail_closed: fail_closed, **options)
      end
      begin
        seg.breaker(name, **options)
      rescue Error, SystemCallError => e
        Breaker.new(name, seg, nil, error: code_of(e), fail_closed: fail_closed, **options)
      end
    end

    private

    def code_of(error)
      error.is_a?(Error) ? error.code : -error.errno
    end
  end
end
