#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_install.sh - libcairn as a service's build sees it: `cmake --install`
# of this build into a temporary prefix, then examples/eventlog built out of
# the tree against that prefix twice, with pkg-config (cairn.pc) and with
# CMake's find_package(Cairn) (Cairn::cairn), and run: each binary must load
# the installed libcairn.so and exit 0 (append, conflict, read back).
# CAIRN_TEST_CC / CAIRN_TEST_CFLAGS: the compiler and sanitizer flags of the
# build (a sanitized libcairn.so needs a sanitized program).
set -uo pipefail
: "${CAIRN_BUILD_DIR:?}" "${CAIRN_SOURCE_DIR:?}"
cc=${CAIRN_TEST_CC:-cc}
cflags=${CAIRN_TEST_CFLAGS:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # check CONDITION-EXIT-CODE MESSAGE
    if [ "$1" -eq 0 ]; then echo "ok    $2"; else echo "FAIL  $2"; fails=$((fails + 1)); fi
}

cmake --install "$CAIRN_BUILD_DIR" --prefix "$tmp/prefix" > "$tmp/install.log" 2>&1 ||
    { echo "FAIL  cmake --install: $(tail -n 5 "$tmp/install.log")"; exit 1; }
pc=$(find "$tmp/prefix" -name cairn.pc)
[ -n "$pc" ] || { echo "FAIL  cairn.pc was not installed: $(cat "$tmp/install.log")"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
for f in include/cairn/cairn.h include/cairn/eventstore.h include/cairn/sdk.h \
         include/cairn/serde.h include/cairn/registry_client.h include/cairn/projector.h; do
    test -f "$tmp/prefix/$f"; check $? "installed $f"
done
test -L "$libdir/libcairn.so" && test -f "$libdir/libcairn.so.0"; check $? "installed libcairn.so -> libcairn.so.0"
test -f "$libdir/cmake/Cairn/CairnConfig.cmake" && test -f "$libdir/cmake/Cairn/CairnConfigVersion.cmake"
check $? "installed the CMake package files"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
version=$(pkg-config --modversion cairn)
[ "$version" = "$(sed -n 's/^#define CAIRN_VERSION_STR *"\(.*\)"/\1/p' "$CAIRN_SOURCE_DIR/include/cairn/cairn.h")" ]
check $? "pkg-config --modversion cairn is the header's version ($version)"

# shellcheck disable=SC2046,SC2086 # word splitting of the flags is wanted
$cc $cflags "$CAIRN_SOURCE_DIR/examples/eventlog/eventlog.c" $(pkg-config --cflags --libs cairn) \
    -Wl,-rpath,"$libdir" -o "$tmp/eventlog-pc" > "$tmp/cc.log" 2>&1
check $? "examples/eventlog builds with pkg-config: $(tail -n 5 "$tmp/cc.log" | tr '\n' ' ')"
# (ldd into a file: `ldd | grep -q` fails under pipefail when grep quits first)
ldd "$tmp/eventlog-pc" > "$tmp/ldd-pc.txt" 2>&1
grep -q "$libdir/libcairn.so.0" "$tmp/ldd-pc.txt"
check $? "the pkg-config build loads the installed libcairn.so: $(grep libcairn "$tmp/ldd-pc.txt")"
"$tmp/eventlog-pc" "file:$tmp/log-pc" > "$tmp/run-pc.log" 2>&1; check $? "the pkg-config build runs: $(tr '\n' ' ' < "$tmp/run-pc.log")"

cmake -S "$CAIRN_SOURCE_DIR/examples/eventlog" -B "$tmp/build-cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$cflags" \
    > "$tmp/cmake.log" 2>&1 && cmake --build "$tmp/build-cmake" >> "$tmp/cmake.log" 2>&1
check $? "examples/eventlog builds with find_package(Cairn): $(tail -n 5 "$tmp/cmake.log" | tr '\n' ' ')"
ldd "$tmp/build-cmake/cairn-eventlog" > "$tmp/ldd-cmake.txt" 2>&1
grep -q "$libdir/libcairn.so.0" "$tmp/ldd-cmake.txt"
check $? "the CMake build loads the installed libcairn.so: $(grep libcairn "$tmp/ldd-cmake.txt")"
"$tmp/build-cmake/cairn-eventlog" "file:$tmp/log-cmake" > "$tmp/run-cmake.log" 2>&1
check $? "the CMake build runs: $(tr '\n' ' ' < "$tmp/run-cmake.log")"

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
