<?php
// SPDX-License-Identifier: MIT
// The PHP binding against the real library (CBSHM_LIBRARY): calls,
// failure and ignored exceptions, the trip and OpenCircuitException,
// retryAfter, fail-open and fail-closed, tickets recorded exactly once,
// apply's errors, snapshots, and the handle a process keeps. Plain PHP:
// every function test_* runs; the last line is "N passed, N failed".
//
//   CBSHM_LIBRARY=build/dev/libcbshm/libcbshm.so.1 php tests/php/test_binding.php [NAME]
declare(strict_types=1);

require __DIR__ . '/../../bindings/php/autoload.php';

use Cbshm\Breaker;
use Cbshm\BulkheadFullException;
use Cbshm\Cbshm;
use Cbshm\CbshmException;
use Cbshm\ConfigException;
use Cbshm\OpenCircuitException;

final class Boom extends RuntimeException
{
}

final class AssertionFailed extends Exception
{
}

function check(bool $ok, string $what): void
{
    if (!$ok) {
        throw new AssertionFailed($what);
    }
}

function same(mixed $want, mixed $got, string $what = ''): void
{
    check($want === $got, sprintf('%s: want %s, got %s', $what, var_export($want, true),
                                  var_export($got, true)));
}

/** Runs $fn, which must throw $class; returns what it threw. */
function throws(string $class, callable $fn): Throwable
{
    try {
        $fn();
    } catch (Throwable $e) {
        check($e instanceof $class, "want $class, got " . get_class($e) . ': ' . $e->getMessage());
        return $e;
    }
    throw new AssertionFailed("want $class, nothing thrown");
}

$segments = [];

/** A new segment with breaker "down" (threshold 2, open 1 s, one probe). */
function segment(string $settings = ''): string
{
    global $segments;
    $seg = sprintf('/cbshm-php-test-%d-%d', getmypid(), count($segments));
    $segments[] = $seg;
    Cbshm::apply("segment: $seg\nbreakers:\n  - name: down\n    failure_threshold: 2\n"
                 . "    open_timeout: 1s\n    half_open_max_calls: 1\n$settings");
    return $seg;
}

function unused_segment(): string
{
    global $segments;
    $seg = sprintf('/cbshm-php-test-%d-%d', getmypid(), count($segments));
    $segments[] = $seg;
    return $seg;
}

function boom(): never
{
    throw new Boom('downstream down');
}

// -- calls -------------------------------------------------------------

function test_a_call_returns_what_the_callable_returns_and_counts_a_success(): void
{
    $b = Breaker::open(segment(), 'down');
    same(null, $b->error(), 'error');
    same(42, $b->call(fn(int $x, int $y) => $x * $y, 6, 7), 'result');
    $s = $b->snapshot();
    same(1, $s->requests, 'requests');
    same(1, $s->successes, 'successes');
    same('closed', $b->state(), 'state');
}

function test_a_failure_exception_is_counted_and_propagates_unchanged(): void
{
    $b = Breaker::open(segment(), 'down', failureExceptions: [Boom::class]);
    $thrown = new Boom('x');
    $got = throws(Boom::class, fn() => $b->call(function () use ($thrown) { throw $thrown; }));
    same($thrown, $got, 'the same exception');
    same(1, $b->snapshot()->failures, 'failures');
    same(1, $b->snapshot()->consecutive_failures, 'consecutive_failures');
}

function test_an_exception_outside_failure_exceptions_is_ignored_and_propagates(): void
{
    $b = Breaker::open(segment(), 'down', failureExceptions: [Boom::class]);
    for ($i = 0; $i < 3; $i++) {
        throws(LogicException::class, fn() => $b->call(function () { throw new LogicException('bug'); }));
    }
    $s = $b->snapshot();
    same(3, $s->ignored, 'ignored');
    same(0, $s->failures, 'failures');
    same('closed', $s->state, 'state');
}

function test_by_default_every_throwable_is_a_failure(): void
{
    $b = Breaker::open(segment(), 'down');
    throws(TypeError::class, fn() => $b->call(function () { throw new TypeError('t'); }));
    same(1, $b->snapshot()->failures, 'failures');
}

