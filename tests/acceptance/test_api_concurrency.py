# SPDX-License-Identifier: MIT
"""test_api_concurrency.py - REST acceptance: racing writers and connection reuse.

Registrations race in real deployments (every producer instance registers
its schema at start-up): the same schema sent by many clients at once must
end as one version with one id, and distinct schemas sent at once must get
distinct ids and gap-free versions. Clients also reuse connections
(keep-alive, pipelining, chunked bodies), including after error answers.
"""

import http.client
import json
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import ApiAssertions, CairnServer, record, run_tests  # noqa: E402

SRV = None
CT = 'application/vnd.schemaregistry.v1+json'


def setUpModule():
    global SRV
    SRV = CairnServer()


def tearDownModule():
    if SRV:
        SRV.cleanup()


def race(n, fn):
    """Runs fn(i) in n threads released together; returns the results by i."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as e:  # reported by the caller's assertions
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


class Races(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def test_same_schema_same_subject_one_version(self):
        schema = json.dumps(record('RaceSame', ('a', 'int')))
        got = race(16, lambda i: SRV.call('POST', '/subjects/race-same/versions',
                                          {'schema': schema}))
        for r in got:
            self.assertNotIsInstance(r, Exception, r)
            self.assertEqual(r[0], 200, r)
        self.assertEqual(len({r[2]['id'] for r in got}), 1)
        self.assertEqual(self.versions('race-same'), [1])

    def test_same_schema_many_subjects_one_id(self):
        schema = json.dumps(record('RaceShared', ('a', 'int')))
        got = race(16, lambda i: SRV.call('POST', '/subjects/race-shared-%02d/versions' % i,
                                          {'schema': schema}))
        for r in got:
            self.assertNotIsInstance(r, Exception, r)
            self.assertEqual(r[0], 200, r)
        ids = {r[2]['id'] for r in got}
        self.assertEqual(len(ids), 1, ids)
        self.assertEqual(len(self.ok('GET', '/schemas/ids/%d/subjects' % ids.pop())), 16)

    def test_distinct_compatible_schemas_one_subject(self):
        def reg(i):
            schema = record('RaceEvolve', ('a', 'string'), ('x%d' % i, 'string', ''))
            return SRV.call('POST', '/subjects/race-evolve/versions',
                            {'schema': json.dumps(schema)})
        got = race(12, reg)
        for r in got:
            self.assertNotIsInstance(r, Exception, r)
            self.assertEqual(r[0], 200, r)
        ids = [r[2]['id'] for r in got]
        self.assertEqual(len(set(ids)), 12)
        self.assertEqual(self.versions('race-evolve'), list(range(1, 13)))
        seen = set()
        for v in range(1, 13):
            got_v = self.ok('GET', '/subjects/race-evolve/versions/%d' % v)
            seen.add(got_v['id'])
            field = json.loads(got_v['schema'])['fields'][1]['name']
            self.assertEqual(got_v['id'], ids[int(field[1:])])
        self.assertEqual(seen, set(ids))

    def test_readers_during_writes(self):
        self.register('race-read', record('RaceRead', ('a', 'int')))

        def work(i):
            if i % 2:
                schema = record('RaceW%d' % i, ('w', 'int'))
                return SRV.call('POST', '/subjects/race-w-%d/versions' % i,
                                {'schema': json.dumps(schema)})[0]
            return SRV.call('GET', '/subjects/race-read/versions/latest')[0]
        got = race(16, work)
        self.assertEqual(got, [200] * 16)


class ConnectionReuse(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def test_keep_alive_mixed_requests_and_errors(self):
        conn = http.client.HTTPConnection(SRV.host, SRV.port, timeout=10)
        try:
            plan = [
                ('POST', '/subjects/ka/versions', {'schema': json.dumps(record('Ka', ('a', 'int')))},
                 CT, 200),
                ('GET', '/subjects/ka/versions/1', None, None, 200),
                ('GET', '/subjects/ka-none/versions', None, None, 404),
                ('POST', '/subjects/ka/versions', {'schema': '{"type":"nope"}'}, CT, 422),
                ('POST', '/subjects/ka/versions', b'{broken', CT, 400),
                ('POST', '/subjects/ka/versions', {'schema': '"int"'}, 'text/plain', 415),
                ('GET', '/nope', None, None, 404),
                ('PUT', '/subjects', None, None, 405),
                ('GET', '/subjects/ka/versions/abc', None, None, 422),
                ('POST', '/subjects/ka', {'schema': json.dumps(record('Ka', ('a', 'int')))}, CT,
                 200),
                ('GET', '/subjects/ka/versions', None, None, 200),
            ]
            for n in range(3):
                for method, path, body, ctype, want in plan:
                    data = None
                    hdrs = {}
                    if body is not None:
                        data = body if isinstance(body, bytes) else json.dumps(body).encode()
                        hdrs['Content-Type'] = ctype
                    conn.request(method, path, body=data, headers=hdrs)
                    resp = conn.getresponse()
                    payload = resp.read()
                    self.assertEqual(resp.status, want, '%s %s round %d: %r'
                                     % (method, path, n, payload[:200]))
                    json.loads(payload)
        finally:
            conn.close()
        self.assertEqual(self.versions('ka'), [1])

    def raw_exchange(self, data, responses):
        s = socket.create_connection((SRV.host, SRV.port), timeout=10)
        try:
            s.sendall(data)
            f = s.makefile('rb')
            out = []
            for _ in range(responses):
                status = f.readline()
                length = None
                while True:
                    line = f.readline()
                    if line in (b'\r\n', b''):
                        break
                    k, _, v = line.decode().partition(':')
                    if k.strip().lower() == 'content-length':
                        length = int(v.strip())
                self.assertIsNotNone(length, 'no Content-Length in answer %r' % status)
                out.append((int(status.split()[1]), f.read(length)))
            return out
        finally:
            s.close()

    def test_pipelined_requests(self):
        body = json.dumps({'schema': json.dumps(record('Pipe', ('p', 'int')))}).encode()
        req = (b'POST /subjects/pipe/versions HTTP/1.1\r\nHost: x\r\nContent-Type: ' + CT.encode() +
               b'\r\nContent-Length: ' + str(len(body)).encode() + b'\r\n\r\n' + body)
        get = b'GET /subjects/pipe/versions HTTP/1.1\r\nHost: x\r\n\r\n'
        got = self.raw_exchange(req + get + get, 3)
        self.assertEqual([g[0] for g in got], [200, 200, 200])
        self.assertEqual(json.loads(got[1][1]), [1])

    def test_chunked_body(self):
        body = json.dumps({'schema': json.dumps(record('Chunk', ('c', 'int')))}).encode()
        chunks = b''
        for i in range(0, len(body), 7):
            part = body[i:i + 7]
            chunks += b'%x\r\n' % len(part) + part + b'\r\n'
        chunks += b'0\r\n\r\n'
        req = (b'POST /subjects/chunk/versions HTTP/1.1\r\nHost: x\r\nContent-Type: ' +
               CT.encode() + b'\r\nTransfer-Encoding: chunked\r\n\r\n' + chunks)
        got = self.raw_exchange(req, 1)
        self.assertEqual(got[0][0], 200, got)
        self.assertIsInstance(json.loads(got[0][1])['id'], int)
        self.assertEqual(self.versions('chunk'), [1])

    def test_many_open_connections_do_not_block_service(self):
        socks = []
        try:
            for _ in range(100):
                socks.append(socket.create_connection((SRV.host, SRV.port), timeout=10))
            self.assertEqual(self.ok('GET', '/'), {})
        finally:
            for s in socks:
                s.close()
        self.assertEqual(self.ok('GET', '/'), {})


if __name__ == '__main__':
    run_tests()
