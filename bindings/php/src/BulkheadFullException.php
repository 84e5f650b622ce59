<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

/**
 * The breaker's bulkhead had every slot held (max_concurrent_calls or
 * concurrency_quota calls in flight, host-wide) and its max_wait, if
 * any, ran out; the callable did not run. An OpenCircuitException with
 * $reason "bulkhead_full", so `catch (OpenCircuitException $e)` catches
 * it too; $retryAfter is 0.0 (a slot frees whenever a call in flight
 * ends).
 */
final class BulkheadFullException extends OpenCircuitException
{
    public function __construct(string $breakerName, float $retryAfter = 0.0)
    {
        parent::__construct($breakerName, 'bulkhead_full', $retryAfter);
    }
}
