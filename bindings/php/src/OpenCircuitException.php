<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

/**
 * The breaker refused the call; the callable did not run. $breakerName
 * is the breaker's name; $reason why it refuses: "open", "probes_busy"
 * (half-open with every probe taken), "forced_open", or "bulkhead_full"
 * (thrown as its subclass BulkheadFullException); $retryAfter the
 * seconds until it may admit a call (0.0 when the library cannot say:
 * forced open with no end, or it admits calls again already) - what a 503
 * puts in Retry-After. getCode() is CBSHM_EREJECTED (-30800).
 */
class OpenCircuitException extends CbshmException
{
    public function __construct(
        public readonly string $breakerName,
        public readonly string $reason,
        public readonly float $retryAfter,
    ) {
        parent::__construct(Native::EREJECTED, "breaker $breakerName");
    }
}
