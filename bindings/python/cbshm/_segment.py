# SPDX-License-Identifier: MIT
"""A segment attached to this process, the C handle under it, and
open_breaker()'s one Segment per segment name.

cbshm_close() wants every breaker handle of a segment released first;
Python frees objects in whatever order its collector finds them, so the
handle lives in a Mapping that the Segment and its breakers share, and is
detached when the last of them lets go of it - never before a breaker."""

import ctypes
import os
import threading
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from . import _native as n
from ._breaker import Breaker
from ._errors import CbshmError, check, error_for
from ._events import EventReader, Listener, Listeners
from ._model import EventKind, Mode, Snapshot, mode_value

__all__ = ["Segment", "open_breaker"]

# Every Mapping, so that a forked child can give each a fresh lock.
_mappings: "weakref.WeakSet[Mapping]" = weakref.WeakSet()


class Mapping:
    """The C segment handle and the breaker handles taken from it."""

    def __init__(self, handle: int) -> None:
        self.h: Optional[int] = handle
        self.live: Dict[int, str] = {}  # breaker handle -> breaker name
        self.closing = False
        # Reentrant: a breaker's finalizer takes it, and the cyclic
        # collector may run one in a thread that holds it already.
        self.lock = threading.RLock()
        _mappings.add(self)

    def adopt(self, breaker: Breaker, handle: int) -> Callable[[], None]:
        """Registers a breaker handle; the result releases it, once (when
        called, or when the breaker is collected). Not at interpreter exit:
        a daemon thread may still be inside a call then."""
        with self.lock:
            self.live[handle] = breaker.name
        release = weakref.finalize(breaker, self._release, handle)
        release.atexit = False
        return release

    def _release(self, handle: int) -> None:
        n.cbshm_breaker_release(handle)
        with self.lock:
            del self.live[handle]
            last = self.closing and not self.live
        if last:
            self._detach()

    def close(self) -> None:
        with self.lock:
            self.closing = True
            last = not self.live
        if last:
            self._detach()

    def _detach(self) -> None:
        h, self.h = self.h, None
        if h:
            n.cbshm_close(h)


