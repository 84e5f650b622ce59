<?php
// SPDX-License-Identifier: MIT
// opcache.preload for PHP-FPM (examples/php/php.ini): compiles the
// binding's classes into the preloaded set at the master's start. With
// ffi.enable=preload (Debian's default) only preloaded code may use FFI's
// API, so the binding works under FPM and FFI stays closed to every other
// script of the pool.
declare(strict_types=1);

foreach (['CbshmException', 'OpenCircuitException', 'BulkheadFullException', 'ConfigException',
          'Native', 'Snapshot', 'Ticket', 'Breaker', 'Cbshm'] as $class) {
    require_once __DIR__ . "/src/$class.php";
}
