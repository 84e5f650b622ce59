<?php
// SPDX-License-Identifier: MIT
// A PHP-FPM app whose handler calls a downstream through a circuit breaker
// that every child of the pool shares (php-fpm.conf, php.ini here).
//
//   GET /  ->  200 when the downstream answered, 502 when it failed,
//              503 at once when the breaker is open (the downstream is
//              not called), with Retry-After.
//
// Environment (passed by php-fpm.conf): CBSHM_SEGMENT (default
// /cbshm-php), DOWNSTREAM_PORT (default 9000), BREAKER_MODE ("shared", the
// default, or "per-process": a breaker of each child's own, for
// comparison), ATTEMPT_LOG (a file that gets one line per call that
// reached for the downstream: the child, when the call began and ended on
// CLOCK_MONOTONIC, and how; for the tests). Every answer names the child
// that gave it (X-Worker).
declare(strict_types=1);

// Preloaded under FPM (opcache.preload); the autoloader for the CLI.
require_once __DIR__ . '/../../bindings/php/autoload.php';

use Cbshm\Breaker;
use Cbshm\OpenCircuitException;

final class DownstreamError extends RuntimeException
{
}

function monotonic(): float
{
    return hrtime(true) / 1e9; // CLOCK_MONOTONIC on Linux, as Python's time.monotonic()
}

function log_attempt(float $began, bool $ok): void
{
    $log = getenv('ATTEMPT_LOG');
    if ($log) {
        // One write(2) per line with O_APPEND: lines from children never mix.
        file_put_contents($log, sprintf("%d %.6f %.6f %s\n", getmypid(), $began, monotonic(),
                                        $ok ? 'ok' : 'failed'), FILE_APPEND);
    }
}

function call_downstream(): void
{
    $began = monotonic();
    try {
        $port = (int)(getenv('DOWNSTREAM_PORT') ?: 9000);
        $s = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 2);
        if ($s === false) {
            throw new DownstreamError("downstream: $errstr");
        }
        stream_set_timeout($s, 2);
        fwrite($s, "GET / HTTP/1.0\r\n\r\n");
        // The status line, however its bytes arrive; any 2xx from an
        // HTTP/1.0 or HTTP/1.1 server is a success.
        $head = '';
        while (!str_contains($head, "\r\n") && strlen($head) < 256) {
            $chunk = fread($s, 256);
            if ($chunk === false || $chunk === '') {
                break;
            }
            $head .= $chunk;
        }
        fclose($s);
        if (!preg_match('~^HTTP/1\.[01] (2[0-9]{2})(?: |\r\n)~', $head)) {
            throw new DownstreamError('downstream answered badly: ' . substr(strtok($head, "\r"), 0, 64));
        }
    } catch (DownstreamError $e) {
        log_attempt($began, false);
        throw $e;
    }
    log_attempt($began, true);
}

/**
 * What libcbshm replaces: a breaker of each child's own (consecutive
 * failures, one probe per open period - per process). PHP keeps no value
 * from one request to the next, so its state is in a file of the child's
 * own, read and written at each call - as a process's memory, no other
 * process sees it.
 */
final class PerProcessBreaker
{
    private string $file;

    public function __construct(private int $threshold, private float $openTimeout)
    {
        $dir = getenv('ATTEMPT_LOG') ? dirname(getenv('ATTEMPT_LOG')) : sys_get_temp_dir();
        $this->file = sprintf('%s/cbshm-local-%d-%d', $dir, posix_getppid(), getmypid());
    }

    public function call(callable $fn): void
    {
        [$failures, $openedAt] = is_file($this->file)
            ? array_map('floatval', explode(' ', file_get_contents($this->file))) : [0, -1];
        if ($openedAt >= 0 && monotonic() - $openedAt < $this->openTimeout) {
            throw new OpenCircuitException('downstream', 'open',
                                           $this->openTimeout - (monotonic() - $openedAt));
        }
        try {
            $fn();
        } catch (DownstreamError $e) {
            $failures++;
            if ($openedAt >= 0 || $failures >= $this->threshold) {
                $openedAt = monotonic();
            }
            file_put_contents($this->file, "$failures $openedAt");
            throw $e;
        }
        file_put_contents($this->file, '0 -1');
    }
}

function breaker(): Breaker|PerProcessBreaker
{
    if (getenv('BREAKER_MODE') === 'per-process') {
        return new PerProcessBreaker((int)(getenv('BREAKER_THRESHOLD') ?: 3),
                                     (float)(getenv('BREAKER_OPEN_TIMEOUT') ?: 2));
    }
    // The child's handle: opened at its first request, the same one at
    // every later request (Breaker::open keeps it for the process's life).
    $breaker = Breaker::open(getenv('CBSHM_SEGMENT') ?: '/cbshm-php', 'downstream',
                             failureExceptions: [DownstreamError::class]);
    if ($breaker->openedNow) {
        file_put_contents('php://stderr', sprintf(
            "cbshm: process %d: opened breaker downstream (first request)%s\n", getmypid(),
            $breaker->error() ? ' unguarded: ' . $breaker->error()->getMessage() : ''));
    }
    return $breaker;
}

header('X-Worker: ' . getmypid());
header('Content-Type: text/plain');
try {
    breaker()->call('call_downstream');
    echo "ok\n";
} catch (OpenCircuitException $e) {
    http_response_code(503);
    header('Retry-After: ' . max(1, (int)ceil($e->retryAfter)));
    echo "downstream unavailable (breaker open)\n";
} catch (DownstreamError $e) {
    http_response_code(502);
    echo 'downstream failed: ', $e->getMessage(), "\n";
}
