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