class Segment:
    """An attached segment: its breakers, snapshots, modes and events.

    name: "/name" (default: $CBSHM_SEGMENT, else /cbshm). Raises CbshmError
    (or an OSError: PermissionError, ...) when it cannot attach, unless
    late=True: then the segment attaches by itself once it exists and this
    process may map it (CBSHM_LATE), and its breakers run calls fail-open
    until it does. read_only=True: an observer's view (CBSHM_READ_ONLY),
    for a user who may only read the segment; it takes no lock, and
    breaker(), set_mode() and reset() refuse (CbshmError CBSHM_EPERM).

    Each Segment is a mapping of its own; open_breaker() shares one per
    segment name. close() refuses while breakers taken from it are open."""

    def __init__(self, name: Optional[str] = None, *, fail_closed: bool = False,
                 late: bool = False, read_only: bool = False) -> None:
        self.name: str = name if name is not None else n.cbshm_default_segment().decode()
        self.fail_closed = fail_closed
        self.read_only = read_only
        self.late = late
        flags = ((n.FAIL_CLOSED if fail_closed else 0) | (n.LATE if late else 0)
                 | (n.READ_ONLY if read_only else 0))
        handle = n.vp()
        check(n.cbshm_open(os.fsencode(self.name), flags, ctypes.byref(handle)),
              "segment " + self.name)
        self._mapping = Mapping(int(handle.value or 0))
        self._detach = weakref.finalize(self, self._mapping.close)
        self._detach.atexit = False
        self._listeners = Listeners(self)

    def __repr__(self) -> str:
        return "<cbshm.Segment %s%s>" % (self.name, "" if self._mapping.h else ", closed")

    def __enter__(self) -> "Segment":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _h(self) -> int:
        if not self._detach.alive or self._mapping.h is None:
            raise ValueError("segment %s is closed" % self.name)
        return self._mapping.h

    # -- breakers ---------------------------------------------------------

    def breaker(self, name: str, **options: Any) -> Breaker:
        """The breaker `name`; raises CbshmError when there is none (on a
        late=True segment: a breaker that attaches once it is there).
        options: failure_exceptions, failure_if, fail_closed (Breaker)."""
        handle = n.vp()
        check(n.cbshm_breaker_get(self._h(), name.encode(), ctypes.byref(handle)),
              "breaker " + name)
        return Breaker(name, self, int(handle.value or 0), _mapping=self._mapping, **options)

    def snapshot(self, name: str) -> Snapshot:
        snap = n.Snapshot()
        check(n.cbshm_snapshot(self._h(), name.encode(), ctypes.byref(snap)), "breaker " + name)
        return Snapshot.from_c(snap)

    def breakers(self) -> List[Snapshot]:
        """A snapshot of every breaker, in table order (cbshm_foreach: one
        consistent copy of the table). A scribbled slot is left out and
        raises CbshmError CBSHM_ECORRUPT after the walk, with the others in
        its .snapshots."""
        got: List[Snapshot] = []
        bad: List[BaseException] = []
        stopped: List[BaseException] = []

        def visit(ctx: Any, s: Any) -> int:
            try:
                got.append(Snapshot.from_c(s.contents))
            except CbshmError as e:
                bad.append(e)
            except BaseException as e:
                # ctypes would print and drop an exception raised here (a
                # KeyboardInterrupt, MemoryError), and the walk would go on
                # without that breaker: stop it and raise it after.
                stopped.append(e)
                return 1
            return 0

        rc = int(n.cbshm_foreach(self._h(), n.FOREACH_FN(visit), None))
        if stopped:
            raise stopped[0]
        if rc == 0 and bad:
            rc = bad[0].code if isinstance(bad[0], CbshmError) else n.ECORRUPT
        if rc != 0:
            e = error_for(rc, "segment " + self.name)
            setattr(e, "snapshots", got)
            raise e
        return got

    def set_mode(self, name: str, mode: Union[Mode, str],
                 for_seconds: Optional[float] = None) -> None:
        """mode: a Mode or its word ("normal", "forced_open",
        "forced_closed", "disabled"); with for_seconds, the breaker returns
        to normal by itself then (cbshm_set_mode_for)."""
        value = mode_value(mode)
        if for_seconds is None:
            rc = n.cbshm_set_mode(self._h(), name.encode(), value)
        else:
            rc = n.cbshm_set_mode_for(self._h(), name.encode(), value,
                                      max(int(round(for_seconds * 1000)), 1))
        check(rc, "breaker " + name)

    def reset(self, name: str) -> None:
        check(n.cbshm_reset(self._h(), name.encode()), "breaker " + name)

    # -- events -----------------------------------------------------------

    def events(self, start: Union[int, str] = 0, follow: bool = False,
               timeout: Optional[float] = None) -> EventReader:
        """The event ring's records, as an iterator of Event (EventReader).
        start: 0, the oldest the ring holds (it keeps the last 1024), a
        sequence number, or "now" (only what comes next). follow=False
        stops at the last one; follow=True waits for more, polling (the
        ring has no wake-up), and stops once none came for `timeout`
        seconds (None: never)."""
        self._h()
        return EventReader(self, start, follow, timeout)

    def on_event(self, callback: Listener, name: Optional[str] = None,
                 kinds: Optional[Iterable[EventKind]] = None) -> Callable[[], None]:
        """Calls callback(event) for each event to come (of breaker `name`
        and of `kinds`, when given); returns a function that removes it.
        Callbacks run from poll_events(), in the thread that calls it, or
        from the helper thread that listen() starts."""
        return self._listeners.add(callback, name, kinds)

    def on_state_change(self, callback: Listener,
                        name: Optional[str] = None) -> Callable[[], None]:
        """on_event for state changes and resets (pybreaker's
        state_change): event.old and event.new are States."""
        return self._listeners.add(callback, name, (EventKind.STATE, EventKind.RESET))

    def poll_events(self) -> int:
        """Hands the events that came since the last poll to the callbacks;
        returns how many events were read."""
        return self._listeners.poll()

    def listen(self, interval: float = 0.25) -> None:
        """Starts a daemon thread that polls every `interval` seconds (once;
        a forked child starts its own). stop_listening() ends it."""
        self._listeners.start(interval)

    def stop_listening(self) -> None:
        self._listeners.stop()

    # -- closing ----------------------------------------------------------

    def close(self) -> None:
        """Detaches. Raises RuntimeError while breakers taken from this
        segment are open (close them first): the C library would crash."""
        if not self._detach.alive:
            return
        with self._mapping.lock:
            open_names = sorted(self._mapping.live.values())
        if open_names:
            raise RuntimeError("segment %s: %d breaker%s still open (%s): close %s first"
                               % (self.name, len(open_names), "" if len(open_names) == 1
                                  else "s", ", ".join(open_names),
                                  "it" if len(open_names) == 1 else "them"))
        self.stop_listening()
        _forget_shared(self)
        self._detach()


# -- one Segment per name for open_breaker ------------------------------

_shared: Dict[Tuple[str, bool], Segment] = {}
_shared_lock = threading.Lock()


def shared_segment(name: Optional[str], fail_closed: bool) -> Segment:
    """The Segment open_breaker() uses for `name`: made once per process
    (late=True), then shared by every breaker opened on it."""
    key = (name if name is not None else n.cbshm_default_segment().decode(), fail_closed)
    with _shared_lock:
        seg = _shared.get(key)
        if seg is None:
            seg = _shared[key] = Segment(key[0], fail_closed=fail_closed, late=True)
        return seg


def _forget_shared(seg: Segment) -> None:
    with _shared_lock:
        for key, s in list(_shared.items()):
            if s is seg:
                del _shared[key]


def open_breaker(segment: Optional[str], name: str, *, fail_closed: bool = False,
                 **options: Any) -> Breaker:
    """A breaker that never fails to open: when the segment or the breaker
    cannot be had, calls run unguarded (fail-open) and .error says why -
    or, with fail_closed=True, every call raises that error instead. The
    segment and breaker may come later: the breaker attaches by itself (at
    most every 0.25 s) once they are there and this process may map them.
    Every breaker opened so shares one Segment (one mapping) per segment
    name and fail_closed."""
    try:
        seg = shared_segment(segment, fail_closed)
    except (CbshmError, OSError) as e:
        code = e.code if isinstance(e, CbshmError) else -(e.errno or 1)
        return Breaker(name, None, None, error=code, fail_closed=fail_closed, **options)
    try:
        return seg.breaker(name, fail_closed=fail_closed, **options)
    except (CbshmError, OSError) as e:
        code = e.code if isinstance(e, CbshmError) else -(e.errno or 1)
        return Breaker(name, seg, None, error=code, fail_closed=fail_closed, **options)


def _after_fork_in_child() -> None:
    # A lock held by another thread of the parent at fork() stays held
    # forever in the child: give the child fresh ones.
    global _shared_lock
    _shared_lock = threading.Lock()
    for m in list(_mappings):
        m.lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)
