# SPDX-License-Identifier: MIT
"""Unit tests of the Python binding (unittest, standard library only)."""

import errno
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

BINDING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python")
sys.path.insert(0, BINDING)
import cbshm  # noqa: E402

_seq = itertools.count()


def yaml_file(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    f.write(text)
    f.close()
    return f.name


class Fixture(unittest.TestCase):
    YAML = ("breakers:\n"
            "  - name: api\n    failure_threshold: 3\n    open_timeout: 30s\n"
            "  - name: slow\n    slow_call_duration: 100ms\n")

    def setUp(self):
        self.seg = "/cbshm-py-%d-%d" % (os.getpid(), next(_seq))
        self.path = yaml_file(self.YAML)
        cbshm.apply(self.path, self.seg)
        self.segment = cbshm.Segment(self.seg)
        self.api = self.segment.breaker("api", failure_exceptions=(ConnectionError,))

    def tearDown(self):
        self.api.close()
        self.segment.close()
        cbshm.destroy(self.seg)
        os.unlink(self.path)


class TestCalls(Fixture):
    def test_call_returns_the_result_and_counts_a_success(self):
        self.assertEqual(self.api.call(lambda a, b=0: a + b, 2, b=3), 5)
        snap = self.api.snapshot()
        self.assertEqual(snap.successes, 1)
        self.assertEqual(snap.state, "closed")
        self.assertEqual(self.api.state, "closed")

    def test_failure_exceptions_count_and_others_are_ignored(self):
        def boom(exc):
            raise exc

        with self.assertRaises(ConnectionError):
            self.api.call(boom, ConnectionError("refused"))
        with self.assertRaises(KeyError):
            self.api.call(boom, KeyError("not a downstream problem"))
        snap = self.api.snapshot()
        self.assertEqual(snap.failures, 1)
        self.assertEqual(snap.ignored, 1)

    def test_failure_exceptions_may_be_one_class(self):
        # As `except ConnectionError:` and isinstance() take it.
        b = self.segment.breaker("api", failure_exceptions=ConnectionError)
        with self.assertRaises(ConnectionRefusedError):
            b.call(self.raise_, ConnectionRefusedError())
        self.assertEqual(b.snapshot().failures, 1)
        b.close()

    @staticmethod
    def raise_(exc):
        raise exc

    def test_failure_if_judges_results(self):
        b = self.segment.breaker("api", failure_if=lambda status: status >= 500)
        b.call(lambda: 503)
        b.call(lambda: 200)
        snap = b.snapshot()
        self.assertEqual((snap.failures, snap.successes), (1, 1))
        b.close()

    def test_a_tripped_breaker_raises_circuit_open_without_calling(self):
        def down():
            raise ConnectionError("refused")

        for _ in range(3):
            with self.assertRaises(ConnectionError):
                self.api.call(down)
        called = []
        with self.assertRaises(cbshm.CircuitOpenError) as cm:
            self.api.call(called.append, 1)
        self.assertEqual(called, [])
        self.assertEqual(cm.exception.name, "api")
        self.assertEqual(cm.exception.errname, "CBSHM_EREJECTED")
        self.assertEqual(cm.exception.code, cbshm.CircuitOpenError("x", cbshm.Refusal.OPEN, 0).code)
        self.assertTrue(0 < cm.exception.retry_after <= 30)
        self.assertEqual(cm.exception.reason, "open")
        # Forced open for a while: the reason and the time left, lock-free.
        self.segment.set_mode("api", "forced_open")
        with self.assertRaises(cbshm.CircuitOpenError) as cm:
            self.api.call(called.append, 1)
        self.assertEqual(cm.exception.reason, "forced_open")
        self.assertEqual(cm.exception.retry_after, 0.0)
        self.segment.set_mode("api", "forced_open", for_seconds=60)
        with self.assertRaises(cbshm.CircuitOpenError) as cm:
            self.api.call(called.append, 1)
        self.assertTrue(59 < cm.exception.retry_after <= 60)
        self.assertIn("rejected", str(cm.exception))
        self.assertEqual(self.api.state, "open")

    def test_with_block_records_its_outcome(self):
        with self.api:
            pass
        with self.assertRaises(ConnectionError):
            with self.api:
                raise ConnectionError()
        snap = self.api.snapshot()
        self.assertEqual((snap.successes, snap.failures), (1, 1))

    def test_decorator_guards_every_call(self):
        @self.api
        def double(x):
            return 2 * x

        self.assertEqual(double(21), 42)
        self.assertEqual(double.__name__, "double")
        self.assertEqual(self.api.snapshot().successes, 1)

    def test_two_step_records_exactly_once(self):
        t = self.api.allow()
        t.failure()
        with self.assertRaises(cbshm.CbshmError):
            t.success()
        self.assertEqual(self.api.snapshot().failures, 1)

    def test_an_unguarded_breaker_takes_the_two_step_api_too(self):
        # A fail-open breaker's ticket has nothing to record, but recording
        # it once is what a caller does: no "recorded twice" there.
        b = cbshm.open_breaker("/cbshm-py-no-such-%d" % os.getpid(), "x" * 200)
        self.assertIsNotNone(b.error)
        t = b.allow()
        t.success()
        with self.assertRaises(cbshm.CbshmError):
            t.success()
        b.allow().failure(retry_after=1.0)
        b.close()

    def test_a_with_block_has_no_result_for_failure_if(self):
        b = self.segment.breaker("api", failure_if=lambda reply: reply.status >= 500)
        with b:
            pass
        self.assertEqual(b.snapshot().successes, 1)
        b.close()

    def test_a_failure_if_that_raises_still_records_the_call(self):
        # A ticket left unrecorded would hold a half-open probe's lease
        # until probe_timeout.
        def judge(result):
            raise KeyError("judge bug")

        b = self.segment.breaker("api", failure_if=judge)
        with self.assertRaises(KeyError):
            b.call(lambda: 1)
        self.assertEqual(b.snapshot().ignored, 1)
        b.close()

    def test_a_closed_breaker_runs_no_call(self):
        b = self.segment.breaker("api")
        b.close()
        b.close()  # twice is fine
        called = []
        with self.assertRaises(ValueError):
            b.call(called.append, 1)
        with self.assertRaises(ValueError):
            with b:
                called.append(2)
        self.assertEqual(called, [])
        self.assertIn("closed", repr(b))

    def test_errors_survive_pickle_and_copy(self):
        # concurrent.futures.ProcessPoolExecutor and multiprocessing pickle
        # a worker's exception to hand it to the parent.
        import copy
        import pickle
        for e in (cbshm.CbshmError(cbshm._native.ENOSEG, "segment /x"),
                  cbshm.CircuitOpenError("api", cbshm.Refusal.PROBES_BUSY, 1.5),
                  cbshm.ConfigError("f.yaml", 3, 7, "breakers[0].name", "missing")):
            for twin in (pickle.loads(pickle.dumps(e)), copy.copy(e)):
                self.assertIs(type(twin), type(e))
                self.assertEqual(str(twin), str(e))
                self.assertEqual((twin.code, twin.errname, twin.what),
                                 (e.code, e.errname, e.what))
                self.assertEqual(vars(twin), vars(e))

    def test_a_bad_value_leaves_the_ticket_to_be_recorded(self):
        nan = float("nan")
        for bad in (lambda t: t.success(duration=nan), lambda t: t.failure(retry_after=nan),
                    lambda t: t.record(7), lambda t: t.success(duration="1")):
            t = self.api.allow()
            with self.assertRaises((ValueError, TypeError)):
                bad(t)
            t.ignored()  # not "recorded twice": the ticket was not spent
        self.assertEqual(self.api.snapshot().ignored, 4)

    def test_durations_past_what_the_c_side_holds_are_its_most(self):
        # ctypes would wrap 1e30 s around to some nanoseconds: a slow call
        # recorded as a quick one.
        slow = self.segment.breaker("slow")
        for huge in (1e30, float("inf")):
            slow.allow().success(duration=huge)
        self.assertEqual(slow.snapshot().slow_calls, 2)
        t = self.api.allow()
        t.failure(retry_after=float("inf"))
        self.assertEqual(self.api.state, "open")
        slow.close()

    def test_two_step_callers_may_pass_a_duration(self):
        slow = self.segment.breaker("slow")
        slow.allow().success(duration=0.5)
        slow.allow().success(duration=0.01)
        self.assertEqual(slow.snapshot().slow_calls, 1)
        slow.close()

    def test_modes_and_reset(self):
        self.segment.set_mode("api", "forced_open")
        with self.assertRaises(cbshm.CircuitOpenError):
            self.api.call(lambda: None)
        self.segment.set_mode("api", "normal")
        self.api.call(lambda: None)
        self.segment.reset("api")
        self.assertEqual(self.api.snapshot().requests, 0)
        with self.assertRaises(ValueError):
            self.segment.set_mode("api", "sideways")

    def test_snapshot_reports_settings(self):
        snap = self.api.snapshot()
        self.assertEqual(snap.name, "api")
        self.assertEqual(snap.settings["failure_threshold"], 3)
        self.assertEqual(snap.settings["open_timeout_ms"], 30000)
        self.assertEqual(snap.mode, "normal")
        # Every setting of the library's table, by its JSON key, and no other.
        self.assertEqual(len(snap.settings), 25)
        self.assertEqual(snap.settings["backoff_multiplier"], 100)
        self.assertEqual(snap.settings["slow_call_duration_ms"], 0)
        self.assertNotIn("reserved", snap.settings)

    def test_snapshot_reports_fleet_open_hosts_as_a_count_or_a_share(self):
        # The C struct's value: a count as it is, a share with the
        # CBSHM_FLEET_SHARE bit over its hundredths.
        seg = "/cbshm-py-fleet-%d" % os.getpid()
        cbshm.apply(yaml="breakers:\n  - name: two\n    fleet_open_hosts: 2\n"
                    "  - name: third\n    fleet_open_hosts: 34%\n  - name: off\n", segment=seg)
        try:
            segment = cbshm.Segment(seg)
            try:
                self.assertEqual(segment.snapshot("two").settings["fleet_open_hosts"], 2)
                self.assertEqual(segment.snapshot("third").settings["fleet_open_hosts"],
                                 0x80000000 | 34)
                self.assertEqual(segment.snapshot("off").settings["fleet_open_hosts"], 0)
            finally:
                segment.close()
        finally:
            cbshm.destroy(seg)

    def test_a_handle_opened_before_fork_works_in_the_child(self):
        pid = os.fork()
        if pid == 0:
            try:
                for _ in range(5):
                    self.api.call(lambda: None)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        self.assertEqual(self.api.snapshot().successes, 5)

    def test_a_failure_with_retry_after_opens_for_that_long(self):
        t = self.api.allow()
        t.failure(retry_after=120)
        with self.assertRaises(cbshm.CircuitOpenError) as cm:
            self.api.call(lambda: None)
        self.assertEqual(cm.exception.reason, "open")
        self.assertTrue(119 < cm.exception.retry_after <= 120)


class TestBulkhead(unittest.TestCase):
    """max_concurrent_calls: calls in flight host-wide, at most; a call
    past it is refused as the breaker's other refusals are, with its own
    reason."""
    YAML = ("breakers:\n"
            "  - name: pool\n    max_concurrent_calls: 2\n"
            "  - name: patient\n    max_concurrent_calls: 1\n    max_wait: 5s\n"
            "  - name: plain\n")

    def setUp(self):
        self.seg = "/cbshm-pybh-%d-%d" % (os.getpid(), next(_seq))
        cbshm.apply(yaml=self.YAML, segment=self.seg)
        self.segment = cbshm.Segment(self.seg)
        self.pool = self.segment.breaker("pool")

    def tearDown(self):
        self.pool.close()
        self.segment.close()
        cbshm.destroy(self.seg)

    def test_a_full_bulkhead_raises_bulkhead_full_until_a_slot_is_given_back(self):
        held = self.pool.allow()
        called = []
        with self.pool:  # the second call in flight, as a block
            with self.assertRaises(cbshm.BulkheadFullError) as cm:
                self.pool.call(called.append, 1)
            snap = self.pool.snapshot()
        self.assertEqual(called, [])
        e = cm.exception
        self.assertIsInstance(e, cbshm.CircuitOpenError)  # `except CircuitOpenError` catches it
        self.assertIs(e.reason, cbshm.Refusal.BULKHEAD_FULL)
        self.assertEqual(e.reason, "bulkhead_full")
        self.assertEqual((e.name, e.retry_after, e.errname), ("pool", 0.0, "CBSHM_EREJECTED"))
        self.assertIn("breaker pool", str(e))
        self.assertEqual((snap.bulkhead_limit, snap.bulkhead_in_flight, snap.bulkhead_rejections),
                         (2, 2, 1))
        self.assertEqual(snap.rejections, 1)  # counted with the breaker's rejections too
        self.assertEqual(snap.settings["max_concurrent_calls"], 2)
        # The block gave its slot back: the next call gets in.
        self.assertEqual(self.pool.call(lambda: 7), 7)
        held.success()
        snap = self.pool.snapshot()
        self.assertEqual((snap.bulkhead_in_flight, snap.bulkhead_rejections, snap.successes),
                         (0, 1, 3))

    def test_a_breaker_without_a_bulkhead_shows_zero_figures(self):
        snap = self.segment.snapshot("plain")
        self.assertEqual((snap.bulkhead_limit, snap.bulkhead_in_flight, snap.bulkhead_rejections,
                          snap.bulkhead_reclaimed, snap.bulkhead_waits), (0, 0, 0, 0, 0))

    def test_with_max_wait_a_call_waits_for_a_slot_another_thread_gives_back(self):
        import threading
        patient = self.segment.breaker("patient")
        try:
            held = patient.allow()
            # The waiting call sleeps in the library without the GIL: the
            # timer's thread runs and gives the slot back.
            giver = threading.Timer(0.2, held.success)
            giver.start()
            t0 = time.monotonic()
            self.assertEqual(patient.call(lambda: "in"), "in")
            waited = time.monotonic() - t0
            giver.join()  # the slot goes back before its success is counted
            self.assertTrue(0.15 < waited < 4, waited)
            snap = patient.snapshot()
            self.assertEqual((snap.bulkhead_waits, snap.bulkhead_rejections, snap.successes),
                             (1, 0, 2))
        finally:
            patient.close()

    def in_flight(self):
        return self.pool.snapshot().bulkhead_in_flight

    def test_any_exception_inside_a_block_call_or_decorated_function_gives_the_slot_back(self):
        # resilience4j and Polly release the permit in a finally: so here,
        # for the exceptions that are no Exception too.
        def raising(exc):
            raise exc

        guarded = self.pool(raising)
        for exc in (KeyboardInterrupt, SystemExit, GeneratorExit, ValueError):
            with self.assertRaises(exc):
                with self.pool:
                    raise exc()
            with self.assertRaises(exc):
                self.pool.call(raising, exc())
            with self.assertRaises(exc):
                guarded(exc())
            self.assertEqual(self.in_flight(), 0, exc)
        self.assertEqual(self.pool.snapshot().ignored, 9)  # none is an Exception of the downstream's

    def test_a_ticket_dropped_unrecorded_gives_its_slot_back(self):
        t = self.pool.allow()
        self.assertEqual(self.in_flight(), 1)
        del t
        self.assertEqual(self.in_flight(), 0)  # not after slot_timeout: a minute of one slot less
        snap = self.pool.snapshot()
        self.assertEqual((snap.ignored, snap.bulkhead_reclaimed), (1, 0))

    def test_a_coroutine_of_call_never_awaited_gives_its_slot_back(self):
        import asyncio
        import warnings

        async def fetch():
            await asyncio.sleep(0)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "never awaited": the point
            pending = self.pool.call(fetch)
            self.assertEqual(self.in_flight(), 1)  # admitted at call(), as documented
            pending.close()
            del pending
        self.assertEqual(self.in_flight(), 0)

    def test_a_task_cancelled_before_it_ran_gives_its_slot_back(self):
        # asyncio.wait_for, gather and TaskGroup cancel tasks that may not
        # have run a step yet: the coroutine's body, and its finally, never
        # runs.
        import asyncio
        import warnings

        async def fetch():
            await asyncio.sleep(0)

        async def main():
            task = asyncio.ensure_future(self.pool.call(fetch))
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            asyncio.run(main())
        self.assertEqual(self.in_flight(), 0)

    def test_a_cancelled_task_of_a_decorated_async_def_gives_its_slot_back(self):
        import asyncio

        @self.pool
        async def slow():
            await asyncio.sleep(30)

        async def main():
            task = asyncio.ensure_future(slow())
            await asyncio.sleep(0.01)
            self.assertEqual(self.in_flight(), 1)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        self.assertEqual((self.in_flight(), self.pool.snapshot().ignored), (0, 1))

    def test_a_future_dropped_undone_gives_its_slot_back(self):
        import asyncio
        loop = asyncio.new_event_loop()
        try:
            future = loop.create_future()
            self.assertIs(self.pool.call(lambda: future), future)
            self.assertEqual(self.in_flight(), 1)  # held while the future may still complete
            del future
            self.assertEqual(self.in_flight(), 0)
        finally:
            loop.close()

    def test_a_forked_child_leaving_a_block_does_not_give_the_parents_slot_back(self):
        # The child's copy of the parent's ticket is the parent's call,
        # still running: SystemExit unwinding the child's copy of the
        # block records nothing (as a SysV semaphore's SEM_UNDO is the
        # parent's alone), and the child's own block gives its own slot.
        parent = os.getpid()
        try:
            with self.pool:
                pid = os.fork()
                if pid == 0:
                    with self.pool:
                        sys.exit(0)
                os.waitpid(pid, 0)
                self.assertEqual(self.in_flight(), 1)
                snap = self.pool.snapshot()
                self.assertEqual((snap.successes, snap.ignored), (0, 1))  # the child's own call
        finally:
            if os.getpid() != parent:
                os._exit(0)  # the child, out of both blocks
        self.assertEqual(self.in_flight(), 0)

    def test_ctrl_c_during_a_wait_that_gets_a_slot_gives_the_slot_back(self):
        # The library's wait does not end at a signal (SIGCHLD or SIGPROF
        # would refuse calls): KeyboardInterrupt comes once allow() is back
        # in Python - here with a slot, in a ticket nobody will record.
        import threading
        patient = self.segment.breaker("patient")  # limit 1, max_wait 5s
        try:
            held = patient.allow()
            threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
            giver = threading.Timer(0.3, held.success)
            giver.start()
            with self.assertRaises(KeyboardInterrupt):
                patient.call(lambda: None)
            giver.join()
            snap = patient.snapshot()
            self.assertEqual((snap.bulkhead_in_flight, snap.bulkhead_waits), (0, 1))
        finally:
            patient.close()

    def test_threads_racing_with_max_wait_never_exceed_the_limit_and_all_get_in(self):
        import threading
        patient = self.segment.breaker("patient")  # limit 1, max_wait 5s
        lock = threading.Lock()
        inside = [0, 0]  # now, most

        def downstream():
            with lock:
                inside[0] += 1
                inside[1] = max(inside)
            time.sleep(0.005)
            with lock:
                inside[0] -= 1

        def worker():
            for _ in range(5):
                patient.call(downstream)

        try:
            threads = [threading.Thread(target=worker) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            snap = patient.snapshot()
            self.assertEqual(inside[1], 1, "calls at once in the downstream")
            self.assertEqual((snap.successes, snap.bulkhead_rejections, snap.bulkhead_in_flight),
                             (40, 0, 0))
            self.assertGreater(snap.bulkhead_waits, 0)
        finally:
            patient.close()

    def test_bulkhead_errors_survive_pickle_and_copy(self):
        import copy
        import pickle
        e = cbshm.BulkheadFullError("pool")
        self.assertIs(e.reason, cbshm.Refusal.BULKHEAD_FULL)
        for twin in (pickle.loads(pickle.dumps(e)), copy.copy(e)):
            self.assertIs(type(twin), cbshm.BulkheadFullError)
            self.assertEqual(vars(twin), vars(e))
            self.assertEqual(str(twin), str(e))


class TestFailOpen(unittest.TestCase):
    def test_a_missing_segment_runs_calls_unguarded(self):
        b = cbshm.open_breaker("/cbshm-py-no-such-segment", "api")
        self.assertEqual(b.call(lambda: "ran"), "ran")
        with b:
            pass
        self.assertEqual(b.error.errname, "CBSHM_ENOSEG")
        self.assertIsNone(b.snapshot())
        self.assertIsNone(b.state)

    def test_a_breaker_opened_before_its_segment_attaches_once_applied(self):
        seg = "/cbshm-py-late-%d" % os.getpid()
        b = cbshm.open_breaker(seg, "api")
        try:
            self.assertEqual(b.call(lambda: "ran"), "ran")
            self.assertEqual(b.error.errname, "CBSHM_ENOSEG")
            cbshm.apply(yaml="breakers:\n  - name: api\n", segment=seg)
            time.sleep(0.3)  # the handle looks again at most every 0.25 s
            for _ in range(5):
                b.call(lambda: None)
            self.assertIsNone(b.error)
            self.assertEqual(b.snapshot().successes, 5)
        finally:
            b.close()
            cbshm.destroy(seg)

    def test_fail_closed_raises_the_problem_instead(self):
        b = cbshm.open_breaker("/cbshm-py-no-such-segment", "api", fail_closed=True)
        with self.assertRaises(cbshm.CbshmError) as cm:
            b.call(lambda: "ran")
        self.assertEqual(cm.exception.errname, "CBSHM_ENOSEG")

    def test_segment_errors_carry_the_library_message(self):
        with self.assertRaises(cbshm.CbshmError) as cm:
            cbshm.Segment("/cbshm-py-no-such-segment")
        self.assertIn("segment does not exist", str(cm.exception))

    def test_a_rejected_file_names_file_line_and_column(self):
        path = yaml_file("breakers:\n  - name: a\n    open_timeout: 5\n")
        try:
            with self.assertRaises(cbshm.CbshmError) as cm:
                cbshm.apply(path, "/cbshm-py-never")
            self.assertIn("%s:3:19: breakers[0].open_timeout: duration '5' needs a unit" % path,
                          str(cm.exception))
        finally:
            os.unlink(path)

    def test_apply_takes_yaml_text_as_well_as_a_path(self):
        seg = "/cbshm-py-text-%d" % os.getpid()
        text = "breakers:\n  - name: t1\n    failure_threshold: 2\n"
        try:
            self.assertEqual(cbshm.apply(yaml=text, segment=seg), 2)  # segment + 1 breaker
            self.assertEqual(cbshm.apply(text, seg), 0)  # a str with a newline is YAML
            s = cbshm.Segment(seg)
            self.assertEqual(s.snapshot("t1").settings["failure_threshold"], 2)
            s.close()
        finally:
            cbshm.destroy(seg)

    def test_rejected_yaml_text_is_named_by_its_label(self):
        with self.assertRaises(cbshm.CbshmError) as cm:
            cbshm.apply(yaml="breakers:\n  - name: a\n    failure_rate: 20\n",
                        segment="/cbshm-py-never")
        self.assertIn("<yaml>:3:19: breakers[0].failure_rate: failure_rate is for policy: rate; "
                      "this breaker's policy is consecutive", str(cm.exception))
        with self.assertRaises(TypeError):
            cbshm.apply()
        with self.assertRaises(TypeError):
            cbshm.apply(yaml=5)
        # A key cut inside a UTF-8 character still makes a CbshmError.
        with self.assertRaises(cbshm.CbshmError) as cm:
            cbshm.apply(yaml="breakers: [{name: a, " + "\u00e9" * 60 + ": 1}]\n",
                        segment="/cbshm-py-never")
        self.assertIn("unknown key", str(cm.exception))

    def test_version(self):
        self.assertRegex(cbshm.version(), r"^\d+\.\d+\.\d+$")


class TestShape(Fixture):
    def test_states_modes_and_outcomes_are_enums_that_read_as_their_words(self):
        self.assertIs(self.api.state, cbshm.State.CLOSED)
        self.assertEqual(cbshm.State.HALF_OPEN, "half_open")
        self.assertEqual("%s %s" % (cbshm.State.OPEN, cbshm.Mode.FORCED_OPEN), "open forced_open")
        self.assertEqual(f"{cbshm.Refusal.PROBES_BUSY}", "probes_busy")
        self.assertEqual(int(cbshm.FAILURE), 1)
        self.segment.set_mode("api", cbshm.Mode.DISABLED)
        self.assertIs(self.api.snapshot().mode, cbshm.Mode.DISABLED)
        with self.assertRaises(ValueError) as cm:
            self.segment.set_mode("api", "sideways")
        self.assertIn("normal, forced_open, forced_closed, disabled", str(cm.exception))

    def test_the_mirrored_structs_are_cbshm_h_field_for_field(self):
        # The ctypes layouts against the C compiler's own offsets: a field
        # in the wrong place reads another figure, the same size or not.
        import ctypes
        cc = shutil.which("cc")
        if cc is None:
            self.skipTest("no C compiler to ask for cbshm.h's offsets")
        native = cbshm._native
        structs = {"snapshot": native.Snapshot, "ticket": native.Ticket,
                   "event": native.Event, "rejection": native.Rejection,
                   "diag": native.Diag}
        # struct cbshm_event's from and to are old and new here.
        c_name = {"old": "from", "new": "to"}
        lines = []
        for tag, cls in structs.items():
            lines.append('printf("%s sizeof %%zu\\n", sizeof(struct cbshm_%s));' % (tag, tag))
            for field, _ in cls._fields_:
                lines.append('printf("%s %s %%zu\\n", offsetof(struct cbshm_%s, %s));'
                             % (tag, field, tag, c_name.get(field, field)))
        where = tempfile.mkdtemp()
        try:
            src = os.path.join(where, "offsets.c")
            with open(src, "w") as f:
                f.write("#include <stddef.h>\n#include <stdio.h>\n#include <cbshm.h>\n"
                        "int main(void) {\n%s\nreturn 0;\n}\n" % "\n".join(lines))
            include = os.path.join(BINDING, "..", "..", "libcbshm", "include")
            subprocess.run([cc, "-I", include, "-o", os.path.join(where, "offsets"), src],
                           check=True, capture_output=True, timeout=60)
            out = subprocess.run([os.path.join(where, "offsets")], check=True,
                                 capture_output=True, text=True, timeout=30).stdout
        finally:
            shutil.rmtree(where)
        c_side = {tuple(line.split()[:2]): int(line.split()[2]) for line in out.splitlines()}
        ours = {}
        for tag, cls in structs.items():
            ours[(tag, "sizeof")] = ctypes.sizeof(cls)
            for field, _ in cls._fields_:
                ours[(tag, field)] = getattr(cls, field).offset
        self.assertEqual(ours, c_side)

    def test_a_snapshot_is_a_frozen_dataclass(self):
        import dataclasses
        snap = self.api.snapshot()
        self.assertTrue(dataclasses.is_dataclass(snap))
        with self.assertRaises(dataclasses.FrozenInstanceError):
            snap.failures = 7
        self.assertEqual(dataclasses.asdict(snap)["name"], "api")

    def test_a_system_error_is_the_matching_oserror_subclass(self):
        # The library refuses a symbolic link in /dev/shm (-ELOOP) ...
        link = "/dev/shm/cbshm-py-link-%d" % os.getpid()
        os.symlink("/dev/shm" + self.seg, link)
        try:
            with self.assertRaises(OSError) as cm:
                cbshm.Segment(link[len("/dev/shm"):])
            self.assertEqual(cm.exception.errno, errno.ELOOP)
            self.assertNotIsInstance(cm.exception, cbshm.CbshmError)
            self.assertIn("segment /cbshm-py-link", str(cm.exception))
        finally:
            os.unlink(link)
        # ... and another user may not open root's 0600 segment (-EACCES).
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            return
        probe = ("import cbshm, sys\n"
                 "try:\n    cbshm.Segment(sys.argv[1])\n"
                 "except OSError as e:\n    print(type(e).__name__, e.errno)\n")
        # The package and the library where that user may read them (a
        # checkout in /root is not): as an installed package is.
        where = tempfile.mkdtemp()
        try:
            os.chmod(where, 0o755)
            shutil.copytree(os.path.join(BINDING, "cbshm"), os.path.join(where, "cbshm"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            library = shutil.copy(os.environ["CBSHM_LIBRARY"], where)
            out = subprocess.run(["setpriv", "--reuid=12345", "--regid=12345", "--clear-groups",
                                  sys.executable, "-c", probe, self.seg], capture_output=True,
                                 text=True, env=dict(os.environ, PYTHONPATH=where,
                                                     CBSHM_LIBRARY=library), timeout=30)
        finally:
            shutil.rmtree(where)
        self.assertEqual(out.stdout.split(), ["PermissionError", str(errno.EACCES)], out.stderr)

    def test_closing_a_segment_with_open_breakers_raises_instead_of_crashing(self):
        slow = self.segment.breaker("slow")
        with self.assertRaises(RuntimeError) as cm:
            self.segment.close()
        self.assertIn("2 breakers still open (api, slow): close them first", str(cm.exception))
        slow.close()
        self.api.call(lambda: None)  # the segment is still attached
        self.assertEqual(self.api.snapshot().successes, 1)

    def test_a_breaker_dropped_without_close_gives_its_handle_back(self):
        import gc
        slow = self.segment.breaker("slow")
        del slow
        gc.collect()
        self.api.close()
        self.segment.close()  # no breaker left open: detaches
        with self.assertRaises(ValueError):
            self.segment.snapshot("api")
        self.segment.close()  # twice is fine

    def test_a_segment_collected_before_its_breaker_detaches_after_it(self):
        # Python may free the Segment first; the mapping outlives it until
        # the breaker lets go, as cbshm_close() requires.
        import gc
        seg = cbshm.Segment(self.seg)
        b = seg.breaker("api")
        del seg
        gc.collect()
        b.call(lambda: None)
        b.close()
        self.assertEqual(self.api.snapshot().successes, 1)


def shm_mappings(name):
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if line.rstrip().endswith("/dev/shm" + name))


class TestOpenBreaker(Fixture):
    def test_a_breaker_collected_while_its_mapping_is_locked_does_not_deadlock(self):
        # A breaker in a reference cycle (here through a failure_if
        # closure) is freed by the cyclic collector, which runs at any
        # allocation - also in a thread that holds the mapping's lock
        # (Segment.close() builds a list under it). Its finalizer takes
        # that lock again.
        import gc
        import threading

        segment = cbshm.Segment(self.seg)  # its own: left as it is should the lock stay taken

        def make_cycle():
            b = segment.breaker("slow")
            b.failure_if = lambda result: b is None

        def collect_under_lock():
            with segment._mapping.lock:
                gc.collect()
            done.set()

        done = threading.Event()
        gc.disable()
        try:
            make_cycle()
            threading.Thread(target=collect_under_lock, daemon=True).start()
            self.assertTrue(done.wait(5), "deadlocked: finalizer waits on a lock its thread holds")
        finally:
            gc.enable()
        self.assertEqual(segment._mapping.live, {})
        segment.close()

    def test_breakers_opened_on_one_segment_share_one_mapping(self):
        before = shm_mappings(self.seg)
        a = cbshm.open_breaker(self.seg, "api")
        b = cbshm.open_breaker(self.seg, "slow")
        c = cbshm.open_breaker(self.seg, "api")
        try:
            self.assertIs(a.segment, b.segment)
            self.assertIs(a.segment, c.segment)
            a.call(lambda: None)
            self.assertEqual(shm_mappings(self.seg), before + 1)
        finally:
            for x in (a, b, c):
                x.close()
            a.segment.close()
        self.assertEqual(shm_mappings(self.seg), before)
        # Closed, it is forgotten: the next open_breaker maps it anew.
        d = cbshm.open_breaker(self.seg, "api")
        self.assertIsNot(d.segment, a.segment)
        d.close()
        d.segment.close()

    def test_the_shared_segment_follows_a_destroy_and_re_apply(self):
        # open_breaker keeps its Segment for the process's life: after
        # `cbctl destroy` + `cbctl apply` it must see the new segment, as
        # the breaker handles do (it read the dead table forever).
        api = cbshm.open_breaker(self.seg, "api", failure_exceptions=(ConnectionError,))
        try:
            self.api.close()
            self.segment.close()
            cbshm.destroy(self.seg)
            cbshm.apply(yaml="breakers:\n  - name: api\n    failure_threshold: 1\n"
                        "  - name: added\n", segment=self.seg)
            added = cbshm.open_breaker(self.seg, "added")
            self.assertIs(added.segment, api.segment)
            self.assertIsNone(added.error)
            self.assertEqual([s.name for s in api.segment.breakers()], ["api", "added"])
            time.sleep(0.3)  # a breaker handle looks again at most every 0.25 s
            with self.assertRaises(ConnectionError):
                api.call(self._refuse)
            self.assertEqual(api.state, cbshm.State.OPEN)
            self.assertEqual([(e.name, e.new) for e in api.segment.events()],
                             [("api", cbshm.State.OPEN)])
            added.close()
        finally:
            api.close()
            self.segment = cbshm.Segment(self.seg)  # for tearDown
            self.api = self.segment.breaker("api")

    @staticmethod
    def _refuse():
        raise ConnectionError("refused")

    def test_fork_while_another_thread_is_inside_open_breaker(self):
        # A thread of the parent holds the registry's lock at fork(): the
        # child must not wait for a thread it does not have.
        import threading
        from cbshm import _segment
        held, done = threading.Event(), threading.Event()

        def inside():
            with _segment._shared_lock:
                held.set()
                done.wait(10)
        t = threading.Thread(target=inside)
        t.start()
        held.wait(5)
        try:
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    signal.alarm(5)
                    b = cbshm.open_breaker(self.seg, "api")
                    b.call(lambda: None)
                    code = 0
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
        finally:
            done.set()
            t.join()
        self.assertEqual(status, 0, "the child hung or failed: status %#x" % status)
        self.assertEqual(self.api.snapshot().successes, 1)

    def test_config_errors_carry_where(self):
        with self.assertRaises(cbshm.ConfigError) as cm:
            cbshm.apply(yaml="breakers:\n  - name: a\n    open_timeout: 5\n",
                        segment="/cbshm-py-never")
        e = cm.exception
        self.assertEqual((e.file, e.line, e.column, e.key), ("<yaml>", 3, 19,
                                                             "breakers[0].open_timeout"))
        self.assertEqual(e.errname, "CBSHM_ECONFIG")
        self.assertIsInstance(e, cbshm.CbshmError)


if __name__ == "__main__":
    unittest.main()
