# SPDX-License-Identifier: MIT
"""End to end: a real uWSGI (Debian's uwsgi, its python3 plugin) with 4
prefork workers on 127.0.0.1, started from examples/uwsgi/uwsgi.ini and
serving examples/python/app.py, a real downstream that is stopped and
started, and HTTP clients driving traffic (servertest.py runs it, as for
gunicorn). With the shared breaker the dead downstream gets at most
threshold + workers - 1 calls before every worker answers 503 at once,
and exactly half_open_max_calls probe per open period; service recovers
when it is back. So with the app loaded in the master before the fork
(uWSGI's default: the handle survives it), with lazy-apps (each worker
attaches after its fork; as root, at its first request), with a root
master whose workers drop to the segment's owner (master-as-root: the
postfork hook attaches them), and with workers started before the
segment exists. The same scenario with a
per-process breaker in each worker runs for comparison."""

import os
import unittest

import servertest as st
from servertest import SERVICE_UID, WORKERS

UWSGI = "/usr/bin/uwsgi"
PLUGIN = "/usr/lib/uwsgi/plugins/python3_plugin.so"
INI = os.path.join(st.DEPLOY, "examples", "uwsgi", "uwsgi.ini")


def uwsgi(*options):
    """The command line of examples/uwsgi with options, for servertest.outage.
    The socket comes first: the ini binds its own only when none is given."""
    return lambda port: ([UWSGI, "--http-socket", "127.0.0.1:%d" % port, "--ini", INI,
                          "--disable-logging"] + list(options))


def outage(*options, **kwargs):
    return st.outage("uwsgi", uwsgi(*options), st.DEPLOY, **kwargs)


# As root, the service user's deployment: uWSGI drops to uid and gid in the
# master, before it loads the app, and the segment is that user's. So the
# master that loads the app is never root, as the app wants (app.py).
AS_ROOT = os.geteuid() == 0
DROP = ["--uid", str(SERVICE_UID), "--gid", str(SERVICE_UID)] if AS_ROOT else []



@unittest.skipUnless(os.path.exists(UWSGI) and os.path.exists(PLUGIN),
                     "needs Debian's uwsgi and uwsgi-plugin-python3 (%s, %s)" % (UWSGI, PLUGIN))
class TestUwsgi(unittest.TestCase):
    def test_workers_of_an_app_loaded_before_the_fork_share_one_breaker(self):
        shared = outage(*DROP, as_user=AS_ROOT)
        local = outage(per_process=True)
        st.figures("uwsgi --uid %d" % SERVICE_UID if AS_ROOT else "uwsgi", shared, local)
        st.check_shared(self, shared)
        st.check_per_process(self, shared, local)
        # Opened once, in the master: every worker's handle came with its fork.
        self.assertEqual(st.opened(shared.log, "import"), 1, shared.log)
        self.assertEqual(shared.log.count("opened breaker"), 1, shared.log)

    def test_lazy_app_workers_that_attach_after_their_fork_share_one_breaker(self):
        # Without a drop: as root, the app opens no breaker on import and
        # no hook runs after a lazy app's import, so each worker attaches at
        # its first request.
        shared = outage("--lazy-apps")
        st.figures("uwsgi --lazy-apps", shared)
        st.check_shared(self, shared)
        self.assertEqual(st.opened(shared.log, "first request" if AS_ROOT else "import"), WORKERS,
                         shared.log)

    @unittest.skipUnless(os.geteuid() == 0, "needs root: the master runs as root, workers drop")
    def test_a_root_master_whose_workers_drop_to_the_segments_owner_shares_one_breaker(self):
        shared = outage("--master-as-root", "--uid", str(SERVICE_UID), "--gid",
                        str(SERVICE_UID), as_user=True)
        st.figures("uwsgi --master-as-root --uid %d" % SERVICE_UID, shared)
        st.check_shared(self, shared)
        # Each worker, in the postfork hook, after its drop.
        self.assertEqual(st.opened(shared.log, "postfork"), WORKERS, shared.log)

    def test_workers_started_before_the_segment_attach_once_it_is_applied(self):
        st.check_late(self, "uwsgi before apply", outage(late=True))


if __name__ == "__main__":
    unittest.main()
