# SPDX-License-Identifier: MIT
"""A breaker handle and its tickets: the calls, blocks and decorators that
guard a downstream, for plain functions and coroutines alike.

An admitted call holds a ticket until its outcome is recorded. `with` and
`async with` keep their tickets in a context variable, not per thread:
asyncio tasks, and greenlets (gevent, eventlet), each run in their own
context, so coroutines interleaved in one thread record each their own."""

import contextvars
import ctypes
import functools
import inspect
import os
from typing import (TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Optional, Tuple, Type,
                    TypeVar, Union, cast)

from . import _native as n
from ._errors import BulkheadFullError, CbshmError, CircuitOpenError, check, error_for
from ._model import REFUSALS, Outcome, Refusal, Snapshot, State

if TYPE_CHECKING:
    from ._events import Listener
    from ._segment import Mapping, Segment

__all__ = ["Breaker", "Ticket"]

R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

# The tickets of the `with` blocks open in this context, innermost last.
# A tuple, replaced and never changed in place: a task or greenlet that
# copied the context keeps its own.
_open_tickets: "contextvars.ContextVar[Tuple[Tuple[Breaker, Ticket], ...]]" = \
    contextvars.ContextVar("cbshm_open_tickets", default=())

_NS_MAX = (1 << 64) - 1

# Bumped in every forked child: a ticket admitted before the fork is its
# parent's call, which the child must not record (it would give the
# parent's bulkhead slot or probe lease back while the call still runs,
# and count the call twice).
_forks = 0


def _after_fork_in_child() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def _nanoseconds(seconds: float, what: str, least: int, most: int) -> int:
    """Seconds as the C side's uint64 nanoseconds, within [least, most]
    (ctypes would wrap a larger value around silently; infinity is the
    most there is)."""
    if seconds != seconds:
        raise ValueError("%s must be a number of seconds, not NaN" % what)
    if seconds * 1e9 >= most:
        return most
    return max(int(seconds * 1e9), least)


class Ticket:
    """One admitted call of the two-step API; record it exactly once.

    A ticket garbage-collected unrecorded is recorded then as ignored: its
    bulkhead slot, or a probe's lease, goes back (a coroutine of call()
    never awaited, a task cancelled before it ran, a future dropped
    undone). One kept alive and never recorded holds its bulkhead slot
    until the breaker's slot_timeout, a probe's lease until probe_timeout.
    In a forked child a ticket its parent admitted records nothing: the
    call is the parent's."""

    __slots__ = ("_breaker", "_t", "_done", "_forks")

    def __init__(self, breaker: "Breaker") -> None:
        self._breaker = breaker
        self._t = n.Ticket()
        self._done = False
        self._forks = _forks

    def __del__(self) -> None:
        if getattr(self, "_done", True):
            return
        try:
            self.record(Outcome.IGNORED)
        except Exception:  # at interpreter exit the module may be gone
            pass

    def _take(self) -> Optional[int]:
        """Spends the ticket; the breaker's handle to record it with (None:
        unguarded, or admitted in the parent process: nothing to record)."""
        if self._done:
            raise CbshmError(n.EINVAL, "ticket recorded twice")
        self._done = True
        return self._breaker._h if self._forks == _forks else None

    def record(self, outcome: Outcome, duration: Optional[float] = None) -> None:
        """outcome: Outcome.SUCCESS, FAILURE or IGNORED; duration in
        seconds, if the caller measured it (else the time since admission
        counts)."""
        # Arguments are checked before the ticket is taken: a bad one
        # leaves it to be recorded (a probe's lease stays taken until
        # probe_timeout otherwise).
        value = int(Outcome(outcome))
        # UINT64_MAX means "not measured" to the C side.
        ns = None if duration is None else _nanoseconds(duration, "duration", 0, _NS_MAX - 1)
        h = self._take()
        if h is None:
            return
        if ns is None:
            rc = n.cbshm_record(h, ctypes.byref(self._t), value)
        else:
            rc = n.cbshm_record_timed(h, ctypes.byref(self._t), value, ns)
        check(rc, "breaker " + self._breaker.name)

    def success(self, duration: Optional[float] = None) -> None:
        self.record(Outcome.SUCCESS, duration)

    def failure(self, duration: Optional[float] = None,
                retry_after: Optional[float] = None) -> None:
        """retry_after: seconds the downstream asked for (a 429 or 503 with
        Retry-After): the breaker opens at once for at least that long."""
        if retry_after is None or retry_after <= 0:
            self.record(Outcome.FAILURE, duration)
            return
        ns = _nanoseconds(retry_after, "retry_after", 1, _NS_MAX)
        h = self._take()
        if h is None:
            return
        check(n.cbshm_record_retry_after(h, ctypes.byref(self._t), int(Outcome.FAILURE), ns),
              "breaker " + self._breaker.name)

    def ignored(self, duration: Optional[float] = None) -> None:
        self.record(Outcome.IGNORED, duration)


