# SPDX-License-Identifier: MIT
"""test_api_schemas.py - REST acceptance: /schemas, /schemas/ids/{id}/..., /schemas/types.

The by-id endpoints are what every Confluent deserializer calls, so their
shapes must be exact: {"schema": ...} with no schemaType key for Avro, maxId
only when fetchMaxId is asked, and 404/40403 for any id that does not exist
(including ids that are not numbers).
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import ApiAssertions, CairnServer, record, run_tests  # noqa: E402

SRV = None
IDS = {}


def setUpModule():
    global SRV
    SRV = CairnServer()
    # sch-a: v1, v2; sch-b: v1 (same schema as sch-a v1); sch-c: v1 soft-deleted, v2
    plan = [('sch-a', record('SA', ('a', 'string'))),
            ('sch-a', record('SA', ('a', 'string'), ('b', 'int', 0))),
            ('sch-b', record('SA', ('a', 'string'))),
            ('sch-c', record('SC', ('c', 'long'))),
            ('sch-c', record('SC', ('c', 'long'), ('d', 'string', ''))),
            ('other-x', record('OX', ('x', 'float')))]
    for n, (subject, schema) in enumerate(plan):
        st, resp = SRV.register(subject, schema)
        if st != 200:
            raise RuntimeError('setup registration %d failed: %d %r' % (n, st, resp))
        IDS[(subject, n)] = resp['id']
    st, _, resp = SRV.call('DELETE', '/subjects/sch-c/versions/1')
    if st != 200:
        raise RuntimeError('setup delete failed: %d %r' % (st, resp))


def tearDownModule():
    if SRV:
        SRV.cleanup()


def sa1():
    return IDS[('sch-a', 0)]


def sa2():
    return IDS[('sch-a', 1)]


def sc1():
    return IDS[('sch-c', 3)]


def sc2():
    return IDS[('sch-c', 4)]


class Schemas(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def test_types_contains_avro(self):
        types = self.ok('GET', '/schemas/types')
        self.assertIsInstance(types, list)
        self.assertIn('AVRO', types)

    def test_same_schema_in_two_subjects_shares_id(self):
        self.assertEqual(IDS[('sch-b', 2)], sa1())

    def test_list_schemas_by_prefix(self):
        got = self.ok('GET', '/schemas?subjectPrefix=sch-')
        pairs = [(x['subject'], x['version'], x['id']) for x in got]
        self.assertEqual(pairs, [('sch-a', 1, sa1()), ('sch-a', 2, sa2()), ('sch-b', 1, sa1()),
                                 ('sch-c', 2, sc2())])
        for x in got:
            self.assertEqual(set(x.keys()), {'subject', 'version', 'id', 'schema'})
        self.assertEqual(json.loads(got[0]['schema']), record('SA', ('a', 'string')))

    def test_list_schemas_without_prefix_includes_all(self):
        got = self.ok('GET', '/schemas')
        subjects = {x['subject'] for x in got}
        self.assertTrue({'sch-a', 'sch-b', 'sch-c', 'other-x'} <= subjects, subjects)

    def test_list_schemas_offset_limit(self):
        got = self.ok('GET', '/schemas?subjectPrefix=sch-&offset=1&limit=2')
        self.assertEqual([(x['subject'], x['version']) for x in got],
                         [('sch-a', 2), ('sch-b', 1)])

    def test_list_schemas_deleted(self):
        got = self.ok('GET', '/schemas?subjectPrefix=sch-c&deleted=true')
        self.assertEqual([(x['subject'], x['version']) for x in got],
                         [('sch-c', 1), ('sch-c', 2)])

    def test_list_schemas_latest_only(self):
        got = self.ok('GET', '/schemas?subjectPrefix=sch-&latestOnly=true')
        self.assertEqual([(x['subject'], x['version'], x['id']) for x in got],
                         [('sch-a', 2, sa2()), ('sch-b', 1, sa1()), ('sch-c', 2, sc2())])

    def test_schema_by_id_shape(self):
        got = self.ok('GET', '/schemas/ids/%d' % sa1())
        self.assertEqual(set(got.keys()), {'schema'})
        self.assertEqual(json.loads(got['schema']), record('SA', ('a', 'string')))

    def test_schema_by_id_with_subject(self):
        got = self.ok('GET', '/schemas/ids/%d?subject=sch-b' % sa1())
        self.assertEqual(json.loads(got['schema']), record('SA', ('a', 'string')))
        # registry.h: with a subject, only if that subject has a version with this id
        self.err('GET', '/schemas/ids/%d?subject=other-x' % sa1(), http_status=404, code=40403)

    def test_schema_by_id_fetch_max_id(self):
        got = self.ok('GET', '/schemas/ids/%d?fetchMaxId=true' % sa1())
        self.assertEqual(set(got.keys()), {'schema', 'maxId'})
        self.assertEqual(got['maxId'], max(IDS.values()))
        got = self.ok('GET', '/schemas/ids/%d?fetchMaxId=false' % sa1())
        self.assertNotIn('maxId', got)

    def test_schema_by_id_raw(self):
        st, _, body = self.call('GET', '/schemas/ids/%d/schema' % sa2(), raw=True)
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body), record('SA', ('a', 'string'), ('b', 'int', 0)))
        self.assertEqual(body.decode(), self.ok('GET', '/schemas/ids/%d' % sa2())['schema'])

    def test_subjects_by_id(self):
        self.assertEqual(self.ok('GET', '/schemas/ids/%d/subjects' % sa1()), ['sch-a', 'sch-b'])
        self.assertEqual(self.ok('GET', '/schemas/ids/%d/subjects' % sa2()), ['sch-a'])

    def test_subjects_by_id_deleted(self):
        self.err('GET', '/schemas/ids/%d/subjects' % sc1(), http_status=404, code=40403)
        self.assertEqual(self.ok('GET', '/schemas/ids/%d/subjects?deleted=true' % sc1()),
                         ['sch-c'])

    def test_versions_by_id(self):
        self.assertEqual(self.ok('GET', '/schemas/ids/%d/versions' % sa1()),
                         [{'subject': 'sch-a', 'version': 1}, {'subject': 'sch-b', 'version': 1}])
        self.assertEqual(self.ok('GET', '/schemas/ids/%d/versions?deleted=true' % sc1()),
                         [{'subject': 'sch-c', 'version': 1}])

    def test_soft_deleted_id_still_readable(self):
        got = self.ok('GET', '/schemas/ids/%d' % sc1())
        self.assertEqual(json.loads(got['schema']), record('SC', ('c', 'long')))

    def test_unknown_id_40403(self):
        unknown = max(IDS.values()) + 1000
        for path in ('/schemas/ids/%d', '/schemas/ids/%d/schema', '/schemas/ids/%d/subjects',
                     '/schemas/ids/%d/versions'):
            self.err('GET', path % unknown, http_status=404, code=40403)

    def test_bad_ids_are_not_found(self):
        for bad in ('abc', '0', '-1', '99999999999', '1x'):
            self.err('GET', '/schemas/ids/' + bad, http_status=404, code=40403)


if __name__ == '__main__':
    run_tests()
