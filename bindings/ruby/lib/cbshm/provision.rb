# SPDX-License-Identifier: MIT
# frozen_string_literal: true

module Cbshm
  class << self
    # Creates or reconciles a segment from YAML, as `cbctl apply`, and
    # returns the number of changes. path_or_yaml: a path (a String or
    # anything with #to_path), or YAML text - a String with a newline in
    # it - named "<yaml>" in errors. The segment is `segment:` if given,
    # else the YAML's `segment`, else $CBSHM_SEGMENT, else /cbshm (the
    # rule every tool follows). Raises ConfigError (FILE:LINE:COL) for
    # rejected YAML, Cbshm::Error or a SystemCallError (Errno::ENOENT, ...)
    # for the rest.
    def apply(path_or_yaml, segment: nil)
      cfg_out = Native.out_pointer
      diag = Native.buffer(Native::Diag)
      if path_or_yaml.is_a?(String) && path_or_yaml.include?("\n")
        what = "<yaml>"
        rc = Native.cbshm_config_load_string(path_or_yaml, path_or_yaml.bytesize, "#{what}\0",
                                             cfg_out, diag)
      elsif path_or_yaml.respond_to?(:to_path) || path_or_yaml.respond_to?(:to_str)
        what = path_or_yaml.respond_to?(:to_path) ? path_or_yaml.to_path : path_or_yaml.to_str
        rc = Native.cbshm_config_load_file(Native.cstr(what, "path"), cfg_out, diag)
      else
        raise TypeError, "Cbshm.apply: a path or YAML text, not #{path_or_yaml.inspect}"
      end
      raise config_error(diag) if rc == Native::ECONFIG

      check(rc, what)
      cfg = Native.pointee(cfg_out)
      changes = Fiddle::Pointer.malloc(4, Fiddle::RUBY_FREE)
      given = segment ? Native.cstr(segment, "segment") : 0
      begin
        name = Native.text(Native.cbshm_config_segment(cfg, given))
        rc = Native.cbshm_apply(cfg, given, 0, 0, 0, changes)
      ensure
        Native.cbshm_config_free(cfg)
      end
      check(rc, "segment #{name}")
      changes[0, 4].unpack1("L")
    end

    # Removes the segment's name (cbshm_destroy); processes attached to it
    # see it retired (CBSHM_ERETIRED) and a new one may be made.
    def destroy(segment)
      check(Native.cbshm_destroy(Native.cstr(segment, "segment")), "segment #{segment}")
    end

    private

    def config_error(diag)
      # The C side cuts long keys and values at a byte count, maybe inside
      # a UTF-8 character: show what is left.
      field = ->(off, len) { diag[off, len].unpack1("Z*").force_encoding(Encoding::UTF_8).scrub }
      line, column = diag[256, 8].unpack("LL")
      ConfigError.new(field.call(0, 256), line, column, field.call(264, 64), field.call(328, 256))
    end
  end
end
