# SPDX-License-Identifier: MIT
"""test_bank_example.py - the walkthrough of examples/bank/README.md runs and
prints what it says.

Every ```console block of the README is executed, in order, in one bash
session in a scratch directory: a line "$ CMD" is a command; the lines after
it, up to the next command or the end of the block, are its output (stdout
and stderr together), compared line by line, where "<...>" (e.g. <uuid>,
<pos>) stands for one value without spaces and a last line "[exit N]" is the
expected exit status (else 0). What the test provides instead of the
README's first terminal: a registry started here on a free port
(CAIRN_REGISTRY_URL, which cairn-bank reads), and the build under test on
PATH — so command lines that set PATH are not run (they name the
newcomer's `build/` folders).

Run by ctest (label integration) or by hand with CAIRN_BIN and
CAIRN_BUILD_DIR set:
    CAIRN_BIN=build/cli/cairn CAIRN_BUILD_DIR=build /usr/bin/python3 tests/integration/test_bank_example.py
"""
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from bank_fixture import check, env_paths, finish, start_registry  # noqa: E402


def console_blocks(readme):
    """[(first line number, [(command, [expected lines], exit status)])]."""
    blocks = []
    lines = open(readme, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```console":
            start = i + 1
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            cmds = []
            for line in body:
                if line.startswith("$ "):
                    cmds.append([line[2:], [], 0])
                elif cmds:
                    m = re.fullmatch(r"\[exit (\d+)\]", line.strip())
                    if m:
                        cmds[-1][2] = int(m.group(1))
                    else:
                        cmds[-1][1].append(line)
                else:
                    sys.exit("FAIL: %s:%d: output before any command" % (readme, start))
            blocks.append((start, cmds))
        i += 1
    return blocks


def pattern(expected):
    parts = re.split(r"(<[a-z]+>)", expected)
    return "".join(r"\S+" if re.fullmatch(r"<[a-z]+>", p) else re.escape(p) for p in parts)


class Shell:
    """One bash session; each command's output and status read up to a marker."""

    def __init__(self, cwd, env):
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile"], cwd=cwd, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.n = 0

    def run(self, cmd, timeout=120):
        self.n += 1
        marker = "__cairn_test_done_%d__" % self.n
        script = "%s\n__rc=$?; echo; echo \"%s $__rc\"\n" % (cmd, marker)
        self.proc.stdin.write(script.encode())
        self.proc.stdin.flush()
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return ["(no answer within %d s)" % timeout], None
            chunk = os.read(fd, 65536)
            if not chunk:
                return buf.decode(errors="replace").split("\n"), None
            buf += chunk
            m = re.search(rb"\n?" + marker.encode() + rb" (\d+)\n", buf)
            if m:
                text = buf[:m.start()].decode(errors="replace")
                out = text.split("\n") if text else []
                if out and out[-1] == "":
                    out.pop()  # the command's own last newline
                return out, int(m.group(1))

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def main():
    cairn, bank, mock = env_paths()
    src = os.environ.get("CAIRN_SOURCE_DIR") or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    tools = os.path.dirname(mock)
    bank_dir = os.path.dirname(bank)
    readme = os.path.join(src, "examples", "bank", "README.md")
    blocks = console_blocks(readme)
    check(len(blocks) >= 5 and sum(len(c) for _, c in blocks) >= 15,
          "README.md has the walkthrough's console blocks (%d blocks)" % len(blocks))

    tmp = tempfile.mkdtemp(prefix="cairn-bank-readme-")
    work = os.path.join(tmp, "work")
    os.mkdir(work)
    reg = start_registry(cairn, tmp)
    env = dict(os.environ)
    env.pop("CAIRN_BANK_LOG", None)
    env["CAIRN_REGISTRY_URL"] = reg.url
    env["PATH"] = os.pathsep.join([bank_dir, os.path.dirname(cairn), tools,
                                   env.get("PATH", "/usr/bin:/bin")])
    env["TMPDIR"] = work  # the README's `cd "$(mktemp -d)"` lands in our scratch space
    sh = Shell(work, env)
    try:
        for start, cmds in blocks:
            for cmd, expected, status in cmds:
                if re.search(r"(^|\s)PATH=", cmd):
                    continue
                out, rc = sh.run(cmd)
                where = "README.md block at line %d: $ %s" % (start, cmd)
                if not check(rc == status, "%s exits %s (got %s)" % (where, status, rc)):
                    print("\n".join("      | " + l for l in out))
                    continue
                same = len(out) == len(expected) and all(
                    re.fullmatch(pattern(e), o) for e, o in zip(expected, out))
                if not check(same, "%s prints the documented output" % where):
                    print("      expected:\n" + "\n".join("      | " + l for l in expected))
                    print("      got:\n" + "\n".join("      | " + l for l in out))
    finally:
        sh.close()
        rc = reg.stop()
        check(rc == 0, "the registry exits 0 on SIGTERM (%s)" % rc)
    finish("test_bank_example.py", tmp)


if __name__ == "__main__":
    main()
