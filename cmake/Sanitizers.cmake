# SPDX-License-Identifier: MIT
# CAIRN_SANITIZE: ASan + UBSan for every target (tests included), aborting on
# the first report. CAIRN_TSAN: ThreadSanitizer instead (the CI job that runs
# the unit tests under it: scripts/test.sh, tests/tsan.supp).
if(CAIRN_SANITIZE AND CAIRN_TSAN)
  message(FATAL_ERROR "CAIRN_SANITIZE and CAIRN_TSAN exclude each other")
endif()
if(CAIRN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
if(CAIRN_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
# A sanitizer's runtime is linked into executables only: a shared library
# built with one leaves its hooks undefined (libcairn/).
if(CAIRN_SANITIZE OR CAIRN_TSAN OR CMAKE_C_FLAGS MATCHES "-fsanitize")
  set(CAIRN_SANITIZED ON)
else()
  set(CAIRN_SANITIZED OFF)
endif()
