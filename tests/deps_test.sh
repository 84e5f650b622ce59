#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/deps.sh and the Makefile's promise: only `make deps`, `make
# check`, `make demo` and `make fuzz` run it; CBSHM_NO_DEPS=1 skips it; a
# package lock held by another apt-get stops it with exit 75, a message
# that says so, and no install. apt-get, dpkg-query and id are stand-ins
# on PATH, so nothing is installed and no network is needed.
#   usage: deps_test.sh SOURCE_DIR
set -eu
src=$1
unset CBSHM_NO_DEPS # the runs below set it where they mean to
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
    echo "deps: $*"
    exit 1
}

for goal in all install package bench stress; do
    if make -C "$src" -n $goal 2>/dev/null | grep -q deps.sh; then fail "make $goal would run deps.sh"; fi
done
for goal in deps check demo fuzz; do
    make -C "$src" -n $goal 2>/dev/null | grep -q deps.sh || fail "make $goal does not run deps.sh"
done

# The stand-ins: every package but lintian is installed; apt-get logs its
# calls and, for install, fails as apt-get does when another holds the lock.
mkdir "$work/bin"
cat >"$work/bin/dpkg-query" <<'EOF'
#!/bin/sh
for last; do :; done
[ "$last" = lintian ] && exit 1
printf 'install ok installed'
EOF
cat >"$work/bin/apt-get" <<'EOF'
#!/bin/sh
echo "$*" >>"$APT_LOG"
case " $* " in
*" install "*)
    [ "${APT_LOCKED:-}" = 1 ] || exit 0
    echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
    echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
    exit 100 ;;
esac
EOF
printf '#!/bin/sh\necho 0\n' >"$work/bin/id"
chmod +x "$work/bin"/*
export APT_LOG="$work/apt.log"
run() {
    : >"$APT_LOG"
    rc=0
    env PATH="$work/bin:$PATH" "$@" sh "$src/scripts/deps.sh" >"$work/out" 2>&1 || rc=$?
}

run CBSHM_NO_DEPS=1
[ $rc = 0 ] && [ ! -s "$APT_LOG" ] || fail "CBSHM_NO_DEPS=1 did not skip (exit $rc)"
grep -q "skipped" "$work/out" || fail "CBSHM_NO_DEPS=1 says nothing"

run APT_LOCKED=1
[ $rc = 75 ] || fail "a held lock exits $rc, not 75: $(cat "$work/out")"
grep -q "holds the package lock" "$work/out" || fail "a held lock is not named: $(cat "$work/out")"
grep -q "held by process 4242" "$work/out" || fail "apt-get's own message is hidden"
grep -q "DPkg::Lock::Timeout=0" "$APT_LOG" || fail "apt-get is not told to fail at once on the lock"
[ "$(grep -c ' install ' "$APT_LOG")" = 1 ] || fail "install tried other than once"

run APT_LOCKED=0
[ $rc = 0 ] || fail "an install that works exits $rc: $(cat "$work/out")"
grep -q "install lintian" "$APT_LOG" || fail "lintian was not installed: $(cat "$APT_LOG")"
echo "deps: make goals, CBSHM_NO_DEPS, a held lock, an install: ok"
