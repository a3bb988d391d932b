# SPDX-License-Identifier: MIT
"""test_cli_schema.py - acceptance of `cairn schema check|register|get`, the CI command.

Two kinds of peer:
- a real `cairn registry serve` (tests/support/cairn_server.py) for the
  behaviour a CI job sees: exit 0 compatible, 1 incompatible with reasons
  grouped per version, 2 on any error; register prints id=N; get prints the
  schema; --level checks locally at another level than the subject's;
- a tiny stub HTTP server in this process, for what the real one cannot show:
  the exact request the CLI sends (basic auth, media type, JSON-escaped body,
  percent-encoded subject), answers too large or too slow, and how verbose
  messages of several versions are grouped.
Local --against mode needs no server at all.

Standard library only; run with /usr/bin/python3; needs CAIRN_BIN.
"""

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import CairnServer, cairn_bin, record, run_tests  # noqa: E402

SRV = None
TMP = None

V1 = record('Order', ('id', 'string'), ('amount', 'int'), namespace='shop')
V2_COMPAT = record('Order', ('id', 'string'), ('amount', 'int'), ('note', 'string', ''),
                   namespace='shop')
V2_INCOMPAT = record('Order', ('id', 'string'), ('amount', 'int'), ('currency', 'string'),
                     namespace='shop')


def write(name, content):
    """Writes a file under the test's temporary directory; dicts become JSON."""
    path = os.path.join(TMP, name)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


def cairn(*args, env=None, stdin=None, timeout=60):
    """Runs `cairn schema ...`; returns (exit code, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.pop('CAIRN_REGISTRY_URL', None)
    full_env.pop('CAIRN_REGISTRY_USER', None)
    full_env.pop('CAIRN_REGISTRY_PASSWORD', None)
    full_env.update(env or {})
    p = subprocess.run([cairn_bin(), 'schema'] + list(args), env=full_env, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def closed_port():
    """A loopback port nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def setUpModule():
    global SRV, TMP
    TMP = tempfile.mkdtemp(prefix='cairn-cli-test-')
    SRV = CairnServer()


def tearDownModule():
    if SRV is not None:
        SRV.cleanup()  # SIGTERM by PID, then SIGKILL if it lingers


class Base(unittest.TestCase):
    def run_ok(self, expect, *args, **kw):
        code, out, err = cairn(*args, **kw)
        self.assertEqual(code, expect, 'cairn schema %s: exit %d, expected %d\nstdout:\n%s\n'
                         'stderr:\n%s' % (' '.join(args), code, expect, out, err))
        return out, err


class Help(Base):
    def test_help_of_each_subcommand_exits_0(self):
        out, _ = self.run_ok(0, '--help')
        for sub in ('check', 'register', 'get'):
            self.assertIn(sub, out)
        out, _ = self.run_ok(0, 'check', '--help')
        self.assertIn('--against', out)
        self.assertIn('NEWEST FIRST', out)
        out, _ = self.run_ok(0, 'register', '--help')
        self.assertIn('id=N', out)
        out, _ = self.run_ok(0, 'get', '--help')
        self.assertIn('--id', out)

    def test_usage_errors_exit_2(self):
        self.run_ok(2)
        self.run_ok(2, 'frobnicate')
        _, err = self.run_ok(2, 'check', '--bogus', 'x.avsc')
        self.assertIn("unknown option '--bogus'", err)
        _, err = self.run_ok(2, 'get', '--registry', SRV.url)
        self.assertIn('--subject', err)


