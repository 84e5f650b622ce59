# SPDX-License-Identifier: MIT
# `make package`: one Debian package per install component - libcbshm1
# (lib), libcbshm-dev (dev), cbctl (tools) and python3-cbshm (python) -
# that lintian accepts.
# Included only in a tree configured by cmake/package-cache.cmake.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "CBSHM_PACKAGE: the packages install into /usr, not ${CMAKE_INSTALL_PREFIX}; "
    "configure with -C cmake/package-cache.cmake, as `make package` does")
endif()

# The package version is the changelog's: its upstream part must be the
# project's, so a release bumps both or the packages are not built.
set(changelog ${PROJECT_SOURCE_DIR}/packaging/changelog)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${changelog}
  ${PROJECT_SOURCE_DIR}/packaging/libcbshm1.symbols ${PROJECT_SOURCE_DIR}/README.md)
file(STRINGS ${changelog} top LIMIT_COUNT 1)
if(NOT top MATCHES "^libcbshm \\(([^)-]+)-([^)]+)\\) ")
  message(FATAL_ERROR "packaging/changelog: the first line is not 'libcbshm (VERSION-REVISION) ...'")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "packaging/changelog: the latest entry is ${CMAKE_MATCH_1}, the project "
    "is ${PROJECT_VERSION}: add an entry for ${PROJECT_VERSION}-1")
endif()
set(CPACK_DEBIAN_PACKAGE_RELEASE ${CMAKE_MATCH_2})
# So is the Python package's (pyproject.toml), which python3-cbshm is.
set(pyproject ${PROJECT_SOURCE_DIR}/bindings/python/pyproject.toml)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${pyproject})
file(STRINGS ${pyproject} py_version REGEX "^version = ")
if(NOT py_version STREQUAL "version = \"${PROJECT_VERSION}\"")
  message(FATAL_ERROR "bindings/python/pyproject.toml: '${py_version}', the project "
    "is ${PROJECT_VERSION}: make them one")
endif()

# What Debian policy wants compressed, with gzip -9n (reproducible bytes).
set(deb_dir ${PROJECT_BINARY_DIR}/debian)
file(MAKE_DIRECTORY ${deb_dir}/lib)
function(cbshm_deb_gzip src dst)
  execute_process(COMMAND ${CBSHM_GZIP} -9nc ${src} OUTPUT_FILE ${dst} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "gzip ${src}: ${rc}")
  endif()
endfunction()
cbshm_deb_gzip(${changelog} ${deb_dir}/changelog.Debian.gz)
cbshm_deb_gzip(${PROJECT_SOURCE_DIR}/README.md ${deb_dir}/README.md.gz)

# Every package: /usr/share/doc/<package>/copyright and changelog.Debian.gz,
# and its lintian overrides: these packages are not uploaded to Debian, so
# there is no ITP bug for the first changelog entry to close.
foreach(pair lib:libcbshm1 dev:libcbshm-dev tools:cbctl python:python3-cbshm)
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 component)
  list(GET pair 1 package)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright ${deb_dir}/changelog.Debian.gz
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package} COMPONENT ${component})
  file(WRITE ${deb_dir}/${package}.overrides
    "# Not for the Debian archive: no ITP bug to close.\n"
    "${package}: initial-upload-closes-no-bugs\n")
  install(FILES ${deb_dir}/${package}.overrides DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides
    RENAME ${package} COMPONENT ${component})
endforeach()
# The README and the examples go with the -dev package: the examples are
# programs to build against its header (the C ones) and its library (the
# gunicorn app, through the Python binding), and the README is the
# library's manual. Their CMakeLists.txt builds them in this tree only.
install(FILES ${deb_dir}/README.md.gz DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/libcbshm-dev
  COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/libcbshm-dev/examples COMPONENT dev
  PATTERN CMakeLists.txt EXCLUDE)

# libcbshm1's control files: the symbols file (what dpkg-shlibdeps makes
# a program depend on, function by function) and the ldconfig trigger.
configure_file(${PROJECT_SOURCE_DIR}/packaging/libcbshm1.symbols ${deb_dir}/lib/symbols COPYONLY)
file(WRITE ${deb_dir}/lib/triggers "activate-noawait ldconfig\n")
# python3-cbshm's maintainer scripts, by the names the control archive wants.
foreach(script postinst prerm)
  configure_file(${PROJECT_SOURCE_DIR}/packaging/python3-cbshm.${script} ${deb_dir}/python-control/${script}
    COPYONLY)
endforeach()

