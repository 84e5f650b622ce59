# Run by cpack after it built the packages (CPACK_POST_BUILD_SCRIPTS).
# CPack 3.25 writes `ldconfig` into libcbshm1's postinst and postrm by
# itself, beside the ldconfig trigger (packaging: triggers) that Debian
# asks for instead (lintian: maintscript-calls-ldconfig). The scripts do
# nothing else, so the package is rebuilt without them.
foreach(deb IN LISTS CPACK_PACKAGE_FILES)
  get_filename_component(name ${deb} NAME)
  if(NOT name MATCHES "^libcbshm1_")
    continue()
  endif()
  set(tree ${deb}.tree)
  file(REMOVE_RECURSE ${tree})
  execute_process(COMMAND dpkg-deb -R ${deb} ${tree} COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE ${tree}/DEBIAN/postinst ${tree}/DEBIAN/postrm)
  execute_process(COMMAND dpkg-deb --root-owner-group -Zgzip -b ${tree} ${deb}
    OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
  file(REMOVE_RECURSE ${tree})
endforeach()
