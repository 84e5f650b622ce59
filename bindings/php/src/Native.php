<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

use FFI;

/**
 * The C library as PHP's FFI sees it: where it is loaded from, the
 * declarations of cbshm.h this binding uses (struct layouts field for
 * field, checked against the C sizes), and the one place a PHP-FPM child
 * keeps its handles between requests. Nothing here is API; Breaker,
 * Ticket, Snapshot and Cbshm are.
 *
 * @internal
 */
final class Native
{
    /** The installed library's soname (package libcbshm1, or `make install`). */
    public const SONAME = 'libcbshm.so.1';

    // The library's own codes (cbshm.h, CBSHM_ERRNO_MAP) that the binding tests for.
    public const EREJECTED = -30800;
    public const ENOSEG = -30801;
    public const ECORRUPT = -30806;
    public const ENOBREAKER = -30808;
    public const EFULL = -30810;
    public const EBADNAME = -30811;
    public const ECONFIG = -30812;
    public const EINVAL = -30816;
    public const FAIL_CLOSED = 0x1;
    public const LATE = 0x4; // CBSHM_LATE: attach when the segment and breaker appear
    public const SUCCESS = 0;
    public const FAILURE = 1;
    public const IGNORED = 2;

    /** enum cbshm_state, enum cbshm_mode, enum cbshm_refusal: their words, in C order. */
    public const STATES = ['closed', 'open', 'half_open'];
    public const MODES = ['normal', 'forced_open', 'forced_closed', 'disabled'];
    public const REFUSALS = [1 => 'open', 2 => 'probes_busy', 3 => 'forced_open',
                             4 => 'bulkhead_full'];

    /** The figures of struct cbshm_snapshot, in its order, after settings. */
    public const FIGURES = [
        'requests' => 'uint64_t', 'successes' => 'uint64_t', 'failures' => 'uint64_t',
        'ignored' => 'uint64_t', 'rejections' => 'uint64_t', 'trips' => 'uint64_t',
        'probes_reclaimed' => 'uint64_t', 'slow_calls' => 'uint64_t',
        'consecutive_failures' => 'uint32_t', 'half_open_successes' => 'uint32_t',
        'probes_in_flight' => 'uint32_t', 'failing_workers' => 'uint32_t',
        'open_until_ns' => 'uint64_t', 'last_transition_ns' => 'uint64_t',
        'time_in_state_ns' => 'uint64_t', 'current_open_ms' => 'uint64_t',
        'window_calls' => 'uint64_t', 'window_failures' => 'uint64_t',
        'window_slow_calls' => 'uint64_t', 'window_failure_rate' => 'uint32_t',
        'window_slow_rate' => 'uint32_t', 'mode_until_ns' => 'uint64_t',
        'bulkhead_limit' => 'uint32_t', 'bulkhead_in_flight' => 'uint32_t',
        'bulkhead_rejections' => 'uint64_t', 'bulkhead_reclaimed' => 'uint64_t',
        'bulkhead_waits' => 'uint64_t', 'mode_cause' => 'uint32_t',
    ];

    /**
     * The C sizes the declarations must have (as the Python binding
     * asserts them); a wrong layout would misread memory.
     */
    private const SIZES = [
        'struct cbshm_settings' => 160, 'struct cbshm_snapshot' => 512,
        'struct cbshm_ticket' => 56, 'struct cbshm_rejection' => 32,
        'struct cbshm_diag' => 616,
    ];

    // How many handles one process keeps (segments and breakers it opened).
    public const CACHE_SLOTS = 64;
    // The environment variable, of this process only, that holds where
    // its handle cache is: "PID:ADDRESS".
    private const CACHE_VARIABLE = 'CBSHM_PHP_HANDLES';
    private const AT_RANDOM = 25; // <elf.h>: the auxv entry of the 16 random bytes

    private static ?FFI $ffi = null;
    private static string $path = '';
    private static ?FFI\CData $cache = null;

    public static function ffi(): FFI
    {
        return self::$ffi ?? self::load();
    }

