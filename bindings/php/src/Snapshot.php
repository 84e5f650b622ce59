<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

use FFI;

/**
 * A point-in-time copy of one breaker (struct cbshm_snapshot): its name,
 * state ("closed", "open", "half_open"), mode ("normal", "forced_open",
 * "forced_closed", "disabled") and every counter of the C struct under
 * its C name: requests, successes, failures, ignored, rejections, trips,
 * probes_reclaimed, slow_calls, consecutive_failures, ... Times ending in
 * _ns are CLOCK_MONOTONIC nanoseconds (PHP's hrtime(true)). The
 * bulkhead_* figures are 0 without a bulkhead: the limit in force,
 * slots held now, calls it rejected (in rejections too), slots taken
 * back from dead holders or after slot_timeout, calls that waited
 * (max_wait) and got in. toArray() gives them all.
 *
 * @property-read int $requests
 * @property-read int $successes
 * @property-read int $failures
 * @property-read int $ignored
 * @property-read int $rejections
 * @property-read int $trips
 * @property-read int $consecutive_failures
 * @property-read int $probes_in_flight
 * @property-read int $bulkhead_limit
 * @property-read int $bulkhead_in_flight
 * @property-read int $bulkhead_rejections
 * @property-read int $bulkhead_reclaimed
 * @property-read int $bulkhead_waits
 * @property-read int $mode_cause the cause of the mode's last change (cbshm.h's
 *                number: 6 operator, 8 mode_expired, 11 fleet)
 */
final class Snapshot
{
    /** @param array<string, int> $figures */
    private function __construct(
        public readonly string $name,
        public readonly string $state,
        public readonly string $mode,
        private readonly array $figures,
    ) {
    }

    /** @internal */
    public static function of(FFI\CData $s): self
    {
        $figures = [];
        foreach (array_keys(Native::FIGURES) as $field) {
            $figures[$field] = $s->$field;
        }
        $name = FFI::string($s->name);
        return new self($name, self::word(Native::STATES, $s->state, "breaker $name: state"),
                        self::word(Native::MODES, $s->mode, "breaker $name: mode"), $figures);
    }

    /** @param list<string> $words */
    private static function word(array $words, int $value, string $what): string
    {
        // Values come from shared memory that a worker can write: one
        // outside the enum is a scribbled segment, said as the library says it.
        if (!isset($words[$value])) {
            throw new CbshmException(Native::ECORRUPT, "$what: value $value");
        }
        return $words[$value];
    }

    public function __get(string $field): int
    {
        if (!array_key_exists($field, $this->figures)) {
            throw new \OutOfRangeException("cbshm: a snapshot has no figure '$field'");
        }
        return $this->figures[$field];
    }

    public function __isset(string $field): bool
    {
        return array_key_exists($field, $this->figures);
    }

    /** @return array<string, int|string> name, state, mode and every figure */
    public function toArray(): array
    {
        return ['name' => $this->name, 'state' => $this->state, 'mode' => $this->mode]
            + $this->figures;
    }
}
