# SPDX-License-Identifier: MIT
"""test_events_cli.py - `cairn events append|read|tail|copy` on the file
backend, as a user runs them: output formats, exit codes (0 ok, 3 version
conflict, 2 error), headers and binary values, tail with checkpoints, copy
that a re-run does not duplicate, and append waiting for another process's
lock (--lock-timeout). EventsCliKafka runs the same commands against
$CAIRN_TOOLS_DIR/cairn-mock-kafka: append/conflict/read, tail with a Kafka
checkpoint, and copy file -> Kafka -> a clean topic, re-run without
duplicates.

Env: CAIRN_BIN (the built `cairn`), CAIRN_TOOLS_DIR. Run with /usr/bin/python3.
"""
import base64
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

CAIRN = os.environ.get("CAIRN_BIN", "cairn")


def run(*args, stdin=None, timeout=30):
    return subprocess.run([CAIRN, "events", *args], input=stdin, capture_output=True,
                          timeout=timeout)


def read_json(log, *extra):
    r = run("read", "--log", log, "--json", *extra)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.decode().splitlines()]


class EventsCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cairn-events-cli-")
        self.log = "file:" + os.path.join(self.tmp, "log")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def append(self, stream, value, *extra):
        return run("append", "--log", self.log, "--stream", stream, *extra, value)

    def test_append_prints_version_and_position(self):
        r = self.append("order-1", "created", "--expect", "none", "--type", "Created",
                        "--header", "k=v=w")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode(), "stream=order-1 version=1 position=0\n")
        r = self.append("order-1", "paid", "--expect", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        fields = dict(kv.split("=", 1) for kv in r.stdout.decode().split())
        self.assertEqual(fields["version"], "2")
        self.assertGreater(int(fields["position"]), 0)
        recs = read_json(self.log)
        self.assertEqual([(x["stream"], x["version"], x["value"]) for x in recs],
                         [("order-1", 1, "created"), ("order-1", 2, "paid")])
        self.assertEqual(recs[0]["headers"], {"cairn.type": "Created", "k": "v=w"})
        self.assertEqual(recs[1]["position"], int(fields["position"]))

    def test_conflict_exits_3_and_writes_nothing(self):
        self.assertEqual(self.append("s", "a").returncode, 0)
        r = self.append("s", "b", "--expect", "none")
        self.assertEqual(r.returncode, 3)
        self.assertIn(b"actual=1", r.stderr)
        r = self.append("s", "c", "--expect", "0")
        self.assertEqual(r.returncode, 3)
        r = self.append("s", "d", "--expect", "7")
        self.assertEqual(r.returncode, 3)
        self.assertEqual([x["value"] for x in read_json(self.log)], ["a"])
        self.assertEqual(self.append("s", "e", "--expect", "any").returncode, 0)

    def test_errors_exit_2(self):
        self.assertEqual(self.append("", "x").returncode, 2)
        self.assertEqual(self.append("s", "x", "--expect", "minus").returncode, 2)
        self.assertEqual(self.append("s", "x", "--header", "novalue").returncode, 2)
        self.assertEqual(run("append", "--log", self.log, "--stream", "s").returncode, 2)
        self.assertEqual(run("append", "--log", "nosuch:x", "--stream", "s", "v").returncode, 2)
        self.assertEqual(run("append", "--log", "kafka:h?topic=t", "--stream", "s",
                             "v").returncode, 2)
        self.assertEqual(run("read", "--log", os.path.join(self.tmp, "missing")).returncode, 2)
        self.assertEqual(run("read", "--log", self.log, "--from", "x").returncode, 2)
        self.assertEqual(run("bogus").returncode, 2)
        self.assertEqual(run("read", "--bogus").returncode, 2)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "log", "durable")) and
                         read_json(self.log))

    def test_help(self):
        for sub in ("append", "read", "tail", "copy"):
            r = run(sub, "--help")
            self.assertEqual(r.returncode, 0)
            self.assertIn(b"usage: cairn events " + sub.encode(), r.stdout)
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"cairn events copy", r.stdout)

    def test_binary_value_from_file_and_plain_output(self):
        path = os.path.join(self.tmp, "v.bin")
        blob = bytes(range(256))
        with open(path, "wb") as f:
            f.write(blob)
        r = run("append", "--log", self.log, "--stream", "b", "--file", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("append", "--log", self.log, "--stream", "b", "--file", "-",
                stdin=b"from stdin")
        self.assertEqual(r.returncode, 0, r.stderr)
        recs = read_json(self.log, "--stream", "b")
        self.assertEqual(base64.b64decode(recs[0]["value_base64"]), blob)
        self.assertEqual(recs[1]["value"], "from stdin")
        r = run("read", "--log", self.log)
        lines = r.stdout.decode().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].startswith("partition=0 position=0 stream=b version=1 "))
        self.assertIn(" value:base64=" + base64.b64encode(blob).decode(), lines[0])
        self.assertTrue(lines[1].endswith(" value=from stdin"))

    def test_read_stream_from_version_and_log_from_position(self):
        for i in range(4):
            self.assertEqual(self.append("x", "x%d" % i).returncode, 0)
            self.assertEqual(self.append("y", "y%d" % i).returncode, 0)
        self.assertEqual([r["value"] for r in read_json(self.log, "--stream", "x", "--from", "3")],
                         ["x2", "x3"])
        everything = read_json(self.log)
        self.assertEqual(len(everything), 8)
        tail = read_json(self.log, "--from", str(everything[5]["position"]))
        self.assertEqual(tail, everything[5:])

    def test_tail_follows_and_resumes_from_checkpoint(self):
        self.assertEqual(self.append("t", "one").returncode, 0)
        p = subprocess.Popen([CAIRN, "events", "tail", "--log", self.log, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first = json.loads(p.stdout.readline())
            self.assertEqual(first["value"], "one")
            self.assertEqual(self.append("t", "two").returncode, 0)
            second = json.loads(p.stdout.readline())  # arrives while the tail runs
            self.assertEqual((second["value"], second["version"]), ("two", 2))
        finally:
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out, b"")
        cp = err.decode().strip().split("checkpoint=")[-1]
        self.assertTrue(cp.startswith("file:"), err)
        self.assertEqual(self.append("t", "three").returncode, 0)
        p = subprocess.Popen([CAIRN, "events", "tail", "--log", self.log, "--from", cp, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            rec = json.loads(p.stdout.readline())
        finally:
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
        self.assertEqual(rec["value"], "three")  # no repeat of one or two
        self.assertEqual(out, b"")
        self.assertEqual(run("tail", "--log", self.log, "--from", "kafka:0=1@1").returncode, 2)

    def test_copy_preserves_and_does_not_duplicate(self):
        for i in range(5):
            self.assertEqual(self.append("c%d" % (i % 2), "v%d" % i, "--header", "n=%d" % i)
                             .returncode, 0)
        dst = "file:" + os.path.join(self.tmp, "copy")
        r = run("copy", "--from", self.log, "--to", dst)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"copied=5 skipped=0\n")
        strip = lambda recs: [(x["stream"], x["version"], x["value"], x["headers"]) for x in recs]
        self.assertEqual(strip(read_json(dst)), strip(read_json(self.log)))
        self.assertEqual(self.append("c0", "later").returncode, 0)
        r = run("copy", "--from", self.log, "--to", dst)
        self.assertEqual(r.stdout, b"copied=1 skipped=5\n")
        self.assertEqual(strip(read_json(dst)), strip(read_json(self.log)))
        # Copying into a log of another URL form (a plain path) is the same log.
        r = run("copy", "--from", self.log, "--to", dst[len("file:"):])
        self.assertEqual(r.stdout, b"copied=0 skipped=6\n")
        self.assertEqual(run("copy", "--from", self.log).returncode, 2)
        self.assertEqual(run("copy", "--from", os.path.join(self.tmp, "none"), "--to",
                             dst).returncode, 2)

    def test_append_waits_for_the_writer_lock(self):
        self.assertEqual(self.append("l", "first").returncode, 0)
        fd = os.open(os.path.join(self.tmp, "log", "LOCK"), os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            t0 = time.monotonic()
            r = self.append("l", "refused", "--lock-timeout", "0.3")
            self.assertEqual(r.returncode, 2)
            self.assertIn(b"locked", r.stderr)
            self.assertGreaterEqual(time.monotonic() - t0, 0.3)
            release = threading.Timer(0.5, lambda: fcntl.lockf(fd, fcntl.LOCK_UN))
            release.start()
            r = self.append("l", "waited")
            release.join()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"version=2", r.stdout)
        finally:
            os.close(fd)
        self.assertEqual([x["value"] for x in read_json(self.log)], ["first", "waited"])


class EventsCliKafka(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tools = os.environ.get("CAIRN_TOOLS_DIR")
        if not tools or not os.access(os.path.join(tools, "cairn-mock-kafka"), os.X_OK):
            raise AssertionError("no cairn-mock-kafka in CAIRN_TOOLS_DIR=%r" % tools)
        cls.mock = subprocess.Popen([os.path.join(tools, "cairn-mock-kafka"), "--topic", "cli:3",
                                     "--topic", "clean:1", "--topic", "tail:2"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        cls.bootstrap = cls.mock.stdout.readline().decode().strip()
        if not cls.bootstrap:
            cls.mock.kill()
            raise AssertionError("cairn-mock-kafka printed no bootstrap address")

    @classmethod
    def tearDownClass(cls):
        cls.mock.send_signal(signal.SIGTERM)
        cls.mock.wait(timeout=30)

    def url(self, topic):
        return "kafka:%s?topic=%s" % (self.bootstrap, topic)

    def test_append_conflict_read_copy(self):
        log = self.url("cli")
        r = run("append", "--log", log, "--stream", "k-1", "--expect", "none", "--type", "T", "a")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(b"stream=k-1 version=1 position="), r.stdout)
        r = run("append", "--log", log, "--stream", "k-1", "--expect", "none", "b")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(b"actual=1", r.stderr)
        for i in range(2, 6):
            r = run("append", "--log", log, "--stream", "k-%d" % (i % 3), "v%d" % i)
            self.assertEqual(r.returncode, 0, r.stderr)
        recs = read_json(log)
        self.assertEqual(sorted(x["value"] for x in recs), ["a", "v2", "v3", "v4", "v5"])
        first = [x for x in recs if x["value"] == "a"][0]
        self.assertEqual((first["version"], first["headers"]), (1, {"cairn.type": "T"}))
        # file -> kafka, kafka -> a clean one-partition topic; re-runs copy nothing.
        tmp = tempfile.mkdtemp(prefix="cairn-events-cli-")
        try:
            src = "file:" + os.path.join(tmp, "src")
            for i in range(3):
                r = run("append", "--log", src, "--stream", "f-%d" % (i % 2), "f%d" % i)
                self.assertEqual(r.returncode, 0, r.stderr)
            r = run("copy", "--from", src, "--to", log)
            self.assertEqual((r.returncode, r.stdout), (0, b"copied=3 skipped=0\n"), r.stderr)
            r = run("copy", "--from", src, "--to", log)
            self.assertEqual(r.stdout, b"copied=0 skipped=3\n")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        clean = self.url("clean")
        r = run("copy", "--from", log, "--to", clean)
        self.assertEqual((r.returncode, r.stdout), (0, b"copied=8 skipped=0\n"), r.stderr)
        key = lambda x: (x["stream"], x["version"], x["value"], x["headers"])
        self.assertEqual(sorted(map(key, read_json(clean))), sorted(map(key, read_json(log))))
        self.assertEqual(run("copy", "--from", log, "--to", clean).stdout,
                         b"copied=0 skipped=8\n")

    def test_tail_resumes_from_kafka_checkpoint(self):
        log = self.url("tail")
        self.assertEqual(run("append", "--log", log, "--stream", "t", "one").returncode, 0)
        p = subprocess.Popen([CAIRN, "events", "tail", "--log", log, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(json.loads(p.stdout.readline())["value"], "one")
        finally:
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=30)
        cp = err.decode().strip().split("checkpoint=")[-1]
        self.assertTrue(cp.startswith("kafka:"), err)
        self.assertEqual(run("append", "--log", log, "--stream", "t", "two").returncode, 0)
        p = subprocess.Popen([CAIRN, "events", "tail", "--log", log, "--from", cp, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.assertEqual(json.loads(p.stdout.readline())["value"], "two")
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=30)


if __name__ == "__main__":
    unittest.main(verbosity=2)
