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

    with payments:              # the same, as a block
        reply = post_payment(order)

    @payments                   # the same, as a decorator
    def post_payment(order): ...

Outcomes: a call that returns is a success, unless `failure_if(result)`
says otherwise; an exception that is an instance of `failure_exceptions`
is a failure; any other exception is ignored (it says nothing about the
downstream) and propagates unchanged.

Handles survive fork(): open breakers in a gunicorn master (preload_app)
or in each worker; both work. Fail-open as in C: open_breaker() never
raises for a missing or foreign segment or an unknown breaker - the
breaker runs calls unguarded and says why in `.error` - unless it was
opened with fail_closed=True. Deploy order does not matter: such a
breaker attaches by itself (at most every 0.25 s, CBSHM_LATE) once its
segment and breaker appear - or, opened in a root master, once the worker
has dropped to the segment's owner.
"""

import functools
import os
import threading

from . import _native as n

__all__ = ["CbshmError", "CircuitOpenError", "Segment", "Breaker", "Ticket", "open_breaker",
           "apply", "destroy", "version", "SUCCESS", "FAILURE", "IGNORED"]

SUCCESS, FAILURE, IGNORED = n.SUCCESS, n.FAILURE, n.IGNORED


def version():
    """The C library's version string."""
    return n.cbshm_version().decode()


def strerror(code):
    return n.cbshm_strerror(code).decode()


class CbshmError(Exception):
    """A libcbshm call failed; .code is its C code, the message its strerror."""

    def __init__(self, code, what=""):
        self.code = code
        self.name = n.cbshm_errname(code).decode()
        msg = strerror(code)
        super().__init__("%s: %s" % (what, msg) if what else msg)


class CircuitOpenError(CbshmError):
    """The breaker refused the call; the downstream was not called.

    .breaker is the breaker's name; .reason why it refuses ("open",
    "probes_busy": half-open with every probe taken, "forced_open"); and
    .retry_after the seconds until it may admit a call (0 when the library
    cannot say: forced open with no end, or it admits calls again already).
    Both are read at the rejection, without the table lock.
    """

    def __init__(self, breaker):
        self.breaker = breaker.name
        r = n.Rejection()
        if n.cbshm_breaker_rejection(breaker._h, n.ctypes.byref(r)) == 0:
            self.reason = n.REFUSALS.get(r.why, "open")
            self.retry_after = r.retry_after_ns / 1e9
        else:
            self.reason, self.retry_after = "open", 0.0
        super().__init__(n.EREJECTED, breaker.name)


def _check(rc, what):
    if rc != 0:
        raise CbshmError(rc, what)


class Segment:
    """An attached segment. Raises CbshmError when it cannot attach."""

    def __init__(self, name=None, fail_closed=False, late=False):
        self.name = name or n.cbshm_default_segment().decode()
        self.fail_closed = fail_closed
        handle = n.vp()
        flags = (n.FAIL_CLOSED if fail_closed else 0) | (n.LATE if late else 0)
        _check(n.cbshm_open(self.name.encode(), flags, n.ctypes.byref(handle)),
               "segment " + self.name)
        self._h = handle

    def breaker(self, name, **options):
        """The breaker `name`; raises CbshmError when there is none."""
        handle = n.vp()
        _check(n.cbshm_breaker_get(self._h, name.encode(), n.ctypes.byref(handle)),
               "breaker " + name)
        return Breaker(name, self, handle, **options)

    def snapshot(self, name):
        snap = n.Snapshot()
        _check(n.cbshm_snapshot(self._h, name.encode(), n.ctypes.byref(snap)), "breaker " + name)
        return _snapshot_dict(snap)

    def set_mode(self, name, mode, for_seconds=None):
        """mode: "normal", "forced_open", "forced_closed" or "disabled";
        with for_seconds, the breaker returns to normal by itself then
        (cbshm_set_mode_for)."""
        codes = {v: k for k, v in n.MODES.items()}
        if mode not in codes:
            raise ValueError("mode must be one of %s" % ", ".join(sorted(codes)))
        if for_seconds is None:
            rc = n.cbshm_set_mode(self._h, name.encode(), codes[mode])
        else:
            rc = n.cbshm_set_mode_for(self._h, name.encode(), codes[mode],
                                      max(int(round(for_seconds * 1000)), 1))
        _check(rc, "breaker " + name)

    def reset(self, name):
        _check(n.cbshm_reset(self._h, name.encode()), "breaker " + name)

    def close(self):
        if self._h:
            n.cbshm_close(self._h)
            self._h = None


