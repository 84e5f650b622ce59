#!/bin/sh
# `make package` builds three Debian packages; unpacked into a scratch root
# they hold what each should, declare their dependencies, and cbctl from
# there runs against a real segment.
#   usage: package_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 src=$2
work=$(mktemp -d)
seg=/cbshm-package-$$
trap '"$work/root/usr/bin/cbctl" --segment $seg destroy >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
(cd "$build" && cpack -B "$work/out" >/dev/null)
for p in libcbshm1 libcbshm-dev cbctl; do
    deb=$(ls "$work/out/${p}_"*.deb)
    [ "$(dpkg-deb -f "$deb" Package)" = "$p" ]
    dpkg -x "$deb" "$work/root"
done
dpkg-deb -f "$work/out"/libcbshm1_*.deb Depends | grep -q libyaml
dpkg-deb -f "$work/out"/cbctl_*.deb Depends | grep -q libjansson
for f in usr/include/cbshm.h usr/lib/libcbshm.a usr/lib/pkgconfig/cbshm.pc \
         usr/lib/cmake/cbshm/cbshmConfig.cmake usr/bin/cbctl usr/share/man/man1/cbctl.1 \
         usr/share/man/man3/libcbshm.3 usr/share/bash-completion/completions/cbctl; do
    [ -e "$work/root/$f" ] || { echo "package: missing $f"; exit 1; }
done
ls "$work/root"/usr/lib/libcbshm.so.1* >/dev/null
"$work/root/usr/bin/cbctl" --version
"$work/root/usr/bin/cbctl" --segment $seg apply -f "$src/config/example.yaml" >/dev/null
"$work/root/usr/bin/cbctl" --segment $seg check >/dev/null
echo "package: libcbshm1, libcbshm-dev, cbctl: ok"
