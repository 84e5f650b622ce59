# SPDX-License-Identifier: MIT
"""`cbctl metrics` read back by a real parser of the Prometheus text
format (Debian's python3-prometheus-client)."""

import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
import cbshm  # noqa: E402

CBCTL = os.environ.get("CBCTL", os.path.join(REPO, "build", "dev", "cbctl", "cbctl"))
# The breakers of config/policies.yaml, which every test here applies.
POLICIES = {"payments-api", "search-api", "inventory-db", "reports-api", "thumbnails"}


class TestMetrics(unittest.TestCase):
    def setUp(self):
        self.seg = "/cbshm-metrics-%d" % os.getpid()
        cbshm.apply(os.path.join(REPO, "config", "policies.yaml"), self.seg)

    def tearDown(self):
        cbshm.destroy(self.seg)

    def text(self, seg=None, check=True):
        return subprocess.run([CBCTL, "--segment", seg or self.seg, "metrics"], check=check,
                              capture_output=True, text=True).stdout

    def metrics(self):
        return {f.name: f for f in text_string_to_metric_families(self.text())}

    def sample(self, fams, name, **labels):
        """The value of sample `name` (a counter's samples keep _total,
        its family drops it) with these labels."""
        for fam in fams.values():
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        raise AssertionError("no sample %s %s" % (name, labels))

    def test_every_breaker_appears_in_every_family(self):
        fams = self.metrics()
        for name in ("cbshm_breaker_state", "cbshm_breaker_mode", "cbshm_breaker_calls",
                     "cbshm_breaker_rejections", "cbshm_breaker_trips",
                     "cbshm_breaker_probes_in_flight", "cbshm_breaker_open_period_seconds",
                     "cbshm_breaker_window_failure_ratio", "cbshm_segment_breakers"):
            self.assertIn(name, fams)
        self.assertEqual(fams["cbshm_breaker_calls"].type, "counter")
        self.assertEqual(fams["cbshm_breaker_state"].type, "gauge")
        breakers = {s.labels["breaker"] for s in fams["cbshm_breaker_trips"].samples}
        self.assertEqual(breakers, POLICIES)
        self.assertEqual(self.sample(fams, "cbshm_segment_breakers", segment=self.seg), 5)
        self.assertEqual(self.sample(fams, "cbshm_breaker_open_period_seconds",
                                     breaker="payments-api"), 10.0)
        # The bulkheads: a limit, a quota's (no worker yet: at least 1), none.
        for name, limit in (("reports-api", 8), ("thumbnails", 1), ("payments-api", 0)):
            self.assertEqual(self.sample(fams, "cbshm_bulkhead_limit", breaker=name), limit)
            self.assertEqual(self.sample(fams, "cbshm_bulkhead_in_flight", breaker=name), 0)

    # Every family, with its type: a family added, renamed or dropped is
    # a change a dashboard sees, so this list changes with it.
    FAMILIES = {
        "cbshm_up": "gauge",
        "cbshm_build_info": "gauge",
        "cbshm_breaker_state": "gauge",
        "cbshm_breaker_probe_due": "gauge",
        "cbshm_breaker_mode": "gauge",
        "cbshm_breaker_calls": "counter",
        "cbshm_breaker_slow_calls": "counter",
        "cbshm_breaker_rejections": "counter",
        "cbshm_breaker_trips": "counter",
        "cbshm_breaker_probes_in_flight": "gauge",
        "cbshm_breaker_probes_reclaimed": "counter",
        "cbshm_breaker_open_period_seconds": "gauge",
        "cbshm_breaker_open_until_timestamp_seconds": "gauge",
        "cbshm_breaker_last_transition_timestamp_seconds": "gauge",
        "cbshm_breaker_consecutive_failures": "gauge",
        "cbshm_breaker_window_calls": "gauge",
        "cbshm_breaker_window_failure_ratio": "gauge",
        "cbshm_breaker_window_slow_ratio": "gauge",
        "cbshm_breaker_failing_workers": "gauge",
        "cbshm_bulkhead_limit": "gauge",
        "cbshm_bulkhead_in_flight": "gauge",
        "cbshm_bulkhead_rejections": "counter",
        "cbshm_bulkhead_reclaimed": "counter",
        "cbshm_bulkhead_waits": "counter",
        "cbshm_breaker_settings_info": "gauge",
        "cbshm_segment_breakers": "gauge",
        "cbshm_segment_capacity": "gauge",
        "cbshm_segment_workers": "gauge",
        "cbshm_segment_lock_repairs": "counter",
    }

    def test_the_families_are_exactly_these_with_no_series_twice(self):
        fams = self.metrics()
        others = {k: f.type for k, f in fams.items() if not k.startswith("cbshm_setting_")}
        self.assertEqual(others, self.FAMILIES)
        seen = set()
        for fam in fams.values():
            self.assertTrue(fam.documentation, fam.name)
            for s in fam.samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                self.assertNotIn(key, seen)
                seen.add(key)
                self.assertEqual(s.labels["segment"], self.seg)
        # Per breaker, the outcomes of calls_total are these three: slow is
        # a counter of its own, so their sum is the calls, not more.
        outcomes = {s.labels["outcome"] for s in fams["cbshm_breaker_calls"].samples}
        self.assertEqual(outcomes, {"success", "failure", "ignored"})

    def test_numbers_are_the_shortest_text_that_reads_back(self):
        values = [line.rsplit(" ", 1)[1] for line in self.text().splitlines()
                  if line and not line.startswith("#")]
        self.assertIn("0.1", values)  # open_timeout_jitter 10%: not 0.10000000000000001
        for v in values:
            shortest = repr(float(v))
            self.assertIn(v, (shortest, shortest[:-2] if shortest.endswith(".0") else shortest))

    def test_up_and_build_info(self):
        fams = self.metrics()
        self.assertEqual(self.sample(fams, "cbshm_up", segment=self.seg), 1)
        info = fams["cbshm_build_info"].samples
        self.assertEqual(len(info), 1)
        self.assertEqual(info[0].value, 1)
        self.assertEqual(info[0].labels["version"], cbshm.version())
        self.assertRegex(info[0].labels["layout_version"], r"^[1-9][0-9]*$")

    def test_a_missing_segment_is_up_0_with_exit_1(self):
        missing = self.seg + "-missing"
        run = subprocess.run([CBCTL, "--segment", missing, "metrics"], capture_output=True,
                             text=True)
        self.assertEqual(run.returncode, 1)
        self.assertIn("segment %s: segment does not exist" % missing, run.stderr)
        fams = {f.name: f for f in text_string_to_metric_families(run.stdout)}
        self.assertEqual(set(fams), {"cbshm_up", "cbshm_build_info"})
        self.assertEqual(self.sample(fams, "cbshm_up", segment=missing), 0)

    def test_last_transition_is_a_wall_clock_timestamp(self):
        before = time.time()
        seg = cbshm.Segment(self.seg)
        seg.set_mode("payments-api", "forced_open")
        b = seg.breaker("payments-api")
        b.close()
        seg.reset("payments-api")  # a transition (to closed) now
        after = time.time()
        fams = self.metrics()
        ts = self.sample(fams, "cbshm_breaker_last_transition_timestamp_seconds",
                         breaker="payments-api")
        # The library's coarse clock: up to a tick (10 ms at HZ=100) early.
        self.assertGreaterEqual(ts, before - 0.02)
        self.assertLessEqual(ts, after + 0.02)
        seg.close()

    def test_an_open_breaker_says_when_it_probes_even_past_its_open_period(self):
        seg = cbshm.Segment(self.seg)
        b = seg.breaker("payments-api")
        t = b.allow()
        before = time.time()
        t.failure(retry_after=200)  # the downstream said: in 200 s, past the 30 s period
        fams = self.metrics()
        until = self.sample(fams, "cbshm_breaker_open_until_timestamp_seconds",
                            breaker="payments-api")
        period = self.sample(fams, "cbshm_breaker_open_period_seconds", breaker="payments-api")
        self.assertLess(period, 200)
        self.assertGreater(until, before + 190)
        self.assertLess(until, before + 210)
        self.assertEqual(self.sample(fams, "cbshm_breaker_open_until_timestamp_seconds",
                                     breaker="search-api"), 0)
        seg.reset("payments-api")
        b.close()
        seg.close()

    def test_settings_words_are_labels_of_one_info_metric(self):
        fams = self.metrics()
        info = {s.labels["breaker"]: s for s in fams["cbshm_breaker_settings_info"].samples}
        self.assertEqual(set(info), POLICIES)
        self.assertEqual(info["search-api"].labels["policy"], "rate")
        self.assertEqual(info["search-api"].labels["window_type"], "count")
        self.assertEqual(info["inventory-db"].labels["window_type"], "time")
        self.assertEqual(info["payments-api"].labels["policy"], "consecutive")
        self.assertEqual(info["payments-api"].labels["half_open_decision"], "first_failure")
        self.assertTrue(all(s.value == 1 for s in info.values()))

    def test_every_setting_is_a_gauge_in_base_units(self):
        fams = self.metrics()
        search = dict(breaker="search-api")
        self.assertEqual(self.sample(fams, "cbshm_setting_failure_rate_ratio", **search), 0.5)
        self.assertEqual(self.sample(fams, "cbshm_setting_slow_call_duration_seconds", **search),
                         2.0)
        self.assertEqual(self.sample(fams, "cbshm_setting_open_timeout_max_seconds", **search),
                         300.0)
        self.assertEqual(self.sample(fams, "cbshm_setting_backoff_multiplier",
                                     breaker="inventory-db"), 1.5)
        self.assertEqual(self.sample(fams, "cbshm_setting_min_failing_workers",
                                     breaker="payments-api"), 2)
        self.assertEqual(self.sample(fams, "cbshm_setting_open_timeout_jitter_ratio",
                                     **search), 0.1)
        # A host setting is a count and a share, each a gauge, the other 0.
        self.assertEqual(self.sample(fams, "cbshm_setting_fleet_open_hosts",
                                     breaker="payments-api"), 2)
        self.assertEqual(self.sample(fams, "cbshm_setting_fleet_open_hosts_ratio",
                                     breaker="payments-api"), 0)
        self.assertEqual(self.sample(fams, "cbshm_setting_fleet_open_hosts", **search), 0)
        self.assertEqual(self.sample(fams, "cbshm_setting_fleet_open_hosts_ratio", **search),
                         0.34)
        self.assertEqual(self.sample(fams, "cbshm_setting_fleet_open_hosts",
                                     breaker="inventory-db"), 0)
        # The words are labels of cbshm_breaker_settings_info, not gauges.
        self.assertNotIn("cbshm_setting_policy", fams)
        self.assertNotIn("cbshm_setting_window_type", fams)
        settings = [f for f in fams if f.startswith("cbshm_setting_")]
        self.assertEqual(len(settings), 23)
        for name in settings:
            self.assertEqual(fams[name].type, "gauge")

    def test_values_follow_the_breaker(self):
        seg = cbshm.Segment(self.seg)
        b = seg.breaker("payments-api", failure_exceptions=(OSError,))
        b.call(lambda: None)

        def down():
            raise OSError("refused")

        for _ in range(3):
            with self.assertRaises(OSError):
                b.call(down)
        # payments-api needs 2 failing workers; force it open from here.
        seg.set_mode("payments-api", "forced_open")
        with self.assertRaises(cbshm.CircuitOpenError):
            b.call(lambda: None)
        fams = self.metrics()
        self.assertEqual(self.sample(fams, "cbshm_breaker_calls_total", breaker="payments-api",
                                     outcome="success"), 1)
        self.assertEqual(self.sample(fams, "cbshm_breaker_calls_total", breaker="payments-api",
                                     outcome="failure"), 3)
        self.assertEqual(self.sample(fams, "cbshm_breaker_rejections_total",
                                     breaker="payments-api"), 1)
        self.assertEqual(self.sample(fams, "cbshm_breaker_mode", breaker="payments-api",
                                     mode="forced_open"), 1)
        self.assertEqual(self.sample(fams, "cbshm_breaker_mode", breaker="payments-api",
                                     mode="normal"), 0)
        self.assertEqual(self.sample(fams, "cbshm_breaker_state", breaker="payments-api",
                                     state="closed"), 1)
        self.assertEqual(self.sample(fams, "cbshm_breaker_consecutive_failures",
                                     breaker="payments-api"), 3)
        b.close()
        seg.close()

    def test_a_slow_call_is_counted_once_in_calls_and_once_as_slow(self):
        seg = cbshm.Segment(self.seg)
        b = seg.breaker("search-api")
        b.allow().success(duration=3.0)  # slow_call_duration is 2s
        b.allow().failure(duration=3.0)
        b.allow().success(duration=0.001)
        fams = self.metrics()
        calls = {s.labels["outcome"]: s.value for s in fams["cbshm_breaker_calls"].samples
                 if s.labels["breaker"] == "search-api" and s.name.endswith("_total")}
        self.assertEqual(calls, {"success": 2, "failure": 1, "ignored": 0})
        self.assertEqual(self.sample(fams, "cbshm_breaker_slow_calls_total",
                                     breaker="search-api"), 2)
        b.close()
        seg.close()


