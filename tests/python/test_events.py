# SPDX-License-Identifier: MIT
"""The event ring, the breaker listing and listeners from Python."""

import itertools
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
import cbshm  # noqa: E402
from cbshm import BulkheadState, EventKind, Mode, State  # noqa: E402

_seq = itertools.count()
YAML = ("breakers:\n"
        "  - name: api\n    failure_threshold: 2\n    open_timeout: 30s\n"
        "  - name: search\n    failure_threshold: 5\n"
        "  - name: quick\n    failure_threshold: 1\n    open_timeout: 50ms\n")


class Fixture(unittest.TestCase):
    def setUp(self):
        self.seg = "/cbshm-pyev-%d-%d" % (os.getpid(), next(_seq))
        cbshm.apply(yaml=YAML, segment=self.seg)
        self.segment = cbshm.Segment(self.seg)
        self.api = self.segment.breaker("api")

    def tearDown(self):
        self.segment.stop_listening()
        self.api.close()
        self.segment.close()
        cbshm.destroy(self.seg)

    def trip(self):
        for _ in range(2):
            self.api.allow().failure()


class TestEvents(Fixture):
    def test_events_yields_the_ring_as_events_and_stops_at_the_end(self):
        before = time.time()
        self.trip()
        self.segment.set_mode("api", Mode.FORCED_CLOSED)
        self.segment.reset("api")
        events = list(self.segment.events())
        self.assertEqual([(e.kind, e.name, e.old, e.new, e.cause) for e in events], [
            (EventKind.STATE, "api", State.CLOSED, State.OPEN, "failures"),
            (EventKind.MODE, "api", Mode.NORMAL, Mode.FORCED_CLOSED, "operator"),
            (EventKind.RESET, "api", State.OPEN, State.CLOSED, "operator"),
        ])
        self.assertEqual([e.seq for e in events], [0, 1, 2])
        self.assertTrue(all(e.pid == os.getpid() for e in events))
        self.assertTrue(before - 0.02 <= events[0].wall_time <= time.time() + 0.02)
        self.assertLessEqual(events[0].time_ns, time.monotonic_ns())
        # From a sequence number on, and "now": nothing yet.
        self.assertEqual([e.seq for e in self.segment.events(start=2)], [2])
        reader = self.segment.events(start="now")
        self.assertEqual(list(reader), [])
        self.assertEqual(reader.cursor, 3)
        with self.assertRaises(ValueError):
            self.segment.events(start=-1)

    def test_a_start_past_what_a_sequence_number_holds_is_refused(self):
        # ctypes would cut 2**64 to 0 and read the ring from its oldest.
        for start in (2 ** 64, 2 ** 70, -1, True, "later", 1.5):
            with self.assertRaises(ValueError):
                self.segment.events(start)

    def test_follow_waits_for_the_next_event_and_gives_up_after_its_timeout(self):
        reader = self.segment.events(start="now", follow=True, timeout=5)
        threading.Timer(0.2, self.trip).start()
        t0 = time.monotonic()
        e = next(reader)
        self.assertEqual((e.name, e.new), ("api", State.OPEN))
        self.assertGreater(time.monotonic() - t0, 0.15)
        quiet = self.segment.events(start="now", follow=True, timeout=0.2)
        t0 = time.monotonic()
        self.assertEqual(list(quiet), [])
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)

    def test_a_reader_that_falls_behind_the_ring_says_how_many_it_lost(self):
        for _ in range(1100):  # the ring keeps the last 1024
            self.segment.set_mode("api", Mode.FORCED_OPEN)
            self.segment.set_mode("api", Mode.NORMAL)
        reader = self.segment.events()
        events = list(reader)
        self.assertEqual(len(events), 1024)
        self.assertEqual(reader.lost, 2200 - 1024)
        self.assertEqual(events[0].seq, 2200 - 1024)


class TestListing(Fixture):
    def test_breakers_lists_a_snapshot_of_each_in_table_order(self):
        self.trip()
        snaps = self.segment.breakers()
        self.assertEqual([s.name for s in snaps], ["api", "search", "quick"])
        self.assertIsInstance(snaps[0], cbshm.Snapshot)
        self.assertEqual((snaps[0].state, snaps[0].failures, snaps[0].trips), (State.OPEN, 2, 1))
        self.assertEqual(snaps[1].settings["failure_threshold"], 5)
        self.assertFalse(snaps[0].probe_due)
        self.assertTrue(29 < snaps[0].retry_after <= 30)

    def test_an_interrupt_during_the_listing_is_raised_not_dropped(self):
        # Raised inside the ctypes callback, it used to be printed and
        # swallowed, and the listing came back short by one breaker.
        from unittest import mock
        real = cbshm.Snapshot.from_c
        seen = []

        def interrupted(c):
            seen.append(1)
            if len(seen) == 2:
                raise KeyboardInterrupt
            return real(c)

        with mock.patch.object(cbshm.Snapshot, "from_c", staticmethod(interrupted)):
            with self.assertRaises(KeyboardInterrupt):
                self.segment.breakers()
        self.assertEqual(len(seen), 2)

    def test_an_open_breaker_past_its_period_is_probe_due(self):
        quick = self.segment.breaker("quick")
        quick.allow().failure()
        time.sleep(0.1)
        quick.close()
        snap = self.segment.snapshot("quick")
        self.assertEqual(snap.state, State.OPEN)  # nobody has called since
        self.assertTrue(snap.probe_due)
        self.assertEqual(snap.retry_after, 0.0)

    def test_a_read_only_view_lists_and_refuses_to_write(self):
        ro = cbshm.Segment(self.seg, read_only=True)
        try:
            self.assertEqual([s.name for s in ro.breakers()], ["api", "search", "quick"])
            for write in (lambda: ro.breaker("api"), lambda: ro.reset("api"),
                          lambda: ro.set_mode("api", "forced_open")):
                with self.assertRaises(cbshm.CbshmError) as cm:
                    write()
                self.assertEqual(cm.exception.errname, "CBSHM_EPERM")
        finally:
            ro.close()


