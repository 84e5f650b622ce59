# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# A Rack app whose handler calls a downstream through a circuit breaker
# that every worker process of the server shares. One app for Unicorn
# (unicorn.conf.rb) and Puma in cluster mode (puma.rb), loaded by
# config.ru; no framework, standard library only.
#
#   GET /  ->  200 when the downstream answered, 502 when it failed,
#              503 at once when the breaker is open (the downstream is
#              not called), with Retry-After.
#
# Environment: CBSHM_SEGMENT (default /cbshm-rack), DOWNSTREAM_PORT
# (default 9000), BREAKER_ATTACH ("preload", the default: the master opens
# the breaker before it forks, and every worker inherits the handle; or
# "after_fork": each worker opens it in the server's after-fork hook),
# BREAKER_MODE ("shared", the default, or "per-process": a breaker in each
# worker's own memory, for comparison), ATTEMPT_LOG (a file that gets one
# line per call that reached for the downstream: the worker, when the
# call began and ended, and how; for the tests).

require "io/wait"
require "socket"

module DownstreamApp
  SEGMENT = ENV.fetch("CBSHM_SEGMENT", "/cbshm-rack")
  DOWNSTREAM_PORT = Integer(ENV.fetch("DOWNSTREAM_PORT", "9000"))
  ATTEMPT_LOG = ENV["ATTEMPT_LOG"]
  PER_PROCESS = ENV.fetch("BREAKER_MODE", "shared") == "per-process"

  # The downstream answered, but not with a 2xx, or not in time.
  class BadAnswer < IOError; end

  # What counts against the downstream: it refused, reset, timed out or
  # answered badly. Anything else (a bug in this app) is ignored.
  FAILURES = [SystemCallError, IOError, SocketError].freeze

  # "HTTP/1.0 200 OK", "HTTP/1.1 204 No Content": the version and the code.
  STATUS_LINE = %r{\AHTTP/1\.[01] ([0-9]{3})(?: |\r\n)}.freeze

  def self.monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # One write(2) per line with O_APPEND: lines from workers never mix.
  def self.log_attempt(began, ok)
    File.open(ATTEMPT_LOG, File::WRONLY | File::APPEND | File::CREAT, 0o600) do |f|
      f.syswrite(format("%d %.6f %.6f %s\n", Process.pid, began, monotonic, ok ? "ok" : "failed"))
    end
  end

  def self.call_downstream
    began = monotonic
    begin
      Socket.tcp("127.0.0.1", DOWNSTREAM_PORT, connect_timeout: 2) do |s|
        s.write("GET / HTTP/1.0\r\n\r\n")
        # The status line, however its bytes arrive; any 2xx from an
        # HTTP/1.0 or HTTP/1.1 server is a success.
        head = +""
        while !head.include?("\r\n") && head.bytesize < 256
          raise BadAnswer, "downstream did not answer within 2 s" unless s.wait_readable(2)

          begin
            head << s.readpartial(256)
          rescue EOFError
            break
          end
        end
        code = STATUS_LINE.match(head)&.[](1)
        raise BadAnswer, "downstream answered badly: #{head.lines.first.to_s.chomp[0, 64].inspect}" unless
          code&.start_with?("2")
      end
    rescue *FAILURES
      log_attempt(began, false) if ATTEMPT_LOG
      raise
    end
    log_attempt(began, true) if ATTEMPT_LOG
  end

  class LocalOpen < StandardError; end

  # What libcbshm replaces: a breaker in each worker's own memory
  # (consecutive failures, one probe per open period - per process).
  class PerProcessBreaker
    def initialize(threshold, open_timeout)
      @threshold, @open_timeout = threshold, open_timeout
      @failures, @opened_at = 0, nil
    end

    def acquire
      raise LocalOpen if @opened_at && DownstreamApp.monotonic - @opened_at < @open_timeout

      begin
        result = yield
      rescue *FAILURES
        @failures += 1
        @opened_at = DownstreamApp.monotonic if @opened_at || @failures >= @threshold
        raise
      end
      @failures, @opened_at = 0, nil
      result
    end
  end

  @breaker = if PER_PROCESS
               PerProcessBreaker.new(Integer(ENV.fetch("BREAKER_THRESHOLD", "3")),
                                     Float(ENV.fetch("BREAKER_OPEN_TIMEOUT", "2")))
             end
  @guarded = nil # this worker's breaker at its last call: attached (true) or not (false)

  class << self
    attr_reader :breaker

    # Opens the shared breaker, once per process that needs it, and says
    # which process did and when: the master (once, before the fork) or
    # each worker (after it). Fail-open: never raises.
    def attach_breaker(whence)
      return if @breaker

      @breaker = Cbshm.open_breaker(SEGMENT, "downstream", failure_exceptions: FAILURES)
      warn "cbshm: process #{Process.pid}: opened breaker downstream (#{whence})"
    end

    # Logs once when the breaker runs unguarded (no segment or breaker
    # yet: calls go through, fail-open) and once when it has attached.
    def note_guard
      return unless @breaker.is_a?(Cbshm::Breaker)

      err = @breaker.error
      if err && @guarded != false
        warn "cbshm: worker #{Process.pid}: breaker downstream unguarded (#{err.message}): " \
             "calls run without it until it attaches"
      elsif err.nil? && @guarded != true
        warn "cbshm: worker #{Process.pid}: breaker downstream attached"
      end
      @guarded = err.nil?
    end

    def call(_env)
      attach_breaker("first request") unless @breaker # no hook opened it
      headers = { "Content-Type" => "text/plain", "X-Worker" => Process.pid.to_s }
      begin
        @breaker.acquire { call_downstream }
        status, body = 200, "ok\n"
      rescue Cbshm::OpenCircuitError => e
        status, body = 503, "downstream unavailable (breaker open)\n"
        headers["Retry-After"] = e.retry_after.ceil.to_s
      rescue LocalOpen
        status, body = 503, "downstream unavailable (breaker open)\n"
      rescue *FAILURES => e
        status, body = 502, "downstream failed: #{e.message}\n"
      end
      note_guard
      [status, headers, [body]]
    end
  end

  # BREAKER_ATTACH=preload: opened here, in the master, when the server
  # preloads the app (Unicorn's preload_app true, Puma's preload_app!);
  # the handle survives the fork of every worker.
  attach_breaker("preload") if !PER_PROCESS && ENV.fetch("BREAKER_ATTACH", "preload") == "preload"
end
