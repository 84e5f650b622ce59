# SPDX-License-Identifier: MIT
"""End to end: a real Unicorn (Debian's unicorn) with 4 workers on
127.0.0.1 serving examples/ruby/config.ru through the Ruby binding, a
real downstream that is stopped and started, and HTTP clients driving
traffic (tests/python/servertest.py runs it, as for gunicorn and uWSGI).
With the shared breaker the dead downstream gets at most threshold +
workers - 1 calls before every worker answers 503 at once, and exactly
half_open_max_calls probe per open period; service recovers when it is
back. So with the app preloaded and the breaker opened in the master
before the fork (preload_app true), with each worker opening it in
after_fork, and with workers started before the segment exists. The same
scenario with a per-process breaker in each worker runs for comparison."""

import os
import shutil
import unittest

import rackservers as rs

UNICORN = shutil.which("unicorn") or "/usr/bin/unicorn"


def unicorn(port):
    return ["LISTEN=127.0.0.1:%d" % port, UNICORN, "-c", "unicorn.conf.rb", "config.ru"]


@unittest.skipUnless(os.path.exists(UNICORN), "needs Debian's unicorn (%s)" % UNICORN)
class TestUnicorn(unittest.TestCase):
    def test_workers_of_a_preloaded_app_share_the_breaker_the_master_opened(self):
        shared = rs.outage("unicorn", unicorn)
        local = rs.outage("unicorn", unicorn, per_process=True)
        rs.check_preloaded_and_per_process(self, "unicorn preload_app", shared, local)

    def test_workers_that_open_the_breaker_in_after_fork_share_it(self):
        shared = rs.outage("unicorn", unicorn, attach="after_fork")
        rs.check_attached_after_fork(self, "unicorn after_fork", shared, "after_fork")

    def test_workers_started_before_the_segment_attach_once_it_is_applied(self):
        shared = rs.outage("unicorn", unicorn, late=True)
        rs.check_late(self, "unicorn before apply", shared)


if __name__ == "__main__":
    unittest.main()