    /** The file the library was loaded from (CBSHM_LIBRARY) or the soname. */
    public static function libraryPath(): string
    {
        self::ffi();
        return self::$path;
    }

    private static function declarations(): string
    {
        $figures = '';
        foreach (self::FIGURES as $field => $type) {
            $figures .= "$type $field; ";
        }
        // Enums are declared as int: a C enum of these values is an int.
        return <<<C
            typedef struct cbshm cbshm;
            typedef struct cbshm_breaker cbshm_breaker;
            typedef struct cbshm_config cbshm_config;
            struct cbshm_settings { uint64_t opaque[20]; };
            struct cbshm_snapshot {
                char name[64]; uint32_t index; uint32_t generation; int state; int mode;
                struct cbshm_settings settings; $figures uint32_t reserved0; uint64_t reserved[10];
            };
            struct cbshm_ticket {
                uint64_t ctl; void *slot; uint64_t token; uint64_t start_ns;
                uint32_t flags; uint32_t lease; uint64_t bulk_word; uint32_t bulk_slot;
                uint32_t reserved;
            };
            struct cbshm_rejection { int why; uint64_t retry_after_ns; uint64_t reserved[2]; };
            struct cbshm_diag {
                char file[256]; unsigned line; unsigned column; char key[64];
                char message[256]; uint64_t reserved[4];
            };
            struct cbshm_php_handle {
                char segment[208]; unsigned flags; char breaker[64];
                cbshm *shm; cbshm_breaker *b; int error;
            };
            struct cbshm_php_cache { int pid; unsigned used; struct cbshm_php_handle slot[64]; };
            const char *cbshm_version(void);
            const char *cbshm_strerror(int code);
            const char *cbshm_errname(int code);
            const char *cbshm_default_segment(void);
            int cbshm_open(const char *name, unsigned flags, cbshm **out);
            void cbshm_close(cbshm *shm);
            int cbshm_destroy(const char *name);
            int cbshm_breaker_get(cbshm *shm, const char *name, cbshm_breaker **out);
            void cbshm_breaker_release(cbshm_breaker *b);
            int cbshm_breaker_error(const cbshm_breaker *b);
            int cbshm_allow(cbshm_breaker *b, struct cbshm_ticket *t);
            int cbshm_record(cbshm_breaker *b, struct cbshm_ticket *t, int outcome);
            int cbshm_record_timed(cbshm_breaker *b, struct cbshm_ticket *t, int outcome,
                                   uint64_t duration_ns);
            int cbshm_record_retry_after(cbshm_breaker *b, struct cbshm_ticket *t, int outcome,
                                         uint64_t retry_after_ns);
            int cbshm_breaker_rejection(const cbshm_breaker *b, struct cbshm_rejection *out);
            int cbshm_snapshot(cbshm *shm, const char *name, struct cbshm_snapshot *out);
            int cbshm_reset(cbshm *shm, const char *name);
            int cbshm_config_load_file(const char *path, cbshm_config **out,
                                       struct cbshm_diag *diag);
            int cbshm_config_load_string(const char *yaml, size_t len, const char *label,
                                         cbshm_config **out, struct cbshm_diag *diag);
            const char *cbshm_config_segment(const cbshm_config *cfg, const char *given);
            void cbshm_config_free(cbshm_config *cfg);
            int cbshm_apply(const cbshm_config *cfg, const char *segment, unsigned flags,
                            void *on_change, void *ctx, unsigned *n_changes);
            char *getenv(const char *name);
            int setenv(const char *name, const char *value, int overwrite);
            int getpid(void);
            unsigned long getauxval(unsigned long type);
            C;
    }

