# SPDX-License-Identifier: MIT
# The man pages, installed compressed (gzip -9n: no name or time stamp in
# the file, so two builds give the same bytes), and a link to libcbshm(3)
# for every public function, so `man cbshm_open` finds the page. The
# functions are those of packaging/libcbshm1.symbols, which the package
# test holds to the header and to the library's exported symbols.
find_program(CBSHM_GZIP gzip REQUIRED)
set(CBSHM_MAN_DIR ${PROJECT_BINARY_DIR}/man)
file(MAKE_DIRECTORY ${CBSHM_MAN_DIR}/links)

# Compresses man/<page> into the build tree when the page changes.
function(cbshm_man page section component)
  set(gz ${CBSHM_MAN_DIR}/${page}.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CBSHM_GZIP} -9nc ${PROJECT_SOURCE_DIR}/man/${page} > ${gz}
    DEPENDS ${PROJECT_SOURCE_DIR}/man/${page}
    COMMENT "Compressing man/${page}")
  add_custom_target(man_${page} ALL DEPENDS ${gz})
  install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section} COMPONENT ${component})
endfunction()

cbshm_man(cbctl.1 1 tools)
cbshm_man(cbshm.yaml.5 5 tools)
cbshm_man(libcbshm.3 3 dev)

file(STRINGS ${PROJECT_SOURCE_DIR}/packaging/libcbshm1.symbols symbol_lines REGEX "^ cbshm_")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/packaging/libcbshm1.symbols)
set(links)
foreach(line IN LISTS symbol_lines)
  string(REGEX MATCH "cbshm_[a-z0-9_]+" fn "${line}")
  file(CREATE_LINK libcbshm.3.gz ${CBSHM_MAN_DIR}/links/${fn}.3.gz SYMBOLIC)
  list(APPEND links ${CBSHM_MAN_DIR}/links/${fn}.3.gz)
endforeach()
install(FILES ${links} DESTINATION ${CMAKE_INSTALL_MANDIR}/man3 COMPONENT dev)
