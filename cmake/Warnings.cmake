# SPDX-License-Identifier: MIT
# The warning set of STYLE.md, as an interface target each module links
# privately (curl's CMake/PickyWarnings.cmake). -Werror only when asked (CI).
add_library(cairn_warnings INTERFACE)
target_compile_options(cairn_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wmissing-declarations -Wold-style-definition -Wformat=2 -Wcast-qual -Wpointer-arith
  -Wwrite-strings -Wundef -Wvla -Wimplicit-fallthrough -Wnull-dereference)
if(CAIRN_WERROR)
  target_compile_options(cairn_warnings INTERFACE -Werror)
endif()
# librdkafka's RD_KAFKA_V_* macros: see ENVIRONMENT.md. Handled once, here.
target_compile_definitions(cairn_warnings INTERFACE LIBRDKAFKA_TYPECHECKS=0)

# While a module is being written it may have no sources yet; give CMake an
# empty translation unit so that the rest of the tree still configures.
function(cairn_nonempty_sources var)
  if(NOT ${var})
    set(empty ${CMAKE_CURRENT_BINARY_DIR}/empty_module.c)
    file(WRITE ${empty} "typedef int cairn_empty_module_t;\n")
    set(${var} ${empty} PARENT_SCOPE)
  endif()
endfunction()