class TestListeners(Fixture):
    def test_on_state_change_hears_each_change_from_poll_events(self):
        heard = []
        remove = self.segment.on_state_change(heard.append)
        only_search = []
        self.segment.on_state_change(only_search.append, name="search")
        modes = []
        self.segment.on_event(modes.append, kinds=[EventKind.MODE])
        self.trip()
        self.segment.set_mode("api", Mode.DISABLED)
        self.assertEqual(self.segment.poll_events(), 2)
        self.assertEqual([(e.name, e.old, e.new, e.cause) for e in heard],
                         [("api", State.CLOSED, State.OPEN, "failures")])
        self.assertEqual(only_search, [])
        self.assertEqual([(e.old, e.new) for e in modes], [(Mode.NORMAL, Mode.DISABLED)])
        remove()
        self.segment.reset("api")
        self.segment.poll_events()
        self.assertEqual(len(heard), 1)

    def test_a_breaker_hears_only_its_own_changes(self):
        heard = []
        self.api.on_state_change(heard.append)
        search = self.segment.breaker("search")
        for _ in range(5):
            search.allow().failure()
        search.close()
        self.trip()
        self.segment.poll_events()
        self.assertEqual([e.name for e in heard], ["api"])

    def test_a_failing_listener_does_not_stop_the_others(self):
        heard = []

        def broken(event):
            raise ValueError("a listener's bug")
        self.segment.on_state_change(broken)
        self.segment.on_state_change(heard.append)
        self.trip()
        with self.assertLogs("cbshm", level="ERROR"):
            self.segment.poll_events()
        self.assertEqual(len(heard), 1)

    def test_listen_polls_from_a_helper_thread(self):
        got = threading.Event()
        self.segment.on_state_change(lambda e: got.set())
        self.segment.listen(interval=0.02)
        self.trip()
        self.assertTrue(got.wait(5))

    def test_listeners_set_up_before_the_segment_hear_it_once_applied(self):
        # Deploy order does not matter (open_breaker, CBSHM_LATE): neither
        # may the listener thread's - it must not die before the segment is
        # there.
        name = "/cbshm-pyev-late-%d-%d" % (os.getpid(), next(_seq))
        b = cbshm.open_breaker(name, "quick")
        got = threading.Event()
        b.on_state_change(lambda e: got.set())
        b.segment.listen(interval=0.02)
        time.sleep(0.1)
        try:
            cbshm.apply(yaml=YAML, segment=name)
            deadline = time.monotonic() + 5
            while b.state is None and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.1)  # the listener's first poll after attaching
            b.allow().failure()
            self.assertTrue(got.wait(5))
        finally:
            b.segment.stop_listening()
            b.close()
            b.segment.close()
            cbshm.destroy(name)

    def test_the_listener_thread_ends_with_its_segment(self):
        # It holds its segment weakly; once the segment is collected it has
        # nothing to poll and must not poll on forever.
        import gc
        segment = cbshm.Segment(self.seg)
        segment.on_event(lambda e: None)
        segment.listen(interval=0.01)
        thread = segment._listeners._thread
        del segment
        gc.collect()
        thread.join(5)
        self.assertFalse(thread.is_alive())

    def test_a_forked_child_runs_its_own_listener_thread(self):
        self.segment.on_state_change(lambda e: None)
        self.segment.listen(interval=0.02)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                got = threading.Event()
                self.segment.on_state_change(lambda e: got.set())
                self.trip()
                os.write(w, b"y" if got.wait(5) else b"n")
            finally:
                os._exit(0)
        os.close(w)
        answer = os.read(r, 1)
        os.close(r)
        os.waitpid(pid, 0)
        self.assertEqual(answer, b"y")