class LocalCheck(Base):
    """--against: no registry, files newest first."""

    @classmethod
    def setUpClass(cls):
        cls.v1 = write('loc_v1.avsc', record('L', ('a', 'int')))
        cls.v2 = write('loc_v2.avsc', record('L', ('a', 'int'), ('b', 'string', 'x')))
        # Reads v2's data (b is there) but not v1's (b missing, no default).
        cls.cand = write('loc_cand.avsc', record('L', ('a', 'int'), ('b', 'string')))
        cls.ok = write('loc_ok.avsc', record('L', ('a', 'int'), ('b', 'string', 'x'),
                                             ('c', 'long', 0)))

    def test_compatible_change_exits_0(self):
        out, _ = self.run_ok(0, 'check', '--against', self.v2, '--against', self.v1, self.ok)
        self.assertIn('compatible', out)
        self.assertIn('BACKWARD', out)

    def test_non_transitive_level_uses_the_first_file_given(self):
        # Newest first: v2 is the previous schema, and BACKWARD checks only it.
        self.run_ok(0, 'check', '--against', self.v2, '--against', self.v1, self.cand)
        # Given the other way round, v1 is "the previous" one and fails.
        out, _ = self.run_ok(1, 'check', '--against', self.v1, '--against', self.v2,
                             '--level', 'BACKWARD', self.cand)
        self.assertIn("against '%s'" % self.v1, out)

    def test_transitive_level_names_the_failing_file_and_field(self):
        out, _ = self.run_ok(1, 'check', '--against', self.v2, '--against', self.v1,
                             '--level', 'backward_transitive', self.cand)
        self.assertTrue(out.startswith('incompatible:'), out)
        self.assertIn("against '%s'" % self.v1, out)
        self.assertNotIn("against '%s'" % self.v2, out)
        self.assertIn('b', out.split("against '%s'" % self.v1, 1)[1])

    def test_missing_file_exits_2_naming_it(self):
        missing = os.path.join(TMP, 'no-such.avsc')
        _, err = self.run_ok(2, 'check', '--against', self.v1, missing)
        self.assertIn(missing, err)
        _, err = self.run_ok(2, 'check', '--against', missing, self.v1)
        self.assertIn(missing, err)

    def test_empty_file_exits_2(self):
        empty = write('empty.avsc', '  \n')
        _, err = self.run_ok(2, 'check', '--against', self.v1, empty)
        self.assertIn('empty', err)
        self.assertIn(empty, err)

    def test_invalid_schema_exits_2_with_the_parsers_message(self):
        bad = write('bad_type.avsc', record('L', ('a', 'no.such.Type')))
        _, err = self.run_ok(2, 'check', '--against', self.v1, bad)
        self.assertIn(bad, err)
        self.assertIn('not a valid AVRO schema', err)
        notjson = write('notjson.avsc', '{"type": "record", ')
        _, err = self.run_ok(2, 'check', '--against', self.v1, notjson)
        self.assertIn(notjson, err)

    def test_bad_level_exits_2(self):
        _, err = self.run_ok(2, 'check', '--against', self.v1, '--level', 'SIDEWAYS', self.v1)
        self.assertIn('SIDEWAYS', err)

    def test_schema_from_stdin(self):
        with open(self.ok, 'rb') as f:
            data = f.read()
        self.run_ok(0, 'check', '--against', self.v1, '-', stdin=data)


