# SPDX-License-Identifier: MIT
"""test_mock_kafka.py - cairn-mock-kafka, the mock-cluster process every Kafka
test talks to: it must print its bootstrap address first, serve real Kafka
clients (kcat, librdkafka through confluent_kafka), obey each control command
(on the Unix socket and on the FIFO) with an observable effect, refuse bad
command lines without dying, and stop with exit 0 on SIGTERM / SIGINT.

Run by ctest (label integration) with CAIRN_TOOLS_DIR set to the build's
tests/ directory, or by hand:
    CAIRN_TOOLS_DIR=build/tests /usr/bin/python3 tests/integration/test_mock_kafka.py
"""
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer

FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def tool_path():
    d = os.environ.get("CAIRN_TOOLS_DIR")
    if not d:
        sys.exit("CAIRN_TOOLS_DIR is not set (the build's tests/ directory)")
    p = os.path.join(d, "cairn-mock-kafka")
    if not os.access(p, os.X_OK):
        sys.exit("no executable %s: build the cairn-mock-kafka target" % p)
    return p


class Mock:
    """One cairn-mock-kafka process; reads its bootstrap line with a deadline."""

    def __init__(self, args, tmp):
        self.err_path = os.path.join(tmp, "mock-%d.err" % time.monotonic_ns())
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([tool_path()] + args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.err)
        self.bootstrap = self.readline(10.0)
        if not self.bootstrap:
            self.kill()
            sys.exit("cairn-mock-kafka printed no bootstrap line: "
                     + open(self.err_path, "rb").read().decode(errors="replace"))

    def readline(self, timeout):
        """One stdout line (stripped) within timeout seconds, or None."""
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            b = os.read(fd, 1)
            if not b:
                return None
            buf += b
        return buf.decode().strip()

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Control:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.f = self.sock.makefile("rwb")

    def send_raw(self, data):
        self.f.write(data)
        self.f.flush()
        return self.f.readline().decode().rstrip("\n")

    def cmd(self, line):
        return self.send_raw(line.encode() + b"\n")

    def close(self):
        self.f.close()
        self.sock.close()


def kcat_produce(bootstrap, topic, partition, lines):
    r = subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", topic, "-p", str(partition),
                        "-K", ":"], input="".join(l + "\n" for l in lines).encode(),
                       capture_output=True, timeout=30)
    return r.returncode


def kcat_consume(bootstrap, topic, partition):
    r = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-p", str(partition),
                        "-o", "beginning", "-e", "-q", "-f", "%k=%s@%o\n"],
                       capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode().splitlines()


def produce_one(bootstrap, topic, partition, timeout_ms=3000, **extra):
    """Produces one message with librdkafka; returns (error or None, seconds)."""
    conf = {"bootstrap.servers": bootstrap, "message.timeout.ms": timeout_ms,
            "enable.idempotence": False, "acks": "all", "retries": 0,
            "linger.ms": 0, "log_level": 0}
    conf.update(extra)
    p = Producer(conf)
    result = []
    t0 = time.monotonic()
    p.produce(topic, value=b"v", key=b"k", partition=partition,
              on_delivery=lambda e, m: result.append(e))
    deadline = time.monotonic() + timeout_ms / 1000.0 + 5
    while not result and time.monotonic() < deadline:
        p.poll(0.05)
    dt = time.monotonic() - t0
    p.flush(2)
    return (result[0] if result else "no delivery report"), dt


