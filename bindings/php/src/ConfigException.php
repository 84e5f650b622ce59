<?php
// SPDX-License-Identifier: MIT
declare(strict_types=1);

namespace Cbshm;

/**
 * Cbshm::apply() refused the YAML: $configFile ("<yaml>" for text),
 * $configLine and $column (1-based) say where, $key the key path
 * ("breakers[2].open_timeout"), $problem what is wrong; the message is
 * "FILE:LINE:COL: KEY: PROBLEM". getCode() is CBSHM_ECONFIG (-30812).
 * (Named so: Exception's own $file and $line say where PHP threw it.)
 */
final class ConfigException extends CbshmException
{
    public function __construct(
        public readonly string $configFile,
        public readonly int $configLine,
        public readonly int $column,
        public readonly string $key,
        public readonly string $problem,
    ) {
        parent::__construct(Native::ECONFIG, '', "$configFile:$configLine:$column: $key: $problem");
    }
}
