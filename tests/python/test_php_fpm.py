# SPDX-License-Identifier: MIT
"""End to end: a real PHP-FPM (Debian's php8.2-fpm) with a static pool of
4 children started from examples/php/php-fpm.conf and php.ini (FFI for
preloaded code only, the binding preloaded), serving examples/php/index.php,
a real downstream that is stopped and started, and FastCGI clients
(cgi-fcgi, as a web server in front of FPM would send) driving traffic
(servertest.py runs it, as for gunicorn and uWSGI). With the shared
breaker the dead downstream gets at most threshold + children - 1 calls
before every child answers 503 at once, and exactly half_open_max_calls
probe per open period; service recovers when it is back. So with children
running as root (-R) and, as in production, with a root master whose
children run as the segment's owner. Each child opens
the breaker at its first request and keeps it for its life - also when
the pool starts before the segment exists: the handle attaches by itself
once it is applied. The same scenario with a breaker of each child's own
runs for comparison."""

import getpass
import os
import shutil
import unittest

import servertest as st
from servertest import SERVICE_UID, WORKERS

FPM = shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2"
EXAMPLE = os.path.join(st.DEPLOY, "examples", "php")
APP = os.path.join(EXAMPLE, "index.php")
PRELOAD = os.path.join(st.DEPLOY, "bindings", "php", "preload.php")


def php_fpm(as_user=False):
    """The command line of examples/php, for servertest.outage: the pool
    listens where FPM_LISTEN says; the preload script is the checkout's.
    As root the master runs as root; its children too (-R: the segment is
    root's, made by the test), or, as_user, as the service user that owns
    the segment (the pool's user and group)."""
    root = os.geteuid() == 0
    pool = ["FPM_USER=%d" % SERVICE_UID, "FPM_GROUP=%d" % SERVICE_UID] if as_user else []
    return lambda port: (
        ["env", "FPM_LISTEN=127.0.0.1:%d" % port] + pool
        + [FPM, "-F", "-y", os.path.join(EXAMPLE, "php-fpm.conf"),
           "-c", os.path.join(EXAMPLE, "php.ini"), "-d", "opcache.preload=" + PRELOAD,
           # opcache.preload_user wants a name; root's is the one account
           # the test may count on (it only compiles the binding's files).
           "-d", "opcache.preload_user=" + ("root" if root else getpass.getuser())]
        + (["-R"] if root and not as_user else []))


def outage(as_user=False, **options):
    return st.outage("php-fpm", php_fpm(as_user), EXAMPLE, request=st.fastcgi_get(APP),
                     yaml=os.path.join(EXAMPLE, "breakers.yaml"), as_user=as_user, **options)


def children(o):
    """The children that answered, by the X-Worker header."""
    return {r[2] for r in o.records if r[2]}


@unittest.skipUnless(os.path.exists(FPM) and shutil.which("cgi-fcgi"),
                     "needs Debian's php8.2-fpm and libfcgi-bin (make deps)")
class TestPhpFpm(unittest.TestCase):
    def test_children_of_a_real_php_fpm_pool_share_one_breaker(self):
        shared = outage()
        local = outage(per_process=True)
        st.figures("php-fpm", shared, local)
        st.check_shared(self, shared)
        st.check_per_process(self, shared, local)
        # A static pool of 4: each child opened the breaker once, at its
        # first request, and kept it through the hundreds that followed.
        self.assertEqual(len(children(shared)), WORKERS, children(shared))
        self.assertGreater(len(shared.records), 20 * WORKERS)
        self.assertEqual(st.opened(shared.log, "first request"), WORKERS, shared.log)
        self.assertNotIn("unguarded", shared.log)

    @unittest.skipUnless(os.geteuid() == 0, "needs root: the master runs as root, children drop")
    def test_a_root_master_whose_children_run_as_the_segments_owner_shares_one_breaker(self):
        # The production deployment: the pool's user owns the segment
        # (breakers.yaml's owner:, applied by root with cbctl).
        shared = outage(as_user=True)
        st.figures("php-fpm user %d" % SERVICE_UID, shared)
        st.check_shared(self, shared)
        self.assertEqual(st.opened(shared.log, "first request"), WORKERS, shared.log)
        self.assertNotIn("unguarded", shared.log)

    def test_children_started_before_the_segment_attach_once_it_is_applied(self):
        # Each child opens its breaker unguarded at its first request and
        # keeps that handle, which attaches by itself once the segment is there.
        shared = outage(late=True)
        st.figures("php-fpm before apply", shared)
        st.check_shared(self, shared)
        self.assertEqual(st.opened(shared.log, "first request"), WORKERS, shared.log)
        self.assertEqual(shared.log.count("unguarded: breaker downstream: segment does not exist"),
                         WORKERS, shared.log)


if __name__ == "__main__":
    unittest.main()
