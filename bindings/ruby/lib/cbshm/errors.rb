# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Cbshm
  # A libcbshm call failed with one of the library's own codes. #code is
  # the C code (CBSHM_ENOSEG is -30801), #errname its symbolic name
  # ("CBSHM_ENOSEG"), #what what the call was about ("segment /cbshm"); the
  # message is the library's cbshm_strerror(), after #what.
  class Error < StandardError
    attr_reader :code, :errname, :what
    # Segment#breakers that met a scribbled slot: the other breakers'
    # snapshots, which the walk still copied.
    attr_accessor :snapshots

    def initialize(code, what = nil)
      @code = code
      @errname = Native.cbshm_errname(code).to_s
      @what = what
      message = Native.cbshm_strerror(code).to_s
      super(what ? "#{what}: #{message}" : message)
    end
  end

  # Cbshm.apply refused a YAML file or text: #file, #line and #column
  # (1-based) say where, #key the key path ("breakers[2].open_timeout"),
  # #problem what is wrong; the message is "FILE:LINE:COL: KEY: PROBLEM".
  class ConfigError < Error
    attr_reader :file, :line, :column, :key, :problem

    def initialize(file, line, column, key, problem)
      @file, @line, @column, @key, @problem = file, line, column, key, problem
      super(Native::ECONFIG)
    end

    def message
      "#{file}:#{line}:#{column}: #{key}: #{problem}"
    end
  end

  # The breaker refused the call; the block did not run. #name is the
  # breaker's name; #reason why it refuses (:open, :probes_busy -
  # half-open with every probe taken -, :forced_open, or :bulkhead_full,
  # raised as its subclass BulkheadFullError); #retry_after the
  # seconds until it may admit a call (0.0 when the library cannot say:
  # forced open with no end, or it admits calls again already). #code is
  # CBSHM_EREJECTED, as for every Cbshm::Error. Semian's name for it.
  class OpenCircuitError < Error
    attr_reader :name, :reason, :retry_after

    def initialize(name, reason, retry_after)
      @name, @reason, @retry_after = name, reason, retry_after
      super(Native::EREJECTED, "breaker #{name}")
    end
  end

  # The breaker's bulkhead had every slot held (max_concurrent_calls or
  # concurrency_quota calls in flight, host-wide) and its max_wait, if
  # any, ran out; the block did not run. An OpenCircuitError with #reason
  # :bulkhead_full, so `rescue Cbshm::OpenCircuitError` catches it too;
  # #retry_after is 0.0 (a slot frees whenever a call in flight ends).
  class BulkheadFullError < OpenCircuitError
    def initialize(name, retry_after = 0.0)
      super(name, :bulkhead_full, retry_after)
    end
  end

  # The exception for a nonzero C code (not raised): -errno is the
  # SystemCallError of that errno (Errno::EACCES, ...), as File.open
  # raises it; the library's own codes are a Cbshm::Error.
  def self.error_for(code, what = nil)
    return SystemCallError.new(what, -code) if code.negative? && code >= Native::ERRNO_MIN

    Error.new(code, what)
  end

  def self.check(code, what)
    raise error_for(code, what) unless code.zero?
  end
end
