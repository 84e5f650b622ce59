<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

use FFI;

/**
 * A breaker shared by every process attached to its segment: every
 * PHP-FPM child of a pool, the CLI scripts and the C, Python and Ruby
 * processes of the host.
 *
 * Outcomes of call(): a callable that returns is a success; one that
 * throws an instance of one of $failureExceptions is a failure; any other
 * throwable says nothing about the downstream: ignored. Either way the
 * throwable propagates unchanged.
 *
 * A breaker whose segment or breaker cannot be had runs calls unguarded
 * (fail-open, as the C library and the Python binding do) and error()
 * says why; or, opened with failClosed: true, every call throws that
 * error instead. One that is not there yet attaches by itself once
 * `cbctl apply` makes it (CBSHM_LATE).
 */
final class Breaker
{
    /** @param list<class-string<\Throwable>> $failureExceptions */
    private function __construct(
        public readonly string $segment,
        public readonly string $name,
        public readonly array $failureExceptions,
        public readonly bool $failClosed,
        private readonly ?FFI\CData $shm,
        private readonly ?FFI\CData $b,
        private readonly int $openError,
        /** True when this open() made the handle, false when this process had it already. */
        public readonly bool $openedNow,
    ) {
    }

    /**
     * The breaker $name in $segment (null: $CBSHM_SEGMENT, else /cbshm).
     * Never throws for a segment or breaker that is missing, refused or
     * malformed: see error(). The handle is this process's for its life -
     * in a PHP-FPM child, the one opened at its first request is the one
     * every later request gets - so open it at each request; it costs a
     * look-up in a table of this process's handles.
     *
     * @param list<class-string<\Throwable>> $failureExceptions what counts
     *   as a failure of the downstream (default: every throwable)
     * @throws \InvalidArgumentException when one of $failureExceptions is
     *   not the name of a Throwable class or interface
     */
    public static function open(?string $segment, string $name,
                                array $failureExceptions = [\Throwable::class],
                                bool $failClosed = false): self
    {
        foreach ($failureExceptions as $class) {
            // Checked here, not at the first failure: a typo would count no
            // failure ever, and a non-string would throw an Error from
            // inside call() in place of the callable's exception.
            if (!is_string($class) || !is_a($class, \Throwable::class, true)) {
                throw new \InvalidArgumentException('cbshm: breaker ' . $name
                    . ': failureExceptions must name Throwable classes or interfaces, not '
                    . (is_string($class) ? "'$class'" : get_debug_type($class)));
            }
        }
        $segment ??= Cbshm::defaultSegment();
        $flags = Native::LATE | ($failClosed ? Native::FAIL_CLOSED : 0);
        [$shm, $b, $error, $openedNow] = Native::handle($segment, $name, $flags);
        return new self($segment, $name, array_values($failureExceptions), $failClosed, $shm, $b,
                        $error, $openedNow);
    }

    /**
     * The last problem the breaker met, as a CbshmException (not thrown),
     * or null: why calls run unguarded (CBSHM_ENOSEG while the segment is
     * not there yet, CBSHM_ENOBREAKER while the breaker is not).
     */
    public function error(): ?CbshmException
    {
        $code = $this->openError;
        if ($code === 0 && $this->b !== null) {
            $code = Native::ffi()->cbshm_breaker_error($this->b);
        }
        if ($code === Native::EFULL && $this->b === null && $this->shm === null) {
            return new CbshmException($code, "breaker {$this->name}", 'this process keeps '
                . Native::CACHE_SLOTS . ' breaker handles at most, and has them all open');
        }
        return $code !== 0 ? new CbshmException($code, "breaker {$this->name}") : null;
    }

    /**
     * Admits a call: returns a Ticket to record exactly once, or throws
     * OpenCircuitException (the call must not be made) -
     * BulkheadFullException when the breaker's bulkhead has every slot
     * held; with failClosed, a breaker that cannot decide throws its
     * CbshmException. With a bulkhead and max_wait > 0 it may block the
     * request up to max_wait waiting for a slot that another process
     * gives back.
     */
    public function allow(): Ticket
    {
        if ($this->b === null) {
            if ($this->failClosed) {
                throw new CbshmException($this->openError ?: Native::EINVAL, "breaker {$this->name}");
            }
            return new Ticket($this, null, null);
        }
        $ffi = Native::ffi();
        $t = $ffi->new('struct cbshm_ticket');
        $rc = $ffi->cbshm_allow($this->b, FFI::addr($t));
        if ($rc === Native::EREJECTED) {
            throw $this->rejection();
        }
        if ($rc !== 0) {
            throw new CbshmException($rc, "breaker {$this->name}");
        }
        return new Ticket($this, $this->b, $t);
    }

    private function rejection(): OpenCircuitException
    {
        $ffi = Native::ffi();
        $r = $ffi->new('struct cbshm_rejection');
        if ($ffi->cbshm_breaker_rejection($this->b, FFI::addr($r)) === 0) {
            $reason = Native::REFUSALS[$r->why] ?? 'open';
            if ($reason === 'bulkhead_full') {
                return new BulkheadFullException($this->name, $r->retry_after_ns / 1e9);
            }
            return new OpenCircuitException($this->name, $reason, $r->retry_after_ns / 1e9);
        }
        return new OpenCircuitException($this->name, 'open', 0.0);
    }

    /**
     * Runs $fn(...$args) if admitted and returns what it returns; throws
     * OpenCircuitException (BulkheadFullException for a full bulkhead)
     * without running it when the breaker refuses.
     *
     * @template R
     * @param callable(mixed...): R $fn
     * @return R
     */
    public function call(callable $fn, mixed ...$args): mixed
    {
        $ticket = $this->allow();
        try {
            $result = $fn(...$args);
        } catch (\Throwable $e) {
            $this->isFailure($e) ? $ticket->failure() : $ticket->ignored();
            throw $e;
        }
        $ticket->success();
        return $result;
    }

    private function isFailure(\Throwable $e): bool
    {
        foreach ($this->failureExceptions as $class) {
            if ($e instanceof $class) {
                return true;
            }
        }
        return false;
    }

    /** The shared state, settings aside, and every counter; null while unguarded. */
    public function snapshot(): ?Snapshot
    {
        if ($this->shm === null || $this->b === null) {
            return null;
        }
        $ffi = Native::ffi();
        $s = $ffi->new('struct cbshm_snapshot');
        if ($ffi->cbshm_snapshot($this->shm, $this->name, FFI::addr($s)) !== 0) {
            return null; // not attached (yet)
        }
        return Snapshot::of($s);
    }

    /** "closed", "open" or "half_open"; null while unguarded (error() says why). */
    public function state(): ?string
    {
        return $this->snapshot()?->state;
    }

    /** Closes the breaker and clears its counters, for every process (cbctl reset). */
    public function reset(): void
    {
        $rc = $this->shm === null ? ($this->openError ?: Native::EINVAL)
            : Native::ffi()->cbshm_reset($this->shm, $this->name);
        if ($rc !== 0) {
            throw new CbshmException($rc, "breaker {$this->name}");
        }
    }
}
