# SPDX-License-Identifier: Apache-2.0
# CPack pre-build script: refuse to package a tree configured for another prefix than /usr. Its
# absolute destinations (/usr/local/etc/waitwatch/...) would land in the package as they are.
file(GLOB_RECURSE misplaced LIST_DIRECTORIES false RELATIVE "${CPACK_TEMPORARY_INSTALL_DIRECTORY}"
     "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/usr/local/*")
if(misplaced)
  list(GET misplaced 0 first)
  message(FATAL_ERROR "waitwatch package: /${first} is under /usr/local: configure the build "
                      "with -DCMAKE_INSTALL_PREFIX=/usr (or use packaging/build-deb)")
endif()
