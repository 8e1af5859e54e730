# `cmake --install` and the package config: find_package(multibox CONFIG REQUIRED) in a user's project gives
# multibox::core (public headers, validation, shared math), multibox::reference (the naive backend) and
# multibox_add_plugin(); the tools (multibox, multibox_property_test, multibox_bench) go to bin/ and load plugins.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MULTIBOX_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/multibox)

set_target_properties(multibox_core PROPERTIES EXPORT_NAME core)
set_target_properties(multibox_backend_naive PROPERTIES EXPORT_NAME reference)
install(TARGETS multibox_core multibox_backend_naive EXPORT multibox-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/impls/include/multibox DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Headers the exported libraries' users need that live beside their sources (math.hpp is compiled into every backend,
# and a plugin wrapping the reference includes naive_backend.hpp); multibox_core adds the folder to the include path.
install(FILES ${PROJECT_SOURCE_DIR}/impls/core/math.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/multibox-internal/core)
install(FILES ${PROJECT_SOURCE_DIR}/impls/naive/naive_backend.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/multibox-internal/naive)
install(EXPORT multibox-targets NAMESPACE multibox:: DESTINATION ${MULTIBOX_INSTALL_CMAKEDIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/multiboxConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/multiboxConfig.cmake INSTALL_DESTINATION ${MULTIBOX_INSTALL_CMAKEDIR})
# 0.x: every minor release may change the plugin interface, which the loader checks on its own anyway.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/multiboxConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/multiboxConfig.cmake ${PROJECT_BINARY_DIR}/multiboxConfigVersion.cmake
        DESTINATION ${MULTIBOX_INSTALL_CMAKEDIR})

foreach(tool multibox_cli multibox_property_test multibox_bench)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
