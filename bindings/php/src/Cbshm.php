<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

use FFI;

/** Making and removing segments, as `cbctl apply` and `cbctl destroy` do. */
final class Cbshm
{
    /** The library's version ("1.1.0"). */
    public static function version(): string
    {
        return Native::ffi()->cbshm_version();
    }

    /**
     * Creates or reconciles a segment from YAML, as `cbctl apply`, and
     * returns the number of changes. $pathOrYaml is a file's path, or YAML
     * text when it holds a newline. The segment is $segment if given, else
     * the YAML's `segment`, else $CBSHM_SEGMENT, else /cbshm
     * (cbshm_config_segment, the rule every tool follows). Throws
     * ConfigException (FILE:LINE:COL, "<yaml>" for text) for rejected
     * YAML, CbshmException for the rest (a missing file: -ENOENT).
     */
    public static function apply(string $pathOrYaml, ?string $segment = null): int
    {
        $ffi = Native::ffi();
        if (!str_contains($pathOrYaml, "\n") && str_contains($pathOrYaml, "\0")) {
            // C would open the file named by the part before the NUL.
            throw new CbshmException(Native::EINVAL, 'apply', 'a path must not hold a NUL byte');
        }
        self::refuseNul($segment ?? '');
        $cfg = $ffi->new('cbshm_config *[1]');
        $diag = $ffi->new('struct cbshm_diag');
        if (str_contains($pathOrYaml, "\n")) {
            $what = '<yaml>';
            $rc = $ffi->cbshm_config_load_string($pathOrYaml, strlen($pathOrYaml), $what, $cfg,
                                                 FFI::addr($diag));
        } else {
            $what = $pathOrYaml;
            $rc = $ffi->cbshm_config_load_file($pathOrYaml, $cfg, FFI::addr($diag));
        }
        if ($rc === Native::ECONFIG) {
            throw new ConfigException(FFI::string($diag->file), $diag->line, $diag->column,
                                      FFI::string($diag->key), FFI::string($diag->message));
        }
        if ($rc !== 0) {
            throw new CbshmException($rc, $what);
        }
        $changes = $ffi->new('unsigned[1]');
        $given = $segment === '' ? null : $segment;
        try {
            $name = $ffi->cbshm_config_segment($cfg[0], $given);
            $rc = $ffi->cbshm_apply($cfg[0], $given, 0, null, null, $changes);
        } finally {
            $ffi->cbshm_config_free($cfg[0]);
        }
        if ($rc !== 0) {
            throw new CbshmException($rc, "segment $name");
        }
        return $changes[0];
    }

    /**
     * Removes the segment's name (cbshm_destroy); processes attached to it
     * run unguarded until one of the same name is made again, then move to it.
     */
    public static function destroy(string $segment): void
    {
        self::refuseNul($segment);
        $rc = Native::ffi()->cbshm_destroy($segment);
        if ($rc !== 0) {
            throw new CbshmException($rc, "segment $segment");
        }
    }

    /**
     * A segment name holding a NUL: C would read the name before it - and
     * destroy that segment. CBSHM_EBADNAME, as for any malformed name.
     */
    private static function refuseNul(string $segment): void
    {
        if (str_contains($segment, "\0")) {
            throw new CbshmException(Native::EBADNAME, 'segment ' . str_replace("\0", '\\0', $segment));
        }
    }

        /** The segment to use when the caller has none: $CBSHM_SEGMENT, else /cbshm. */
    public static function defaultSegment(): string
    {
        return Native::ffi()->cbshm_default_segment();
    }
}
