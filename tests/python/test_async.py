# SPDX-License-Identifier: MIT
"""The binding under asyncio and greenlets: coroutines awaited inside the
breaker record their own outcome, and `with` / `async with` blocks
interleaved in one thread each record their own ticket (a context
variable, not a per-thread stack)."""

import asyncio
import itertools
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
import cbshm  # noqa: E402

_seq = itertools.count()

YAML = ("breakers:\n"
        "  - name: api\n    failure_threshold: 5\n    open_timeout: 30s\n"
        # Trips on one failure and probes 50 ms later: the stale-ticket test.
        "  - name: flip\n    failure_threshold: 1\n    open_timeout: 50ms\n"
        "    half_open_max_calls: 1\n    success_threshold: 1\n    probe_timeout: 10s\n")


class Fixture(unittest.TestCase):
    def setUp(self):
        self.seg = "/cbshm-pyasync-%d-%d" % (os.getpid(), next(_seq))
        cbshm.apply(yaml=YAML, segment=self.seg)
        self.segment = cbshm.Segment(self.seg)
        self.api = self.segment.breaker("api", failure_exceptions=(ConnectionError,))
        self.flip = self.segment.breaker("flip", failure_exceptions=(ConnectionError,))

    def tearDown(self):
        self.api.close()
        self.flip.close()
        self.segment.close()
        cbshm.destroy(self.seg)

    def counts(self, b):
        s = b.snapshot()
        return s.successes, s.failures, s.ignored


class TestCoroutines(Fixture):
    def test_a_decorated_async_def_is_awaited_and_its_failure_recorded(self):
        @self.api
        async def refused():
            await asyncio.sleep(0)
            raise ConnectionRefusedError("refused")

        self.assertTrue(asyncio.iscoroutinefunction(refused))

        async def main():
            for _ in range(5):
                with self.assertRaises(ConnectionRefusedError):
                    await refused()
        asyncio.run(main())
        # Recorded when the coroutine ended, not when it was made: 5
        # failures, and the fifth tripped the breaker.
        self.assertEqual(self.counts(self.api), (0, 5, 0))
        self.assertEqual(self.api.state, cbshm.State.OPEN)

    def test_call_with_a_coroutine_function_returns_an_awaitable_that_records(self):
        async def fetch(x):
            await asyncio.sleep(0.01)
            return x * 2

        async def main():
            return await self.api.call(fetch, 21)
        self.assertEqual(asyncio.run(main()), 42)
        self.assertEqual(self.counts(self.api), (1, 0, 0))

    def test_cancelling_an_awaited_call_records_it_as_ignored(self):
        @self.api
        async def hangs():
            await asyncio.sleep(10)

        async def main():
            task = asyncio.ensure_future(hangs())
            await asyncio.sleep(0.01)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
        asyncio.run(main())
        self.assertEqual(self.counts(self.api), (0, 0, 1))

    def test_a_rejected_coroutine_is_never_started(self):
        self.segment.set_mode("api", "forced_open")
        started = []

        @self.api
        async def fetch():
            started.append(1)

        async def main():
            with self.assertRaises(cbshm.CircuitOpenError) as cm:
                await fetch()
            self.assertEqual(cm.exception.name, "api")
        asyncio.run(main())
        self.assertEqual(started, [])

    def test_a_future_is_returned_as_it_is_and_recorded_when_done(self):
        async def main():
            loop = asyncio.get_running_loop()
            ok, bad = loop.create_future(), loop.create_future()
            got = self.api.call(lambda: ok)
            self.assertIs(got, ok)  # still a future: add_done_callback, cancel, ...
            self.api.call(lambda: bad)
            self.assertEqual(self.counts(self.api), (0, 0, 0))  # not done yet
            ok.set_result(1)
            bad.set_exception(ConnectionError())
            await asyncio.sleep(0)  # done callbacks run on the next loop pass
            with self.assertRaises(ConnectionError):
                await bad
        asyncio.run(main())
        self.assertEqual(self.counts(self.api), (1, 1, 0))

    def test_a_generator_function_is_refused_as_a_decorated_call(self):
        def gen():
            yield 1

        async def agen():
            yield 1
        for fn in (gen, agen):
            with self.assertRaises(TypeError) as cm:
                self.api(fn)
            self.assertIn("guard the calls inside it", str(cm.exception))

    def test_following_a_late_segment_waits_for_it(self):
        seg = "/cbshm-pyasync-late-%d-%d" % (os.getpid(), next(_seq))
        late = cbshm.Segment(seg, late=True)
        try:
            self.assertEqual(list(late.events(follow=True, timeout=0.1)), [])
            cbshm.apply(yaml="breakers:\n  - name: x\n", segment=seg)
            late.set_mode("x", cbshm.Mode.DISABLED)
            self.assertEqual([e.new for e in late.events(follow=True, timeout=0.2)],
                             [cbshm.Mode.DISABLED])
        finally:
            late.close()
            cbshm.destroy(seg)

    def test_async_with_records_its_outcome(self):
        async def main():
            async with self.api:
                await asyncio.sleep(0)
            with self.assertRaises(ConnectionError):
                async with self.api:
                    await asyncio.sleep(0)
                    raise ConnectionError()
        asyncio.run(main())
        self.assertEqual(self.counts(self.api), (1, 1, 0))

    def test_many_tasks_interleaved_in_one_thread_each_record_their_own(self):
        # 200 tasks, each inside `async with` across several awaits, ending
        # in an order unrelated to the order they entered: every outcome
        # lands, and none is recorded twice or lost.
        async def one(i):
            async with self.api:
                for _ in range(i % 4):
                    await asyncio.sleep(0.001 * ((i * 7) % 5))
                if i % 3 == 0:
                    raise KeyError(i)  # ignored: not a downstream failure
            return i

        async def main():
            results = await asyncio.gather(*(one(i) for i in range(200)),
                                           return_exceptions=True)
            return sum(isinstance(r, KeyError) for r in results)
        ignored = asyncio.run(main())
        self.assertEqual(ignored, 67)
        self.assertEqual(self.counts(self.api), (133, 0, 67))


