# SPDX-License-Identifier: MIT
"""What the Ruby server tests (test_unicorn.py, test_puma.py) share: the
scenarios of tests/python/servertest.py - a real downstream stopped and
started, HTTP clients, the attempt log and the checks on its figures -
run against a Rack server serving examples/ruby (config.ru, app.rb), whose
app writes the same attempt log and X-Worker header as the Python one."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import servertest as st  # noqa: E402
from servertest import WORKERS, check_late  # noqa: E402,F401

EXAMPLE = os.path.join(st.DEPLOY, "examples", "ruby")


def outage(name, server_argv, attach="preload", **options):
    """servertest.outage under a Ruby server. server_argv(port): its
    command line; attach: where the app opens the breaker (BREAKER_ATTACH:
    "preload", in the master before the fork, or "after_fork", in each
    worker's hook). production: no Rack::Lint or request log (RACK_ENV)."""
    return st.outage(name, lambda port: ["env", "RACK_ENV=production", "BREAKER_ATTACH=" + attach]
                     + server_argv(port), EXAMPLE, **options)


def check_preloaded_and_per_process(test, label, shared, local):
    st.figures(label, shared, local)
    st.check_shared(test, shared)
    st.check_per_process(test, shared, local)
    # Opened once, in the master: every worker's handle came with its fork.
    test.assertEqual(st.opened(shared.log, "preload"), 1, shared.log)
    test.assertEqual(shared.log.count("opened breaker"), 1, shared.log)
    # The per-process run opened no shared breaker at all.
    test.assertEqual(local.log.count("opened breaker"), 0, local.log)


def check_attached_after_fork(test, label, shared, hook):
    st.figures(label, shared)
    st.check_shared(test, shared)
    test.assertEqual(st.opened(shared.log, hook), WORKERS, shared.log)
    test.assertEqual(shared.log.count("opened breaker"), WORKERS, shared.log)

