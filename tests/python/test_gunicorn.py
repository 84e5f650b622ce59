# SPDX-License-Identifier: MIT
"""End to end: a real gunicorn with 4 workers on 127.0.0.1 serving
examples/python/app.py, a real downstream that is stopped and started,
and HTTP clients driving traffic (servertest.py runs it). With the shared
breaker the dead downstream gets at most threshold + workers - 1 calls
before every worker answers 503 at once, and exactly half_open_max_calls
probe per open period; service recovers when it is back. So with sync
workers, with the greenlet workers (gevent, eventlet: several requests in
flight in each worker), with a root master whose workers drop to the
segment's owner, and with workers started before the segment exists. The
same scenario with a per-process breaker in each worker runs for
comparison."""

import os
import shutil
import sys
import unittest

import servertest as st
from servertest import SERVICE_UID, WORKERS

GUNICORN = shutil.which("gunicorn") or "gunicorn"
CONF_DIR = os.path.join(st.DEPLOY, "examples", "gunicorn")
# Greenlet workers: enough clients for several requests in each worker at
# once, and a downstream slow enough (0.1 s) for their calls to overlap.
GREEN_CLIENTS, GREEN_DELAY = 16, 0.1


def gunicorn(worker_class="sync", as_user=False):
    """The command line of examples/gunicorn, for servertest.outage."""
    user_args = ["--user", str(SERVICE_UID), "--group", str(SERVICE_UID)] if as_user else []
    return lambda port: ([GUNICORN, "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:%d" % port,
                          "--worker-class", worker_class] + user_args + ["app:app"])


def outage(worker_class="sync", as_user=False, **options):
    return st.outage("gunicorn", gunicorn(worker_class, as_user), CONF_DIR, as_user=as_user,
                     **options)


class TestCallDownstream(unittest.TestCase):
    def test_any_2xx_from_an_http_1_0_or_1_1_downstream_is_a_success(self):
        os.environ["BREAKER_MODE"] = "per-process"  # import without a segment
        sys.path.insert(0, st.EXAMPLE)
        try:
            import app
        finally:
            sys.path.pop(0)
            del os.environ["BREAKER_MODE"]
        for status, ok in [("HTTP/1.0 200 OK", True), ("HTTP/1.1 200 OK", True),
                           ("HTTP/1.1 204 No Content", True), ("HTTP/1.0 299 Odd", True),
                           ("HTTP/1.1 500 Internal Server Error", False),
                           ("HTTP/1.1 302 Found", False), ("HTTP/1.1 199 Early", False),
                           ("HTTP/2 200 OK", False), ("HTTP/1.1 2000 Long", False),
                           ("garbage", False)]:
            down = st.Downstream(status)
            try:
                app.DOWNSTREAM = ("127.0.0.1", down.port)
                if ok:
                    app.call_downstream()
                else:
                    self.assertRaises(OSError, app.call_downstream)
            finally:
                down.stop()


class TestGunicorn(unittest.TestCase):
    def test_workers_of_a_real_gunicorn_share_one_breaker(self):
        shared = outage()
        local = outage(per_process=True)
        st.figures("gunicorn", shared, local)
        st.check_shared(self, shared)
        st.check_per_process(self, shared, local)

    def test_gevent_workers_share_one_breaker_with_many_requests_in_flight_in_each(self):
        shared = outage("gevent", clients=GREEN_CLIENTS, delay=GREEN_DELAY)
        st.figures("gunicorn -k gevent", shared, in_flight=GREEN_CLIENTS)
        st.check_shared(self, shared, in_flight=GREEN_CLIENTS, overlap=2)

    def test_eventlet_workers_share_one_breaker_with_many_requests_in_flight_in_each(self):
        shared = outage("eventlet", clients=GREEN_CLIENTS, delay=GREEN_DELAY)
        st.figures("gunicorn -k eventlet", shared, in_flight=GREEN_CLIENTS)
        st.check_shared(self, shared, in_flight=GREEN_CLIENTS, overlap=2)

    @unittest.skipUnless(os.geteuid() == 0, "needs root: the master runs as root, workers drop")
    def test_a_root_master_whose_workers_drop_to_the_segments_owner_shares_one_breaker(self):
        shared = outage(as_user=True)
        st.figures("gunicorn --user %d" % SERVICE_UID, shared)
        st.check_shared(self, shared)
        # Each worker, in post_worker_init, after its drop.
        self.assertEqual(st.opened(shared.log, "post_worker_init"), WORKERS, shared.log)

    def test_workers_started_before_the_segment_attach_once_it_is_applied(self):
        st.check_late(self, "gunicorn before apply", outage(late=True))


if __name__ == "__main__":
    unittest.main()
