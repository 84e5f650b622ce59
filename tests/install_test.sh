#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the build tree into a scratch prefix, then builds a consumer
# against it - with find_package(cbshm), and with pkg-config twice: run
# with LD_LIBRARY_PATH, and linked with an rpath to run as it is (the two
# ways README.md gives for a PREFIX install) - and runs the installed
# cbctl and man.
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
cc -o "$work/pc-rpath" "$src/tests/consumer/consumer.c" $(pkg-config --cflags --libs cbshm) \
    -Wl,-rpath,"$(pkg-config --variable=libdir cbshm)"
env -u LD_LIBRARY_PATH "$work/pc-rpath"
"$work/prefix/bin/cbctl" --version
# The man pages are installed, `man` finds them, and cbctl(1) documents
# exactly the commands `cbctl --help` lists.
MANPATH="$work/prefix/share/man" man -w cbctl >/dev/null
MANPATH="$work/prefix/share/man" man -w 3 libcbshm >/dev/null
MANPATH="$work/prefix/share/man" man -w 5 cbshm.yaml >/dev/null
MANPATH="$work/prefix/share/man" man -w cbshm_open | grep -q 'libcbshm\.3\.gz$\|cbshm_open\.3\.gz$'
help_cmds=$("$work/prefix/bin/cbctl" --help | sed -n '/^commands:/,/^$/p' | awk 'NF>1 {print $1}' | sort)
man_cmds=$(MANPATH="$work/prefix/share/man" MANWIDTH=200 man cbctl 2>/dev/null |
    sed -n '/^COMMANDS/,/^EXIT STATUS/p' | awk '/^       [a-z]/ {print $1}' | sort -u)
if [ "$help_cmds" != "$man_cmds" ]; then
    echo "install: cbctl --help and cbctl(1) list different commands:"
    echo "help: $help_cmds"
    echo "man:  $man_cmds"
    exit 1
fi
echo "install: find_package shared, find_package static, pkg-config, rpath, man pages: ok"
