<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

use FFI;

/**
 * One admitted call of the two-step API (Breaker::allow()): record it
 * exactly once, with success(), failure() or ignored(); a second record
 * throws CbshmException (CBSHM_EINVAL). A ticket never recorded holds
 * nothing in a closed breaker; a probe's lease goes back after the
 * breaker's probe_timeout.
 */
final class Ticket
{
    private bool $done = false;

    /** @internal */
    public function __construct(
        private readonly Breaker $breaker,
        private readonly ?FFI\CData $b,
        public readonly ?FFI\CData $ticket,
    ) {
        // $b null: an unguarded call's ticket; recording it records nothing.
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
        $this->take();
        if ($this->b === null) {
            return;
        }
        $ns = max((int)($retryAfter * 1e9), 1);
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

    private function record(int $outcome, ?float $duration): void
    {
        $this->take();
        if ($this->b === null) {
            return;
        }
        $ffi = Native::ffi();
        $t = FFI::addr($this->ticket);
        $rc = $duration === null ? $ffi->cbshm_record($this->b, $t, $outcome)
            : $ffi->cbshm_record_timed($this->b, $t, $outcome, max((int)($duration * 1e9), 0));
        $this->check($rc);
    }

    private function check(int $rc): void
    {
        if ($rc !== 0) {
            throw new CbshmException($rc, 'breaker ' . $this->breaker->name);
        }
    }
}
