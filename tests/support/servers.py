# SPDX-License-Identifier: MIT
"""servers.py - real PostgreSQL 15 and Redis 7 for script tests.

Each server runs on 127.0.0.1 on a free port, with its files in a fresh
temporary directory, as a direct child process of the test (so its PID is
known and it is stopped by PID), and is SIGKILLed by the kernel if the test
process dies first (PR_SET_PDEATHSIG). PostgreSQL refuses to run as root: as
root the server and initdb run as the `postgres` user (ENVIRONMENT.md).

    sys.path.insert(0, os.path.join(os.environ['CAIRN_SOURCE_DIR'], 'tests', 'support'))
    from servers import Postgres, Redis
    with Postgres() as pg, Redis() as rd:
        pg.query("SELECT 1")            # -> [['1']]
        rd.command('SET', 'k', 'v')     # -> 'OK'

Standard library only (run with /usr/bin/python3). Clients: psql for
PostgreSQL (rows as lists of strings), a small RESP client for Redis.
"""

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PG_BIN = '/usr/lib/postgresql/15/bin'


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


# A test stopped with SIGTERM (a timeout) unwinds its `with` blocks, so the
# servers are stopped and their directories removed (SIGKILL leaves the
# directories; the servers die anyway through PR_SET_PDEATHSIG).
if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _pdeathsig():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _as_user(name):
    """preexec_fn: become @name (when root), then die with the parent."""
    def fn():
        if os.geteuid() == 0:
            pw = pwd.getpwnam(name)
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        _pdeathsig()  # after setuid, which clears it
    return fn


class Postgres:
    """A PostgreSQL 15 server (fsync off: tests, not durability of PostgreSQL)."""

    def __init__(self, start=True):
        self.dir = tempfile.mkdtemp(prefix='cairn-pg-')
        self.port = None
        self.proc = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam('postgres')
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, 'data')
        r = subprocess.run([os.path.join(PG_BIN, 'initdb'), '-D', self.data, '-U', 'postgres',
                            '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
                           preexec_fn=_as_user('postgres'), capture_output=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError('initdb failed: ' + r.stderr.decode(errors='replace'))
        if start:
            self.start()

    @property
    def conninfo(self):
        return 'host=127.0.0.1 port=%d user=postgres dbname=postgres' % self.port

    def start(self, port=None):
        self.port = port or self.port or free_port()
        self.log = open(os.path.join(self.dir, 'log'), 'ab')
        self.proc = subprocess.Popen(
            [os.path.join(PG_BIN, 'postgres'), '-D', self.data, '-p', str(self.port),
             '-k', self.dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
             '-c', 'max_connections=100'],
            preexec_fn=_as_user('postgres'), stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('postgres exited: ' + self.log_text())
            r = subprocess.run([os.path.join(PG_BIN, 'pg_isready'), '-h', '127.0.0.1',
                                '-p', str(self.port), '-t', '1'], capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError('postgres did not start: ' + self.log_text())

    def log_text(self):
        try:
            with open(os.path.join(self.dir, 'log'), 'rb') as f:
                return f.read().decode(errors='replace')[-2000:]
        except OSError:
            return ''

    def stop(self):
        """Fast shutdown by PID (SIGINT), SIGKILL after 20 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def query(self, sql):
        """Runs @sql with psql; returns the rows as lists of strings."""
        r = subprocess.run(['psql', '-h', '127.0.0.1', '-p', str(self.port), '-U', 'postgres',
                            '-d', 'postgres', '-X', '-q', '-A', '-t', '-F', '\x1f',
                            '-v', 'ON_ERROR_STOP=1', '-c', sql],
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError('psql: %s: %s' % (sql, r.stderr.decode(errors='replace')))
        out = r.stdout.decode()
        return [line.split('\x1f') for line in out.split('\n') if line != '']

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RedisError(Exception):
    pass


class Redis:
    """A Redis 7 server, without persistence (as ENVIRONMENT.md runs it) unless
    @persist: then with an append-only file fsynced per write, so that a
    stop and a start keep the data."""

    def __init__(self, start=True, persist=False):
        self.dir = tempfile.mkdtemp(prefix='cairn-redis-')
        self.persist = persist
        self.port = None
        self.proc = None
        self.sock = None
        if start:
            self.start()

    def start(self, port=None):
        self.port = port or self.port or free_port()
        self.log = open(os.path.join(self.dir, 'log'), 'ab')
        self.proc = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
             '--appendonly', 'yes' if self.persist else 'no', '--appendfsync', 'always',
             '--dir', self.dir, '--daemonize', 'no'],
            preexec_fn=_pdeathsig, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('redis-server exited')
            try:
                if self.command('PING') == 'PONG':
                    return
            except OSError:
                self._drop()
            time.sleep(0.05)
        raise RuntimeError('redis-server did not start')

    def stop(self):
        self._drop()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _drop(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def _read_line(self):
        while b'\r\n' not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError('redis closed the connection')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def _read_exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError('redis closed the connection')
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._read_line()
        kind, rest = line[:1], line[1:]
        if kind == b'+':
            return rest.decode()
        if kind == b'-':
            return RedisError(rest.decode())
        if kind == b':':
            return int(rest)
        if kind == b'$':
            n = int(rest)
            return None if n < 0 else self._read_exact(n).decode()
        if kind == b'*':
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise OSError('bad redis reply %r' % line)

    def command(self, *args):
        if not self.sock:
            self.sock = socket.create_connection(('127.0.0.1', self.port), timeout=10)
            self.buf = b''
        out = b'*%d\r\n' % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b'$%d\r\n%s\r\n' % (len(a), a)
        self.sock.sendall(out)
        r = self._reply()
        if isinstance(r, RedisError):
            raise r
        return r

    def keys(self, pattern='*'):
        """Every key matching @pattern (SCAN), sorted."""
        cursor, found = '0', set()
        while True:
            cursor, batch = self.command('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
            found.update(batch)
            if cursor == '0':
                return sorted(found)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
