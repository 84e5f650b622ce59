"""`cbctl metrics` read back by a real parser of the Prometheus text
format (Debian's python3-prometheus-client)."""

import os
import subprocess
import sys
import unittest

from prometheus_client.parser import text_string_to_metric_families

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
import cbshm  # noqa: E402

CBCTL = os.environ.get("CBCTL", os.path.join(REPO, "build", "dev", "cbctl", "cbctl"))


class TestMetrics(unittest.TestCase):
    def setUp(self):
        self.seg = "/cbshm-metrics-%d" % os.getpid()
        cbshm.apply(os.path.join(REPO, "config", "policies.yaml"), self.seg)

    def tearDown(self):
        cbshm.destroy(self.seg)

    def metrics(self):
        out = subprocess.run([CBCTL, "--segment", self.seg, "metrics"], check=True,
                             capture_output=True, text=True).stdout
        return {f.name: f for f in text_string_to_metric_families(out)}

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
        self.assertEqual(breakers, {"payments-api", "search-api", "inventory-db"})
        self.assertEqual(self.sample(fams, "cbshm_segment_breakers", segment=self.seg), 3)
        self.assertEqual(self.sample(fams, "cbshm_breaker_open_period_seconds",
                                     breaker="payments-api"), 10.0)

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
        self.assertEqual(self.sample(fams, "cbshm_setting_policy", policy="rate", **search), 1)
        self.assertEqual(self.sample(fams, "cbshm_setting_policy", policy="consecutive",
                                     **search), 0)
        self.assertEqual(self.sample(fams, "cbshm_setting_window_type", window_type="time",
                                     breaker="inventory-db"), 1)
        settings = [f for f in fams if f.startswith("cbshm_setting_")]
        self.assertEqual(len(settings), 20)
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


if __name__ == "__main__":
    unittest.main()
