#!/bin/sh
# SPDX-License-Identifier: MIT
# The four Debian packages of `make package`, checked the way Debian
# would check them. One step per ctest entry; `build` is their fixture.
#   usage: package_test.sh STEP BUILD_DIR SOURCE_DIR
#   build    `make package` into BUILD_DIR/package-test (its own /usr tree)
#   contents unpacked, each holds what it should where Debian wants it, with
#            the control files and relations it should; cbctl from there runs
#            against a real segment; `man` finds every page and function;
#            python3-cbshm's cbshm, with no CBSHM_LIBRARY, finds libcbshm1's
#            library by its soname and trips a breaker on a real segment
#   lintian  lintian reports no error and no warning
#   symbols  libcbshm1's symbols file lists exactly the functions the
#            packaged library exports (dpkg-gensymbols) and the header's
#            CBSHM_API declarations
set -eu
step=$1
build=$(cd "$2" && pwd) src=$(cd "$3" && pwd)
dir=$build/package-test
debs=$dir/debs
multiarch=$(gcc -print-multiarch)
libdir=usr/lib/$multiarch
fail() {
    echo "package: $*"
    exit 1
}

case $step in
build)
    rm -rf "$dir"
    mkdir -p "$dir"
    # The Makefile's own target: what a user runs, apt-get not included.
    if ! env -u MAKEFLAGS -u MAKELEVEL make -C "$src" package PACKAGE_BUILD="$dir/tree" \
        PACKAGES="$debs" >"$dir/log" 2>&1; then
        cat "$dir/log"
        fail "make package failed"
    fi
    ls "$debs"/*.deb
    ;;
contents)
    root=$dir/root
    seg=/cbshm-package-$$
    trap '"$root/usr/bin/cbctl" --segment $seg destroy >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
    rm -rf "$root"
    for p in libcbshm1 libcbshm-dev cbctl python3-cbshm; do
        deb=$(ls "$debs/${p}_"*.deb)
        [ "$(dpkg-deb -f "$deb" Package)" = "$p" ] || fail "$deb is not $p"
        dpkg -x "$deb" "$root"
        dpkg-deb -c "$deb" | awk '{print $6}' >"$dir/$p.files"
        for f in copyright changelog.Debian.gz; do
            grep -qx "\./usr/share/doc/$p/$f" "$dir/$p.files" || fail "$p has no /usr/share/doc/$p/$f"
        done
        # Man pages are compressed; nothing lands in the old /usr/lib.
        if grep -E '/usr/share/man/.*[0-9]$' "$dir/$p.files"; then fail "$p: uncompressed man page"; fi
        if grep -E '^\./usr/lib/[^/]+$' "$dir/$p.files"; then fail "$p: a file outside $libdir"; fi
    done
    lib=$debs/libcbshm1_*.deb dev=$debs/libcbshm-dev_*.deb tools=$debs/cbctl_*.deb
    dpkg-deb -f $lib Depends | grep -q libyaml || fail "libcbshm1 does not depend on libyaml"
    dpkg-deb -f $tools Depends | grep -q libjansson || fail "cbctl does not depend on libjansson"
    # dpkg-shlibdeps: cbctl depends on the package of every library it
    # links; with the fleet's commands, hiredis's (Debian 12: libhiredis0.14).
    for needed in $(readelf -d "$root/usr/bin/cbctl" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
        owners=
        for dir_ in /usr/lib/$multiarch /lib/$multiarch /lib64; do
            [ -n "$owners" ] || owners=$(dpkg -S "$dir_/$needed" 2>/dev/null | sed 's/: .*//; s/:[a-z0-9]*//g; s/,/ /g')
        done
        [ -n "$owners" ] || fail "cbctl links $needed, which no installed package holds"
        found=
        for owner in $owners; do
            if dpkg-deb -f $tools Depends | tr ',' '\n' | grep -Eq "^ *$owner( |$)"; then found=$owner; fi
        done
        [ -n "$found" ] || fail "cbctl links $needed ($owners) but does not depend on it: $(dpkg-deb -f $tools Depends)"
    done
    if "$root/usr/bin/cbctl" fleet --help >/dev/null 2>&1; then
        dpkg-deb -f $tools Depends | grep -q "libhiredis" ||
            fail "cbctl has the fleet's commands but does not depend on libhiredis"
    fi
    dpkg-deb -f $dev Depends | grep -q "libcbshm1 (= $(dpkg-deb -f $lib Version))" ||
        fail "libcbshm-dev does not depend on this libcbshm1"
    [ "$(dpkg-deb -f $dev Recommends)" = pkg-config ] || fail "libcbshm-dev does not recommend pkg-config"
    [ "$(dpkg-deb -f $tools Recommends)" = bash-completion ] || fail "cbctl does not recommend bash-completion"
    ctl=$dir/control
    rm -rf "$ctl"
    dpkg-deb -e $lib "$ctl"
    grep -qx "libcbshm 1 libcbshm1 (>= .*)" "$ctl/shlibs" || fail "libcbshm1: no shlibs for libcbshm.so.1"
    grep -qx "activate-noawait ldconfig" "$ctl/triggers" || fail "libcbshm1: no ldconfig trigger"
    cmp -s "$ctl/symbols" "$src/packaging/libcbshm1.symbols" || fail "libcbshm1: not our symbols file"
    [ ! -e "$ctl/postinst" ] && [ ! -e "$ctl/postrm" ] || fail "libcbshm1: a maintainer script (the trigger does ldconfig)"
    for f in usr/include/cbshm.h $libdir/libcbshm.a $libdir/libcbshm.so $libdir/pkgconfig/cbshm.pc \
        $libdir/cmake/cbshm/cbshmConfig.cmake usr/bin/cbctl usr/share/man/man1/cbctl.1.gz \
        usr/share/man/man5/cbshm.yaml.5.gz usr/share/man/man3/libcbshm.3.gz \
        usr/share/man/man3/cbshm_open.3.gz usr/share/bash-completion/completions/cbctl \
        usr/share/doc/libcbshm-dev/README.md.gz usr/share/doc/libcbshm-dev/examples/hello.c \
        usr/share/doc/libcbshm-dev/examples/python/app.py usr/share/doc/libcbshm-dev/examples/uwsgi/uwsgi.ini \
        usr/share/doc/libcbshm-dev/examples/systemd/cbshm-apply.service \
        usr/share/doc/libcbshm-dev/examples/systemd/cbshm-agent.service \
        usr/share/doc/libcbshm-dev/examples/fleet/README.md \
        usr/share/doc/libcbshm-dev/examples/fleet/stunnel-client.conf \
        usr/share/doc/libcbshm-dev/examples/fleet/spiped.service; do
        [ -e "$root/$f" ] || fail "missing /$f"
    done
    for f in "$root"/usr/bin/cbctl "$root/$libdir"/libcbshm.so.1.*; do
        file -L "$f" | grep -q ", stripped" || fail "$f is not stripped"
        if readelf -S "$f" | grep -q '\.comment'; then fail "$f keeps its .comment section"; fi
    done
    if objdump -h "$root/$libdir/libcbshm.a" | grep -q '\.debug_'; then fail "libcbshm.a keeps debug sections"; fi
    [ "$(readlink "$root/$libdir/libcbshm.so.1")" = "libcbshm.so.$(dpkg-deb -f $lib Version | cut -d- -f1)" ] ||
        fail "no libcbshm.so.1 link to the library"
    # Every function's name finds libcbshm(3), which names it; and
    # cbshm.yaml(5) is found.
    export MANPATH="$root/usr/share/man"
    man -w 5 cbshm.yaml >/dev/null || fail "man 5 cbshm.yaml finds nothing"
    for fn in $(sed -n 's/^ \(cbshm_[a-z0-9_]*\)@Base .*/\1/p' "$src/packaging/libcbshm1.symbols"); do
        page=$(man -w 3 "$fn" 2>/dev/null) || fail "man 3 $fn finds nothing"
        [ "$(basename "$(readlink -f "$page")")" = libcbshm.3.gz ] || fail "man 3 $fn: $page, not libcbshm(3)"
        grep -q "$fn(" "$src/man/libcbshm.3" || fail "libcbshm(3) does not name $fn"
    done
    # The packaged pkg-config file builds a program that runs.
    cc -o "$dir/consumer" "$src/tests/consumer/consumer.c" \
        $(PKG_CONFIG_PATH="$root/$libdir/pkgconfig" pkg-config --cflags --libs cbshm)
    LD_LIBRARY_PATH="$root/$libdir" "$dir/consumer" >/dev/null

    # python3-cbshm: pure Python, for every architecture, on this libcbshm1;
    # no bytecode (postinst compiles it, prerm removes it: dh_python3's way).
    py=$debs/python3-cbshm_*.deb
    [ "$(dpkg-deb -f $py Architecture)" = all ] || fail "python3-cbshm is not Architecture: all"
    dpkg-deb -f $py Depends | grep -q "libcbshm1 (= $(dpkg-deb -f $lib Version))" ||
        fail "python3-cbshm does not depend on this libcbshm1"
    dpkg-deb -f $py Depends | grep -Eq '(^|, )python3( |,|$)' || fail "python3-cbshm does not depend on python3"
    if grep -E '(__pycache__|\.pyc)' "$dir/python3-cbshm.files"; then fail "python3-cbshm ships bytecode"; fi
    rm -rf "$ctl"
    dpkg-deb -e $py "$ctl"
    grep -qx "    py3compile -p python3-cbshm" "$ctl/postinst" || fail "python3-cbshm: postinst does not py3compile"
    grep -qx "    py3clean -p python3-cbshm" "$ctl/prerm" || fail "python3-cbshm: prerm does not py3clean"
    dist=usr/lib/python3/dist-packages
    version=$(dpkg-deb -f $lib Version | cut -d- -f1)
    # Every module of the source, the py.typed marker, the metadata.
    for f in $(cd "$src/bindings/python/cbshm" && ls -- *.py) py.typed; do
        [ -e "$root/$dist/cbshm/$f" ] || fail "missing /$dist/cbshm/$f"
    done
    [ -e "$root/$dist/cbshm-$version.dist-info/METADATA" ] ||
        fail "missing /$dist/cbshm-$version.dist-info/METADATA"
    # As a program uses it: from a directory outside the repository, with
    # no CBSHM_LIBRARY, the library found by its soname (LD_LIBRARY_PATH
    # stands for ld.so.cache, as for the consumer above).
    elsewhere=$(mktemp -d)
    cp "$src/tests/python/installed_use.py" "$elsewhere/"
    (cd "$elsewhere" && env -i PATH=/usr/bin:/bin PYTHONPATH="$root/$dist" PYTHONDONTWRITEBYTECODE=1 \
        LD_LIBRARY_PATH="$root/$libdir" /usr/bin/python3 installed_use.py "$seg-py" "$root/$dist/cbshm") ||
        { rm -rf "$elsewhere"; fail "python3-cbshm's cbshm does not work (above)"; }
    rm -rf "$elsewhere"
    "$root/usr/bin/cbctl" --version
    "$root/usr/bin/cbctl" --segment $seg apply -f "$src/config/example.yaml" >/dev/null
    "$root/usr/bin/cbctl" --segment $seg check >/dev/null
    echo "package: libcbshm1, libcbshm-dev, cbctl, python3-cbshm: contents ok"
    ;;