class RegistryCheck(Base):
    """Against a real `cairn registry serve`."""

    SUBJECT = 'orders-value'

    @classmethod
    def setUpClass(cls):
        cls.v1 = write('orders_v1.avsc', V1)
        cls.compat = write('orders_compat.avsc', V2_COMPAT)
        cls.incompat = write('orders_incompat.avsc', V2_INCOMPAT)
        code, out, err = cairn('register', '--registry', SRV.url, '--subject', cls.SUBJECT,
                               cls.v1)
        if code != 0:
            raise AssertionError('registering v1 failed: %d %s %s' % (code, out, err))
        cls.v1_id = int(out.strip().split('=', 1)[1])

    def test_check_against_a_new_subject_is_compatible(self):
        out, _ = self.run_ok(0, 'check', '--registry', SRV.url, '--subject', 'brand-new-value',
                             self.incompat)
        self.assertIn("compatible: subject 'brand-new-value'", out)

    def test_register_prints_the_id_and_is_idempotent(self):
        out, _ = self.run_ok(0, 'register', '--registry', SRV.url, '--subject', self.SUBJECT,
                             self.v1)
        self.assertEqual(out.strip(), 'id=%d' % self.v1_id)

    def test_compatible_change_exits_0(self):
        out, _ = self.run_ok(0, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                             self.compat)
        self.assertTrue(out.startswith('compatible:'), out)

    def test_incompatible_change_exits_1_with_a_reason_naming_the_field(self):
        out, _ = self.run_ok(1, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                             self.incompat)
        self.assertTrue(out.startswith("incompatible: subject 'orders-value'"), out)
        self.assertIn('against version 1:', out)
        self.assertIn('currency', out.split('against version 1:', 1)[1])

    def test_version_flag_checks_one_version(self):
        self.run_ok(0, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                    '--version', '1', self.compat)
        out, _ = self.run_ok(1, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                             '--version', 'latest', self.incompat)
        self.assertIn('currency', out)

    def test_version_flag_on_missing_version_or_subject_exits_2(self):
        _, err = self.run_ok(2, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                             '--version', '99', self.compat)
        self.assertIn('40402', err)
        self.assertIn("subject 'orders-value'", err)
        _, err = self.run_ok(2, 'check', '--registry', SRV.url, '--subject', 'never-there',
                             '--version', '1', self.compat)
        self.assertIn('40401', err)
        self.assertIn("'never-there' not found", err)

    def test_invalid_schema_exits_2_with_the_registrys_error_code(self):
        bad = write('orders_bad.avsc', record('Order', ('id', 'no.such.Type')))
        _, err = self.run_ok(2, 'check', '--registry', SRV.url, '--subject', self.SUBJECT, bad)
        self.assertIn('42201', err)
        _, err = self.run_ok(2, 'register', '--registry', SRV.url, '--subject', self.SUBJECT,
                             bad)
        self.assertIn('42201', err)

    def test_registering_an_incompatible_schema_exits_1_with_reasons(self):
        out, _ = self.run_ok(1, 'register', '--registry', SRV.url, '--subject', self.SUBJECT,
                             self.incompat)
        self.assertTrue(out.startswith('incompatible:'), out)
        self.assertIn('currency', out)

    def test_registry_url_from_the_environment(self):
        self.run_ok(0, 'check', '--subject', self.SUBJECT, self.compat,
                    env={'CAIRN_REGISTRY_URL': SRV.url})
        _, err = self.run_ok(2, 'check', '--subject', self.SUBJECT, self.compat)
        self.assertIn('CAIRN_REGISTRY_URL', err)

    def test_unreachable_registry_exits_2_and_never_shows_the_password(self):
        port = closed_port()
        _, err = self.run_ok(2, 'check', '--registry', 'http://127.0.0.1:%d' % port,
                             '--subject', self.SUBJECT, self.compat)
        self.assertIn('cannot reach registry', err)
        _, err = self.run_ok(2, 'check', '--registry', 'http://alice:s3cr3t@127.0.0.1:%d' % port,
                             '--subject', self.SUBJECT, self.compat)
        self.assertNotIn('s3cr3t', err)
        self.assertIn('alice:***@127.0.0.1', err)
        _, err = self.run_ok(2, 'check', '--registry', 'ftp://bob:hunter2@127.0.0.1/',
                             '--subject', self.SUBJECT, self.compat)
        self.assertNotIn('hunter2', err)

    def test_missing_file_with_a_registry_exits_2(self):
        missing = os.path.join(TMP, 'gone.avsc')
        _, err = self.run_ok(2, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                             missing)
        self.assertIn(missing, err)


