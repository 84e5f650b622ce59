# SPDX-License-Identifier: MIT
# The configuration `make package` builds the Debian packages with
# (cmake -C cmake/package-cache.cmake): prefix /usr, so GNUInstallDirs puts
# the library in the multiarch directory (lib/x86_64-linux-gnu); the
# hardening flags of Debian's dpkg-buildflags (hardening=+all); no tests,
# examples or benchmarks; and the Debian packaging of cmake/debian.cmake.
set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "")
set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "")
set(CMAKE_C_FLAGS "-fstack-protector-strong -Wformat -Werror=format-security -D_FORTIFY_SOURCE=2"
  CACHE STRING "")
set(CMAKE_EXE_LINKER_FLAGS "-Wl,-z,relro -Wl,-z,now" CACHE STRING "")
set(CMAKE_SHARED_LINKER_FLAGS "-Wl,-z,relro -Wl,-z,now" CACHE STRING "")
set(CBSHM_BUILD_TESTS OFF CACHE BOOL "")
set(CBSHM_BUILD_EXAMPLES OFF CACHE BOOL "")
set(CBSHM_BUILD_BENCH OFF CACHE BOOL "")
set(CBSHM_PACKAGE ON CACHE BOOL "")