lintian)
    # Every tag shown; errors and warnings fail (the packages override the
    # one warning that only an upload to Debian could clear).
    lintian --info --display-level '>=info' --fail-on error,warning "$debs"/*.deb ||
        fail "lintian: errors or warnings above"
    echo "package: lintian: no errors, no warnings"
    ;;
symbols)
    root=$dir/symroot
    rm -rf "$root"
    dpkg -x "$debs"/libcbshm1_*.deb "$root"
    so=$(ls "$root/$libdir"/libcbshm.so.1.*)
    version=$(dpkg-deb -f "$debs"/libcbshm1_*.deb Version)
    # Debian's own check, as a package build runs it: -c4 fails on any
    # symbol the file lacks or the library lost.
    (cd "$root" && dpkg-gensymbols -plibcbshm1 -v"$version" \
        -P"$root" -e"$so" -I"$src/packaging/libcbshm1.symbols" -O"$dir/symbols.out" -c4) ||
        fail "libcbshm1.symbols and the library's exports differ (diff above): run scripts/symbols.sh"
    listed=$(sed -n 's/^ \(cbshm_[a-z0-9_]*\)@Base .*/\1/p' "$src/packaging/libcbshm1.symbols" | sort)
    exported=$(nm -D --defined-only "$so" | awk '{print $3}' | sort)
    declared=$(sed -n 's/^CBSHM_API[^(]*[ *]\(cbshm_[a-z0-9_]*\)(.*/\1/p' "$src/libcbshm/include/cbshm.h" | sort -u)
    if [ "$listed" != "$exported" ]; then
        echo "$listed" >"$dir/listed"
        echo "$exported" >"$dir/exported"
        diff "$dir/listed" "$dir/exported" || true
        fail "the symbols file (<) and nm -D (>) differ"
    fi
    [ "$listed" = "$declared" ] || fail "symbols file and cbshm.h's CBSHM_API differ: run scripts/symbols.sh"
    echo "package: libcbshm1.symbols: $(echo "$listed" | wc -l) functions, as exported and declared"
    ;;
*)
    echo "usage: package_test.sh build|contents|lintian|symbols BUILD_DIR SOURCE_DIR" >&2
    exit 2
    ;;
esac
