# SPDX-License-Identifier: MIT
"""test_api_compatibility.py - REST acceptance: compatibility checks and refused registrations.

Every level is checked on three small version chains whose verdicts differ
per level, so that a server that ignores transitivity (checks only the latest
version) or mixes up reader and writer fails here:

  add-chain:    v1 {a}, v2 {a, b="x"}, candidate {a, b (no default)}
  remove-chain: v1 {a, b}, v2 {a, b="x"}, candidate {a}
  type-chain:   v1 {a: string}, candidate {a: int}
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import ApiAssertions, CairnServer, quote, record, run_tests  # noqa: E402

SRV = None

LEVELS = ('NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL',
          'FULL_TRANSITIVE')

ADD_V = [record('Add', ('a', 'string')), record('Add', ('a', 'string'), ('b', 'string', 'x'))]
ADD_CAND = record('Add', ('a', 'string'), ('b', 'string'))
ADD_EXPECT = {'NONE': True, 'BACKWARD': True, 'BACKWARD_TRANSITIVE': False, 'FORWARD': True,
              'FORWARD_TRANSITIVE': True, 'FULL': True, 'FULL_TRANSITIVE': False}

REM_V = [record('Rem', ('a', 'string'), ('b', 'string')),
         record('Rem', ('a', 'string'), ('b', 'string', 'x'))]
REM_CAND = record('Rem', ('a', 'string'))
REM_EXPECT = {'NONE': True, 'BACKWARD': True, 'BACKWARD_TRANSITIVE': True, 'FORWARD': True,
              'FORWARD_TRANSITIVE': False, 'FULL': True, 'FULL_TRANSITIVE': False}

TYPE_V = [record('Typ', ('a', 'string'))]
TYPE_CAND = record('Typ', ('a', 'int'))
TYPE_EXPECT = {lvl: lvl == 'NONE' for lvl in LEVELS}


def setUpModule():
    global SRV
    SRV = CairnServer()


def tearDownModule():
    if SRV:
        SRV.cleanup()


class Compatibility(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def chain(self, subject, versions, level=None):
        for v in versions:
            self.register(subject, v)
        if level:
            self.assertEqual(self.ok('PUT', '/config/' + quote(subject), {'compatibility': level}),
                             {'compatibility': level})

    def check(self, subject, schema, version=None, query=''):
        path = '/compatibility/subjects/%s/versions' % quote(subject)
        if version is not None:
            path += '/%s' % version
        resp = self.ok('POST', path + query, {'schema': json.dumps(schema)})
        self.assertIn('is_compatible', resp)
        self.assertIsInstance(resp['is_compatible'], bool)
        return resp

    def run_chain(self, tag, versions, cand, expect):
        for lvl in LEVELS:
            subject = 'cmp-%s-%s' % (tag, lvl.lower())
            self.chain(subject, versions, lvl)
            with self.subTest(level=lvl):
                got = self.check(subject, cand)['is_compatible']
                self.assertEqual(got, expect[lvl], '%s chain, level %s: /versions said %s'
                                 % (tag, lvl, got))

    def test_add_chain_all_levels(self):
        self.run_chain('add', ADD_V, ADD_CAND, ADD_EXPECT)

    def test_remove_chain_all_levels(self):
        self.run_chain('rem', REM_V, REM_CAND, REM_EXPECT)

    def test_type_change_all_levels(self):
        self.run_chain('typ', TYPE_V, TYPE_CAND, TYPE_EXPECT)

    def test_backward_transitive_catches_old_version_latest_alone_passes(self):
        s = 'cmp-bt'
        self.chain(s, ADD_V, 'BACKWARD_TRANSITIVE')
        self.assertFalse(self.check(s, ADD_CAND)['is_compatible'])
        self.assertTrue(self.check(s, ADD_CAND, 'latest')['is_compatible'])
        self.assertTrue(self.check(s, ADD_CAND, '-1')['is_compatible'])
        self.assertTrue(self.check(s, ADD_CAND, 2)['is_compatible'])
        self.assertFalse(self.check(s, ADD_CAND, 1)['is_compatible'])
        # and registration follows the level: refused, nothing stored
        resp = self.err('POST', '/subjects/%s/versions' % s, {'schema': json.dumps(ADD_CAND)},
                        http_status=409, code=409)
        self.assertIn(s, resp['message'])
        self.assertEqual(self.versions(s), [1, 2])

    def test_incompatible_registration_409(self):
        s = 'cmp-reg409'
        self.chain(s, TYPE_V)
        resp = self.err('POST', '/subjects/%s/versions' % s, {'schema': json.dumps(TYPE_CAND)},
                        http_status=409, code=409)
        self.assertIn('incompatible', resp['message'].lower())
        self.assertEqual(self.versions(s), [1])
        self.err('POST', '/subjects/' + s, {'schema': json.dumps(TYPE_CAND)}, http_status=404,
                 code=40403)

    def test_compatible_registration_under_default_backward(self):
        s = 'cmp-ok'
        self.chain(s, ADD_V)
        self.assertEqual(self.versions(s), [1, 2])

    def test_verbose_messages(self):
        s = 'cmp-verbose'
        self.chain(s, TYPE_V)
        for path in ('', '/latest', '/1'):
            resp = self.ok('POST', '/compatibility/subjects/%s/versions%s?verbose=true'
                           % (s, path), {'schema': json.dumps(TYPE_CAND)})
            self.assertIs(resp['is_compatible'], False)
            self.assertIsInstance(resp.get('messages'), list, resp)
            self.assertGreater(len(resp['messages']), 0, resp)
            for m in resp['messages']:
                self.assertIsInstance(m, str)
        resp = self.ok('POST', '/compatibility/subjects/%s/versions/latest?verbose=true' % s,
                       {'schema': json.dumps(TYPE_V[0])})
        self.assertIs(resp['is_compatible'], True)
        self.assertIsInstance(resp.get('messages'), list, resp)

    def test_not_verbose_has_no_messages(self):
        s = 'cmp-quiet'
        self.chain(s, TYPE_V)
        resp = self.check(s, TYPE_CAND, 'latest')
        self.assertEqual(resp, {'is_compatible': False})

    def test_empty_subject_is_compatible(self):
        self.assertTrue(self.check('cmp-nothing-here', TYPE_CAND, 'latest')['is_compatible'])
        self.assertTrue(self.check('cmp-nothing-here', TYPE_CAND)['is_compatible'])

    def test_explicit_missing_version_40402(self):
        s = 'cmp-missing'
        self.chain(s, TYPE_V)
        self.err('POST', '/compatibility/subjects/%s/versions/7' % s,
                 {'schema': json.dumps(TYPE_V[0])}, http_status=404, code=40402)

    def test_explicit_version_on_missing_subject_40401(self):
        self.err('POST', '/compatibility/subjects/cmp-nobody/versions/1',
                 {'schema': json.dumps(TYPE_V[0])}, http_status=404, code=40401)

    def test_invalid_version_42202(self):
        s = 'cmp-badv'
        self.chain(s, TYPE_V)
        for bad in ('abc', '0', '-2', '99999999999'):
            self.err('POST', '/compatibility/subjects/%s/versions/%s' % (s, bad),
                     {'schema': json.dumps(TYPE_V[0])}, http_status=422, code=42202)

    def test_invalid_candidate_42201(self):
        s = 'cmp-badschema'
        self.chain(s, TYPE_V)
        self.err('POST', '/compatibility/subjects/%s/versions/latest' % s,
                 {'schema': '{"type":"nonsense"}'}, http_status=422, code=42201)

    def test_check_against_soft_deleted_version_excluded(self):
        # v1 {a:string}, v2 {a:string, b="x"}; delete v1: a type change of b
        # is judged against v2 only, and the all-versions check ignores v1.
        s = 'cmp-softdel'
        self.chain(s, ADD_V, 'BACKWARD_TRANSITIVE')
        self.ok('DELETE', '/subjects/%s/versions/1' % s)
        self.assertTrue(self.check(s, ADD_CAND)['is_compatible'])


# (name, old, new, BACKWARD verdict (new reads old), FORWARD verdict (old reads new))
AVRO_RULES = [
    ('int to long', record('E', ('f', 'int')), record('E', ('f', 'long')), True, False),
    ('int to double', record('E', ('f', 'int')), record('E', ('f', 'double')), True, False),
    ('float to double', record('E', ('f', 'float')), record('E', ('f', 'double')), True, False),
    ('string to bytes', record('E', ('f', 'string')), record('E', ('f', 'bytes')), True, True),
    ('long to int', record('E', ('f', 'long')), record('E', ('f', 'int')), False, True),
    ('enum add symbol', {'type': 'enum', 'name': 'En', 'symbols': ['A', 'B']},
     {'type': 'enum', 'name': 'En', 'symbols': ['A', 'B', 'C']}, True, False),
    ('union add branch', record('E', ('f', ['null', 'int'])),
     record('E', ('f', ['null', 'int', 'string'])), True, False),
    ('type to union containing it', record('E', ('f', 'int')),
     record('E', ('f', ['null', 'int'])), True, False),
    ('array items int to long', record('E', ('f', {'type': 'array', 'items': 'int'})),
     record('E', ('f', {'type': 'array', 'items': 'long'})), True, False),
    ('map values string to int', record('E', ('f', {'type': 'map', 'values': 'string'})),
     record('E', ('f', {'type': 'map', 'values': 'int'})), False, False),
    ('record renamed', record('E', ('f', 'int')), record('F', ('f', 'int')), False, False),
    ('record renamed with alias', record('E', ('f', 'int')),
     dict(record('F', ('f', 'int')), aliases=['E']), True, False),
    ('field renamed with alias', record('E', ('f', 'int')),
     {'type': 'record', 'name': 'E',
      'fields': [{'name': 'g', 'type': 'int', 'aliases': ['f']}]}, True, False),
    ('fixed size change', {'type': 'fixed', 'name': 'Fx', 'size': 4},
     {'type': 'fixed', 'name': 'Fx', 'size': 8}, False, False),
    ('add optional field', record('E', ('f', 'int')),
     record('E', ('f', 'int'), ('g', ['null', 'string'], None)), True, True),
]


class AvroRules(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def test_avro_resolution_rules(self):
        for n, (name, old, new, backward, forward) in enumerate(AVRO_RULES):
            for level, want in (('BACKWARD', backward), ('FORWARD', forward),
                                ('FULL', backward and forward)):
                subject = 'rule-%02d-%s' % (n, level.lower())
                with self.subTest(rule=name, level=level):
                    self.ok('PUT', '/config/' + subject, {'compatibility': level})
                    self.register(subject, old)
                    resp = self.ok('POST', '/compatibility/subjects/%s/versions/latest' % subject,
                                   {'schema': json.dumps(new)})
                    self.assertEqual(resp['is_compatible'], want, '%s under %s' % (name, level))


class Recursive(ApiAssertions, unittest.TestCase):
    """Recursive named types are valid Avro; checks on them must terminate."""

    def setUp(self):
        self.srv = SRV

    def test_self_recursive_record_evolves(self):
        node = {'type': 'record', 'name': 'Node',
                'fields': [{'name': 'v', 'type': 'int'},
                           {'name': 'next', 'type': ['null', 'Node'], 'default': None}]}
        self.register('cmp-rec', node)
        node2 = json.loads(json.dumps(node))
        node2['fields'].append({'name': 'w', 'type': 'string', 'default': ''})
        self.register('cmp-rec', node2)
        node_bad = json.loads(json.dumps(node2))
        node_bad['fields'][0]['type'] = 'string'
        resp = self.ok('POST', '/compatibility/subjects/cmp-rec/versions?verbose=true',
                       {'schema': json.dumps(node_bad)})
        self.assertIs(resp['is_compatible'], False)
        self.assertTrue(resp['messages'])
        self.ok('PUT', '/config/cmp-rec', {'compatibility': 'FULL_TRANSITIVE'})
        self.assertTrue(self.check_latest('cmp-rec', node2))

    def check_latest(self, subject, schema):
        return self.ok('POST', '/compatibility/subjects/%s/versions' % subject,
                       {'schema': json.dumps(schema)})['is_compatible']

    def test_mutually_recursive_records(self):
        a = {'type': 'record', 'name': 'A', 'fields': [
            {'name': 'b', 'type': ['null', {'type': 'record', 'name': 'B', 'fields': [
                {'name': 'a', 'type': ['null', 'A'], 'default': None}]}], 'default': None}]}
        self.register('cmp-mut', a)
        a2 = json.loads(json.dumps(a))
        a2['fields'][0]['type'][1]['fields'].append({'name': 'n', 'type': 'long', 'default': 0})
        self.assertTrue(self.check_latest('cmp-mut', a2))
        self.register('cmp-mut', a2)
        self.assertEqual(self.versions('cmp-mut'), [1, 2])


class RoundTrip(ApiAssertions, unittest.TestCase):
    """What is registered comes back with its meaning intact."""

    def setUp(self):
        self.srv = SRV

    def test_defaults_logical_types_and_unicode_survive(self):
        schema = {
            'type': 'record', 'name': 'Rich', 'namespace': 'com.acme.rich',
            'fields': [
                {'name': 'big', 'type': 'long', 'default': 9007199254740993},
                {'name': 'neg', 'type': 'int', 'default': -2147483648},
                {'name': 'dbl', 'type': 'double', 'default': 1.5e300},
                {'name': 'txt', 'type': 'string', 'default': 'h\u00e9 \u2603 "q" \\ \n'},
                {'name': 'raw', 'type': 'bytes', 'default': '\u00ff\u0000'},
                {'name': 'dec', 'type': {'type': 'bytes', 'logicalType': 'decimal',
                                         'precision': 10, 'scale': 2}},
                {'name': 'day', 'type': {'type': 'int', 'logicalType': 'date'}},
                {'name': 'ts', 'type': {'type': 'long', 'logicalType': 'timestamp-millis'}},
                {'name': 'uid', 'type': {'type': 'string', 'logicalType': 'uuid'}},
                {'name': 'sub', 'type': {'type': 'record', 'name': 'Sub',
                                         'fields': [{'name': 'x', 'type': 'int'}]},
                 'default': {'x': 1}},
                {'name': 'arr', 'type': {'type': 'array', 'items': 'Sub'}, 'default': []},
                {'name': 'opt', 'type': ['null', 'Sub'], 'default': None},
                {'name': 'en', 'type': {'type': 'enum', 'name': 'Color',
                                        'symbols': ['RED', 'GREEN'], 'default': 'RED'},
                 'default': 'GREEN'},
            ]}
        i = self.register('rt-rich', schema)
        for path in ('/subjects/rt-rich/versions/1', '/schemas/ids/%d' % i):
            got = json.loads(self.ok('GET', path)['schema'])
            fields = {f['name']: f for f in got['fields']}
            self.assertEqual(list(fields), [f['name'] for f in schema['fields']])
            for f in schema['fields']:
                with self.subTest(path=path, field=f['name']):
                    if 'default' in f:
                        self.assertIn('default', fields[f['name']])
                        self.assertEqual(fields[f['name']]['default'], f['default'])
                    if isinstance(f['type'], dict) and 'logicalType' in f['type']:
                        self.assertEqual(fields[f['name']]['type'].get('logicalType'),
                                         f['type']['logicalType'])
            self.assertEqual(fields['dec']['type'].get('precision'), 10)
            self.assertEqual(fields['dec']['type'].get('scale'), 2)
        # and the same text registered again is the same id
        self.assertEqual(self.register('rt-rich-2', schema), i)


if __name__ == '__main__':
    run_tests()
