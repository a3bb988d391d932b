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


if __name__ == '__main__':
    run_tests()