class Breaker:
    """A breaker shared by every process attached to its segment.

    Outcomes: a call that returns is a success, unless failure_if(result)
    says otherwise; an exception that is an instance of failure_exceptions
    is a failure; any other exception (asyncio.CancelledError, a
    KeyboardInterrupt, an exception outside failure_exceptions) says
    nothing about the downstream: ignored, and it propagates unchanged.

    A bulkhead (max_concurrent_calls or concurrency_quota) refuses a call
    past its limit with BulkheadFullError. With max_wait > 0 admission
    waits for a slot, up to max_wait, blocking the calling thread: in
    asyncio code that thread is the event loop's, and every task waits
    with it (`async with`, an async def decorated or passed to call()
    all admit synchronously). Give breakers that async code uses max_wait
    0 (the default): a full bulkhead refuses at once.

    Made by Segment.breaker() or open_breaker(). A breaker without a handle
    (open_breaker() could not have its segment) runs calls unguarded, or,
    with fail_closed=True, raises .error at each call."""

    def __init__(self, name: str, segment: "Optional[Segment]", handle: Optional[int],
                 failure_exceptions: Union[Type[BaseException],
                                           Iterable[Type[BaseException]]] = (Exception,),
                 failure_if: Optional[Callable[[Any], bool]] = None, error: int = 0,
                 fail_closed: bool = False, _mapping: "Optional[Mapping]" = None) -> None:
        self.name = name
        self.segment = segment
        # One class, as isinstance() and `except` take it, or several.
        self.failure_exceptions: Tuple[Type[BaseException], ...] = (
            (failure_exceptions,) if isinstance(failure_exceptions, type)
            else tuple(failure_exceptions))
        self.failure_if = failure_if
        self._error = error
        self._fail_closed = fail_closed
        self._h = handle
        self._closed = False
        self._release = _mapping.adopt(self, handle) if _mapping is not None and handle else None

    def __repr__(self) -> str:
        where = self.segment.name if self.segment is not None else "no segment"
        how = "closed" if self._closed else "unguarded" if self._h is None else "attached"
        return "<cbshm.Breaker %s in %s, %s>" % (self.name, where, how)

    @property
    def error(self) -> "Optional[BaseException]":
        """The last problem the breaker met (a CbshmError, or an OSError for
        a system error), or None: why calls run unguarded."""
        code = self._error or (int(n.cbshm_breaker_error(self._h)) if self._h else 0)
        return error_for(code, "breaker " + self.name) if code else None

    # -- two-step -------------------------------------------------------

    def allow(self) -> Ticket:
        """Admits a call: returns a Ticket to record, or raises
        CircuitOpenError (BulkheadFullError when the breaker's bulkhead
        has every slot held). With a bulkhead and max_wait > 0 it may
        block the calling thread up to max_wait waiting for a slot (in the
        C library, without the GIL: other threads run)."""
        h = self._h
        if h is None:
            if self._closed:
                raise ValueError("breaker %s is closed" % self.name)
            if self._fail_closed:
                raise error_for(self._error or n.EINVAL, "breaker " + self.name)
            # Unguarded: recording its ticket (once) records nothing.
            return Ticket(self)
        t = Ticket(self)
        rc = n.cbshm_allow(h, ctypes.byref(t._t))
        if rc == n.EREJECTED:
            raise self._rejection()
        check(rc, "breaker " + self.name)
        return t

    def _rejection(self) -> CircuitOpenError:
        # Asked in the thread that was refused: the library keeps a
        # bulkhead's refusal per thread.
        r = n.Rejection()
        if self._h and n.cbshm_breaker_rejection(self._h, ctypes.byref(r)) == 0:
            reason = REFUSALS.get(r.why, Refusal.OPEN)
            if reason is Refusal.BULKHEAD_FULL:
                return BulkheadFullError(self.name, r.retry_after_ns / 1e9)
            return CircuitOpenError(self.name, reason, r.retry_after_ns / 1e9)
        return CircuitOpenError(self.name, Refusal.OPEN, 0.0)

    def _finish(self, t: Ticket, exc: Optional[BaseException] = None, result: Any = None,
                judge: bool = True) -> None:
        """judge: result is the call's, for failure_if (a `with` block has none)."""
        if t._done:
            return
        if exc is not None:
            t.record(Outcome.FAILURE if isinstance(exc, self.failure_exceptions)
                     else Outcome.IGNORED)
            return
        failed = False
        if judge and self.failure_if is not None:
            try:
                failed = bool(self.failure_if(result))
            except BaseException:
                # The judge's bug says nothing about the downstream; the
                # ticket is recorded all the same, or a half-open probe's
                # lease would stay taken until probe_timeout.
                t.record(Outcome.IGNORED)
                raise
        t.record(Outcome.FAILURE if failed else Outcome.SUCCESS)

    async def _settle(self, t: Ticket, pending: Awaitable[R]) -> R:
        try:
            result = await pending
        except BaseException as e:
            self._finish(t, exc=e)
            raise
        self._finish(t, result=result)
        return result

    # -- call, with, async with, decorator ------------------------------

    def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Runs fn(*args, **kwargs) if admitted and returns its result.
        When fn returns a coroutine (an async def), the result is a
        coroutine too, and the outcome is recorded when it is awaited:
        `await breaker.call(fetch, url)`. A future (asyncio's, or any
        awaitable with add_done_callback) is returned as it is, and its
        outcome recorded when it is done. Any other awaitable is awaited
        in a coroutine - which has none of the object's other methods: for
        an awaitable that is also a context manager (aiohttp's
        session.get), put `async with breaker:` around it instead."""
        t = self.allow()
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            self._finish(t, exc=e)
            raise
        if inspect.iscoroutine(result):
            return cast(R, self._settle(t, result))
        if inspect.isawaitable(result) and hasattr(result, "add_done_callback"):
            result.add_done_callback(lambda f: self._finish_future(t, f))
            return cast(R, result)
        if inspect.isawaitable(result):
            return cast(R, self._settle(t, result))
        self._finish(t, result=result)
        return result

    def _finish_future(self, t: Ticket, f: Any) -> None:
        if f.cancelled():
            t.record(Outcome.IGNORED)  # a cancellation says nothing of the downstream
        elif f.exception() is not None:
            self._finish(t, exc=f.exception())
        else:
            self._finish(t, result=f.result())

    def __enter__(self) -> "Breaker":
        _open_tickets.set(_open_tickets.get() + ((self, self.allow()),))
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self._finish(self._pop(), exc=exc, judge=False)

    async def __aenter__(self) -> "Breaker":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def _pop(self) -> Ticket:
        tickets = _open_tickets.get()
        for i in range(len(tickets) - 1, -1, -1):
            if tickets[i][0] is self:
                _open_tickets.set(tickets[:i] + tickets[i + 1:])
                return tickets[i][1]
        raise RuntimeError("breaker %s: __exit__ without __enter__ in this context" % self.name)

    def __call__(self, fn: F) -> F:
        """A decorator: every call of fn goes through the breaker. An async
        def stays an async def (frameworks look): its coroutine is awaited
        inside the breaker and its outcome recorded. A generator function
        is refused (TypeError): its calls happen while it is iterated, after
        the decorated call returned - guard the calls inside it."""
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError("breaker %s: %s is a generator function: its calls run while it is "
                            "iterated, after the call returned; guard the calls inside it"
                            % (self.name, getattr(fn, "__qualname__", fn)))
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def guarded_coroutine(*args: Any, **kwargs: Any) -> Any:
                return await self.call(fn, *args, **kwargs)
            return cast(F, guarded_coroutine)

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            return self.call(fn, *args, **kwargs)
        return cast(F, guarded)

    # -- inspection ------------------------------------------------------

    def snapshot(self) -> Optional[Snapshot]:
        """The shared state, settings and counters; None when unguarded.
        Raises CbshmError CBSHM_ECORRUPT for a scribbled breaker: it is
        attached, and None would say it is not."""
        if self._h is None or self.segment is None:
            return None
        try:
            return self.segment.snapshot(self.name)
        except CbshmError as e:
            if e.code == n.ECORRUPT:
                raise
            return None  # not attached (yet)

    @property
    def state(self) -> Optional[State]:
        """The shared state now; None while unguarded (.error says why).
        Raises CbshmError CBSHM_ECORRUPT as snapshot() does."""
        snap = self.snapshot()
        return snap.state if snap else None

    def on_state_change(self, callback: "Listener") -> Callable[[], None]:
        """Calls callback(event) for each state change of this breaker
        (Segment.on_state_change, filtered by name); returns a function
        that removes it."""
        if self.segment is None:
            raise error_for(self._error or n.EINVAL, "breaker " + self.name)
        return self.segment.on_state_change(callback, name=self.name)

    def close(self) -> None:
        """Releases the handle; the breaker runs no call after it (they
        raise ValueError, as a closed file's methods do). Not while another
        thread is inside one of its calls."""
        self._h = None
        self._closed = True
        if self._release is not None:
            self._release()

