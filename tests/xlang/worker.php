<?php
// SPDX-License-Identifier: MIT
// The PHP worker of the cross-language test (test_across_languages.py):
//
//   php worker.php SEGMENT BREAKER CALLS success|failure
//
// opens BREAKER with Cbshm\Breaker::open (the library CBSHM_LIBRARY
// names), says "ready", waits for a line on stdin (the test's "go"), makes CALLS calls through $breaker->call() that each return or
// throw DownstreamDown (the breaker's failure exception), and prints
// "ok=N failed=N rejected=N". Exits 2 when the breaker runs unguarded: a
// cross-language test must never pass on fail-open.
declare(strict_types=1);

require __DIR__ . '/../../bindings/php/autoload.php';

use Cbshm\Breaker;
use Cbshm\OpenCircuitException;

final class DownstreamDown extends RuntimeException
{
}

if ($argc !== 5 || !preg_match('/^[0-9]+$/', $argv[3])
    || !in_array($argv[4], ['success', 'failure'], true)) {
    fwrite(STDERR, "usage: worker.php SEGMENT BREAKER CALLS success|failure\n");
    exit(2);
}
[, $segment, $name, $calls, $outcome] = $argv;

$breaker = Breaker::open($segment, $name, failureExceptions: [DownstreamDown::class]);
if (($err = $breaker->error()) !== null) {
    fwrite(STDERR, "worker.php: breaker $name unguarded: {$err->getMessage()}\n");
    exit(2);
}

$downstream = function () use ($outcome): void {
    if ($outcome === 'failure') {
        throw new DownstreamDown('down');
    }
};
echo "ready\n"; // then the test's "go": every worker starts at once
fflush(STDOUT);
fgets(STDIN);
$ok = $failed = $rejected = 0;
for ($i = 0; $i < (int)$calls; $i++) {
    try {
        $breaker->call($downstream);
        $ok++;
    } catch (DownstreamDown) {
        $failed++;
    } catch (OpenCircuitException) {
        $rejected++;
    }
}
echo "ok=$ok failed=$failed rejected=$rejected\n";