    /**
     * The library: the file CBSHM_LIBRARY names, when set and not empty,
     * else the installed soname through the loader's search path. Nothing
     * else is tried: an override that does not load is an error, not a
     * reason to pick up another copy. A library that cannot be loaded is
     * a \RuntimeException (no CbshmException: it needs the library's
     * messages) - a deployment error, never run past fail-open.
     */
    private static function load(): FFI
    {
        if (!extension_loaded('FFI')) {
            throw new \RuntimeException('cbshm: PHP\'s FFI extension is not loaded (Debian\'s '
                . 'php8.2-common ships it: phpenmod ffi)');
        }
        $override = getenv('CBSHM_LIBRARY');
        $path = is_string($override) && $override !== '' ? $override : self::SONAME;
        try {
            $ffi = FFI::cdef(self::declarations(), $path);
        } catch (FFI\Exception $e) {
            if (str_contains($e->getMessage(), 'ffi.enable')) {
                // FFI is there but closed to this code: not a library problem.
                throw new \RuntimeException('cbshm: FFI is closed to this script (ffi.enable='
                    . ini_get('ffi.enable') . '): under PHP-FPM, preload the binding '
                    . '(opcache.preload=.../bindings/php/preload.php with ffi.enable=preload, '
                    . 'examples/php/php.ini)', 0, $e);
            }
            if ($path === $override) {
                throw new \RuntimeException("cbshm: cannot load CBSHM_LIBRARY=$override: "
                    . $e->getMessage(), 0, $e);
            }
            throw new \RuntimeException('cbshm: cannot load libcbshm: tried ' . self::SONAME
                . ' through the loader\'s search path (ld.so.cache, LD_LIBRARY_PATH): '
                . $e->getMessage() . '. Install the libcbshm1 package (or the library with '
                . '`make install` and `ldconfig`), or set CBSHM_LIBRARY to the path of '
                . 'libcbshm.so.1', 0, $e);
        }
        foreach (self::SIZES as $type => $size) {
            $got = FFI::sizeof($ffi->type($type));
            if ($got !== $size) {
                throw new \LogicException("cbshm: $type is $got bytes here, $size in C");
            }
        }
        self::$path = $path;
        return self::$ffi = $ffi;
    }

    /** The library's message for a code. */
    public static function strerror(int $code): string
    {
        return self::ffi()->cbshm_strerror($code);
    }

    /** The code's symbolic name ("CBSHM_ENOSEG", "ENOENT"). */
    public static function errname(int $code): string
    {
        return self::ffi()->cbshm_errname($code);
    }

    /**
     * The handles this process opened, kept for its life: in a PHP-FPM
     * child every PHP value ends with its request, so the table lives in
     * persistent (malloc) memory that no request frees, and its address in
     * this process's C environment (libc setenv, which PHP does not undo
     * at the end of a request as it undoes putenv()). The variable says
     * "PID:ADDRESS:IMAGE" and is read only where both the pid and the
     * image match: a child after fork has another pid, and a program that
     * exec()s keeps its pid and environment but gets a new image - new
     * memory, where the address means nothing - with new random bytes
     * from the kernel (AT_RANDOM). A value another process or image wrote
     * (inherited, or copied from elsewhere) is never dereferenced.
     */
    private static function cache(): FFI\CData
    {
        if (self::$cache !== null) {
            return self::$cache;
        }
        $ffi = self::ffi();
        $pid = $ffi->getpid();
        $image = self::image();
        $where = $ffi->getenv(self::CACHE_VARIABLE);
        if ($where !== null) {
            $parts = explode(':', FFI::string($where));
            if (count($parts) === 3 && $parts[0] === (string)$pid && $parts[2] === $image
                && preg_match('/^[1-9][0-9]*$/', $parts[1]) === 1) {
                return self::$cache = $ffi->cast('struct cbshm_php_cache *', (int)$parts[1]);
            }
        }
        // owned=false, persistent=true: malloc'd, never freed; zeroed by FFI.
        $table = $ffi->new('struct cbshm_php_cache', false, true);
        $table->pid = $pid;
        $pointer = FFI::addr($table);
        $address = FFI::cast('uintptr_t', $pointer)->cdata;
        $ffi->setenv(self::CACHE_VARIABLE, "$pid:$address:$image", 1);
        return self::$cache = $pointer;
    }

