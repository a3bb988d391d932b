# SPDX-License-Identifier: MIT
"""bank_fixture.py - what the script tests of the bank example share
(tests/integration/test_bank_example.py, test_sdk_concurrency.py): checks
that print one line each and are counted, the built programs found from the
environment, child servers (`cairn registry serve`, cairn-mock-kafka)
started on free ports and stopped by PID, and the common ending (scratch
directory removed or kept, summary line, exit status).

    sys.path.insert(0, os.path.join(os.environ['CAIRN_SOURCE_DIR'], 'tests', 'support'))
    import bank_fixture as bf
    cairn, bank, mock = bf.env_paths()
    reg = bf.start_registry(cairn, tmp)   # reg.url; reg.stop() -> exit status

Standard library only (run with /usr/bin/python3).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)
    return cond


def need_exe(path, what):
    if not os.access(path, os.X_OK):
        sys.exit("FAIL: no executable %s (%s)" % (path, what))
    return path


def env_paths():
    """(cairn, cairn-bank, cairn-mock-kafka) as absolute paths, from CAIRN_BIN,
    CAIRN_BUILD_DIR and CAIRN_TOOLS_DIR (default $CAIRN_BUILD_DIR/tests)."""
    cairn = os.environ.get("CAIRN_BIN")
    build = os.environ.get("CAIRN_BUILD_DIR")
    if not cairn:
        sys.exit("FAIL: CAIRN_BIN is not set (the built cairn binary)")
    if not build:
        sys.exit("FAIL: CAIRN_BUILD_DIR is not set (the build holding examples/bank/cairn-bank)")
    tools = os.environ.get("CAIRN_TOOLS_DIR") or os.path.join(build, "tests")
    return tuple(os.path.abspath(p) for p in (
        need_exe(cairn, "CAIRN_BIN"),
        need_exe(os.path.join(build, "examples", "bank", "cairn-bank"), "build cairn-bank"),
        need_exe(os.path.join(tools, "cairn-mock-kafka"), "build cairn-mock-kafka")))


def read_first_line(proc, path, pattern, timeout):
    """Waits until the file `path` (the process's output) matches `pattern`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            m = re.search(pattern, f.read().decode(errors="replace"))
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    return None


class Server:
    """A child process (registry or mock) stopped by PID with SIGTERM."""

    def __init__(self, args, tmp, name, pattern, merge=True):
        self.out_path = os.path.join(tmp, name + ".out")
        self.out = open(self.out_path, "wb")
        self.err = None if merge else open(os.path.join(tmp, name + ".err"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT if merge else self.err)
        self.match = read_first_line(self.proc, self.out_path, pattern, 15.0)
        if not self.match:
            self.stop()
            sys.exit("FAIL: %s did not start: %s" % (name, open(self.out_path).read()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        if self.err:
            self.err.close()
        return self.proc.returncode


def start_registry(cairn, tmp):
    """`cairn registry serve` over tmp/registry on a free port; .url is its URL."""
    data = os.path.join(tmp, "registry")
    os.mkdir(data)
    s = Server([cairn, "registry", "serve", "--listen", "127.0.0.1:0", "--data", data], tmp,
               "registry", r'msg="registry listening" listen="[^"]*:(\d+)"')
    s.url = "http://127.0.0.1:%s" % s.match.group(1)
    return s


def start_mock(mock, tmp, topics):
    """cairn-mock-kafka with `topics` ("name:partitions"); .bootstrap is its address."""
    args = [mock, "--brokers", "1"]
    for t in topics:
        args += ["--topic", t]
    s = Server(args, tmp, "mock", r"^(\S+)\n", merge=False)
    s.bootstrap = s.match.group(1)
    return s


def finish(name, tmp):
    """Removes `tmp` (kept when a check failed), prints the summary and exits."""
    if FAILURES:
        print("kept %s for inspection" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print("summary: %s failures=%d -> %s" % (name, len(FAILURES), "FAIL" if FAILURES else "OK"))
    sys.exit(1 if FAILURES else 0)
