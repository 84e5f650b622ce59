#!/bin/sh
# Installs the Debian packages the build and tests need, when missing.
# As root with apt-get it installs them; otherwise it prints the command.
set -eu
PKGS="cmake make gcc clang libclang-rt-14-dev pkg-config valgrind libyaml-dev libcmocka-dev libjansson-dev python3 gunicorn python3-prometheus-client man-db groff-base dpkg-dev file"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$missing" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "deps: missing packages:$missing" >&2
    echo "deps: run: sudo apt-get install -y$missing" >&2
    exit 1
fi