function test_failure_exceptions_must_name_throwable_classes(): void
{
    // A typo counted no failure ever; a non-string threw an Error from
    // inside call() in place of the callable's exception, and left the
    // ticket unrecorded.
    foreach (['RuntimeExcepton', 42, stdClass::class] as $bad) {
        $e = throws(InvalidArgumentException::class,
                    fn() => Breaker::open(segment(), 'down', failureExceptions: [$bad]));
        check(str_contains($e->getMessage(), 'failureExceptions must name Throwable classes'),
              $e->getMessage());
    }
    $b = Breaker::open(segment(), 'down', failureExceptions: ['\\RuntimeException', Throwable::class]);
    throws(Boom::class, fn() => $b->call('boom'));
    same(1, $b->snapshot()->failures, 'failures');
}

// -- the trip ----------------------------------------------------------

function test_threshold_failures_trip_it_and_then_the_callable_does_not_run(): void
{
    $b = Breaker::open(segment(), 'down');
    for ($i = 0; $i < 2; $i++) {
        throws(Boom::class, fn() => $b->call('boom'));
    }
    same('open', $b->state(), 'state');
    $ran = false;
    $e = throws(OpenCircuitException::class, function () use ($b, &$ran) {
        $b->call(function () use (&$ran) { $ran = true; });
    });
    same(false, $ran, 'the callable ran');
    same('down', $e->breakerName, 'breakerName');
    same('open', $e->reason, 'reason');
    same(-30800, $e->getCode(), 'code');
    same('CBSHM_EREJECTED', $e->errname, 'errname');
    check($e instanceof CbshmException, 'an OpenCircuitException is a CbshmException');
    check($e->retryAfter > 0.5 && $e->retryAfter <= 1.0, "retryAfter $e->retryAfter");
    same(1, $b->snapshot()->rejections, 'rejections');
    same(1, $b->snapshot()->trips, 'trips');
}

function test_after_the_open_period_one_probe_runs_and_a_success_closes_it(): void
{
    $b = Breaker::open(segment(), 'down');
    for ($i = 0; $i < 2; $i++) {
        throws(Boom::class, fn() => $b->call('boom'));
    }
    $e = throws(OpenCircuitException::class, fn() => $b->call(fn() => 1));
    usleep((int)($e->retryAfter * 1e6) + 50000);
    $probe = $b->allow();
    same('half_open', $b->state(), 'state while probing');
    $busy = throws(OpenCircuitException::class, fn() => $b->call(fn() => 1));
    same('probes_busy', $busy->reason, 'reason with the probe taken');
    $probe->success();
    same('closed', $b->state(), 'state after the probe');
}

function test_a_reset_closes_it(): void
{
    $b = Breaker::open(segment(), 'down');
    for ($i = 0; $i < 2; $i++) {
        throws(Boom::class, fn() => $b->call('boom'));
    }
    $b->reset();
    same('closed', $b->state(), 'state');
    same(7, $b->call(fn() => 7), 'a call after the reset');
}

// -- fail-open, fail-closed, late --------------------------------------

function test_a_missing_segment_runs_calls_unguarded_and_error_says_why(): void
{
    $b = Breaker::open(unused_segment(), 'down');
    same(-30801, $b->error()?->getCode(), 'error code');
    same('CBSHM_ENOSEG', $b->error()->errname, 'errname');
    check(str_contains($b->error()->getMessage(), 'breaker down: segment does not exist'),
          $b->error()->getMessage());
    for ($i = 0; $i < 5; $i++) {
        throws(Boom::class, fn() => $b->call('boom'));
    }
    same(3, $b->call(fn() => 3), 'a call after five failures');
    same(null, $b->state(), 'state');
    same(null, $b->snapshot(), 'snapshot');
}

function test_a_missing_breaker_runs_calls_unguarded(): void
{
    $b = Breaker::open(segment(), 'other');
    same(-30808, $b->error()?->getCode(), 'CBSHM_ENOBREAKER');
    same(1, $b->call(fn() => 1), 'result');
}

function test_a_malformed_name_runs_calls_unguarded(): void
{
    foreach (['no slash', str_repeat('x', 300)] as $segment) {
        $b = Breaker::open($segment, 'down');
        same(-30811, $b->error()?->getCode(), "CBSHM_EBADNAME for segment '$segment'");
        same(1, $b->call(fn() => 1), 'result');
    }
    $b = Breaker::open(segment(), str_repeat('n', 64));
    same(-30811, $b->error()?->getCode(), 'CBSHM_EBADNAME for a 64-byte breaker name');
}