    /**
     * This program image's own 16 random bytes, in hex: what the kernel
     * gave it at exec (getauxval(AT_RANDOM)), the same after fork, new
     * after every exec.
     */
    private static function image(): string
    {
        $ffi = self::ffi();
        $random = $ffi->getauxval(self::AT_RANDOM);
        if ($random === 0) {
            return '0';
        }
        return bin2hex(FFI::string($ffi->cast('char *', $random), 16));
    }

    /**
     * This process's handle of breaker $name in $segment opened with
     * $flags: the one it opened before, else a new one. Returns [shm,
     * breaker, error]: shm and breaker C pointers (null when they could
     * not be had) and the code that says why (0 when attached or
     * attaching).
     *
     * @return array{0: ?FFI\CData, 1: ?FFI\CData, 2: int}
     */
    public static function handle(string $segment, string $name, int $flags): array
    {
        if (str_contains($segment, "\0") || str_contains($name, "\0")) {
            // C would read the name only up to its NUL: another segment or
            // breaker than the one asked for, and a slot that no later
            // look-up matches. Refused as the library refuses a bad name.
            return [null, null, self::EBADNAME, true];
        }
        $ffi = self::ffi();
        $cache = self::cache();
        $shm = null;
        for ($i = 0; $i < $cache->used; $i++) {
            $slot = $cache->slot[$i];
            if (FFI::string($slot->segment) !== $segment || $slot->flags !== $flags) {
                continue;
            }
            if ($slot->shm !== null) {
                $shm = $slot->shm;
            }
            if (FFI::string($slot->breaker) !== $name) {
                continue;
            }
            if ($slot->b === null && $slot->error !== self::EBADNAME) {
                // A look-up that failed for a passing reason (the table
                // lock held, no memory): tried again at this request.
                self::resolve($slot);
            }
            return [$slot->shm, $slot->b, $slot->error, false];
        }
        if (strlen($segment) > 200 || strlen($name) > 63) {
            // Longer than the C limits (CBSHM_SEGMENT_NAME_MAX, CBSHM_NAME_MAX)
            // and than a slot: refused as the library refuses them.
            return [null, null, self::EBADNAME, true];
        }
        if ($shm === null) {
            $out = $ffi->new('cbshm *[1]');
            $error = $ffi->cbshm_open($segment, $flags, $out);
            if ($error !== 0 && $error !== self::EBADNAME) {
                // Nothing opened, nothing to keep: the next open tries
                // again (with CBSHM_LATE only -ENOMEM gets here).
                return [null, null, $error, true];
            }
            $shm = $error === 0 ? $out[0] : null;
        }
        if ($cache->used >= self::CACHE_SLOTS) {
            // A handle no table kept would be opened anew, and leaked, at
            // each request: unguarded, CBSHM_EFULL (Breaker::error() says
            // which table is full).
            return [null, null, self::EFULL, true];
        }
        // Kept whether the look-up worked or not: the segment's handle is
        // this process's from now on, and a malformed name is said once.
        $slot = $cache->slot[$cache->used];
        FFI::memcpy($slot->segment, $segment, strlen($segment));
        FFI::memcpy($slot->breaker, $name, strlen($name));
        $slot->flags = $flags;
        $slot->shm = $shm;
        $slot->b = null;
        $slot->error = $shm === null ? self::EBADNAME : 0;
        $cache->used++;
        if ($shm !== null) {
            self::resolve($slot);
        }
        return [$slot->shm, $slot->b, $slot->error, true];
    }

    /** Looks the slot's breaker up in its segment (cbshm_breaker_get). */
    private static function resolve(FFI\CData $slot): void
    {
        if ($slot->shm === null) {
            return;
        }
        $out = self::ffi()->new('cbshm_breaker *[1]');
        $slot->error = self::ffi()->cbshm_breaker_get($slot->shm, FFI::string($slot->breaker), $out);
        $slot->b = $slot->error === 0 ? $out[0] : null;
    }
}
