# SPDX-License-Identifier: MIT
"""test_api_persistence.py - REST acceptance: the whole state survives restarts, ids never come back.

The registry's state is a fold over its own log, so a graceful restart and a
SIGKILL restart must both give back exactly what the API showed before:
every subject, version, deleted flag, id, schema text, reference, level and
mode. Ids are cached forever by consumers, so an id once handed out must
never name a different schema, even after the schema was hard-deleted.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import ApiAssertions, CairnServer, quote, record, run_tests  # noqa: E402

SRV = None


def setUpModule():
    global SRV
    SRV = CairnServer()


def tearDownModule():
    if SRV:
        SRV.cleanup()


class Persistence(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def build_state(self):
        r = self.register
        r('p-plain', record('P', ('a', 'string')))
        r('p-plain', record('P', ('a', 'string'), ('b', 'int', 7)))
        r('p-plain', record('P', ('a', 'string'), ('b', 'int', 7), ('c', ['null', 'long'], None)))
        self.ok('DELETE', '/subjects/p-plain/versions/2')
        r('p-soft', record('S', ('s', 'bytes')))
        self.ok('DELETE', '/subjects/p-soft')
        r('p-hard', record('H', ('h', 'float')))
        self.ok('DELETE', '/subjects/p-hard')
        self.ok('DELETE', '/subjects/p-hard?permanent=true')
        r('p/slash', record('Sl', ('x', 'double')))
        r('p-norm', record('N', ('n', 'boolean')), query='?normalize=true')
        child = {'type': 'record', 'name': 'Kid', 'namespace': 'p.ns',
                 'fields': [{'name': 'k', 'type': 'int'}]}
        r('p-child', child)
        r('p-parent', {'type': 'record', 'name': 'Mom', 'namespace': 'p.ns',
                       'fields': [{'name': 'kid', 'type': 'p.ns.Kid'}]},
          references=[{'name': 'p.ns.Kid', 'subject': 'p-child', 'version': 1}])
        self.ok('PUT', '/config/p-plain', {'compatibility': 'FULL'})
        self.ok('PUT', '/config', {'compatibility': 'FORWARD_TRANSITIVE'})
        self.ok('PUT', '/mode/p-ro', {'mode': 'READONLY'})
        self.ok('PUT', '/mode/p-imp', {'mode': 'IMPORT'})
        self.ok('POST', '/subjects/p-imp/versions',
                {'schema': json.dumps(record('Imp', ('i', 'int'))), 'id': 777, 'version': 5})

    def dump(self):
        out = {}
        out['subjects'] = self.ok('GET', '/subjects?deleted=true')
        out['live'] = self.ok('GET', '/subjects')
        out['schemas'] = self.ok('GET', '/schemas?deleted=true')
        out['config'] = self.ok('GET', '/config')
        out['mode'] = self.ok('GET', '/mode')
        for s in out['subjects']:
            q = quote(s)
            out['versions:' + s] = self.ok('GET', '/subjects/%s/versions?deleted=true' % q)
            for v in out['versions:' + s]:
                out['v:%s:%d' % (s, v)] = self.ok(
                    'GET', '/subjects/%s/versions/%d?deleted=true' % (q, v))
            out['config:' + s] = self.call('GET', '/config/' + q)[::2]
            out['mode:' + s] = self.call('GET', '/mode/' + q)[::2]
        ids = sorted({x['id'] for x in out['schemas']})
        for i in ids:
            out['id:%d' % i] = self.ok('GET', '/schemas/ids/%d' % i)
            out['idv:%d' % i] = self.ok('GET', '/schemas/ids/%d/versions?deleted=true' % i)
        out['maxId'] = self.ok('GET', '/schemas/ids/%d?fetchMaxId=true' % ids[0])['maxId']
        out['referencedby'] = self.ok('GET', '/subjects/p-child/versions/1/referencedby')
        for s in ('p-ro', 'p-imp'):
            out['mode:' + s] = self.call('GET', '/mode/' + s)[::2]
        return out

    def test_state_identical_after_graceful_and_sigkill_restarts(self):
        self.build_state()
        before = self.dump()
        self.assertEqual(before['maxId'], 777)
        SRV.stop()
        SRV.start()
        self.assert_same(before, self.dump(), 'graceful restart')
        SRV.kill9()
        SRV.start()
        self.assert_same(before, self.dump(), 'SIGKILL restart')
        # the restarted server keeps working and counting
        self.ok('PUT', '/config', {'compatibility': 'BACKWARD'})
        i = self.register('p-after', record('After', ('z', 'int')))
        self.assertGreater(i, 777)
        SRV.kill9()
        SRV.start()
        self.assertEqual(self.ok('GET', '/subjects/p-after/versions/1')['id'], i)

    def assert_same(self, before, after, what):
        self.assertEqual(sorted(before.keys()), sorted(after.keys()), what)
        for k in before:
            self.assertEqual(before[k], after[k], '%s changed %s' % (what, k))

    def test_hard_deleted_id_never_names_another_schema(self):
        x = self.register('p-reuse', record('Reuse', ('r', 'int')))
        self.ok('DELETE', '/subjects/p-reuse')
        self.ok('DELETE', '/subjects/p-reuse?permanent=true')
        y = self.register('p-reuse-2', record('Reuse2', ('r', 'long')))
        self.assertNotEqual(x, y)
        self.assertGreater(y, x)
        SRV.kill9()
        SRV.start()
        z = self.register('p-reuse-3', record('Reuse3', ('r', 'float')))
        self.assertGreater(z, y)
        st, _, got = self.call('GET', '/schemas/ids/%d' % x)
        if st == 200:
            self.assertEqual(json.loads(got['schema']), record('Reuse', ('r', 'int')))
        else:
            self.assertEqual((st, got.get('error_code')), (404, 40403))


if __name__ == '__main__':
    run_tests()
