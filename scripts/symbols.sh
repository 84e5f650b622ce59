#!/bin/sh
# SPDX-License-Identifier: MIT
# Writes packaging/libcbshm1.symbols: Debian's list of the functions
# libcbshm.so.1 exports, each with the first version that had it, so a
# program built against a newer -dev package depends on a libcbshm1 that
# has what it uses. The functions are the CBSHM_API declarations of
# cbshm.h; one already listed keeps its version, a new one gets VERSION.
# Run it after changing the API: the package test fails until the file,
# the header and the library's exported symbols agree.
#   usage: scripts/symbols.sh [VERSION]   (default: project() in CMakeLists.txt)
set -eu
cd "$(dirname "$0")/.."
file=packaging/libcbshm1.symbols
version=${1:-$(sed -n 's/^project(cbshm VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)}
[ -n "$version" ] || { echo "symbols: no version in CMakeLists.txt; give one" >&2; exit 2; }
soname=$(sed -n 's/^\(libcbshm\.so\.[0-9]*\) .*/\1/p' "$file")
names=$(sed -n 's/^CBSHM_API[^(]*[ *]\(cbshm_[a-z0-9_]*\)(.*/\1/p' libcbshm/include/cbshm.h | sort -u)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
    echo "$soname libcbshm1 #MINVER#"
    echo "* Build-Depends-Package: libcbshm-dev"
    for n in $names; do
        v=$(sed -n "s/^ $n@Base \(.*\)/\1/p" "$file")
        echo " $n@Base ${v:-$version}"
    done
} >"$tmp"
for n in $(sed -n 's/^ \(cbshm_[a-z0-9_]*\)@Base .*/\1/p' "$file"); do
    echo "$names" | grep -qx "$n" ||
        echo "symbols: $n is gone: a removed function breaks the ABI (README: Install, soname policy)" >&2
done
cat "$tmp" >"$file"