def _snapshot_dict(s):
    d = {name: getattr(s, name) for name, _ in n.Snapshot._fields_
         if name not in ("name", "settings", "state", "mode", "reserved")}
    d["name"] = s.name.decode()
    d["state"] = n.STATES.get(s.state, "invalid")
    d["mode"] = n.MODES.get(s.mode, "invalid")
    d["settings"] = n.setting_values(s.settings)
    return d


class Ticket:
    """One admitted call of the two-step API; record it exactly once."""

    __slots__ = ("_breaker", "_t", "_done")

    def __init__(self, breaker):
        self._breaker = breaker
        self._t = n.Ticket()
        self._done = False

    def record(self, outcome, duration=None):
        """outcome: SUCCESS, FAILURE or IGNORED; duration in seconds, if the
        caller measured it (else the time since admission counts)."""
        if self._done:
            raise CbshmError(n.EINVAL, "ticket recorded twice")
        self._done = True
        b = self._breaker
        if duration is None:
            rc = n.cbshm_record(b._h, n.ctypes.byref(self._t), outcome)
        else:
            rc = n.cbshm_record_timed(b._h, n.ctypes.byref(self._t), outcome,
                                      int(duration * 1e9))
        _check(rc, "breaker " + b.name)

    def success(self, duration=None):
        self.record(SUCCESS, duration)

    def failure(self, duration=None, retry_after=None):
        """retry_after: seconds the downstream asked for (a 429 or 503 with
        Retry-After): the breaker opens at once for at least that long."""
        if retry_after is None or retry_after <= 0:
            self.record(FAILURE, duration)
            return
        if self._done:
            raise CbshmError(n.EINVAL, "ticket recorded twice")
        self._done = True
        b = self._breaker
        _check(n.cbshm_record_retry_after(b._h, n.ctypes.byref(self._t), FAILURE,
                                          max(int(retry_after * 1e9), 1)), "breaker " + b.name)

    def ignored(self, duration=None):
        self.record(IGNORED, duration)


class Breaker:
    """A breaker shared by every process attached to its segment."""

    def __init__(self, name, segment, handle, failure_exceptions=(Exception,), failure_if=None,
                 error=0, fail_closed=False):
        self.name = name
        self.segment = segment
        self._h = handle
        self.failure_exceptions = tuple(failure_exceptions)
        self.failure_if = failure_if
        self._error = error
        self._fail_closed = fail_closed
        self._local = threading.local()

    @property
    def error(self):
        """The last problem the breaker met (a CbshmError), or None."""
        code = self._error or (n.cbshm_breaker_error(self._h) if self._h else 0)
        return CbshmError(code, "breaker " + self.name) if code else None

    # -- two-step -------------------------------------------------------

    def allow(self):
        """Admits a call: returns a Ticket to record, or raises CircuitOpenError."""
        if not self._h:
            if self._fail_closed:
                raise CbshmError(self._error, "breaker " + self.name)
            t = Ticket(self)
            t._done = True  # unguarded: nothing to record
            return t
        t = Ticket(self)
        rc = n.cbshm_allow(self._h, n.ctypes.byref(t._t))
        if rc == n.EREJECTED:
            raise CircuitOpenError(self)
        _check(rc, "breaker " + self.name)
        return t

    def _outcome(self, exc):
        return FAILURE if isinstance(exc, self.failure_exceptions) else IGNORED

    def _finish(self, t, exc=None, result=None):
        if t._done:
            return
        if exc is not None:
            t.record(self._outcome(exc))
        elif self.failure_if is not None and self.failure_if(result):
            t.record(FAILURE)
        else:
            t.record(SUCCESS)

    # -- call, with, decorator -----------------------------------------

    def call(self, fn, *args, **kwargs):
        """Runs fn(*args, **kwargs) if admitted and returns its result."""
        t = self.allow()
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            self._finish(t, exc=e)
            raise
        self._finish(t, result=result)
        return result

    def __enter__(self):
        stack = getattr(self._local, "tickets", None)
        if stack is None:
            stack = self._local.tickets = []
        stack.append(self.allow())
        return self

    def __exit__(self, exc_type, exc, tb):
        self._finish(self._local.tickets.pop(), exc=exc)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            return self.call(fn, *args, **kwargs)
        return guarded

    # -- inspection ------------------------------------------------------

    def snapshot(self):
        """A dict of state, mode, settings and counters; None when unguarded."""
        if not self._h:
            return None
        try:
            return self.segment.snapshot(self.name)
        except CbshmError:
            return None  # not attached (yet)

    @property
    def state(self):
        snap = self.snapshot()
        return snap["state"] if snap else "unguarded"

    def close(self):
        if self._h:
            n.cbshm_breaker_release(self._h)
            self._h = None


