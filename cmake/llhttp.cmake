# llhttp from the C sources Debian's node-llhttp installs (no prebuilt library exists).
set(LLHTTP_SOURCE_DIR /usr/share/llhttp CACHE PATH "llhttp C sources (llhttp.c api.c http.c)")
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "directory holding llhttp.h")
if(NOT EXISTS ${LLHTTP_SOURCE_DIR}/llhttp.c OR NOT EXISTS ${LLHTTP_INCLUDE_DIR}/llhttp.h)
  message(FATAL_ERROR "llhttp sources not found in ${LLHTTP_SOURCE_DIR}: run scripts/deps.sh "
                      "(Debian package node-llhttp) or set -DLLHTTP_SOURCE_DIR/-DLLHTTP_INCLUDE_DIR")
endif()
add_library(llhttp STATIC ${LLHTTP_SOURCE_DIR}/llhttp.c ${LLHTTP_SOURCE_DIR}/api.c
                          ${LLHTTP_SOURCE_DIR}/http.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
target_compile_options(llhttp PRIVATE -w)