class TestMetricsOutput(unittest.TestCase):
    """cbctl metrics --output FILE: atomic, no litter, the old file kept on
    a failed write."""

    def setUp(self):
        self.seg = "/cbshm-metrics-out-%d" % os.getpid()
        cbshm.apply(os.path.join(REPO, "config", "policies.yaml"), self.seg)
        self.dir = tempfile.mkdtemp(prefix="cbshm-metrics-")
        self.path = os.path.join(self.dir, "cbshm.prom")

    def tearDown(self):
        cbshm.destroy(self.seg)
        shutil.rmtree(self.dir)

    def run_output(self, seg, *extra):
        return subprocess.run([CBCTL, "--segment", seg, "metrics", "--output", self.path]
                              + list(extra), capture_output=True, text=True)

    def test_the_file_is_written_whole_and_alone(self):
        run = self.run_output(self.seg)
        self.assertEqual((run.returncode, run.stdout, run.stderr), (0, "", ""))
        self.assertEqual(os.listdir(self.dir), ["cbshm.prom"])
        with open(self.path) as f:
            fams = {fam.name: fam for fam in text_string_to_metric_families(f.read())}
        self.assertIn("cbshm_breaker_state", fams)
        mask = os.umask(0)
        os.umask(mask)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o666 & ~mask)

    def test_a_missing_segment_writes_up_0_and_exits_1_without_litter(self):
        self.assertEqual(self.run_output(self.seg).returncode, 0)
        run = self.run_output(self.seg + "-missing")
        self.assertEqual(run.returncode, 1)
        self.assertIn("segment does not exist", run.stderr)
        self.assertEqual(os.listdir(self.dir), ["cbshm.prom"])
        with open(self.path) as f:
            text = f.read()
        self.assertRegex(text, r'(?m)^cbshm_up\{segment="%s-missing"\} 0$' % re.escape(self.seg))
        self.assertNotIn("cbshm_breaker_state", text)

    def test_a_write_that_fails_keeps_the_old_file(self):
        self.assertEqual(self.run_output(self.seg).returncode, 0)
        with open(self.path) as f:
            old = f.read()

        def small_files():  # the write fails with EFBIG half-way
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

        run = subprocess.run([CBCTL, "--segment", self.seg, "metrics", "--output", self.path],
                             capture_output=True, text=True, preexec_fn=small_files)
        self.assertEqual(run.returncode, 1)
        self.assertIn("write: File too large", run.stderr)
        with open(self.path) as f:
            self.assertEqual(f.read(), old)
        self.assertEqual(os.listdir(self.dir), ["cbshm.prom"])

    def test_a_bad_output_path_is_a_usage_error(self):
        run = self.run_output(self.seg, "--output", self.dir + "/")
        self.assertEqual(run.returncode, 2)
        self.assertIn("--output wants a file name", run.stderr)
        run = subprocess.run([CBCTL, "--segment", self.seg, "metrics", "--output",
                              os.path.join(self.dir, "no-such-dir", "x.prom")],
                             capture_output=True, text=True)
        self.assertEqual(run.returncode, 1)
        self.assertIn("its directory: No such file or directory", run.stderr)


if __name__ == "__main__":
    unittest.main()
