# SPDX-License-Identifier: MIT
"""The Python worker of the cross-language test (test_across_languages.py):

    worker.py SEGMENT BREAKER CALLS success|failure

says "ready", waits for a line on stdin (the test's "go"), makes CALLS
calls through breaker.call() that each return or raise
ConnectionError, and prints "ok=N failed=N rejected=N". Exits 2 when the
breaker runs unguarded: a cross-language test must never pass on
fail-open."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bindings", "python"))
import cbshm  # noqa: E402


def main():
    if len(sys.argv) != 5 or sys.argv[4] not in ("success", "failure"):
        sys.exit("usage: worker.py SEGMENT BREAKER CALLS success|failure")
    segment, name, calls, outcome = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    breaker = cbshm.open_breaker(segment, name, failure_exceptions=(ConnectionError,))
    if breaker.error is not None:
        print("worker.py: breaker %s unguarded: %s" % (name, breaker.error), file=sys.stderr)
        sys.exit(2)

    def downstream():
        if outcome == "failure":
            raise ConnectionError("down")

    print("ready", flush=True)  # then the test's "go": every worker starts at once
    sys.stdin.readline()
    counts = {"ok": 0, "failed": 0, "rejected": 0}
    for _ in range(calls):
        try:
            breaker.call(downstream)
            counts["ok"] += 1
        except ConnectionError:
            counts["failed"] += 1
        except cbshm.CircuitOpenError:
            counts["rejected"] += 1
    print("ok=%(ok)d failed=%(failed)d rejected=%(rejected)d" % counts)


if __name__ == "__main__":
    main()
