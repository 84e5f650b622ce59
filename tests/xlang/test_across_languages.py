# SPDX-License-Identifier: MIT
"""C, Python, Ruby and PHP workers on one breaker at once: each is a real
process of its language calling through its binding (tests/xlang/worker.*,
one contract: SEGMENT BREAKER CALLS success|failure -> "ok=N failed=N
rejected=N"). Failures recorded by one language trip the breaker for
all; `cbctl reset` closes it for all; concurrent counts add up exactly."""

import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
import cbshm  # noqa: E402

CBCTL = os.environ.get("CBCTL", "cbctl")
WORKERS = {
    "c": [os.environ.get("XLANG_C_WORKER", "xlang_worker")],
    "python": ["/usr/bin/python3", os.path.join(HERE, "worker.py")],
    "ruby": ["/usr/bin/ruby", os.path.join(HERE, "worker.rb")],
    "php": ["/usr/bin/php8.2", os.path.join(HERE, "worker.php")],
}
THRESHOLD = 5
SUCCESSES, FAILURES = 20000, 3000  # calls of each worker of the counts test
YAML = ("breakers:\n"
        "  - name: counts\n    failure_threshold: 1000000\n"
        "  - name: trip\n    failure_threshold: %d\n    open_timeout: 10m\n" % THRESHOLD)
LINE = re.compile(r"^ok=(\d+) failed=(\d+) rejected=(\d+)$")


def start(lang, segment, breaker, calls, outcome):
    """A worker that has opened its breaker and said "ready"."""
    proc = subprocess.Popen(WORKERS[lang] + [segment, breaker, str(calls), outcome],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.said_ready = proc.stdout.readline() == "ready\n"
    return proc


def go(procs):
    """Starts the calls of every worker at once."""
    for proc in procs:
        if proc.said_ready and proc.stdin is not None:
            proc.stdin.write("go\n")
            proc.stdin.close()
            proc.stdin = None  # for communicate(), which would flush it


def finish(test, lang, proc):
    go([proc])
    out, err = proc.communicate(timeout=120)
    test.assertTrue(proc.said_ready, "%s worker: exit %s: %s" % (lang, proc.returncode, err))
    test.assertEqual(proc.returncode, 0, "%s worker: exit %d: %s" % (lang, proc.returncode, err))
    m = LINE.match(out.strip())
    test.assertIsNotNone(m, "%s worker printed %r" % (lang, out))
    return tuple(int(x) for x in m.groups())


def run(test, lang, segment, breaker, calls, outcome):
    return finish(test, lang, start(lang, segment, breaker, calls, outcome))


class TestAcrossLanguages(unittest.TestCase):
    def setUp(self):
        self.seg = "/cbshm-xlang-%d" % os.getpid()
        cbshm.apply(yaml=YAML, segment=self.seg)
        self.segment = cbshm.Segment(self.seg)

    def tearDown(self):
        self.segment.close()
        cbshm.destroy(self.seg)

    def test_concurrent_counts_add_up_exactly_across_languages(self):
        # Two processes per language at once, one succeeding, one failing.
        # Each says "ready" once its breaker is open; then all start their
        # calls together, so that they run at once (a C worker's 2000
        # calls took less time than a Ruby worker took to start).
        procs = [(lang, outcome, start(lang, self.seg, "counts", n, outcome))
                 for lang in WORKERS for outcome, n in (("success", SUCCESSES), ("failure", FAILURES))]
        go([proc for _, _, proc in procs])
        for lang, outcome, proc in procs:
            want = (SUCCESSES, 0, 0) if outcome == "success" else (0, FAILURES, 0)
            self.assertEqual(finish(self, lang, proc), want, "%s %s" % (lang, outcome))
        snap = self.segment.snapshot("counts")
        print("across languages: %d workers; successes=%d failures=%d requests=%d"
              % (len(procs), snap.successes, snap.failures, snap.requests))
        self.assertEqual((snap.successes, snap.failures, snap.rejections, snap.requests),
                         (SUCCESSES * len(WORKERS), FAILURES * len(WORKERS), 0,
                          (SUCCESSES + FAILURES) * len(WORKERS)))

    def test_one_languages_failures_trip_it_for_all_and_a_reset_closes_it_for_all(self):
        for tripper in WORKERS:
            with self.subTest(tripper=tripper):
                subprocess.run([CBCTL, "reset", "trip", "--segment", self.seg], check=True,
                               capture_output=True)
                self.assertEqual(run(self, tripper, self.seg, "trip", THRESHOLD, "failure"),
                                 (0, THRESHOLD, 0))
                self.assertEqual(self.segment.snapshot("trip").state, cbshm.State.OPEN)
                for lang in WORKERS:
                    self.assertEqual(run(self, lang, self.seg, "trip", 1, "success"), (0, 0, 1),
                                     "%s after %s tripped it" % (lang, tripper))
                subprocess.run([CBCTL, "reset", "trip", "--segment", self.seg], check=True,
                               capture_output=True)
                for lang in WORKERS:
                    self.assertEqual(run(self, lang, self.seg, "trip", 1, "success"), (1, 0, 0),
                                     "%s after cbctl reset" % lang)
        self.assertEqual(self.segment.snapshot("trip").state, cbshm.State.CLOSED)


if __name__ == "__main__":
    unittest.main()
