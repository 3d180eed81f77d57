# Run by CTest (tests/install/CMakeLists.txt): installs BUILD_DIR into a fresh
# prefix under WORK_DIR and builds examples/ against it, two ways.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

foreach(f include/ringbus/producer.h include/ringbus/broker.h lib/libringbus_bus.a lib/libringbus_io.a
          lib/cmake/ringbus/ringbusConfig.cmake lib/pkgconfig/ringbus.pc bin/ringbusd bin/ringbus
          etc/ringbus/ringbusd.toml lib/systemd/system/ringbusd.service)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "cmake --install did not install ${f}")
  endif()
endforeach()
# Nothing internal: only the public headers.
file(GLOB_RECURSE headers RELATIVE ${prefix}/include ${prefix}/include/*)
foreach(h IN LISTS headers)
  if(NOT h MATCHES "^ringbus/[a-z_]+\\.h$")
    message(FATAL_ERROR "cmake --install installed an unexpected header: include/${h}")
  endif()
endforeach()
file(READ ${prefix}/lib/systemd/system/ringbusd.service unit)
if(NOT unit MATCHES "ExecStart=${prefix}/bin/ringbusd --config ${prefix}/etc/ringbus/ringbusd.toml")
  message(FATAL_ERROR "the systemd unit does not start the installed ringbusd with the installed configuration:\n${unit}")
endif()

# find_package(ringbus), as a user's CMake project.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${WORK_DIR}/examples -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/examples -j2)
run(${WORK_DIR}/examples/produce_consume)

# pkg-config, as a user's Makefile.
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
run(pkg-config --cflags --libs --static ringbus)
string(STRIP "${last_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${CXX} -O1 ${SOURCE_DIR}/examples/produce_consume.cpp ${flags} -o ${WORK_DIR}/produce_consume_pc)
run(${WORK_DIR}/produce_consume_pc)
message(STATUS "installed package OK: ${prefix}")
