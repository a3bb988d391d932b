# SPDX-License-Identifier: MIT
"""test_sigkill.py - registrations survive SIGKILL: acknowledged means durable, nothing half there.

Four client threads register distinct schemas as fast as they can while the
server is killed with SIGKILL at random moments (50-500 ms apart) and
restarted on the same data directory, ten times. A client retries a
registration whose answer it did not get (the server may or may not have
made it durable) until it is acknowledged, exactly as a producer would; a
retry of a stored schema must return the same id and add no version.

After a final SIGKILL, five more SIGKILLs during start-up, and a restart:
- every acknowledged registration is there with the same id and version;
- nothing is there that was never acknowledged (each schema was retried
  until acknowledged, so the stored set equals the acknowledged set);
- every listed version resolves to a schema, versions of a subject are
  1..n with no hole, and ids are unique per distinct schema.
"""

import http.client
import json
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import CairnServer, cairn_bin, quote, record, run_tests  # noqa: E402
import subprocess  # noqa: E402

THREADS = 4
ROUNDS = 10
VERSIONS_PER_SUBJECT = 10
STARTUP_KILLS = 5


def schema_for(tid, n):
    # Same record name within a thread; each version swaps the defaulted
    # field, so every step is BACKWARD compatible and every schema distinct.
    return record('Crash%d' % tid, ('a', 'string'), ('x%d' % n, 'string', ''))


def subject_for(tid, n):
    return 'crash-%d-%03d' % (tid, n // VERSIONS_PER_SUBJECT)


class Shared:
    def __init__(self):
        self.lock = threading.Lock()
        self.addr = None  # (host, port) while a server is up
        self.stop = False
        self.acked = []  # (tid, n, subject, schema dict, id)
        self.unexpected = []  # (status, body) answers other than 200
        self.retries = 0  # requests without an answer (refused or cut), retried
        self.cut = 0  # of which cut mid-request by a kill (not merely refused)


def post(addr, path, body, timeout=5.0):
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)
    try:
        conn.request('POST', path, body=json.dumps(body).encode(),
                     headers={'Content-Type': 'application/vnd.schemaregistry.v1+json'})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def client(shared, tid):
    n = 0
    while True:
        with shared.lock:
            if shared.stop:
                return
            addr = shared.addr
        if addr is None:
            time.sleep(0.005)
            continue
        subject = subject_for(tid, n)
        schema = schema_for(tid, n)
        try:
            status, raw = post(addr, '/subjects/%s/versions' % quote(subject),
                               {'schema': json.dumps(schema)})
        except (OSError, http.client.HTTPException) as e:
            with shared.lock:
                shared.retries += 1
                if not isinstance(e, ConnectionRefusedError):
                    shared.cut += 1
            time.sleep(0.005)  # killed mid-request: retry the same schema
            continue
        if status == 200:
            sid = json.loads(raw)['id']
            with shared.lock:
                shared.acked.append((tid, n, subject, schema, sid))
            n += 1
        else:
            with shared.lock:
                shared.unexpected.append((status, raw[:300]))
            time.sleep(0.01)


