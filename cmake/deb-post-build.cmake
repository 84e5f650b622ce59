# SPDX-License-Identifier: MIT
# Run by cpack after it built the packages (CPACK_POST_BUILD_SCRIPTS): the
# two things debhelper does that CPack 3.25 does not. Each package is
# unpacked, fixed and built again.
# - Strip as dh_strip does: CPack's strip leaves the .comment section in
#   binaries and does not touch the static library, whose debug sections
#   are most of its size (lintian: binary-has-unneeded-section,
#   unstripped-static-library).
# - CPack writes `ldconfig` into libcbshm1's postinst and postrm by itself,
#   beside the ldconfig trigger (packaging: triggers) that Debian asks for
#   instead (lintian: maintscript-calls-ldconfig); they do nothing else, so
#   they go.
find_program(DPKG_DEB dpkg-deb REQUIRED)
find_program(STRIP strip REQUIRED)
find_program(FILE_CMD file REQUIRED)
foreach(deb IN LISTS CPACK_PACKAGE_FILES)
  set(tree ${deb}.tree)
  file(REMOVE_RECURSE ${tree})
  execute_process(COMMAND ${DPKG_DEB} -R ${deb} ${tree} COMMAND_ERROR_IS_FATAL ANY)
  file(GLOB_RECURSE files LIST_DIRECTORIES true RELATIVE ${tree} ${tree}/*)
  list(FILTER files EXCLUDE REGEX "^DEBIAN(/|$)")
  list(SORT files)
  # Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up,
  # and one for each directory and link.
  set(md5sums "")
  set(kib 0)
  foreach(f IN LISTS files)
    if(IS_SYMLINK ${tree}/${f} OR IS_DIRECTORY ${tree}/${f})
      math(EXPR kib "${kib} + 1")
      continue()
    endif()
    execute_process(COMMAND ${FILE_CMD} -b ${tree}/${f} OUTPUT_VARIABLE type)
    if(type MATCHES "^current ar archive")
      execute_process(COMMAND ${STRIP} --strip-debug --remove-section=.comment
        --remove-section=.note --enable-deterministic-archives ${tree}/${f} COMMAND_ERROR_IS_FATAL ANY)
    elseif(type MATCHES "^ELF .*(executable|shared object)")
      execute_process(COMMAND ${STRIP} --remove-section=.comment --remove-section=.note
        --strip-unneeded ${tree}/${f} COMMAND_ERROR_IS_FATAL ANY)
    endif()
    file(MD5 ${tree}/${f} sum)
    string(APPEND md5sums "${sum}  ${f}\n")
    file(SIZE ${tree}/${f} size)
    math(EXPR kib "${kib} + (${size} + 1023) / 1024")
  endforeach()
  file(WRITE ${tree}/DEBIAN/md5sums "${md5sums}")
  file(READ ${tree}/DEBIAN/control control)
  string(REGEX REPLACE "Installed-Size: [0-9]+" "Installed-Size: ${kib}" control "${control}")
  file(WRITE ${tree}/DEBIAN/control "${control}")
  get_filename_component(name ${deb} NAME)
  if(name MATCHES "^libcbshm1_")
    file(REMOVE ${tree}/DEBIAN/postinst ${tree}/DEBIAN/postrm)
  endif()
  execute_process(COMMAND ${DPKG_DEB} --root-owner-group -Zgzip -b ${tree} ${deb}
    OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE ${tree})
endforeach()
