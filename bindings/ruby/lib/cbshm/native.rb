# SPDX-License-Identifier: MIT
# frozen_string_literal: true

require "fiddle"
require "fiddle/import"

module Cbshm
  # The library cannot be loaded: CBSHM_LIBRARY names a file that does not
  # load, or the installed soname is not there. A LoadError, as for any
  # library a require cannot find.
  class LibraryError < LoadError; end

  # The C library as Fiddle sees it: where it is loaded from, the
  # plain-data structs of cbshm.h (sizes checked against the C ones) and
  # the function signatures. Nothing here is API; Cbshm is.
  module Native
    extend Fiddle::Importer

    # The installed library's soname (package libcbshm1, or `make
    # install`): dlopen finds it through ld.so.cache and LD_LIBRARY_PATH.
    SONAME = "libcbshm.so.1"

    # The file CBSHM_LIBRARY names, when set, else the installed soname.
    # Nothing else is searched, a build tree least of all: an installed
    # gem must not pick up whatever a checkout beside it holds. An
    # override that does not load is an error, not a reason to try
    # another copy behind the user's back.
    override = ENV["CBSHM_LIBRARY"]
    if override && !override.empty?
      begin
        dlload override
      rescue Fiddle::DLError => e
        raise LibraryError, "cbshm: cannot load CBSHM_LIBRARY=#{override}: #{e.message}"
      end
      LIBRARY_PATH = override
    else
      begin
        dlload SONAME
      rescue Fiddle::DLError => e
        raise LibraryError,
              "cbshm: cannot load libcbshm: tried #{SONAME} through the loader's search path " \
              "(ld.so.cache, LD_LIBRARY_PATH): #{e.message}. Install the libcbshm1 package (or " \
              "the library with `make install` and `ldconfig`), or set CBSHM_LIBRARY to the " \
              "path of libcbshm.so.1"
      end
      LIBRARY_PATH = SONAME
    end

    # struct cbshm_ticket: opaque to Ruby, handed from allow to record.
    Ticket = struct(["uint64_t ctl", "void *slot", "uint64_t token", "uint64_t start_ns",
                     "uint32_t flags", "uint32_t lease", "uint64_t bulk_word",
                     "uint32_t bulk_slot", "uint32_t reserved"])
    Rejection = struct(["int why", "uint64_t retry_after_ns", "uint64_t reserved[2]"])
    Diag = struct(["char file[256]", "unsigned int line", "unsigned int column", "char key[64]",
                   "char message[256]", "uint64_t reserved[4]"])
    Setting = struct(["const char *key", "const char *json_key", "const char *help",
                      "void *choices", "int type", "unsigned int policies",
                      "unsigned int windows", "unsigned int decisions", "uint64_t min",
                      "uint64_t max", "uint64_t def", "uint64_t reserved[4]"])

    SETTINGS_SIZE = 160 # struct cbshm_settings, read through the settings table

    # struct cbshm_snapshot's figures after its settings, in its order:
    # [field, pack directive]. Snapshot (the Struct) takes its members from
    # this one list.
    SNAPSHOT_FIGURES = [
      [:requests, "Q"], [:successes, "Q"], [:failures, "Q"], [:ignored, "Q"],
      [:rejections, "Q"], [:trips, "Q"], [:probes_reclaimed, "Q"], [:slow_calls, "Q"],
      [:consecutive_failures, "L"], [:half_open_successes, "L"],
      [:probes_in_flight, "L"], [:failing_workers, "L"],
      [:open_until_ns, "Q"], [:last_transition_ns, "Q"], [:time_in_state_ns, "Q"],
      [:current_open_ms, "Q"], [:window_calls, "Q"], [:window_failures, "Q"],
      [:window_slow_calls, "Q"], [:window_failure_rate, "L"], [:window_slow_rate, "L"],
      [:mode_until_ns, "Q"],
      [:bulkhead_limit, "L"], [:bulkhead_in_flight, "L"], [:bulkhead_rejections, "Q"],
      [:bulkhead_reclaimed, "Q"], [:bulkhead_waits, "Q"], [:mode_cause, "L"]
    ].freeze
    SNAPSHOT_RESERVED = 10 # uint32_t reserved0, uint64_t reserved[10], after the figures
    # name[64], index, generation, state, mode, settings, the figures, reserved.
    SNAPSHOT_PACK = "Z64 L L l l a#{SETTINGS_SIZE} #{SNAPSHOT_FIGURES.map(&:last).join(" ")} " \
                    "L Q#{SNAPSHOT_RESERVED}"
    Snapshot = struct(["char name[64]", "uint32_t index", "uint32_t generation", "int state",
                       "int mode", "uint64_t settings[20]"] +
                      SNAPSHOT_FIGURES.map { |f, d| "#{d == "Q" ? "uint64_t" : "uint32_t"} #{f}" } +
                      ["uint32_t reserved0", "uint64_t reserved[#{SNAPSHOT_RESERVED}]"])
    # struct cbshm_event: seq, time_ns, pid, kind, from, to, cause, name[64],
    # (4 bytes of padding), wall_ns, reserved[3].
    Event = struct(["uint64_t seq", "uint64_t time_ns", "uint32_t pid", "int kind", "int from",
                    "int to", "int cause", "char name[64]", "uint64_t wall_ns",
                    "uint64_t reserved[3]"])
    EVENT_PACK = "Q Q L l l l l Z64 x4 Q"

    # The layouts above must be the C ones; a wrong one would misread memory.
    { Ticket => 56, Rejection => 32, Diag => 616, Setting => 104, Snapshot => 512,
      Event => 136 }.each do |s, size|
      next if s.size == size

      raise LibraryError, "cbshm: #{s.name} is #{s.size} bytes here and #{size} in C"
    end
    # ... and SNAPSHOT_PACK must read the whole struct, field for field.
    unpacked = 64 + 4 * 4 + SETTINGS_SIZE + SNAPSHOT_FIGURES.sum { |_, d| d == "Q" ? 8 : 4 } +
               4 + SNAPSHOT_RESERVED * 8 # reserved0, reserved[]
    raise LibraryError, "cbshm: the snapshot unpacks #{unpacked} bytes, not 512" unless unpacked == 512
    # ... and EVENT_PACK must read wall_ns where C has it, after the name
    # and its padding (the reserved words follow it, unread).
    wall_ns_probe = ("\0" * 104) + [1].pack("Q") + ("\0" * 24)
    raise LibraryError, "cbshm: EVENT_PACK does not read wall_ns at byte 104" unless
      wall_ns_probe.unpack(EVENT_PACK).last == 1 && wall_ns_probe.size == Event.size

    begin
      extern "const char *cbshm_version(void)"
    rescue Fiddle::DLError => e
      # It loaded, and is not libcbshm (CBSHM_LIBRARY=libc.so.6).
      raise LibraryError, "cbshm: #{LIBRARY_PATH} is not libcbshm: #{e.message}"
    end
    extern "const char *cbshm_strerror(int)"
    extern "const char *cbshm_errname(int)"
    extern "const char *cbshm_default_segment(void)"
    extern "int cbshm_open(const char *, unsigned int, void **)"
    extern "void cbshm_close(void *)"
    extern "int cbshm_destroy(const char *)"
    extern "int cbshm_breaker_get(void *, const char *, void **)"
    extern "void cbshm_breaker_release(void *)"
    extern "int cbshm_breaker_error(void *)"
    extern "int cbshm_allow(void *, void *)"
    extern "int cbshm_record(void *, void *, int)"
    extern "int cbshm_record_timed(void *, void *, int, uint64_t)"
    extern "int cbshm_record_retry_after(void *, void *, int, uint64_t)"
    extern "int cbshm_breaker_rejection(void *, void *)"
    extern "int cbshm_snapshot(void *, const char *, void *)"
    extern "int cbshm_set_mode(void *, const char *, int)"
    extern "int cbshm_set_mode_for(void *, const char *, int, uint64_t)"
    extern "int cbshm_reset(void *, const char *)"
    extern "int cbshm_foreach(void *, void *, void *)"
    extern "int cbshm_events_read(void *, void *, void *, size_t, void *, void *)"
    extern "const char *cbshm_event_cause_name(int)"
    extern "uint64_t cbshm_now_ns(void)"
    extern "int cbshm_config_load_file(const char *, void **, void *)"
    extern "int cbshm_config_load_string(const char *, size_t, const char *, void **, void *)"
    extern "const char *cbshm_config_segment(void *, const char *)"
    extern "void cbshm_config_free(void *)"
    extern "int cbshm_apply(void *, const char *, unsigned int, void *, void *, void *)"
    extern "void *cbshm_setting_at(size_t)"
    extern "uint64_t cbshm_setting_get(void *, void *)"

    # The library's own codes (cbshm.h, CBSHM_ERRNO_MAP) this gem tests
    # for. They are below -30000; above that, a negative code is -errno.
    EREJECTED = -30_800
    ENOSEG = -30_801
    ECORRUPT = -30_806
    ENOBREAKER = -30_808
    ESTOPPED = -30_818
    EBADNAME = -30_811
    ECONFIG = -30_812
    EINVAL = -30_816
    ERRNO_MIN = -4095
    NS_MAX = (1 << 64) - 1 # a uint64_t's most: "not measured" to record_timed
    FAIL_CLOSED = 0x1
    READ_ONLY = 0x2
    LATE = 0x4 # CBSHM_LATE: attach when the segment and breaker appear

    STATES = %i[closed open half_open].freeze
    MODES = %i[normal forced_open forced_closed disabled].freeze
    EVENT_KINDS = %i[state mode reset bulkhead].freeze
    BULKHEAD_STATES = %i[admitting full].freeze # enum cbshm_bulkhead_state
    EVENTS_NOW = (1 << 64) - 1 # CBSHM_EVENTS_NOW: start at the next event
    OUTCOMES = { success: 0, failure: 1, ignored: 2 }.freeze
    REFUSALS = { 1 => :open, 2 => :probes_busy, 3 => :forced_open, 4 => :bulkhead_full }.freeze

    module_function

    # A C string argument: NUL-terminated, and refused with EBADNAME when
    # it holds a NUL of its own, which C would cut the name at.
    def cstr(s, what)
      s = s.to_s
      raise Error.new(EBADNAME, "#{what}: NUL in #{s.inspect}") if s.include?("\0")

      "#{s}\0"
    end

    # A void ** for an out-parameter, and the pointer it received.
    def out_pointer
      Fiddle::Pointer.malloc(Fiddle::SIZEOF_VOIDP, Fiddle::RUBY_FREE)
    end

    def pointee(out)
      out[0, Fiddle::SIZEOF_VOIDP].unpack1("J")
    end

    # A zeroed buffer of a struct's size, freed with the Ruby object.
    def buffer(struct)
      p = Fiddle::Pointer.malloc(struct.size, Fiddle::RUBY_FREE)
      p[0, struct.size] = "\0" * struct.size
      p
    end

    def text(ptr)
      ptr.null? ? "" : ptr.to_s.force_encoding(Encoding::UTF_8).scrub
    end

    # The settings table, in its order.
    SETTINGS_TABLE = (0..).lazy.map { |i| cbshm_setting_at(i) }.take_while { |d| !d.null? }.to_a

    # A settings struct (at ptr) as {json_key => value} in the C struct's
    # units: durations in ms, percentages as numbers, backoff_multiplier in
    # hundredths, words as their index, fleet_open_hosts a count or
    # CBSHM_FLEET_SHARE (0x80000000) | hundredths.
    def setting_values(ptr)
      SETTINGS_TABLE.to_h do |d|
        [text(Setting.new(d).json_key).to_sym, cbshm_setting_get(ptr, d)]
      end
    end
  end
end
