# SPDX-License-Identifier: MIT
"""check_exports.py LIB INCLUDE_DIR - libcairn.so exports exactly the
functions its public headers declare with CAIRN_API (jansson's
check-exports): no internal symbol (cairn__*, a module's static helpers made
global) leaks, and none that a header promises is missing. Symbols the
sanitizers' instrumentation adds (__asan_*, __odr_asan_gen_*, ...) are not
ours and are left out."""
import glob
import os
import re
import subprocess
import sys


def declared(include_dir):
    names = set()
    for path in sorted(glob.glob(os.path.join(include_dir, '*.h'))):
        with open(path) as f:
            text = f.read()
        text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
        text = re.sub(r'^\s*#.*$', ' ', text, flags=re.M)
        for m in re.finditer(r'\bCAIRN_API\b[^;{()]*?\b(cairn_\w+)\s*\(', text):
            names.add(m.group(1))
    return names


def exported(lib):
    out = subprocess.run(['nm', '-D', '--defined-only', lib], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[-1] for line in out.splitlines()
            if line.strip() and not line.split()[-1].startswith('__')}


def main():
    lib, include_dir = sys.argv[1], sys.argv[2]
    want, got = declared(include_dir), exported(lib)
    if len(want) < 50:
        print('FAIL only %d CAIRN_API declarations found in %s: the parser is wrong'
              % (len(want), include_dir))
        return 1
    extra, missing = sorted(got - want), sorted(want - got)
    for name in extra:
        print('FAIL exported but not declared CAIRN_API in include/cairn/: %s' % name)
    for name in missing:
        print('FAIL declared CAIRN_API but not exported by %s: %s' % (lib, name))
    if extra or missing:
        return 1
    print('ok    %s exports the %d CAIRN_API functions of %s, nothing else'
          % (os.path.basename(lib), len(got), include_dir))
    return 0


if __name__ == '__main__':
    sys.exit(main())
