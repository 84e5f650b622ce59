#!/bin/sh
# Runs each libFuzzer target for a bounded time from its seed corpus (new
# inputs go to a scratch copy, not into the repository) and prints one
# line per target: execs, crashes, seconds. Exits 1 if any target found a
# crash; the reproducer is left in the current directory as crash-*.
#   usage: run.sh BUILD_DIR SECONDS
set -u
build=$1 seconds=$2
here=$(dirname "$0")
status=0
for target in segment config; do
    work=$(mktemp -d)
    cp "$here/corpus/$target"/* "$work/" 2>/dev/null
    log="$work/log"
    "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$work" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    crashes=0
    if [ $rc -ne 0 ]; then
        crashes=1
        status=1
        tail -40 "$log"
    fi
    echo "fuzz: $target execs=${execs:-0} crashes=$crashes seconds=$seconds"
    rm -rf "$work"
done
exit $status
