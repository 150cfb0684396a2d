# lwIP 2.1.3 compiled from upstream source with our netstack/lwipopts.h.
# Never Debian's prebuilt liblwip0: it is built for the Hurd with 64 KiB windows.
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

set(LWIP_DIR ${LWIP_SOURCE_DIR})
include(${LWIP_SOURCE_DIR}/src/Filelists.cmake)

# NO_SYS: the core, IPv4 and IPv6 only; no sequential API, no sockets, no ethernet.
add_library(lwip STATIC ${lwipcore_SRCS} ${lwipcore4_SRCS} ${lwipcore6_SRCS})
target_include_directories(lwip SYSTEM PUBLIC ${LWIP_SOURCE_DIR}/src/include)
# lwipopts.h, arch/cc.h and the hook header live in netstack/, owned by us.
target_include_directories(lwip PUBLIC ${CMAKE_SOURCE_DIR}/netstack)
target_compile_options(lwip PRIVATE -w)
target_link_libraries(lwip PUBLIC PkgConfig::SODIUM)
