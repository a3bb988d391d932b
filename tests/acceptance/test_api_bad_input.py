# SPDX-License-Identifier: MIT
"""test_api_bad_input.py - REST acceptance: hostile and broken requests, content types, routing.

Each bad request must get a clear 4xx with a Confluent error body
({"error_code": int, "message": str}) and must store nothing (checked with
GET /subjects?deleted=true afterwards). Connection-level abuse (a client that
stalls half-way, one that half-closes, one that resets) must neither crash
the server nor stop it from serving others.
"""

import json
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import ApiAssertions, CairnServer, quote, record, run_tests  # noqa: E402

SRV = None
GOOD = record('Good', ('a', 'string'))
CT = 'application/vnd.schemaregistry.v1+json'


def setUpModule():
    global SRV
    SRV = CairnServer()


def tearDownModule():
    if SRV:
        SRV.cleanup()


class Base(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def assert_nothing_stored(self, *subjects):
        listed = self.subjects('?deleted=true')
        for s in subjects:
            self.assertNotIn(s, listed)


class BadBodies(Base):
    def test_malformed_json_400(self):
        for body in ('{"schema": ', 'not json at all', '{"schema": "x"} trailing', '',
                     '[1, 2]', '"just a string"'):
            with self.subTest(body=body):
                resp = self.err('POST', '/subjects/bad-json/versions', body.encode())
                self.assertIn(resp['error_code'], (400, 42201, 422), resp)
        resp = self.err('POST', '/subjects/bad-json/versions', b'{"schema": ',
                        http_status=400, code=400)
        self.assertTrue(resp['message'])
        self.assert_nothing_stored('bad-json')

    def test_missing_or_empty_schema_42201(self):
        for body in ({}, {'schemaType': 'AVRO'}, {'schema': None}, {'schema': ''}):
            with self.subTest(body=body):
                self.err('POST', '/subjects/bad-missing/versions', body, http_status=422,
                         code=42201)
        self.assert_nothing_stored('bad-missing')

    def test_non_string_schema_refused(self):
        # Confluent's Jackson binding answers 400 for an object where a string
        # is expected (schema-registry issue #2729); 42201 is as clear.
        for body in ({'schema': 42}, {'schema': {'type': 'string'}}, {'schema': ['int']},
                     {'schema': True}):
            with self.subTest(body=body):
                resp = self.err('POST', '/subjects/bad-nonstring/versions', body)
                self.assertIn(resp['error_code'], (400, 42201), resp)
        self.assert_nothing_stored('bad-nonstring')

    def test_invalid_avro_42201(self):
        cases = {
            'bad type': {'type': 'nonsense'},
            'bad field type': record('R', ('a', 'strang')),
            'default of wrong type': record('R', ('a', 'int', 'not an int')),
            'duplicate field': record('R', ('a', 'int'), ('a', 'string')),
            'record without name': {'type': 'record', 'fields': []},
            'enum duplicate symbol': {'type': 'enum', 'name': 'E', 'symbols': ['A', 'A']},
            'union nested union': ['null', ['int', 'string']],
            'bad name': record('1Bad', ('a', 'int')),
            'union default not first branch': record('R', ('f', ['null', 'int'], 5)),
            'union null default, null not first': record('R', ('f', ['int', 'null'], None)),
            'enum default not a symbol': {'type': 'enum', 'name': 'E', 'symbols': ['A'],
                                          'default': 'Z'},
            'name defined twice': record('R', ('a', {'type': 'fixed', 'name': 'F', 'size': 2}),
                                         ('b', {'type': 'fixed', 'name': 'F', 'size': 3})),
            'unknown named type': record('R', ('a', 'com.acme.Nowhere')),
            'fixed without size': {'type': 'fixed', 'name': 'Fx'},
            'array without items': {'type': 'array'},
        }
        for n, (what, schema) in enumerate(cases.items()):
            subject = 'bad-avro-%d' % n
            with self.subTest(case=what):
                self.err('POST', '/subjects/%s/versions' % subject,
                         {'schema': json.dumps(schema)}, http_status=422, code=42201)
                self.assert_nothing_stored(subject)
        self.err('POST', '/subjects/bad-avro-text/versions', {'schema': '{not json'},
                 http_status=422, code=42201)
        self.assert_nothing_stored('bad-avro-text')

    def test_deep_nesting_is_refused_or_accepted_never_a_crash(self):
        for depth in (100, 1000, 3000, 40000):  # 40000 levels: ~1.3 MB, under the 2 MiB cap
            text = '{"type":"array","items":' * depth + '"int"' + '}' * depth
            with self.subTest(depth=depth):
                st, _, resp = self.call('POST', '/subjects/bad-deep-%d/versions' % depth,
                                        {'schema': text})
                self.assertTrue(st == 200 or 400 <= st < 500, (st, resp))
                if st != 200:
                    self.assertIn(resp.get('error_code'), (400, 413, 42201), resp)
            self.assertTrue(SRV.alive(), 'server died on a schema nested %d deep' % depth)
        # deep JSON (not a schema) in the request body itself
        body = '{"schema": "\\"int\\"", "x": ' + '[' * 100000 + ']' * 100000 + '}'
        st, _, _ = self.call('POST', '/subjects/bad-deep-body/versions', body.encode())
        self.assertTrue(st == 200 or 400 <= st < 500, st)
        self.assertTrue(SRV.alive(), 'server died on a deeply nested request body')
        self.assertEqual(self.ok('GET', '/'), {})

    def test_unsupported_schema_type_42201(self):
        self.err('POST', '/subjects/bad-stype/versions',
                 {'schema': json.dumps(GOOD), 'schemaType': 'XML'}, http_status=422, code=42201)
        self.assert_nothing_stored('bad-stype')

    def test_lookup_invalid_schema_42201(self):
        self.register('bad-lookup', GOOD)
        self.err('POST', '/subjects/bad-lookup', {'schema': '{"type":"nonsense"}'},
                 http_status=422, code=42201)


class BadQueries(Base):
    def test_bad_boolean_and_integer_query_values_400(self):
        for q in ('deleted=maybe', 'deleted=1x', 'offset=-1', 'offset=x', 'limit=abc',
                  'limit=-2', 'offset=99999999999'):
            with self.subTest(query=q):
                self.err('GET', '/subjects?' + q, http_status=400, code=400)
        self.err('POST', '/subjects/bq/versions?normalize=perhaps',
                 {'schema': json.dumps(GOOD)}, http_status=400, code=400)
        self.assert_nothing_stored('bq')

    def test_booleans_are_case_insensitive(self):
        self.register('bq-case', record('BqCase', ('q', 'int')))
        self.ok('DELETE', '/subjects/bq-case')
        self.assertIn('bq-case', self.subjects('?deleted=TRUE'))
        self.assertNotIn('bq-case', self.subjects('?deleted=False'))

    def test_query_values_are_percent_decoded(self):
        self.register('bq/x y', record('BqDecode', ('q', 'int')))
        self.assertEqual(self.subjects('?subjectPrefix=bq%2Fx%20'), ['bq/x y'])
        self.assertEqual(self.subjects('?subjectPrefix=bq%2Fx+'), ['bq/x y'])


class BadPaths(Base):
    def test_unknown_subject_and_id(self):
        self.err('GET', '/subjects/bad-nobody/versions', http_status=404, code=40401)
        self.err('GET', '/schemas/ids/987654', http_status=404, code=40403)

    def test_invalid_version_strings_42202(self):
        self.register('bad-ver', GOOD)
        for v in ('abc', '0', '-2', '99999999999', '2147483648', '1.5', '%20', 'latestx'):
            with self.subTest(version=v):
                self.err('GET', '/subjects/bad-ver/versions/' + v, http_status=422, code=42202)
        self.err('DELETE', '/subjects/bad-ver/versions/abc', http_status=422, code=42202)
        self.err('GET', '/subjects/bad-ver/versions/0/schema', http_status=422, code=42202)
        self.err('GET', '/subjects/bad-ver/versions/-2/referencedby', http_status=422,
                 code=42202)
        self.assertEqual(self.versions('bad-ver'), [1])

    def test_largest_valid_version_is_not_found(self):
        self.register('bad-ver-max', GOOD)
        self.err('GET', '/subjects/bad-ver-max/versions/2147483647', http_status=404,
                 code=40402)

    def test_slash_in_subject_percent_encoded(self):
        slash = record('Slash', ('s', 'bytes'))
        i = self.register('a/b', slash)
        self.assertIn('a/b', self.subjects())
        got = self.ok('GET', '/subjects/a%2Fb/versions/1')
        self.assertEqual(got['subject'], 'a/b')
        self.assertEqual(got['id'], i)
        self.assertEqual(self.ok('GET', '/subjects/a%2fb/versions'), [1])
        self.assertEqual(self.ok('POST', '/subjects/a%2Fb', {'schema': json.dumps(slash)})['id'],
                         i)
        self.assertEqual(self.ok('GET', '/schemas/ids/%d/subjects' % i), ['a/b'])
        # the unencoded form is another path altogether
        st, _, _ = self.call('GET', '/subjects/a/b/versions/1')
        self.assertTrue(400 <= st < 500, st)

    def test_space_and_unicode_subject(self):
        i = self.register('sp ace-\u00e9', GOOD)
        self.assertIn('sp ace-\u00e9', self.subjects())
        self.assertEqual(self.ok('GET', '/subjects/sp%20ace-%C3%A9/versions/1')['id'], i)

    def test_quotes_and_backslashes_in_subject_are_escaped_everywhere(self):
        s = 'we"ird\\sub\u00e9 \u2603'
        q = quote(s)
        i = self.register(s, record('Weird', ('w', 'int')))
        self.assertIn(s, self.subjects())
        self.assertEqual(self.ok('GET', '/subjects/%s/versions/1' % q)['subject'], s)
        self.assertEqual(self.ok('GET', '/schemas/ids/%d/subjects' % i), [s])
        self.assertEqual(self.ok('GET', '/schemas/ids/%d/versions' % i),
                         [{'subject': s, 'version': 1}])
        # error bodies naming the subject stay valid JSON (err() parses them)
        self.err('POST', '/subjects/%s/versions' % q,
                 {'schema': json.dumps(record('Weird', ('w', 'string')))}, http_status=409,
                 code=409)
        self.err('GET', '/subjects/%s/versions/9' % q, http_status=404, code=40402)
        self.err('GET', '/subjects/%s-nope/versions' % q, http_status=404, code=40401)

    def test_bad_subjects_4xx_nothing_stored(self):
        before = self.subjects('?deleted=true')
        long_subject = 'x' * 300
        for seg in ('a%00b', '%00', '..', '%2E%2E', '.', 'a%01b', '%1F', 'a%7Fb', long_subject,
                    'bad%zz', 'bad%', 'bad%C3', '%FF%FE'):
            with self.subTest(subject=seg):
                self.err('POST', '/subjects/%s/versions' % seg, {'schema': json.dumps(GOOD)})
                self.err('GET', '/subjects/%s/versions' % seg)
        after = self.subjects('?deleted=true')
        self.assertEqual(before, after)

    def test_subject_of_255_bytes_is_fine(self):
        s = 'y' * 255
        self.register(s, GOOD)
        self.assertIn(s, self.subjects())

    def test_empty_subject_segment_4xx(self):
        before = self.subjects('?deleted=true')
        self.err('POST', '/subjects//versions', {'schema': json.dumps(GOOD)})
        self.err('GET', '/subjects//versions')
        self.assertEqual(before, self.subjects('?deleted=true'))

    def test_unknown_path_404(self):
        for path in ('/nope', '/subjects/x/nope', '/schemas/ids/1/nope', '/subjectsx',
                     '/config/a/b', '/compatibility/subjects/x'):
            with self.subTest(path=path):
                self.err('GET', path, http_status=404, code=404)

    def test_wrong_method_405(self):
        for method, path in (('PUT', '/subjects'), ('DELETE', '/schemas/types'),
                             ('PUT', '/subjects/x/versions'), ('POST', '/schemas/ids/1'),
                             ('PATCH', '/config'), ('GET', '/compatibility/subjects/x/versions'),
                             ('POST', '/mode')):
            with self.subTest(method=method, path=path):
                self.err(method, path, http_status=405, code=405)


class ContentTypes(Base):
    def test_accepted_content_types(self):
        types = [CT, 'application/vnd.schemaregistry+json', 'application/json',
                 'application/octet-stream', 'application/json; charset=utf-8',
                 CT + ';charset=UTF-8', None]
        for n, ctype in enumerate(types):
            with self.subTest(content_type=ctype):
                schema = record('Ct%d' % n, ('a', 'int'))
                st, hd, resp = self.call('POST', '/subjects/ct-%d/versions' % n,
                                         {'schema': json.dumps(schema)},
                                         headers={'Content-Type': ctype})
                self.assertEqual(st, 200, resp)
                self.assertIsInstance(resp.get('id'), int)

    def test_text_plain_415(self):
        self.err('POST', '/subjects/ct-plain/versions', {'schema': json.dumps(GOOD)},
                 headers={'Content-Type': 'text/plain'}, http_status=415, code=415)
        self.err('PUT', '/config', {'compatibility': 'NONE'},
                 headers={'Content-Type': 'text/plain'}, http_status=415, code=415)
        self.assert_nothing_stored('ct-plain')
        self.assertEqual(self.ok('GET', '/config'), {'compatibilityLevel': 'BACKWARD'})

    def test_responses_carry_schemaregistry_content_type(self):
        i = self.register('ct-resp', GOOD)
        for method, path, body in (('GET', '/subjects', None), ('GET', '/', None),
                                   ('GET', '/schemas/ids/%d' % i, None),
                                   ('GET', '/subjects/ct-resp/versions/1', None),
                                   ('POST', '/subjects/ct-resp', {'schema': json.dumps(GOOD)}),
                                   ('GET', '/schemas/ids/99999', None),
                                   ('GET', '/nope', None),
                                   ('POST', '/subjects/ct-resp/versions', b'{oops')):
            with self.subTest(method=method, path=path):
                st, hd, _ = self.call(method, path, body)
                self.assertTrue(hd.get('content-type', '').startswith(CT), (st, hd))


class BodyLimit(ApiAssertions, unittest.TestCase):
    def test_body_over_max_body_413(self):
        with CairnServer(extra_args=('--max-body', '4096')) as srv:
            self.srv = srv
            big = record('Big', *[('field_%03d' % n, 'string') for n in range(200)])
            body = json.dumps({'schema': json.dumps(big)})
            self.assertGreater(len(body), 4096)
            self.err('POST', '/subjects/big/versions', body.encode(), http_status=413, code=413)
            self.assertNotIn('big', self.subjects('?deleted=true'))
            # a body just under the cap still works
            self.register('small', GOOD)
            # a Content-Length over the cap is refused from the headers alone
            s = socket.create_connection((srv.host, srv.port), timeout=10)
            try:
                s.sendall(b'POST /subjects/big2/versions HTTP/1.1\r\nHost: x\r\n'
                          b'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n')
                data = b''
                while b'\r\n\r\n' not in data:
                    try:
                        chunk = s.recv(4096)
                    except (ConnectionResetError, socket.timeout):
                        break
                    if not chunk:
                        break
                    data += chunk
                self.assertTrue(data.startswith(b'HTTP/1.1 413'), data[:200])
            finally:
                s.close()
            # a chunked body (no Content-Length) over the cap
            s = socket.create_connection((srv.host, srv.port), timeout=10)
            try:
                s.sendall(b'POST /subjects/big3/versions HTTP/1.1\r\nHost: x\r\n'
                          b'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n')
                try:
                    for _ in range(3):
                        s.sendall(b'1000\r\n' + b' ' * 4096 + b'\r\n')
                    s.sendall(b'0\r\n\r\n')
                except (BrokenPipeError, ConnectionResetError):
                    pass
                data = b''
                while b'\r\n\r\n' not in data:
                    try:
                        chunk = s.recv(4096)
                    except (ConnectionResetError, socket.timeout):
                        break
                    if not chunk:
                        break
                    data += chunk
                self.assertTrue(data.startswith(b'HTTP/1.1 413'), data[:200])
            finally:
                s.close()
            listed = self.subjects('?deleted=true')
            self.assertNotIn('big3', listed)
            self.assertNotIn('big2', self.subjects('?deleted=true'))


class Connections(ApiAssertions, unittest.TestCase):
    def test_slow_client_cut_after_timeout_others_served(self):
        with CairnServer(extra_args=('--timeout', '2')) as srv:
            self.srv = srv
            slow = socket.create_connection((srv.host, srv.port), timeout=15)
            try:
                slow.sendall(b'POST /subjects/slow/versions HTTP/1.1\r\nHost: x\r\n'
                             b'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n'
                             b'{"schema": "{\\"type\\"')
                t0 = time.time()
                # others are served while the slow one stalls
                for n in range(5):
                    self.assertEqual(self.ok('GET', '/'), {})
                self.register('fast', GOOD)
                self.assertLess(time.time() - t0, 2.0, 'requests waited on the slow client')
                data = b''
                while True:
                    try:
                        chunk = slow.recv(4096)
                    except socket.timeout:
                        self.fail('slow client was not disconnected within 15s')
                    except ConnectionResetError:
                        break
                    if not chunk:
                        break
                    data += chunk
                waited = time.time() - t0
                self.assertGreaterEqual(waited, 1.0, 'cut too early: %.2fs' % waited)
                self.assertLess(waited, 8.0, 'cut too late: %.2fs' % waited)
            finally:
                slow.close()
            self.assertNotIn('slow', self.subjects('?deleted=true'))
            self.assertTrue(srv.alive())
            self.assertEqual(self.ok('GET', '/'), {})

    def test_binary_garbage_connection_cut_after_timeout(self):
        # NUL bytes in the request line: libmicrohttpd neither answers nor
        # closes at once, so the connection timeout must be what ends it.
        with CairnServer(extra_args=('--timeout', '2')) as srv:
            self.srv = srv
            s = socket.create_connection((srv.host, srv.port), timeout=15)
            try:
                s.sendall(b'\x00\x01\x02 garbage \r\n\r\n')
                t0 = time.time()
                try:
                    s.recv(4096)
                except ConnectionResetError:
                    pass
                except socket.timeout:
                    self.fail('binary garbage connection still open after 15s')
                self.assertLess(time.time() - t0, 8.0)
            finally:
                s.close()
            self.assertEqual(self.ok('GET', '/'), {})

    def test_idle_keepalive_connection_cut_after_timeout(self):
        with CairnServer(extra_args=('--timeout', '2')) as srv:
            self.srv = srv
            s = socket.create_connection((srv.host, srv.port), timeout=15)
            try:
                t0 = time.time()
                try:
                    data = s.recv(10)
                except ConnectionResetError:
                    data = b''
                self.assertEqual(data, b'')
                self.assertLess(time.time() - t0, 8.0)
            finally:
                s.close()
            self.assertEqual(self.ok('GET', '/'), {})

    def test_half_closed_and_reset_connections_do_not_crash(self):
        with CairnServer(extra_args=('--timeout', '2')) as srv:
            self.srv = srv
            self.half_closed_and_reset(srv)

    def test_half_closed_incomplete_requests_are_closed_at_once(self):
        # Data and FIN in one segment: the server must see the EOF and close,
        # not wait for its (default, 30 s) idle timeout.
        with CairnServer() as srv:
            self.srv = srv
            for i in range(10):
                s = socket.create_connection((srv.host, srv.port), timeout=5)
                s.sendall(b'GET /subjects HTTP/1.1\r\nHost: x\r\n')
                s.shutdown(socket.SHUT_WR)
                t0 = time.time()
                self.finish(s, 'incomplete headers then SHUT_WR (round %d)' % i)
                self.assertLess(time.time() - t0, 1.0, 'round %d' % i)
            self.assertEqual(self.ok('GET', '/'), {})

    def test_http11_request_without_host_is_refused(self):
        # RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
        with CairnServer() as srv:
            self.srv = srv
            for request, status in ((b'GET / HTTP/1.1\r\n\r\n', b'400'),
                                    (b'GET / HTTP/1.1\r\nHost: x\r\n\r\n', b'200'),
                                    (b'GET / HTTP/1.0\r\n\r\n', b'200')):
                s = socket.create_connection((srv.host, srv.port), timeout=5)
                s.sendall(request)
                if b'1.1' in request:
                    s.shutdown(socket.SHUT_WR)
                data = self.finish(s, repr(request))
                self.assertTrue(data.startswith(b'HTTP/1.1 ' + status), (request, data[:80]))

    def finish(self, s, what):
        """Reads until the server closes; fails if it keeps the socket past its timeout."""
        t0 = time.time()
        data = b''
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            self.fail('%s: connection still open %.0fs later (--timeout 2)'
                      % (what, time.time() - t0))
        finally:
            s.close()
        return data

    def half_closed_and_reset(self, srv):
        # 1. half a request, then shutdown(SHUT_WR)
        s = socket.create_connection((srv.host, srv.port), timeout=8)
        s.sendall(b'POST /subjects/half/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n'
                  b'\r\n{"sch')
        s.shutdown(socket.SHUT_WR)
        self.finish(s, 'half a body then SHUT_WR')
        # 2. a complete request, then SHUT_WR before reading the answer
        s = socket.create_connection((srv.host, srv.port), timeout=8)
        s.sendall(b'GET /subjects HTTP/1.1\r\nHost: x\r\n\r\n')
        s.shutdown(socket.SHUT_WR)
        data = self.finish(s, 'full request then SHUT_WR')
        self.assertTrue(data == b'' or data.startswith(b'HTTP/1.1 200'), data[:100])
        # 3. headers only, then an RST
        s = socket.create_connection((srv.host, srv.port), timeout=8)
        s.sendall(b'POST /subjects/reset/versions HTTP/1.1\r\nHost: x\r\nContent-Length: 80\r\n'
                  b'\r\n')
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
        s.close()
        # 4. garbage instead of HTTP: answered 400 (or closed) at once
        s = socket.create_connection((srv.host, srv.port), timeout=8)
        s.sendall(b'GARBAGE x\r\n\r\n')
        data = self.finish(s, 'garbage request line')
        self.assertTrue(data == b'' or data.startswith(b'HTTP/1.1 400'), data[:100])
        time.sleep(0.2)
        self.assertTrue(srv.alive(), 'server died:\n' + '\n'.join(srv.output[-20:]))
        self.assertEqual(self.ok('GET', '/'), {})
        listed = self.subjects('?deleted=true')
        self.assertNotIn('half', listed)
        self.assertNotIn('reset', listed)

if __name__ == '__main__':
    run_tests()
