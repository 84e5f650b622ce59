# SPDX-License-Identifier: MIT
"""libcbshm for Python: circuit breakers that every worker process on the
host shares, over the C library with ctypes (standard library only).

    import cbshm

    payments = cbshm.open_breaker("/cbshm", "payments-api",
                                  failure_exceptions=(OSError, TimeoutError))

    try:
        reply = payments.call(post_payment, order)
    except cbshm.CircuitOpenError as e:
        return unavailable(retry_after=e.retry_after)

    with payments:              # the same, as a block (async with, too)
        reply = post_payment(order)

    @payments                   # the same, as a decorator; on an async def,
    async def fetch(url): ...   # the coroutine is awaited inside the breaker

Outcomes: a call that returns is a success, unless `failure_if(result)`
says otherwise; an exception that is an instance of `failure_exceptions`
is a failure; any other exception is ignored (it says nothing about the
downstream) and propagates unchanged.

Handles survive fork(): open breakers in a gunicorn or uWSGI master
(preload) or in each worker; both work. Fail-open as in C: open_breaker()
never raises for a missing or foreign segment or an unknown breaker - the
breaker runs calls unguarded and says why in `.error` - unless it was
opened with fail_closed=True. Deploy order does not matter: such a
breaker attaches by itself (at most every 0.25 s, CBSHM_LATE) once its
segment and breaker appear - or, opened in a root master, once the worker
has dropped to the segment's owner.

Errors: the library's own codes raise CbshmError (.code, .errname);
system errors the OSError subclass of their errno (PermissionError, ...);
a refused call CircuitOpenError (.name: the breaker, .reason,
.retry_after), or its subclass BulkheadFullError when the breaker's
bulkhead (max_concurrent_calls) has every slot held; rejected YAML
ConfigError (.file, .line, .column, .key). With a bulkhead's max_wait,
admission may block the calling thread (in asyncio, the event loop) up
to that long: async code wants max_wait 0.

The library is the one CBSHM_LIBRARY names, else the installed
libcbshm.so.1 (the libcbshm1 package).
"""

from . import _native as n
from ._breaker import Breaker, Ticket
from ._errors import BulkheadFullError, CbshmError, CircuitOpenError, ConfigError
from ._events import EventReader
from ._model import BulkheadState, Event, EventKind, Mode, Outcome, Refusal, Snapshot, State
from ._provision import apply, destroy
from ._segment import Segment, open_breaker

__all__ = ["CbshmError", "CircuitOpenError", "BulkheadFullError", "ConfigError", "Segment",
           "Breaker", "Ticket", "EventReader", "Snapshot", "Event", "State", "Mode", "Outcome",
           "Refusal", "EventKind", "BulkheadState", "open_breaker", "apply", "destroy", "version",
           "now", "SUCCESS", "FAILURE", "IGNORED"]

SUCCESS, FAILURE, IGNORED = Outcome.SUCCESS, Outcome.FAILURE, Outcome.IGNORED


def version() -> str:
    """The C library's version string."""
    return str(n.cbshm_version().decode())


def now() -> int:
    """The library's clock (CLOCK_MONOTONIC, ns): what Snapshot and Event
    times are on."""
    return int(n.cbshm_now_ns())