function test_fail_closed_refuses_each_call_with_the_reason_and_runs_nothing(): void
{
    $b = Breaker::open(unused_segment(), 'down', failClosed: true);
    $ran = false;
    $e = throws(CbshmException::class, function () use ($b, &$ran) {
        $b->call(function () use (&$ran) { $ran = true; });
    });
    same(false, $ran, 'the callable ran');
    same(-30801, $e->getCode(), 'code');
    check(!($e instanceof OpenCircuitException), 'not an open circuit');
    throws(CbshmException::class, fn() => $b->allow());
}

function test_a_breaker_opened_before_its_segment_attaches_once_it_is_applied(): void
{
    $seg = unused_segment();
    $b = Breaker::open($seg, 'down');
    same(-30801, $b->error()?->getCode(), 'before');
    Cbshm::apply("segment: $seg\nbreakers:\n  - name: down\n    failure_threshold: 2\n");
    $deadline = hrtime(true) + 3_000_000_000;
    while ($b->error() !== null && hrtime(true) < $deadline) {
        $b->call(fn() => 0);
        usleep(20000);
    }
    same(null, $b->error(), 'after');
    throws(Boom::class, fn() => $b->call('boom'));
    throws(Boom::class, fn() => $b->call('boom'));
    same('open', $b->state(), 'state');
}

// -- tickets -----------------------------------------------------------

function test_a_ticket_is_recorded_exactly_once(): void
{
    $b = Breaker::open(segment(), 'down');
    $t = $b->allow();
    $t->success();
    foreach (['success', 'failure', 'ignored'] as $again) {
        $e = throws(CbshmException::class, fn() => $t->$again());
        same(-30816, $e->getCode(), "$again after success");
        check(str_contains($e->getMessage(), 'ticket recorded twice'), $e->getMessage());
    }
    same(1, $b->snapshot()->requests, 'requests');
}

function test_tickets_record_success_failure_and_ignored(): void
{
    $b = Breaker::open(segment(), 'down');
    $b->allow()->success();
    $b->allow()->ignored();
    $b->allow()->failure();
    $b->allow()->success(0.25);
    $s = $b->snapshot();
    same([4, 2, 1, 1], [$s->requests, $s->successes, $s->failures, $s->ignored], 'counts');
}

function test_a_failure_with_retry_after_opens_it_for_at_least_that_long(): void
{
    $b = Breaker::open(segment("    open_timeout_max: 1m\n"), 'down');
    $b->allow()->failure(retryAfter: 5.0);
    same('open', $b->state(), 'state');
    $e = throws(OpenCircuitException::class, fn() => $b->allow());
    check($e->retryAfter > 4.0 && $e->retryAfter <= 5.0, "retryAfter $e->retryAfter");
}

function test_an_unguarded_ticket_records_nothing_and_still_only_once(): void
{
    $b = Breaker::open(unused_segment(), 'down');
    $t = $b->allow();
    $t->failure();
    throws(CbshmException::class, fn() => $t->success());
}

function test_a_bad_duration_leaves_the_ticket_to_be_recorded(): void
{
    $b = Breaker::open(segment("    slow_call_duration: 1s\n    minimum_calls: 10\n"), 'down');
    $t = $b->allow();
    $e = throws(ValueError::class, fn() => $t->success(NAN));
    check(str_contains($e->getMessage(), 'duration must be a number of seconds'), $e->getMessage());
    throws(ValueError::class, fn() => $t->failure(retryAfter: NAN));
    same(0, $b->snapshot()->requests, 'nothing recorded yet');
    $t->success(INF); // still recordable: slow, not the 0 that (int)INF is
    $b->allow()->success(1e30);
    $s = $b->snapshot();
    same([2, 2, 2], [$s->requests, $s->successes, $s->slow_calls], 'requests, successes, slow');
}

function test_a_retry_after_past_what_php_holds_opens_it_for_the_most(): void
{
    $b = Breaker::open(segment("    open_timeout_max: 1h\n"), 'down');
    $b->allow()->failure(retryAfter: INF); // (int)(INF * 1e9) is 0: it opened for 1 s
    $e = throws(OpenCircuitException::class, fn() => $b->allow());
    check($e->retryAfter > 3500.0 && $e->retryAfter <= 3600.0, "retryAfter $e->retryAfter");
}