class TestBulkheadEvents(unittest.TestCase):
    def setUp(self):
        self.seg = "/cbshm-pyevbh-%d-%d" % (os.getpid(), next(_seq))
        cbshm.apply(yaml="breakers:\n  - name: pool\n    max_concurrent_calls: 1\n",
                    segment=self.seg)
        self.segment = cbshm.Segment(self.seg)
        self.pool = self.segment.breaker("pool")

    def tearDown(self):
        self.pool.close()
        self.segment.close()
        cbshm.destroy(self.seg)

    def test_a_bulkhead_that_fills_and_admits_again_is_in_the_ring(self):
        heard = []
        self.segment.on_event(heard.append, kinds=[EventKind.BULKHEAD])
        self.segment.on_state_change(heard.append)  # hears no bulkhead event
        held = self.pool.allow()
        with self.assertRaises(cbshm.BulkheadFullError):
            self.pool.allow()
        held.success()
        # Full until a call is admitted after a second without a rejection.
        time.sleep(1.05)
        self.pool.call(lambda: None)
        events = list(self.segment.events())
        self.assertEqual([(e.kind, e.name, e.old, e.new, e.cause) for e in events], [
            (EventKind.BULKHEAD, "pool", BulkheadState.ADMITTING, BulkheadState.FULL, "bulkhead"),
            (EventKind.BULKHEAD, "pool", BulkheadState.FULL, BulkheadState.ADMITTING, "bulkhead"),
        ])
        self.assertEqual("%s %s -> %s" % (events[0].kind, events[0].old, events[0].new),
                         "bulkhead admitting -> full")
        self.assertEqual(self.segment.poll_events(), 2)
        self.assertEqual(heard, events)


class TestScribbled(Fixture):
    """A worker can write the segment: what it scribbles must come out as
    CbshmError CBSHM_ECORRUPT or a skipped record, never anything else.
    Offsets from libcbshm/layout.h (struct cbshm_header, cbshm_slot,
    cbshm_event_rec)."""

    def setUp(self):
        super().setUp()
        import mmap
        self.file = open("/dev/shm" + self.seg, "r+b")
        self.mem = mmap.mmap(self.file.fileno(), 0)

    def tearDown(self):
        self.mem.close()
        self.file.close()
        super().tearDown()

    def header(self, fmt, offset):
        import struct
        return struct.unpack_from(fmt, self.mem, offset)[0]

    def test_a_state_outside_the_enum_is_corrupt_not_unguarded(self):
        import struct
        slots = self.header("<Q", 40)
        ctl = self.header("<Q", slots)
        struct.pack_into("<Q", self.mem, slots, ctl | 3)  # slot 0 is api: state 3
        try:
            with self.assertRaises(cbshm.CbshmError) as cm:
                self.segment.snapshot("api")
            self.assertEqual(cm.exception.errname, "CBSHM_ECORRUPT")
            # Not None, which says "unguarded": the breaker is attached.
            with self.assertRaises(cbshm.CbshmError) as cm:
                self.api.state
            self.assertEqual(cm.exception.errname, "CBSHM_ECORRUPT")
            with self.assertRaises(cbshm.CbshmError) as cm:
                self.segment.breakers()
            self.assertEqual([b.name for b in cm.exception.snapshots], ["search", "quick"])
        finally:
            struct.pack_into("<Q", self.mem, slots, ctl)
        self.assertEqual([b.name for b in self.segment.breakers()], ["api", "search", "quick"])

    def test_a_scribbled_event_ring_gives_events_or_skips_them(self):
        import random
        import struct
        self.trip()
        self.segment.set_mode("search", "forced_open")
        count, ring, head = self.header("<I", 92), self.header("<Q", 96), self.header("<Q", 104)
        heard = []
        self.segment.on_event(heard.append)
        rng = random.Random(15)
        for i in range(count):
            rec = ring + 128 * i
            how = i % 4
            if how == 0:
                self.mem[rec:rec + 128] = bytes(rng.getrandbits(8) for _ in range(128))
            elif how == 1:  # kind, old, new, cause: any bytes
                struct.pack_into("<I", self.mem, rec + 24, rng.getrandbits(32))
            elif how == 2:  # a name that is no UTF-8
                self.mem[rec + 32:rec + 96] = b"\xff\xfe" * 32
            else:  # a valid-looking record with state 3 and an unknown cause
                struct.pack_into("<QQIII", self.mem, rec, i + 1, 1, 1, 0,
                                 3 << 8 | 3 << 16 | 200 << 24)
        for seq in (head + 3, head + 5000, 2 ** 64 - 1, 0):
            struct.pack_into("<Q", self.mem, 104, seq)
            for start in (0, "now", 5, 2 ** 63):
                try:
                    reader = self.segment.events(start)
                    for e in reader:
                        self.assertIsInstance(e, cbshm.Event)
                        self.assertIsInstance(e.old, (State, Mode, BulkheadState))
                except cbshm.CbshmError:
                    pass
            try:
                self.segment.poll_events()
            except cbshm.CbshmError:
                pass
        for e in heard:
            self.assertIsInstance(e, cbshm.Event)

if __name__ == "__main__":
    unittest.main()
