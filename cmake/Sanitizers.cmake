# SPDX-License-Identifier: MIT
# ASan + UBSan for every target (tests included), aborting on the first report.
if(CAIRN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
