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
on_worker_boot. The same scenario with a per-process breaker in each
worker runs for comparison."""

import os
import shutil
import unittest

import rackservers as rs

PUMA = shutil.which("puma") or "/usr/bin/puma"


def puma(port):
    return ["BIND=tcp://127.0.0.1:%d" % port, PUMA, "-C", "puma.rb"]


@unittest.skipUnless(os.path.exists(PUMA), "needs Debian's puma (%s)" % PUMA)
class TestPuma(unittest.TestCase):
    def test_workers_of_a_preloaded_app_share_the_breaker_the_master_opened(self):
        shared = rs.outage("puma", puma)
        local = rs.outage("puma", puma, per_process=True)
        rs.check_preloaded_and_per_process(self, "puma cluster preload_app!", shared, local)

    def test_workers_that_open_the_breaker_in_on_worker_boot_share_it(self):
        shared = rs.outage("puma", puma, attach="after_fork")
        rs.check_attached_after_fork(self, "puma cluster on_worker_boot", shared, "on_worker_boot")


if __name__ == "__main__":
    unittest.main()