class SigkillDuringRegistrations(unittest.TestCase):
    def test_acknowledged_registrations_survive_sigkill(self):
        rnd = random.Random(int(os.environ.get('CAIRN_CRASH_SEED', time.time())))
        srv = CairnServer()
        shared = Shared()
        threads = [threading.Thread(target=client, args=(shared, t), daemon=True)
                   for t in range(THREADS)]
        kills = []
        try:
            with shared.lock:
                shared.addr = (srv.host, srv.port)
            for t in threads:
                t.start()
            for _ in range(ROUNDS):
                time.sleep(rnd.uniform(0.05, 0.5))
                with shared.lock:
                    before = len(shared.acked)
                srv.kill9()
                with shared.lock:
                    shared.addr = None
                kills.append(before)
                srv.start()
                with shared.lock:
                    shared.addr = (srv.host, srv.port)
            time.sleep(0.3)
            with shared.lock:
                shared.stop = True
            for t in threads:
                t.join(30)
                self.assertFalse(t.is_alive(), 'a client thread is stuck')
            # final crash; then kills during start-up (log replay, torn-tail
            # recovery) before the server even listens; then verify
            srv.kill9()
            for _ in range(STARTUP_KILLS):
                p = subprocess.Popen([cairn_bin(), 'registry', 'serve', '--listen', '127.0.0.1:0',
                                      '--data', srv.data_dir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                time.sleep(rnd.uniform(0.0, 0.03))
                p.kill()
                p.wait(10)
            srv.start()
            self.verify(srv, shared, kills)
        finally:
            with shared.lock:
                shared.stop = True
            srv.cleanup()

    def verify(self, srv, shared, kills):
        acked = shared.acked
        print('acknowledged registrations: %d over %d kills (acks at kills: %s), %d retries, '
              '%d requests cut mid-flight' % (len(acked), len(kills), kills, shared.retries,
                                              shared.cut))
        self.assertGreater(shared.cut, 0, 'no kill ever hit a request: the test tested nothing')
        self.assertGreater(len(acked), ROUNDS, 'too few registrations to mean anything')
        self.assertEqual(shared.unexpected, [], 'non-200 answers to valid registrations')

        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)

        def get(path, method='GET', body=None):
            hdrs = {}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                hdrs['Content-Type'] = 'application/vnd.schemaregistry.v1+json'
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b'null')

        try:
            # 1. every acknowledged registration is there, same id; versions in ack order
            last_version = {}
            ack_by_key = {}
            for tid, n, subject, schema, sid in acked:
                st, got = get('/subjects/%s' % quote(subject), 'POST',
                              {'schema': json.dumps(schema)})
                self.assertEqual(st, 200, 'acknowledged %s n=%d id=%d is gone: %r'
                                 % (subject, n, sid, got))
                self.assertEqual(got['id'], sid, 'acknowledged %s n=%d has another id'
                                 % (subject, n))
                self.assertGreater(got['version'], last_version.get(subject, 0),
                                   'versions of %s out of acknowledgement order' % subject)
                last_version[subject] = got['version']
                ack_by_key[(subject, got['version'])] = (schema, sid)

            # 2. everything stored resolves, has no holes, and was acknowledged
            st, subjects = get('/subjects?deleted=true')
            self.assertEqual(st, 200)
            crash_subjects = [s for s in subjects if s.startswith('crash-')]
            self.assertEqual(sorted(crash_subjects), sorted(set(a[2] for a in acked)))
            schema_of_id = {}
            id_of_schema = {}
            stored = 0
            for subject in crash_subjects:
                st, versions = get('/subjects/%s/versions?deleted=true' % quote(subject))
                self.assertEqual(st, 200, versions)
                self.assertEqual(versions, list(range(1, len(versions) + 1)),
                                 'holes in the versions of %s' % subject)
                for v in versions:
                    st, got = get('/subjects/%s/versions/%d' % (quote(subject), v))
                    self.assertEqual(st, 200, '%s v%d is listed but does not resolve: %r'
                                     % (subject, v, got))
                    schema = json.loads(got['schema'])
                    key = json.dumps(schema, sort_keys=True)
                    self.assertIn((subject, v), ack_by_key,
                                  '%s v%d is stored but was never acknowledged' % (subject, v))
                    self.assertEqual(ack_by_key[(subject, v)], (schema, got['id']))
                    if got['id'] in schema_of_id:
                        self.assertEqual(schema_of_id[got['id']], key,
                                         'id %d names two schemas' % got['id'])
                    schema_of_id[got['id']] = key
                    if key in id_of_schema:
                        self.assertEqual(id_of_schema[key], got['id'],
                                         'one schema has two ids')
                    id_of_schema[key] = got['id']
                    st, by_id = get('/schemas/ids/%d' % got['id'])
                    self.assertEqual(st, 200, 'id %d does not resolve' % got['id'])
                    self.assertEqual(json.loads(by_id['schema']), schema)
                    stored += 1
            self.assertEqual(stored, len(acked), 'stored versions != acknowledged registrations')
            # the whole listing in one (large) answer agrees
            st, listing = get('/schemas?subjectPrefix=crash-&deleted=true')
            self.assertEqual(st, 200)
            self.assertEqual(sorted((x['subject'], x['version'], x['id']) for x in listing),
                             sorted((s_, v_, sid) for (s_, v_), (_, sid) in ack_by_key.items()))
            print('verified: %d subjects, %d versions, %d distinct ids'
                  % (len(crash_subjects), stored, len(schema_of_id)))
        finally:
            conn.close()


if __name__ == '__main__':
    run_tests()