def open_breaker(segment, name, fail_closed=False, **options):
    """A breaker that never fails to open: when the segment or the breaker
    cannot be had, calls run unguarded (fail-open) and .error says why -
    or, with fail_closed=True, every call raises that error instead."""
    try:
        seg = Segment(segment, fail_closed=fail_closed, late=True)
    except CbshmError as e:
        return Breaker(name, None, None, error=e.code, fail_closed=fail_closed, **options)
    try:
        return seg.breaker(name, fail_closed=fail_closed, **options)
    except CbshmError as e:
        return Breaker(name, seg, None, error=e.code, fail_closed=fail_closed, **options)


def apply(path=None, segment=None, *, yaml=None):
    """Creates or reconciles a segment from YAML, as `cbctl apply`, and
    returns the number of changes. The YAML is the file at `path` (a str or
    os.PathLike), or the text `yaml=`; a str `path` with a newline in it is
    taken as YAML text too. The segment is `segment` if given, else the
    YAML's `segment`, else $CBSHM_SEGMENT, else /cbshm (cbshm_config_segment,
    the rule every tool follows). Raises CbshmError; for rejected YAML the
    message carries FILE:LINE:COL (the label "<yaml>" for text)."""
    if (path is None) == (yaml is None):
        raise TypeError("apply() wants a path or yaml=, not both or neither")
    if yaml is None and isinstance(path, str) and "\n" in path:
        yaml, path = path, None
    cfg = n.vp()
    diag = n.Diag()
    if yaml is not None:
        if not isinstance(yaml, (str, bytes)):
            raise TypeError("yaml= wants str or bytes, not %s" % type(yaml).__name__)
        text = yaml.encode() if isinstance(yaml, str) else yaml
        what = "<yaml>"
        rc = n.cbshm_config_load_string(text, len(text), what.encode(), n.ctypes.byref(cfg),
                                        n.ctypes.byref(diag))
    else:
        what = os.fspath(path)
        rc = n.cbshm_config_load_file(os.fsencode(what), n.ctypes.byref(cfg),
                                      n.ctypes.byref(diag))
    if rc == n.ECONFIG:
        # The C side cuts long keys and values at a byte count, maybe inside
        # a UTF-8 character: show what is left rather than fail to decode.
        def text_of(field):
            return field.decode("utf-8", "replace")
        raise CbshmError(rc, "%s:%d:%d: %s: %s" % (text_of(diag.file), diag.line, diag.column,
                                                   text_of(diag.key), text_of(diag.message)))
    _check(rc, what)
    changes = n.ctypes.c_uint()
    given = segment.encode() if segment else None
    try:
        name = n.cbshm_config_segment(cfg, given).decode("utf-8", "replace")
        rc = n.cbshm_apply(cfg, given, 0, None, None, n.ctypes.byref(changes))
    finally:
        n.cbshm_config_free(cfg)
    _check(rc, "segment %s" % name)
    return changes.value


def destroy(segment):
    _check(n.cbshm_destroy(segment.encode()), "segment " + segment)