class Get(Base):
    SUBJECT = 'get-value'

    @classmethod
    def setUpClass(cls):
        cls.s1 = record('G', ('a', 'int'))
        cls.s2 = record('G', ('a', 'int'), ('b', 'string', 'x'))
        ids = []
        for i, s in enumerate((cls.s1, cls.s2)):
            code, out, err = cairn('register', '--registry', SRV.url, '--subject', cls.SUBJECT,
                                   write('get_%d.avsc' % i, s))
            if code != 0 or not out.startswith('id='):
                raise AssertionError('register failed: %d %s %s' % (code, out, err))
            ids.append(int(out.strip()[3:]))
        cls.ids = ids

    def field_names(self, text):
        return [f['name'] for f in json.loads(text)['fields']]

    def test_get_by_subject_and_version(self):
        out, _ = self.run_ok(0, 'get', '--registry', SRV.url, '--subject', self.SUBJECT,
                             '--version', '1')
        self.assertEqual(self.field_names(out), ['a'])
        out, _ = self.run_ok(0, 'get', '--registry', SRV.url, '--subject', self.SUBJECT)
        self.assertEqual(self.field_names(out), ['a', 'b'])
        out, _ = self.run_ok(0, 'get', '--registry', SRV.url, '--subject', self.SUBJECT,
                             '--version', 'latest', '--json')
        answer = json.loads(out)
        self.assertEqual(answer['version'], 2)
        self.assertEqual(answer['id'], self.ids[1])
        self.assertEqual(answer['subject'], self.SUBJECT)

    def test_get_by_id(self):
        out, _ = self.run_ok(0, 'get', '--registry', SRV.url, '--id', str(self.ids[0]))
        self.assertEqual(self.field_names(out), ['a'])

    def test_not_found_exits_2_with_the_registrys_message(self):
        _, err = self.run_ok(2, 'get', '--registry', SRV.url, '--subject', self.SUBJECT,
                             '--version', '42')
        self.assertIn('40402', err)
        _, err = self.run_ok(2, 'get', '--registry', SRV.url, '--subject', 'nobody-value')
        self.assertIn('40401', err)
        _, err = self.run_ok(2, 'get', '--registry', SRV.url, '--id', '987654')
        self.assertIn('40403', err)

    def test_subject_with_a_slash_is_percent_encoded(self):
        subject = 'team/a b?c'
        out, _ = self.run_ok(0, 'register', '--registry', SRV.url, '--subject', subject,
                             write('slash.avsc', self.s1))
        self.assertTrue(out.startswith('id='))
        out, _ = self.run_ok(0, 'get', '--registry', SRV.url, '--subject', subject, '--json')
        self.assertEqual(json.loads(out)['subject'], subject)


class Level(Base):
    """--level checks locally at a level other than the subject's own (BACKWARD)."""

    SUBJECT = 'level-value'

    @classmethod
    def setUpClass(cls):
        for i, s in enumerate((record('Lv', ('a', 'int'), ('b', 'string')),
                               record('Lv', ('a', 'int'), ('b', 'string'), ('c', 'int', 0)))):
            code, out, err = cairn('register', '--registry', SRV.url, '--subject', cls.SUBJECT,
                                   write('level_%d.avsc' % i, s))
            if code != 0:
                raise AssertionError('register failed: %d %s %s' % (code, out, err))
        # Dropping b (no default anywhere): new readers are fine (BACKWARD), old
        # readers of new data are not (FORWARD), against both versions.
        cls.cand = write('level_cand.avsc', record('Lv', ('a', 'int'), ('c', 'int', 0)))

    def test_subjects_own_level_and_full_transitive_disagree(self):
        out, _ = self.run_ok(0, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                             self.cand)
        out, _ = self.run_ok(0, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                             '--level', 'BACKWARD', self.cand)
        self.assertIn('BACKWARD', out)
        out, _ = self.run_ok(1, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                             '--level', 'FULL_TRANSITIVE', self.cand)
        self.assertIn('FULL_TRANSITIVE', out)
        self.assertIn('against version 1:', out)
        self.assertIn('against version 2:', out)
        self.assertIn('b', out.split('against version 1:', 1)[1])

    def test_level_on_a_subject_without_versions_is_compatible(self):
        out, _ = self.run_ok(0, 'check', '--registry', SRV.url, '--subject', 'empty-value',
                             '--level', 'FULL_TRANSITIVE', self.cand)
        self.assertIn('nothing to check against', out)

    def test_level_with_an_invalid_candidate_exits_2(self):
        bad = write('level_bad.avsc', '{"type": "record", "name": "Lv", "fields": 3}')
        _, err = self.run_ok(2, 'check', '--registry', SRV.url, '--subject', self.SUBJECT,
                             '--level', 'FULL', bad)
        self.assertIn(bad, err)


