# SPDX-License-Identifier: MIT
"""A WSGI app whose handler calls a downstream through a circuit breaker
that every worker process of the server shares. One app for both servers
(no framework, standard library only): gunicorn loads it through
examples/gunicorn/gunicorn.conf.py, uWSGI through examples/uwsgi/uwsgi.ini.

    GET /  ->  200 when the downstream answered, 502 when it failed,
               503 at once when the breaker is open (the downstream is
               not called).

Environment: CBSHM_SEGMENT (default /cbshm-wsgi), DOWNSTREAM_PORT
(default 9000), BREAKER_MODE ("shared", the default, or "per-process": an
in-process breaker per worker, for comparison), ATTEMPT_LOG (a file that
gets one line per call that reached for the downstream: the worker, when
the call began and ended, and how; for the tests).
"""

import os
import re
import socket
import sys
import time

try:
    import cbshm
except ModuleNotFoundError:  # not installed: running from the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "bindings", "python"))
    import cbshm

SEGMENT = os.environ.get("CBSHM_SEGMENT", "/cbshm-wsgi")
DOWNSTREAM = ("127.0.0.1", int(os.environ.get("DOWNSTREAM_PORT", "9000")))
ATTEMPT_LOG = os.environ.get("ATTEMPT_LOG")


def log_attempt(began, ok):
    # One write(2) per line with O_APPEND: lines from workers never mix.
    fd = os.open(ATTEMPT_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, ("%d %.6f %.6f %s\n" % (os.getpid(), began, time.monotonic(),
                                          "ok" if ok else "failed")).encode())
    os.close(fd)


# "HTTP/1.0 200 OK", "HTTP/1.1 204 No Content": the version and the code.
STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: |\r\n)")


def call_downstream():
    began = time.monotonic()
    try:
        with socket.create_connection(DOWNSTREAM, timeout=2) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            # The status line, however its bytes arrive; any 2xx from an
            # HTTP/1.0 or HTTP/1.1 server is a success.
            head = b""
            while b"\r\n" not in head and len(head) < 256:
                chunk = s.recv(256)
                if not chunk:
                    break
                head += chunk
            m = STATUS_LINE.match(head)
            if m is None or not m.group(1).startswith(b"2"):
                raise ConnectionError("downstream answered badly: %r"
                                      % head.split(b"\r\n")[0][:64])
    except OSError:
        if ATTEMPT_LOG:
            log_attempt(began, False)
        raise
    if ATTEMPT_LOG:
        log_attempt(began, True)


class LocalOpen(Exception):
    pass


class PerProcessBreaker:
    """What libcbshm replaces: a breaker in each worker's own memory
    (consecutive failures, one probe per open period - per process)."""

    def __init__(self, threshold, open_timeout):
        self.threshold, self.open_timeout = threshold, open_timeout
        self.failures, self.opened_at = 0, None

    def call(self, fn):
        if self.opened_at is not None and time.monotonic() - self.opened_at < self.open_timeout:
            raise LocalOpen()
        try:
            fn()
        except OSError:
            self.failures += 1
            if self.opened_at is not None or self.failures >= self.threshold:
                self.opened_at = time.monotonic()
            raise
        self.failures, self.opened_at = 0, None


if os.environ.get("BREAKER_MODE", "shared") == "per-process":
    breaker = PerProcessBreaker(int(os.environ.get("BREAKER_THRESHOLD", "3")),
                                float(os.environ.get("BREAKER_OPEN_TIMEOUT", "2")))
else:
    breaker = None


def attach_breaker(when):
    """Opens the shared breaker, once per process that needs it, and says
    which process did and when: the master (once, before the fork) or each
    worker."""
    global breaker
    if breaker is None:
        breaker = cbshm.open_breaker(SEGMENT, "downstream", failure_exceptions=(OSError,))
        print("cbshm: process %d: opened breaker downstream (%s)" % (os.getpid(), when),
              file=sys.stderr, flush=True)


# Opened when the module is imported: in the master with gunicorn's
# preload_app or uWSGI's default (the handle survives the fork of every
# worker), else in each worker (uWSGI's lazy-apps). Not in a master running
# as root: the segment belongs to the workers' user, and root maps no
# segment another user can write - each worker opens it after it dropped
# to that user (post_worker_init in gunicorn.conf.py, the postfork hook in
# examples/uwsgi/wsgi.py).
if os.environ.get("BREAKER_MODE", "shared") != "per-process" and os.geteuid() != 0:
    attach_breaker("import")


_guarded = None  # this worker's breaker, at its last call: attached or not


def note_guard():
    """Logs once when the breaker runs unguarded (no segment or breaker yet:
    calls go through, fail-open) and once when it has attached."""
    global _guarded
    err = getattr(breaker, "error", None)
    if err is not None and _guarded is not False:
        print("cbshm: worker %d: breaker downstream unguarded (%s): calls run without it "
              "until it attaches" % (os.getpid(), err), file=sys.stderr, flush=True)
    elif err is None and _guarded is not True and isinstance(breaker, cbshm.Breaker):
        print("cbshm: worker %d: breaker downstream attached" % os.getpid(), file=sys.stderr,
              flush=True)
    _guarded = err is None


def app(environ, start_response):
    if breaker is None:
        # A worker running as root that no server hook attached (uWSGI's
        # lazy-apps, gunicorn without gunicorn.conf.py): its first request.
        attach_breaker("first request")
    try:
        breaker.call(call_downstream)
        status, body = "200 OK", b"ok\n"
    except (cbshm.CircuitOpenError, LocalOpen):
        status, body = "503 Service Unavailable", b"downstream unavailable (breaker open)\n"
    except OSError as e:
        status, body = "502 Bad Gateway", ("downstream failed: %s\n" % e).encode()
    note_guard()
    start_response(status, [("Content-Type", "text/plain"), ("X-Worker", str(os.getpid()))])
    return [body]