function test_exit_inside_call_gives_a_probes_lease_back(): void
{
    // In a child: exit() ends it. Its shutdown function looks at the
    // breaker after the probe's call() was left by exit(), as the next
    // request of a PHP-FPM child would (the child does not die).
    $script = 'require ' . var_export(__DIR__ . '/../../bindings/php/autoload.php', true) . ';'
        . '$seg = "/cbshm-php-exit-" . getmypid();'
        . 'Cbshm\Cbshm::apply("segment: $seg\nbreakers:\n  - name: p\n    failure_threshold: 1\n'
        . '    open_timeout: 10ms\n    probe_timeout: 1m\n");'
        . '$b = Cbshm\Breaker::open($seg, "p");'
        . '$b->allow()->failure(); usleep(30000);'
        . 'register_shutdown_function(function () use ($b, $seg) {'
        . '  $s = $b->snapshot(); echo $s->state, " in flight ", $s->probes_in_flight;'
        . '  Cbshm\Cbshm::destroy($seg); });'
        . '$b->call(function () { echo "probe|"; exit(0); });';
    $out = (string)shell_exec(escapeshellarg(PHP_BINARY) . ' -r ' . escapeshellarg($script) . ' 2>&1');
    same('probe|half_open in flight 0', $out, 'output');
}

function test_a_ticket_copied_into_a_forked_child_is_the_parents_to_record(): void
{
    $b = Breaker::open(segment(), 'down');
    $t = $b->allow();
    $pid = pcntl_fork();
    if ($pid === 0) {
        exit(0); // destroys the child's copy of $t
    }
    pcntl_waitpid($pid, $status);
    same(0, $b->snapshot()->requests, 'the child recorded nothing');
    $t->success();
    same(1, $b->snapshot()->successes, 'successes');
}

// -- the bulkhead ------------------------------------------------------

function test_a_full_bulkhead_throws_bulkhead_full_until_a_slot_is_given_back(): void
{
    $b = Breaker::open(segment("    max_concurrent_calls: 2\n"), 'down');
    $held = [$b->allow(), $b->allow()];
    $ran = false;
    $e = throws(BulkheadFullException::class, function () use ($b, &$ran) {
        $b->call(function () use (&$ran) { $ran = true; });
    });
    same(false, $ran, 'the callable ran');
    check($e instanceof OpenCircuitException, 'a BulkheadFullException is an OpenCircuitException');
    same(['down', 'bulkhead_full', 0.0, 'CBSHM_EREJECTED'],
         [$e->breakerName, $e->reason, $e->retryAfter, $e->errname], 'the rejection');
    same('breaker down: call rejected by the circuit breaker', $e->getMessage(), 'message');
    $snap = $b->snapshot();
    same([2, 2, 1, 1],
         [$snap->bulkhead_limit, $snap->bulkhead_in_flight, $snap->bulkhead_rejections,
          $snap->rejections], 'limit, in flight, bulkhead rejections, rejections');
    $held[0]->success();
    same(7, $b->call(fn() => 7), 'the call after a slot was given back');
    $held[1]->success();
    $snap = $b->snapshot();
    same([0, 1, 3], [$snap->bulkhead_in_flight, $snap->bulkhead_rejections, $snap->successes],
         'in flight, bulkhead rejections, successes');
}

function test_a_breaker_without_a_bulkhead_shows_zero_figures(): void
{
    $snap = Breaker::open(segment(), 'down')->snapshot();
    same([0, 0, 0, 0, 0],
         [$snap->bulkhead_limit, $snap->bulkhead_in_flight, $snap->bulkhead_rejections,
          $snap->bulkhead_reclaimed, $snap->bulkhead_waits], 'bulkhead figures');
}

function test_with_max_wait_a_call_waits_for_a_slot_another_process_gives_back(): void
{
    $b = Breaker::open(segment("    max_concurrent_calls: 1\n    max_wait: 5s\n"), 'down');
    $held = $b->allow();
    $pid = pcntl_fork();
    if ($pid === 0) {
        // The child's call waits for the parent's slot: exit 0 when it
        // got in after a wait, 1 when it was refused, 2 when it did not wait.
        $t0 = hrtime(true);
        try {
            $b->call(fn() => null);
        } catch (OpenCircuitException) {
            exit(1);
        }
        exit(hrtime(true) - $t0 > 150000000 ? 0 : 2);
    }
    usleep(200000);
    $held->success();
    pcntl_waitpid($pid, $status);
    same(0, pcntl_wexitstatus($status), 'the waiting child (1: refused, 2: did not wait)');
    $snap = $b->snapshot();
    same([1, 0, 2], [$snap->bulkhead_waits, $snap->bulkhead_rejections, $snap->successes],
         'waits, bulkhead rejections, successes');
}

