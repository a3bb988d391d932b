# SPDX-License-Identifier: MIT
"""test_api_references.py - REST acceptance: schema references (Avro named types by subject).

A record type registered in subject "ref-child" is used by name from a
schema in another subject; the reference is shown back, blocks deletion of
the version it points at (42206), and a reference that does not resolve
makes the schema invalid (42201) with nothing stored.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import ApiAssertions, CairnServer, run_tests  # noqa: E402

SRV = None
CHILD = {'type': 'record', 'name': 'Child', 'namespace': 'com.acme',
         'fields': [{'name': 'x', 'type': 'int'}]}
PARENT = {'type': 'record', 'name': 'Parent', 'namespace': 'com.acme',
          'fields': [{'name': 'child', 'type': 'com.acme.Child'},
                     {'name': 'label', 'type': 'string'}]}
REFS = [{'name': 'com.acme.Child', 'subject': 'ref-child', 'version': 1}]
IDS = {}


def setUpModule():
    global SRV
    SRV = CairnServer()
    st, resp = SRV.register('ref-child', CHILD)
    if st != 200:
        raise RuntimeError('registering ref-child failed: %d %r' % (st, resp))
    IDS['child'] = resp['id']
    st, resp = SRV.register('ref-parent', PARENT, references=REFS)
    if st != 200:
        raise RuntimeError('registering ref-parent failed: %d %r' % (st, resp))
    IDS['parent'] = resp['id']


def tearDownModule():
    if SRV:
        SRV.cleanup()


class References(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def test_parent_has_own_id(self):
        self.assertNotEqual(IDS['parent'], IDS['child'])

    def test_version_shows_references(self):
        got = self.ok('GET', '/subjects/ref-parent/versions/1')
        self.assertEqual(set(got.keys()), {'subject', 'version', 'id', 'schema', 'references'})
        self.assertEqual(got['references'], REFS)
        self.assertEqual(got['id'], IDS['parent'])
        self.assertEqual(json.loads(got['schema'])['name'], 'Parent')

    def test_child_has_no_references_key(self):
        got = self.ok('GET', '/subjects/ref-child/versions/1')
        self.assertNotIn('references', got)

    def test_schema_by_id_shows_references(self):
        got = self.ok('GET', '/schemas/ids/%d' % IDS['parent'])
        self.assertEqual(got.get('references'), REFS)
        self.assertNotIn('schemaType', got)

    def test_schemas_listing_shows_references(self):
        got = self.ok('GET', '/schemas?subjectPrefix=ref-parent')
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]['references'], REFS)

    def test_referenced_by_lists_parent(self):
        self.assertEqual(self.ok('GET', '/subjects/ref-child/versions/1/referencedby'),
                         [IDS['parent']])
        self.assertEqual(self.ok('GET', '/subjects/ref-child/versions/latest/referencedby'),
                         [IDS['parent']])

    def test_same_parent_again_same_id(self):
        st, resp = SRV.register('ref-parent', PARENT, references=REFS)
        self.assertEqual(st, 200, resp)
        self.assertEqual(resp['id'], IDS['parent'])
        self.assertEqual(self.versions('ref-parent'), [1])

    def test_lookup_with_references(self):
        got = self.ok('POST', '/subjects/ref-parent',
                      {'schema': json.dumps(PARENT), 'references': REFS})
        self.assertEqual(got['id'], IDS['parent'])
        self.assertEqual(got['version'], 1)
        self.assertEqual(got['references'], REFS)

    def test_deleting_referenced_version_42206(self):
        self.err('DELETE', '/subjects/ref-child/versions/1', http_status=422, code=42206)
        self.err('DELETE', '/subjects/ref-child', http_status=422, code=42206)
        self.assertEqual(self.versions('ref-child'), [1])

    def test_unresolvable_reference_42201(self):
        cases = [
            [{'name': 'com.acme.Child', 'subject': 'ref-child', 'version': 7}],
            [{'name': 'com.acme.Child', 'subject': 'ref-nobody', 'version': 1}],
            [],
        ]
        for n, refs in enumerate(cases):
            subject = 'ref-bad-%d' % n
            body = {'schema': json.dumps(PARENT)}
            if refs:
                body['references'] = refs
            self.err('POST', '/subjects/%s/versions' % subject, body, http_status=422,
                     code=42201)
            self.assertNotIn(subject, self.subjects('?deleted=true'))

    def test_reference_chain_of_two(self):
        grand = {'type': 'record', 'name': 'Grand', 'namespace': 'com.acme',
                 'fields': [{'name': 'p', 'type': 'com.acme.Parent'}]}
        refs = [{'name': 'com.acme.Parent', 'subject': 'ref-parent', 'version': 1}]
        st, resp = SRV.register('ref-grand', grand, references=refs)
        self.assertEqual(st, 200, resp)
        self.assertEqual(self.ok('GET', '/subjects/ref-parent/versions/1/referencedby'),
                         [resp['id']])
        self.assertEqual(self.ok('GET', '/subjects/ref-grand/versions/1')['references'], refs)


if __name__ == '__main__':
    run_tests()
