#!/bin/sh
# SPDX-License-Identifier: MIT
# The license: LICENSE is MIT, and every source file says so on its first
# line (its second, after a #! or <?php line): C, headers, CMake, shell,
# Python, PHP, the Makefile, YAML, man pages, systemd units, completion. Not the test
# corpora and fixtures, whose bytes are what they test, nor JSON (no
# comments) or the Debian files whose formats have no place for one.
#   usage: license_test.sh SOURCE_DIR
set -eu
src=$1
cd "$src"
head -1 LICENSE | grep -qx "MIT License" || { echo "license: LICENSE is not the MIT license"; exit 1; }
missing=$(find . -path ./build -prune -o -path ./.git -prune -o -path ./tests/fixtures -prune \
    -o -path ./tests/fuzz/corpus -prune -o -type f \( -name '*.c' -o -name '*.h' -o -name '*.cmake' \
    -o -name '*.in' -o -name CMakeLists.txt -o -name '*.sh' -o -name '*.py' -o -name '*.php' -o -name Makefile \
    -o -name '*.yaml' -o -name '.clang-format' -o -name '*.[1-8]' -o -name '*.service' \
    -o -name '*.timer' -o -name '*.bash' -o -path ./.ci/run \) -print | sort |
    while read -r f; do
        head -2 "$f" | grep -q "SPDX-License-Identifier: MIT" || echo "$f"
    done)
if [ -n "$missing" ]; then
    echo "license: no SPDX-License-Identifier: MIT line at the top of:"
    echo "$missing"
    exit 1
fi
echo "license: MIT, and every source file says so"