function test_whatever_leaves_call_gives_its_bulkhead_slot_back(): void
{
    // Failures only of LogicException: the two leavers do not open the breaker.
    $b = Breaker::open(segment("    max_concurrent_calls: 1\n"), 'down', [LogicException::class]);
    $leavers = [
        'an exception' => function () { throw new RuntimeException('down'); },
        'an Error' => function () { return strlen([]); },
        'a dropped ticket' => null,
    ];
    foreach ($leavers as $what => $leave) {
        if ($leave === null) {
            $b->allow(); // never recorded: destroyed at once
        } else {
            throws(Throwable::class, fn() => $b->call($leave));
        }
        same(0, $b->snapshot()->bulkhead_in_flight, "in flight after $what");
    }
    same(7, $b->call(fn() => 7), 'the next call');
}

function test_exit_inside_call_gives_its_bulkhead_slot_back(): void
{
    // A PHP-FPM child lives on after exit(): its next request must find
    // the slot free, not wait for slot_timeout.
    $script = 'require ' . var_export(__DIR__ . '/../../bindings/php/autoload.php', true) . ';'
        . '$seg = "/cbshm-php-bexit-" . getmypid();'
        . 'Cbshm\Cbshm::apply("segment: $seg\nbreakers:\n  - name: p\n    max_concurrent_calls: 1\n'
        . '    slot_timeout: 1h\n");'
        . '$b = Cbshm\Breaker::open($seg, "p");'
        . 'register_shutdown_function(function () use ($b, $seg) {'
        . '  echo "in flight ", $b->snapshot()->bulkhead_in_flight;'
        . '  Cbshm\Cbshm::destroy($seg); });'
        . '$b->call(function () { echo "call|"; exit(0); });';
    $out = (string)shell_exec(escapeshellarg(PHP_BINARY) . ' -r ' . escapeshellarg($script) . ' 2>&1');
    same('call|in flight 0', $out, 'output');
}

function test_a_forked_child_does_not_give_the_parents_bulkhead_slot_back(): void
{
    $b = Breaker::open(segment("    max_concurrent_calls: 2\n"), 'down');
    $t = $b->allow();
    $pid = pcntl_fork();
    if ($pid === 0) {
        exit(0); // destroys the child's copy of $t
    }
    pcntl_waitpid($pid, $status);
    same(1, $b->snapshot()->bulkhead_in_flight, 'in flight: the parent\'s call');
    $t->success();
    same(0, $b->snapshot()->bulkhead_in_flight, 'in flight after the parent recorded');
}

function test_a_child_killed_mid_call_gives_its_bulkhead_slot_back(): void
{
    // A PHP-FPM child killed by the master (request_terminate_timeout,
    // a crash) in the middle of a call: no destructor runs; the slot
    // names a dead process, and a call that finds the bulkhead full
    // takes it back.
    $b = Breaker::open(segment("    max_concurrent_calls: 1\n    slot_timeout: 1h\n"), 'down');
    $pid = pcntl_fork();
    if ($pid === 0) {
        $b->call(function () { sleep(30); });
        exit(0);
    }
    for ($i = 0; $i < 500 && $b->snapshot()->bulkhead_in_flight === 0; $i++) {
        usleep(10000);
    }
    same(1, $b->snapshot()->bulkhead_in_flight, 'the child holds the slot');
    posix_kill($pid, SIGKILL);
    pcntl_waitpid($pid, $status);
    usleep(20000); // past the bulkhead's scan interval (10 ms)
    same(7, $b->call(fn() => 7), 'the call after the kill');
    $snap = $b->snapshot();
    same([0, 1, 0], [$snap->bulkhead_in_flight, $snap->bulkhead_reclaimed, $snap->bulkhead_rejections],
         'in flight, reclaimed, bulkhead rejections');
}

// -- apply -------------------------------------------------------------

