<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

use FFI;

/**
 * One admitted call of the two-step API (Breaker::allow()): record it
 * exactly once, with success(), failure() or ignored(); a second record
 * throws CbshmException (CBSHM_EINVAL). A ticket dropped unrecorded - its
 * request ended, or exit() left call() - is recorded as ignored when PHP
 * destroys it, so a probe's lease goes back at once rather than after
 * the breaker's probe_timeout.
 */
final class Ticket
{
    private bool $done = false;
    private readonly int $pid;

    /** @internal */
    public function __construct(
        private readonly Breaker $breaker,
        private readonly ?FFI\CData $b,
        public readonly ?FFI\CData $ticket,
    ) {
        // $b null: an unguarded call's ticket; recording it records nothing.
        $this->pid = getmypid();
    }

    /**
     * exit() inside Breaker::call() runs no catch and no finally, only
     * destructors: in a PHP-FPM child, which lives on, a probe left so
     * would hold its lease, and every child be refused, until
     * probe_timeout. A copy in a child after pcntl_fork is the parent's
     * call, for the parent to record.
     */
    public function __destruct()
    {
        if (!$this->done && $this->b !== null && getmypid() === $this->pid) {
            $this->done = true;
            Native::ffi()->cbshm_record($this->b, FFI::addr($this->ticket), Native::IGNORED);
        }
    }

    /** @param ?float $duration seconds the call took, when the caller measured it */
    public function success(?float $duration = null): void
    {
        $this->record(Native::SUCCESS, $duration);
    }

    /**
     * @param ?float $retryAfter seconds the downstream asked to be left
     *   alone (a 429 or 503 with Retry-After): the breaker opens at once
     *   for at least that long.
     */
    public function failure(?float $duration = null, ?float $retryAfter = null): void
    {
        if ($retryAfter === null || $retryAfter <= 0) {
            $this->record(Native::FAILURE, $duration);
            return;
        }
        $ns = self::nanoseconds($retryAfter, 'retryAfter', 1);
        $this->take();
        if ($this->b === null) {
            return;
        }
        $this->check(Native::ffi()->cbshm_record_retry_after($this->b, FFI::addr($this->ticket),
                                                            Native::FAILURE, $ns));
    }

    public function ignored(?float $duration = null): void
    {
        $this->record(Native::IGNORED, $duration);
    }

    private function take(): void
    {
        if ($this->done) {
            throw new CbshmException(Native::EINVAL, 'breaker ' . $this->breaker->name,
                                     'ticket recorded twice');
        }
        $this->done = true;
    }

    /**
     * Seconds as the C side's nanoseconds, at least $least. Checked before
     * the ticket is taken: a bad value leaves it to be recorded. A value
     * past PHP's integers (292 years) is the most PHP can pass, not the
     * wrapped-around number an (int) cast makes of it.
     */
    private static function nanoseconds(float $seconds, string $what, int $least): int
    {
        if (is_nan($seconds)) {
            throw new \ValueError("cbshm: $what must be a number of seconds, not NAN");
        }
        if ($seconds * 1e9 >= (float)PHP_INT_MAX) {
            return PHP_INT_MAX;
        }
        return max((int)($seconds * 1e9), $least);
    }

    private function record(int $outcome, ?float $duration): void
    {
        $ns = $duration === null ? null : self::nanoseconds($duration, 'duration', 0);
        $this->take();
        if ($this->b === null) {
            return;
        }
        $ffi = Native::ffi();
        $t = FFI::addr($this->ticket);
        $rc = $ns === null ? $ffi->cbshm_record($this->b, $t, $outcome)
            : $ffi->cbshm_record_timed($this->b, $t, $outcome, $ns);
        $this->check($rc);
    }

    private function check(int $rc): void
    {
        if ($rc !== 0) {
            throw new CbshmException($rc, 'breaker ' . $this->breaker->name);
        }
    }
}
