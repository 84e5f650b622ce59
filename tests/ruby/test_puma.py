# SPDX-License-Identifier: MIT
"""End to end: a real Puma (Debian's puma) in cluster mode, 4 worker
processes of one thread each on 127.0.0.1, serving
examples/ruby/config.ru through the Ruby binding, a real downstream that
is stopped and started, and HTTP clients driving traffic
(tests/python/servertest.py runs it). With the shared breaker the dead
downstream gets at most threshold + workers - 1 calls before every
worker answers 503 at once, and exactly half_open_max_calls probe per
open period. So with the app preloaded and the breaker opened in the
master before the fork (preload_app!), and with each worker opening it in
on_worker_boot, and with 4 threads in each worker (several requests in
flight in each). The same scenario with a per-process breaker in each
worker runs for comparison."""

import os
import shutil
import unittest

import rackservers as rs

PUMA = shutil.which("puma") or "/usr/bin/puma"
# Threaded workers: 4 threads in each, enough clients for several requests
# in each worker at once, and a downstream slow enough (0.1 s) for their
# calls to overlap.
THREADS, THREADED_CLIENTS, THREADED_DELAY = 4, 16, 0.1


def puma(port, threads=1):
    return ["BIND=tcp://127.0.0.1:%d" % port, "PUMA_THREADS=%d" % threads, PUMA, "-C", "puma.rb"]


@unittest.skipUnless(os.path.exists(PUMA), "needs Debian's puma (%s)" % PUMA)
class TestPuma(unittest.TestCase):
    def test_workers_of_a_preloaded_app_share_the_breaker_the_master_opened(self):
        shared = rs.outage("puma", puma)
        local = rs.outage("puma", puma, per_process=True)
        rs.check_preloaded_and_per_process(self, "puma cluster preload_app!", shared, local)

    def test_workers_that_open_the_breaker_in_on_worker_boot_share_it(self):
        shared = rs.outage("puma", puma, attach="after_fork")
        rs.check_attached_after_fork(self, "puma cluster on_worker_boot", shared, "on_worker_boot")

    def test_threaded_workers_share_one_breaker_with_many_requests_in_flight_in_each(self):
        shared = rs.outage("puma", lambda port: puma(port, THREADS), clients=THREADED_CLIENTS,
                           delay=THREADED_DELAY)
        rs.st.figures("puma cluster, %d threads a worker" % THREADS, shared,
                      in_flight=THREADED_CLIENTS)
        rs.st.check_shared(self, shared, in_flight=THREADED_CLIENTS, overlap=2)


if __name__ == "__main__":
    unittest.main()