function test_apply_counts_its_changes_and_a_second_apply_changes_nothing(): void
{
    $seg = unused_segment();
    $yaml = "segment: $seg\nbreakers:\n  - name: a\n  - name: b\n";
    same(3, Cbshm::apply($yaml), 'created, added a, added b');
    same(0, Cbshm::apply($yaml), 'again');
    same(1, Cbshm::apply("segment: $seg\nbreakers:\n  - name: a\n"), 'removed b');
}

function test_apply_says_file_line_column_key_and_problem(): void
{
    $e = throws(ConfigException::class, fn() => Cbshm::apply(
        "segment: /cbshm-php-never\nbreakers:\n  - name: a\n    failure_threshold: many\n"));
    same('<yaml>:4:24: breakers[0].failure_threshold: expected an integer, got \'many\'',
         $e->getMessage(), 'message');
    same(['<yaml>', 4, 24, 'breakers[0].failure_threshold'],
         [$e->configFile, $e->configLine, $e->column, $e->key], 'fields');
    same(-30812, $e->getCode(), 'code');
    same('CBSHM_ECONFIG', $e->errname, 'errname');
    $file = tempnam(sys_get_temp_dir(), 'cbshm-php-');
    file_put_contents($file, "segment: /cbshm-php-never\nbreakers:\n  - name: a\n    colour: red\n");
    try {
        $e = throws(ConfigException::class, fn() => Cbshm::apply($file));
        check(str_starts_with($e->getMessage(), "$file:4:5: breakers[0].colour: "), $e->getMessage());
    } finally {
        unlink($file);
    }
}

function test_apply_of_a_missing_file_is_enoent(): void
{
    $e = throws(CbshmException::class, fn() => Cbshm::apply('/nonexistent/breakers.yaml'));
    same(-2, $e->getCode(), 'code');
    same('ENOENT', $e->errname, 'errname');
    check(str_starts_with($e->getMessage(), '/nonexistent/breakers.yaml: '), $e->getMessage());
}

// -- snapshot, the process's handle, the library -----------------------

function test_a_snapshot_holds_every_figure_of_the_c_struct(): void
{
    $b = Breaker::open(segment(), 'down');
    $b->call(fn() => 1);
    $all = $b->snapshot()->toArray();
    same(['name', 'state', 'mode'], array_slice(array_keys($all), 0, 3), 'first keys');
    same(array_keys(\Cbshm\Native::FIGURES), array_slice(array_keys($all), 3), 'figures');
    same(['down', 'closed', 'normal'], [$all['name'], $all['state'], $all['mode']], 'words');
    same(1, $all['window_calls'], 'window_calls');
    throws(OutOfRangeException::class, fn() => $b->snapshot()->colour);
}

function test_a_process_opens_each_breaker_once_and_keeps_it(): void
{
    $seg = segment();
    $first = Breaker::open($seg, 'down');
    $again = Breaker::open($seg, 'down');
    same(true, $first->openedNow, 'first');
    same(false, $again->openedNow, 'again');
    $first->allow()->failure();
    $again->allow()->failure();
    same('open', $again->state(), 'one breaker');
    check((bool)preg_match('/^' . getmypid() . ':[1-9][0-9]*:[0-9a-f]{32}$/',
                           (string)getenv('CBSHM_PHP_HANDLES')),
          'CBSHM_PHP_HANDLES=' . getenv('CBSHM_PHP_HANDLES'));
}

/** The output of PHP code run in a child process: sh -c 'PREFIX php FILE', FILE the code. */
function php_child(string $code, string $prefix = ''): string
{
    $file = tempnam(sys_get_temp_dir(), 'cbshm-php-test-');
    file_put_contents($file, '<?php require '
        . var_export(__DIR__ . '/../../bindings/php/autoload.php', true) . ";\n$code\n");
    $out = (string)shell_exec('sh -c ' . escapeshellarg($prefix . ' ' . escapeshellarg(PHP_BINARY)
        . ' ' . escapeshellarg($file)) . ' 2>&1');
    unlink($file);
    return $out;
}

