#!/bin/sh
# SPDX-License-Identifier: MIT
# The ABI of libcbshm1 against the last release: the library the latest
# tag v* builds, beside the one this tree built, compared by abidiff
# (Debian's abigail-tools) with both trees' public headers. Under one
# soname nothing may be removed or changed incompatibly (abidiff's
# "incompatible" bit, and no type that changed size); additions and
# reserved fields put to use are fine and listed. Before the first
# release tag there is nothing to compare: skipped, saying so.
#   usage: abi_test.sh SOURCE_DIR LIBRARY
set -u
src=$1 lib=$2
skip=77

tag=$(git -C "$src" describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null) || {
    echo "abi: no release tag (v*) yet: nothing to compare against"
    exit $skip
}
if ! command -v abidiff >/dev/null; then
    echo "abi: abidiff not found: make deps installs abigail-tools"
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git -C "$src" archive "$tag" | tar -x -C "$work/src" || exit 1
if ! cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/log" 2>&1 ||
    ! cmake --build "$work/build" --target cbshm -j2 >>"$work/log" 2>&1; then
    tail -20 "$work/log"
    echo "abi: could not build $tag"
    exit 1
fi
old=$(ls "$work"/build/libcbshm/libcbshm.so.*.*.* | head -1)
old_soname=$(objdump -p "$old" | sed -n 's/ *SONAME *//p')
new_soname=$(objdump -p "$lib" | sed -n 's/ *SONAME *//p')
abidiff --headers-dir1 "$work/src/libcbshm/include" --headers-dir2 "$src/libcbshm/include" \
    "$old" "$lib" >"$work/diff"
rc=$?
# abidiff's exit status is a bit set: 1 error, 2 usage, 4 ABI change, 8 incompatible.
if [ $((rc & 3)) -ne 0 ]; then
    cat "$work/diff"
    echo "abi: abidiff failed ($rc)"
    exit 1
fi
# abidiff calls a struct reached through a pointer that grew a "change",
# not "incompatible", but a caller that allocates it is broken all the
# same. Allowed under one soname: new functions, and a reserved field put
# to use (same size, only the reserved array moves). Refused: anything
# removed, a type whose size changed, any other member that moved.
breaks=$(awk '
    /changes summary: [1-9][0-9]* Removed/ { print; next }
    /underlying type|data member (insertion|change|deletion)/ { member = ""; next }
    /type of .* changed:/ { member = $0; next }
    /type size changed/ && member !~ /reserved/ { print; next }
    /offset changed/ && $0 !~ /reserved/ && member !~ /reserved/ { print }
    /offset changed/ { member = "" }
' "$work/diff")
if { [ $((rc & 8)) -ne 0 ] || [ -n "$breaks" ]; } && [ "$old_soname" = "$new_soname" ]; then
    cat "$work/diff"
    echo "abi: incompatible change against $tag under the same soname $new_soname: bump the soname"
    echo "$breaks"
    exit 1
fi
[ $((rc & 4)) -ne 0 ] && sed -n '1,40p' "$work/diff"
echo "abi: $tag ($old_soname) -> this tree ($new_soname): compatible"
exit 0
