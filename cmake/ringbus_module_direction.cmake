# Modules depend one way: tools -> cluster -> io -> bus (ARCHITECTURE.md).
# This check fails the configure step (and the CTest `module_direction`) when
# a module reaches up: a quoted #include in a module that resolves only in a
# module above it (or nowhere below it), or a CMakeLists.txt of bus/, io/ or
# cluster/ that names a higher module's folder or target.
#
# Use: include() it from the top-level CMakeLists.txt (ROOT defaults to the
# source tree), or run it as a script: cmake -DROOT=<tree> -P <this file>.

function(ringbus_check_module_direction root)
  set(problems "")
  # module -> the folders its quoted includes may resolve in (its own first).
  set(allowed_bus "bus/src;bus/include")
  set(allowed_io "io/src;io/include;bus/src;bus/include")
  set(allowed_cluster "cluster/src;cluster/include;io/src;io/include;bus/src;bus/include")
  foreach(module bus io cluster)
    file(GLOB_RECURSE sources RELATIVE "${root}" "${root}/${module}/*.h" "${root}/${module}/*.cpp")
    foreach(source IN LISTS sources)
      get_filename_component(own_dir "${source}" DIRECTORY)
      file(STRINGS "${root}/${source}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
      foreach(line IN LISTS includes)
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*" "\\1" header "${line}")
        set(found FALSE)
        foreach(dir IN LISTS own_dir allowed_${module})
          if(EXISTS "${root}/${dir}/${header}")
            set(found TRUE)
            break()
          endif()
        endforeach()
        if(NOT found)
          string(APPEND problems "  ${source}: #include \"${header}\" is not in ${module}/ or below it\n")
        endif()
      endforeach()
    endforeach()
  endforeach()

  # Include paths and link lines: no module names one above it.
  set(higher_bus "io/|cluster/|tools/|ringbus_io|ringbus::io|ringbus_cluster|ringbus_control|ringbus_daemon")
  set(higher_io "cluster/|tools/|ringbus_cluster|ringbus_control|ringbus_daemon")
  set(higher_cluster "tools/|ringbus_control|ringbus_daemon")
  foreach(module bus io cluster)
    file(GLOB_RECURSE lists RELATIVE "${root}" "${root}/${module}/CMakeLists.txt")
    foreach(list IN LISTS lists)
      file(STRINGS "${root}/${list}" lines)
      foreach(line IN LISTS lines)
        string(REGEX REPLACE "#.*" "" code "${line}")
        if(code MATCHES "(${higher_${module}})")
          string(APPEND problems "  ${list}: names ${CMAKE_MATCH_1} (a module above ${module}/)\n")
        endif()
      endforeach()
    endforeach()
  endforeach()

  if(problems)
    message(FATAL_ERROR "Modules must depend one way, tools -> cluster -> io -> bus (ARCHITECTURE.md):\n${problems}")
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)
  if(NOT ROOT)
    message(FATAL_ERROR "usage: cmake -DROOT=<source tree> -P ringbus_module_direction.cmake")
  endif()
  ringbus_check_module_direction("${ROOT}")
else()
  ringbus_check_module_direction("${PROJECT_SOURCE_DIR}")
endif()