def test_socket(tmp):
    sock_path = os.path.join(tmp, "ctl.sock")
    m = Mock(["--brokers", "3", "--topic", "orders:3", "--topic", "one:1",
              "--control", sock_path], tmp)
    try:
        b = m.bootstrap
        check(len(b.split(",")) == 3 and all(x.startswith("127.0.0.1:") for x in b.split(",")),
              "first stdout line is the bootstrap of 3 loopback brokers: %s" % b)

        # Real clients: kcat produces keyed messages and reads them back in order.
        rc = kcat_produce(b, "orders", 1, ["a:one", "b:two", "a:three"])
        check(rc == 0, "kcat produced 3 messages to orders/1")
        rc, got = kcat_consume(b, "orders", 1)
        check(rc == 0 and got == ["a=one@0", "b=two@1", "a=three@2"],
              "kcat consumed them back with keys and offsets: %s" % got)
        rc, got = kcat_consume(b, "orders", 2)
        check(rc == 0 and got == [], "another partition of the topic is empty")

        c = Control(sock_path)
        check(c.cmd("ping") == "ok", "ping answers ok")
        check(c.cmd("bootstrap") == "ok " + b, "bootstrap answers the printed address")

        # topic: created with its partition count, then usable; twice is an error.
        check(c.cmd("topic fresh 2") == "ok", "topic fresh 2 answers ok")
        check(kcat_produce(b, "fresh", 1, ["k:x"]) == 0, "kcat produced to fresh/1")
        rc, got = kcat_consume(b, "fresh", 1)
        check(got == ["k=x@0"], "fresh/1 holds the message: %s" % got)
        r = c.cmd("topic fresh 2")
        check(r.startswith("error") and "exists" in r.lower(), "topic twice: %s" % r)

        # errors: a non-retriable error pushed on Produce fails the next produce
        # with exactly that code, and only COUNT of them.
        r = c.cmd("errors Produce 1 TOPIC_AUTHORIZATION_FAILED")
        check(r == "ok", "errors Produce 1 TOPIC_AUTHORIZATION_FAILED answers ok")
        e, _ = produce_one(b, "one", 0)
        check(e is not None and getattr(e, "name", lambda: "")() == "TOPIC_AUTHORIZATION_FAILED",
              "the next produce failed with TOPIC_AUTHORIZATION_FAILED: %s" % e)
        e, _ = produce_one(b, "one", 0)
        check(e is None, "the produce after it succeeds: %s" % e)
        # numeric forms and clear: pushed errors are dropped by clear.
        check(c.cmd("errors 0 5 29") == "ok", "errors 0 5 29 (numeric) answers ok")
        check(c.cmd("clear Produce") == "ok", "clear Produce answers ok")
        e, _ = produce_one(b, "one", 0)
        check(e is None, "after clear the produce succeeds: %s" % e)
        check(c.cmd("errors 0 2 RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION") == "ok",
              "errors with the RD_KAFKA_RESP_ERR_ prefix answers ok")
        e, _ = produce_one(b, "one", 0, retries=5, **{"retry.backoff.ms": 10})
        check(e is None, "NOT_LEADER_FOR_PARTITION is retried through: %s" % e)

        # leader + down/up: put one:0 on broker 2, take broker 2 down: a produce
        # times out; bring it up: produces again.
        check(c.cmd("leader one 0 2") == "ok", "leader one 0 2 answers ok")
        check(c.cmd("down 2") == "ok", "down 2 answers ok")
        e, _ = produce_one(b, "one", 0, timeout_ms=1500)
        check(e is not None, "with its leader down a produce fails: %s" % e)
        check(c.cmd("up 2") == "ok", "up 2 answers ok")
        e, _ = produce_one(b, "one", 0, timeout_ms=5000)
        check(e is None, "with its leader up again a produce succeeds: %s" % e)

        # rtt: a broker's added round trip shows in the delivery time.
        check(c.cmd("rtt 2 300") == "ok", "rtt 2 300 answers ok")
        e, dt = produce_one(b, "one", 0, timeout_ms=10000)
        check(e is None and dt >= 0.3, "a produce to broker 2 takes >= 300 ms: %.3f s" % dt)
        check(c.cmd("rtt 2 0") == "ok", "rtt 2 0 answers ok")

        # Bad lines get an error and change nothing; the tool stays up.
        bad = ["", "nope", "topic", "topic x", "topic bad/name 1", "topic x 0", "topic x 99999",
               "topic x -1", "topic x 1 extra", "down", "down 0", "down 4", "down x",
               "up 99999999999999999999", "rtt 1", "rtt 1 -5", "rtt 1 1e3", "rtt 9 1",
               "errors", "errors Produce 1", "errors Nope 1 6", "errors 0 0 6", "errors 0 x 6",
               "errors 0 1 NO_SUCH_ERROR", "errors 0 1 0", "clear", "clear Nope",
               "leader one 99 1", "leader one 0 7", "leader one x 1", "leader ../x 0 1",
               "a b c d e f g h i j"]
        for line in bad:
            r = c.cmd(line)
            check(r.startswith("error "), "bad line %r -> %s" % (line, r))
        r = c.send_raw(b"x" * 5000 + b"\n")
        check(r == "error line too long", "a 5000-byte line -> %s" % r)
        r = c.send_raw(b"ping\x00junk\n")
        check(r == "error NUL byte in line", "a line with a NUL -> %s" % r)
        r = c.send_raw(b"ping\r\n")
        check(r == "ok", "a CRLF line is accepted -> %s" % r)
        c2 = Control(sock_path)
        check(c2.cmd("ping") == "ok", "a second connection is served at the same time")
        c2.sock.close()
        check(c.cmd("ping") == "ok", "the first connection still works after the second left")
        c.close()
        rc, got = kcat_consume(b, "orders", 1)
        check(len(got) == 3, "the cluster still serves after the bad lines")
        check(m.proc.poll() is None, "the tool is still running")

        t0 = time.monotonic()
        code = m.stop(signal.SIGTERM)
        dt = time.monotonic() - t0
        check(code == 0, "SIGTERM: exit code %s" % code)
        check(dt < 5, "SIGTERM: stopped in %.2f s" % dt)
        check(not os.path.exists(sock_path), "the control socket is removed on exit")
    finally:
        m.kill()


