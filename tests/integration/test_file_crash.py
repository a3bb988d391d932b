# SPDX-License-Identifier: MIT
"""test_file_crash.py - several processes append to the same streams of one
file log with expected versions while some of them are SIGKILLed at random
points, and a `cairn events tail` reader (a read-only open in another
process) follows the log all along.

Each appender is a thread of this script that runs `cairn events append` in a
loop: it appends with --expect N (N its last known version of the stream),
and on a conflict (exit 3, "actual=M") takes M and retries. The processes
take turns on the directory's writer lock (append waits up to
--lock-timeout). About one append in eight is SIGKILLed after a random
delay of 0-6 ms; its outcome is unknown (it may or may not be in the log).

Afterwards, after a writer reopen (recovery): every stream's versions are
1..N in order with no gap and no duplicate value; every acknowledged append
(exit 0 and its printed version) is present exactly once, at that version;
every append told "conflict" is absent; and every record the tail printed is
in the recovered log, at the same position with the same content, in log
order (a reader never printed a record the writer had not made durable).
SIGKILL never tears a write (the page cache survives), so torn tails are the
unit tests' business (tests/unit/eventstore/test_file_log.c).

Env: CAIRN_BIN. Run with /usr/bin/python3.
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

CAIRN = os.environ.get("CAIRN_BIN", "cairn")
WORKERS = 4
APPENDS = 200
STREAMS = ["acct-a", "acct-b", "acct-c"]
KILL_EVERY = 8


class Outcomes:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}  # value -> (stream, version)
        self.conflicted = set()
        self.unknown = set()
        self.errors = []


def appender(log, wid, out, seed):
    rnd = random.Random(seed)
    known = {s: 0 for s in STREAMS}
    for i in range(APPENDS):
        stream = rnd.choice(STREAMS)
        value = "w%d-%d" % (wid, i)
        cmd = [CAIRN, "events", "append", "--log", log, "--stream", stream,
               "--expect", str(known[stream]), "--lock-timeout", "30", value]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        killed = False
        if rnd.randrange(KILL_EVERY) == 0:
            time.sleep(rnd.random() * 0.006)
            p.send_signal(signal.SIGKILL)
            killed = True
        stdout, stderr = p.communicate(timeout=60)
        with out.lock:
            if p.returncode == 0:
                m = re.match(r"stream=(\S+) version=(\d+) position=(\d+)$", stdout.decode().strip())
                if not m or m.group(1) != stream:
                    out.errors.append("bad ack output %r" % stdout)
                    continue
                out.acked[value] = (stream, int(m.group(2)))
                known[stream] = int(m.group(2))
            elif p.returncode == 3:
                m = re.search(rb"actual=(\d+)", stderr)
                out.conflicted.add(value)
                if m:
                    known[stream] = int(m.group(1))
                else:
                    out.errors.append("conflict without actual version: %r" % stderr)
            elif killed and p.returncode == -signal.SIGKILL:
                out.unknown.add(value)
            else:
                out.errors.append("append %s exited %s: %r" % (value, p.returncode, stderr))


class FileCrash(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cairn-file-crash-")
        self.dir = os.path.join(self.tmp, "log")
        self.log = "file:" + self.dir

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def read_all(self):
        r = subprocess.run([CAIRN, "events", "read", "--log", self.log, "--json"],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.decode().splitlines()]

    def test_concurrent_appenders_killed_at_random(self):
        # The log exists before the reader starts (a read-only open needs it).
        r = subprocess.run([CAIRN, "events", "append", "--log", self.log, "--stream", "start",
                            "0"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        tail_out = open(os.path.join(self.tmp, "tail.out"), "wb")
        tail = subprocess.Popen([CAIRN, "events", "tail", "--log", self.log, "--json"],
                                stdout=tail_out, stderr=subprocess.PIPE)
        out = Outcomes()
        seed = int(os.environ.get("CAIRN_CRASH_SEED", str(int(time.time()))))
        print("seed", seed, file=sys.stderr)
        threads = [threading.Thread(target=appender, args=(self.log, w, out, seed * 100 + w))
                   for w in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.5)  # let the tail catch up with the last commit
        tail.send_signal(signal.SIGTERM)
        _, tail_err = tail.communicate(timeout=30)
        tail_out.close()
        self.assertEqual(tail.returncode, 0, tail_err)
        print("acked %d conflicted %d killed %d" % (len(out.acked), len(out.conflicted),
                                                    len(out.unknown)), file=sys.stderr)
        self.assertEqual(out.errors, [])
        self.assertGreater(len(out.acked), WORKERS * APPENDS // 4)
        self.assertGreater(len(out.unknown), 0)  # the kills really hit appends

        # A writer reopen runs recovery; then read everything back.
        r = subprocess.run([CAIRN, "events", "append", "--log", self.log, "--stream", "end",
                            "1"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        recs = self.read_all()
        by_stream = {}
        seen = {}
        for rec in recs:
            by_stream.setdefault(rec["stream"], []).append(rec)
            self.assertNotIn(rec["value"], seen, "duplicate value %s" % rec["value"])
            seen[rec["value"]] = rec
        for stream, rs in by_stream.items():
            self.assertEqual([x["version"] for x in rs], list(range(1, len(rs) + 1)), stream)
        for value, (stream, version) in out.acked.items():
            self.assertIn(value, seen, "acknowledged append %s is missing" % value)
            self.assertEqual((seen[value]["stream"], seen[value]["version"]), (stream, version))
        for value in out.conflicted:
            self.assertNotIn(value, seen, "conflicted append %s is in the log" % value)
        for value in seen:
            if value not in ("0", "1"):
                self.assertTrue(value in out.acked or value in out.unknown, value)

        # Everything the reader printed is in the recovered log, in order.
        with open(os.path.join(self.tmp, "tail.out"), "rb") as f:
            printed = [json.loads(line) for line in f.read().decode().splitlines()]
        self.assertGreater(len(printed), len(out.acked) // 2)
        by_pos = {x["position"]: x for x in recs}
        last = -1
        for p in printed:
            self.assertGreater(p["position"], last)
            last = p["position"]
            self.assertIn(p["position"], by_pos)
            q = by_pos[p["position"]]
            self.assertEqual((p["stream"], p["version"], p["value"]),
                             (q["stream"], q["version"], q["value"]))
        # And it printed a prefix of the log: no record skipped.
        self.assertEqual([x["position"] for x in printed],
                         [x["position"] for x in recs[:len(printed)]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
