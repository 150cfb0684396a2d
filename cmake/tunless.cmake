# tunless_library(NAME DEPS...): a static library from every .c in the calling directory,
# exporting that directory as its include path. One library per top-level directory; every one
# but base itself links base (the shared vocabulary).
function(tunless_library name)
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  list(FILTER srcs EXCLUDE REGEX "/main\\.c$")
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE ${TUNLESS_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARGN})
  if(NOT name STREQUAL "tunless_base")
    target_link_libraries(${name} PUBLIC tunless_base)
  endif()
  set_property(GLOBAL APPEND PROPERTY TUNLESS_LIBRARIES ${name})
endfunction()
