# `cmake --install`: the public headers, the libraries with a CMake package
# (find_package(ringbus) gives ringbus::bus and ringbus::io) and a pkg-config
# file, the programs, a systemd unit for ringbusd and its example
# configuration. tests/install checks it by building examples/ against an
# installed prefix.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY bus/include/ringbus io/include/ringbus
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(TARGETS ringbus_bus ringbus_io EXPORT ringbusTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
set(ringbus_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/ringbus)
install(EXPORT ringbusTargets NAMESPACE ringbus:: DESTINATION ${ringbus_cmake_dir})
configure_package_config_file(cmake/ringbusConfig.cmake.in ${PROJECT_BINARY_DIR}/ringbusConfig.cmake
                              INSTALL_DESTINATION ${ringbus_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ringbusConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ringbusConfig.cmake ${PROJECT_BINARY_DIR}/ringbusConfigVersion.cmake
        DESTINATION ${ringbus_cmake_dir})
# The .pc file finds its prefix from where it lies (relocatable).
file(RELATIVE_PATH ringbus_pc_to_prefix /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(cmake/ringbus.pc.in ${PROJECT_BINARY_DIR}/ringbus.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ringbus.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(RINGBUS_BUILD_PROGRAMS)
  install(TARGETS ringbusd ringbus RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(FILES tools/ringbusd/ringbusd.toml DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/ringbus)
  # The unit names the installed paths, so it is written at install time,
  # for the prefix installed to (`cmake --install --prefix` may differ from
  # the configured one). Under the prefix, where a package puts units
  # (/usr/lib/systemd/system for the prefix /usr); elsewhere `systemctl
  # link` enables it.
  install(CODE "
    set(CMAKE_INSTALL_FULL_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
    set(CMAKE_INSTALL_FULL_SYSCONFDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}\")
    configure_file(${PROJECT_SOURCE_DIR}/tools/ringbusd/ringbusd.service.in ${PROJECT_BINARY_DIR}/ringbusd.service @ONLY)")
  install(FILES ${PROJECT_BINARY_DIR}/ringbusd.service DESTINATION ${CMAKE_INSTALL_LIBDIR}/systemd/system)
endif()
