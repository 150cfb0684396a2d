# lwIP 2.1.3 compiled from upstream source with our netstack/lwipopts.h.
# Never Debian's prebuilt liblwip0: it is built for the Hurd with 64 KiB windows.
#
# Flow: find the pristine source (the cache scripts/deps.sh fills, never modified), copy it
# into the build directory, apply netstack/lwip-patches/*.patch in name order with patch -p1
# (no fuzz: every context line must match), and compile the copy. A stamp of the source path
# and every patch's content decides when the copy is re-made; a patch that does not apply
# stops the configure step with its name. docs/lwip-patches.md tells why and how.
if(NOT LWIP_SOURCE_DIR)
  if(DEFINED ENV{TUNLESS_CACHE})
    set(_cache $ENV{TUNLESS_CACHE})
  elseif(DEFINED ENV{XDG_CACHE_HOME})
    set(_cache $ENV{XDG_CACHE_HOME}/tunless)
  else()
    set(_cache $ENV{HOME}/.cache/tunless)
  endif()
  set(LWIP_SOURCE_DIR ${_cache}/lwip-2.1.3)
endif()
if(NOT EXISTS ${LWIP_SOURCE_DIR}/src/Filelists.cmake)
  message(FATAL_ERROR "lwIP source not found in ${LWIP_SOURCE_DIR}: run scripts/deps.sh, "
                      "or pass -DLWIP_SOURCE_DIR=/path/to/lwip-2.1")
endif()
message(STATUS "lwIP source: ${LWIP_SOURCE_DIR}")

find_program(PATCH_BIN patch)
if(NOT PATCH_BIN)
  message(FATAL_ERROR "patch not found: run scripts/deps.sh (Debian package patch)")
endif()

file(GLOB _lwip_patches CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/netstack/lwip-patches/*.patch)
list(SORT _lwip_patches)
set(_stamp_text "source=${LWIP_SOURCE_DIR}\n")
foreach(_p ${_lwip_patches})
  file(SHA256 ${_p} _h)
  get_filename_component(_n ${_p} NAME)
  string(APPEND _stamp_text "${_n}=${_h}\n")
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_lwip_patches})

set(LWIP_PATCHED_DIR ${CMAKE_BINARY_DIR}/lwip-2.1.3-patched)
set(_stamp_file ${LWIP_PATCHED_DIR}.stamp)
set(_old_stamp "")
if(EXISTS ${_stamp_file} AND EXISTS ${LWIP_PATCHED_DIR}/src/Filelists.cmake)
  file(READ ${_stamp_file} _old_stamp)
endif()
if(NOT _old_stamp STREQUAL _stamp_text)
  file(REMOVE_RECURSE ${LWIP_PATCHED_DIR} ${_stamp_file})
  file(COPY ${LWIP_SOURCE_DIR}/ DESTINATION ${LWIP_PATCHED_DIR})
  foreach(_p ${_lwip_patches})
    get_filename_component(_n ${_p} NAME)
    execute_process(COMMAND ${PATCH_BIN} -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch -i ${_p}
                    WORKING_DIRECTORY ${LWIP_PATCHED_DIR}
                    RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
    if(NOT _rc EQUAL 0)
      file(REMOVE_RECURSE ${LWIP_PATCHED_DIR})
      message(FATAL_ERROR "lwIP patch ${_n} does not apply to ${LWIP_SOURCE_DIR}:\n${_out}"
                          "See docs/lwip-patches.md for carrying the series to another lwIP.")
    endif()
    message(STATUS "lwIP patch applied: ${_n}")
  endforeach()
  file(WRITE ${_stamp_file} "${_stamp_text}")
endif()

set(LWIP_DIR ${LWIP_PATCHED_DIR})
include(${LWIP_PATCHED_DIR}/src/Filelists.cmake)

# NO_SYS: the core, IPv4 and IPv6 only; no sequential API, no sockets, no ethernet.
add_library(lwip STATIC ${lwipcore_SRCS} ${lwipcore4_SRCS} ${lwipcore6_SRCS})
target_include_directories(lwip SYSTEM PUBLIC ${LWIP_PATCHED_DIR}/src/include)
# lwipopts.h, arch/cc.h and the hook header live in netstack/, owned by us.
target_include_directories(lwip PUBLIC ${CMAKE_SOURCE_DIR}/netstack)
target_compile_options(lwip PRIVATE -w)
target_link_libraries(lwip PUBLIC PkgConfig::SODIUM)
