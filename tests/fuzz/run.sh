#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs each libFuzzer target for a bounded time from its seed corpus (new
# inputs go to a scratch copy, not into the repository) and prints one
# line per target: execs, crashes, seconds it ran, execs a second. Exits 1
# if any target found a crash; the reproducer is left in the current
# directory as crash-*. With RUNS, a target also stops after that many
# execs (a campaign: `run.sh build/fuzz 3600 10000000`).
#   usage: run.sh BUILD_DIR SECONDS [RUNS]
set -u
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: run.sh BUILD_DIR SECONDS [RUNS]" >&2
    exit 2
fi
build=$1 seconds=$2 runs=${3:--1}
here=$(dirname "$0")
status=0
for target in segment config; do
    work=$(mktemp -d)
    cp "$here/corpus/$target"/* "$work/" 2>/dev/null
    log="$work/log"
    start=$(date +%s)
    "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -runs="$runs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 "$work" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    crashes=0
    if [ $rc -ne 0 ]; then
        crashes=1
        status=1
        tail -40 "$log"
    fi
    echo "fuzz: $target execs=${execs:-0} crashes=$crashes seconds=$took execs_per_s=${rate:-0}"
    rm -rf "$work"
done
exit $status
