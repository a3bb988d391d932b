# SPDX-License-Identifier: MIT
"""cairn_server.py - start a real `cairn registry serve` for script tests.

The acceptance, client and crash tests all need the same thing: the built
`cairn` binary ($CAIRN_BIN) serving on a free loopback port over a data
directory, a way to talk to it with plain HTTP, and a way to stop it (politely
or with SIGKILL) and start it again on the same directory. This module is that
one place, so every test starts servers the same way and never leaks one.

    sys.path.insert(0, os.path.join(os.environ['CAIRN_SOURCE_DIR'], 'tests', 'support'))
    from cairn_server import CairnServer
    with CairnServer() as srv:
        status, headers, body = srv.call('GET', '/subjects')

Standard library only (run with /usr/bin/python3).
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json'
SANITIZER_MARKS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:',
                   'ThreadSanitizer', 'SUMMARY: UndefinedBehaviorSanitizer')
LISTEN_RE = re.compile(r'msg="registry listening" listen="([^"]+):(\d+)"')


def _die_with_parent():
    """preexec_fn: SIGKILL the server if the test process dies first (Linux).

    A test killed by a timeout or a broken pipe then leaves no server behind.
    """
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def cairn_bin():
    """The path of the built `cairn`; a clear failure when it is not set up."""
    path = os.environ.get('CAIRN_BIN')
    if not path:
        raise RuntimeError('CAIRN_BIN is not set: it must name the built cairn binary')
    if not os.access(path, os.X_OK):
        raise RuntimeError('CAIRN_BIN=%s is not an executable file' % path)
    return path


class CairnServer:
    """A `cairn registry serve` child process on 127.0.0.1:<free port>.

    data_dir: the registry's data directory; a fresh temporary one (removed
    at stop) when None. extra_args: more command-line flags, e.g.
    ('--max-body', '4096'). start_timeout: seconds to wait for the
    "registry listening" line.
    """

    def __init__(self, data_dir=None, extra_args=(), start_timeout=20.0, start=True):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix='cairn-test-')
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.host = None
        self.url = None
        self.output = []  # every line the server printed (stdout and stderr)
        self.problems = []  # crashes, unclean exits, sanitizer reports
        self._scanned = 0
        self._killed = False
        self._reader = None
        if start:
            self.start()

    # ---- lifecycle ---------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        """Starts the server (again, on the same data dir) and waits until it listens."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError('cairn server already running (pid %d)' % self.proc.pid)
        argv = [cairn_bin(), 'registry', 'serve', '--listen', '127.0.0.1:0',
                '--data', self.data_dir] + self.extra_args
        self._killed = False
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        found = threading.Event()
        proc = self.proc

        def read_lines():
            # Keeps draining the pipe for the server's whole life, so that it
            # never blocks on a full stdout.
            for raw in proc.stdout:
                line = raw.decode('utf-8', 'replace').rstrip('\n')
                self.output.append(line)
                m = LISTEN_RE.search(line)
                if m and not found.is_set():
                    self.host, self.port = m.group(1), int(m.group(2))
                    found.set()
            found.set()

        self._reader = threading.Thread(target=read_lines, daemon=True)
        self._reader.start()
        if not found.wait(self.start_timeout) or self.port is None:
            self._hard_stop()
            raise RuntimeError('cairn registry serve did not report "registry listening" '
                               'within %.0fs; output:\n%s'
                               % (self.start_timeout, '\n'.join(self.output[-40:])))
        self.url = 'http://%s:%d' % (self.host, self.port)
        return self

    def _hard_stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._reader:
            self._reader.join(5)

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to @timeout seconds, then SIGKILL. Returns the exit status.

        A server that does not exit 0 on SIGTERM (crash on shutdown, leak
        report under ASan) is recorded in self.problems.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.problems.append('did not exit within %.0fs of SIGTERM' % timeout)
            else:
                if self.proc.returncode != 0:
                    self.problems.append('exited with status %d on SIGTERM'
                                         % self.proc.returncode)
        elif self.proc.returncode != 0 and not self._killed:
            self.problems.append('died on its own with status %d' % self.proc.returncode)
        if self._reader:
            self._reader.join(5)
        self._scan_output()
        return self.proc.returncode

    def _scan_output(self):
        for line in self.output[self._scanned:]:
            if any(m in line for m in SANITIZER_MARKS):
                self.problems.append(line.strip())
        self._scanned = len(self.output)

    def kill9(self):
        """SIGKILL now (a crash) and reap the process. The data dir stays."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self._killed = True
        elif self.proc is not None and self.proc.returncode != 0 and not self._killed:
            self.problems.append('died on its own with status %d' % self.proc.returncode)
        if self._reader:
            self._reader.join(5)
        self._scan_output()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self, check=True):
        """Stops the server and removes the data dir when this object made it.

        With @check, raises RuntimeError naming what went wrong if the server
        crashed, did not stop cleanly, or printed a sanitizer report.
        """
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if check and self.problems:
            raise RuntimeError('cairn server (pid %s) misbehaved: %s\nlast output:\n%s'
                               % (self.pid, '; '.join(self.problems[:10]),
                                  '\n'.join(self.output[-30:])))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # Do not hide the test's own exception behind a cleanup complaint.
        self.cleanup(check=exc_type is None)
        return False

    # ---- HTTP --------------------------------------------------------------

    def connection(self, timeout=10.0):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(self, method, path, body=None, headers=None, raw=False, timeout=10.0):
        """One request on a new connection.

        body: a dict/list (sent as JSON), str or bytes (sent as is), or None.
        headers: extra headers; Content-Type defaults to the Confluent type
        when a body is sent (pass {'Content-Type': None} to send none).
        Returns (status, headers as a dict with lower-case names, body): the
        body parsed as JSON unless raw=True or it is not JSON (then bytes).
        """
        hdrs = {}
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = bytes(body)
            hdrs['Content-Type'] = CONTENT_TYPE
        for k, v in (headers or {}).items():
            if v is None:
                hdrs.pop(k, None)
            else:
                hdrs[k] = v
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            rheaders = {k.lower(): v for k, v in resp.getheaders()}
            status = resp.status
        finally:
            conn.close()
        if raw:
            return status, rheaders, payload
        try:
            return status, rheaders, json.loads(payload.decode('utf-8')) if payload else None
        except (ValueError, UnicodeDecodeError):
            return status, rheaders, payload

    def register(self, subject, schema, **extra):
        """POST /subjects/{subject}/versions; schema a dict/list/str. Returns (status, body)."""
        body = {'schema': schema if isinstance(schema, str) else json.dumps(schema)}
        body.update(extra)
        status, _, resp = self.call('POST', '/subjects/%s/versions' % quote(subject), body)
        return status, resp


def quote(segment):
    """Percent-encodes one path segment (slashes included), as Confluent clients do."""
    from urllib.parse import quote as q
    return q(segment, safe='')


def wait_until(pred, timeout=5.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def run_tests(module_name='__main__'):
    """unittest main for a script test: verbose, one summary line, exit 1 on failure."""
    import sys
    import unittest
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module_name])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    name = os.path.basename(sys.argv[0])
    bad = len(result.failures) + len(result.errors)
    print('summary: %s ran=%d failed=%d errors=%d skipped=%d -> %s'
          % (name, result.testsRun, len(result.failures), len(result.errors),
             len(result.skipped), 'OK' if bad == 0 and not result.skipped else 'FAIL'))
    sys.exit(0 if bad == 0 and not result.skipped and result.testsRun > 0 else 1)


def record(name, *fields, namespace=None):
    """An Avro record schema as a dict; fields as (name, type) or (name, type, default)."""
    out = {'type': 'record', 'name': name, 'fields': []}
    if namespace:
        out['namespace'] = namespace
    for f in fields:
        fd = {'name': f[0], 'type': f[1]}
        if len(f) > 2:
            fd['default'] = f[2]
        out['fields'].append(fd)
    return out


class ApiAssertions:
    """Mix-in for unittest.TestCase classes that talk to self.srv."""

    srv = None

    def call(self, method, path, body=None, headers=None, raw=False):
        return self.srv.call(method, path, body, headers, raw)

    def ok(self, method, path, body=None, headers=None, raw=False, status=200):
        """A request that must succeed with @status; returns the body."""
        st, hd, resp = self.srv.call(method, path, body, headers, raw)
        self.assertEqual(st, status, '%s %s: expected HTTP %d, got %d: %r'
                         % (method, path, status, st, resp))
        return resp

    def err(self, method, path, body=None, http_status=None, code=None, headers=None):
        """A request that must fail with a Confluent error body; returns the body."""
        st, hd, resp = self.srv.call(method, path, body, headers)
        if http_status is not None:
            self.assertEqual(st, http_status, '%s %s: expected HTTP %d, got %d: %r'
                             % (method, path, http_status, st, resp))
        else:
            self.assertTrue(400 <= st < 500, '%s %s: expected a 4xx, got %d: %r'
                            % (method, path, st, resp))
        self.assertIsInstance(resp, dict, '%s %s: error body is not a JSON object: %r'
                              % (method, path, resp))
        self.assertIn('error_code', resp, '%s %s: no error_code in %r' % (method, path, resp))
        self.assertIn('message', resp, '%s %s: no message in %r' % (method, path, resp))
        self.assertIsInstance(resp['message'], str)
        self.assertIsInstance(resp['error_code'], int)
        if code is not None:
            self.assertEqual(resp['error_code'], code, '%s %s: expected error_code %d, got %r'
                             % (method, path, code, resp))
        return resp

    def register(self, subject, schema, query='', **extra):
        """Registers and asserts 200 {"id": n}; returns n."""
        body = {'schema': schema if isinstance(schema, str) else json.dumps(schema)}
        body.update(extra)
        resp = self.ok('POST', '/subjects/%s/versions%s' % (quote(subject), query), body)
        self.assertIsInstance(resp, dict)
        self.assertIsInstance(resp.get('id'), int, 'register answered %r' % (resp,))
        self.assertGreater(resp['id'], 0)
        return resp['id']

    def versions(self, subject, query=''):
        return self.ok('GET', '/subjects/%s/versions%s' % (quote(subject), query))

    def subjects(self, query=''):
        return self.ok('GET', '/subjects%s' % query)
