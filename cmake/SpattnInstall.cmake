# Install rules and the CMake package `spattn` (included by the top-level CMakeLists.txt after
# every target is defined). `cmake --install <build> --prefix <p>` gives
#   <p>/include/spattn/...                    public headers
#   <p>/lib/libspattn_patterns.a              spattn::patterns
#   <p>/lib/libspattn_attention.a             spattn::attention
#   <p>/lib/libspattn_experiments.a           spattn::experiments
#   (headers only)                            spattn::plugin, for pattern plugins
#   <p>/bin/spattn                            the CLI
#   <p>/lib/cmake/spattn/spattnConfig.cmake   (+ ConfigVersion, Targets) for find_package(spattn)
# GNUInstallDirs is included by the top-level CMakeLists.txt (patterns/ uses its variables).
include(CMakePackageConfigHelpers)

set(SPATTN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/spattn)

# Every library that consumers may link, exported as spattn::<EXPORT_NAME> (their public
# dependencies are found again by cmake/spattnConfig.cmake.in).
set(SPATTN_EXPORTED_LIBRARIES spattn_patterns spattn_attention spattn_experiments spattn_plugin)
set(SPATTN_COMPONENTS patterns attention experiments plugin)

install(TARGETS ${SPATTN_EXPORTED_LIBRARIES}
  EXPORT spattnTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(dir patterns attention experiments)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/include/spattn
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    FILES_MATCHING PATTERN "*.hpp")
endforeach()

install(TARGETS spattn RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(BUILD_SHARED_LIBS)
  set_target_properties(spattn PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
endif()

# What a consumer's link needs beyond the exported targets. A static spattn_patterns carries
# its PRIVATE dependencies (libpng) into the consumer's link, so the package must find PNG too.
# A sanitizer or fuzzing build (SPATTN_SANITIZE, SPATTN_FUZZ) leaves instrumented objects in
# the library, which only link together with the sanitizer runtime: pass spattn_flags' link
# options (and only those) on to consumers of the installed library.
set(SPATTN_NEEDS_PNG OFF)
foreach(lib IN LISTS SPATTN_EXPORTED_LIBRARIES)
  get_target_property(lib_type ${lib} TYPE)
  if(lib_type STREQUAL "STATIC_LIBRARY")
    set(SPATTN_NEEDS_PNG ON)
    get_target_property(flags_link_options spattn_flags INTERFACE_LINK_OPTIONS)
    if(flags_link_options)
      foreach(option IN LISTS flags_link_options)
        target_link_options(${lib} INTERFACE $<INSTALL_INTERFACE:${option}>)
      endforeach()
    endif()
  endif()
endforeach()

install(EXPORT spattnTargets
  NAMESPACE spattn::
  FILE spattnTargets.cmake
  DESTINATION ${SPATTN_INSTALL_CMAKEDIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/spattnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/spattnConfig.cmake
  INSTALL_DESTINATION ${SPATTN_INSTALL_CMAKEDIR})
# 0.x: a new minor version may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/spattnConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/spattnConfig.cmake
              ${PROJECT_BINARY_DIR}/spattnConfigVersion.cmake
  DESTINATION ${SPATTN_INSTALL_CMAKEDIR})
