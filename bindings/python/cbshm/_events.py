# SPDX-License-Identifier: MIT
"""The segment's event ring from Python: an iterator over its records,
and listeners fed from it.

The ring (cbshm_events_read) never blocks and has no wake-up: a reader
polls it. Listeners are called from poll_events(), in the caller's thread,
or from one daemon thread that listen() starts; either way a callback runs
after the change, never inside a breaker call."""

import ctypes
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Callable, FrozenSet, Iterable, Iterator, List, Optional, Tuple, Union

from . import _native as n
from ._errors import CbshmError, check
from ._model import Event, EventKind

if TYPE_CHECKING:
    from ._segment import Segment

__all__ = ["EventReader", "Listener", "Listeners"]

Listener = Callable[[Event], None]
_BATCH = 64
_log = logging.getLogger("cbshm")


def _read(handle: int, cursor: int) -> Tuple[List[Event], int, int, int]:
    """(events, next cursor, lost, skipped) from cursor on, at most _BATCH."""
    buf = (n.Event * _BATCH)()
    at = ctypes.c_uint64(cursor)
    got, lost = ctypes.c_size_t(), ctypes.c_uint64()
    rc = int(n.cbshm_events_read(handle, ctypes.byref(at), buf, _BATCH, ctypes.byref(got),
                                 ctypes.byref(lost)))
    skipped = 0
    if rc == n.ECORRUPT:
        skipped = 1  # a record with a scribbled name; the rest are good
    else:
        check(rc, "events")
    out: List[Event] = []
    for i in range(got.value):
        try:
            out.append(Event.from_c(buf[i]))
        except CbshmError:
            skipped += 1  # a kind or state outside the library's words
    return out, at.value, int(lost.value), skipped


class EventReader(Iterator[Event]):
    """Segment.events(): the ring's records from a cursor on.

    .cursor is the sequence number of the next record to read; .lost how
    many were overwritten before this reader came to them (the ring keeps
    the last 1024); .skipped how many were scribbled and left out."""

    def __init__(self, segment: "Segment", start: Union[int, str], follow: bool,
                 timeout: Optional[float], poll_interval: float = 0.05) -> None:
        if start == "now":
            self.cursor = n.EVENTS_NOW
        elif isinstance(start, int) and not isinstance(start, bool) and 0 <= start < 2 ** 64:
            self.cursor = start
        else:
            raise ValueError('start must be a sequence number (0 to 2**64 - 1) or "now", not %r'
                             % (start,))
        self._segment = segment
        self.follow, self.timeout, self.poll_interval = follow, timeout, poll_interval
        self.lost = self.skipped = 0
        self._pending: List[Event] = []

    def __iter__(self) -> "EventReader":
        return self

    def _fill(self) -> None:
        try:
            events, self.cursor, lost, skipped = _read(self._segment._h(),
                                                       self.cursor)
        except (CbshmError, OSError):
            # A late segment not there yet: a follower waits for it.
            if not self.follow or not self._segment.late:
                raise
            return
        self._pending.extend(events)
        self.lost += lost
        self.skipped += skipped

    def __next__(self) -> Event:
        if not self._pending:
            self._fill()
        if self._pending or not self.follow:
            if self._pending:
                return self._pending.pop(0)
            raise StopIteration
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while not self._pending:
            if deadline is not None and time.monotonic() >= deadline:
                raise StopIteration
            time.sleep(self.poll_interval)
            self._fill()
        return self._pending.pop(0)


class Listeners:
    """The callbacks of one Segment and the cursor they share."""

    def __init__(self, segment: "Segment") -> None:
        self._segment = weakref.ref(segment)  # the helper thread must not keep it alive
        self._callbacks: List[Tuple[Listener, Optional[str], Optional[FrozenSet[EventKind]]]] = []
        self._cursor: Optional[int] = None
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._interval = 0.25
        _all.add(self)

    def add(self, callback: Listener, name: Optional[str],
            kinds: Optional[Iterable[EventKind]]) -> Callable[[], None]:
        entry = (callback, name, frozenset(EventKind(k) for k in kinds) if kinds else None)
        with self._lock:
            if self._cursor is None:
                # Only what comes from now on; poll_events() after this
                # sees every change made after this call returned.
                seg = self._segment()
                if seg is not None:
                    try:
                        self._cursor = _read(seg._h(), n.EVENTS_NOW)[1]
                    except (CbshmError, OSError):
                        # A late segment not attached yet (CBSHM_LATE):
                        # the first poll that can read it starts there.
                        pass
            self._callbacks.append(entry)

        def remove() -> None:
            with self._lock:
                if entry in self._callbacks:
                    self._callbacks.remove(entry)
        return remove

    def poll(self) -> int:
        seg = self._segment()
        if seg is None:
            return 0
        with self._lock:
            cursor = n.EVENTS_NOW if self._cursor is None else self._cursor
            events, self._cursor, lost, _ = _read(seg._h(), cursor)
            callbacks = list(self._callbacks)
        if lost:
            _log.warning("cbshm: segment %s: %d events were overwritten before they were read",
                         seg.name, lost)
        for e in events:
            for callback, name, kinds in callbacks:
                if (name is None or name == e.name) and (kinds is None or e.kind in kinds):
                    try:
                        callback(e)
                    except Exception:
                        # One listener's bug must not stop the others, or
                        # the helper thread.
                        _log.exception("cbshm: listener %r failed on %s", callback, e)
        return len(events)

    def start(self, interval: float) -> None:
        self._interval = interval
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cbshm-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join()
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if self._segment() is None:
                return  # the segment was collected: nothing left to poll
            try:
                self.poll()
            except ValueError:
                return  # the segment was closed
            except (CbshmError, OSError):
                # Not attached yet (a late segment, before `cbctl apply` or
                # before this worker dropped to the segment's owner): it
                # may be by the next poll, and deploy order must not matter.
                continue

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        running, self._thread = self._thread is not None, None
        if running:
            self.start(self._interval)


_all: "weakref.WeakSet[Listeners]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The parent's listener thread does not exist in a child: start the
    # child's own, with fresh locks (one held at fork() would stay held).
    for listeners in list(_all):
        listeners._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