function test_a_handle_table_address_this_image_did_not_write_is_never_used(): void
{
    $seg = segment();
    $use = '$b = Cbshm\Breaker::open(' . var_export($seg, true) . ', "down");'
        . 'echo $b->call(fn() => "ran"), "|", $b->error()?->getMessage() ?? "guarded";';
    // The variable with this process's pid, as a value copied from
    // elsewhere would be (exec keeps the pid): PHP read 4096 as its table.
    foreach (['$$:4096', '$$:4096:0', '$$:4096:' . str_repeat('ab', 16)] as $value) {
        same('ran|guarded', php_child($use, "exec env CBSHM_PHP_HANDLES=$value"), $value);
    }
    // A script that exec()s itself keeps its pid and its environment;
    // the new image's memory holds no table at the address.
    $out = php_child($use . 'echo "|";'
        . 'if (!getenv("AGAIN")) { putenv("AGAIN=1"); pcntl_exec(PHP_BINARY, [__FILE__]); }'
        . '', 'AGAIN= exec');
    same('ran|guarded|', substr($out, 0, strlen('ran|guarded|')), 'before exec');
    same(2, substr_count($out, 'ran|guarded|'), "both images: $out");
    same(5, Breaker::open($seg, 'down')->snapshot()->successes, 'every call counted');
}

function test_a_name_holding_a_nul_is_refused_not_cut_at_it(): void
{
    // C reads a name up to its NUL: "/seg\0x" was segment /seg, and each
    // open of "down\0x" took one more of the process's 64 handles.
    $seg = segment();
    $out = php_child('$seg = ' . var_export($seg, true) . ';'
        . '$b = Cbshm\Breaker::open("$seg\0x", "down");'
        . 'echo $b->error()?->getCode(), "|", var_export($b->snapshot(), true), "|";'
        . 'for ($i = 0; $i < 70; $i++) { $b = Cbshm\Breaker::open($seg, "down\0x"); }'
        . 'echo $b->error()?->getCode(), "|", $b->call(fn() => "ran"), "|";'
        . '$other = Cbshm\Breaker::open($seg, "other");'
        . 'echo $other->error()?->getCode();');
    same('-30811|NULL|-30811|ran|-30808', $out, 'output');
}

function test_destroy_and_apply_refuse_a_name_holding_a_nul(): void
{
    // cbshm_destroy("/seg\0x") destroyed /seg.
    $seg = segment();
    $e = throws(CbshmException::class, fn() => Cbshm::destroy("$seg\0x"));
    same(-30811, $e->getCode(), 'destroy: CBSHM_EBADNAME');
    same('closed', Breaker::open($seg, 'down')->state(), 'still there');
    $e = throws(CbshmException::class,
                fn() => Cbshm::apply("breakers:\n  - name: down\n", segment: "$seg\0x"));
    same(-30811, $e->getCode(), 'apply: CBSHM_EBADNAME');
    $file = tempnam(sys_get_temp_dir(), 'cbshm-php-test-');
    file_put_contents($file, "segment: $seg\nbreakers:\n  - name: other\n");
    $e = throws(CbshmException::class, fn() => Cbshm::apply("$file\0.yaml"));
    unlink($file);
    same(-30816, $e->getCode(), 'apply of a path: CBSHM_EINVAL');
    same(-30808, Breaker::open($seg, 'other')->error()?->getCode(), 'nothing applied');
}

function test_the_library_stays_loaded_when_its_ffi_object_goes(): void
{
    // PHP-FPM frees the binding's FFI object at the end of every request,
    // and FFI dlclose()s the library: unloaded, it left behind the
    // handles the process keeps, its pthread key (one more leaked at each
    // request, until no code in the process could make one) and its
    // stripe claims. 1100 requests, as a PHP-FPM child serves them.
    $seg = segment();
    $out = php_child('$r = new ReflectionClass(Cbshm\Native::class);'
        . 'for ($i = 0; $i < 1100; $i++) {'
        . '  Cbshm\Breaker::open(' . var_export($seg, true) . ', "down")->call(fn() => 1);'
        . '  $r->setStaticPropertyValue("ffi", null); $r->setStaticPropertyValue("cache", null);'
        . '  gc_collect_cycles(); }'
        . '$libc = FFI::cdef("int pthread_key_create(unsigned *k, void *d);", "libc.so.6");'
        . '$key = $libc->new("unsigned[1]");'
        . '$mapped = str_contains(file_get_contents("/proc/self/maps"), "libcbshm");'
        . 'echo $mapped ? "mapped" : "unloaded", "|key ", $libc->pthread_key_create($key, null);');
    same('mapped|key 0', $out, 'output');
    same(1100, Breaker::open($seg, 'down')->snapshot()->successes, 'successes');
}