# python3-cbshm: the files `pip install ./bindings/python` installs - the
# wheel setuptools builds from pyproject.toml, unpacked (cmake/python-
# wheel.cmake) - in the directory every python3 of Debian searches.
# Debian's interpreter builds it, as it is the one that runs it.
find_program(CBSHM_DEB_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH REQUIRED)
file(GLOB_RECURSE py_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bindings/python/cbshm/*.py
  ${PROJECT_SOURCE_DIR}/bindings/python/cbshm/py.typed)
add_custom_command(OUTPUT ${deb_dir}/python/built
  COMMAND ${CMAKE_COMMAND} -DPYTHON=${CBSHM_DEB_PYTHON3} -DSOURCE=${PROJECT_SOURCE_DIR}/bindings/python
    -DWORK=${deb_dir}/python/work -DTREE=${deb_dir}/python/tree
    -P ${PROJECT_SOURCE_DIR}/cmake/python-wheel.cmake
  COMMAND ${CMAKE_COMMAND} -E touch ${deb_dir}/python/built
  DEPENDS ${pyproject} ${py_sources} ${PROJECT_SOURCE_DIR}/cmake/python-wheel.cmake
  COMMENT "Building the Python wheel for python3-cbshm")
add_custom_target(python_wheel ALL DEPENDS ${deb_dir}/python/built)
install(DIRECTORY ${deb_dir}/python/tree/ DESTINATION lib/python3/dist-packages COMPONENT python)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libcbshm)
set(CPACK_PACKAGE_VENDOR "the libcbshm authors")
set(CPACK_PACKAGE_CONTACT "libcbshm authors <libcbshm@example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SOURCE libcbshm)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Only libcbshm1 has a shared object, so only it gets a shlibs file.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_POST_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/cmake/deb-post-build.cmake)
set(CPACK_COMPONENTS_ALL lib dev tools python)

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libcbshm1)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA "${deb_dir}/lib/symbols;${deb_dir}/lib/triggers")
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_LIB_DESCRIPTION "host-wide circuit breakers in POSIX shared memory
libcbshm keeps one table of circuit breakers per host in a POSIX
shared-memory segment, so that every worker of a prefork server sees a
breaker trip the moment any of them trips it, and a downstream that is
down is probed by one process, not by every worker in turn. Admitting a
call and recording a success on a closed breaker take a few atomic
operations: no lock, no system call. A process that dies holding the
table's lock is repaired after.

This package contains the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcbshm-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libcbshm1 (= ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}), libyaml-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS pkg-config)
set(CPACK_COMPONENT_DEV_DESCRIPTION "host-wide circuit breakers in POSIX shared memory - development files
libcbshm keeps one table of circuit breakers per host in a POSIX
shared-memory segment, so that every worker of a prefork server sees a
breaker trip the moment any of them trips it.

This package contains the header, the static library, the pkg-config
and CMake package files, the manual page libcbshm(3) with a link for
each function, the README and the examples.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME cbctl)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_TOOLS_PACKAGE_RECOMMENDS bash-completion)
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "inspect and steer the circuit breakers of a libcbshm segment
cbctl creates a libcbshm segment of circuit breakers from YAML (see
cbshm.yaml(5)) and keeps it in line with the file; lists, shows and
watches the breakers; forces them open or closed and resets them; prints
Prometheus metrics and the event log; and checks a segment's integrity.

This package contains cbctl, its manual pages and its bash completion.")

# Pure Python, so one package for every architecture; but ctypes loads
# libcbshm.so.1 into the interpreter, so both are of the machine's own
# architecture: python3, not python3:any. The maintainer scripts are
# dh_python3's: Debian ships no bytecode (lintian: package-installs-python-
# bytecode); postinst compiles it for the installed interpreters and
# prerm removes it, so no __pycache__ that dpkg does not know of is left
# behind in dist-packages when the package goes.
set(CPACK_DEBIAN_PYTHON_PACKAGE_NAME python3-cbshm)
set(CPACK_DEBIAN_PYTHON_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_PYTHON_PACKAGE_SECTION python)
set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS
  "python3 (>= 3.9~), libcbshm1 (= ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})")
set(CPACK_DEBIAN_PYTHON_PACKAGE_CONTROL_EXTRA "${deb_dir}/python-control/postinst;${deb_dir}/python-control/prerm")
set(CPACK_DEBIAN_PYTHON_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_PYTHON_DESCRIPTION "host-wide circuit breakers in POSIX shared memory - Python 3 binding
libcbshm keeps one table of circuit breakers per host in a POSIX
shared-memory segment, so that every worker of a prefork server
(gunicorn, uWSGI) sees a breaker trip the moment any of them trips it.

This package contains the Python 3 module cbshm, a ctypes binding of
libcbshm1: breakers as decorators, context managers and wrapped calls.")
include(CPack)
