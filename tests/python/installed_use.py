# SPDX-License-Identifier: MIT
"""What a user's program does with an installed cbshm: provision a segment
from YAML, call through a breaker until it trips, see CircuitOpenError,
destroy the segment. tests/python_package_test.sh runs it with a venv's
python after `pip install` and tests/package_test.sh with the .debs'
tree, each from a directory outside the repository, so that only the
installed package can be imported.

    usage: installed_use.py SEGMENT PACKAGE_DIR

PACKAGE_DIR is the directory cbshm must have been imported from."""

import importlib.metadata
import os
import sys

segment, package_dir = sys.argv[1], os.path.realpath(sys.argv[2])

import cbshm  # noqa: E402 (after the arguments: a wrong usage says so first)


def fail(message):
    sys.exit("installed_use: " + message)


found = os.path.realpath(os.path.dirname(cbshm.__file__))
if found != package_dir:
    fail("cbshm was imported from %s, not from %s" % (found, package_dir))
# One version: the package's metadata (pyproject.toml, or the .deb's
# dist-info) and the library it loaded (CMakeLists.txt's project()).
metadata_version = importlib.metadata.version("cbshm")
if metadata_version != cbshm.version():
    fail("package version %s, library version %s" % (metadata_version, cbshm.version()))

cbshm.apply(yaml="breakers:\n  - name: downstream\n    failure_threshold: 2\n"
                 "    open_timeout: 30s\n", segment=segment)
try:
    # fail_closed: a breaker that could not be opened raises, rather than
    # letting the calls below through unguarded and the test pass.
    breaker = cbshm.open_breaker(segment, "downstream", fail_closed=True,
                                 failure_exceptions=(ConnectionError,))
    calls = []

    def downstream(ok):
        calls.append(ok)
        if not ok:
            raise ConnectionRefusedError("downstream is down")
        return "answer"

    if breaker.call(downstream, True) != "answer":
        fail("a call through the closed breaker did not return its result")
    for _ in range(2):
        try:
            breaker.call(downstream, False)
            fail("the downstream's ConnectionRefusedError did not propagate")
        except ConnectionRefusedError:
            pass
    try:
        breaker.call(downstream, True)
        fail("the breaker did not trip after 2 failures")
    except cbshm.CircuitOpenError:
        pass
    if calls != [True, False, False]:
        fail("the downstream saw %r, not [True, False, False]" % calls)
    breaker.close()
finally:
    cbshm.destroy(segment)
print("installed_use: cbshm %s from %s, library %s: tripped after 2 failures"
      % (metadata_version, found, cbshm._native.library_path))