function test_a_scribbled_state_runs_calls_unguarded_and_says_corrupt(): void
{
    // A state value 3 in the breaker's control word (slot 0's first
    // word): no state the library knows. The call goes through
    // (fail-open) and error() says why; state() is an error, not a word.
    $seg = segment();
    $b = Breaker::open($seg, 'down');
    $f = fopen("/dev/shm$seg", 'r+b');
    fseek($f, 4096);
    $ctl = unpack('P', fread($f, 8))[1];
    fseek($f, 4096);
    fwrite($f, pack('P', ($ctl & ~3) | 3));
    fclose($f);
    same('ran', $b->call(fn() => 'ran'), 'result');
    same(-30806, $b->error()?->getCode(), 'CBSHM_ECORRUPT');
    $e = throws(CbshmException::class, fn() => $b->state());
    same(-30806, $e->getCode(), 'state()');
    check(str_contains($e->getMessage(), 'breaker down: state: value 3'), $e->getMessage());
}

function test_past_the_handles_a_process_keeps_a_breaker_runs_unguarded_and_says_why(): void
{
    // In a child process: the table it fills is its own.
    $script = 'require ' . var_export(__DIR__ . '/../../bindings/php/autoload.php', true) . ';'
        . '$seg = "/cbshm-php-full-" . getmypid();'
        . 'Cbshm\Cbshm::apply("segment: $seg\nbreakers:\n  - name: b0\n");'
        . 'for ($i = 0; $i < Cbshm\Native::CACHE_SLOTS; $i++) { Cbshm\Breaker::open($seg, "b$i"); }'
        . '$b = Cbshm\Breaker::open($seg, "b0");'
        . '$more = Cbshm\Breaker::open($seg, "more");'
        . 'echo $b->error() === null ? "kept" : "lost", "|", $more->call(fn() => "ran"), "|",'
        . '  $more->error()->getMessage();'
        . 'Cbshm\Cbshm::destroy($seg);';
    $out = (string)shell_exec(escapeshellarg(PHP_BINARY) . ' -r ' . escapeshellarg($script) . ' 2>&1');
    same('kept|ran|breaker more: this process keeps 64 breaker handles at most, and has them all open',
         $out, 'output');
}

function test_a_library_that_does_not_load_is_a_clear_error(): void
{
    $script = 'require ' . var_export(__DIR__ . '/../../bindings/php/autoload.php', true) . ';'
        . 'try { Cbshm\Breaker::open("/x", "y"); } catch (RuntimeException $e) { echo $e->getMessage(); }';
    $out = shell_exec('CBSHM_LIBRARY=/nonexistent/libcbshm.so.1 ' . escapeshellarg(PHP_BINARY)
                      . ' -r ' . escapeshellarg($script) . ' 2>&1');
    check(str_starts_with((string)$out, 'cbshm: cannot load CBSHM_LIBRARY=/nonexistent/libcbshm.so.1: '),
          (string)$out);
}

function test_ffi_closed_to_the_script_says_how_to_open_it(): void
{
    $script = 'require ' . var_export(__DIR__ . '/../../bindings/php/autoload.php', true) . ';'
        . 'try { Cbshm\Breaker::open("/x", "y"); } catch (RuntimeException $e) { echo $e->getMessage(); }';
    $out = (string)shell_exec(escapeshellarg(PHP_BINARY) . ' -d ffi.enable=0 -r '
                              . escapeshellarg($script) . ' 2>&1');
    check(str_starts_with($out, 'cbshm: FFI is closed to this script (ffi.enable='), $out);
    check(str_contains($out, 'opcache.preload'), $out);
}

// -- runner ------------------------------------------------------------

$only = $argv[1] ?? null;
$passed = $failed = 0;
foreach (get_defined_functions()['user'] as $fn) {
    if (!str_starts_with($fn, 'test_') || ($only !== null && $fn !== $only)) {
        continue;
    }
    try {
        $fn();
        $passed++;
        echo "ok - $fn\n";
    } catch (Throwable $e) {
        $failed++;
        echo "FAIL - $fn: ", get_class($e), ': ', $e->getMessage(), "\n";
    }
}
foreach ($segments as $seg) {
    try {
        Cbshm::destroy($seg);
    } catch (CbshmException) {
        // never made (a fail-open test)
    }
}
echo "$passed passed, $failed failed\n";
exit($failed === 0 && $passed > 0 ? 0 : 1);