class References(Base):
    """--reference on register and check; --level fetches referenced schemas itself."""

    @classmethod
    def setUpClass(cls):
        cls.money = write('ref_money.avsc', record('Money', ('cents', 'long'), namespace='pay'))
        cls.order1 = write('ref_order1.avsc', record('Bill', ('total', 'pay.Money'),
                                                     namespace='pay'))
        cls.order2 = write('ref_order2.avsc', record('Bill', ('total', 'pay.Money'),
                                                     ('n', 'int'), namespace='pay'))
        for args in (('--subject', 'money-value', cls.money),
                     ('--subject', 'bill-value', '--reference', 'pay.Money=money-value:1',
                      cls.order1)):
            code, out, err = cairn('register', '--registry', SRV.url, *args)
            if code != 0:
                raise AssertionError('register failed: %d %s %s' % (code, out, err))

    def test_check_with_references_by_registry_and_at_a_level(self):
        ref = ('--reference', 'pay.Money=money-value:1')
        out, _ = self.run_ok(1, 'check', '--registry', SRV.url, '--subject', 'bill-value',
                             *ref, self.order2)
        self.assertIn("'n'", out)
        # Locally: version 1 of bill-value and the candidate both need pay.Money.
        out, _ = self.run_ok(1, 'check', '--registry', SRV.url, '--subject', 'bill-value',
                             '--level', 'FULL', *ref, self.order2)
        self.assertIn('against version 1:', out)
        self.run_ok(0, 'check', '--registry', SRV.url, '--subject', 'bill-value',
                    '--level', 'FORWARD', *ref, self.order2)
        # Without the reference the candidate cannot be parsed.
        _, err = self.run_ok(2, 'check', '--registry', SRV.url, '--subject', 'bill-value',
                             '--level', 'FULL', self.order2)
        self.assertIn('pay.Money', err)


# ---- a stub registry, to see the requests themselves ------------------------------------

