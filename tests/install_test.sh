#!/bin/sh
# Installs the build tree into a scratch prefix, then builds a consumer
# against it twice - with find_package(cbshm) and with pkg-config - and
# runs each, and runs the installed cbctl.
set -eu
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/tests/consumer" -B "$work/cm" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cm" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib" "$work/cm/consumer_shared"
"$work/cm/consumer_static"
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
export PKG_CONFIG_PATH
cc -o "$work/pc" "$src/tests/consumer/consumer.c" $(pkg-config --cflags --libs cbshm)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/pc"
"$work/prefix/bin/cbctl" --version
echo "install: find_package shared, find_package static, pkg-config: ok"
