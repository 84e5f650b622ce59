# SPDX-License-Identifier: MIT
# Run by the package tree's build (cmake -P; cmake/debian.cmake): builds
# the Python binding's wheel from a copy of bindings/python with
# setuptools' PEP 517 backend - what `pip install` runs - and unpacks it
# into TREE, the files python3-cbshm installs into dist-packages: cbshm/
# and its dist-info, the same as pip's, from the one pyproject.toml.
# The copy keeps setuptools' build/ and cbshm.egg-info out of the source.
#   cmake -DPYTHON=... -DSOURCE=bindings/python -DWORK=dir -DTREE=dir -P python-wheel.cmake
foreach(var PYTHON SOURCE WORK TREE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "python-wheel.cmake: -D${var}= is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK} ${TREE})
file(COPY ${SOURCE}/ DESTINATION ${WORK}/source
  PATTERN __pycache__ EXCLUDE PATTERN build EXCLUDE PATTERN *.egg-info EXCLUDE)
# Quiet unless it fails: setuptools reports every file it copies.
execute_process(
  COMMAND ${PYTHON} -c "import sys, setuptools.build_meta as backend; print(backend.build_wheel(sys.argv[1]))"
    ${WORK}/wheel
  WORKING_DIRECTORY ${WORK}/source
  OUTPUT_VARIABLE out ERROR_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the Python wheel failed (python3-setuptools and python3-wheel "
    "are needed: make deps):\n${out}")
endif()
file(GLOB wheel ${WORK}/wheel/*.whl)
list(LENGTH wheel count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "python-wheel.cmake: ${count} wheels in ${WORK}/wheel, not one")
endif()
file(ARCHIVE_EXTRACT INPUT ${wheel} DESTINATION ${TREE})
