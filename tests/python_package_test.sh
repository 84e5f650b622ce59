#!/bin/sh
# SPDX-License-Identifier: MIT
# The Python binding as Python users install it (bindings/python). One step
# per ctest entry:
#   usage: python_package_test.sh STEP SOURCE_DIR LIBRARY
#   version  pyproject.toml's version is the project's (CMakeLists.txt)
#   venv     `pip install` into a fresh venv, offline, both with
#            --no-build-isolation and with an isolated build from Debian's
#            wheels; then tests/python/installed_use.py, run by the venv's
#            python from outside the repository, uses the installed package
#   nolib    with no CBSHM_LIBRARY and no installed library, `import cbshm`
#            fails and says what it tried and what to install, even beside
#            a build tree that holds the library; a CBSHM_LIBRARY that does
#            not load is an error naming it, with no fallback. Skipped (77)
#            where a libcbshm.so.1 is installed.
# LIBRARY is the build's libcbshm.so.1. Debian's interpreter, not one on
# PATH: the venv and the offline wheels are Debian's (python3-venv,
# python3-wheel-whl).
set -eu
step=$1
src=$(cd "$2" && pwd) lib=$3
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
    echo "python package: $*"
    exit 1
}
# pip as a fresh machine runs it: no configuration file or PIP_* variable
# of this one (an index, find-links) decides where packages come from.
pip_env() {
    env -i PATH=/usr/bin:/bin HOME="$work" PIP_CONFIG_FILE=/dev/null \
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$@"
}

case $step in
version)
    project=$(sed -n 's/^project(cbshm VERSION \([0-9.]*\) .*/\1/p' "$src/CMakeLists.txt")
    package=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$src/bindings/python/pyproject.toml")
    [ -n "$project" ] || fail "no project(cbshm VERSION ...) in CMakeLists.txt"
    [ "$package" = "$project" ] ||
        fail "bindings/python/pyproject.toml says version \"$package\", CMakeLists.txt $project: make them one"
    echo "python package: version $package, as the project's"
    ;;
venv)
    # The build writes build/ and cbshm.egg-info beside pyproject.toml, so
    # it builds a copy; the source tree is checked to be left as it was.
    find "$src/bindings/python" | sort >"$work/before"
    cp -R "$src/bindings/python" "$work/source"
    find "$work/source" -name __pycache__ -prune -exec rm -rf {} +
    # No --system-site-packages: the venv holds only pip and setuptools
    # (Debian's python3-pip-whl and python3-setuptools-whl, by ensurepip),
    # so nothing from the system - a python3-cbshm among them - can be
    # what the script imports.
    pip_env $python -m venv "$work/venv"
    venv=$work/venv/bin
    # setuptools 66 builds wheels with the wheel package (python3-wheel-whl).
    pip_env "$venv/pip" install -q --no-index --find-links /usr/share/python-wheels wheel
    pip_env "$venv/pip" install -q --no-build-isolation --no-index "$work/source" ||
        fail "pip install --no-build-isolation --no-index failed"
    site=$("$venv/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    # Every module of the source, and the py.typed marker type checkers look for.
    for f in $(cd "$src/bindings/python/cbshm" && ls -- *.py) py.typed; do
        [ -f "$site/cbshm/$f" ] || fail "the venv has no cbshm/$f"
    done
    mkdir "$work/elsewhere"
    cp "$src/tests/python/installed_use.py" "$work/elsewhere/"
    (cd "$work/elsewhere" && env -i PATH=/usr/bin:/bin CBSHM_LIBRARY="$lib" \
        "$venv/python" -I installed_use.py "/cbshm-pip-$$" "$site/cbshm") ||
        fail "the installed package does not work (above)"

    # A plain `pip install` builds in an isolated environment and fetches
    # setuptools and wheel for it from an index; offline they come from
    # Debian's wheels (python3-setuptools-whl, python3-wheel-whl).
    rm -rf "$work/source" "$work/venv"
    cp -R "$src/bindings/python" "$work/source"
    pip_env $python -m venv "$work/venv"
    pip_env "$venv/pip" install -q --no-index --find-links /usr/share/python-wheels "$work/source" ||
        fail "pip install --no-index --find-links /usr/share/python-wheels failed"
    (cd "$work/elsewhere" && env -i PATH=/usr/bin:/bin CBSHM_LIBRARY="$lib" \
        "$venv/python" -I installed_use.py "/cbshm-pip-$$" "$site/cbshm") ||
        fail "the package built in isolation does not work (above)"

    find "$src/bindings/python" | sort >"$work/after"
    diff "$work/before" "$work/after" || fail "the install wrote into bindings/python (> above)"
    ;;
nolib)
    if env -i PATH=/usr/bin:/bin $python -c 'import ctypes; ctypes.CDLL("libcbshm.so.1")' 2>/dev/null; then
        echo "python package: skipped: a libcbshm.so.1 is installed on this machine"
        exit 77
    fi
    [ -f "$lib" ] || fail "no library at $lib"
    # The source tree's package, in the repository whose build tree holds
    # the library, imported from elsewhere with nothing in the environment.
    cd "$work"
    rc=0
    env -i PATH=/usr/bin:/bin PYTHONPATH="$src/bindings/python" PYTHONDONTWRITEBYTECODE=1 \
        $python -c 'import cbshm' >"$work/out" 2>&1 || rc=$?
    cat "$work/out"
    [ $rc = 1 ] || fail "import cbshm without a library exits $rc, not 1"
    for says in "ImportError: cbshm: cannot load libcbshm: tried libcbshm.so.1" \
        "Install the libcbshm1 package" "set CBSHM_LIBRARY to the path of libcbshm.so.1"; do
        grep -qF "$says" "$work/out" || fail "the error does not say \"$says\""
    done
    # An override is final: not loaded is an error, even with the library
    # on the loader's path.
    rc=0
    env -i PATH=/usr/bin:/bin PYTHONPATH="$src/bindings/python" PYTHONDONTWRITEBYTECODE=1 \
        LD_LIBRARY_PATH="$(dirname "$lib")" CBSHM_LIBRARY="$work/no-such-libcbshm.so.1" \
        $python -c 'import cbshm' >"$work/out" 2>&1 || rc=$?
    cat "$work/out"
    [ $rc = 1 ] || fail "import cbshm with a CBSHM_LIBRARY that does not load exits $rc, not 1"
    grep -qF "ImportError: cbshm: cannot load CBSHM_LIBRARY=$work/no-such-libcbshm.so.1: " "$work/out" ||
        fail "the error does not name CBSHM_LIBRARY's path"
    grep -q "cannot open shared object file" "$work/out" || fail "the error does not say why"
    # And the installed soname is found by the loader's search path.
    env -i PATH=/usr/bin:/bin PYTHONPATH="$src/bindings/python" PYTHONDONTWRITEBYTECODE=1 \
        LD_LIBRARY_PATH="$(dirname "$lib")" $python -c 'import cbshm; print(cbshm.version())' ||
        fail "import cbshm does not find libcbshm.so.1 on LD_LIBRARY_PATH"
    echo "python package: without a library the import says what to install; CBSHM_LIBRARY is final"
    ;;
*)
    echo "usage: python_package_test.sh version|venv|nolib SOURCE_DIR LIBRARY" >&2
    exit 2
    ;;
esac