class Stub:
    """Answers every request with self.answer; records the requests it got."""

    def __init__(self):
        self.requests = []
        self.answer = (200, b'{}', 0.0)
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def handle_any(self):
                n = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(n) if n else b''
                stub.requests.append({'method': self.command, 'path': self.path,
                                      'headers': dict(self.headers), 'body': body})
                status, payload, delay = stub.answer
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header('Content-Type', 'application/vnd.schemaregistry.v1+json')
                    self.send_header('Content-Length', str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = handle_any

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Requests(Base):
    @classmethod
    def setUpClass(cls):
        cls.stub = Stub()
        # Quotes, a backslash, non-ASCII: the body must carry the file verbatim.
        cls.text = ('{"type": "record", "name": "Q", "doc": "say \\"hi\\" \\\\ caf\u00e9",\n'
                    ' "fields": [{"name": "a", "type": "int"}]}\n')
        cls.file = write('stub.avsc', cls.text)

    @classmethod
    def tearDownClass(cls):
        cls.stub.close()

    def setUp(self):
        self.stub.requests.clear()
        self.stub.answer = (200, b'{"is_compatible": true}', 0.0)

    def test_request_shape_media_type_escaping_and_encoded_subject(self):
        self.run_ok(0, 'check', '--registry', self.stub.url + '/prefix/', '--subject', 'a/b c',
                    '--type', 'avro', self.file)
        req = self.stub.requests[-1]
        self.assertEqual(req['method'], 'POST')
        self.assertEqual(req['path'],
                         '/prefix/compatibility/subjects/a%2Fb%20c/versions?verbose=true')
        self.assertEqual(req['headers'].get('Content-Type'),
                         'application/vnd.schemaregistry.v1+json')
        body = json.loads(req['body'].decode('utf-8'))
        self.assertEqual(body['schema'], self.text)
        self.assertEqual(body['schemaType'], 'AVRO')
        self.assertNotIn('Authorization', req['headers'])

    def test_basic_auth_from_the_url(self):
        host = self.stub.url[len('http://'):]
        self.run_ok(0, 'check', '--registry', 'http://alice:p%40ss@' + host,
                    '--subject', 's', self.file)
        auth = self.stub.requests[-1]['headers'].get('Authorization')
        self.assertEqual(auth, 'Basic ' + base64.b64encode(b'alice:p@ss').decode())

    def test_basic_auth_from_the_environment(self):
        self.run_ok(0, 'check', '--subject', 's', self.file,
                    env={'CAIRN_REGISTRY_URL': self.stub.url, 'CAIRN_REGISTRY_USER': 'bob',
                         'CAIRN_REGISTRY_PASSWORD': 'hunter2'})
        auth = self.stub.requests[-1]['headers'].get('Authorization')
        self.assertEqual(auth, 'Basic ' + base64.b64encode(b'bob:hunter2').decode())

    def test_reasons_are_grouped_per_version(self):
        messages = [
            "{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE', description:'The field 'x' at "
            "path '/fields/1' in the new schema has no default value and is missing in the old "
            "schema', additionalInfo:'x'}",
            '{oldSchemaVersion: 3}', "{oldSchema: '{\"type\":\"string\"}'}",
            "{validateFields: 'false', compatibility: 'BACKWARD_TRANSITIVE'}",
            "{errorType:'TYPE_MISMATCH', description:'The type (path '/fields/0/type') of a "
            "field in the new schema does not match', additionalInfo:'reader type: INT not "
            "compatible with writer type: STRING'}",
            "{errorType:'NAME_MISMATCH', description:'The name of the schema has changed "
            "(path '/name')', additionalInfo:'expected: Q'}",
            '{oldSchemaVersion: 5}', "{oldSchema: '{}'}", "{compatibility: 'BACKWARD'}",
        ]
        self.stub.answer = (200, json.dumps({'is_compatible': False,
                                             'messages': messages}).encode(), 0.0)
        out, _ = self.run_ok(1, 'check', '--registry', self.stub.url, '--subject', 's',
                             self.file)
        lines = out.splitlines()
        self.assertEqual(lines[0], "incompatible: subject 's' (3 reasons)")
        self.assertEqual(lines[1], 'against version 3:')
        self.assertTrue(lines[2].startswith('  READER_FIELD_MISSING_DEFAULT_VALUE: The field '
                                            "'x' at path '/fields/1'"), lines[2])
        self.assertTrue(lines[2].endswith('(x)'), lines[2])
        self.assertEqual(lines[3], 'against version 5:')
        self.assertTrue(lines[4].startswith('  TYPE_MISMATCH: '), lines[4])
        self.assertTrue(lines[5].startswith('  NAME_MISMATCH: '), lines[5])
        self.assertEqual(len(lines), 6, out)
        self.assertNotIn('oldSchema', out)
        out, _ = self.run_ok(1, 'check', '--registry', self.stub.url, '--subject', 's',
                             '--verbose', self.file)
        self.assertIn("{compatibility: 'BACKWARD'}", out)

    def test_server_error_exits_2_with_code_and_message(self):
        self.stub.answer = (500, b'{"error_code": 50001, "message": "store is on fire"}', 0.0)
        _, err = self.run_ok(2, 'check', '--registry', self.stub.url, '--subject', 's',
                             self.file)
        self.assertIn('50001', err)
        self.assertIn('store is on fire', err)
        self.stub.answer = (200, b'<html>not json</html>', 0.0)
        self.run_ok(2, 'check', '--registry', self.stub.url, '--subject', 's', self.file)
        self.run_ok(2, 'register', '--registry', self.stub.url, '--subject', 's', self.file)

    def test_register_sends_references_and_normalize(self):
        self.stub.answer = (200, b'{"id": 7}', 0.0)
        out, _ = self.run_ok(0, 'register', '--registry', self.stub.url, '--subject', 's',
                             '--normalize', '--reference', 'shop.Money=money-value:2', self.file)
        self.assertEqual(out, 'id=7\n')
        req = self.stub.requests[-1]
        self.assertEqual(req['path'], '/subjects/s/versions?normalize=true')
        body = json.loads(req['body'].decode('utf-8'))
        self.assertEqual(body['references'],
                         [{'name': 'shop.Money', 'subject': 'money-value', 'version': 2}])
        _, err = self.run_ok(2, 'register', '--registry', self.stub.url, '--subject', 's',
                             '--reference', 'nonsense', self.file)
        self.assertIn('NAME=SUBJECT:VERSION', err)

    def test_answer_over_16_mib_exits_2(self):
        self.stub.answer = (200, b'{"is_compatible": true, "pad": "' + b'x' * (17 << 20) + b'"}',
                            0.0)
        _, err = self.run_ok(2, 'check', '--registry', self.stub.url, '--subject', 's',
                             self.file)
        self.assertIn('larger than', err)

    def test_slow_answer_times_out_with_exit_2(self):
        self.stub.answer = (200, b'{"is_compatible": true}', 3.0)
        start = time.time()
        _, err = self.run_ok(2, 'check', '--registry', self.stub.url, '--subject', 's',
                             '--timeout', '1', self.file)
        self.assertLess(time.time() - start, 2.8)
        self.assertIn('did not answer in time', err)


if __name__ == '__main__':
    run_tests()
