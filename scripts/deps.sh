#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian packages the build and the tests need, when missing.
# `make deps` runs it, and so do `make check`, `make demo` and `make fuzz`
# before they build; `make`, `make install` and `make package` never do.
# CBSHM_NO_DEPS=1 skips it (a machine set up by other means).
#
# As root with apt-get it installs what is missing; otherwise it prints the
# command. apt-get takes the package manager's locks itself, with no wait
# (DPkg::Lock::Timeout=0), so a running apt-get, dpkg or unattended-upgrades
# makes it stop before it has installed anything; dpkg's locks are fcntl()
# locks, which flock(1) cannot see, and fuser is not on a fresh machine, so
# asking apt-get is the one check that is both right and race-free.
#
# Exit status: 0 everything is installed; 1 something is missing and was
# not installed (not root, no apt-get, or apt-get failed); 75 another
# process holds the package manager's lock (try again once it is done).
set -eu

if [ "${CBSHM_NO_DEPS:-}" = 1 ]; then
    echo "deps: skipped (CBSHM_NO_DEPS=1)" >&2
    exit 0
fi

# What each package is for: README.md, section Dependencies.
PKGS="cmake make gcc pkg-config libyaml-dev libjansson-dev
      libcmocka-dev valgrind python3 python3-venv python3-wheel-whl python3-setuptools
      python3-wheel gunicorn python3-prometheus-client clang libclang-rt-14-dev man-db
      uwsgi uwsgi-plugin-python3 python3-gevent python3-eventlet
      php8.2-cli php8.2-fpm libfcgi-bin ruby ruby-minitest unicorn puma
      groff-base dpkg-dev file lintian abigail-tools mypy
      libhiredis-dev redis-server stunnel4 spiped openssl"

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: no dpkg-query: this is not a Debian system; install the equivalents of:" >&2
    echo "deps:  " $PKGS >&2
    echo "deps: then run make with CBSHM_NO_DEPS=1" >&2
    exit 1
fi
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: missing packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt-get's output, with the reason this script stopped, when it failed.
apt() {
    if LC_ALL=C DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=0 -y -qq "$@" >"$log" 2>&1; then
        return 0
    fi
    sed 's/^/deps: apt-get: /' "$log" >&2
    if grep -q '^E: .*lock' "$log"; then
        echo "deps: another apt-get, dpkg or unattended-upgrades holds the package lock;" >&2
        echo "deps: nothing was installed. Run 'make deps' again when it has finished." >&2
        exit 75
    fi
    echo "deps: apt-get $1 failed; still missing:$missing" >&2
    exit 1
}
echo "deps: installing$missing" >&2
apt update
# shellcheck disable=SC2086 # one word per package
apt install $missing
echo "deps: installed$missing" >&2