def stale_then_probe(segment, flip, sleep, spawn):
    """Block A enters `with flip` while it is closed; the breaker trips and
    its open period ends; block B enters as the one probe. A ends with a
    failure, then B with a success. A's failure is stale (its ticket is of
    the closed period) and B's success closes the breaker - unless the two
    blocks shared one stack of tickets, A's exit took B's probe ticket, and
    the probe "failed": open again."""
    entered, release_a, release_b = [], [], []

    def wait(flag):
        while not flag:
            sleep(0.001)

    def a():
        try:
            with flip:
                entered.append("a")
                wait(release_a)
                raise ConnectionError("a")
        except ConnectionError:
            pass

    def b():
        with flip:
            entered.append("b")
            wait(release_b)

    def until(want):
        deadline = time.monotonic() + 5
        while entered != want:
            if time.monotonic() > deadline:
                raise AssertionError("entered %r, not %r" % (entered, want))
            sleep(0.001)

    ta = spawn(a)
    until(["a"])
    flip.allow().failure()  # trips (threshold 1)
    sleep(0.08)             # past the 50 ms open period: the next call probes
    tb = spawn(b)
    until(["a", "b"])
    release_a.append(1)
    ta()
    release_b.append(1)
    tb()
    return segment.snapshot("flip")


class TestInterleaving(Fixture):
    def test_with_blocks_of_two_asyncio_tasks_keep_their_own_tickets(self):
        async def main():
            async def wait(flag):
                while not flag:
                    await asyncio.sleep(0.001)

            async def until(entered, want):
                while entered != want:
                    await asyncio.sleep(0.001)

            # The test's steps as coroutines on one event loop.
            entered, release_a, release_b = [], [], []

            async def a():
                try:
                    with self.flip:  # a plain `with` around an await
                        entered.append("a")
                        await wait(release_a)
                        raise ConnectionError("a")
                except ConnectionError:
                    pass

            async def b():
                with self.flip:
                    entered.append("b")
                    await wait(release_b)

            ta = asyncio.ensure_future(a())
            await asyncio.wait_for(until(entered, ["a"]), 5)
            self.flip.allow().failure()
            await asyncio.sleep(0.08)
            tb = asyncio.ensure_future(b())
            await asyncio.wait_for(until(entered, ["a", "b"]), 5)
            release_a.append(1)
            await ta
            release_b.append(1)
            await tb
        asyncio.run(main())
        snap = self.segment.snapshot("flip")
        self.assertEqual(snap.state, cbshm.State.CLOSED)
        self.assertEqual(snap.trips, 1)

    def test_with_blocks_of_two_greenlets_keep_their_own_tickets(self):
        try:
            import gevent
            import gevent.event  # noqa: F401
        except ImportError:
            self.skipTest("python3-gevent is not installed")

        def spawn(fn):
            g = gevent.spawn(fn)
            return g.join

        # Not monkey-patched: one OS thread, greenlets switching inside it.
        snap = stale_then_probe(self.segment, self.flip, gevent.sleep, spawn)
        self.assertEqual(snap.state, cbshm.State.CLOSED)
        self.assertEqual(snap.trips, 1)

    def test_with_blocks_of_two_eventlet_greenthreads_keep_their_own_tickets(self):
        try:
            import eventlet
        except ImportError:
            self.skipTest("python3-eventlet is not installed")

        def spawn(fn):
            return eventlet.spawn(fn).wait

        snap = stale_then_probe(self.segment, self.flip, eventlet.sleep, spawn)
        self.assertEqual(snap.state, cbshm.State.CLOSED)
        self.assertEqual(snap.trips, 1)

    def test_with_blocks_of_threads_keep_their_own_tickets(self):
        import threading

        def spawn(fn):
            t = threading.Thread(target=fn)
            t.start()
            return t.join

        snap = stale_then_probe(self.segment, self.flip, time.sleep, spawn)
        self.assertEqual(snap.state, cbshm.State.CLOSED)

    def test_exit_without_enter_says_so(self):
        with self.assertRaises(RuntimeError):
            self.api.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