def test_fifo(tmp):
    fifo = os.path.join(tmp, "ctl.fifo")
    m = Mock(["--topic", "t:2", "--control-fifo", fifo], tmp)
    try:
        check(len(m.bootstrap.split(",")) == 1, "one broker by default: %s" % m.bootstrap)
        # Writers come and go: the tool must keep reading after each closes.
        for line, want in [("ping", "control: ok"), ("topic u 3", "control: ok"),
                           ("down 5", "control: error"), ("rtt 1 0", "control: ok")]:
            with open(fifo, "w") as f:
                f.write(line + "\n")
            r = m.readline(5.0)
            check(r is not None and r.startswith(want), "fifo %r -> %s" % (line, r))
        check(kcat_produce(m.bootstrap, "u", 2, ["k:v"]) == 0, "topic u made over the fifo has partition 2")
        code = m.stop(signal.SIGINT)
        check(code == 0, "SIGINT: exit code %s" % code)
    finally:
        m.kill()


def test_bad_arguments(tmp):
    for args in (["--brokers", "0"], ["--brokers", "x"], ["--topic", "t"], ["--topic", "t:0"],
                 ["--topic", "a/b:1"], ["--nope"], ["--control"],
                 ["--control", "/x/" + "y" * 200]):
        r = subprocess.run([tool_path()] + args, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10)
        check(r.returncode != 0 and r.stdout == b"", "refused %s (exit %d)" % (args, r.returncode))


def test_no_stdin(tmp):
    # CI has no stdin: a closed stdin must not stop the tool.
    m = Mock([], tmp)
    try:
        time.sleep(0.5)
        check(m.proc.poll() is None, "still running with stdin at EOF")
        check(m.stop() == 0, "then SIGTERM stops it with exit 0")
    finally:
        m.kill()


def main():
    with tempfile.TemporaryDirectory(prefix="cairn-mock-kafka-") as tmp:
        test_socket(tmp)
        test_fifo(tmp)
        test_bad_arguments(tmp)
        test_no_stdin(tmp)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
